"""Issue 6 at the exchange level: REST r1 calls, the metadata services and SOAP attachments, consumer to provider.

The consumer's client proxy and the provider's server proxy are wired through the in-memory peer link with real
keys, real OCSP, real server configurations and real message logs (tests/federation/world.py); the providers are real
HTTP services on loopback. One test per "Bad input" case of issue 6, each asserting the X-Road fault code the
consumer's system receives (REST: the error JSON and ``X-Road-Error``; SOAP: the fault).
"""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from typing import Any

from lxml import etree
from twisted.internet.threads import deferToThread
from twisted.web import server

from security_server.core.acl import AccessRight, Endpoint
from security_server.core.config import MessageLimits
from security_server.core.identifiers import IDENTIFIERS_NS, XROAD_NS, ServiceId
from security_server.core.logchain import Direction
from security_server.core.multipart import Part, build_multipart, format_header_value
from security_server.core.rest import RestAnswer, header_value
from security_server.core.signature import verify_signature
from security_server.core.soap import SoapHeader, build_envelope
from security_server.core.soapattachments import parse_related, part_resolver
from security_server.core.transport import REST_REQUEST, MessageContent, SignedMessage, TransportHeaders, encode_transport
from security_server.messagelog.store import MessageLogStore
from security_server.proxy.client_proxy_site import client_proxy_site
from security_server.proxy.peerlink import PeerRequest
from security_server.signer.batch_signer import sign_message
from security_server.serverconf.store import ServiceKind
from tests.federation.pki import der
from tests.federation.world import (
    CONSUMER,
    PROVIDER,
    REST,
    SERVICE,
    ExchangeBed,
    RewritingLink,
    fault_code,
    is_request,
    records,
    signing_keys,
)
from tests.loopback import REACTOR, coroutine_test, now
from tests.security_server.proxy.rest_provider import PETSTORE_OPENAPI, WSDL, AttachmentEcho, RestProvider, http_call

PETS = ServiceId(PROVIDER, "pets")
FILES = ServiceId(PROVIDER, "files")
DOCUMENTS = ServiceId(PROVIDER, "storeDocument", "v1")
WSDL_SERVICE = ServiceId(PROVIDER, "getRandom", "v1")
PROVIDER_PATH = "/r1/EE/GOV/70000002/service"
CLIENT_HEADER = ("X-Road-Client", "EE/GOV/70000001/client")

def rest_error(answer: RestAnswer) -> dict[str, Any]:
    """The error JSON of a REST answer, after checking its shape (pr-rest §4.6)."""
    assert header_value(answer.headers, "Content-Type") == "application/json;charset=utf-8", answer
    body = json.loads(answer.body)
    assert list(body) == ["type", "message", "detail"]
    assert header_value(answer.headers, "X-Road-Error") == body["type"]
    uuid.UUID(body["detail"])
    return dict(body)


def metadata_request(code: str, body_children: dict[str, str] | None = None) -> bytes:
    """A SOAP metadata request shaped like pr-meta Annex C.2 / C.6 (``xroad:`` body wrapper)."""
    header = SoapHeader(client=CONSUMER, service=ServiceId(PROVIDER, code), id=str(uuid.uuid4()))
    wrapper = etree.Element(etree.QName(XROAD_NS, code), nsmap={"xroad": XROAD_NS})
    for name, text in (body_children or {}).items():
        etree.SubElement(wrapper, etree.QName(XROAD_NS, name)).text = text
    return build_envelope(header, wrapper)


def related_request(soap: bytes, attachments: list[tuple[str, bytes]], *, mtom: bool = False) -> tuple[str, bytes]:
    """A SOAP request with attachments as a department system posts it (pr-mess Annex F / G)."""
    soap_type = 'application/xop+xml; charset=UTF-8; type="text/xml"' if mtom else "text/xml; charset=UTF-8"
    parts = [Part((("Content-Type", soap_type), ("Content-Transfer-Encoding", "8bit"), ("Content-ID", "<rootpart>")), soap)]
    for index, (media, data) in enumerate(attachments, start=1):
        parts.append(
            Part(
                (
                    ("Content-Type", media),
                    ("Content-Transfer-Encoding", "binary"),
                    ("Content-ID", f"<att{index}@example.org>"),
                    ("Content-Disposition", f'attachment; name="att{index}"'),
                ),
                data,
            )
        )
    boundary, body = build_multipart(parts)
    params = [("type", "application/xop+xml" if mtom else "text/xml"), ("start", "<rootpart>")]
    if mtom:
        params.append(("start-info", "text/xml"))
    return format_header_value("multipart/related", [*params, ("boundary", boundary)]), body


class RestExchangeTest(ExchangeBed):
    """REST r1, metadata services and SOAP attachments through the in-memory link."""

    def setUp(self) -> None:
        super().setUp()
        self.rest_provider = RestProvider()
        site = server.Site(self.rest_provider)  # type: ignore[no-untyped-call]
        site.timeOut = None
        self.rest_port = REACTOR.listenTCP(0, site, interface="127.0.0.1")
        self.attachment_echo = AttachmentEcho()
        echo_site = server.Site(self.attachment_echo)  # type: ignore[no-untyped-call]
        echo_site.timeOut = None
        self.echo_port = REACTOR.listenTCP(0, echo_site, interface="127.0.0.1")
        rest_base = f"http://127.0.0.1:{self.rest_port.getHost().port}"
        store = self.provider.store
        store.add_service(PETS, url=f"{rest_base}/api/", kind=ServiceKind.REST, description=PETSTORE_OPENAPI)
        store.grant(AccessRight(CONSUMER, PETS))
        store.add_service(FILES, url=f"{rest_base}/files", kind=ServiceKind.REST, description=PETSTORE_OPENAPI)
        store.grant(AccessRight(CONSUMER, FILES, Endpoint("GET", "/public/*")))
        store.add_service(DOCUMENTS, url=f"http://127.0.0.1:{self.echo_port.getHost().port}/docs")
        store.grant(AccessRight.for_service(CONSUMER, DOCUMENTS))
        store.add_service(WSDL_SERVICE, url="http://127.0.0.1:1/random", description=WSDL)

    async def _tear_down(self) -> None:
        await self.rest_port.stopListening()
        await self.echo_port.stopListening()
        await super()._tear_down()

    async def rest(
        self, method: str, target: str, headers: list[tuple[str, str]] | None = None, body: bytes = b""
    ) -> RestAnswer:
        """A REST call as the consumer's system makes it (with X-Road-Client unless ``headers`` are given)."""
        return await self.client_proxy.handle_rest(method, target, [CLIENT_HEADER] if headers is None else headers, body)

    # --- REST: what works ---------------------------------------------------------------------------------------

    @coroutine_test
    async def test_rest_get_reaches_provider_and_answers_with_x_road_headers(self) -> None:
        """GET with a path and query reaches base URL + path + query; the answer carries the five X-Road headers."""
        answer = await self.rest(
            "GET",
            f"{PROVIDER_PATH}/pets/v2/pets/1124?status=available&x=%20y",
            [CLIENT_HEADER, ("Accept", "application/json"), ("X-Road-UserId", "EE30101010007"), ("X-Custom", "kept")],
        )
        assert answer.status == 200, answer
        echoed = json.loads(answer.body)
        assert echoed["method"] == "GET"
        assert echoed["path"] == "/api/v2/pets/1124" and echoed["query"] == "status=available&x=%20y"
        sent = echoed["headers"]
        assert sent["x-road-client"] == "EE/GOV/70000001/client" and sent["x-custom"] == "kept"
        assert sent["accept"] == "application/json" and sent["x-road-userid"] == "EE30101010007"
        assert sent["x-road-id"].startswith("EE-") and "x-road-request-id" in sent
        names = [name.lower() for name, _ in answer.headers]
        assert names[-5:] == ["x-road-id", "x-road-client", "x-road-service", "x-road-request-id", "x-road-request-hash"]
        assert header_value(answer.headers, "x-road-service") == "EE/GOV/70000002/service/pets"
        assert header_value(answer.headers, "x-road-client") == "EE/GOV/70000001/client"
        assert header_value(answer.headers, "x-provider") == "pets"
        assert "x-road-error" not in names and names.count("x-road-service") == 1  # the provider's were dropped

        consumer_log = records(self.consumer.log_path)
        assert [r.direction for r in consumer_log] == [Direction.REQUEST, Direction.RESPONSE]
        request_record = consumer_log[0]
        assert request_record.attachments == () and request_record.hashchain is None  # no body: signed directly
        request_hash = hashlib.sha512(request_record.message).digest()
        assert header_value(answer.headers, "x-road-request-hash") == base64.b64encode(request_hash).decode()
        assert header_value(answer.headers, "x-road-id") == request_record.query_id

    @coroutine_test
    async def test_rest_post_body_is_signed_through_a_hash_chain_and_logged_on_both_sides(self) -> None:
        """A POST body travels as attachment1 under a hash chain; both logs verify, with the body as attachment."""
        body = json.dumps({"name": "Siddu", "photoUrls": []}).encode()
        answer = await self.rest(
            "POST",
            f"{PROVIDER_PATH}/pets/pets",
            [CLIENT_HEADER, ("Content-Type", "application/json"), ("X-Road-Id", "post-1")],
            body,
        )
        assert answer.status == 200, answer
        echoed = json.loads(answer.body)
        assert echoed["body_sha256"] == hashlib.sha256(body).hexdigest() and echoed["content_type"] == "application/json"
        for side in (self.consumer, self.provider):
            with MessageLogStore(side.log_path) as store:
                assert store.verify() == 2
                logged = list(store.records())
            request_record, response_record = logged
            assert request_record.query_id == response_record.query_id == "post-1"
            assert request_record.attachments == (body,) and response_record.attachments == (answer.body,)
            for record in logged:
                resolve = part_resolver(record.message, record.attachments, record.hashchainresult, record.hashchain)
                verified = verify_signature(record.signature, resolve, expected_parts=("/message.xml", "/attachment1"))
                assert verified.hash_chain is not None
        expected = hashlib.sha512(hashlib.sha512(records(self.consumer.log_path)[0].message).digest() + hashlib.sha512(body).digest())
        assert header_value(answer.headers, "x-road-request-hash") == base64.b64encode(expected.digest()).decode()

    @coroutine_test
    async def test_x_road_security_server_header_targets_one_server(self) -> None:
        """X-Road-Security-Server naming the provider's server is honoured; naming another one is refused."""
        target = f"{PROVIDER_PATH}/pets/pets"
        good = await self.rest("GET", target, [CLIENT_HEADER, ("X-Road-Security-Server", "EE/GOV/70000002/ss2")])
        assert good.status == 200, good
        bad = await self.rest("GET", target, [CLIENT_HEADER, ("X-Road-Security-Server", "EE/GOV/70000002/ss9")])
        assert rest_error(bad)["type"] == "server.clientproxy.invalid_security_server" and bad.status == 500

    @coroutine_test
    async def test_rest_provider_error_status_and_body_pass_through(self) -> None:
        """A provider's 405 with its own JSON passes unchanged and without X-Road-Error (pr-rest §4.6 category 1)."""
        answer = await self.rest("PUT", f"{PROVIDER_PATH}/pets/status/405")
        assert answer.status == 405
        assert json.loads(answer.body)["error"] == "Method Not Allowed"
        assert header_value(answer.headers, "X-Road-Error") is None
        assert header_value(answer.headers, "x-road-request-hash") is not None

    @coroutine_test
    async def test_endpoint_right_allows_only_its_endpoint(self) -> None:
        """A right on GET /public/* lets GET /public/a through; other paths and methods are access_denied."""
        allowed = await self.rest("GET", f"{PROVIDER_PATH}/files/public/a")
        assert allowed.status == 200, allowed
        assert json.loads(allowed.body)["path"] == "/files/public/a"
        for method, path in (("GET", "/secret"), ("GET", "/public/a/b"), ("POST", "/public/a"), ("GET", "")):
            denied = await self.rest(method, f"{PROVIDER_PATH}/files{path}")
            assert denied.status == 500
            assert rest_error(denied)["type"] == "server.serverproxy.access_denied"
        assert [call[1] for call in self.rest_provider.calls] == ["/files/public/a"]

    # --- REST: bad input -----------------------------------------------------------------------------------------

    @coroutine_test
    async def test_missing_x_road_client_is_bad_request(self) -> None:
        """No X-Road-Client header is client.bad_request (400, error JSON); nothing is sent."""
        answer = await self.rest("GET", f"{PROVIDER_PATH}/pets/pets", [("Accept", "application/json")])
        assert answer.status == 400
        assert rest_error(answer)["type"] == "client.bad_request"
        self.assert_nothing_sent()

    @coroutine_test
    async def test_malformed_x_road_client_is_invalid_client_identifier(self) -> None:
        """An X-Road-Client with too few parts or characters outside X-Road's set is client.invalid_client_identifier."""
        for value in ("EE/GOV", "EE/GOV/70000001/client/extra", "EE/GOV/70000001/cli%20ent", "EE/GOV/%2e%2e/client"):
            answer = await self.rest("GET", f"{PROVIDER_PATH}/pets/pets", [("X-Road-Client", value)])
            assert answer.status == 400, value
            assert rest_error(answer)["type"] == "client.invalid_client_identifier", value
        self.assert_nothing_sent()

    @coroutine_test
    async def test_too_few_path_segments_is_bad_request(self) -> None:
        """A path without a service code (fewer than /r1/ + five segments) is client.bad_request."""
        for target in ("/r1/EE/GOV/70000002/service", "/r1/EE/GOV/70000002", "/r1/"):
            answer = await self.rest("GET", target)
            assert answer.status == 400, target
            assert rest_error(answer)["type"] == "client.bad_request", target
        self.assert_nothing_sent()

    @coroutine_test
    async def test_percent_encoded_slash_cannot_reach_another_endpoint(self) -> None:
        """GET /public/..%2Fsecret (an encoded separator) is client.bad_request, never /secret."""
        answer = await self.rest("GET", f"{PROVIDER_PATH}/files/public/..%2Fsecret")
        assert rest_error(answer)["type"] == "client.bad_request" and answer.status == 400
        self.assert_nothing_sent()
        assert self.rest_provider.calls == []

    @coroutine_test
    async def test_encoded_dot_segments_cannot_reach_another_endpoint(self) -> None:
        """GET /public/%2e%2e/secret and /public/%2E./secret are client.bad_request."""
        for path in ("/public/%2e%2e/secret", "/public/%2E./secret", "/public/.%2e"):
            answer = await self.rest("GET", f"{PROVIDER_PATH}/files{path}")
            assert rest_error(answer)["type"] == "client.bad_request", path
        self.assert_nothing_sent()

    @coroutine_test
    async def test_plain_dot_segments_cannot_reach_another_endpoint(self) -> None:
        """GET /public/../secret and /public/./a are client.bad_request."""
        for path in ("/public/../secret", "/public/./a", "/public/a/.."):
            answer = await self.rest("GET", f"{PROVIDER_PATH}/files{path}")
            assert rest_error(answer)["type"] == "client.bad_request", path
        self.assert_nothing_sent()

    @coroutine_test
    async def test_double_encoding_cannot_reach_another_endpoint(self) -> None:
        """GET /public/%252e%252e/secret and /public/a%252Fb (double encoding) are client.bad_request."""
        for path in ("/public/%252e%252e/secret", "/public/a%252Fb", "/public/%25"):
            answer = await self.rest("GET", f"{PROVIDER_PATH}/files{path}")
            assert rest_error(answer)["type"] == "client.bad_request", path
        self.assert_nothing_sent()

    @coroutine_test
    async def test_semicolon_path_parameters_cannot_reach_another_endpoint(self) -> None:
        """GET /public/..;/secret and /public/a;x=1 are client.bad_request (servlet containers cut at ';')."""
        for path in ("/public/..;/secret", "/public/a;x=1", "/public/a%3B/secret", "/public//a"):
            answer = await self.rest("GET", f"{PROVIDER_PATH}/files{path}")
            assert rest_error(answer)["type"] == "client.bad_request", path
        self.assert_nothing_sent()

    @coroutine_test
    async def test_provider_server_refuses_an_encoded_path_signed_by_a_lenient_consumer(self) -> None:
        """A signed REST message whose path has %2e%2e is server.serverproxy.bad_request; the provider is not called."""
        message = (
            f"GET\r\n{PROVIDER_PATH}/files/public/%2e%2e/secret\r\nx-road-client:EE/GOV/70000001/client\r\n"
            f"x-road-request-id:req-1\r\nx-road-id:evil-1\r\n"
        ).encode()
        signature = sign_message(signing_keys(self.consumer.context.token), self.consumer.own_ocsp, CONSUMER, message, now())
        auth = self.pki.auth_cert(self.pki.consumer_token)
        content_type, body = encode_transport(
            SignedMessage(MessageContent(message, REST_REQUEST), signature, (self.consumer.own_ocsp(auth),))
        )
        headers = dict(TransportHeaders("req-1", rest=True).to_http())
        response = await self.server_proxy.handle(der(auth), PeerRequest(headers=headers, content_type=content_type, body=body))
        assert fault_code(response.body) == "server.serverproxy.bad_request"
        assert self.rest_provider.calls == []
        assert records(self.provider.log_path) == []

    @coroutine_test
    async def test_rest_call_to_soap_service_is_service_type(self) -> None:
        """A REST call naming a SOAP service is server.serverproxy.service_type (500)."""
        answer = await self.rest("GET", f"{PROVIDER_PATH}/{SERVICE.service_code}")
        assert answer.status == 500
        assert rest_error(answer)["type"] == "server.serverproxy.service_type"
        assert self.rest_provider.calls == [] and self.service.calls == {}

    @coroutine_test
    async def test_soap_call_to_rest_service_is_service_type(self) -> None:
        """A SOAP request naming a REST service is server.serverproxy.service_type."""
        await self.assert_fault(is_request(PETS), "server.serverproxy.service_type")
        await self.assert_fault(is_request(REST), "server.serverproxy.service_type")
        assert self.rest_provider.calls == []

    @coroutine_test
    async def test_oversized_uri_is_refused(self) -> None:
        """A request URI over the configured limit (2000 characters) is 413 client.bad_request; nothing is sent."""
        answer = await self.rest("GET", f"{PROVIDER_PATH}/pets/" + "a" * 2100)
        assert answer.status == 413
        assert rest_error(answer)["type"] == "client.bad_request"
        self.assert_nothing_sent()

    @coroutine_test
    async def test_oversized_body_is_refused_over_http(self) -> None:
        """Over HTTP a body over the limit is 413 client.bad_request with the error JSON, and so is a long URI."""
        consumer = self.make_consumer(limits=MessageLimits(max_body_bytes=4096))
        site = client_proxy_site(self.make_client_proxy(self.link, consumer))
        port = REACTOR.listenTCP(0, site, interface="127.0.0.1")
        try:
            number = port.getHost().port
            headers = {"X-Road-Client": "EE/GOV/70000001/client", "Content-Type": "application/json"}
            big = await deferToThread(http_call, number, "POST", f"{PROVIDER_PATH}/pets/pets", headers, b"x" * 5000)
            long_uri = await deferToThread(http_call, number, "GET", f"{PROVIDER_PATH}/pets/{'a' * 2100}", headers)
        finally:
            await port.stopListening()
        for reply in (big, long_uri):
            assert reply.status == 413
            assert reply.header("X-Road-Error") == "client.bad_request"
            assert list(json.loads(reply.body)) == ["type", "message", "detail"]
        self.assert_nothing_sent()

    # --- REST metadata services ----------------------------------------------------------------------------------

    @coroutine_test
    async def test_rest_list_methods_lists_rest_services_with_endpoints(self) -> None:
        """REST listMethods lists every REST service with X-Road's keys; OpenAPI endpoints with * for parameters."""
        answer = await self.rest("GET", f"{PROVIDER_PATH}/listMethods")
        assert answer.status == 200, answer
        listed = json.loads(answer.body)["service"]
        by_code = {entry["service_code"]: entry for entry in listed}
        assert set(by_code) == {"restService", "pets", "files"}
        pets = by_code["pets"]
        assert list(pets) == [
            "member_class", "member_code", "object_type", "service_code", "service_type", "subsystem_code",
            "xroad_instance", "endpoint_list",
        ]
        assert pets["service_type"] == "OPENAPI" and by_code["restService"]["service_type"] == "REST"
        assert {"method": "GET", "path": "/pets/*"} in pets["endpoint_list"]
        assert {"method": "POST", "path": "/pets/*/images"} in pets["endpoint_list"]
        assert self.rest_provider.calls == []

    @coroutine_test
    async def test_rest_allowed_methods_lists_what_the_client_may_call(self) -> None:
        """REST allowedMethods: services with a right; for an endpoint right only the endpoints it covers."""
        answer = await self.rest("GET", f"{PROVIDER_PATH}/allowedMethods")
        listed = {entry["service_code"]: entry for entry in json.loads(answer.body)["service"]}
        assert set(listed) == {"restService", "pets", "files"}
        assert listed["files"]["endpoint_list"] == [{"method": "GET", "path": "/public/*"}]
        assert len(listed["pets"]["endpoint_list"]) == 7  # every operation of the description

    @coroutine_test
    async def test_get_openapi_returns_the_anonymised_description(self) -> None:
        """getOpenAPI?serviceCode=pets returns the OpenAPI document with servers cut to their paths."""
        answer = await self.rest("GET", f"{PROVIDER_PATH}/getOpenAPI?serviceCode=pets")
        assert answer.status == 200, answer
        document = json.loads(answer.body)
        assert document["servers"] == [{"url": "/api/v3"}]
        assert "/pets/{petId}" in document["paths"]

    @coroutine_test
    async def test_get_openapi_for_unknown_service_code_is_refused(self) -> None:
        """getOpenAPI for a service code the provider does not have is X-Road's server.serverproxy.internal_error."""
        answer = await self.rest("GET", f"{PROVIDER_PATH}/getOpenAPI?serviceCode=noSuchService")
        assert answer.status == 500
        assert rest_error(answer)["type"] == "server.serverproxy.internal_error"
        missing = await self.rest("GET", f"{PROVIDER_PATH}/getOpenAPI")
        assert rest_error(missing)["type"] == "server.serverproxy.invalid_request"

    # --- SOAP metadata services ----------------------------------------------------------------------------------

    @coroutine_test
    async def test_soap_list_methods_and_allowed_methods(self) -> None:
        """listMethods lists the SOAP services; allowedMethods those the client may call; shaped as Annex C.3/C.5."""
        status, _, answer = await self.send(metadata_request("listMethods"))
        assert status == 200, answer[:600]
        root = etree.fromstring(answer)
        listed = root.findall(f".//{{{XROAD_NS}}}listMethodsResponse/{{{XROAD_NS}}}service")
        codes = {element.findtext(f"{{{IDENTIFIERS_NS}}}serviceCode") for element in listed}
        assert {"getPerson", "deniedService", "storeDocument", "getRandom"} <= codes
        assert not codes & {"pets", "files", "restService"}
        assert root.find(f".//{{{XROAD_NS}}}requestHash") is not None
        status, _, allowed = await self.send(metadata_request("allowedMethods"))
        allowed_codes = {
            element.findtext(f"{{{IDENTIFIERS_NS}}}serviceCode")
            for element in etree.fromstring(allowed).findall(f".//{{{XROAD_NS}}}allowedMethodsResponse/{{{XROAD_NS}}}service")
        }
        assert "getPerson" in allowed_codes and "deniedService" not in allowed_codes and "getRandom" not in allowed_codes

    @coroutine_test
    async def test_get_wsdl_returns_the_wsdl_as_an_attachment(self) -> None:
        """getWsdl answers getWsdlResponse and the WSDL as a MIME attachment with the endpoint rewritten."""
        status, content_type, answer = await self.send(
            metadata_request("getWsdl", {"serviceCode": "getRandom", "serviceVersion": "v1"})
        )
        assert status == 200, answer[:600]
        related = parse_related(content_type, answer)
        root = etree.fromstring(related.soap.body)
        assert root.findtext(f".//{{{XROAD_NS}}}getWsdlResponse/{{{XROAD_NS}}}serviceCode") == "getRandom"
        (wsdl,) = related.attachments
        assert wsdl.header("Content-Type") == "text/xml" and (wsdl.header("Content-ID") or "").startswith("<wsdl=")
        assert b"http://example.org/xroad-endpoint" in wsdl.body and b"10.0.0.7" not in wsdl.body

    @coroutine_test
    async def test_get_wsdl_for_unknown_service_code_is_refused(self) -> None:
        """getWsdl for a service code the provider does not have is server.serverproxy.unknown_service."""
        await self.assert_fault(metadata_request("getWsdl", {"serviceCode": "noSuchService"}), "server.serverproxy.unknown_service")
        await self.assert_fault(metadata_request("getWsdl", {"serviceCode": "pets"}), "server.serverproxy.service_type")
        await self.assert_fault(metadata_request("getWsdl"), "server.serverproxy.invalid_request")

    # --- SOAP attachments ----------------------------------------------------------------------------------------

    async def _send_related(self, content_type: str, body: bytes) -> tuple[int, str, bytes]:
        return await self.client_proxy.handle_soap(content_type, body, {"SOAPAction": '""'})

    @coroutine_test
    async def test_soap_with_two_attachments_round_trips_and_logged_hash_chains_verify(self) -> None:
        """Two attachments reach the provider with their MIME headers; the answer's come back; logs verify."""
        first, second = b"%PDF-1.4 first attachment\r\n\x00\xff", b"second attachment"
        soap = is_request(DOCUMENTS, query_id="att-1")
        content_type, body = related_request(soap, [("application/pdf", first), ("text/plain; charset=UTF-8", second)])
        status, answer_type, answer = await self._send_related(content_type, body)
        assert status == 200, answer[:600]
        (received,) = self.attachment_echo.received
        assert received.soap.body == soap
        assert [a.body for a in received.attachments] == [first, second]
        assert received.attachments[0].headers[1:] == (
            ("Content-Transfer-Encoding", "binary"), ("Content-ID", "<att1@example.org>"),
            ("Content-Disposition", 'attachment; name="att1"'),
        )
        returned = parse_related(answer_type, answer)
        assert [a.body for a in returned.attachments] == [second, first]
        assert returned.attachments[0].header("Content-ID") == "<att2@example.org>"
        assert etree.fromstring(returned.soap.body).find(f".//{{{XROAD_NS}}}requestHash") is not None
        for side in (self.consumer, self.provider):
            with MessageLogStore(side.log_path) as store:
                assert store.verify() == 2
                logged = list(store.records())
            assert logged[0].attachments == (first, second) and logged[1].attachments == (second, first)
            for record in logged:
                resolve = part_resolver(record.message, record.attachments, record.hashchainresult, record.hashchain)
                verified = verify_signature(
                    record.signature, resolve, expected_parts=("/message.xml", "/attachment1", "/attachment2")
                )
                assert verified.hash_chain is not None and record.hashchain is not None

    @coroutine_test
    async def test_mtom_request_round_trips(self) -> None:
        """An MTOM request (application/xop+xml SOAP part) reaches the provider as MTOM and is answered."""
        soap = is_request(DOCUMENTS, query_id="mtom-1")
        content_type, body = related_request(soap, [("application/octet-stream", b"\x00binary\x01")], mtom=True)
        status, _, answer = await self._send_related(content_type, body)
        assert status == 200, answer[:600]
        (received,) = self.attachment_echo.received
        assert received.is_mtom and received.attachments[0].body == b"\x00binary\x01"

    @coroutine_test
    async def test_empty_multipart_is_missing_soap(self) -> None:
        """A multipart/related body without any part is client.missing_soap; nothing is sent."""
        status, _, answer = await self._send_related('multipart/related; type="text/xml"; boundary="b1"', b"--b1--\r\n")
        assert fault_code(answer) == "client.missing_soap" and status == 200
        self.assert_nothing_sent()

    @coroutine_test
    async def test_missing_mime_boundary_is_mime_parsing_failed(self) -> None:
        """A multipart/related content type without a boundary is client.mime_parsing_failed."""
        _, body = related_request(is_request(DOCUMENTS), [("text/plain", b"x")])
        status, _, answer = await self._send_related('multipart/related; type="text/xml"', body)
        assert fault_code(answer) == "client.mime_parsing_failed" and status == 200
        self.assert_nothing_sent()

    @coroutine_test
    async def test_soap_part_not_first_is_invalid_content_type(self) -> None:
        """An attachment before the SOAP part (or start naming a later part) is client.invalid_content_type."""
        soap = is_request(DOCUMENTS)
        parts = [
            Part((("Content-Type", "application/octet-stream"), ("Content-ID", "<att1>")), b"data"),
            Part((("Content-Type", "text/xml; charset=UTF-8"), ("Content-ID", "<rootpart>")), soap),
        ]
        boundary, body = build_multipart(parts)
        for params in ([("type", "text/xml")], [("type", "text/xml"), ("start", "<rootpart>")]):
            content_type = format_header_value("multipart/related", [*params, ("boundary", boundary)])
            status, _, answer = await self._send_related(content_type, body)
            assert fault_code(answer) == "client.invalid_content_type" and status == 200
        self.assert_nothing_sent()

    @coroutine_test
    async def test_attachment_altered_in_transit_fails_the_signature(self) -> None:
        """One byte of an attachment changed between the servers fails the hash chain: the provider is not called."""

        def tamper(request: PeerRequest) -> PeerRequest:
            assert b"second attachment" in request.body
            return PeerRequest(
                headers=request.headers,
                content_type=request.content_type,
                body=request.body.replace(b"second attachment", b"second attachmenT"),
                path=request.path,
            )

        proxy = self.make_client_proxy(RewritingLink(self.link, request=tamper))
        content_type, body = related_request(is_request(DOCUMENTS), [("text/plain", b"first"), ("text/plain", b"second attachment")])
        _, _, answer = await proxy.handle_soap(content_type, body, {})
        assert fault_code(answer) == "server.serverproxy.malformed_signature.invalid_hash_chain_ref"
        assert self.attachment_echo.received == []
        assert records(self.provider.log_path) == []
