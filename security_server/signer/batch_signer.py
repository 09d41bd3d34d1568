"""Batch signing: the messages a security server signs in one reactor turn share one signature (issue 9).

X-Road's ``BatchSigner`` (XROAD-REFERENCE.md §4.2) signs every message that waits for the same key at the same
moment with one signature over a hash chain: the signature covers ``/sig-hashchainresult.xml``, the top of a
Merkle tree whose leaves are the messages, and each message carries its own ``HashChain`` from its leaf to that
top. Every message's evidence still verifies on its own (core/signature.py checks the chain, then the signature),
in the same format as a message signed with attachments.

Here "at the same moment" is one turn of the reactor: :meth:`BatchSigner.sign` queues the message and the queue is
signed once the turn's I/O has been handled (``callLater(0)``), so nothing waits for a batch to fill; under load
the requests that arrived together are signed together, and at low load a batch is one message, signed exactly
as before (directly over ``/message.xml``, no chain). One RSA-2048 signature costs about 0.2-0.3 ms here, the
hash chain a few microseconds per message.

A batch holds the messages of one member (one signing key) and at most ``max_batch`` of them; its signing time
is the latest of its messages' signing times. Messages are not reordered within a member.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable, Protocol, Sequence

import structlog
from cryptography import x509
from twisted.internet.defer import Deferred, succeed

from security_server.core.identifiers import ClientId
from security_server.core.signature import MessagePart, SignatureData, sign_batch
from security_server.core.soapattachments import signed_parts
from security_server.signer.pkcs11_key import signature_algorithm_for
from security_server.signer.softtoken import PrivateKey

_log = structlog.get_logger("fedbus.signer.batch")

DEFAULT_MAX_BATCH = 128
"""The most messages one signature covers (X-Road has no fixed limit; a chain grows by one step per doubling)."""


class KeySource(Protocol):
    """Where the signing key and certificate of a member come from (:class:`~security_server.signer.signing_keys.SigningKeys`)."""

    def get(self, member: ClientId, now: datetime) -> tuple[PrivateKey, x509.Certificate]:
        """The key and certificate ``member`` signs with at ``now``."""
        ...


@dataclass(slots=True, eq=False)
class _Waiting:
    parts: list[MessagePart]
    now: datetime
    deferred: Deferred[SignatureData] = field(default_factory=Deferred)


def sign_now(
    keys: KeySource,
    own_ocsp: Callable[[x509.Certificate], bytes],
    member: ClientId,
    messages: Sequence[Sequence[MessagePart]],
    now: datetime,
) -> tuple[SignatureData, ...]:
    """Sign ``messages`` of ``member`` with one signature at ``now`` (each message: its parts), with the OCSP
    response of the signing certificate (XROAD-REFERENCE.md §4.2): RSA-SHA512 is X-Road's default, an EC key
    signs with ECDSA-SHA512, a token key configured for CKM_RSA_PKCS_PSS with RSA-PSS-SHA512."""
    key, cert = keys.get(member.member, now)
    ocsp = own_ocsp(cert)
    algorithm = signature_algorithm_for(key)
    return sign_batch(messages, cert, key, ocsp, now, algorithm=algorithm)


def sign_message(
    keys: KeySource,
    own_ocsp: Callable[[x509.Certificate], bytes],
    member: ClientId,
    message: bytes,
    now: datetime,
    attachments: Sequence[bytes] = (),
) -> SignatureData:
    """Sign one message at once as ``member`` with its OCSP response (XROAD-REFERENCE.md §4.2): directly when it is
    one part, through a hash chain over ``/message.xml`` and ``/attachment1`` ... when it has attachments (SOAP
    attachments, or a REST body). The proxies sign through a :class:`BatchSigner`; this is the one-message form."""
    return sign_now(keys, own_ocsp, member, [signed_parts(message, attachments)], now)[0]


class BatchSigner:
    """Signs messages as :func:`sign_now` does, those of one reactor turn and one member with one signature."""

    def __init__(
        self,
        reactor: Any,
        keys: KeySource,
        own_ocsp: Callable[[x509.Certificate], bytes],
        *,
        enabled: bool = True,
        max_batch: int = DEFAULT_MAX_BATCH,
    ) -> None:
        """``enabled`` False signs every message at once on its own (no queue, no hash chain)."""
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self._reactor = reactor
        self._keys = keys
        self._own_ocsp = own_ocsp
        self.enabled = enabled
        self._max_batch = max_batch
        self._waiting: dict[ClientId, list[_Waiting]] = {}
        self._scheduled = False
        self.signatures_made = 0
        """Signatures computed so far (a batch of any size counts once)."""
        self.messages_signed = 0
        """Messages signed so far."""

    def sign(
        self, member: ClientId, message: bytes, now: datetime, attachments: Sequence[bytes] = ()
    ) -> Deferred[SignatureData]:
        """Sign ``message`` (and its ``attachments``, or REST body) as ``member`` with signing time ``now`` at the
        latest; fires with its :class:`SignatureData`, or fails with the error that prevented signing (no key,
        no usable OCSP response for the certificate)."""
        parts = signed_parts(message, attachments)
        if not self.enabled:
            try:
                signed = sign_now(self._keys, self._own_ocsp, member, [parts], now)[0]
            except Exception as err:  # the same failures a batch reports through its Deferreds
                failed: Deferred[SignatureData] = Deferred()
                failed.errback(err)
                return failed
            self.signatures_made += 1
            self.messages_signed += 1
            return succeed(signed)
        waiting = _Waiting(parts, now)
        self._waiting.setdefault(member.member, []).append(waiting)
        if not self._scheduled:
            self._scheduled = True
            self._reactor.callLater(0, self._flush)
        return waiting.deferred

    def _flush(self) -> None:
        self._scheduled = False
        waiting, self._waiting = self._waiting, {}
        for member, queue in waiting.items():
            for start in range(0, len(queue), self._max_batch):
                self._sign_batch(member, queue[start : start + self._max_batch])

    def _sign_batch(self, member: ClientId, batch: list[_Waiting]) -> None:
        now = max(item.now for item in batch)
        try:
            signed = sign_now(self._keys, self._own_ocsp, member, [item.parts for item in batch], now)
        except Exception as err:
            if len(batch) > 1:
                # Each message alone, so that every caller gets its own error (its own fault-detail UUID).
                for item in batch:
                    self._sign_batch(member, [item])
                return
            _log.warning("signing_failed", member=str(member), error=repr(err))
            batch[0].deferred.errback(err)
            return
        self.signatures_made += 1
        self.messages_signed += len(batch)
        for item, signature in zip(batch, signed, strict=True):
            item.deferred.callback(signature)
