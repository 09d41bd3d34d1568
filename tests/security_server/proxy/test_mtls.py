"""Mutual TLS between security servers over real loopback sockets: the server proxy listener and MtlsPeerLink."""

from __future__ import annotations

import ssl
from typing import Any, TypeVar

from twisted.internet import defer, threads
from twisted.internet import reactor as _reactor
from twisted.internet.defer import Deferred, succeed
from twisted.internet.protocol import Protocol, ServerFactory
from twisted.python.failure import Failure
from twisted.trial import unittest

from security_server.core.errors import (
    BusError,
    InternalError,
    IoError,
    NetworkError,
    RequestTooLarge,
    SslAuthenticationFailed,
)
from security_server.core.identifiers import SecurityServerId
from security_server.proxy.mtls import MtlsPeerLink, server_context_factory
from security_server.proxy.peerlink import PeerAddress, PeerRequest, PeerResponse
from security_server.proxy.server_proxy_site import ServerProxyResource, server_proxy_site
from tests.federation.peers import SS1, SS2, SS3, peer_world
from tests.loopback import ClockedLoopback, ConnectionWatch, free_port
from tests.security_server.proxy.tls_clients import RecordingHandler, raw_tls_client, resumed_tls_clients, token_files

reactor: Any = _reactor
MAX_BODY = 4096
REQUEST = PeerRequest(headers={"X-Request-Id": "r-1"}, content_type="multipart/mixed; boundary=b", body=b"payload")


class HangUp(Protocol):
    """A TCP server that closes every connection at once (a TLS handshake with it fails)."""

    def connectionMade(self) -> None:
        """Hang up."""
        transport: Any = self.transport
        transport.loseConnection()


class AnswerOnceThenHangUp(Protocol):
    """A keep-alive HTTP server that answers one request per connection, then closes on the next unanswered."""

    def __init__(self) -> None:
        self.buffer = b""
        self.answered = 0

    def dataReceived(self, data: bytes) -> None:
        """Answer the first whole request; hang up on the second."""
        self.buffer += data
        head, sep, rest = self.buffer.partition(b"\r\n\r\n")
        if not sep:
            return
        length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
        if len(rest) < length:
            return
        self.buffer = rest[length:]
        transport: Any = self.transport
        if self.answered:
            transport.loseConnection()
            return
        self.answered += 1
        body = b"answer %d" % self.answered
        transport.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))


class Verifier:
    """A verify_peer that records its calls and refuses the certificates in ``refuse``."""

    def __init__(self) -> None:
        self.calls: list[tuple[PeerAddress, bytes]] = []
        self.refuse: set[bytes] = set()

    def __call__(self, address: PeerAddress, cert_der: bytes) -> None:
        """Refuse with ssl_authentication_failed or accept."""
        self.calls.append((address, cert_der))
        if cert_der in self.refuse:
            raise SslAuthenticationFailed("peer certificate refused by the test")


E = TypeVar("E", bound=BaseException)


def failed_with(deferred: Deferred[Any], kind: type[E]) -> Deferred[E]:
    """A Deferred that fires with the error ``deferred`` failed with, which must be a ``kind``."""

    def succeeded(result: object) -> E:
        raise AssertionError(f"expected {kind.__name__}, got the result {result!r}")

    def failed(failure: Failure) -> E:
        assert isinstance(failure.value, kind), f"expected {kind.__name__}, got {failure.value!r}"
        return failure.value

    return deferred.addCallbacks(succeeded, failed)


class MtlsTest(unittest.TestCase):
    """A client link for SS1 and server proxies for SS2 and SS3 on loopback."""

    timeout = 30

    def setUp(self) -> None:
        world = peer_world()
        self.addCleanup(self.stop_servers)  # runs last: cleanups run in reverse, after the links close
        self.handlers = {SS2: RecordingHandler(b"ss2"), SS3: RecordingHandler(b"ss3")}
        self.watches: dict[SecurityServerId, ConnectionWatch] = {}
        self.addresses: dict[SecurityServerId, PeerAddress] = {}
        self.ports: list[Any] = []
        for server, handler in self.handlers.items():
            watch = ConnectionWatch()
            site = server_proxy_site(ServerProxyResource(handler, max_body_bytes=MAX_BODY))
            port = reactor.listenSSL(
                0, watch.factory(site), server_context_factory(world.tokens[server]), interface="127.0.0.1"
            )
            self.ports.append(port)
            self.watches[server] = watch
            self.addresses[server] = PeerAddress(server, "127.0.0.1", port.getHost().port)
        self.verifier = Verifier()
        self.link = self.make_link()

    def make_link(self, on: Any = None, **options: Any) -> MtlsPeerLink:
        """A link for SS1 (on the real reactor unless ``on`` is given) with the test's verifier."""
        options.setdefault("verify_peer", self.verifier)
        link = MtlsPeerLink(reactor if on is None else on, peer_world().tokens[SS1], connect_timeout=5, **options)
        self.addCleanup(link.close)
        return link

    @defer.inlineCallbacks
    def stop_servers(self) -> Any:
        """Wait for the servers to see the (closed) links' close_notify, then stop listening."""
        for watch in self.watches.values():
            yield watch.closed()
        for port in self.ports:
            yield port.stopListening()

    def send(self, *servers: SecurityServerId, request: PeerRequest = REQUEST, timeout: float = 5.0) -> Deferred[PeerResponse]:
        """Send over the link to the given servers in that order."""
        return self.link.send([self.addresses[s] for s in servers], request, timeout)

    @defer.inlineCallbacks
    def test_request_reaches_handler_with_client_cert(self) -> Any:
        """A request over mutual TLS reaches the server proxy handler with the client's auth cert DER, and back."""
        world = peer_world()
        response = yield self.send(SS2)
        assert response.status == 200
        assert response.body == b"ss2:payload"
        assert response.content_type == "text/xml"
        assert response.headers.get("x-peer") == "yes"
        assert response.server == SS2
        assert response.peer_cert_der == world.auth_der(SS2)
        [(cert, seen)] = self.handlers[SS2].calls
        assert cert == world.auth_der(SS1)
        assert seen.body == b"payload"
        assert seen.content_type == "multipart/mixed; boundary=b"
        assert seen.headers.get("x-request-id") == "r-1"
        assert self.verifier.calls == [(self.addresses[SS2], world.auth_der(SS2))]

    @defer.inlineCallbacks
    def test_keep_alive_reuses_one_connection(self) -> Any:
        """Many sequential requests to one peer travel over a single TLS connection, re-verified on each reuse."""
        for index in range(25):
            response = yield self.send(SS2, request=PeerRequest({}, "text/xml", b"n%d" % index))
            assert response.body == b"ss2:n%d" % index
        assert self.watches[SS2].connections == 1
        assert self.link.connections_made == 1
        assert len(self.verifier.calls) == 25

    @defer.inlineCallbacks
    def test_concurrent_requests_open_parallel_connections(self) -> Any:
        """Concurrent requests each get a connection; afterwards they are pooled and reused."""
        responses = yield defer.gatherResults([self.send(SS2) for _ in range(4)])
        assert [r.status for r in responses] == [200] * 4
        assert self.watches[SS2].connections == 4
        yield defer.gatherResults([self.send(SS2) for _ in range(4)])
        assert self.watches[SS2].connections == 4

    @defer.inlineCallbacks
    def test_refused_server_cert_sends_no_request_bytes(self) -> Any:
        """verify_peer refusing the server's cert: not one request byte reaches the server, the error surfaces."""
        self.verifier.refuse.add(peer_world().auth_der(SS2))
        caught = yield failed_with(self.send(SS2), SslAuthenticationFailed)
        assert caught.fault_code == "server.clientproxy.ssl_authentication_failed"
        assert self.watches[SS2].connections == 1
        assert self.watches[SS2].bytes_received == 0
        assert self.handlers[SS2].calls == []

    @defer.inlineCallbacks
    def test_refused_cert_fails_over_to_next_peer(self) -> Any:
        """A peer whose cert is refused is skipped and the next peer answers."""
        self.verifier.refuse.add(peer_world().auth_der(SS3))
        response = yield self.send(SS3, SS2)
        assert response.server == SS2
        assert self.handlers[SS3].calls == []
        assert self.watches[SS3].bytes_received == 0

    @defer.inlineCallbacks
    def test_reuse_is_reverified_and_dropped_when_refused(self) -> Any:
        """A pooled connection whose peer is refused on reuse is not used; the request goes nowhere."""
        yield self.send(SS2)
        self.verifier.refuse.add(peer_world().auth_der(SS2))
        received = self.watches[SS2].bytes_received
        yield failed_with(self.send(SS2), SslAuthenticationFailed)
        assert self.watches[SS2].bytes_received == received
        assert len(self.handlers[SS2].calls) == 1

    @defer.inlineCallbacks
    def test_failover_when_first_peer_is_down(self) -> Any:
        """The first peer's port is closed: the second peer answers."""
        down = PeerAddress(SS3, "127.0.0.1", free_port())
        response = yield self.link.send([down, self.addresses[SS2]], REQUEST, 5.0)
        assert response.server == SS2

    @defer.inlineCallbacks
    def test_recently_failed_peer_is_tried_last(self) -> Any:
        """A peer whose handshake failed is tried after the working one on the next send (no pooling here)."""
        broken = ConnectionWatch()
        port = reactor.listenTCP(0, broken.factory(ServerFactory.forProtocol(HangUp)), interface="127.0.0.1")
        self.ports.append(port)
        bad = PeerAddress(SS3, "127.0.0.1", port.getHost().port)
        link = self.make_link(max_idle_per_peer=0)
        first = yield link.send([bad, self.addresses[SS2]], REQUEST, 5.0)
        assert first.server == SS2
        assert broken.connections == 1
        second = yield link.send([bad, self.addresses[SS2]], REQUEST, 5.0)
        assert second.server == SS2
        assert broken.connections == 1
        assert self.watches[SS2].connections == 2

    @defer.inlineCallbacks
    def test_stale_pooled_connection_is_replaced_once(self) -> Any:
        """A pooled connection the peer closes without answering is replaced by a fresh one for the same request."""
        world = peer_world()
        forgetful = ConnectionWatch()
        port = reactor.listenSSL(
            0, forgetful.factory(ServerFactory.forProtocol(AnswerOnceThenHangUp)),
            server_context_factory(world.tokens[SS2]), interface="127.0.0.1",
        )
        self.ports.append(port)
        address = PeerAddress(SS2, "127.0.0.1", port.getHost().port)
        first = yield self.link.send([address], REQUEST, 5.0)
        assert first.body == b"answer 1"
        second = yield self.link.send([address], REQUEST, 5.0)
        assert second.body == b"answer 1"
        assert forgetful.connections == 2
        assert self.link.connections_made == 2

    @defer.inlineCallbacks
    def test_all_peers_down_is_network_error(self) -> Any:
        """Every peer unreachable: server.clientproxy.network_error naming each peer's failure."""
        peers = [PeerAddress(SS2, "127.0.0.1", free_port()), PeerAddress(SS3, "127.0.0.1", free_port())]
        caught = yield failed_with(self.link.send(peers, REQUEST, 5.0), NetworkError)
        assert caught.fault_code == "server.clientproxy.network_error"
        assert "ss2" in caught.reason
        assert "ss3" in caught.reason

    @defer.inlineCallbacks
    def test_no_peers_is_network_error(self) -> Any:
        """An empty peer list fails with network_error rather than hanging."""
        yield failed_with(self.link.send([], REQUEST, 5.0), NetworkError)

    @defer.inlineCallbacks
    def test_slow_peer_times_out_with_io_error(self) -> Any:
        """A peer that never answers: server.clientproxy.io_error after the timeout, connection dropped."""
        loop = ClockedLoopback()
        link = self.make_link(loop)
        arrived: Deferred[None] = Deferred()

        def never(request: PeerRequest) -> Deferred[PeerResponse]:
            arrived.callback(None)
            return Deferred()

        self.handlers[SS2].answer = never
        sending = failed_with(link.send([self.addresses[SS2]], REQUEST, 0.3), IoError)
        yield arrived
        loop.clock.advance(0.3)
        caught = yield sending
        assert caught.fault_code == "server.clientproxy.io_error"
        yield self.watches[SS2].closed()  # the connection is dropped

    @defer.inlineCallbacks
    def test_oversized_response_is_refused(self) -> Any:
        """A response body over the link's limit fails the exchange instead of being buffered."""
        link = self.make_link(max_response_bytes=1000)
        self.handlers[SS2].answer = lambda request: succeed(PeerResponse(200, "text/xml", b"x" * 5000))
        yield failed_with(link.send([self.addresses[SS2]], REQUEST, 5.0), RequestTooLarge)

    @defer.inlineCallbacks
    def test_oversized_request_gets_a_fault(self) -> Any:
        """A body over the server's limit: a SOAP fault in X-Road's form (200, server.serverproxy prefix as
        ServerProxyHandler.java gives it); the handler never sees it."""
        response = yield self.send(SS2, request=PeerRequest({}, "text/xml", b"y" * (MAX_BODY + 500)))
        assert response.status == 200
        assert b"<faultcode>server.serverproxy.bad_request</faultcode>" in response.body
        assert self.handlers[SS2].calls == []

    @defer.inlineCallbacks
    def test_far_oversized_request_is_cut_off(self) -> Any:
        """A body more than twice the server's limit is not read to its end: the connection is aborted (io_error)."""
        big = PeerRequest({}, "text/xml", b"z" * (64 * MAX_BODY))
        caught = yield failed_with(self.send(SS2, request=big), IoError)
        assert caught.fault_code == "server.clientproxy.io_error"
        assert self.handlers[SS2].calls == []
        assert self.watches[SS2].bytes_received < 64 * MAX_BODY

    @defer.inlineCallbacks
    def test_handler_failure_becomes_internal_error_fault(self) -> Any:
        """A handler that fails (it must not) still yields a SOAP fault answer, not a dropped connection."""
        self.handlers[SS2].answer = lambda request: defer.fail(InternalError("boom"))
        response = yield self.send(SS2)
        assert response.status == 200
        assert b"internal_error" in response.body

    @defer.inlineCallbacks
    def test_get_is_refused_with_invalid_http_method_fault(self) -> Any:
        """GET on the server proxy port: 200 and the SOAP fault server.serverproxy.invalid_http_method, as X-Road's
        ServerProxyHandler.java answers it."""
        port = self.addresses[SS2].port
        request = b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        answer = yield threads.deferToThread(raw_tls_client, port, request, client_cert=token_files(SS1))
        assert answer.startswith(b"HTTP/1.1 200 "), answer[:40]
        assert b"<faultcode>server.serverproxy.invalid_http_method</faultcode>" in answer
        assert self.handlers[SS2].calls == []

    @defer.inlineCallbacks
    def test_tls_1_1_client_is_refused(self) -> Any:
        """A client limited to TLS 1.1 fails the handshake with a protocol-version alert; TLS 1.2 works."""
        port = self.addresses[SS2].port
        request = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi"
        old_client = threads.deferToThread(
            raw_tls_client,
            port,
            request,
            client_cert=token_files(SS1),
            minimum=ssl.TLSVersion.TLSv1,
            maximum=ssl.TLSVersion.TLSv1_1,
        )
        caught = yield failed_with(old_client, ssl.SSLError)
        assert "protocol version" in str(caught).lower()
        answer = yield threads.deferToThread(
            raw_tls_client, port, request, client_cert=token_files(SS1), maximum=ssl.TLSVersion.TLSv1_2
        )
        assert answer.startswith(b"HTTP/1.1 200 "), answer[:40]

    @defer.inlineCallbacks
    def test_client_without_certificate_is_refused_at_handshake(self) -> Any:
        """A client with no certificate fails the TLS handshake (1.2) or is cut off after it (1.3); no request is handled."""
        port = self.addresses[SS2].port
        request = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi"
        tls12 = threads.deferToThread(raw_tls_client, port, request, client_cert=None, maximum=ssl.TLSVersion.TLSv1_2)
        yield failed_with(tls12, ssl.SSLError)
        try:
            answer = yield threads.deferToThread(raw_tls_client, port, request, client_cert=None)
        except (ssl.SSLError, ConnectionError):
            answer = b""
        assert answer == b""
        assert self.handlers[SS2].calls == []
        assert self.watches[SS2].bytes_received == 0

    @defer.inlineCallbacks
    def test_async_verifier_is_awaited_before_sending(self) -> Any:
        """A verify_peer that answers later (OCSP fetch) holds the request back until it accepts."""
        pending: list[Deferred[None]] = []
        asked: Deferred[None] = Deferred()

        def later(address: PeerAddress, cert_der: bytes) -> Deferred[None]:
            verdict: Deferred[None] = Deferred()
            pending.append(verdict)
            if not asked.called:
                asked.callback(None)
            return verdict

        link = self.make_link(verify_peer=later)
        sending = link.send([self.addresses[SS2]], REQUEST, 5.0)
        yield asked  # the link has the peer's certificate and asks
        assert len(pending) == 1
        assert self.watches[SS2].bytes_received == 0
        pending[0].callback(None)
        response = yield sending
        assert response.status == 200

    @defer.inlineCallbacks
    def test_server_resumes_tls_sessions_and_still_sees_the_client_cert(self) -> Any:
        """A client offering its previous session is resumed (tickets on), and the handler still gets its cert."""
        port = self.addresses[SS2].port
        request = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi"
        first, second = yield threads.deferToThread(resumed_tls_clients, port, request, token_files(SS1))
        assert (first, second) == (False, True)
        certs = [cert for cert, _ in self.handlers[SS2].calls]
        assert certs == [peer_world().auth_der(SS1)] * 2

    @defer.inlineCallbacks
    def test_new_connections_without_pooling_keep_working(self) -> Any:
        """With no idle pool every request opens a connection offering the last session; each is verified and served."""
        link = self.make_link(max_idle_per_peer=0)
        for _ in range(3):
            response = yield link.send([self.addresses[SS2]], REQUEST, 5.0)
            assert response.peer_cert_der == peer_world().auth_der(SS2)
        assert self.watches[SS2].connections == 3
        assert [cert for cert, _ in self.handlers[SS2].calls] == [peer_world().auth_der(SS1)] * 3
        assert len(self.verifier.calls) == 3

    @defer.inlineCallbacks
    def test_closed_link_refuses_to_send(self) -> Any:
        """After close(), send fails with network_error and opens nothing."""
        yield self.link.close()
        yield failed_with(self.send(SS2), BusError)
        assert self.watches[SS2].connections == 0
