"""Issue 6 end to end: REST r1, the metadata services and SOAP attachments through two real security servers.

The same real federation as the SOAP end-to-end test (registry with its CA, OCSP responder and published global
configuration; two security servers from ``make_service`` registered through the real request flow; mutual TLS
between them), reused from test_soap_exchange_e2e.py. The consumer department's system is ``http.client`` in a
thread, speaking raw HTTP as ``curl`` does: REST GET and POST (JSON and ``multipart/form-data``) to a REST
provider, an error, ``listClients`` (XML and JSON), the SOAP and REST metadata services, and a SOAP request with two
attachments. Afterwards both message logs verify, and the logged hash chain of the attachment exchange verifies.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from lxml import etree
from twisted.internet import defer
from twisted.internet.threads import deferToThread
from twisted.trial import unittest
from twisted.web import server

from central_registry.service import RegistryService
from security_server.core.acl import AccessRight, Endpoint
from security_server.core.identifiers import IDENTIFIERS_NS, XROAD_NS, ServiceId
from security_server.core.logchain import Direction
from security_server.core.multipart import Part, build_multipart, format_header_value
from security_server.core.signature import verify_signature
from security_server.core.soap import SoapHeader, build_envelope
from security_server.core.soapattachments import parse_related, part_resolver
from security_server.messagelog.store import MessageLogStore
from security_server.serverconf.store import ServerConfStore, ServiceKind
from tests.central_registry.test_federation_flow import now
from tests.security_server import test_soap_exchange_e2e as soap_e2e
from tests.security_server.proxy.rest_provider import PETSTORE_OPENAPI, WSDL, AttachmentEcho, Reply, RestProvider, http_call

CONSUMER = soap_e2e.CONSUMER
PROVIDER = soap_e2e.PROVIDER
PETS = ServiceId(PROVIDER, "pets")
DOCUMENTS = ServiceId(PROVIDER, "storeDocument", "v1")
RANDOM = soap_e2e.SERVICE
R1 = "/r1/EE/GOV/70000311/provider"
CLIENT = "EE/GOV/70000310/consumer"


def soap_request(code: str, children: dict[str, str] | None = None) -> bytes:
    """A SOAP 4.0 request for the provider's service ``code`` with an ``xroad:`` body (pr-meta Annex C.2, C.6)."""
    header = SoapHeader(client=CONSUMER, service=ServiceId(PROVIDER, code), id=f"e2e-{code}")
    wrapper = etree.Element(etree.QName(XROAD_NS, code), nsmap={"xroad": XROAD_NS})
    for name, text in (children or {}).items():
        etree.SubElement(wrapper, etree.QName(XROAD_NS, name)).text = text
    return build_envelope(header, wrapper)


def department_system(port: int) -> dict[str, Any]:
    """Everything the consumer department's system does, in a thread (blocking HTTP)."""
    json_headers = {"X-Road-Client": CLIENT, "Accept": "application/json"}
    out: dict[str, Any] = {}
    out["get"] = http_call(port, "GET", f"{R1}/pets/v2/pets/1124?fields=name", {**json_headers, "X-Road-Id": "e2e-get"})
    pet = json.dumps({"id": 1124, "name": "Siddu", "photoUrls": [], "tags": [], "status": "Offline"}).encode()
    out["post_json"] = http_call(
        port, "POST", f"{R1}/pets/v2/pets", {**json_headers, "Content-Type": "application/json"}, pet
    )
    form_boundary = "------------------------" + uuid.uuid4().hex[:16]
    image = b"\xff\xd8\xff\xe0 a fluffy cat, surprised \x00\x01\x02" * 50
    form = (
        f"--{form_boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"cat.jpg\"\r\n"
        f"Content-Type: image/jpeg\r\n\r\n"
    ).encode() + image + f"\r\n--{form_boundary}--\r\n".encode()
    out["form"] = form
    out["post_form"] = http_call(
        port,
        "POST",
        f"{R1}/pets/v2/pets/1124/images",
        {**json_headers, "Content-Type": f"multipart/form-data; boundary={form_boundary}"},
        form,
    )
    out["no_client"] = http_call(port, "GET", f"{R1}/pets/v2/pets/1124", {"Accept": "application/json"})
    out["encoded_path"] = http_call(port, "GET", f"{R1}/pets/v2/pets/..%2F..%2Fadmin", json_headers)
    out["list_clients_xml"] = http_call(port, "GET", "/listClients", {})
    out["list_clients_json"] = http_call(port, "GET", "/listClients", {"Accept": "application/json"})
    soap_headers = {"Content-Type": "text/xml; charset=UTF-8", "SOAPAction": '""'}
    out["list_methods"] = http_call(port, "POST", "/", soap_headers, soap_request("listMethods"))
    out["allowed_methods"] = http_call(port, "POST", "/", soap_headers, soap_request("allowedMethods"))
    out["get_wsdl"] = http_call(
        port, "POST", "/", soap_headers, soap_request("getWsdl", {"serviceCode": "getRandom", "serviceVersion": "v1"})
    )
    out["rest_list_methods"] = http_call(port, "GET", f"{R1}/listMethods", json_headers)
    out["rest_allowed_methods"] = http_call(port, "GET", f"{R1}/allowedMethods", json_headers)
    out["get_openapi"] = http_call(port, "GET", f"{R1}/getOpenAPI?serviceCode=pets", json_headers)

    soap = build_envelope(
        SoapHeader(client=CONSUMER, service=DOCUMENTS, id="e2e-attachments"),
        etree.Element(etree.QName("http://example.org/docs", "storeDocument")),
    )
    parts = [
        Part((("Content-Type", "text/xml; charset=UTF-8"), ("Content-Transfer-Encoding", "8bit"), ("Content-ID", "<rootpart>")), soap),
        Part((("Content-Type", "application/pdf"), ("Content-ID", "<contract.pdf>")), b"%PDF-1.7 contract \x00\xfe"),
        Part((("Content-Type", "text/plain; charset=UTF-8"), ("Content-ID", "<note.txt>")), b"a short note"),
    ]
    boundary, body = build_multipart(parts)
    related = format_header_value("multipart/related", [("type", "text/xml"), ("start", "<rootpart>"), ("boundary", boundary)])
    out["attachments"] = http_call(port, "POST", "/", {"Content-Type": related, "SOAPAction": '""'}, body)
    return out


class RestEndToEndTest(unittest.TestCase):
    """REST, metadata and attachments through two security servers over real mutual TLS."""

    timeout = 180
    # The federation of the SOAP end-to-end test, reused as it is (its set-up, tear-down and department helper).
    registry: RegistryService
    provider_port: Any
    departments: list[soap_e2e.Department]
    extra_ports: list[Any]
    setUp: Any = soap_e2e.SoapExchangeEndToEndTest.setUp
    _department: Any = soap_e2e.SoapExchangeEndToEndTest._department

    @defer.inlineCallbacks
    def tearDown(self) -> Any:  # type: ignore[override]  # trial waits for the Deferred
        for port in getattr(self, "extra_ports", []):
            yield port.stopListening()
        base_tear_down: Any = soap_e2e.SoapExchangeEndToEndTest.tearDown
        yield base_tear_down(self)

    @defer.inlineCallbacks
    def test_rest_metadata_and_attachments_through_two_security_servers(self) -> Any:
        """curl-style REST calls, listClients, metadata services and two attachments all work end to end."""
        reactor = soap_e2e.reactor
        rest_provider, attachment_echo = RestProvider(), AttachmentEcho()
        self.extra_ports = [
            reactor.listenTCP(0, server.Site(rest_provider), interface="127.0.0.1"),  # type: ignore[no-untyped-call]
            reactor.listenTCP(0, server.Site(attachment_echo), interface="127.0.0.1"),  # type: ignore[no-untyped-call]
        ]
        rest_port, echo_port = (p.getHost().port for p in self.extra_ports)
        yield self.registry.publish_now()
        assert self.registry.publisher is not None
        anchor = self.registry.publisher.anchor(now())
        consumer = yield self._department(1, soap_e2e.CONSUMER_MEMBER, CONSUMER, anchor)
        provider = yield self._department(2, soap_e2e.PROVIDER_MEMBER, PROVIDER, anchor)
        with ServerConfStore(provider.root / "serverconf.db") as store:
            store.add_service(PETS, url=f"http://127.0.0.1:{rest_port}/api/", kind=ServiceKind.REST, description=PETSTORE_OPENAPI)
            store.grant(AccessRight(CONSUMER, PETS, Endpoint("GET", "/v2/pets/*")))
            store.grant(AccessRight(CONSUMER, PETS, Endpoint("POST", "/v2/pets")))
            store.grant(AccessRight(CONSUMER, PETS, Endpoint("POST", "/v2/pets/**")))
            store.add_service(RANDOM, url=f"http://127.0.0.1:{self.provider_port.getHost().port}/echo", description=WSDL)
            store.grant(AccessRight.for_service(CONSUMER, RANDOM))
            store.add_service(DOCUMENTS, url=f"http://127.0.0.1:{echo_port}/docs")
            store.grant(AccessRight.for_service(CONSUMER, DOCUMENTS))
        yield self.registry.publish_now()
        for department in (consumer, provider):
            yield department.service.conf_client.refresh()
            department.service.restart_ocsp()
            yield department.service.reload_serverconf()
            assert department.service.ocsp is not None
            for entry in department.service.token.list():
                if entry.cert is not None:
                    yield department.service.ocsp.refresh(entry.cert)

        out = yield deferToThread(department_system, consumer.service.client_proxy_port)

        # REST GET: the provider's answer with the five X-Road headers (protocol-examples §3.2)
        got: Reply = out["get"]
        assert got.status == 200, got
        assert json.loads(got.body)["path"] == "/api/v2/pets/1124" and json.loads(got.body)["query"] == "fields=name"
        assert got.header("x-road-id") == "e2e-get" and got.header("x-road-client") == CLIENT
        assert got.header("x-road-service") == "EE/GOV/70000311/provider/pets"
        assert got.header("x-road-request-id") and got.header("x-road-request-hash")
        assert got.header("content-type") == "application/json;charset=utf-8" and len(got.all("date")) == 1
        assert got.header("x-road-error") is None
        # REST POST with JSON and with multipart/form-data: the bodies arrive byte for byte
        posted: Reply = out["post_json"]
        assert posted.status == 200 and json.loads(posted.body)["content_type"] == "application/json"
        form: Reply = out["post_form"]
        assert form.status == 200, form
        forwarded = rest_provider.calls[-1]
        assert forwarded[0] == "POST" and forwarded[3] == out["form"]
        assert forwarded[2]["content-type"].startswith("multipart/form-data; boundary=")
        # errors inside the bus: error JSON and X-Road-Error (protocol-examples §3.4)
        for name, code in (("no_client", "client.bad_request"), ("encoded_path", "client.bad_request")):
            error: Reply = out[name]
            assert error.status == 400 and error.header("x-road-error") == code, (name, error)
            assert error.header("content-type") == "application/json;charset=utf-8"
            assert list(json.loads(error.body)) == ["type", "message", "detail"]
        # listClients, XML and JSON (protocol-examples §6.1)
        xml_list: Reply = out["list_clients_xml"]
        root = etree.fromstring(xml_list.body)
        assert root.tag == f"{{{XROAD_NS}}}clientList"
        ids = {
            (m.find(f"{{{XROAD_NS}}}id").get(f"{{{IDENTIFIERS_NS}}}objectType"), m.findtext(f".//{{{IDENTIFIERS_NS}}}memberCode"))  # type: ignore[union-attr]
            for m in root.findall(f"{{{XROAD_NS}}}member")
        }
        assert ("SUBSYSTEM", "70000311") in ids and ("MEMBER", "70000310") in ids
        json_list = json.loads(out["list_clients_json"].body)
        assert {"id", "name"} <= set(json_list["member"][0])
        # SOAP metadata through the signed exchange (protocol-examples §6.3-6.5)
        listed = etree.fromstring(out["list_methods"].body)
        codes = {e.findtext(f"{{{IDENTIFIERS_NS}}}serviceCode") for e in listed.iter(f"{{{XROAD_NS}}}service")}
        assert {"getRandom", "storeDocument"} <= codes and "pets" not in codes
        assert etree.fromstring(out["allowed_methods"].body).find(f".//{{{XROAD_NS}}}allowedMethodsResponse") is not None
        wsdl_reply: Reply = out["get_wsdl"]
        assert wsdl_reply.status == 200, wsdl_reply
        wsdl_message = parse_related(wsdl_reply.header("content-type") or "", wsdl_reply.body)
        assert b"http://example.org/xroad-endpoint" in wsdl_message.attachments[0].body
        # REST metadata (protocol-examples §7)
        rest_listed = json.loads(out["rest_list_methods"].body)["service"]
        assert [s["service_code"] for s in rest_listed] == ["pets"] and rest_listed[0]["service_type"] == "OPENAPI"
        allowed = json.loads(out["rest_allowed_methods"].body)["service"][0]["endpoint_list"]
        assert {"method": "GET", "path": "/pets/*"} not in allowed  # rights are on /v2/..., the description on /pets
        assert json.loads(out["get_openapi"].body)["servers"] == [{"url": "/api/v3"}]
        # a SOAP request with two attachments round-trips
        attached: Reply = out["attachments"]
        assert attached.status == 200, attached
        answer = parse_related(attached.header("content-type") or "", attached.body)
        assert [a.body for a in answer.attachments] == [b"a short note", b"%PDF-1.7 contract \x00\xfe"]
        assert [a.header("Content-ID") for a in attachment_echo.received[0].attachments] == ["<contract.pdf>", "<note.txt>"]

        yield consumer.service.stopService()
        yield provider.service.stopService()
        self.departments = []
        for department in (consumer, provider):
            with MessageLogStore(department.root / "messagelog.db") as log_store:
                assert log_store.verify() >= 20
                found = log_store.find("e2e-attachments")
            assert {r.direction for r in found} == {Direction.REQUEST, Direction.RESPONSE}
            for record in found:
                assert len(record.attachments) == 2 and record.hashchain is not None
                resolve = part_resolver(record.message, record.attachments, record.hashchainresult, record.hashchain)
                verify_signature(record.signature, resolve, expected_parts=("/message.xml", "/attachment1", "/attachment2"))
