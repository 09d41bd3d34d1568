"""The X-Road headers declared in the provider kit's WSDLs (issue 14 point 6): the binding parts, and zeep using them.

X-Road's example WSDLs declare ``client``, ``service``, ``userId``, ``id``, ``issue`` and ``protocolVersion`` as
``soap:header`` parts of a ``requestheader`` message in every binding operation, so that WSDL-driven clients
(SoapUI, zeep) send them. These tests pin that the kit's and the examples' WSDLs do the same, self-contained, and
that the envelope zeep builds from them carries X-Road headers the security server's parser accepts.
"""

from __future__ import annotations

import io
from typing import Any, Callable

import pytest
import zeep
from lxml import etree

from adapters.examples import getrandom, hello
from adapters.examples.population import Register
from adapters.provider import xroadheaders
from adapters.provider.soap import SoapProvider
from security_server.core.identifiers import IDENTIFIERS_NS, XROAD_NS, ClientId, ServiceId
from security_server.core.safexml import parse_xml
from security_server.core.soap import SoapHeader, add_request_hash, build_envelope, parse_soap
from tests.adapters.zeep_headers import zeep_headers

WSDL_NS = "http://schemas.xmlsoap.org/wsdl/"
WSDL_SOAP_NS = "http://schemas.xmlsoap.org/wsdl/soap/"
XSD_NS = "http://www.w3.org/2001/XMLSchema"
CLIENT = ClientId("EE", "GOV", "70000001", "consumer")
PROVIDER = ClientId("EE", "GOV", "70000002", "provider")
MAX = 1 << 20

# the provider, the operation called and its arguments
EXAMPLES: list[Any] = [
    pytest.param(hello.build_provider, "helloService", {"name": "Ann"}, id="helloService"),
    pytest.param(getrandom.build_provider, "getRandom", {}, id="getRandom"),
    pytest.param(lambda: Register().soap(), "getPerson", {"personCode": "38001010014"}, id="population-getPerson"),
    pytest.param(lambda: Register().soap(), "findPersons", {"surname": "Tamm"}, id="population-findPersons"),
]


def _binding_operations(root: etree._Element) -> list[etree._Element]:
    return root.findall(f"{{{WSDL_NS}}}binding/{{{WSDL_NS}}}operation")


@pytest.mark.parametrize(("build", "operation", "arguments"), EXAMPLES)
def test_every_binding_operation_declares_the_x_road_header_parts(
    build: Callable[[], SoapProvider], operation: str, arguments: dict[str, str]
) -> None:
    """As X-Road's example WSDLs: each operation's input has a soap:header per X-Road header of requestheader."""
    root = parse_xml(build().wsdl("http://127.0.0.1:9/"))
    message = root.find(f"{{{WSDL_NS}}}message[@name='requestheader']")
    assert message is not None
    parts = {p.get("name"): p.get("element") for p in message.findall(f"{{{WSDL_NS}}}part")}
    for name in ("client", "service", "userId", "id", "issue", "protocolVersion"):
        prefix, _, local = (parts[name] or "").partition(":")
        assert message.nsmap.get(prefix) == XROAD_NS and local == name
    for element in _binding_operations(root):
        declared = element.findall(f"{{{WSDL_NS}}}input/{{{WSDL_SOAP_NS}}}header")
        assert [h.get("part") for h in declared] == ["client", "service", "userId", "id", "issue", "protocolVersion"]
        assert {h.get("message") for h in declared} == {"tns:requestheader"} and {h.get("use") for h in declared} == {
            "literal"
        }
        assert element.find(f"{{{WSDL_NS}}}output/{{{WSDL_SOAP_NS}}}header") is None  # see xroadheaders: input only


@pytest.mark.parametrize(("build", "operation", "arguments"), EXAMPLES)
def test_the_header_schemas_are_inline_so_the_wsdl_loads_offline(
    build: Callable[[], SoapProvider], operation: str, arguments: dict[str, str]
) -> None:
    """xroad.xsd's header elements and the identifier types are in wsdl:types; nothing is imported by location."""
    root = parse_xml(build().wsdl("http://127.0.0.1:9/"))
    schemas = root.findall(f"{{{WSDL_NS}}}types/{{{XSD_NS}}}schema")
    assert [s.get("targetNamespace") for s in schemas][1:] == [XROAD_NS, IDENTIFIERS_NS]
    imports = root.xpath("//xs:import[@schemaLocation] | //xs:include | //xs:redefine | //wsdl:import",
                         namespaces={"xs": XSD_NS, "wsdl": WSDL_NS})
    assert imports == []  # no other document is fetched
    xroad = schemas[1]
    declared = {e.get("name") for e in xroad.findall(f"{{{XSD_NS}}}element")}
    assert declared >= {"client", "service", "id", "userId", "issue", "protocolVersion", "requestHash"}


@pytest.mark.parametrize(("build", "operation", "arguments"), EXAMPLES)
def test_zeep_sends_the_x_road_headers_given_as_header_arguments(
    build: Callable[[], SoapProvider], operation: str, arguments: dict[str, str]
) -> None:
    """zeep, loading the WSDL with external documents forbidden, turns _soapheaders into valid X-Road headers."""
    provider = build()
    settings = zeep.Settings(strict=True, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    wsdl = io.BytesIO(provider.wsdl("http://127.0.0.1:9/"))
    client = zeep.Client(wsdl, settings=settings)  # type: ignore[no-untyped-call]
    version = provider.operations[operation].version
    service = ServiceId(PROVIDER, operation, version)
    headers = zeep_headers(CLIENT, service, "zeep-1", user_id="EE38001010014", issue="case 12")
    create: Any = client.create_message
    envelope = create(client.service, operation, _soapheaders=headers, **arguments)
    message = parse_soap(etree.tostring(envelope), "text/xml; charset=UTF-8", max_bytes=MAX)
    assert message.header == SoapHeader(
        client=CLIENT, service=service, id="zeep-1", protocol_version="4.0", user_id="EE38001010014", issue="case 12"
    )
    # the optional parts may be left out, as X-Road allows
    bare = create(client.service, operation, _soapheaders=zeep_headers(CLIENT, service, "zeep-2"), **arguments)
    header = parse_soap(etree.tostring(bare), "text/xml", max_bytes=MAX).header
    assert header is not None and (header.user_id, header.issue) == (None, None)


def test_the_provider_reads_zeeps_headers_and_echoes_them() -> None:
    """The request zeep builds from the WSDL is answered by the provider kit with the same headers echoed."""
    provider = hello.build_provider()
    client = zeep.Client(io.BytesIO(provider.wsdl("http://127.0.0.1:9/")))  # type: ignore[no-untyped-call]
    service = ServiceId(PROVIDER, "helloService", "v1")
    envelope = client.create_message(client.service, "helloService", name="Bo",  # type: ignore[no-untyped-call]
                                     _soapheaders=zeep_headers(CLIENT, service, "zeep-3", user_id="EE1"))
    status, content_type, body = provider.handle(etree.tostring(envelope), "text/xml; charset=UTF-8")
    answer = parse_soap(body, content_type, max_bytes=MAX, is_response=True)
    assert status == 200 and answer.header is not None
    assert (answer.header.client, answer.header.service, answer.header.id, answer.header.user_id) == (
        CLIENT, service, "zeep-3", "EE1")


def test_response_headers_on_request_declare_the_output_as_x_road_does() -> None:
    """response_headers=True: the output declares the headers and requestHash; zeep then reads them from an answer."""
    provider = SoapProvider("http://test.fedbus.example/kit", name="kitService", response_headers=True)

    @provider.operation(returns={"message": str})
    def greet(caller: Any, name: str) -> Any:
        return {"message": f"Hello {name}"}

    wsdl = provider.wsdl("http://127.0.0.1:9/")
    (element,) = _binding_operations(parse_xml(wsdl))
    output = element.findall(f"{{{WSDL_NS}}}output/{{{WSDL_SOAP_NS}}}header")
    assert [h.get("part") for h in output] == list(xroadheaders.RESPONSE_HEADER_PARTS)
    service = ServiceId(PROVIDER, "greet", "v1")
    wrapper = etree.Element(etree.QName(provider.namespace, "greet"))
    etree.SubElement(wrapper, "name").text = "Cy"
    request = build_envelope(SoapHeader(client=CLIENT, service=service, id="r-1"), wrapper)
    status, content_type, body = provider.handle(request, "text/xml")
    answer = parse_soap(body, content_type, max_bytes=MAX, is_response=True)
    hashed = add_request_hash(answer, request)  # what the provider's security server adds
    client = zeep.Client(io.BytesIO(wsdl))  # type: ignore[no-untyped-call]
    binding: Any = client.wsdl.bindings[f"{{{provider.namespace}}}kitServiceBinding"]
    operation = binding.get("greet")
    result = operation.output.deserialize(etree.fromstring(hashed))
    assert result.body.message == "Hello Cy" and result.header.id == "r-1"
    assert result.header.requestHash._value_1 and result.header.client.memberCode == "70000001"
