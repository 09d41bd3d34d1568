"""The server proxy on its own: what it answers to malformed or unexpected peer requests and its HTTP client
for providers (real parts, see tests/federation/world.py); the replay guard is tested in core/test_replay.py."""

from __future__ import annotations

from datetime import timedelta
from typing import Mapping

import pytest
from structlog.testing import capture_logs

from security_server.core.errors import ServiceFailed
from security_server.core.identifiers import SecurityServerId, ServiceId
from security_server.core.transport import MessageContent, SignedMessage, decode_transport, encode_transport
from security_server.proxy.peerlink import PeerRequest, PeerResponse
from security_server.proxy.provider_call import AgentProviderClient
from security_server.signer.batch_signer import sign_message
from tests.federation.ca import ocsp_for
from tests.federation.world import (
    C,
    PROVIDER,
    SOAP,
    SS2,
    ExchangeBed,
    fault_code,
    fault_detail,
    global_conf,
    is_request,
    pki,
    publish,
    records,
    signing_keys,
)
from tests.loopback import REACTOR, coroutine_test, free_port, now



# --- the server proxy's answers -------------------------------------------------------------------------------


def signed_request(
    body: bytes, *, ocsp: bool = True, headers: Mapping[str, str] | None = None, content_type: str = SOAP
) -> PeerRequest:
    """A transport request as ss1's client proxy makes it: signed by member C, with ss1's auth-cert OCSP."""
    material = pki()
    at = now()
    signature = sign_message(
        signing_keys(material.consumer_token), lambda cert: ocsp_for(material.ca, cert, at), C, body, at
    )
    auth_ocsp = ocsp_for(material.ca, material.auth_cert(material.consumer_token), at)
    transport_type, transport_body = encode_transport(
        SignedMessage(MessageContent(body, content_type), signature, (auth_ocsp,) if ocsp else ())
    )
    http_headers = {"x-road-request-id": "request-1", "x-hash-algorithm": "SHA-512"}
    if headers is not None:
        http_headers = dict(headers)
    return PeerRequest(headers=http_headers, content_type=transport_type, body=transport_body)


class ServerProxyTest(ExchangeBed):
    """ServerProxy.handle called directly with hand-made requests."""

    async def handle(self, request: PeerRequest, cert: bytes | None = None, *, use_cert: bool = True) -> PeerResponse:
        """Deliver ``request`` as ss1 would (its TLS certificate unless told otherwise)."""
        peer_cert = cert if cert is not None else (self.link.client_cert_der if use_cert else None)
        return await self.server_proxy.handle(peer_cert, request)

    def assert_whole_body_fault(self, response: PeerResponse, code: str) -> None:
        """An early failure: HTTP 200 with a whole-body text/xml SOAP fault carrying ``code``."""
        assert response.status == 200
        assert response.content_type.startswith("text/xml")
        assert fault_code(response.body) == code
        assert response.headers.get("x-hash-algorithm") == "SHA-512"

    @coroutine_test
    async def test_signed_request_is_answered_with_signed_transport_response(self) -> None:
        """A well-formed request gets a multipart response with the signed message and no OCSP parts."""
        response = await self.handle(signed_request(is_request()))
        assert response.status == 200
        assert response.headers["x-road-request-id"] == "request-1"
        message = decode_transport(response.content_type, response.body, is_response=True)
        assert isinstance(message, SignedMessage)
        assert message.ocsp_responses == ()
        assert b"requestHash" in message.content.message

    @coroutine_test
    async def test_garbage_body_is_answered_with_a_fault(self) -> None:
        """A body that is no transport message is answered with a fault, never an exception."""
        response = await self.handle(
            PeerRequest(headers={"x-road-request-id": "r", "x-hash-algorithm": "SHA-512"}, content_type="application/json", body=b"{}")
        )
        self.assert_whole_body_fault(response, "server.serverproxy.invalid_content_type")

    @coroutine_test
    async def test_request_without_request_id_is_refused(self) -> None:
        """A request without the x-road-request-id header is server.serverproxy.bad_request."""
        response = await self.handle(signed_request(is_request(), headers={"x-hash-algorithm": "SHA-512"}))
        self.assert_whole_body_fault(response, "server.serverproxy.bad_request")

    @coroutine_test
    async def test_peer_without_tls_certificate_is_refused(self) -> None:
        """A request without a peer certificate is server.serverproxy.ssl_authentication_failed."""
        response = await self.handle(signed_request(is_request()), use_cert=False)
        self.assert_whole_body_fault(response, "server.serverproxy.ssl_authentication_failed")
        assert self.service.calls == {}

    @coroutine_test
    async def test_request_without_ocsp_parts_is_refused(self) -> None:
        """A request without the OCSP response of the peer's auth certificate is ssl_authentication_failed."""
        response = await self.handle(signed_request(is_request(), ocsp=False))
        self.assert_whole_body_fault(response, "server.serverproxy.ssl_authentication_failed")
        assert self.service.calls == {}

    @coroutine_test
    async def test_security_server_header_naming_another_server_is_refused(self) -> None:
        """A securityServer header that names another server is server.serverproxy.invalid_security_server."""
        other = SecurityServerId(SS2.owner, "ss2b")
        body = is_request().replace(
            b"<xrd:id>",
            b'<xrd:securityServer id:objectType="SERVER"><id:xRoadInstance>EE</id:xRoadInstance>'
            b"<id:memberClass>GOV</id:memberClass><id:memberCode>70000002</id:memberCode>"
            b"<id:serverCode>" + other.server_code.encode() + b"</id:serverCode></xrd:securityServer><xrd:id>",
        )
        response = await self.handle(signed_request(body))
        self.assert_whole_body_fault(response, "server.serverproxy.invalid_security_server")

    @coroutine_test
    async def test_provider_not_registered_here_is_unknown_member(self) -> None:
        """A provider subsystem that is only saved on this server is server.serverproxy.unknown_member."""
        pending = PROVIDER.member.subsystem("pending")
        self.provider.store.add_client(pending)
        response = await self.handle(signed_request(is_request(ServiceId(pending, "getPerson"))))
        self.assert_whole_body_fault(response, "server.serverproxy.unknown_member")

    @coroutine_test
    async def test_provider_http_error_status_is_http_error(self) -> None:
        """A provider answering HTTP 404 is server.serverproxy.service_failed.http_error."""
        missing = ServiceId(PROVIDER, "missingService")
        publish(self.provider.store, missing, f"http://127.0.0.1:{self.port.getHost().port}/notfound")
        response = await self.handle(signed_request(is_request(missing)))
        self.assert_whole_body_fault(response, "server.serverproxy.service_failed.http_error")

    @coroutine_test
    async def test_provider_answering_html_is_invalid_content_type(self) -> None:
        """A provider answering text/html is server.serverproxy.service_failed.invalid_content_type."""
        html = ServiceId(PROVIDER, "htmlService")
        publish(self.provider.store, html, f"http://127.0.0.1:{self.port.getHost().port}/html")
        response = await self.handle(signed_request(is_request(html)))
        self.assert_whole_body_fault(response, "server.serverproxy.service_failed.invalid_content_type")

    @coroutine_test
    async def test_expired_global_configuration_is_refused(self) -> None:
        """With the global configuration expired the server proxy answers server.serverproxy.global_conf_outdated."""
        self.conf_box[0] = global_conf(self.pki, expires_in=-timedelta(seconds=1))
        response = await self.handle(signed_request(is_request()))
        self.assert_whole_body_fault(response, "server.serverproxy.global_conf_outdated")

    @coroutine_test
    async def test_each_exchange_writes_one_summary_event_with_the_fault_detail(self) -> None:
        """One structlog event per exchange; a refusal carries the fault code and the UUID the peer got."""
        with capture_logs() as events:
            response = await self.handle(signed_request(is_request(ServiceId(PROVIDER, "nothing"))))
        summaries = [e for e in events if e["event"] in ("peer_request_answered", "peer_request_refused")]
        assert len(summaries) == 1
        assert summaries[0]["event"] == "peer_request_refused"
        assert summaries[0]["fault_code"] == "server.serverproxy.unknown_service"
        assert summaries[0]["fault_detail"] == fault_detail(response.body)
        assert all("Jaan" not in repr(event) for event in events)  # message bodies are never logged

    @coroutine_test
    async def test_provider_gets_soap_action_and_exact_body(self) -> None:
        """The provider receives the exact request bytes with the original SOAPAction."""
        body = is_request()
        request = signed_request(body, headers={"x-road-request-id": "r", "x-hash-algorithm": "SHA-512", "x-original-soapaction": '"urn:get"'})
        response = await self.handle(request)
        assert response.status == 200
        assert self.service.bodies == [body]
        assert self.service.soap_actions == ['"urn:get"']

    @coroutine_test
    async def test_failed_exchange_is_logged_as_failed_after_its_request(self) -> None:
        """When the provider fails after the request was logged, a failed response record follows it."""
        closed = ServiceId(PROVIDER, "closedService")
        publish(self.provider.store, closed, f"http://127.0.0.1:{free_port()}/")
        response = await self.handle(signed_request(is_request(closed)))
        self.assert_whole_body_fault(response, "server.serverproxy.service_failed.network_error")
        logged = records(self.provider.log_path)
        assert [(r.succeeded, r.fault_code) for r in logged] == [
            (True, None),
            (False, "server.serverproxy.service_failed.network_error"),
        ]
        assert logged[1].message == response.body


class ProviderClientTest(ExchangeBed):
    """AgentProviderClient against the loopback provider."""

    @coroutine_test
    async def test_answer_is_delivered_with_status_and_content_type(self) -> None:
        """A 200 text/xml answer arrives whole."""
        client = AgentProviderClient(REACTOR, max_response_bytes=1 << 20, pool=self.pool)
        answer = await client.post(self.url("echo"), is_request(), {"Content-Type": SOAP}, 5.0)
        assert answer.status == 200
        assert answer.content_type.startswith("text/xml")
        assert b"getPersonResponse" in answer.body

    @coroutine_test
    async def test_answer_over_the_limit_is_io_error(self) -> None:
        """An answer larger than the limit fails as service_failed.io_error."""
        client = AgentProviderClient(REACTOR, max_response_bytes=100, pool=self.pool)
        with pytest.raises(ServiceFailed) as caught:
            await client.post(self.url("echo"), is_request(), {"Content-Type": SOAP}, 5.0)
        assert caught.value.fault_code == "server.serverproxy.service_failed.io_error"

    @coroutine_test
    async def test_unreachable_provider_is_network_error(self) -> None:
        """A refused connection fails as service_failed.network_error."""
        client = AgentProviderClient(REACTOR, max_response_bytes=1 << 20, pool=self.pool)
        with pytest.raises(ServiceFailed) as caught:
            await client.post(f"http://127.0.0.1:{free_port()}/", b"<x/>", {"Content-Type": SOAP}, 5.0)
        assert caught.value.fault_code == "server.serverproxy.service_failed.network_error"

    def url(self, path: str) -> str:
        """The provider service URL for ``path``."""
        return f"http://127.0.0.1:{self.port.getHost().port}/{path}"




