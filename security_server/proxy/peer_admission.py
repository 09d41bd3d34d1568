"""Which peers the server proxy lets in, decided before it reads what they send (issue 22 item 4).

A client that any CA's certificate lets through the TLS handshake could make the server proxy read a 10 MB body
before the per-request check (core/peerauth.py, in proxy/server_proxy.py) refused it. Two earlier gates, each on the
global configuration in force *now*, so that a CA or a server added or removed takes effect on the next
handshake or request without a restart:

1. **The TLS handshake** (:meth:`PeerAdmission.tls_accepts`, called from the verify callback of proxy/mtls.py):
   the client's certificate must pass checks 1-2 of core/peerauth.py (an authentication certificate that chains to
   an approved CA, every link valid now). X-Road's server proxy trusts the same way: its ``AuthTrustManager`` (a
   JSSE trust manager, so a refusal is a failed handshake) offers the configuration's approved CAs
   (``getAuthTrustChain``) and refuses a client certificate the configuration does not know. Resumed sessions skip
   the verify callback, so proxy/mtls.py starts a new TLS context (new session cache and ticket keys) whenever the
   approved CAs change (:meth:`PeerAdmission.trust_generation`).
2. **The request head** (:class:`AdmittedRequest`, the server proxy site's request class): once the headers are
   in, the certificate must also be registered to a security server (checks 1-4 but the hosted client, which is
   named only in the body). A refused request gets X-Road's fault form (``server.serverproxy.ssl_authentication_
   failed``, ``cert_validation`` or ``global_conf_outdated``), the connection stops reading at once and is cut off
   shortly after, so the body is never read. fedbus answers here rather than in the handshake (where X-Road's
   trust manager refuses an unregistered certificate too) so that a CA-certified server whose registration has not
   reached this server yet is told why, not left with a bare TLS alert. This gate also covers a keep-alive
   connection or resumed session whose certificate the configuration stopped accepting.

With no configuration in force the handshake lets the certificate through and the head gate answers
``global_conf_outdated``: still before the body, and the client learns what is wrong.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Callable

import structlog
from OpenSSL import SSL
from twisted.internet.interfaces import ISSLTransport

from security_server.core.errors import BusError, InternalError, Origin
from security_server.core.globalconf import GlobalConf
from security_server.core.peerauth import check_peer_chain, identify_peer
from security_server.core.soap import FAULT_ANSWER_CONTENT_TYPE
from security_server.proxy.bounded_request import BoundedRequest
from security_server.proxy.mtls import peer_cert_of

log = structlog.get_logger(__name__)

DEFAULT_LINGER_SECONDS = 2.0
"""How long a refused connection stays open (reading nothing) so that the client can read the fault before it is
cut off: closing a socket with unread input sends a reset, which may destroy the fault on its way."""


@dataclass(frozen=True, slots=True)
class _Admitted:
    conf: GlobalConf
    until: float
    """Reactor seconds until which the positive verdict stands (the earliest expiry it depended on)."""


class PeerAdmission:
    """The server proxy's two early gates (module docstring), on the current global configuration."""

    def __init__(
        self,
        reactor: Any,
        global_conf: Callable[[], GlobalConf],
        *,
        linger_seconds: float = DEFAULT_LINGER_SECONDS,
        max_verdicts: int = 4096,
    ) -> None:
        """``global_conf()`` returns the configuration in force or raises :class:`GlobalConfOutdated`."""
        self.reactor = reactor
        self.linger_seconds = linger_seconds
        self._global_conf = global_conf
        self._max_verdicts = max_verdicts
        self._tls: dict[bytes, _Admitted] = {}
        self._heads: dict[bytes, _Admitted] = {}
        self._generation_of: tuple[GlobalConf, bytes] | None = None
        self.refused_handshakes = 0
        """Handshakes refused so far (a figure for tests and logs)."""
        self.refused_heads = 0
        """Requests refused at their head so far."""

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self.reactor.seconds(), tz=UTC)

    def _conf(self) -> GlobalConf | None:
        try:
            return self._global_conf()
        except BusError:
            return None

    def trust_generation(self) -> bytes:
        """Names the approved CAs in force: it changes exactly when they do (empty with no configuration)."""
        conf = self._conf()
        if conf is None:
            return b""
        kept = self._generation_of
        if kept is not None and kept[0] is conf:
            return kept[1]
        digest = hashlib.sha256()
        for group in (conf.approved_roots(), conf.intermediate_cas()):
            for der in group:
                digest.update(hashlib.sha256(der).digest())
            digest.update(b"|")
        generation = digest.digest()
        self._generation_of = (conf, generation)
        return generation

    def _remembered(self, verdicts: dict[bytes, _Admitted], key: bytes, conf: GlobalConf) -> bool:
        verdict = verdicts.get(key)
        return verdict is not None and verdict.conf is conf and self.reactor.seconds() < verdict.until

    def _remember(self, verdicts: dict[bytes, _Admitted], key: bytes, conf: GlobalConf, until: float) -> None:
        verdicts.pop(key, None)
        verdicts[key] = _Admitted(conf, until)
        while len(verdicts) > self._max_verdicts:
            del verdicts[next(iter(verdicts))]

    def tls_accepts(self, cert_der: bytes) -> bool:
        """Gate 1: whether the TLS handshake may complete with this client certificate (checks 1-2)."""
        conf = self._conf()
        if conf is None:
            return True  # the head gate answers global_conf_outdated, before the body
        key = hashlib.sha256(cert_der).digest()
        if self._remembered(self._tls, key, conf):
            return True
        try:
            path = check_peer_chain(cert_der, conf, self._now())
        except BusError as err:
            self.refused_handshakes += 1
            log.info("server_proxy_handshake_refused", **err.at(Origin.SERVER_PROXY).log_fields())
            return False
        until = min(cert.not_valid_after_utc.timestamp() for cert in path)
        self._remember(self._tls, key, conf, min(until, conf.expires_at.timestamp()))
        return True

    def refusal(self, cert_der: bytes | None) -> BusError | None:
        """Gate 2: why a request with this client certificate must not be read (None: read it).

        No certificate (a site without TLS, as in tests) is left to the handler, which refuses it itself.
        """
        if cert_der is None:
            return None
        try:
            conf = self._global_conf()
            key = hashlib.sha256(cert_der).digest()
            if self._remembered(self._heads, key, conf):
                return None
            peer = identify_peer(cert_der, conf, self._now())
        except BusError as err:
            self.refused_heads += 1
            return err.at(Origin.SERVER_PROXY)
        until = min(
            peer.cert.not_valid_after_utc.timestamp(),
            peer.issuer.not_valid_after_utc.timestamp(),
            conf.expires_at.timestamp(),
        )
        self._remember(self._heads, key, conf, until)
        return None


def admission_of(site: Any) -> PeerAdmission | None:
    """The admission a server proxy site was made with (for its TLS listener), or None."""
    admission = getattr(site, "peer_admission", None)
    return admission if isinstance(admission, PeerAdmission) else None


def _transport_cert(transport: Any) -> bytes | None:
    if transport is None or not ISSLTransport.providedBy(transport):
        return None
    handle: Any = transport.getHandle()
    return peer_cert_of(handle) if isinstance(handle, SSL.Connection) else None


def fault_answer(error: BusError) -> bytes:
    """A whole HTTP/1.1 answer carrying ``error`` in X-Road's server proxy fault form (200, text/xml, an empty
    SOAPAction, as proxy/server_proxy_site.py answers its own faults), closing the connection."""
    body = error.to_soap_fault()
    head = (
        b"HTTP/1.1 200 OK\r\n"
        b"Content-Type: " + FAULT_ANSWER_CONTENT_TYPE.encode("ascii") + b"\r\n"
        b"Content-Length: %d\r\n"
        b"SOAPAction: \r\n"
        b"Connection: close\r\n\r\n"
    ) % len(body)
    return head + body


class AdmittedRequest(BoundedRequest):
    """A server proxy request whose peer passes gate 2 when its head is in, or is refused before its body."""

    refused: BusError | None = None
    """Why this request was refused at its head (None: admitted)."""
    body_bytes_after_refusal = 0
    """Body bytes that arrived after the refusal (already on their way); dropped unread."""
    _cutoff: Any = None
    """The delayed call that cuts a refused connection off."""

    def gotLength(self, length: int | None) -> None:
        """The head is in: admit the peer, or answer the fault and stop reading."""
        super().gotLength(length)
        admission = admission_of(getattr(self.channel, "site", None))
        if admission is None:
            return
        transport = getattr(self.channel, "transport", None)
        try:
            error = admission.refusal(_transport_cert(transport))
        except Exception as err:  # a bug must not let the peer in: refuse, say why in our log
            error = InternalError("Internal error", reason=repr(err), origin=Origin.SERVER_PROXY)
        if error is not None:
            self._refuse(admission, error)

    def _refuse(self, admission: PeerAdmission, error: BusError) -> None:
        self.refused = error
        self.requestHeaders.removeHeader(b"expect")  # no "100 Continue" after the answer
        log.info("server_proxy_peer_refused", **error.log_fields())
        channel: Any = self.channel
        channel.persistent = False
        transport: Any = channel.transport
        transport.pauseProducing()  # read no more: the body stays in the kernel until the connection is cut off
        transport.write(fault_answer(error))
        channel.loseConnection()  # the answer, then TLS close_notify
        self._cutoff = admission.reactor.callLater(admission.linger_seconds, transport.abortConnection)

    def handleContentChunk(self, data: bytes) -> None:
        """Drop what arrives after a refusal (bytes that came with the head); else keep the body as usual."""
        if self.refused is not None:
            self.body_bytes_after_refusal += len(data)
            return
        super().handleContentChunk(data)

    def requestReceived(self, command: bytes, path: bytes, version: bytes) -> None:
        """A refused request (one without a body completes at once) is never processed."""
        if self.refused is not None:
            return
        super().requestReceived(command, path, version)  # type: ignore[no-untyped-call]  # Twisted: unannotated

    def connectionLost(self, reason: Any) -> None:
        """Stop the cut-off timer of a refused connection that went away by itself."""
        if self._cutoff is not None and self._cutoff.active():
            self._cutoff.cancel()
        super().connectionLost(reason)  # type: ignore[no-untyped-call]
