"""The network between security servers: mutual TLS, the server proxy's listener and the pooled client link.

XROAD-REFERENCE.md §4.3: security servers talk HTTP/1.1 over TLS 1.2+ and both present their authentication
certificates. TLS here only proves that each side holds the key of the certificate it showed; *whether* that
certificate is acceptable is decided at application level against the global configuration in force at the
time (it changes while connections live): the client link calls ``verify_peer`` before it writes a single
request byte, and the server proxy's handler checks the client's certificate with every request
(security_server/core/peerauth.py). So the TLS verify callbacks accept any certificate OpenSSL could parse,
while the server still *requires* one (``VERIFY_PEER | VERIFY_FAIL_IF_NO_PEER_CERT``).

Three pieces:

* :func:`server_context_factory` / :class:`PeerTlsOptions`: TLS 1.2 minimum (1.3 allowed), X-Road's TLS 1.2
  cipher preference after the AEAD suites, session resumption on (session cache and tickets; PERFORMANCE-NOTES
  B.5: Twisted turns both off by default, and a resumed handshake costs about half a full one).
* :class:`ServerProxyResource` and :func:`server_proxy_site`: the server proxy's twisted.web listener. POST
  only; the body is read up to a limit (413 and a SOAP fault past it); the peer's certificate is taken from the
  TLS transport and handed to the :class:`ServerProxyHandler` with the request.
* :class:`MtlsPeerLink`: the client side. A lean HTTP/1.1 client over persistent mutual-TLS connections pooled
  per peer (PERFORMANCE-NOTES B.6: twisted's Agent costs about 2.5x as much per hop). Peers are tried in order
  of their best recent connect time (X-Road's "fastest connection" choice, UC-MESS §3.3), and the next one is
  tried when a peer cannot be connected to or its certificate is refused.
"""

from __future__ import annotations

import re
import weakref
from datetime import UTC, datetime
from io import BytesIO
from typing import Any, Sequence, cast

import structlog
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from OpenSSL import SSL
from twisted.internet import defer
from twisted.internet.defer import Deferred, maybeDeferred
from twisted.internet.endpoints import HostnameEndpoint, connectProtocol, wrapClientTLS
from twisted.internet.interfaces import (
    IHandshakeListener,
    IListeningPort,
    IOpenSSLClientConnectionCreator,
    IOpenSSLServerConnectionCreator,
    ISSLTransport,
)
from twisted.internet.protocol import connectionDone
from twisted.internet.ssl import AcceptableCiphers, CertificateOptions, TLSVersion
from twisted.python.failure import Failure
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request, Site
from zope.interface import implementer

from security_server.core.errors import (
    BusError,
    InternalError,
    InvalidHttpMethod,
    IoError,
    NetworkError,
    Origin,
    RequestTooLarge,
    SslAuthenticationFailed,
)
from security_server.proxy.http1 import FIELD_VALUE, TOKEN, RawResponse
from security_server.proxy.client_connection import ClientConnection
from security_server.proxy.locallink import PeerVerifier, all_peers_failed, run_verifier
from security_server.proxy.peerlink import PeerAddress, PeerRequest, PeerResponse, ServerProxyHandler
from security_server.signer.softtoken import PrivateKey, SoftToken

log = structlog.get_logger(__name__)

TLS12_CIPHERS = ":".join(
    (
        # AEAD suites first (forward secret, no CBC padding oracles) ...
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        "ECDHE-RSA-AES256-GCM-SHA384",
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        "ECDHE-RSA-AES128-GCM-SHA256",
        # ... then X-Road's own TLS 1.2 list (XROAD-REFERENCE.md §4.3, SYSPAR xroad-tls-ciphers), so a peer
        # configured the X-Road way still finds a common suite. TLS 1.3 suites are OpenSSL's defaults.
        "ECDHE-RSA-AES256-SHA384",
        "DHE-RSA-AES256-SHA256",
        "ECDHE-ECDSA-AES256-SHA384",
    )
)
"""The TLS 1.2 cipher suites we offer and accept, in order of preference (OpenSSL names)."""

DEFAULT_MAX_BODY_BYTES = 10 * 1024 * 1024
"""SECURITY-CASES.md: a 10 MiB body limit unless configured otherwise."""

SOAP_CONTENT_TYPE = "text/xml; charset=utf-8"

# Headers that describe one hop's framing; never copied between a PeerRequest/PeerResponse and the wire.
_HOP_BY_HOP = frozenset(
    ("connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-connection", "host",
     "content-length", "content-type")
)
_PATH = re.compile(r"/[!-~]*")


# --- TLS options ----------------------------------------------------------------------------------------


def _accept_any_certificate(connection: SSL.Connection, certificate: Any, error: int, depth: int, ok: int) -> bool:
    """TLS verify callback: any certificate OpenSSL could parse passes; trust is decided by peerauth."""
    return True


@implementer(IOpenSSLServerConnectionCreator, IOpenSSLClientConnectionCreator)
class PeerTlsOptions:
    """One OpenSSL context with our authentication key and certificate, for either end of SS-to-SS TLS."""

    def __init__(self, key: PrivateKey, cert: x509.Certificate, *, server: bool) -> None:
        options = CertificateOptions(
            privateKey=key,  # type: ignore[arg-type]  # pyOpenSSL takes cryptography keys; Twisted's hints lag
            certificate=cert,  # type: ignore[arg-type]
            raiseMinimumTo=TLSVersion.TLSv1_2,
            enableSessions=True,
            enableSessionTickets=True,
            acceptableCiphers=AcceptableCiphers.fromOpenSSLCipherString(TLS12_CIPHERS),  # type: ignore[no-untyped-call]
        )
        self.context: SSL.Context = options.getContext()
        if server:
            # The client must present a certificate; which ones are acceptable is decided per request.
            self.context.set_verify(SSL.VERIFY_PEER | SSL.VERIFY_FAIL_IF_NO_PEER_CERT, _accept_any_certificate)
        else:
            self.context.set_verify(SSL.VERIFY_PEER, _accept_any_certificate)
            self.context.set_session_cache_mode(SSL.SESS_CACHE_CLIENT)
        self.certificate = cert

    def serverConnectionForTLS(self, tlsProtocol: Any) -> SSL.Connection:
        """A server-side connection (IOpenSSLServerConnectionCreator)."""
        return SSL.Connection(self.context, None)

    def clientConnectionForTLS(self, tlsProtocol: Any) -> SSL.Connection:
        """A client-side connection (IOpenSSLClientConnectionCreator), without session reuse."""
        return SSL.Connection(self.context, None)


@implementer(IOpenSSLClientConnectionCreator)
class _ResumingClientCreator:
    """Client connections that offer the last session of this peer, so the handshake can be resumed."""

    def __init__(self, options: PeerTlsOptions, session: SSL.Session | None) -> None:
        self._options = options
        self._session = session

    def clientConnectionForTLS(self, tlsProtocol: Any) -> SSL.Connection:
        connection = self._options.clientConnectionForTLS(tlsProtocol)
        if self._session is not None:
            connection.set_session(self._session)
        return connection


def _now(reactor: Any) -> datetime:
    return datetime.fromtimestamp(reactor.seconds(), tz=UTC)


def server_context_factory(token: SoftToken, *, now: datetime | None = None) -> PeerTlsOptions:
    """TLS options for the server proxy's port: our auth key and certificate, a client certificate required."""
    key, cert = token.auth_key(now=now)
    return PeerTlsOptions(key, cert, server=True)


# --- the server proxy's listener ------------------------------------------------------------------------


def _cert_der(transport: Any) -> bytes | None:
    """The DER certificate the TLS peer of ``transport`` presented, or None."""
    if transport is None or not ISSLTransport.providedBy(transport):
        return None
    handle: Any = transport.getHandle()
    if not isinstance(handle, SSL.Connection):
        return None
    return _peer_cert_of(handle)


def _peer_cert_of(handle: Any) -> bytes | None:
    """The DER certificate of an OpenSSL connection's peer (types-pyOpenSSL lags ``as_cryptography``)."""
    cert: x509.Certificate | None = handle.get_peer_certificate(as_cryptography=True)
    return None if cert is None else cert.public_bytes(serialization.Encoding.DER)


_peer_certs: weakref.WeakKeyDictionary[Any, bytes | None] = weakref.WeakKeyDictionary()
"""Each connection's peer certificate, read once (a keep-alive connection carries many requests)."""


def peer_cert_der(request: Request) -> bytes | None:
    """The client's TLS certificate (DER) for a request on the server proxy port, or None without TLS."""
    transport = getattr(request.channel, "transport", None)
    if transport is None:
        return None
    try:
        return _peer_certs[transport]
    except KeyError:
        pass
    except TypeError:  # a transport that cannot be weakly referenced
        return _cert_der(transport)
    der = _cert_der(transport)
    _peer_certs[transport] = der
    return der


class _BoundedRequest(Request):
    """A request whose body is kept in memory up to the site's limit; past the limit the body is discarded.

    The peer gets 413 with a fault once its request is complete. Reading stops altogether (the connection is
    aborted) once the peer has sent twice the limit, so an endless body costs us nothing (SECURITY-CASES.md).
    """

    body_too_large = False
    _received = 0
    _parsePOSTFormSubmission = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[no-untyped-call]  # Twisted leaves it unannotated
        # The body is a transport message, never a form: skip Twisted's form parsing (and its Content-Type
        # parsing through the email package, about 0.4 ms a request). Newer Twisted sets this in __init__.
        self._parsePOSTFormSubmission = False

    def _limit(self) -> int:
        site = getattr(self.channel, "site", None)
        return int(getattr(site, "max_body_bytes", DEFAULT_MAX_BODY_BYTES))

    def gotLength(self, length: int | None) -> None:
        """Start an in-memory body (never a temporary file) and note a declared length over the limit."""
        self.content = BytesIO()
        self._received = 0
        self.body_too_large = length is not None and length > self._limit()

    def handleContentChunk(self, data: bytes) -> None:
        """Keep the body up to the limit; past it, drop it and abort once the excess is as large as the limit."""
        self._received += len(data)
        limit = self._limit()
        if self._received > limit and not self.body_too_large:
            self.body_too_large = True
            self.content = BytesIO()
        if self.body_too_large:
            if self._received > 2 * limit:
                log.warning("server_proxy_body_aborted", received=self._received, limit=limit)
                transport = getattr(self.channel, "transport", None)
                if transport is not None:
                    transport.abortConnection()
            return
        content: Any = self.content
        content.write(data)


class _ServerProxySite(Site):
    """A Site without access log or tracebacks, with the body limit of its resource."""

    displayTracebacks = False
    requestFactory = _BoundedRequest

    def __init__(self, resource: ServerProxyResource, *, timeout: float) -> None:
        super().__init__(resource, timeout=timeout)  # type: ignore[no-untyped-call]  # Twisted leaves it unannotated
        self.max_body_bytes = resource.max_body_bytes

    def log(self, request: Any) -> None:
        """No per-request access log: the proxies log one structlog summary line per exchange."""


def server_proxy_site(resource: ServerProxyResource, *, idle_timeout_seconds: float = 120.0) -> Site:
    """The twisted.web Site for the server proxy port (HTTP/1.1 keep-alive, closed after an idle period).

    The idle period should be longer than the clients' (MtlsPeerLink closes its idle connections first).
    """
    return _ServerProxySite(resource, timeout=idle_timeout_seconds)


def listen_server_proxy(
    reactor: Any, site: Site, token: SoftToken, *, port: int, interface: str = ""
) -> IListeningPort:
    """Listen for security servers with mutual TLS on ``port`` (X-Road's 5500)."""
    listening: IListeningPort = reactor.listenSSL(port, site, server_context_factory(token), interface=interface)
    return listening


def _header_text(value: bytes) -> str:
    return value.decode("latin-1")


class ServerProxyResource(Resource):
    """The server proxy's HTTP endpoint: POST a transport message, get the handler's answer back."""

    isLeaf = True

    def __init__(self, handler: ServerProxyHandler, *, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # Twisted leaves it unannotated
        if max_body_bytes <= 0:
            raise ValueError("max_body_bytes must be positive")
        self.handler = handler
        self.max_body_bytes = max_body_bytes

    def render(self, request: Request) -> bytes | int:
        """POST only; a bounded body; the handler's answer (or a fault) written back."""
        if request.method != b"POST":
            method = request.method.decode("latin-1", "replace")[:16]
            return self._fault(request, InvalidHttpMethod(f"HTTP method {method} is not supported; use POST"))
        content: Any = request.content
        body = b""
        if content is not None:  # a Site other than server_proxy_site's may have buffered to a file
            content.seek(0)
            body = content.read(self.max_body_bytes + 1)
        if getattr(request, "body_too_large", False) or len(body) > self.max_body_bytes:
            request.channel.persistent = False  # answer, then drop a connection that sent too much
            return self._fault(
                request, RequestTooLarge(f"request body is larger than {self.max_body_bytes} bytes")
            )
        headers: dict[str, str] = {}
        for name, values in request.requestHeaders.getAllRawHeaders():
            lowered = _header_text(name).lower()
            if lowered not in _HOP_BY_HOP:
                headers[lowered] = ", ".join(_header_text(v) for v in values)
        content_type = _header_text(request.getHeader(b"content-type") or b"")
        peer_request = PeerRequest(
            headers=headers, content_type=content_type, body=body, path=_header_text(request.uri)
        )
        cert = peer_cert_der(request)
        gone = [False]
        request.notifyFinish().addErrback(lambda _: gone.__setitem__(0, True))

        def answer(response: PeerResponse) -> None:
            if gone[0]:
                return
            try:
                head = self._encode_head(response)
            except (UnicodeEncodeError, AttributeError, TypeError) as err:
                error = InternalError("server proxy answer cannot be sent", reason=repr(err), origin=Origin.SERVER_PROXY)
                log.error("server_proxy_handler_failed", **error.log_fields())
                self._write_fault(request, error)
                return
            self._write(request, head, response.body)

        def failed(failure: Failure) -> None:
            error = failure.value if isinstance(failure.value, BusError) else None
            if error is None:
                error = InternalError("server proxy failed", reason=failure.getErrorMessage())
                error.at(Origin.SERVER_PROXY)
            log.error("server_proxy_handler_failed", **error.log_fields())
            if not gone[0]:
                self._write_fault(request, error)

        handled: Deferred[PeerResponse] = maybeDeferred(self.handler.handle, cert, peer_request)
        handled.addCallbacks(answer, failed)
        handled.addErrback(lambda failure: log.error("server_proxy_reply_failed", error=failure.getErrorMessage()))
        return NOT_DONE_YET

    @staticmethod
    def _encode_head(response: PeerResponse) -> tuple[int, list[tuple[bytes, bytes]]]:
        """The status and headers to send, all encoded before anything is written."""
        status = response.status if 200 <= response.status <= 599 else 500
        headers = [(b"content-type", response.content_type.encode("latin-1"))]
        for name, value in response.headers.items():
            if name.lower() not in _HOP_BY_HOP:
                headers.append((name.encode("latin-1"), value.encode("latin-1")))
        headers.append((b"content-length", b"%d" % len(response.body)))
        return status, headers

    @staticmethod
    def _write(request: Any, head: tuple[int, list[tuple[bytes, bytes]]], body: bytes) -> None:
        status, headers = head
        request.setResponseCode(status)
        for name, value in headers:
            request.setHeader(name, value)
        request.write(body)
        request.finish()

    @staticmethod
    def _write_fault(request: Any, error: BusError) -> None:
        body = error.to_soap_fault()
        request.setResponseCode(error.http_status)
        request.setHeader(b"content-type", SOAP_CONTENT_TYPE.encode("ascii"))
        request.setHeader(b"content-length", b"%d" % len(body))
        request.write(body)
        request.finish()

    @staticmethod
    def _fault(request: Any, error: BusError) -> bytes:
        log.info("server_proxy_request_refused", **error.log_fields())
        request.setResponseCode(error.http_status)
        request.setHeader(b"content-type", SOAP_CONTENT_TYPE.encode("ascii"))
        return error.to_soap_fault()


# --- the client side: a lean HTTP/1.1 client over pooled mutual-TLS connections ---------------------------


def _encode_request(address: PeerAddress, request: PeerRequest) -> bytes:
    """The HTTP/1.1 request head and body (RFC 9112 §3, §6.2: Content-Length framing, no chunking)."""
    if not _PATH.fullmatch(request.path):
        raise InternalError("request path is not an absolute path", reason=repr(request.path))
    host = f"[{address.host}]" if ":" in address.host else address.host
    lines = [
        f"POST {request.path} HTTP/1.1",
        f"Host: {host}:{address.port}",
        f"Content-Type: {request.content_type}",
        f"Content-Length: {len(request.body)}",
    ]
    lines.extend(f"{name}: {value}" for name, value in request.headers.items() if name.lower() not in _HOP_BY_HOP)
    try:
        encoded = [line.encode("latin-1") for line in lines]
    except UnicodeEncodeError as err:
        raise InternalError("request header is not Latin-1", reason=str(err)) from err
    for line in encoded[1:]:
        name, _, value = line.partition(b": ")
        if not TOKEN.fullmatch(name) or not FIELD_VALUE.fullmatch(value):
            raise InternalError("request header has a bad name or value", reason=repr(line[:80]))
    return b"\r\n".join(encoded) + b"\r\n\r\n" + request.body


class _ClosedEarly(IoError):
    """The connection closed before any byte of the response arrived (a pooled connection may have gone stale)."""


@implementer(IHandshakeListener)
class _PeerConnection(ClientConnection):
    """One mutual-TLS connection to a peer, carrying one request at a time."""

    def __init__(self, address: PeerAddress, max_response_bytes: int) -> None:
        super().__init__(max_response_bytes)
        self.address = address
        self.handshake: Deferred[None] = Deferred(lambda _: self.abort())
        self.cert_der = b""

    def _unusable(self) -> BusError:
        return _ClosedEarly("connection is not usable", origin=Origin.CLIENT_PROXY)

    def _cut_short(self, error: BusError, reason: Failure) -> BusError:
        if not self._received_any:  # nothing came back at all: a pooled connection the peer had closed
            return _ClosedEarly(
                "peer closed the connection without answering",
                reason=reason.getErrorMessage(),
                origin=Origin.CLIENT_PROXY,
            )
        return error

    # transport events

    def handshakeCompleted(self) -> None:
        """The TLS handshake finished: keep the peer's certificate and let the link verify it."""
        if self.handshake.called:
            return
        transport: Any = self.transport
        cert_der = _peer_cert_of(transport.getHandle())
        if cert_der is None:
            self.abort()
            self.handshake.errback(SslAuthenticationFailed("peer presented no TLS certificate"))
            return
        self.cert_der = cert_der
        self.open = True
        self.handshake.callback(None)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        """Fail whatever waits on this connection (the handshake, or an answer), and tell the link."""
        if not self.handshake.called:
            self.open = False
            self._lost = True
            self.handshake.errback(
                NetworkError("TLS connection to the peer failed", reason=reason.getErrorMessage())
            )
            self._gone()
            return
        super().connectionLost(reason)

    def session(self) -> SSL.Session | None:
        """The TLS session, to offer when the next connection to this peer is made."""
        transport: Any = self.transport
        if transport is None or self._lost:
            return None
        handle: Any = transport.getHandle()
        session: SSL.Session | None = handle.get_session()
        return session

class _Refused(Exception):
    """verify_peer refused the peer's certificate (carries its BusError)."""

    def __init__(self, error: BusError) -> None:
        super().__init__(error.message)
        self.error = error


DEFAULT_PEER_POOL_SIZE = 64
"""Idle connections kept per peer server: enough for the usual concurrency, so that a busy exchange finds one open
(with fewer idle than in flight, most exchanges close their connection and the next opens and authenticates a new
one; bench/ measured that as 11-32 % more CPU per exchange at 50 concurrent, and steady memory growth)."""

MAX_PEER_POOL_SIZE = 10_000


class MtlsPeerLink:
    """The :class:`PeerLink` of production: pooled, keep-alive HTTP/1.1 over mutual TLS, with failover."""

    def __init__(
        self,
        reactor: Any,
        token: SoftToken,
        *,
        verify_peer: PeerVerifier,
        connect_timeout: float = 10.0,
        verify_timeout: float = 15.0,
        max_idle_per_peer: int = DEFAULT_PEER_POOL_SIZE,
        idle_timeout: float = 30.0,
        max_response_bytes: int = DEFAULT_MAX_BODY_BYTES,
        failure_backoff_seconds: float = 60.0,
    ) -> None:
        """``verify_peer(address, cert_der)`` runs before a request byte goes out on a connection (new or
        reused); see :data:`~security_server.proxy.locallink.PeerVerifier`. ``max_idle_per_peer`` bounds the
        connections kept open per peer between requests; ``idle_timeout`` closes them after that long unused
        (shorter than the server's idle timeout, so the client closes first). A peer that failed to connect
        within ``failure_backoff_seconds`` is tried after the others."""
        self._reactor = reactor
        self._token = token
        self._verify_peer = verify_peer
        self._connect_timeout = connect_timeout
        self._verify_timeout = verify_timeout
        self._max_idle = max_idle_per_peer
        self._idle_timeout = idle_timeout
        self._max_response_bytes = max_response_bytes
        self._backoff = failure_backoff_seconds
        self._tls = self._load_tls()
        self._idle: dict[PeerAddress, list[_PeerConnection]] = {}
        self._connections: set[_PeerConnection] = set()
        self._latency: dict[PeerAddress, float] = {}
        self._failed_at: dict[PeerAddress, float] = {}
        self._sessions: dict[PeerAddress, SSL.Session] = {}
        self._closed = False
        self.connections_made = 0
        """How many TLS connections this link has opened (a figure for logs and tests)."""

    def _load_tls(self) -> PeerTlsOptions:
        key, cert = self._token.auth_key(now=_now(self._reactor))
        return PeerTlsOptions(key, cert, server=False)

    def reload_credentials(self) -> None:
        """Use the token's current auth key and certificate for new connections (after a renewal)."""
        self._tls = self._load_tls()
        self._sessions.clear()

    # --- PeerLink -------------------------------------------------------------------------------------

    def send(self, peers: Sequence[PeerAddress], request: PeerRequest, timeout_seconds: float) -> Deferred[PeerResponse]:
        """Deliver ``request`` to the first peer that can be reached and verified, in fastest-first order.

        A failure to connect or a refused certificate moves on to the next peer; once the request has been
        written, a failure is final (io_error; the request may have been processed). Exception: a pooled
        connection that the peer closed before answering anything is replaced by a fresh one, once.
        """
        return Deferred.fromCoroutine(self._send(peers, request, timeout_seconds))

    async def _send(self, peers: Sequence[PeerAddress], request: PeerRequest, timeout: float) -> PeerResponse:
        if self._closed:
            raise NetworkError("the peer link is closed", origin=Origin.CLIENT_PROXY)
        failures: list[tuple[PeerAddress, str]] = []
        verify_errors: list[BusError] = []
        for address in self._order(peers):
            data = _encode_request(address, request)
            try:
                connection, reused = await self._acquire(address, reuse=True)
            except _Refused as refused:
                failures.append((address, f"{refused.error.fault_code}: {refused.error.reason}"))
                verify_errors.append(refused.error)
                continue
            except BusError as err:
                failures.append((address, err.reason))
                continue
            try:
                raw = await self._exchange(connection, data, timeout)
            except _ClosedEarly:
                if not reused:
                    raise
                log.info("stale_peer_connection_replaced", server=str(address.server))
                try:
                    connection, _ = await self._acquire(address, reuse=False)
                except _Refused as refused:
                    failures.append((address, f"{refused.error.fault_code}: {refused.error.reason}"))
                    verify_errors.append(refused.error)
                    continue
                except BusError as err:
                    failures.append((address, err.reason))
                    continue
                raw = await self._exchange(connection, data, timeout)
            self._release(address, connection, raw.keep_alive)
            return PeerResponse(
                status=raw.status,
                content_type=raw.headers.get("content-type", ""),
                body=raw.body,
                headers={k: v for k, v in raw.headers.items() if k not in _HOP_BY_HOP},
                server=address.server,
                peer_cert_der=connection.cert_der,
            )
        error = all_peers_failed(failures, verify_errors)
        log.warning("peer_send_failed", **error.log_fields())
        raise error

    def _order(self, peers: Sequence[PeerAddress]) -> list[PeerAddress]:
        """Peers by (failed recently, no idle connection, best recent connect time, given order).

        A peer never connected to ranks as fastest, so each gets measured once; a connect failure sends a peer
        to the back for ``failure_backoff_seconds``.
        """
        now = self._reactor.seconds()

        def rank(indexed: tuple[int, PeerAddress]) -> tuple[bool, bool, float, int]:
            index, address = indexed
            failed = self._failed_at.get(address)
            recently_failed = failed is not None and now - failed < self._backoff
            return (recently_failed, not self._idle.get(address), self._latency.get(address, 0.0), index)

        return [address for _, address in sorted(enumerate(peers), key=rank)]

    async def _verify(self, address: PeerAddress, connection: _PeerConnection) -> None:
        verdict = Deferred.fromCoroutine(run_verifier(self._verify_peer, address, connection.cert_der))
        verdict.addTimeout(self._verify_timeout, self._reactor)
        try:
            await verdict
        except BusError as err:
            connection.abort()
            raise _Refused(err.at(Origin.CLIENT_PROXY)) from err
        except defer.TimeoutError as err:
            connection.abort()
            refused = SslAuthenticationFailed(
                "peer certificate could not be checked in time",
                reason=f"no verdict within {self._verify_timeout} s",
                origin=Origin.CLIENT_PROXY,
            )
            raise _Refused(refused) from err

    async def _acquire(self, address: PeerAddress, *, reuse: bool) -> tuple[_PeerConnection, bool]:
        idle = self._idle.get(address, [])
        while reuse and idle:
            connection = idle.pop()
            if connection.idle_call is not None and connection.idle_call.active():
                connection.idle_call.cancel()
            if not connection.open:
                continue
            await self._verify(address, connection)  # the configuration may have changed since it was opened
            if connection.open:
                return connection, True
        connection = await self._open(address)
        await self._verify(address, connection)
        if not connection.open:
            raise NetworkError("peer closed the connection during verification", origin=Origin.CLIENT_PROXY)
        return connection, False

    async def _open(self, address: PeerAddress) -> _PeerConnection:
        started = self._reactor.seconds()
        connection = _PeerConnection(address, self._max_response_bytes)
        connection.on_lost = self._lost
        creator = _ResumingClientCreator(self._tls, self._sessions.get(address))
        tcp: Any = HostnameEndpoint(self._reactor, address.host, address.port, timeout=self._connect_timeout)
        endpoint = wrapClientTLS(cast(Any, creator), tcp)
        connecting: Deferred[Any] = connectProtocol(endpoint, connection)  # type: ignore[no-untyped-call]
        connecting.addTimeout(self._connect_timeout, self._reactor)
        try:
            await connecting
            self._connections.add(connection)
            self.connections_made += 1
            remaining = max(0.001, self._connect_timeout - (self._reactor.seconds() - started))
            connection.handshake.addTimeout(remaining, self._reactor)
            await connection.handshake
        except BusError as err:
            self._failed_at[address] = self._reactor.seconds()
            connection.abort()
            raise NetworkError(
                "could not connect to the peer", reason=err.reason, origin=Origin.CLIENT_PROXY
            ) from err
        except Exception as err:  # refused, unreachable, timed out, TLS alert
            self._failed_at[address] = self._reactor.seconds()
            connection.abort()
            raise NetworkError("could not connect to the peer", reason=repr(err), origin=Origin.CLIENT_PROXY) from err
        self._latency[address] = self._reactor.seconds() - started
        self._failed_at.pop(address, None)
        log.debug("peer_connected", server=str(address.server), seconds=round(self._latency[address], 4))
        return connection

    async def _exchange(self, connection: _PeerConnection, data: bytes, timeout: float) -> RawResponse:
        answering = connection.exchange(data)
        answering.addTimeout(timeout, self._reactor)
        try:
            return await answering
        except defer.TimeoutError as err:
            raise IoError(
                "peer did not answer in time",
                reason=f"no complete response within {timeout} s",
                origin=Origin.CLIENT_PROXY,
            ) from err
        except BusError as err:
            raise err.at(Origin.CLIENT_PROXY)

    def _release(self, address: PeerAddress, connection: _PeerConnection, keep_alive: bool) -> None:
        session = connection.session()
        if session is not None:
            self._sessions[address] = session
        idle = self._idle.setdefault(address, [])
        if self._closed or not keep_alive or not connection.open or len(idle) >= self._max_idle:
            connection.close()
            return
        connection.idle_call = self._reactor.callLater(self._idle_timeout, self._expire, address, connection)
        idle.append(connection)

    def _expire(self, address: PeerAddress, connection: _PeerConnection) -> None:
        idle = self._idle.get(address, [])
        if connection in idle:
            idle.remove(connection)
        connection.close()

    def _lost(self, connection: _PeerConnection) -> None:
        self._connections.discard(connection)
        idle = self._idle.get(connection.address)
        if idle is not None and connection in idle:
            idle.remove(connection)

    def close(self) -> Deferred[None]:
        """Close every connection (for shutdown and tests); fires when all are gone."""
        self._closed = True
        waits = [connection.close() for connection in list(self._connections)]
        self._idle.clear()
        done: Deferred[None] = defer.gatherResults(waits).addCallback(lambda _: None)
        return done
