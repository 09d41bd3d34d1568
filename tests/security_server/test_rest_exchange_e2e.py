"""Issue 6 end to end: REST r1, the metadata services and SOAP attachments through two real security servers.

The same real federation as the SOAP end-to-end test (registry with its CA, OCSP responder and published global
configuration; two security servers from ``make_service`` registered through the real request flow; mutual TLS
between them), from tests/e2e_federation.py. The consumer department's system is ``http.client`` in a
thread, speaking raw HTTP as ``curl`` does: REST GET and POST (JSON and ``multipart/form-data``) to a REST
provider, an error, ``listClients`` (XML and JSON), the SOAP and REST metadata services, and a SOAP request with two
attachments. Afterwards both message logs verify, and the logged hash chain of the attachment exchange verifies.
"""

from __future__ import annotations

import json
from typing import Any

from lxml import etree
from twisted.internet import defer
from twisted.internet.threads import deferToThread
from twisted.web import server

from security_server.core.identifiers import IDENTIFIERS_NS, XROAD_NS
from security_server.core.logchain import Direction
from security_server.core.signature import verify_signature
from security_server.core.soapattachments import parse_related, part_resolver
from security_server.messagelog.store import MessageLogStore
from tests import e2e_federation as federation
from tests.e2e_federation import CONSUMER, CONSUMER_MEMBER, PROVIDER, PROVIDER_MEMBER, reactor
from tests.security_server.consumer_traffic import CLIENT, department_system, publish_services
from tests.security_server.proxy.rest_provider import AttachmentEcho, Reply, RestProvider


class RestEndToEndTest(federation.TwoDepartmentFederation):
    """REST, metadata and attachments through two security servers over real mutual TLS."""

    extra_ports: list[Any]

    @defer.inlineCallbacks
    def tearDown(self) -> Any:  # type: ignore[override]  # trial waits for the Deferred
        for port in getattr(self, "extra_ports", []):
            yield port.stopListening()
        yield super().tearDown()

    @defer.inlineCallbacks
    def test_rest_metadata_and_attachments_through_two_security_servers(self) -> Any:
        """curl-style REST calls, listClients, metadata services and two attachments all work end to end."""
        rest_provider, attachment_echo = RestProvider(), AttachmentEcho()
        self.extra_ports = [
            reactor.listenTCP(0, server.Site(rest_provider), interface="127.0.0.1"),  # type: ignore[no-untyped-call]
            reactor.listenTCP(0, server.Site(attachment_echo), interface="127.0.0.1"),  # type: ignore[no-untyped-call]
        ]
        rest_port, echo_port = (p.getHost().port for p in self.extra_ports)
        yield self.registry.publish_now()
        anchor = self.anchor()
        consumer = yield self.add_department(1, CONSUMER_MEMBER, CONSUMER, anchor)
        provider = yield self.add_department(2, PROVIDER_MEMBER, PROVIDER, anchor)
        publish_services(provider.root, rest_port, self.provider_port.getHost().port, echo_port)
        yield self.catch_up(consumer, provider)

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
