"""The client proxy on its own: the IS-facing HTTP resource over loopback,
server targeting, peer checks and its log events (real parts, see tests/federation/world.py)."""

from __future__ import annotations

from typing import Any, Sequence, cast

from structlog.testing import capture_logs
from twisted.internet.defer import Deferred, succeed
from twisted.web.client import Agent
from twisted.web.http_headers import Headers
from twisted.web.iweb import UNKNOWN_LENGTH, IBodyProducer, IResponse
from zope.interface import implementer

from security_server.edge.bounded_body import read_body
from security_server.core.config import MessageLimits
from security_server.core.errors import Origin, RequestTooLarge
from security_server.core.identifiers import SecurityServerId
from security_server.proxy.client_proxy_site import client_proxy_site
from security_server.proxy.locallink import LocalPeerLink
from security_server.proxy.peerlink import PeerAddress, PeerLink, PeerRequest, PeerResponse
from tests.federation.pki import der
from tests.federation.world import CONSUMER, SOAP, SS2, SS3, ExchangeBed, fault_code, fault_detail, is_request
from tests.loopback import REACTOR, coroutine_test



# --- over HTTP ------------------------------------------------------------------------------------------------


@implementer(IBodyProducer)
class ChunkedBody:
    """A request body of unknown length (sent chunked), written in pieces."""

    def __init__(self, pieces: Sequence[bytes]) -> None:
        self.pieces = pieces
        self.length: int | str = UNKNOWN_LENGTH

    def startProducing(self, consumer: Any) -> Deferred[None]:
        """Write every piece."""
        for piece in self.pieces:
            consumer.write(piece)
        return succeed(None)

    def pauseProducing(self) -> None:
        """Not needed: everything is written at once."""

    def resumeProducing(self) -> None:
        """Not needed."""

    def stopProducing(self) -> None:
        """Not needed."""


@implementer(IBodyProducer)
class FixedBody(ChunkedBody):
    """A request body with a Content-Length."""

    def __init__(self, data: bytes) -> None:
        super().__init__([data])
        self.length = len(data)


class ClientProxyHttpTest(ExchangeBed):
    """ClientProxyResource served on a loopback port, called by an HTTP client as an IS would."""

    def setUp(self) -> None:
        super().setUp()
        consumer = self.make_consumer(limits=MessageLimits(max_body_bytes=8192))
        self.small = self.make_client_proxy(self.link, consumer)
        site = client_proxy_site(self.small)
        site.timeOut = None
        self.is_port = REACTOR.listenTCP(0, site, interface="127.0.0.1")
        self.addCleanup(self.is_port.stopListening)
        self.agent = Agent(REACTOR, pool=self.pool)  # type: ignore[no-untyped-call]

    async def call(self, method: bytes, body: IBodyProducer | None, headers: dict[bytes, list[bytes]]) -> tuple[IResponse, bytes]:
        """One HTTP request to the client proxy."""
        url = f"http://127.0.0.1:{self.is_port.getHost().port}/".encode("ascii")
        response: IResponse = await self.agent.request(method, url, Headers(headers), body)
        return response, await read_body(response, 1 << 20)

    @coroutine_test
    async def test_post_is_answered_with_the_providers_response(self) -> None:
        """A SOAP POST gets 200 and the provider's answer; SOAPAction travels to the provider."""
        body = is_request()
        response, answer = await self.call(
            b"POST", cast(IBodyProducer, FixedBody(body)), {b"content-type": [SOAP.encode()], b"soapaction": [b'"urn:getPerson"']}
        )
        assert response.code == 200, answer[:300]
        assert b"getPersonResponse" in answer
        assert self.service.soap_actions == ['"urn:getPerson"']

    @coroutine_test
    async def test_get_is_invalid_http_method(self) -> None:
        """GET is answered as X-Road 7.8 answers it (ClientMessageHandler.java): 200, client.invalid_http_method."""
        response, answer = await self.call(b"GET", None, {})
        assert response.code == 200
        assert fault_code(answer) == "client.invalid_http_method"

    @coroutine_test
    async def test_declared_length_over_the_limit_is_413(self) -> None:
        """A Content-Length over the limit is answered client.bad_request (SOAP: HTTP 200) without reading the body."""
        response, answer = await self.call(b"POST", cast(IBodyProducer, FixedBody(b"x" * 9000)), {b"content-type": [SOAP.encode()]})
        assert response.code == 200
        assert fault_code(answer) == "client.bad_request"
        assert self.link.delivered == []

    @coroutine_test
    async def test_chunked_body_over_the_limit_is_413(self) -> None:
        """A chunked body that grows past the limit (not past twice it, when the connection is cut off: see
        test_request_bodies.py) is answered client.bad_request (SOAP: HTTP 200); what was read is dropped."""
        response, answer = await self.call(b"POST", cast(IBodyProducer, ChunkedBody([b"x" * 4000] * 3)), {b"content-type": [SOAP.encode()]})
        assert response.code == 200
        assert fault_code(answer) == "client.bad_request"

    @coroutine_test
    async def test_wrong_content_type_is_refused(self) -> None:
        """A JSON body is client.invalid_content_type with HTTP 200 (X-Road's form of every SOAP fault)."""
        response, answer = await self.call(b"POST", cast(IBodyProducer, FixedBody(b"{}")), {b"content-type": [b"application/json"]})
        assert response.code == 200
        assert fault_code(answer) == "client.invalid_content_type"


class Restamp:
    """A link that delivers through ``inner`` but changes who answered, or the answer's HTTP headers."""

    def __init__(
        self, inner: PeerLink, server: SecurityServerId | None = None, headers: dict[str, str] | None = None
    ) -> None:
        self.inner = inner
        self.server = server
        self.headers = headers

    def send(self, peers: Sequence[PeerAddress], request: PeerRequest, timeout_seconds: float) -> Deferred[PeerResponse]:
        """Deliver, then restamp the answer."""

        def restamp(response: PeerResponse) -> PeerResponse:
            return PeerResponse(
                response.status,
                response.content_type,
                response.body,
                self.headers if self.headers is not None else response.headers,
                self.server or response.server,
                response.peer_cert_der,
            )

        return self.inner.send(peers, request, timeout_seconds).addCallback(restamp)


class ListenerRefusal:
    """The provider's TLS listener refusing before the server proxy runs: a bare fault, no transport headers."""

    def handle(self, peer_cert_der: bytes | None, request: PeerRequest) -> Deferred[PeerResponse]:
        """Answer 413 with a SOAP fault, as the listener does for a body over its limit."""
        error = RequestTooLarge("request body is larger than 1 bytes", origin=Origin.SERVER_PROXY)
        return succeed(PeerResponse(413, SOAP, error.to_soap_fault()))


class ClientProxyTest(ExchangeBed):
    """ClientProxy.handle_soap with the in-memory link."""

    @coroutine_test
    async def test_security_server_header_picks_that_server(self) -> None:
        """A securityServer header naming the provider's server is honoured."""
        body = is_request().replace(
            b"<xrd:id>",
            b'<xrd:securityServer id:objectType="SERVER"><id:xRoadInstance>EE</id:xRoadInstance>'
            b"<id:memberClass>GOV</id:memberClass><id:memberCode>70000002</id:memberCode>"
            b"<id:serverCode>ss2</id:serverCode></xrd:securityServer><xrd:id>",
        )
        status, _, answer = await self.client_proxy.handle_soap(SOAP, body, {})
        assert status == 200, answer[:300]
        assert [address.server for address, _ in self.link.delivered] == [SS2]

    @coroutine_test
    async def test_security_server_header_naming_a_server_without_the_provider_is_refused(self) -> None:
        """A securityServer that does not host the provider is server.clientproxy.invalid_security_server."""
        body = is_request().replace(
            b"<xrd:id>",
            b'<xrd:securityServer id:objectType="SERVER"><id:xRoadInstance>EE</id:xRoadInstance>'
            b"<id:memberClass>COM</id:memberClass><id:memberCode>70000003</id:memberCode>"
            b"<id:serverCode>ss3</id:serverCode></xrd:securityServer><xrd:id>",
        )
        _, _, answer = await self.client_proxy.handle_soap(SOAP, body, {})
        assert fault_code(answer) == "server.clientproxy.invalid_security_server"
        assert self.link.delivered == []

    @coroutine_test
    async def test_answer_from_a_server_that_was_not_asked_is_refused(self) -> None:
        """An answer stamped by a server the client proxy did not offer is server.clientproxy.ssl_authentication_failed."""
        proxy = self.make_client_proxy(Restamp(self.link, server=SS3))
        _, _, answer = await proxy.handle_soap(SOAP, is_request(), {})
        assert fault_code(answer) == "server.clientproxy.ssl_authentication_failed"

    @coroutine_test
    async def test_the_link_is_trusted_for_the_certificate(self) -> None:
        """The client proxy leaves the TLS certificate to the link (documented): what the link delivered is used."""
        link = LocalPeerLink(
            {SS2: self.server_proxy},
            {SS2: der(self.pki.unregistered_auth)},
            client_cert_der=self.link.client_cert_der,
        )
        assert (await self.make_client_proxy(link).handle_soap(SOAP, is_request(), {}))[0] == 200
        self.link.peer_certs[SS2] = der(self.pki.unregistered_auth)
        _, _, answer = await self.client_proxy.handle_soap(SOAP, is_request(), {})
        assert fault_code(answer) == "server.clientproxy.ssl_authentication_failed"

    @coroutine_test
    async def test_one_summary_event_per_exchange_with_the_fault_detail(self) -> None:
        """Each exchange writes one event; a failure carries the fault code and the UUID the IS got."""
        with capture_logs() as events:
            _, _, answer = await self.client_proxy.handle_soap(SOAP, is_request(client=CONSUMER.member.subsystem("x")), {})
            status, _, _ = await self.client_proxy.handle_soap(SOAP, is_request(), {})
        assert status == 200
        mine = [e for e in events if e["event"] in ("soap_request_answered", "soap_request_failed")]
        assert [e["event"] for e in mine] == ["soap_request_failed", "soap_request_answered"]
        assert mine[0]["fault_code"] == "server.clientproxy.unknown_member"
        assert mine[0]["fault_detail"] == fault_detail(answer)
        assert all("Jaan" not in repr(event) for event in events)  # message bodies are never logged

    @coroutine_test
    async def test_fault_from_the_providers_listener_is_passed_through(self) -> None:
        """A bare fault from the provider's listener (no transport headers) reaches the IS with its code."""
        link = LocalPeerLink({SS2: ListenerRefusal()}, {SS2: self.link.peer_certs[SS2]})
        status, _, answer = await self.make_client_proxy(link).handle_soap(SOAP, is_request(), {})
        assert status == 200
        assert fault_code(answer) == "server.serverproxy.bad_request"

    @coroutine_test
    async def test_answer_to_another_request_is_inconsistent(self) -> None:
        """An answer whose x-road-request-id is not the request's is server.clientproxy.inconsistent_response."""
        proxy = self.make_client_proxy(Restamp(self.link, headers={"x-road-request-id": "other", "x-hash-algorithm": "SHA-512"}))
        _, _, answer = await proxy.handle_soap(SOAP, is_request(), {})
        assert fault_code(answer) == "server.clientproxy.inconsistent_response"
