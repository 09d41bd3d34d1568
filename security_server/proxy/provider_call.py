"""Calling a provider's own service from the provider's security server: the answer types, X-Road's verdicts on
a failed call, and the Agent-based client (REST calls, and SOAP services over https).

X-Road's ``translateException``: socket errors are ``service_failed.network_error``, other I/O failures (a timeout
included) ``service_failed.io_error``. Plain-http SOAP services are called by the lean pooled client
(security_server/proxy/provider_client.py), which gives the same verdicts through :func:`failure_to_service_failed`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Protocol, Sequence, cast

from twisted.internet import defer
from twisted.internet import error as net_error
from twisted.internet.defer import Deferred
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
from twisted.web.iweb import UNKNOWN_LENGTH, IBodyProducer, IResponse
from zope.interface import implementer

from security_server.core.errors import BusError, ServiceFailed


@dataclass(frozen=True, slots=True)
class ProviderAnswer:
    """What the provider's service answered: HTTP status, content type and body."""

    status: int
    content_type: str
    body: bytes


class ProviderClient(Protocol):
    """Posts a SOAP request to a provider's service."""

    def post(
        self, url: str, body: bytes, headers: Mapping[str, str], timeout_seconds: float
    ) -> Deferred[ProviderAnswer]:
        """Fails with :class:`ServiceFailed` (origin server.serverproxy) saying why."""
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
    ) -> None:
        self._reactor = reactor
        self._max_response_bytes = max_response_bytes
        if pool is None:
            pool = HTTPConnectionPool(reactor, persistent=True)  # type: ignore[no-untyped-call]
            pool.maxPersistentPerHost = max_persistent_per_host
        self.pool = pool
        self._agent = Agent(reactor, pool=pool)  # type: ignore[no-untyped-call]

    def post(
        self, url: str, body: bytes, headers: Mapping[str, str], timeout_seconds: float
    ) -> Deferred[ProviderAnswer]:
        """POST ``body`` to ``url``; the whole exchange, body included, must finish within ``timeout_seconds``."""
        http_headers = Headers({name.encode("latin-1"): [value.encode("latin-1")] for name, value in headers.items()})

        def answer(reply: ProviderReply) -> ProviderAnswer:
            content_type = next((v for n, v in reversed(reply.headers) if n.lower() == "content-type"), "")
            return ProviderAnswer(reply.status, content_type, reply.body)

        return self._exchange(b"POST", url, http_headers, body, timeout_seconds).addCallback(answer)

    def request(
        self, method: str, url: str, headers: Sequence[tuple[str, str]], body: bytes, timeout_seconds: float
    ) -> Deferred[ProviderReply]:
        """Make a REST call: ``method`` on ``url`` with ``headers`` (sent in order) and ``body`` (none when empty)."""
        http_headers = Headers()
        for name, value in headers:
            http_headers.addRawHeader(name.encode("latin-1"), value.encode("latin-1"))
        return self._exchange(method.encode("ascii"), url, http_headers, body, timeout_seconds)

    def _exchange(
        self, method: bytes, url: str, http_headers: Headers, body: bytes, timeout_seconds: float
    ) -> Deferred[ProviderReply]:
        """One request; the whole exchange, body included, must finish within ``timeout_seconds``."""
        producer = cast(IBodyProducer, _BytesProducer(body)) if body or method in (b"POST", b"PUT", b"PATCH") else None
        requested: Deferred[IResponse] = self._agent.request(method, url.encode("ascii"), http_headers, producer)

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
            raise failure_to_service_failed(failure, url, timeout_seconds)

        return answered.addBoth(settled).addErrback(failed)

    def close(self) -> Deferred[None]:
        """Close the pooled connections (at shutdown)."""
        return cast(Deferred[None], self.pool.closeCachedConnections())  # type: ignore[no-untyped-call]
