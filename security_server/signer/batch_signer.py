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

Where the signing happens (issue 20). A soft-token key signs inline on the reactor thread, as it always has: a
signature costs a fraction of a millisecond and a thread hop would cost more. A key in a PKCS#11 token signs on
that token's worker thread (:mod:`~security_server.signer.token_workers`), so a slow or hung HSM never blocks the
reactor, and the batch's callers get ``signer.cannot_sign`` when the token does not answer within the bounded
wait. When the key source may read a token (:attr:`SigningKeys.may_block`), a key that is not in its cache is also
looked up on a worker thread (:data:`LOOKUP`); the OCSP response is always taken on the reactor thread.
"""

from __future__ import annotations

import copy
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable, Protocol, Sequence

import structlog
from cryptography import x509
from twisted.internet.defer import Deferred

from security_server.core.errors import BusError
from security_server.core.identifiers import ClientId
from security_server.core.signature import MessagePart, SignatureData, sign_batch
from security_server.core.soapattachments import signed_parts
from security_server.signer.pkcs11_key import signature_algorithm_for, token_name_of
from security_server.signer.softtoken import PrivateKey
from security_server.signer.token_workers import TokenWorkers

_log = structlog.get_logger("fedbus.signer.batch")

DEFAULT_MAX_BATCH = 128
"""The most messages one signature covers (X-Road has no fixed limit; a chain grows by one step per doubling)."""
LOOKUP = "key-lookup"
"""The worker that looks keys up in the tokens when the key source may block (not a token's own name: a lookup
asks every token, and the PKCS#11 module lock orders it with the token's signing)."""


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


def _own_error(err: Exception) -> Exception:
    """A copy of ``err`` with a fault-detail id of its own (each caller's fault is logged under its own id)."""
    if not isinstance(err, BusError):
        return err
    try:
        copied = copy.copy(err)
    except TypeError:  # an error whose constructor takes other arguments than its message
        return err
    copied.detail_id = str(uuid.uuid4())
    return copied


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
        workers: TokenWorkers | None = None,
    ) -> None:
        """``enabled`` False signs every message on its own (no queue, no hash chain): a soft key at once, before
        :meth:`sign` returns. ``workers`` run token calls (default: one per token, with the default bounded wait)."""
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self._reactor = reactor
        self._keys = keys
        self._own_ocsp = own_ocsp
        self.enabled = enabled
        self._max_batch = max_batch
        self.workers = workers if workers is not None else TokenWorkers(reactor)
        self._keys_may_block = bool(getattr(keys, "may_block", False))
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
        no usable OCSP response for the certificate, a token that is out or does not answer in time)."""
        waiting = _Waiting(signed_parts(message, attachments), now)
        if not self.enabled:
            self._sign_batch(member.member, [waiting])
            return waiting.deferred
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
        if self._keys_may_block:
            cached = getattr(self._keys, "cached")(member, now)
            if cached is None:
                found = self.workers.run(LOOKUP, lambda: self._keys.get(member, now))
                found.addCallbacks(
                    lambda pair: self._sign_with(member, batch, now, pair),
                    lambda failure: self._failed(member, batch, failure.value, alone=False),
                )
                return
            pair = cached
        else:
            try:
                pair = self._keys.get(member, now)
            except Exception as err:
                self._failed(member, batch, err, alone=True)
                return
        self._sign_with(member, batch, now, pair)

    def _sign_with(
        self, member: ClientId, batch: list[_Waiting], now: datetime, pair: tuple[PrivateKey, x509.Certificate]
    ) -> None:
        key, cert = pair
        token = token_name_of(key)
        messages = [item.parts for item in batch]
        try:
            ocsp = self._own_ocsp(cert)
            algorithm = signature_algorithm_for(key)
            if token is None:
                signed = sign_batch(messages, cert, key, ocsp, now, algorithm=algorithm)
        except Exception as err:
            self._failed(member, batch, err, alone=True)
            return
        if token is None:
            self._signed(batch, signed)
            return
        done = self.workers.run(token, lambda: sign_batch(messages, cert, key, ocsp, now, algorithm=algorithm))
        done.addCallbacks(
            lambda signatures: self._signed(batch, signatures),
            # A token's own failure (out, timed out) is every message's; any other, each message tries alone.
            lambda failure: self._failed(member, batch, failure.value, alone=not isinstance(failure.value, BusError)),
        )

    def _signed(self, batch: list[_Waiting], signed: Sequence[SignatureData]) -> None:
        self.signatures_made += 1
        self.messages_signed += len(batch)
        for item, signature in zip(batch, signed, strict=True):
            item.deferred.callback(signature)

    def _failed(self, member: ClientId, batch: list[_Waiting], err: Exception, *, alone: bool) -> None:
        if alone and len(batch) > 1:
            # Each message alone, so that every caller gets its own error (its own fault-detail UUID), and one
            # message that cannot be signed does not fail the others.
            for item in batch:
                self._sign_batch(member, [item])
            return
        for index, item in enumerate(batch):
            own = err if index == 0 else _own_error(err)
            _log.warning("signing_failed", member=str(member), error=repr(own))
            item.deferred.errback(own)
