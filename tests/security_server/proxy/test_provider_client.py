"""LeanProviderClient against real HTTP services on loopback: answers, pooling, verdicts and shutdown."""

from __future__ import annotations

from typing import Any, Mapping

import pytest
from twisted.internet import defer
from twisted.internet import reactor as _reactor
from twisted.internet.defer import Deferred
from twisted.internet.protocol import Factory, Protocol
from twisted.trial import unittest
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request, Site

from security_server.core.errors import ServiceFailed
from security_server.proxy.provider_client import LeanProviderClient, _http_target
from security_server.proxy.provider_call import ProviderAnswer
from tests.loopback import ClockedLoopback, ConnectionWatch, coroutine_test, free_port

reactor: Any = _reactor
SOAP = "text/xml; charset=utf-8"
HEADERS = {"Content-Type": SOAP, "SOAPAction": '"urn:getPerson"'}
BIG = 5000

class Service(Resource):
    """A provider's service: the path says how it answers; ``calls`` records (uri, headers, body)."""

    isLeaf = True

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.calls: list[tuple[bytes, dict[str, list[bytes]], bytes]] = []
        self.hanging: list[Request] = []
        self._hung: list[Deferred[None]] = []

    def hung(self) -> Deferred[None]:
        """Fires when the next request to ``/hang`` has arrived (and is being held)."""
        waiter: Deferred[None] = Deferred()
        self._hung.append(waiter)
        return waiter

    def render_POST(self, request: Request) -> bytes | int:
        """Answer as the path says: echo, close, hang, big, chunked, fault."""
        content: Any = request.content
        body: bytes = content.read()
        headers = {name.decode("latin-1").lower(): list(values) for name, values in request.requestHeaders.getAllRawHeaders()}
        self.calls.append((request.uri, headers, body))
        path = request.path
        if path == b"/hang":
            self.hanging.append(request)
            waiters, self._hung = self._hung, []
            for waiter in waiters:
                waiter.callback(None)
            return NOT_DONE_YET
        if path == b"/chunked":  # no Content-Length: twisted.web sends HTTP/1.1 chunked
            request.setHeader(b"content-type", b"text/plain")  # type: ignore[no-untyped-call]
            request.write(b"part one, ")  # type: ignore[no-untyped-call]
            request.write(b"part two")  # type: ignore[no-untyped-call]
            request.finish()  # type: ignore[no-untyped-call]
            return NOT_DONE_YET
        if path == b"/big-chunked":
            for _ in range(BIG // 100):
                request.write(b"c" * 100)  # type: ignore[no-untyped-call]
            request.finish()  # type: ignore[no-untyped-call]
            return NOT_DONE_YET
        if path == b"/big":
            return b"b" * BIG
        if path == b"/close":  # says close but leaves the connection open: the client must not reuse it
            request.setHeader(b"connection", b"close")  # type: ignore[no-untyped-call]
        if path == b"/fault":
            request.setResponseCode(500)
        request.setHeader(b"content-type", SOAP.encode("ascii"))  # type: ignore[no-untyped-call]
        return b"echo:" + body


class RawAnswer(Protocol):
    """A TCP server that answers the first bytes it gets with ``factory.answer``, then closes if told to."""

    def dataReceived(self, data: bytes) -> None:
        """Write the canned answer once."""
        factory: Any = self.factory
        transport: Any = self.transport
        if getattr(self, "answered", False):
            return
        self.answered = True
        transport.write(factory.answer)
        if factory.close_after:
            transport.loseConnection()


class QuietSite(Site):
    """A Site without an access log."""

    def log(self, request: Any) -> None:
        """No access log."""


class LeanProviderClientTest(unittest.TestCase):
    """A twisted.web service on 127.0.0.1 and a LeanProviderClient calling it."""

    timeout = 30

    def setUp(self) -> None:
        self.clients: list[LeanProviderClient] = []
        self.listening: list[tuple[ConnectionWatch, Any]] = []
        self.service = Service()
        self.server = ConnectionWatch()
        self.port = self.listen(self.server, QuietSite(self.service))  # type: ignore[no-untyped-call]
        self.client = self.make_client()

    def listen(self, watch: ConnectionWatch, factory: Any) -> Any:
        """Listen on a loopback port, the connections watched (stopped at tear-down)."""
        port = reactor.listenTCP(0, watch.factory(factory), interface="127.0.0.1")
        self.listening.append((watch, port))
        return port

    def make_client(self, on: Any = None, **options: Any) -> LeanProviderClient:
        """A client (on the real reactor unless ``on`` is given) with a 1 MiB response limit unless told otherwise;
        closed at tear-down."""
        options.setdefault("max_response_bytes", 1 << 20)
        client = LeanProviderClient(reactor if on is None else on, **options)
        self.clients.append(client)
        return client

    @defer.inlineCallbacks
    def tearDown(self) -> Any:  # type: ignore[override]  # trial waits for the Deferred
        """Close the clients, wait for the servers to see their connections go, then stop listening."""
        for client in self.clients:
            yield client.close()
        for watch, port in self.listening:
            yield watch.closed()
            yield port.stopListening()

    def url(self, path: str, port: Any = None) -> str:
        """The service URL for ``path``."""
        return f"http://127.0.0.1:{(port or self.port).getHost().port}{path}"

    async def post(
        self, path: str, body: bytes = b"<request/>", *, client: LeanProviderClient | None = None,
        headers: Mapping[str, str] = HEADERS, timeout: float = 5.0, port: Any = None,
    ) -> ProviderAnswer:
        """POST through ``client`` (the test's by default)."""
        answer: ProviderAnswer = await (client or self.client).post(self.url(path, port), body, headers, timeout)
        return answer

    async def refused(self, path: str, **options: Any) -> ServiceFailed:
        """POST and expect a ServiceFailed, which is returned."""
        with pytest.raises(ServiceFailed) as caught:
            await self.post(path, **options)
        return caught.value

    def raw_server(self, answer: bytes, *, close_after: bool) -> Any:
        """A raw TCP server writing ``answer`` to the first request; its port."""
        inner = Factory.forProtocol(RawAnswer)
        inner.answer = answer  # type: ignore[attr-defined]
        inner.close_after = close_after  # type: ignore[attr-defined]
        self.raw = ConnectionWatch()
        return self.listen(self.raw, inner)

    # --- answers ------------------------------------------------------------------------------------------------

    @coroutine_test
    async def test_post_is_answered_with_status_content_type_and_body(self) -> None:
        """A POST reaches the service with its body and SOAPAction; status, Content-Type and body come back."""
        answer = await self.post("/echo", b"<getPerson/>")
        assert answer == ProviderAnswer(200, SOAP, b"echo:<getPerson/>")
        [(uri, headers, body)] = self.service.calls
        assert (uri, body) == (b"/echo", b"<getPerson/>")
        assert headers["content-type"] == [SOAP.encode("ascii")]
        assert headers["soapaction"] == [b'"urn:getPerson"']
        assert headers["content-length"] == [b"12"]
        assert headers["host"] == [b"127.0.0.1:%d" % self.port.getHost().port]

    @coroutine_test
    async def test_status_500_is_delivered_not_failed(self) -> None:
        """An HTTP 500 (a SOAP fault) is an answer for the server proxy to judge, not a client failure."""
        answer = await self.post("/fault")
        assert (answer.status, answer.body) == (500, b"echo:<request/>")

    @coroutine_test
    async def test_query_is_sent_and_fragment_dropped(self) -> None:
        """The request target is the path and query of the URL; the fragment never leaves."""
        await self.post("/echo?wsdl=1&x=%20y#part")
        assert self.service.calls[0][0] == b"/echo?wsdl=1&x=%20y"

    @coroutine_test
    async def test_hop_by_hop_headers_of_the_caller_are_not_copied(self) -> None:
        """Connection, Transfer-Encoding, Host, Content-Length and the like from the caller never reach the wire."""
        headers = {
            **HEADERS, "Connection": "close", "Transfer-Encoding": "chunked", "Host": "evil.example",
            "Content-Length": "999", "Keep-Alive": "timeout=5", "TE": "trailers", "Upgrade": "h2c", "X-Kept": "yes",
        }
        answer = await self.post("/echo", b"abc", headers=headers)
        assert answer.body == b"echo:abc"
        seen = self.service.calls[0][1]
        for name in ("connection", "transfer-encoding", "keep-alive", "te", "upgrade"):
            assert name not in seen, name
        assert seen["host"] == [b"127.0.0.1:%d" % self.port.getHost().port]
        assert seen["content-length"] == [b"3"]
        assert seen["x-kept"] == [b"yes"]

    @coroutine_test
    async def test_missing_content_type_is_empty(self) -> None:
        """An answer without Content-Type has content_type "" (the server proxy then judges it)."""
        port = self.raw_server(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", close_after=False)
        answer = await self.post("/", port=port)
        assert answer == ProviderAnswer(200, "", b"ok")

    @coroutine_test
    async def test_chunked_response_is_assembled(self) -> None:
        """A chunked answer arrives whole, and its connection is kept for the next call."""
        answer = await self.post("/chunked")
        assert (answer.status, answer.content_type, answer.body) == (200, "text/plain", b"part one, part two")
        await self.post("/echo")
        assert self.server.connections == 1

    # --- pooling ------------------------------------------------------------------------------------------------

    @coroutine_test
    async def test_sequential_posts_reuse_one_connection(self) -> None:
        """Calls one after another travel over a single TCP connection."""
        for index in range(5):
            answer = await self.post("/echo", b"n%d" % index)
            assert answer.body == b"echo:n%d" % index
        assert self.server.connections == 1
        assert self.client.connections_made == 1
        assert self.client.idle_connections == 1

    @coroutine_test
    async def test_concurrent_posts_open_parallel_connections_then_reuse_them(self) -> None:
        """Calls in flight together each get a connection; afterwards they are pooled and reused."""
        answers = await defer.gatherResults([Deferred.fromCoroutine(self.post("/echo")) for _ in range(3)])
        assert [a.status for a in answers] == [200] * 3
        assert self.server.connections == 3
        await defer.gatherResults([Deferred.fromCoroutine(self.post("/echo")) for _ in range(3)])
        assert self.server.connections == 3

    @coroutine_test
    async def test_idle_connections_beyond_the_limit_are_closed(self) -> None:
        """With max_idle_per_host=1, only one of two connections stays open after the calls."""
        client = self.make_client(max_idle_per_host=1)
        await defer.gatherResults([Deferred.fromCoroutine(self.post("/echo", client=client)) for _ in range(2)])
        assert self.server.connections == 2
        await self.server.open_at_most(1)  # the extra connection closes
        assert client.idle_connections == 1

    @coroutine_test
    async def test_connection_close_answer_is_not_reused(self) -> None:
        """An answer saying Connection: close ends that connection's use, even if the server keeps it open."""
        answer = await self.post("/close")
        assert answer.body == b"echo:<request/>"
        assert self.client.idle_connections == 0
        await self.server.closed()  # the client closes the connection
        await self.post("/echo")
        assert self.server.connections == 2

    @coroutine_test
    async def test_connection_closed_by_server_while_idle_is_replaced(self) -> None:
        """When the service closes a pooled connection, the next call opens a new one and succeeds."""
        loop = ClockedLoopback()
        client = self.make_client(loop)
        await self.post("/echo", client=client)
        for protocol in list(self.server.open):
            protocol.transport.loseConnection()
        await loop.clients.closed()  # the client sees the close
        assert client.idle_connections == 0
        answer = await self.post("/echo", b"again", client=client)
        assert answer.body == b"echo:again"
        assert self.server.connections == 2

    @coroutine_test
    async def test_idle_connection_is_closed_after_the_idle_timeout(self) -> None:
        """A pooled connection unused for idle_timeout seconds is closed by the client."""
        loop = ClockedLoopback()
        client = self.make_client(loop, idle_timeout=0.05)
        await self.post("/echo", client=client)
        assert client.idle_connections == 1
        loop.clock.advance(0.05)
        await self.server.closed()  # the idle connection closes
        assert client.idle_connections == 0

    @coroutine_test
    async def test_bytes_on_an_idle_connection_make_it_unusable(self) -> None:
        """A service that writes on an idle connection has it dropped; the next call uses a new one."""
        loop = ClockedLoopback()
        client = self.make_client(loop)
        port = self.raw_server(b"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: 2\r\n\r\nok", close_after=False)
        answer = await self.post("/", port=port, client=client)
        assert answer.body == b"ok"
        assert client.idle_connections == 1
        [server_side] = list(self.raw.open)
        server_side.transport.write(b"HTTP/1.1 200 OK\r\n")
        await loop.clients.closed()  # the client drops the connection
        assert client.idle_connections == 0
        answer = await self.post("/", port=port, client=client)
        assert answer.body == b"ok"
        assert self.raw.connections == 2

    # --- verdicts -----------------------------------------------------------------------------------------------

    @coroutine_test
    async def test_silent_service_times_out_and_connection_is_aborted(self) -> None:
        """No answer within the timeout: service_failed.io_error "did not answer in time"; the connection goes."""
        loop = ClockedLoopback()
        client = self.make_client(loop)
        arrived = self.service.hung()
        calling = Deferred.fromCoroutine(self.refused("/hang", client=client, timeout=0.2))
        await arrived
        loop.clock.advance(0.2)
        error = await calling
        assert error.fault_code == "server.serverproxy.service_failed.io_error"
        assert error.message == "Service did not answer in time"
        assert error.reason == f"{self.url('/hang')} did not answer within 0.2 s"
        await self.server.closed()  # the server sees the connection go
        assert client.idle_connections == 0

    @coroutine_test
    async def test_refused_port_is_network_error(self) -> None:
        """Nothing listening: service_failed.network_error "Cannot connect to the service"."""
        with pytest.raises(ServiceFailed) as caught:
            await self.client.post(f"http://127.0.0.1:{free_port()}/", b"<x/>", HEADERS, 5.0)
        assert caught.value.fault_code == "server.serverproxy.service_failed.network_error"
        assert caught.value.message == "Cannot connect to the service"

    @coroutine_test
    async def test_response_over_the_limit_is_too_large(self) -> None:
        """A body over max_response_bytes, announced or chunked: service_failed.io_error "too large"."""
        client = self.make_client(max_response_bytes=1000)
        for path in ("/big", "/big-chunked"):
            error = await self.refused(path, client=client)
            assert error.fault_code == "server.serverproxy.service_failed.io_error", path
            assert error.message == "Service response is too large", path
        assert client.idle_connections == 0

    @coroutine_test
    async def test_malformed_response_is_connection_failed(self) -> None:
        """Garbage instead of HTTP: service_failed.io_error "Service connection failed"."""
        port = self.raw_server(b"this is not HTTP at all\r\n\r\n", close_after=False)
        error = await self.refused("/", port=port)
        assert error.fault_code == "server.serverproxy.service_failed.io_error"
        assert error.message == "Service connection failed"
        assert "service sent a malformed HTTP response" in error.reason
        assert self.client.idle_connections == 0

    @coroutine_test
    async def test_connection_dropped_mid_body_is_connection_failed(self) -> None:
        """The service hanging up after half its body: service_failed.io_error, not a short answer."""
        port = self.raw_server(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + b"h" * 50, close_after=True)
        error = await self.refused("/", port=port)
        assert error.fault_code == "server.serverproxy.service_failed.io_error"
        assert error.message == "Service connection failed"
        assert "before its response was complete" in error.reason

    @coroutine_test
    async def test_header_with_cr_lf_is_refused_without_sending(self) -> None:
        """A header value that would inject a line is refused as io_error before any connection is made."""
        headers = {**HEADERS, "SOAPAction": '"urn:x"\r\nX-Injected: 1'}
        error = await self.refused("/echo", headers=headers)
        assert error.fault_code == "server.serverproxy.service_failed.io_error"
        bad_name = await self.refused("/echo", headers={**HEADERS, "Bad Name": "x"})
        assert bad_name.fault_code == "server.serverproxy.service_failed.io_error"
        assert self.server.connections == 0
        assert self.service.calls == []

    @coroutine_test
    async def test_url_with_user_information_is_refused(self) -> None:
        """Credentials in a service URL are refused, not sent."""
        url = f"http://user:secret@127.0.0.1:{self.port.getHost().port}/echo"
        with pytest.raises(ServiceFailed) as caught:
            await self.client.post(url, b"<x/>", HEADERS, 5.0)
        assert caught.value.fault_code == "server.serverproxy.service_failed.io_error"
        assert self.server.connections == 0

    # --- other schemes and shutdown -----------------------------------------------------------------------------

    @coroutine_test
    async def test_https_goes_to_the_fallback(self) -> None:
        """An https:// URL is handed to the fallback client unchanged; close() closes the fallback too."""
        fallback = RecordingFallback()
        client = LeanProviderClient(reactor, max_response_bytes=1000, fallback=fallback)
        answer = await client.post("https://provider.example/soap", b"<x/>", HEADERS, 7.0)
        assert answer == ProviderAnswer(200, "text/xml", b"from the fallback")
        assert fallback.calls == [("https://provider.example/soap", b"<x/>", HEADERS, 7.0)]
        await client.close()
        await client.close()
        assert fallback.closed == 1

    @coroutine_test
    async def test_https_without_fallback_is_network_error(self) -> None:
        """Without a fallback, a scheme other than http is refused as network_error."""
        with pytest.raises(ServiceFailed) as caught:
            await self.client.post("https://provider.example/soap", b"<x/>", HEADERS, 5.0)
        assert caught.value.fault_code == "server.serverproxy.service_failed.network_error"
        assert "not supported" in caught.value.reason

    @coroutine_test
    async def test_close_closes_pooled_connections(self) -> None:
        """close() closes every pooled connection (the server sees them go) and later calls are refused."""
        await defer.gatherResults([Deferred.fromCoroutine(self.post("/echo")) for _ in range(2)])
        assert len(self.server.open) == 2
        await self.client.close()
        await self.server.closed()
        error = await self.refused("/echo")
        assert error.fault_code == "server.serverproxy.service_failed.network_error"
        assert self.server.connections == 2


class RecordingFallback:
    """A ProviderClient stand-in that records its calls (only routing is tested with it)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, bytes, Mapping[str, str], float]] = []
        self.closed = 0

    def post(self, url: str, body: bytes, headers: Mapping[str, str], timeout_seconds: float) -> Deferred[ProviderAnswer]:
        """Record and answer."""
        self.calls.append((url, body, headers, timeout_seconds))
        return defer.succeed(ProviderAnswer(200, "text/xml", b"from the fallback"))

    def close(self) -> Deferred[None]:
        """Count the closes."""
        self.closed += 1
        return defer.succeed(None)


@pytest.mark.parametrize(
    ("url", "host", "port", "target", "host_header"),
    [
        ("http://provider.example/soap", "provider.example", 80, b"/soap", b"provider.example"),
        ("http://Provider.Example:8080", "provider.example", 8080, b"/", b"provider.example:8080"),
        ("http://[::1]:8080/a?b=c#d", "::1", 8080, b"/a?b=c", b"[::1]:8080"),
        ("HTTP://10.0.0.1:80/x", "10.0.0.1", 80, b"/x", b"10.0.0.1"),
    ],
)
def test_url_gives_connection_and_request_line(url: str, host: str, port: int, target: bytes, host_header: bytes) -> None:
    """host, port (80 by default), origin-form target without fragment, Host with the port only when not 80."""
    parsed = _http_target(url)
    assert parsed is not None
    assert (parsed.host, parsed.port, parsed.request_target, parsed.host_header) == (host, port, target, host_header)


@pytest.mark.parametrize(
    ("url", "subcode"),
    [
        ("http://127.0.0.1:99999/", "network_error"),
        ("http://[::1/", "network_error"),
        ("http:///no-host", "network_error"),
        ("http://user@127.0.0.1/", "io_error"),
        ("http://127.0.0.1/a b", "io_error"),
        ("http://127.0.0.1/caf\u00e9", "io_error"),
    ],
)
def test_unusable_urls_are_refused(url: str, subcode: str) -> None:
    """URLs that cannot be connected to or sent as they are become ServiceFailed with a subcode."""
    with pytest.raises(ServiceFailed) as caught:
        _http_target(url)
    assert caught.value.subcode == subcode


def test_other_schemes_are_not_for_the_lean_path() -> None:
    """https:// (and anything but http://) is left for the fallback."""
    assert _http_target("https://provider.example/soap") is None
