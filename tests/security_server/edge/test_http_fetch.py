"""The bounded HTTP fetch against an in-memory agent on a fake clock: status, size cap, timeouts, failures.

The agent, the response and the body's transport are small fakes, so each test drives exactly the events it
names (headers arrive, a chunk arrives, the body ends, the clock moves) with no sockets and no real time.
The OCSP and TSA client tests run the same fetch against real loopback responders.
"""

from __future__ import annotations

from typing import Any, cast

import pytest
from twisted.internet.defer import Deferred
from twisted.internet.error import ConnectionRefusedError
from twisted.internet.protocol import Protocol
from twisted.internet.task import Clock
from twisted.python.failure import Failure
from twisted.web.client import ResponseDone
from twisted.web.http_headers import Headers
from twisted.web.iweb import UNKNOWN_LENGTH

from security_server.core.errors import BusError, NetworkError
from security_server.edge.http_fetch import HttpAnswer, fetch

URL = "http://127.0.0.1:9/ocsp"


class BodyTransport:
    """What a response body's protocol sees as its transport: records whether the reader dropped it."""

    def __init__(self) -> None:
        self.stopped = False

    def stopProducing(self) -> None:
        """The reader gives up: Twisted would drop the connection."""
        self.stopped = True


class FakeResponse:
    """An IResponse whose body the test feeds chunk by chunk."""

    def __init__(self, code: int, length: Any = UNKNOWN_LENGTH, content_type: bytes | None = None) -> None:
        self.code = code
        self.length = length
        self.headers = Headers({b"content-type": [content_type]} if content_type else {})
        self.transport = BodyTransport()
        self.protocol: Protocol | None = None

    def deliverBody(self, protocol: Protocol) -> None:
        """Hand the body to ``protocol``."""
        self.protocol = protocol
        cast(Any, protocol).makeConnection(self.transport)  # a fake of the body transport

    def send(self, data: bytes) -> None:
        """One chunk of body arrives (ignored once the reader has dropped the connection, as a socket would)."""
        assert self.protocol is not None
        if not self.transport.stopped:
            self.protocol.dataReceived(data)

    def end(self) -> None:
        """The body is complete."""
        assert self.protocol is not None
        self.protocol.connectionLost(Failure(ResponseDone()))  # type: ignore[no-untyped-call]


class FakeAgent:
    """Records each request and answers with a Deferred the test fires (or never fires)."""

    def __init__(self) -> None:
        self.requests: list[tuple[bytes, bytes, Headers, Any]] = []
        self.pending: Deferred[Any] = Deferred(lambda _: self.cancelled.append(True))
        self.cancelled: list[bool] = []

    def request(self, method: bytes, uri: bytes, headers: Headers, producer: Any = None) -> Deferred[Any]:
        """Record the request; its answer is ``self.pending``."""
        self.requests.append((method, uri, headers, producer))
        return self.pending


class Watched:
    """Keeps what a fetch's Deferred fires with (its answer or its exception); None while it waits."""

    def __init__(self, deferred: Deferred[Any]) -> None:
        self._result: Any = None
        deferred.addBoth(self._keep)

    def _keep(self, result: Any) -> None:
        self._result = result.value if isinstance(result, Failure) else result

    def now(self) -> Any:
        """What it has fired with by now."""
        return self._result


def start(clock: Clock, agent: FakeAgent, **options: Any) -> Watched:
    """A POST to URL of 64 bytes at most, timing out after 10 s unless ``options`` say otherwise."""
    settings: dict[str, Any] = {"what": "OCSP responder", "max_bytes": 64, "body": b"req",
                                "content_type": "application/ocsp-request", "timeout_seconds": 10.0}
    settings.update(options)
    return Watched(fetch(agent, clock, URL, **settings))


def test_a_200_answer_is_delivered_with_its_content_type_and_body() -> None:
    """A POST with the given content type and headers is sent; a 200 body is delivered whole."""
    clock, agent = Clock(), FakeAgent()
    answer = start(clock, agent, headers={"Accept": "application/ocsp-response"})
    method, uri, headers, producer = agent.requests[0]
    assert (method, uri) == (b"POST", URL.encode())
    assert list(headers.getAllRawHeaders()) == [
        (b"Content-Type", [b"application/ocsp-request"]), (b"Accept", [b"application/ocsp-response"])
    ]
    assert producer is not None and producer.length == 3
    response = FakeResponse(200, content_type=b"application/ocsp-response")
    agent.pending.callback(response)
    response.send(b"abc")
    response.send(b"def")
    response.end()
    assert answer.now() == HttpAnswer(200, "application/ocsp-response", b"abcdef")
    assert not clock.getDelayedCalls(), "the timeout is cancelled once the answer is in"


def test_without_a_body_it_is_a_get() -> None:
    """No body means GET with no body producer."""
    agent = FakeAgent()
    start(Clock(), agent, body=None, content_type=None)
    method, _, headers, producer = agent.requests[0]
    assert (method, producer) == (b"GET", None)
    assert not headers.hasHeader(b"content-type")


def test_an_unexpected_status_is_a_network_error_and_the_body_is_not_read() -> None:
    """A 404 fails with network_error naming the status and URL; the body's connection is dropped unread."""
    agent = FakeAgent()
    answer = start(Clock(), agent)
    response = FakeResponse(404)
    agent.pending.callback(response)
    error = answer.now()
    assert isinstance(error, NetworkError)
    assert error.message == "OCSP responder answered HTTP 404"
    assert error.reason == f"HTTP 404 from {URL}"
    assert response.transport.stopped


def test_any_status_is_read_when_the_caller_accepts_any() -> None:
    """With accept_status=None a refusal's body (a fault document) is delivered with its status."""
    agent = FakeAgent()
    answer = start(Clock(), agent, accept_status=None)
    response = FakeResponse(400, content_type=b"application/json")
    agent.pending.callback(response)
    response.send(b"{}")
    response.end()
    assert answer.now() == HttpAnswer(400, "application/json", b"{}")


def test_a_body_past_the_cap_is_cut_off_at_once() -> None:
    """The chunk that passes max_bytes fails the fetch and drops the connection; later chunks are never kept."""
    agent = FakeAgent()
    answer = start(Clock(), agent)
    response = FakeResponse(200)
    agent.pending.callback(response)
    response.send(b"x" * 64)
    assert answer.now() is None, "exactly the cap is still fine"
    response.send(b"x")
    error = answer.now()
    assert isinstance(error, NetworkError) and error.message == "OCSP responder sent more than 64 bytes"
    assert response.transport.stopped
    response.send(b"x" * 1000)  # a socket would not deliver this, and the reader must not care if it did
    response.end()


def test_an_announced_length_past_the_cap_is_refused_unread() -> None:
    """A Content-Length over the cap fails before a byte is read."""
    agent = FakeAgent()
    answer = start(Clock(), agent)
    response = FakeResponse(200, length=10_000_000)
    agent.pending.callback(response)
    assert isinstance(answer.now(), NetworkError)
    assert response.transport.stopped


def test_no_answer_in_time_is_a_network_error_and_the_request_is_cancelled() -> None:
    """A server that never answers: after the timeout the request is cancelled and the fetch says so."""
    clock, agent = Clock(), FakeAgent()
    answer = start(clock, agent)
    clock.advance(9.9)
    assert answer.now() is None
    clock.advance(0.1)
    error = answer.now()
    assert isinstance(error, NetworkError)
    assert error.message == "OCSP responder did not answer within 10 s"
    assert agent.cancelled == [True]


def test_a_body_that_trickles_past_the_timeout_is_dropped() -> None:
    """Headers in time but a body that never ends: the timeout covers the body too and drops the connection."""
    clock, agent = Clock(), FakeAgent()
    answer = start(clock, agent)
    response = FakeResponse(200)
    agent.pending.callback(response)
    for _ in range(10):
        response.send(b"x")
        clock.advance(1)
    error = answer.now()
    assert isinstance(error, NetworkError) and "did not answer within 10 s" in error.message
    assert response.transport.stopped


def test_a_refused_connection_is_a_network_error() -> None:
    """Whatever the agent fails with (here a refused connection) becomes network_error with the URL."""
    agent = FakeAgent()
    answer = start(Clock(), agent)
    agent.pending.errback(ConnectionRefusedError("127.0.0.1"))  # type: ignore[no-untyped-call]
    error = answer.now()
    assert isinstance(error, NetworkError) and error.message == "OCSP responder could not be reached"
    assert error.reason is not None and URL in error.reason


def test_a_body_cut_short_is_a_network_error() -> None:
    """A body that ends before its announced length is not taken as complete."""
    from twisted.web.client import PartialDownloadError

    agent = FakeAgent()
    answer = start(Clock(), agent)
    response = FakeResponse(200)
    agent.pending.callback(response)
    response.send(b"abc")
    assert response.protocol is not None
    response.protocol.connectionLost(Failure(PartialDownloadError(b"200")))  # type: ignore[no-untyped-call]
    error = answer.now()
    assert isinstance(error, NetworkError) and error.message == "OCSP responder cut its answer short"


def test_without_a_timeout_no_timer_is_set() -> None:
    """timeout_seconds=None leaves timing to the caller: nothing is scheduled on the clock."""
    clock = Clock()
    start(clock, FakeAgent(), timeout_seconds=None)
    assert not clock.getDelayedCalls()


def test_every_failure_is_a_bus_error() -> None:
    """A malformed URL (not ASCII) is a network_error too, not a stray exception."""
    answer = Watched(fetch(FakeAgent(), Clock(), "http://ex\u00e4mple/", what="TSA", max_bytes=1))
    error = answer.now()
    assert isinstance(error, BusError) and error.fault_code == "server.network_error"


def test_a_negative_cap_is_a_programming_error() -> None:
    """max_bytes below zero is refused at once."""
    with pytest.raises(ValueError):
        fetch(FakeAgent(), Clock(), URL, what="TSA", max_bytes=-1)
