"""Calling a provider's own service from the provider's security server: the answer types, X-Road's verdicts on
a failed call, and the Agent-based client (REST calls, and SOAP services over https).

X-Road's ``translateException``: socket errors are ``service_failed.network_error``, other I/O failures (a timeout
included) ``service_failed.io_error``. Plain-http SOAP services are called by the lean pooled client
(security_server/proxy/provider_client.py), which gives the same verdicts through :func:`failure_to_service_failed`.

An ``https`` service is called with its :class:`ProviderTls` (X-Road's ``CustomSSLSocketFactory``): with
``ssl_auth`` the certificate the service presents must be one of the providing client's internal TLS certificates
(the very certificate: no chain, no host name, as X-Road), else ``ssl_authentication_failed``; without it the
certificate is not checked. Each rule has its own connection pool, so a connection made under one rule never
carries a call made under another. Given the server's internal TLS identity, the client presents that certificate to
the service, as X-Road does; a new internal certificate closes the pooled connections, so the next call presents it.
"""

from __future__ import annotations

import ipaddress
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Protocol, Sequence, cast

from cryptography.hazmat.primitives.serialization import Encoding
from OpenSSL import SSL, crypto
from twisted.internet import defer
from twisted.internet import error as net_error
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IOpenSSLClientConnectionCreator
from twisted.internet.protocol import Protocol as TwistedProtocol
from twisted.internet.protocol import connectionDone
from twisted.python.failure import Failure
from twisted.web.client import (
    Agent,
    HTTPConnectionPool,
    RequestGenerationFailed,
    RequestTransmissionFailed,
    ResponseDone,
    ResponseFailed,
    ResponseNeverReceived,
)
from twisted.web.http import PotentialDataLoss
from twisted.web.http_headers import Headers
from twisted.web.iweb import UNKNOWN_LENGTH, IBodyProducer, IPolicyForHTTPS, IResponse
from zope.interface import implementer

from security_server.core.errors import BusError, Origin, ServiceFailed, SslAuthenticationFailed
from security_server.management.tls import TlsIdentity
from security_server.serverconf.store import ServerConfSnapshot, Service


@dataclass(frozen=True, slots=True)
class ProviderTls:
    """How an ``https`` service's TLS certificate is checked (X-Road's ``sslAuthentication``): ``verify`` against
    ``trusted`` (the DER of the providing client's internal TLS certificates), or not at all."""

    verify: bool
    trusted: frozenset[bytes] = frozenset()


def provider_tls(snapshot: ServerConfSnapshot, service: Service) -> dict[str, ProviderTls]:
    """The keyword argument that gives a provider client the TLS rule of ``service``: none for an ``http``
    service (its clients, and test doubles, never see one)."""
    if not service.url.lower().startswith("https:"):
        return {}
    if not service.ssl_auth:
        return {"tls": ProviderTls(False)}
    return {"tls": ProviderTls(True, frozenset(c.der for c in snapshot.tls_certificates_of(service.id.client)))}


_VERIFY_FAILED = "certificate verify failed"
"""OpenSSL's reason when the verify callback refused the peer's certificate."""


@implementer(IOpenSSLClientConnectionCreator)
class _ServiceTlsCreator:
    """TLS client connections to one service host under one :class:`ProviderTls`."""

    def __init__(self, hostname: str, tls: ProviderTls, identity: TlsIdentity | None = None) -> None:
        self._tls = tls
        self._server_name = None if _is_ip(hostname) else hostname.encode("idna")
        context = SSL.Context(SSL.TLS_CLIENT_METHOD)
        context.set_min_proto_version(SSL.TLS1_2_VERSION)
        if identity is not None:
            # X-Road presents the server's internal TLS certificate to an https service (the service may check it).
            context.use_certificate(identity.cert)  # type: ignore[arg-type]  # pyOpenSSL takes cryptography objects
            context.use_privatekey(identity.key)  # type: ignore[arg-type]
            for extra in identity.chain:
                context.add_extra_chain_cert(crypto.X509.from_cryptography(extra))
        if tls.verify:
            context.set_verify(SSL.VERIFY_PEER, self._verify)
        else:
            context.set_verify(SSL.VERIFY_NONE)
        self._context = context

    def _verify(self, connection: SSL.Connection, cert: crypto.X509, errno: int, depth: int, ok: int) -> bool:
        # X-Road CustomSSLSocketFactory.checkServerTrusted: only the service's own (leaf) certificate counts, and it
        # must be one of the client's internal TLS certificates; the chain above it is not looked at.
        if depth > 0:
            return True
        return cert.to_cryptography().public_bytes(Encoding.DER) in self._tls.trusted

    def clientConnectionForTLS(self, tlsProtocol: Any) -> SSL.Connection:
        """A new client-side TLS connection (Twisted's ``IOpenSSLClientConnectionCreator``)."""
        connection = SSL.Connection(self._context, None)
        connection.set_app_data(tlsProtocol)
        if self._server_name is not None:
            connection.set_tlsext_host_name(self._server_name)
        connection.set_connect_state()
        return connection


def _is_ip(hostname: str) -> bool:
    try:
        ipaddress.ip_address(hostname)
    except ValueError:
        return False
    return True


@implementer(IPolicyForHTTPS)
class _ServiceTlsPolicy:
    """The Agent's TLS policy for services called under one :class:`ProviderTls`."""

    def __init__(self, tls: ProviderTls, identity: TlsIdentity | None = None) -> None:
        self._tls = tls
        self._identity = identity

    def creatorForNetloc(self, hostname: bytes, port: int) -> _ServiceTlsCreator:
        """The connection creator for ``hostname:port``."""
        return _ServiceTlsCreator(hostname.decode("ascii"), self._tls, self._identity)


def _tls_refused(failure: Failure) -> str | None:
    """OpenSSL's words when ``failure`` is the service's certificate refused by the verify callback, else None."""
    pending, seen = [failure], 0
    while pending and seen < 16:
        current, seen = pending.pop(), seen + 1
        value = current.value
        if isinstance(value, SSL.Error) and _VERIFY_FAILED in str(value):
            return str(value)
        pending.extend(r for r in getattr(value, "reasons", []) if isinstance(r, Failure))
    return None


@dataclass(frozen=True, slots=True)
class ProviderAnswer:
    """What the provider's service answered: HTTP status, content type and body."""

    status: int
    content_type: str
    body: bytes


class ProviderClient(Protocol):
    """Posts a SOAP request to a provider's service; ``tls`` (an ``https`` service's rule) is given only for an
    ``https`` service (:func:`provider_tls`)."""

    def post(
        self, url: str, body: bytes, headers: Mapping[str, str], timeout_seconds: float
    ) -> Deferred[ProviderAnswer]:
        """Fails with :class:`ServiceFailed` (origin server.serverproxy) saying why, or
        :class:`SslAuthenticationFailed` when an ``https`` service's certificate is not trusted."""
        ...


@dataclass(frozen=True, slots=True)
class ProviderReply:
    """A REST provider's answer: status, reason phrase, headers in order (names as sent) and body."""

    status: int
    reason: str
    headers: tuple[tuple[str, str], ...]
    body: bytes


class RestProviderClient(Protocol):
    """Makes a REST call to a provider's service (any method; redirects are not followed, pr-rest §4.4)."""

    def request(
        self, method: str, url: str, headers: Sequence[tuple[str, str]], body: bytes, timeout_seconds: float
    ) -> Deferred[ProviderReply]:
        """Fails with :class:`ServiceFailed` (origin server.serverproxy) saying why."""
        ...


@implementer(IBodyProducer)
class _BytesProducer:
    """A request body that is already in memory, written in one go."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self.length = len(data)

    def startProducing(self, consumer: Any) -> Deferred[None]:
        consumer.write(self._data)
        return defer.succeed(None)

    def pauseProducing(self) -> None:
        """Nothing to pause: everything was written at once."""

    def resumeProducing(self) -> None:
        """Nothing to resume."""

    def stopProducing(self) -> None:
        """Nothing to stop."""


class _LimitedBody(TwistedProtocol):
    """Collects a response body up to a limit; cancelling the read aborts the connection."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.chunks: list[bytes] = []
        self.size = 0
        self.finished: Deferred[bytes] = Deferred(self._cancel)

    def _cancel(self, _: Deferred[bytes]) -> None:
        if self.transport is not None:
            self.transport.stopProducing()  # aborts the connection (HTTP11ClientProtocol)

    def dataReceived(self, data: bytes) -> None:
        if self.finished.called:
            return
        self.size += len(data)
        if self.size > self.max_bytes:
            self.chunks = []
            if self.transport is not None:
                self.transport.stopProducing()
            self.finished.errback(
                ServiceFailed("Service response is too large", subcode="io_error", reason=f"more than {self.max_bytes} bytes")
            )
            return
        self.chunks.append(data)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        if self.finished.called:
            return
        if isinstance(reason.value, (ResponseDone, PotentialDataLoss)):
            self.finished.callback(b"".join(self.chunks))
        else:
            self.finished.errback(
                ServiceFailed("Service response could not be read", subcode="io_error", reason=str(reason.value))
            )


def failure_to_service_failed(failure: Failure, url: str, timeout_seconds: float) -> ServiceFailed:
    """X-Road's verdicts on a failed call (``translateException``): an unresolvable host is ``unknown_host``, other
    socket errors are ``network_error``, other I/O errors, a timeout included, ``io_error``."""
    value = failure.value
    if isinstance(value, ServiceFailed):
        return value
    if isinstance(value, (defer.TimeoutError, net_error.TimeoutError, defer.CancelledError)):
        return ServiceFailed(
            "Service did not answer in time", subcode="io_error", reason=f"{url} did not answer within {timeout_seconds} s"
        )
    if isinstance(value, net_error.DNSLookupError):  # X-Road: an UnknownHostException is unknown_host
        return ServiceFailed("Cannot resolve the service's host", subcode="unknown_host", reason=f"{url}: {value}")
    if isinstance(value, (net_error.ConnectError, net_error.ConnectionRefusedError)):
        return ServiceFailed("Cannot connect to the service", subcode="network_error", reason=f"{url}: {value}")
    if isinstance(value, (ResponseNeverReceived, ResponseFailed, RequestTransmissionFailed, RequestGenerationFailed)):
        reasons = getattr(value, "reasons", [])
        detail = "; ".join(str(r.value) for r in reasons) or str(value)
        return ServiceFailed("Service connection failed", subcode="io_error", reason=f"{url}: {detail}")
    if isinstance(value, BusError):
        return ServiceFailed(value.message, subcode=value.code, reason=value.reason)
    return ServiceFailed("Service call failed", subcode="io_error", reason=f"{url}: {value!r}")


MAX_TLS_RULES = 64
"""Connection pools kept for distinct TLS rules (a client's certificates changing makes a new rule); the least
recently used one is closed beyond this."""

DEFAULT_PROVIDER_POOL_SIZE = 64
"""Idle connections kept open per provider host: as many as the usual concurrency, else most calls under load
open a new TCP connection (bench/: with 16 kept and 50 in flight, four calls in five did)."""


class AgentProviderClient:
    """Calls providers with ``twisted.web.client.Agent`` over a pool of persistent connections."""

    def __init__(
        self,
        reactor: Any,
        *,
        max_response_bytes: int,
        pool: HTTPConnectionPool | None = None,
        max_persistent_per_host: int = DEFAULT_PROVIDER_POOL_SIZE,
        client_identity: Callable[[], TlsIdentity] | None = None,
    ) -> None:
        """``client_identity`` gives the key and certificate presented to ``https`` services (the server's internal
        TLS certificate, management/tls.py's :class:`InternalIdentity`); None presents none."""
        self._reactor = reactor
        self._client_identity = client_identity
        self._identity_in_use: TlsIdentity | None = None
        self._max_response_bytes = max_response_bytes
        if pool is None:
            pool = HTTPConnectionPool(reactor, persistent=True)  # type: ignore[no-untyped-call]
            pool.maxPersistentPerHost = max_persistent_per_host
        self.pool = pool
        self._agent = Agent(reactor, pool=pool)  # type: ignore[no-untyped-call]
        self._max_persistent_per_host = pool.maxPersistentPerHost
        self._tls_agents: OrderedDict[ProviderTls, tuple[Agent, HTTPConnectionPool]] = OrderedDict()

    def _agent_for(self, tls: ProviderTls | None) -> Agent:
        """The Agent for calls under ``tls`` (None: the default Agent, which checks an https certificate against
        the system's CAs), each rule with its own connection pool."""
        if tls is None:
            return self._agent
        if self._client_identity is not None:
            identity = self._client_identity()
            if identity is not self._identity_in_use:  # a new internal certificate: new connections present it
                self._identity_in_use = identity
                for _, old_pool in self._tls_agents.values():
                    old_pool.closeCachedConnections()  # type: ignore[no-untyped-call]
                self._tls_agents.clear()
        found = self._tls_agents.get(tls)
        if found is not None:
            self._tls_agents.move_to_end(tls)
            return found[0]
        pool = HTTPConnectionPool(self._reactor, persistent=True)  # type: ignore[no-untyped-call]
        pool.maxPersistentPerHost = self._max_persistent_per_host
        policy = _ServiceTlsPolicy(tls, self._identity_in_use)
        agent = Agent(self._reactor, contextFactory=policy, pool=pool)  # type: ignore[no-untyped-call]
        self._tls_agents[tls] = (agent, pool)
        while len(self._tls_agents) > MAX_TLS_RULES:
            _, (_, old_pool) = self._tls_agents.popitem(last=False)
            old_pool.closeCachedConnections()  # type: ignore[no-untyped-call]
        return agent

    def post(
        self, url: str, body: bytes, headers: Mapping[str, str], timeout_seconds: float,
        *, tls: ProviderTls | None = None,
    ) -> Deferred[ProviderAnswer]:
        """POST ``body`` to ``url``; the whole exchange, body included, must finish within ``timeout_seconds``."""
        http_headers = Headers({name.encode("latin-1"): [value.encode("latin-1")] for name, value in headers.items()})

        def answer(reply: ProviderReply) -> ProviderAnswer:
            content_type = next((v for n, v in reversed(reply.headers) if n.lower() == "content-type"), "")
            return ProviderAnswer(reply.status, content_type, reply.body)

        return self._exchange(b"POST", url, http_headers, body, timeout_seconds, tls).addCallback(answer)

    def request(
        self, method: str, url: str, headers: Sequence[tuple[str, str]], body: bytes, timeout_seconds: float,
        *, tls: ProviderTls | None = None,
    ) -> Deferred[ProviderReply]:
        """Make a REST call: ``method`` on ``url`` with ``headers`` (sent in order) and ``body`` (none when empty)."""
        http_headers = Headers()
        for name, value in headers:
            http_headers.addRawHeader(name.encode("latin-1"), value.encode("latin-1"))
        return self._exchange(method.encode("ascii"), url, http_headers, body, timeout_seconds, tls)

    def _exchange(
        self, method: bytes, url: str, http_headers: Headers, body: bytes, timeout_seconds: float,
        tls: ProviderTls | None = None,
    ) -> Deferred[ProviderReply]:
        """One request; the whole exchange, body included, must finish within ``timeout_seconds``."""
        producer = cast(IBodyProducer, _BytesProducer(body)) if body or method in (b"POST", b"PUT", b"PATCH") else None
        agent = self._agent_for(tls)
        requested: Deferred[IResponse] = agent.request(method, url.encode("ascii"), http_headers, producer)

        def got_response(response: IResponse) -> Deferred[ProviderReply]:
            if response.length is not UNKNOWN_LENGTH and response.length > self._max_response_bytes:
                cast(Any, response).deliverBody(TwistedProtocol())
                raise ServiceFailed("Service response is too large", subcode="io_error")
            reply_headers = tuple(
                (name.decode("latin-1"), value.decode("latin-1"))
                for name, values in response.headers.getAllRawHeaders()
                for value in values
            )
            reason = response.phrase.decode("latin-1") if isinstance(response.phrase, bytes) else str(response.phrase)
            collector = _LimitedBody(self._max_response_bytes)
            cast(Any, response).deliverBody(collector)
            return collector.finished.addCallback(lambda data: ProviderReply(response.code, reason, reply_headers, data))

        answered = requested.addCallback(got_response)
        # Our own timer rather than addTimeout: cancelling the Agent surfaces as ResponseNeverReceived or a
        # cancelled body read, and the verdict must still say "timeout" (the connection is aborted either way).
        timed_out: list[bool] = []

        def expire() -> None:
            timed_out.append(True)
            answered.cancel()

        timer = self._reactor.callLater(timeout_seconds, expire)

        def settled(result: ProviderReply | Failure) -> ProviderReply | Failure:
            if timer.active():
                timer.cancel()
            return result

        def failed(failure: Failure) -> ProviderReply:
            if timed_out:
                raise ServiceFailed(
                    "Service did not answer in time",
                    subcode="io_error",
                    reason=f"{url} did not answer within {timeout_seconds} s",
                )
            refused = _tls_refused(failure) if tls is not None and tls.verify else None
            if refused is not None:
                # X-Road CustomSSLSocketFactory: X_SSL_AUTH_FAILED, reported by the server proxy.
                raise SslAuthenticationFailed(
                    "Service's TLS certificate is not trusted", origin=Origin.SERVER_PROXY,
                    reason=f"{url}: the certificate is not one of the client's internal TLS certificates ({refused})",
                )
            raise failure_to_service_failed(failure, url, timeout_seconds)

        return answered.addBoth(settled).addErrback(failed)

    def close(self) -> Deferred[None]:
        """Close the pooled connections (at shutdown)."""
        pools = [self.pool, *(pool for _, pool in self._tls_agents.values())]
        self._tls_agents.clear()
        closing = [cast(Deferred[None], p.closeCachedConnections()) for p in pools]  # type: ignore[no-untyped-call]
        return defer.gatherResults(closing).addCallback(lambda _: None)
