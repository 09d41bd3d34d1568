"""Identifiers: X-Road's examples, round trips in all three forms, and hostile input."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import quote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from security_server.core.errors import BusError, InvalidClientIdentifier
from security_server.core.identifiers import (
    IDENTIFIERS_NS,
    OBJECT_TYPE_ATTR,
    XROAD_NS,
    ClientId,
    GlobalGroupId,
    LocalGroupId,
    ObjectType,
    SecurityServerId,
    ServiceId,
    parse_display,
    parse_xml,
)
from security_server.core.safexml import parse_xml as parse_untrusted_xml

ALLOWED = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789'()+,-.=?"

parts = st.text(alphabet=ALLOWED, min_size=1, max_size=20).filter(lambda p: p not in (".", ".."))
members = st.builds(ClientId, parts, parts, parts)
subsystems = st.builds(ClientId, parts, parts, parts, parts)
clients = st.one_of(members, subsystems)
services = st.builds(ServiceId, subsystems, parts, st.one_of(st.none(), parts))
servers = st.builds(SecurityServerId, members, parts)
global_groups = st.builds(GlobalGroupId, parts, parts)
local_groups = st.builds(LocalGroupId, parts)
any_ids = st.one_of(clients, services, servers, global_groups, local_groups)


def _soap_examples(vectors: Path) -> list[bytes]:
    text = (vectors / "protocol-examples.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```xml\n(<\?xml.*?</SOAP-ENV:Envelope>)\n```", text, re.S)
    return [b.encode("utf-8") for b in blocks if "<xrd:client" in b]


def test_xroad_soap_examples_parse(xroad_vectors: Path) -> None:
    """The client and service headers of X-Road's pr-mess examples parse into the expected identifiers."""
    examples = _soap_examples(xroad_vectors)
    assert len(examples) >= 3
    for data in examples:
        root = parse_untrusted_xml(data)
        header = root.find("{http://schemas.xmlsoap.org/soap/envelope/}Header")
        assert header is not None
        client_element = header.find(f"{{{XROAD_NS}}}client")
        service_element = header.find(f"{{{XROAD_NS}}}service")
        assert client_element is not None and service_element is not None
        client = ClientId.from_xml(client_element)
        service = ServiceId.from_xml(service_element)
        assert client == ClientId("EE", "GOV", "MEMBER1", "SUBSYSTEM1")
        assert service.client == ClientId("EE", "GOV", "MEMBER2", "SUBSYSTEM2")
        assert service.service_version == "v1"
        assert service.service_code in {"exampleService", "test", "getRandom"}


def test_xroad_security_server_header_parses(xroad_vectors: Path) -> None:
    """The securityServer header of X-Road's targeting extension example parses as a SERVER identifier."""
    text = (xroad_vectors / "protocol-examples.md").read_text(encoding="utf-8")
    fragment = re.search(r"<xrd:securityServer .*?</xrd:securityServer>", text, re.S)
    assert fragment is not None
    wrapped = f'<w xmlns:xrd="{XROAD_NS}" xmlns:id="{IDENTIFIERS_NS}">{fragment.group(0)}</w>'.encode()
    server = parse_xml(parse_untrusted_xml(wrapped)[0])
    assert isinstance(server, SecurityServerId)
    assert server.object_type is ObjectType.SERVER


def test_xroad_rest_example_path_parses() -> None:
    """The service part of X-Road's REST request line (pr-rest §4.1) parses in path form."""
    service = ServiceId.parse_path("INSTANCE/CLASS2/MEMBER2/SUBSYSTEM2/BARSERVICE")
    assert service == ServiceId(ClientId("INSTANCE", "CLASS2", "MEMBER2", "SUBSYSTEM2"), "BARSERVICE")
    assert ClientId.parse_path("INSTANCE/CLASS1/MEMBER1/SUBSYSTEM1").subsystem_code == "SUBSYSTEM1"


def test_display_forms_from_the_reference() -> None:
    """The documentation forms of XROAD-REFERENCE §3.1 parse to the right types."""
    assert parse_display("SUBSYSTEM:EE/BUSINESS/123/sub") == ClientId("EE", "BUSINESS", "123", "sub")
    assert parse_display("MEMBER:EE/GOV/70000310") == ClientId("EE", "GOV", "70000310")
    assert parse_display("SERVER:EE/GOV/70000310/ss1") == SecurityServerId(ClientId("EE", "GOV", "70000310"), "ss1")
    assert parse_display("GLOBALGROUP:EE/security-server-owners") == GlobalGroupId("EE", "security-server-owners")
    assert parse_display("LOCALGROUP:admins") == LocalGroupId("admins")
    assert str(ClientId("EE", "GOV", "70000310", "registry")) == "SUBSYSTEM:EE/GOV/70000310/registry"


@settings(max_examples=100, deadline=None)
@given(any_ids)
def test_display_round_trip(identifier: object) -> None:
    """parse(format(x)) == x for the display form of every identifier type."""
    assert parse_display(str(identifier)) == identifier


@settings(max_examples=100, deadline=None)
@given(any_ids)
def test_path_round_trip(identifier: ClientId | ServiceId | SecurityServerId | GlobalGroupId | LocalGroupId) -> None:
    """parse_path(to_path(x)) == x, and the path form never contains a raw '?'."""
    path = identifier.to_path()
    assert "?" not in path
    assert type(identifier).parse_path(path) == identifier


@settings(max_examples=100, deadline=None)
@given(any_ids)
def test_xml_round_trip(identifier: ClientId | ServiceId | SecurityServerId | GlobalGroupId | LocalGroupId) -> None:
    """from_xml(to_xml(x)) == x, also after serialising and reparsing through the hardened parser."""
    element = identifier.to_xml(etree.QName(XROAD_NS, "client"))
    assert parse_xml(element) == identifier
    reparsed = parse_untrusted_xml(etree.tostring(element))
    assert type(identifier).from_xml(reparsed) == identifier


@settings(max_examples=200, deadline=None)
@given(st.text(min_size=1, max_size=12).filter(lambda t: any(c not in ALLOWED for c in t)))
def test_no_string_outside_the_set_parses(bad: str) -> None:
    """No part with a character outside X-Road's set is accepted, in any form, by constructor or parser."""
    with pytest.raises(InvalidClientIdentifier):
        ClientId("EE", "GOV", bad)
    with pytest.raises(InvalidClientIdentifier):
        ClientId.parse_display(f"MEMBER:EE/GOV/{bad}")
    # In the path form a segment is percent-decoded first; what it decodes to must still be in the set.
    # A client sends the bad part percent-encoded (a raw '/' would be a separator); it decodes back to the
    # bad part and is refused.
    with pytest.raises(InvalidClientIdentifier):
        ClientId.parse_path(f"EE/GOV/{quote(bad, safe='')}")


@pytest.mark.parametrize(
    "path",
    [
        "EE/GOV/123%2Fsub",  # encoded slash smuggling a fourth part
        "EE/GOV/%2e%2e",  # encoded dot-dot
        "EE/GOV/..",
        "EE/GOV/.",
        "EE/GOV/123/%252F",  # double encoding decodes to '%2F', '%' is outside the set
        "EE/GOV/12%003",  # NUL
        "EE/GOV/12%0A3",  # newline
        "EE/GOV/12\t3",
        "EE//123",  # empty part
        "EE/GOV",  # too few parts
        "EE/GOV/123/sub/extra",  # too many parts for a client
        "EE/GOV/123/s%C3%BCb",  # non-ASCII letter
        "EE/GOV/123/%FF",  # not UTF-8
        "EE/GOV/123;sub",  # matrix parameter
    ],
)
def test_hostile_client_paths_are_refused(path: str) -> None:
    """Hostile path forms get invalid_client_identifier, never a different identifier."""
    with pytest.raises(InvalidClientIdentifier) as info:
        ClientId.parse_path(path)
    assert info.value.fault_code == "client.invalid_client_identifier"


def test_percent_encoded_allowed_characters_decode_to_the_same_identifier() -> None:
    """Encoding an allowed character is harmless: it decodes to exactly that character."""
    assert ClientId.parse_path("EE/GOV/12%3F3") == ClientId("EE", "GOV", "12?3")
    assert ClientId("EE", "GOV", "12?3").to_path() == "EE/GOV/12%3F3"


def test_part_length_limit() -> None:
    """A part over 255 characters is refused; exactly 255 is accepted."""
    assert ClientId("EE", "GOV", "x" * 255).member_code == "x" * 255
    with pytest.raises(InvalidClientIdentifier):
        ClientId("EE", "GOV", "x" * 256)


@pytest.mark.parametrize(
    "text",
    [
        "SUBSYSTEM:EE/GOV/123",  # subsystem needs four parts
        "MEMBER:EE/GOV/123/sub",  # member has three
        "SERVICE:EE/GOV/123/sub",  # a client is not a service
        "NOTATYPE:EE/GOV/123",
        "member:EE/GOV/123",  # object types are upper case
        "EE/GOV/123",  # no type
        "SERVER:EE/GOV/123",
        "GLOBALGROUP:EE",
        "LOCALGROUP:",
    ],
)
def test_malformed_display_forms_are_refused(text: str) -> None:
    """Wrong object types and wrong part counts in display form are refused."""
    with pytest.raises(InvalidClientIdentifier):
        parse_display(text)


def _xml(inner: str, object_type: str | None = "SUBSYSTEM") -> etree._Element:
    attr = f' id:objectType="{object_type}"' if object_type else ""
    doc = f'<xrd:client xmlns:xrd="{XROAD_NS}" xmlns:id="{IDENTIFIERS_NS}"{attr}>{inner}</xrd:client>'
    return parse_untrusted_xml(doc.encode())


FULL = (
    "<id:xRoadInstance>EE</id:xRoadInstance><id:memberClass>GOV</id:memberClass>"
    "<id:memberCode>123</id:memberCode><id:subsystemCode>sub</id:subsystemCode>"
)


@pytest.mark.parametrize(
    ("inner", "object_type"),
    [
        (FULL, None),  # missing objectType
        (FULL, "MEMBER"),  # objectType says member, subsystem present
        (FULL, "SERVICE"),  # wrong objectType for a client
        (FULL.replace("<id:subsystemCode>sub</id:subsystemCode>", ""), "SUBSYSTEM"),  # missing subsystem
        (FULL.replace("<id:memberClass>GOV</id:memberClass>", ""), "SUBSYSTEM"),  # missing part
        (FULL + "<id:subsystemCode>sub</id:subsystemCode>", "SUBSYSTEM"),  # duplicate part
        (FULL.replace(">GOV<", "><"), "SUBSYSTEM"),  # empty part
        (FULL.replace(">GOV<", "> GOV <"), "SUBSYSTEM"),  # whitespace is not trimmed into a different id
        (FULL.replace(">123<", ">1/3<"), "SUBSYSTEM"),  # character outside the set
        (FULL + "<id:serviceCode>x</id:serviceCode>", "SUBSYSTEM"),  # field a client cannot have
        (FULL.replace("id:memberCode", "other:memberCode"), "SUBSYSTEM"),  # wrong namespace (unbound prefix)
        ("<id:memberClass>GOV</id:memberClass><id:xRoadInstance>EE</id:xRoadInstance><id:memberCode>1</id:memberCode>", "MEMBER"),
    ],
)
def test_malformed_xml_identifiers_are_refused(inner: str, object_type: str | None) -> None:
    """Every malformed XML identifier is refused with a BusError, never a bare exception."""
    with pytest.raises(BusError):
        ClientId.from_xml(_xml(inner, object_type))


def test_xml_form_uses_the_identifiers_namespace() -> None:
    """to_xml writes id:objectType and id:* children in X-Road's order."""
    element = ServiceId(ClientId("EE", "GOV", "1", "sub"), "getRandom", "v1").to_xml(etree.QName(XROAD_NS, "service"))
    assert element.get(OBJECT_TYPE_ATTR) == "SERVICE"
    names = [etree.QName(child).localname for child in element]
    assert names == ["xRoadInstance", "memberClass", "memberCode", "subsystemCode", "serviceCode", "serviceVersion"]
    assert {etree.QName(child).namespace for child in element} == {IDENTIFIERS_NS}


def test_member_level_service_has_xml_but_no_path_form() -> None:
    """A member-level service exists in XML form; its path form would be ambiguous and is refused."""
    service = ServiceId(ClientId("EE", "GOV", "1"), "getRandom")
    assert ServiceId.from_xml(service.to_xml("service")) == service
    with pytest.raises(InvalidClientIdentifier):
        service.to_path()


def test_security_server_owner_must_be_a_member() -> None:
    """A subsystem cannot own a security server."""
    with pytest.raises(InvalidClientIdentifier):
        SecurityServerId(ClientId("EE", "GOV", "1", "sub"), "ss1")


def test_subsystem_and_member_helpers() -> None:
    """member drops the subsystem; subsystem() adds one."""
    sub = ClientId("EE", "GOV", "1", "sub")
    assert sub.member == ClientId("EE", "GOV", "1")
    assert sub.member.subsystem("sub") == sub
    assert sub.object_type is ObjectType.SUBSYSTEM
