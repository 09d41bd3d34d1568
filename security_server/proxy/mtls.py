"""The network between security servers: mutual TLS and the pooled client link.

XROAD-REFERENCE.md §4.3: security servers talk HTTP/1.1 over TLS 1.2+ and both present their authentication
certificates. TLS here only proves that each side holds the key of the certificate it showed; *whether* that
certificate is acceptable is decided at application level against the global configuration in force at the
time (it changes while connections live): the client link calls ``verify_peer`` before it writes a single
request byte, and the server proxy's handler checks the client's certificate with every request
(security_server/core/peerauth.py). The server *requires* a certificate (``VERIFY_PEER |
VERIFY_FAIL_IF_NO_PEER_CERT``) and, given a :class:`ClientCertPolicy` (proxy/peer_admission.py), refuses in the
handshake one that does not chain to an approved CA of the configuration in force (its context is remade when the
approved CAs change, so that no session from before resumes); the client's verify callback accepts any certificate
OpenSSL could parse and leaves the decision to ``verify_peer``.

Two pieces (the server proxy's listener, which uses the first, is proxy/server_proxy_site.py):

* :func:`server_context_factory` / :class:`PeerTlsOptions`: TLS 1.2 minimum (1.3 allowed), X-Road's TLS 1.2
  cipher preference after the AEAD suites, session resumption on (session cache and tickets; PERFORMANCE-NOTES
  B.5: Twisted turns both off by default, and a resumed handshake costs about half a full one).
* :class:`MtlsPeerLink`: the client side. A lean HTTP/1.1 client over persistent mutual-TLS connections pooled
  per peer (PERFORMANCE-NOTES B.6: twisted's Agent costs about 2.5x as much per hop). Peers are tried in order
  of their best recent connect time (X-Road's "fastest connection" choice, UC-MESS §3.3), and the next one is
  tried when a peer cannot be connected to or its certificate is refused.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any, Protocol, Sequence, cast

import structlog
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from OpenSSL import SSL
from twisted.internet import defer
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import HostnameEndpoint, connectProtocol, wrapClientTLS
from twisted.internet.interfaces import (
    IHandshakeListener,
    IOpenSSLClientConnectionCreator,
    IOpenSSLServerConnectionCreator,
)
from twisted.internet.protocol import connectionDone
from twisted.internet.ssl import AcceptableCiphers, CertificateOptions, TLSVersion
from twisted.python.failure import Failure
from zope.interface import implementer

from security_server.core.errors import (
    BusError,
    InternalError,
    IoError,
    NetworkError,
    Origin,
    SslAuthenticationFailed,
)
from security_server.proxy.bounded_request import DEFAULT_MAX_BODY_BYTES
from security_server.proxy.client_connection import ClientConnection
from security_server.proxy.connection_pool import ConnectionPool
from security_server.proxy.http1 import HOP_BY_HOP, FieldError, RawResponse, encode_post
from security_server.proxy.locallink import PeerVerifier, all_peers_failed, run_verifier
from security_server.proxy.peerlink import PeerAddress, PeerRequest, PeerResponse
from security_server.signer.token import PrivateKey, Token

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

_NOT_FORWARDED = HOP_BY_HOP | {"content-type"}
"""Headers never copied between a PeerRequest/PeerResponse header map and the wire: one hop's, and the content type
(a field of its own)."""
_PATH = re.compile(r"/[!-~]*")


# --- TLS options ----------------------------------------------------------------------------------------


def _accept_any_certificate(connection: SSL.Connection, certificate: Any, error: int, depth: int, ok: int) -> bool:
    """TLS verify callback: any certificate OpenSSL could parse passes; trust is decided by peerauth."""
    return True


class ClientCertPolicy(Protocol):
    """Which client certificates the server's TLS handshake accepts (proxy/peer_admission.py's PeerAdmission)."""

    def trust_generation(self) -> bytes:
        """Changes exactly when the set of acceptable issuers does (a new TLS context is made then)."""

    def tls_accepts(self, cert_der: bytes) -> bool:
        """Whether the handshake may complete with this client certificate (DER)."""


def _refusing_callback(policy: ClientCertPolicy) -> Any:
    """A TLS verify callback that decides on the client's own certificate (depth 0) by ``policy``.

    OpenSSL has no trust store here, so it reports the chain as unverifiable; the callback accepts the issuers'
    depths and decides at depth 0, which OpenSSL always reaches last while the callback accepts.
    """

    def verify(connection: SSL.Connection, certificate: Any, error: int, depth: int, ok: int) -> bool:
        if depth != 0:
            return True
        try:
            der: bytes = certificate.to_cryptography().public_bytes(serialization.Encoding.DER)
            return policy.tls_accepts(der)
        except Exception as err:  # noqa: BLE001 - an exception here would escape into the reactor: refuse
            log.error("server_proxy_handshake_check_failed", error=repr(err))
            return False

    return verify


@implementer(IOpenSSLServerConnectionCreator, IOpenSSLClientConnectionCreator)
class PeerTlsOptions:
    """One OpenSSL context with our authentication key and certificate, for either end of SS-to-SS TLS.

    A server with a ``client_policy`` keeps one context per trust generation of the policy.
    """

    def __init__(
        self, key: PrivateKey, cert: x509.Certificate, *, server: bool, client_policy: ClientCertPolicy | None = None
    ) -> None:
        self._key = key
        self._server = server
        self._policy = client_policy if server else None
        self.certificate = cert
        self._generation = self._policy.trust_generation() if self._policy is not None else b""
        self.context: SSL.Context = self._make_context()

    def _make_context(self) -> SSL.Context:
        options = CertificateOptions(
            privateKey=self._key,  # type: ignore[arg-type]  # pyOpenSSL takes cryptography keys; Twisted's hints lag
            certificate=self.certificate,  # type: ignore[arg-type]
            raiseMinimumTo=TLSVersion.TLSv1_2,
            enableSessions=True,
            enableSessionTickets=True,
            acceptableCiphers=AcceptableCiphers.fromOpenSSLCipherString(TLS12_CIPHERS),  # type: ignore[no-untyped-call]
        )
        context: SSL.Context = options.getContext()
        if self._server:
            # The client must present a certificate; with a policy, one it accepts (else per request, later).
            callback = _accept_any_certificate if self._policy is None else _refusing_callback(self._policy)
            context.set_verify(SSL.VERIFY_PEER | SSL.VERIFY_FAIL_IF_NO_PEER_CERT, callback)
        else:
            context.set_verify(SSL.VERIFY_PEER, _accept_any_certificate)
            context.set_session_cache_mode(SSL.SESS_CACHE_CLIENT)
        return context

    def serverConnectionForTLS(self, tlsProtocol: Any) -> SSL.Connection:
        """A server-side connection (IOpenSSLServerConnectionCreator), in a new context once the trust changed."""
        if self._policy is not None:
            generation = self._policy.trust_generation()
            if generation != self._generation:
                self._generation = generation
                self.context = self._make_context()
                log.info("server_proxy_tls_trust_changed")
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


def server_context_factory(
    token: Token, *, now: datetime | None = None, client_policy: ClientCertPolicy | None = None
) -> PeerTlsOptions:
    """TLS options for the server proxy's port: our auth key and certificate, a client certificate required (one
    ``client_policy`` accepts, when given)."""
    key, cert = token.auth_key(now=now)
    return PeerTlsOptions(key, cert, server=True, client_policy=client_policy)


def peer_cert_of(handle: Any) -> bytes | None:
    """The DER certificate of an OpenSSL connection's peer (types-pyOpenSSL lags ``as_cryptography``)."""
    cert: x509.Certificate | None = handle.get_peer_certificate(as_cryptography=True)
    return None if cert is None else cert.public_bytes(serialization.Encoding.DER)



# --- the client side: a lean HTTP/1.1 client over pooled mutual-TLS connections ---------------------------


def _encode_request(address: PeerAddress, request: PeerRequest) -> bytes:
    """The HTTP/1.1 request head and body (RFC 9112 §3, §6.2: Content-Length framing, no chunking)."""
    if not _PATH.fullmatch(request.path):
        raise InternalError("request path is not an absolute path", reason=repr(request.path))
    host = f"[{address.host}]" if ":" in address.host else address.host
    fields = [
        ("Host", f"{host}:{address.port}"),
        ("Content-Type", request.content_type),
        ("Content-Length", str(len(request.body))),
        *((name, value) for name, value in request.headers.items() if name.lower() not in _NOT_FORWARDED),
    ]
    try:
        return encode_post(request.path.encode("ascii"), fields, request.body)
    except FieldError as err:
        problem = "is not Latin-1" if err.problem == "is not Latin-1" else "has a bad name or value"
        raise InternalError(f"request header {problem}", reason=err.reason) from err


class _ClosedEarly(IoError):
    """The connection closed before any byte of the response arrived (a pooled connection may have gone stale)."""


class _OurCertificateRefused(NetworkError):
    """The peer ended the connection with a TLS certificate alert before answering: it refused *our* certificate.

    With TLS 1.3 the client's handshake is over before the server has checked the client's certificate, so a
    server proxy that refuses it (proxy/peer_admission.py) says so only after the request was written. It never read
    the request (TLS delivers no application data from a client it refused), so the next peer may be tried, as
    when the refusal ends a TLS 1.2 handshake.
    """


_CERTIFICATE_ALERT = re.compile(
    r"alert (unknown ca|bad certificate|unsupported certificate|certificate (unknown|required|revoked|expired)"
    r"|access denied)",
    re.IGNORECASE,
)
"""OpenSSL's text for a TLS alert that refuses the client's certificate (RFC 8446 §6.2)."""


@implementer(IHandshakeListener)
class _PeerConnection(ClientConnection):
    """One mutual-TLS connection to a peer, carrying one request at a time."""

    def __init__(self, address: PeerAddress, max_response_bytes: int) -> None:
        super().__init__(address, max_response_bytes)
        self.address = address
        self.handshake: Deferred[None] = Deferred(lambda _: self.abort())
        self.cert_der = b""

    def _unusable(self) -> BusError:
        return _ClosedEarly("connection is not usable", origin=Origin.CLIENT_PROXY)

    def _cut_short(self, error: BusError, reason: Failure) -> BusError:
        if not self._received_any and isinstance(reason.value, SSL.Error):
            if _CERTIFICATE_ALERT.search(str(reason.value)):
                return _OurCertificateRefused(
                    "peer refused our TLS certificate", reason=str(reason.value), origin=Origin.CLIENT_PROXY
                )
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
        cert_der = peer_cert_of(transport.getHandle())
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
        token: Token,
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
        self._max_response_bytes = max_response_bytes
        self._backoff = failure_backoff_seconds
        self._tls = self._load_tls()
        self._pool: ConnectionPool[_PeerConnection] = ConnectionPool(
            reactor, max_idle=max_idle_per_peer, idle_timeout=idle_timeout
        )
        self._latency: dict[PeerAddress, float] = {}
        self._failed_at: dict[PeerAddress, float] = {}
        self._sessions: dict[PeerAddress, SSL.Session] = {}

    @property
    def connections_made(self) -> int:
        """How many TLS connections this link has opened (a figure for logs and tests)."""
        return self._pool.connections_made

    def pool_connections(self) -> dict[str, int]:
        """Open connections to peers by state, ``idle`` and ``active`` (``fedbus_peer_pool_connections``)."""
        idle = self._pool.idle_count()
        return {"idle": idle, "active": max(0, self._pool.open_count - idle)}

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
        if self._pool.closed:
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
            except _OurCertificateRefused as err:
                failures.append((address, err.reason))
                continue
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
            self._release(connection, raw.keep_alive)
            return PeerResponse(
                status=raw.status,
                content_type=raw.headers.get("content-type", ""),
                body=raw.body,
                headers={k: v for k, v in raw.headers.items() if k not in _NOT_FORWARDED},
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
            return (recently_failed, not self._pool.idle_count(address), self._latency.get(address, 0.0), index)

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
        while reuse and (connection := self._pool.take_idle(address)) is not None:
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
        creator = _ResumingClientCreator(self._tls, self._sessions.get(address))
        tcp: Any = HostnameEndpoint(self._reactor, address.host, address.port, timeout=self._connect_timeout)
        endpoint = wrapClientTLS(cast(Any, creator), tcp)
        connecting: Deferred[Any] = connectProtocol(endpoint, connection)  # type: ignore[no-untyped-call]
        connecting.addTimeout(self._connect_timeout, self._reactor)
        try:
            await connecting
            self._pool.add(connection)
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

    def _release(self, connection: _PeerConnection, keep_alive: bool) -> None:
        session = connection.session()
        if session is not None:
            self._sessions[connection.address] = session
        self._pool.release(connection, keep_alive)

    def close(self) -> Deferred[None]:
        """Close every connection (for shutdown and tests); fires when all are gone."""
        return self._pool.close()
