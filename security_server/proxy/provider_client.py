"""A lean, pooled HTTP/1.1 client for calling providers' SOAP services over plain HTTP (performance issue 9).

The server proxy posts every SOAP request to the provider's own service. ``twisted.web.client.Agent`` costs about
2.5x as much per request as a client that writes the request in one go and reads the answer with a small
incremental parser (PERFORMANCE-NOTES B.6; the same measurement made :class:`~security_server.proxy.mtls.MtlsPeerLink`
lean). :class:`LeanProviderClient` is that client for ``http://`` services; it gives the same verdicts as
:class:`~security_server.proxy.provider_call.AgentProviderClient` (X-Road's ``translateException``: connection
failures are ``service_failed.network_error``, everything after, a timeout included, ``service_failed.io_error``)
and hands any other scheme (``https://``) to a fallback client.

One request at a time per connection (no pipelining); idle keep-alive connections are pooled per (host, port).
A POST is never retried: once its bytes are written the service may have acted on it (Twisted's Agent does not
retry non-idempotent methods either). A pooled connection the service has closed is simply never picked.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any, Mapping
from urllib.parse import urlsplit

import structlog
from twisted.internet import defer
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import HostnameEndpoint, connectProtocol
from twisted.python.failure import Failure

from security_server.core.errors import BusError, IoError, Origin, RequestTooLarge, ServiceFailed
from security_server.proxy.client_connection import ClientConnection
from security_server.proxy.connection_pool import ConnectionPool
from security_server.proxy.http1 import FIELD_VALUE, HOP_BY_HOP, FieldError, RawResponse, encode_post
from security_server.proxy.provider_call import (
    DEFAULT_PROVIDER_POOL_SIZE,
    ProviderAnswer,
    ProviderClient,
    ProviderTls,
    failure_to_service_failed,
)

log = structlog.get_logger(__name__)

_REQUEST_TARGET = re.compile(r"/[!-~]*")
"""The origin-form request target (RFC 9112 §3.2.1): an absolute path and query, printable ASCII, no spaces."""


@dataclass(frozen=True, slots=True)
class _Target:
    """Where an ``http://`` URL points: the (host, port) to connect to and the request line's parts."""

    host: str
    port: int
    request_target: bytes
    host_header: bytes


def _unusable(url: str, why: str) -> ServiceFailed:
    return ServiceFailed("Cannot connect to the service", subcode="network_error", reason=f"{url}: {why}")


def _unsendable(url: str, why: str) -> ServiceFailed:
    return ServiceFailed("Service request cannot be sent", subcode="io_error", reason=f"{url}: {why}")


@functools.lru_cache(maxsize=1024)
def _http_target(url: str) -> _Target | None:
    """The connection and request-line parts of an ``http://`` URL, None for another scheme (services are few:
    the answer is cached)."""
    try:
        parts = urlsplit(url)
        if parts.scheme != "http":
            return None
        port = parts.port
    except ValueError as err:
        raise _unusable(url, f"not a usable URL ({err})") from err
    if parts.username is not None or parts.password is not None:
        raise _unsendable(url, "a service URL must not carry user information")
    host = parts.hostname
    if not host:
        raise _unusable(url, "the URL names no host")
    port = 80 if port is None else port
    if not 0 < port < 65536:
        raise _unusable(url, f"port {port} is out of range")
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")  # the fragment is never sent
    if not _REQUEST_TARGET.fullmatch(target):
        raise _unsendable(url, "the path or query has characters that cannot be sent as they are")
    authority = f"[{host}]" if ":" in host else host
    if port != 80:
        authority = f"{authority}:{port}"
    try:
        host_header = authority.encode("ascii")
    except UnicodeEncodeError as err:
        raise _unsendable(url, "the host name is not ASCII") from err
    if not FIELD_VALUE.fullmatch(host_header):
        raise _unsendable(url, "the host name cannot be sent in a Host header")
    return _Target(host, port, target.encode("ascii"), host_header)


def _encode_request(url: str, target: _Target, body: bytes, headers: Mapping[str, str]) -> bytes:
    """The request head and body (RFC 9112 §3, §6.2: Content-Length framing, never chunked)."""
    fields = [
        ("Host", target.host_header.decode("ascii")),
        ("Content-Length", str(len(body))),
        *((name, value) for name, value in headers.items() if name.lower() not in HOP_BY_HOP),
    ]
    try:
        return encode_post(target.request_target, fields, body)
    except FieldError as err:
        raise _unsendable(url, str(err)) from err


class _ConnectionGone(IoError):
    """The connection was found unusable when a request was about to be written on it."""


class _ProviderConnection(ClientConnection):
    """One TCP connection to a provider's service, carrying one request at a time."""

    origin = Origin.SERVER_PROXY
    who = "service"

    def __init__(self, key: tuple[str, int], max_response_bytes: int) -> None:
        super().__init__(key, max_response_bytes)

    def _unusable(self) -> BusError:
        return _ConnectionGone("service connection is not usable", origin=Origin.SERVER_PROXY)

    def _cut_short(self, error: BusError, reason: Failure) -> BusError:
        error.reason = f"{error.reason} ({reason.getErrorMessage()})"
        return error

    def connectionMade(self) -> None:
        """The TCP connection is up."""
        self.open = True


def _verdict(failure: Failure, url: str, timeout_seconds: float, max_response_bytes: int) -> ServiceFailed:
    """The ServiceFailed for a failed call, worded as :class:`AgentProviderClient` words it."""
    value = failure.value
    if isinstance(value, RequestTooLarge):
        return ServiceFailed("Service response is too large", subcode="io_error", reason=f"more than {max_response_bytes} bytes")
    if isinstance(value, ServiceFailed):
        return value
    if isinstance(value, BusError):  # a malformed answer, or the connection dropped before it was complete
        return ServiceFailed("Service connection failed", subcode="io_error", reason=f"{url}: {value.message}: {value.reason}")
    return failure_to_service_failed(failure, url, timeout_seconds)


class LeanProviderClient:
    """A :class:`~security_server.proxy.server_proxy.ProviderClient` for ``http://`` services: lean HTTP/1.1 over
    pooled keep-alive connections; other schemes go to ``fallback``."""

    def __init__(
        self,
        reactor: Any,
        *,
        max_response_bytes: int,
        max_idle_per_host: int = DEFAULT_PROVIDER_POOL_SIZE,
        idle_timeout: float = 30.0,
        fallback: ProviderClient | None = None,
    ) -> None:
        """``max_idle_per_host`` bounds the connections kept open per (host, port) between calls (extra ones are
        closed); ``idle_timeout`` closes a kept connection after that long unused. ``fallback`` takes the URLs
        that are not ``http://`` (none: they are refused)."""
        if max_response_bytes < 0:
            raise ValueError("max_response_bytes must not be negative")
        if max_idle_per_host < 0:
            raise ValueError("max_idle_per_host must not be negative")
        self._reactor = reactor
        self._max_response_bytes = max_response_bytes
        self.fallback = fallback
        self._pool: ConnectionPool[_ProviderConnection] = ConnectionPool(
            reactor, max_idle=max_idle_per_host, idle_timeout=idle_timeout
        )
        self._close_waiters: list[Deferred[None]] = []
        self._close_outcome: tuple[Failure | None] | None = None

    @property
    def connections_made(self) -> int:
        """How many TCP connections this client has opened (a figure for logs and tests)."""
        return self._pool.connections_made

    @property
    def idle_connections(self) -> int:
        """How many open connections wait in the pool right now."""
        return self._pool.idle_count()

    def post(
        self, url: str, body: bytes, headers: Mapping[str, str], timeout_seconds: float, **tls: ProviderTls
    ) -> Deferred[ProviderAnswer]:
        """POST ``body`` to ``url``; the whole exchange, body included, must finish within ``timeout_seconds``.
        ``tls`` (an ``https`` service's rule, :func:`~security_server.proxy.provider_call.provider_tls`) goes to the
        fallback with the call."""
        try:
            target = _http_target(url)
        except ServiceFailed as err:
            return defer.fail(err)
        if target is None:
            if self.fallback is not None:
                return self.fallback.post(url, body, headers, timeout_seconds, **tls)
            scheme = urlsplit(url).scheme or "(none)"
            return defer.fail(_unusable(url, f"URL scheme {scheme[:20]!r} is not supported"))
        try:
            data = _encode_request(url, target, body, headers)
        except ServiceFailed as err:
            return defer.fail(err)
        if self._pool.closed:
            return defer.fail(_unusable(url, "the provider client is closed"))

        answered = Deferred.fromCoroutine(self._call(target, data, timeout_seconds))
        # Our own timer (as AgentProviderClient): cancelling aborts the connection, or the connection attempt.
        timed_out: list[bool] = []

        def expire() -> None:
            timed_out.append(True)
            answered.cancel()

        timer = self._reactor.callLater(timeout_seconds, expire)

        def settled(result: RawResponse | Failure) -> RawResponse | Failure:
            if timer.active():
                timer.cancel()
            return result

        def answer(raw: RawResponse) -> ProviderAnswer:
            return ProviderAnswer(raw.status, raw.headers.get("content-type", ""), raw.body)

        def failed(failure: Failure) -> ProviderAnswer:
            if timed_out:
                raise ServiceFailed(
                    "Service did not answer in time",
                    subcode="io_error",
                    reason=f"{url} did not answer within {timeout_seconds} s",
                )
            raise _verdict(failure, url, timeout_seconds, self._max_response_bytes)

        return answered.addBoth(settled).addCallbacks(answer, failed)

    async def _call(self, target: _Target, data: bytes, timeout_seconds: float) -> RawResponse:
        key = (target.host, target.port)
        connection = self._pool.take_idle(key)
        if connection is None:
            connection = await self._open(key, timeout_seconds)
        raw = await connection.exchange(data)
        self._pool.release(connection, raw.keep_alive)
        return raw

    async def _open(self, key: tuple[str, int], timeout_seconds: float) -> _ProviderConnection:
        host, port = key
        connection = _ProviderConnection(key, self._max_response_bytes)
        endpoint = HostnameEndpoint(self._reactor, host, port, timeout=timeout_seconds)
        connecting: Deferred[Any] = connectProtocol(endpoint, connection)  # type: ignore[no-untyped-call]
        await connecting
        if self._pool.closed:
            connection.abort()
            raise ServiceFailed(
                "Cannot connect to the service", subcode="network_error", reason="the provider client was closed"
            )
        self._pool.add(connection)
        log.debug("provider_connected", host=host, port=port)
        return connection

    def close(self) -> Deferred[None]:
        """Close every pooled connection and the fallback (at shutdown); fires when all are gone.

        Calls after the first close nothing more and fire when the first close has finished.
        """
        waiter: Deferred[None] = Deferred()
        if self._close_outcome is not None:
            _fire(waiter, self._close_outcome[0])
            return waiter
        self._close_waiters.append(waiter)
        if not self._pool.closed:
            waits: list[Deferred[Any]] = [self._pool.close()]
            close_fallback = getattr(self.fallback, "close", None)
            if close_fallback is not None:
                waits.append(defer.maybeDeferred(close_fallback))
            defer.gatherResults(waits, consumeErrors=True).addBoth(self._closed_all)
        return waiter

    def _closed_all(self, outcome: object) -> None:
        if isinstance(outcome, Failure) and isinstance(outcome.value, defer.FirstError):
            outcome = outcome.value.subFailure
        self._close_outcome = (outcome if isinstance(outcome, Failure) else None,)
        waiters, self._close_waiters = self._close_waiters, []
        for waiter in waiters:
            _fire(waiter, self._close_outcome[0])


def _fire(waiter: Deferred[None], failure: Failure | None) -> None:
    if failure is None:
        waiter.callback(None)
    else:
        waiter.errback(failure)
