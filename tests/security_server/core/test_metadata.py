"""Metadata services: our answers have the structure of X-Road's examples (protocol-examples §6, §7), field for field."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from lxml import etree

from security_server.core.acl import Endpoint
from security_server.core.errors import InvalidRequest
from security_server.core.globalconf import MemberInfo
from security_server.core.identifiers import IDENTIFIERS_NS, XROAD_NS, ClientId, ServiceId
from security_server.core.metadata import (
    WSDL_ENDPOINT_ADDRESS,
    ClientListEntry,
    RestServiceEntry,
    accepts_json,
    anonymise_openapi,
    check_wsdl,
    client_list,
    list_clients_json,
    list_clients_xml,
    method_list_response,
    openapi_endpoints,
    rest_method_list,
    rewrite_wsdl,
    wsdl_request,
    wsdl_response,
)
from security_server.core.soap import parse_soap

SHA512_URI = "http://www.w3.org/2001/04/xmlenc#sha512"
_PARSER = etree.XMLParser(remove_blank_text=True)


def _block(vectors: Path, heading: str, language: str, nth: int = 0) -> str:
    """The ``nth`` fenced ``language`` block after ``heading`` in protocol-examples.md."""
    text = (vectors / "protocol-examples.md").read_text(encoding="utf-8")
    start = text.index(heading)
    blocks = re.compile(rf"```{language}\n(.*?)\n```", re.S).findall(text, start)
    return str(blocks[nth])


def _canonical(xml: bytes) -> bytes:
    """The exclusive-C14N form of a document without ignorable whitespace (prefixes kept)."""
    root = etree.fromstring(xml, _PARSER)
    for element in root.iter():
        if element.text is not None and not element.text.strip():
            element.text = None
    return bytes(etree.tostring(root, method="c14n"))


def _example_entries() -> list[ClientListEntry]:
    return [
        ClientListEntry(ClientId("AA", "GOV", "TS1OWNER"), "TS1 Owner"),
        ClientListEntry(ClientId("AA", "GOV", "TS2OWNER"), "TS2 Owner"),
        ClientListEntry(ClientId("AA", "ENT", "CLIENT1"), "Client One"),
        ClientListEntry(ClientId("AA", "ENT", "CLIENT1", "sub"), "Client One", "Client One Sub"),
    ]


# --- listClients ---------------------------------------------------------------------------------------------


def test_list_clients_xml_is_the_example(xroad_vectors: Path) -> None:
    """The clientList XML equals pr-meta Annex C.1's, element for element, with its ns1/ns2 prefixes."""
    example = _block(xroad_vectors, "#### XML Response", "xml").encode()
    ours = list_clients_xml(_example_entries())
    assert _canonical(ours) == _canonical(example)
    assert ours.startswith(b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<ns2:clientList')


def test_list_clients_json_is_the_example(xroad_vectors: Path) -> None:
    """The JSON client list equals pr-meta Annex C.1's, keys in X-Road's order."""
    example = json.loads(_block(xroad_vectors, "#### JSON Response", "json"))
    ours = json.loads(list_clients_json(_example_entries()))
    assert ours == example
    assert [list(member["id"]) for member in ours["member"]] == [list(member["id"]) for member in example["member"]]


def test_client_list_is_members_then_their_subsystems() -> None:
    """Each member is followed by its subsystems, with the member's name (X-Road getMembers)."""
    members = (MemberInfo(ClientId("EE", "GOV", "1"), "Ministry", ("b", "a")), MemberInfo(ClientId("EE", "COM", "2"), "Firm"))
    assert [(str(e.id), e.name) for e in client_list(members)] == [
        ("MEMBER:EE/GOV/1", "Ministry"),
        ("SUBSYSTEM:EE/GOV/1/a", "Ministry"),
        ("SUBSYSTEM:EE/GOV/1/b", "Ministry"),
        ("MEMBER:EE/COM/2", "Firm"),
    ]


def test_accept_json_is_read_like_x_road() -> None:
    """application/json anywhere in Accept asks for JSON; parameters and q-values are ignored (X-Road acceptsJson)."""
    assert accepts_json("text/xml;q=1.0, application/json;q=0.9")
    assert not accepts_json("text/xml") and not accepts_json(None) and not accepts_json("application/jsonx")


# --- SOAP listMethods, allowedMethods, getWsdl ---------------------------------------------------------------


def _example_services() -> list[ServiceId]:
    provider = ClientId("Inst1", "MemberClass1", "ProviderId", "Subsystem1")
    return [ServiceId(provider, "allowedService", "v1"), ServiceId(provider, "disallowedService", "v1")]


Tree = tuple[str, tuple[tuple[str, str], ...], str, tuple["Tree", ...]]


def _tree(element: etree._Element) -> Tree:
    """An element as (namespace-qualified name, attributes, text, children): equal whatever the prefixes."""
    text = (element.text or "").strip()
    attributes = tuple(sorted((str(name), str(value)) for name, value in element.attrib.items()))
    return (str(element.tag), attributes, text, tuple(_tree(child) for child in element))


def _body(envelope: bytes) -> Tree:
    root = etree.fromstring(envelope, _PARSER)
    body = root.find("{http://schemas.xmlsoap.org/soap/envelope/}Body")
    assert body is not None
    return _tree(body[0])


def _header_names(envelope: bytes) -> list[str]:
    root = etree.fromstring(envelope, _PARSER)
    header = root.find("{http://schemas.xmlsoap.org/soap/envelope/}Header")
    assert header is not None
    return [etree.QName(child).localname for child in header]


def test_list_methods_response_has_the_examples_body(xroad_vectors: Path) -> None:
    """listMethodsResponse for the Annex C.2 request equals Annex C.3's body; the header echoes with requestHash."""
    request = parse_soap(_block(xroad_vectors, "### 6.2 listMethods request", "xml").encode(), "text/xml", max_bytes=10**6)
    ours = method_list_response(request, _example_services(), (SHA512_URI, "aGFzaA=="))
    example = _block(xroad_vectors, "### 6.3 listMethods response", "xml").encode()
    assert _body(ours) == _body(example)
    assert sorted(_header_names(ours)) == sorted(_header_names(example))
    answer = parse_soap(ours, "text/xml", max_bytes=10**6, is_response=True)
    assert answer.header is not None and answer.header.request_hash == (SHA512_URI, "aGFzaA==")


def test_allowed_methods_response_has_the_examples_body(xroad_vectors: Path) -> None:
    """allowedMethodsResponse with the allowed service equals Annex C.5's body."""
    listing = _block(xroad_vectors, "### 6.2 listMethods request", "xml").replace("listMethods", "allowedMethods")
    request = parse_soap(listing.encode(), "text/xml", max_bytes=10**6)
    ours = method_list_response(request, _example_services()[:1], (SHA512_URI, "aGFzaA=="))
    assert _body(ours) == _body(_block(xroad_vectors, "### 6.4 allowedMethods response", "xml").encode())


def test_get_wsdl_request_and_response_follow_the_example(xroad_vectors: Path) -> None:
    """The Annex C.6 request asks for getRandom v1; the response body is Annex C.7's getWsdlResponse."""
    request = parse_soap(_block(xroad_vectors, "### 6.5 getWsdl", "xml").encode(), "text/xml", max_bytes=10**6)
    assert wsdl_request(request) == ("getRandom", "v1")
    ours = wsdl_response(request, (SHA512_URI, "aGFzaA=="))
    assert _body(ours) == _body(_block(xroad_vectors, "### C.7 getWsdl Response", "xml").encode())


def test_get_wsdl_without_service_code_is_invalid_request(xroad_vectors: Path) -> None:
    """A getWsdl body without serviceCode is invalid_request (X-Road: 'Missing serviceCode in message body')."""
    text = _block(xroad_vectors, "### 6.5 getWsdl", "xml")
    text = re.sub(r"<xro:serviceCode>.*?</xro:serviceCode>", "", text)
    request = parse_soap(text.encode(), "text/xml", max_bytes=10**6)
    with pytest.raises(InvalidRequest):
        wsdl_request(request)


WSDL = b"""<?xml version="1.0"?>
<definitions xmlns="http://schemas.xmlsoap.org/wsdl/" xmlns:soap="http://schemas.xmlsoap.org/wsdl/soap/"
  xmlns:soap12="http://schemas.xmlsoap.org/wsdl/soap12/">
  <service name="s"><port name="p" binding="b"><soap:address location="http://10.1.2.3/secret"/></port>
  <port name="q" binding="c"><soap12:address location="https://internal/x"/></port></service>
</definitions>"""


def test_wsdl_addresses_are_rewritten_to_the_x_road_endpoint() -> None:
    """Every SOAP 1.1 and 1.2 address location becomes http://example.org/xroad-endpoint (X-Road)."""
    rewritten = rewrite_wsdl(WSDL)
    assert rewritten.count(WSDL_ENDPOINT_ADDRESS.encode()) == 2
    assert b"10.1.2.3" not in rewritten and b"internal" not in rewritten


@pytest.mark.parametrize(
    "document",
    [
        b'<!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]><definitions xmlns="http://schemas.xmlsoap.org/wsdl/">&x;</definitions>',
        b"<notAWsdl/>",
        b"not xml",
    ],
)
def test_hostile_or_wrong_wsdl_is_refused(document: bytes) -> None:
    """A WSDL with a DOCTYPE, another root or no XML at all is refused (SECURITY-CASES.md: hostile WSDL)."""
    with pytest.raises(InvalidRequest):
        check_wsdl(document)


# --- REST listMethods, allowedMethods, getOpenAPI ------------------------------------------------------------


def test_rest_method_list_is_the_examples_json(xroad_vectors: Path) -> None:
    """The REST listMethods JSON equals pr-mrest Annex B.1's first service, keys in X-Road's order."""
    example = json.loads(_block(xroad_vectors, "### 7.2 listMethods JSON response", "json"))
    (service,) = example["service"]
    provider = ClientId(service["xroad_instance"], service["member_class"], service["member_code"], service["subsystem_code"])
    entry = RestServiceEntry(
        ServiceId(provider, service["service_code"]),
        "OPENAPI",
        tuple(Endpoint(e["method"], e["path"]) for e in service["endpoint_list"]),
    )
    ours = json.loads(rest_method_list([entry]))
    assert ours == example
    assert list(ours["service"][0]) == list(service)


PETSTORE = json.dumps(
    {
        "openapi": "3.0.2",
        "servers": [{"url": "https://petstore.internal:8443/api/v3"}, {"url": "https://{region}.example/api"}],
        "paths": {
            "/pet": {"put": {}, "post": {}, "summary": "not an operation"},
            "/pet/findByStatus": {"get": {}},
            "/pet/{petId}": {"get": {}, "post": {}, "delete": {}, "parameters": []},
            "/pet/{petId}/uploadImage": {"post": {}},
        },
    }
).encode()


def test_openapi_operations_become_endpoints_like_x_roads() -> None:
    """Each operation in document order, the method upper-cased, {parameters} as * (pr-mrest Annex B.1)."""
    assert [str(e) for e in openapi_endpoints(PETSTORE)] == [
        "PUT /pet",
        "POST /pet",
        "GET /pet/findByStatus",
        "GET /pet/*",
        "POST /pet/*",
        "DELETE /pet/*",
        "POST /pet/*/uploadImage",
    ]


def test_openapi_servers_are_anonymised() -> None:
    """Server URLs without variables are cut to their path; templated ones stay (X-Road Openapi3Anonymiser)."""
    document = json.loads(anonymise_openapi(PETSTORE))
    assert document["servers"] == [{"url": "/api/v3"}, {"url": "https://{region}.example/api"}]
    assert document["paths"] == json.loads(PETSTORE)["paths"]


@pytest.mark.parametrize(
    "document",
    [
        b"openapi: 3.0.0\npaths: {}\n",  # YAML is not read
        json.dumps({"swagger": "2.0", "paths": {}}).encode(),
        json.dumps({"openapi": "3.0.0"}).encode(),  # no paths
        json.dumps({"openapi": "3.0.0", "paths": {"pets": {"get": {}}}}).encode(),
        json.dumps({"openapi": "3.0.0", "paths": {"/a b": {"get": {}}}}).encode(),
        json.dumps({"openapi": "3.0.0", "paths": {"/../admin": {"get": {}}}}).encode(),
        b"[" * 100_000 + b"]" * 100_000,
        b"\xff\xfe",
    ],
)
def test_unusable_openapi_descriptions_are_refused(document: bytes) -> None:
    """Not JSON, not OpenAPI 3, no paths, or a path no endpoint can hold: InvalidRequest, never a crash."""
    with pytest.raises(InvalidRequest):
        openapi_endpoints(document)


def test_rest_service_entries_are_checked() -> None:
    """A REST method list entry is REST or OPENAPI and belongs to a subsystem."""
    with pytest.raises(ValueError):
        RestServiceEntry(ServiceId(ClientId("EE", "GOV", "1", "s"), "x"), "WSDL")
    with pytest.raises(ValueError):
        RestServiceEntry(ServiceId(ClientId("EE", "GOV", "1"), "x"), "REST")


def test_namespaces_of_the_client_list() -> None:
    """The client list uses the identifiers and xroad namespaces of the XSDs."""
    root = etree.fromstring(list_clients_xml(_example_entries()))
    assert root.nsmap == {"ns1": IDENTIFIERS_NS, "ns2": XROAD_NS}
