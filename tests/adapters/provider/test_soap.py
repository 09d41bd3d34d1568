"""The SOAP provider kit: a generated WSDL that zeep loads, X-Road headers echoed, faults for bad input."""

from __future__ import annotations

import datetime as dt
import io
from typing import Any, TypedDict

import pytest
import zeep
from lxml import etree
from twisted.internet import defer
from twisted.internet.threads import deferToThread
from twisted.trial import unittest

from adapters.consumer.faults import ProviderFault
from adapters.consumer.soap import SoapConsumer, xroad_versions
from adapters.provider.caller import Caller
from adapters.provider.shapes import ShapeError
from adapters.provider.soap import SoapFaultError, SoapProvider
from security_server.core.errors import SOAP_ENV_NS
from security_server.core.identifiers import XROAD_NS, ClientId, SecurityServerId, ServiceId
from security_server.core.safexml import parse_xml
from security_server.core.soap import SoapHeader, build_envelope, parse_soap
from tests.adapters.sites import connections_closed, listen

NS = "http://test.fedbus.example/kit"
CLIENT = ClientId("EE", "GOV", "70000001", "consumer")
PROVIDER = ClientId("EE", "GOV", "70000002", "provider")
WSDL_NS = "http://schemas.xmlsoap.org/wsdl/"
XSD_NS = "http://www.w3.org/2001/XMLSchema"


class Greeting(TypedDict):
    """A greeting and when it was made."""

    message: str
    day: dt.date
    asked_by: str
    user: str | None


def make_provider(calls: list[Caller] | None = None) -> SoapProvider:
    """A provider with a greeting, a failing operation and one that raises its own fault."""
    provider = SoapProvider(NS, name="kitService")

    @provider.operation(version="v2", title="Greet someone", titles={"name": "Whom to greet"})
    def greet(caller: Caller, name: str, times: int = 1) -> Greeting:
        if calls is not None:
            calls.append(caller)
        return {"message": " ".join([f"Hello {name}"] * times), "day": dt.date(2026, 1, 2),
                "asked_by": str(caller.client), "user": caller.user_id}

    @provider.operation(returns={"never": str})
    def broken(caller: Caller) -> Any:
        raise RuntimeError("database password is hunter2")

    @provider.operation(returns={"never": str})
    def refuse(caller: Caller, reason: str) -> Any:
        raise SoapFaultError(f"refused: {reason}", code="SOAP-ENV:Client", detail="my-detail")

    @provider.operation(returns={"count": int})
    def wrongAnswer(caller: Caller) -> Any:
        return {"count": "many"}

    return provider


def request(code: str, fields: dict[str, str], **header: Any) -> bytes:
    """A SOAP 4.0 request for operation ``code``."""
    soap_header = SoapHeader(client=CLIENT, service=ServiceId(PROVIDER, code, "v2"), id="msg-1", **header)
    wrapper = etree.Element(etree.QName(NS, code))
    for name, value in fields.items():
        etree.SubElement(wrapper, name).text = value
    return build_envelope(soap_header, wrapper)


def fault_of(answer: tuple[int, str, bytes]) -> tuple[str, str, str | None]:
    """(code, string, detail) of a fault answer."""
    status, content_type, body = answer
    assert status == 500 and content_type.startswith("text/xml")
    message = parse_soap(body, content_type, max_bytes=1 << 20, is_response=True)
    assert message.fault is not None
    return message.fault.code, message.fault.string, message.fault.detail


def test_the_wsdl_carries_versions_and_titles_and_loads_in_zeep() -> None:
    """Each binding operation has its xrd:version, each operation its xrd:title; zeep sees every operation."""
    wsdl = make_provider().wsdl("http://127.0.0.1:9/kit")
    assert xroad_versions(wsdl) == {"greet": "v2", "broken": "v1", "refuse": "v1", "wrongAnswer": "v1"}
    root = parse_xml(wsdl)
    titles = root.findall(f"{{{WSDL_NS}}}portType/{{{WSDL_NS}}}operation/{{{WSDL_NS}}}documentation/{{{XROAD_NS}}}title")
    assert [t.text for t in titles] == ["Greet someone"]
    field_title = root.find(f".//{{{XSD_NS}}}element[@name='name']//{{{XROAD_NS}}}title")
    assert field_title is not None and field_title.text == "Whom to greet"
    client = zeep.Client(io.BytesIO(wsdl))  # type: ignore[no-untyped-call]
    binding = client.wsdl.bindings[f"{{{NS}}}kitServiceBinding"]
    assert sorted(binding.all()) == ["broken", "greet", "refuse", "wrongAnswer"]  # type: ignore[no-untyped-call]
    assert root.find(f".//{{{WSDL_NS}}}port/{{*}}address").get("location") == "http://127.0.0.1:9/kit"  # type: ignore[union-attr]


def test_the_wsdl_schema_compiles() -> None:
    """The embedded XML Schema is valid XSD, and a generated response validates against it."""
    provider = make_provider()
    root = parse_xml(provider.wsdl("http://127.0.0.1:9/"))
    schema_element = root.find(f"{{{WSDL_NS}}}types/{{{XSD_NS}}}schema")
    assert schema_element is not None
    schema = etree.XMLSchema(schema_element)
    status, content_type, body = provider.handle(request("greet", {"name": "Ann", "times": "2"}), "text/xml")
    wrapper = parse_soap(body, content_type, max_bytes=1 << 20, is_response=True).body[0]
    assert status == 200 and schema.validate(etree.ElementTree(wrapper)), schema.error_log


def test_the_response_echoes_every_request_header_in_order() -> None:
    """pr-mess §2.2: the response carries the request's header elements unchanged, in the same order."""
    calls: list[Caller] = []
    provider = make_provider(calls)
    body = request("greet", {"name": "Ann"}, user_id="EE30101010007", issue="case-7",
                   security_server=SecurityServerId(PROVIDER.member, "ss2"))
    # a header element we do not know travels too (a later minor version may add one)
    envelope = parse_xml(body)
    extra = etree.SubElement(envelope.find(f"{{{SOAP_ENV_NS}}}Header"), "{urn:future}hint")  # type: ignore[arg-type]
    extra.text = "keep me"
    body = etree.tostring(envelope, xml_declaration=True, encoding="UTF-8")
    status, content_type, answer = provider.handle(body, "text/xml; charset=UTF-8")
    assert status == 200
    sent = [etree.tostring(e) for e in parse_xml(body).find(f"{{{SOAP_ENV_NS}}}Header")]  # type: ignore[union-attr]
    got = [etree.tostring(e) for e in parse_xml(answer).find(f"{{{SOAP_ENV_NS}}}Header")]  # type: ignore[union-attr]
    assert got == sent
    response = parse_soap(answer, content_type, max_bytes=1 << 20, is_response=True)
    assert response.wrapper is not None and response.wrapper.localname == "greetResponse"
    assert response.body[0].findtext("message") == "Hello Ann"
    assert response.body[0].findtext("asked_by") == str(CLIENT)
    (caller,) = calls
    assert (caller.client, caller.service, caller.message_id, caller.user_id, caller.issue) == (
        CLIENT, ServiceId(PROVIDER, "greet", "v2"), "msg-1", "EE30101010007", "case-7")


@pytest.mark.parametrize(
    ("body", "content_type", "expected"),
    [
        (b"<not xml", "text/xml", "Malformed request"),
        (b'<!DOCTYPE x [<!ENTITY e "e">]><x>&e;</x>', "text/xml", "Malformed request"),
        (request("greet", {"name": "Ann"}), "application/json", "Malformed request"),
        (request("greet", {}), "text/xml", "name is missing"),
        (request("greet", {"name": "Ann", "times": "often"}), "text/xml", "not a valid long"),
        (request("greet", {"name": "Ann", "colour": "red"}), "text/xml", "unexpected element colour"),
        (request("nosuch", {}), "text/xml", "Unknown operation nosuch"),
    ],
)
def test_bad_requests_are_client_faults(body: bytes, content_type: str, expected: str) -> None:
    """A request that is not SOAP 4.0 or does not fit the operation gets a SOAP-ENV:Client fault."""
    code, string, _ = fault_of(make_provider().handle(body, content_type))
    assert code == "SOAP-ENV:Client" and expected in string


def test_a_failing_callable_is_a_server_fault_that_leaks_nothing() -> None:
    """An exception becomes SOAP-ENV:Server with a detail UUID; its text stays in our log."""
    code, string, detail = fault_of(make_provider().handle(request("broken", {}), "text/xml"))
    assert code == "SOAP-ENV:Server" and "hunter2" not in string and detail is not None and len(detail) == 36
    code, string, detail = fault_of(make_provider().handle(request("wrongAnswer", {}), "text/xml"))
    assert code == "SOAP-ENV:Server" and detail is not None


def test_a_callable_can_answer_with_its_own_fault() -> None:
    """SoapFaultError's code, string and detail are answered as they are."""
    assert fault_of(make_provider().handle(request("refuse", {"reason": "closed"}), "text/xml")) == (
        "SOAP-ENV:Client", "refused: closed", "my-detail")


def test_operations_are_checked_when_declared() -> None:
    """Missing annotations, a duplicate name or an unsupported type are refused at declaration."""
    provider = SoapProvider(NS)
    with pytest.raises(ShapeError):
        provider.add(lambda caller, name: {"x": name}, name="untyped", returns={"x": str})

    def no_answer_type(caller: Caller) -> dict[str, str]:
        return {}

    with pytest.raises(ShapeError):
        provider.add(no_answer_type)

    def ok(caller: Caller) -> Greeting:
        raise AssertionError

    provider.add(ok)
    with pytest.raises(ValueError):
        provider.add(ok)


class ProviderOverLoopbackTest(unittest.TestCase):
    """zeep (through the consumer adapter) talks to the provider kit over a real socket."""

    timeout = 60

    def setUp(self) -> None:
        self.calls: list[Caller] = []
        self.port = listen(make_provider(self.calls).resource())

    @defer.inlineCallbacks
    def tearDown(self) -> Any:  # type: ignore[override]  # trial waits for the Deferred
        yield connections_closed()
        yield self.port.stopListening()

    @defer.inlineCallbacks
    def test_the_consumer_adapter_calls_the_provider_kit(self) -> Any:
        """GET ?wsdl serves the WSDL; a call gets the answer with the echoed header; a provider fault is typed."""
        url = f"http://127.0.0.1:{self.port.getHost().port}/"

        def consumer_system() -> dict[str, Any]:
            consumer = SoapConsumer(url, client=CLIENT, provider=PROVIDER, wsdl=url + "?wsdl", user_id="EE1")
            try:
                out: dict[str, Any] = {"answer": consumer.call("greet", name="Bo", times=2, message_id="m-42")}
                out["plain"] = consumer.service.greet(name="Cy")
                try:
                    consumer.call("broken")
                except ProviderFault as fault:
                    out["fault"] = fault
                return out
            finally:
                consumer.close()

        out = yield deferToThread(consumer_system)
        answer = out["answer"]
        assert answer.value.message == "Hello Bo Hello Bo" and answer.value.day == dt.date(2026, 1, 2)
        assert answer.service == ServiceId(PROVIDER, "greet", "v2")
        assert answer.header is not None and answer.header.id == "m-42" and answer.header.user_id == "EE1"
        assert out["plain"].message == "Hello Cy"
        assert out["fault"].fault_code == "SOAP-ENV:Server" and out["fault"].detail_id
        assert [c.message_id for c in self.calls][0] == "m-42"
