"""SOAP 4.0 messages: X-Road's examples, every hostile case with its fault code, and requestHash."""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from security_server.core import digests
from security_server.core.errors import BusError, InconsistentResponse, RequestTooLarge
from security_server.core.safexml import parse_xml
from security_server.core.identifiers import IDENTIFIERS_NS, XROAD_NS, ClientId, SecurityServerId, ServiceId
from security_server.core.soap import (
    REPRESENTATION_NS,
    SoapHeader,
    SoapMessage,
    add_request_hash,
    build_envelope,
    check_response_consistency,
    parse_soap,
    request_hash,
)

MAX = 1024 * 1024
CT = "text/xml; charset=UTF-8"
SHA512_URI = "http://www.w3.org/2001/04/xmlenc#sha512"


def _section(vectors: Path, heading: str) -> str:
    """The first ```xml block after the markdown heading that starts with ``heading``."""
    text = (vectors / "protocol-examples.md").read_text(encoding="utf-8")
    start = text.index(f"\n{heading} ")
    match = re.compile(r"```xml\n(.*?)\n```", re.S).search(text, start)
    assert match is not None
    return match.group(1)


@pytest.fixture(scope="module")
def request_xml(xroad_vectors: Path) -> str:
    """pr-mess Annex E.1, the example request."""
    return _section(xroad_vectors, "### 1.1")


@pytest.fixture(scope="module")
def response_xml(xroad_vectors: Path) -> str:
    """pr-mess Annex E.2, the example response (with a requestHash that is only illustrative)."""
    return _section(xroad_vectors, "### 1.2")


def _parse(text: str | bytes, *, is_response: bool = False, content_type: str = CT) -> SoapMessage:
    data = text.encode("utf-8") if isinstance(text, str) else text
    return parse_soap(data, content_type, max_bytes=MAX, is_response=is_response)


def _fault_code(text: str | bytes, *, is_response: bool = False, content_type: str = CT, max_bytes: int = MAX) -> str:
    data = text.encode("utf-8") if isinstance(text, str) else text
    with pytest.raises(BusError) as caught:
        parse_soap(data, content_type, max_bytes=max_bytes, is_response=is_response)
    return caught.value.fault_code


def _without(text: str, pattern: str) -> str:
    """``text`` with the one match of ``pattern`` (a regex, DOTALL) removed."""
    result, count = re.subn(pattern, "", text, count=1, flags=re.S)
    assert count == 1, pattern
    return result


def _insert_in_header(text: str, fragment: str) -> str:
    return text.replace("<SOAP-ENV:Header>", "<SOAP-ENV:Header>" + fragment, 1)


# --- X-Road's examples --------------------------------------------------------------------------------------


def test_xroad_request_example_parses(request_xml: str) -> None:
    """pr-mess E.1 parses into the expected header values, wrapper and raw bytes."""
    message = _parse(request_xml)
    header = message.header
    assert header is not None
    assert header.client == ClientId("EE", "GOV", "MEMBER1", "SUBSYSTEM1")
    assert header.service == ServiceId(ClientId("EE", "GOV", "MEMBER2", "SUBSYSTEM2"), "exampleService", "v1")
    assert header.id == "4894e35d-bf0f-44a6-867a-8e51f1daa7e0"
    assert header.user_id == "EE12345678901"
    assert header.issue == "12345"
    assert header.protocol_version == "4.0"
    assert header.request_hash is None and header.security_server is None and header.represented_party is None
    assert message.wrapper == etree.QName("http://producer.x-road.eu", "exampleService")
    assert message.raw == request_xml.encode("utf-8")
    assert not message.is_fault and message.fault_code is None


def test_xroad_response_example_parses(response_xml: str) -> None:
    """pr-mess E.2 parses as a response, with its requestHash algorithm and (wrapped) value kept as written."""
    message = _parse(response_xml, is_response=True)
    assert message.header is not None
    assert message.header.request_hash is not None
    algorithm, value = message.header.request_hash
    assert algorithm == SHA512_URI
    assert "".join(value.split()) == (
        "29KTVbZf83XlfdYrsxjaSYMGoxvktnTUBTtA4BmSrh1egtRtvR9VY8QycYaVdsKtGJIh/8CpucYWPbWfaIgJDQ=="
    )
    assert message.wrapper is not None and message.wrapper.localname == "exampleServiceResponse"


def test_xroad_technical_fault_example_parses(xroad_vectors: Path) -> None:
    """pr-mess D.1, a technical fault without a header, is recognised as a fault with code, string and detail."""
    message = _parse(_section(xroad_vectors, "### 1.3"), is_response=True)
    assert message.is_fault
    assert message.header is None
    assert message.fault_code == "Server.ClientProxy.ServiceFailed.MissingBody"
    assert message.fault_string == "Malformed SOAP message: body missing"
    assert message.fault is not None and message.fault.detail == "f31e7451-f0ac-48f6-9f05-1f0459e48eea"


def test_xroad_business_fault_example_parses(xroad_vectors: Path) -> None:
    """pr-mess D.2, a business fault in the body, is an ordinary response whose wrapper is not checked."""
    message = _parse(_section(xroad_vectors, "### 1.4"), is_response=True)
    assert not message.is_fault
    assert message.header is not None and message.header.service.service_code == "test"
    assert message.wrapper is not None and message.wrapper.localname == "exampleServiceResponse"


def test_xroad_represented_party_example_parses(xroad_vectors: Path) -> None:
    """The third-party representation example (C.1) gives representedParty (class, code)."""
    message = _parse(_section(xroad_vectors, "### 2.1"))
    assert message.header is not None
    assert message.header.represented_party == ("COM", "MEMBER3")
    assert message.header.user_id == "EE1234567890"
    assert message.header.issue is None


def test_xroad_security_server_header_parses(xroad_vectors: Path, request_xml: str) -> None:
    """The targeting extension's securityServer element, put in E.1's header, parses as a SERVER identifier."""
    fragment = re.search(r"<xrd:securityServer .*?</xrd:securityServer>", _section(xroad_vectors, "### 2.2"), re.S)
    assert fragment is not None
    message = _parse(_insert_in_header(request_xml, fragment.group(0)))
    assert message.header is not None
    assert message.header.security_server == SecurityServerId(ClientId("fdev", "GOV", "1710128-9"), "fdev-ss1.i.x-road.global")


def test_xroad_security_token_header_is_kept_and_ignored(xroad_vectors: Path, request_xml: str) -> None:
    """An extension header we do not know (securityToken) is ignored and stays in the raw bytes."""
    token = _section(xroad_vectors, "### 2.3").strip().replace(
        "<ext:securityToken ", '<ext:securityToken xmlns:ext="http://x-road.eu/xsd/security-token.xsd" ', 1
    )
    data = _insert_in_header(request_xml, token)
    message = _parse(data)
    assert message.header is not None and message.header.id == "4894e35d-bf0f-44a6-867a-8e51f1daa7e0"
    assert b"securityToken" in message.raw


def test_unknown_xroad_namespace_header_is_ignored(request_xml: str) -> None:
    """A header in the xroad namespace that 4.0 does not define is ignored (minor versions may add headers)."""
    message = _parse(_insert_in_header(request_xml, "<xrd:futureField>x</xrd:futureField>"))
    assert message.header is not None


def test_mtom_content_type_is_accepted(request_xml: str) -> None:
    """The SOAP part of an MTOM package (application/xop+xml) is accepted (pr-mess §2.4)."""
    assert _parse(request_xml, content_type='application/xop+xml; charset=UTF-8; type="text/xml"').header is not None


def test_utf8_bom_is_allowed_and_kept(request_xml: str) -> None:
    """A UTF-8 byte order mark is allowed (pr-mess §2.6) and stays in the raw bytes the hash covers."""
    data = b"\xef\xbb\xbf" + request_xml.encode("utf-8")
    message = _parse(data, content_type="text/xml")
    assert message.raw == data


def test_other_charset_is_accepted_when_the_document_agrees(request_xml: str) -> None:
    """A Latin-1 document that declares Latin-1 is read with it; the header's charset agrees."""
    data = request_xml.replace('encoding="UTF-8"', 'encoding="ISO-8859-1"').replace("12345</xrd:issue>", "é</xrd:issue>")
    message = _parse(data.encode("latin-1"), content_type="text/xml; charset=ISO-8859-1")
    assert message.header is not None and message.header.issue == "é"


# --- hostile and malformed input: one test per case, with X-Road's fault code ------------------------------


def test_xxe_is_refused(request_xml: str) -> None:
    """An external entity (XXE) is refused before anything is read: client.invalid_soap (X-Road's code for a DOCTYPE,
    SaxSoapParserImpl.java)."""
    data = request_xml.replace(
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<?xml version="1.0" encoding="UTF-8"?><!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>',
    ).replace("12345</xrd:issue>", "&xxe;</xrd:issue>")
    assert _fault_code(data) == "client.invalid_soap"


def test_billion_laughs_is_refused() -> None:
    """Entity expansion (billion laughs) is refused: client.invalid_soap (X-Road's code)."""
    data = (
        '<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
        '<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]>'
        f'<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/"><SOAP-ENV:Body>&c;</SOAP-ENV:Body>'
        "</SOAP-ENV:Envelope>"
    )
    assert _fault_code(data) == "client.invalid_soap"


def test_oversized_body_is_refused(request_xml: str) -> None:
    """A body over the limit is refused before parsing with 413 and client.bad_request."""
    with pytest.raises(RequestTooLarge) as caught:
        parse_soap(request_xml.encode("utf-8"), CT, max_bytes=100)
    assert caught.value.http_status == 413
    assert caught.value.fault_code == "client.bad_request"


def test_empty_body_is_refused() -> None:
    """An empty POST body is client.invalid_soap, as X-Road answers its EmptyQuery case (SaxSoapParserImpl.java)."""
    assert _fault_code(b"") == "client.invalid_soap"


def test_non_xml_is_refused() -> None:
    """A body that is not XML is client.invalid_soap (X-Road's code for what its SOAP parser cannot read)."""
    assert _fault_code(b'{"client": "EE/GOV/1"}') == "client.invalid_soap"


def test_not_an_envelope_is_refused() -> None:
    """A well-formed document that is not a SOAP envelope is client.invalid_soap (X-Road SaxSoapParserImpl)."""
    assert _fault_code(b"<request><id>1</id></request>") == "client.invalid_soap"


def test_soap12_envelope_is_refused(request_xml: str) -> None:
    """A SOAP 1.2 envelope is not X-Road's SOAP 1.1: client.invalid_soap."""
    data = request_xml.replace("http://schemas.xmlsoap.org/soap/envelope/", "http://www.w3.org/2003/05/soap-envelope")
    assert _fault_code(data) == "client.invalid_soap"


def test_header_after_body_is_refused(request_xml: str) -> None:
    """SOAP 1.1 puts the Header first; one after the Body is client.invalid_soap."""
    header = re.search(r"<SOAP-ENV:Header>.*</SOAP-ENV:Header>", request_xml, re.S)
    assert header is not None
    data = request_xml.replace(header.group(0), "").replace("</SOAP-ENV:Body>", "</SOAP-ENV:Body>" + header.group(0))
    assert _fault_code(data) == "client.invalid_soap"


def test_missing_header_is_refused(request_xml: str) -> None:
    """A request without a SOAP header is client.missing_header."""
    assert _fault_code(_without(request_xml, r"<SOAP-ENV:Header>.*</SOAP-ENV:Header>")) == "client.missing_header"


@pytest.mark.parametrize(
    "pattern",
    [
        r"<xrd:client .*?</xrd:client>",
        r"<xrd:service .*?</xrd:service>",
        r"<xrd:id>.*?</xrd:id>",
        r"<xrd:protocolVersion>.*?</xrd:protocolVersion>",
    ],
    ids=["client", "service", "id", "protocolVersion"],
)
def test_missing_mandatory_field_is_refused(request_xml: str, pattern: str) -> None:
    """Each mandatory header field, when missing, is client.missing_header_field."""
    assert _fault_code(_without(request_xml, pattern)) == "client.missing_header_field"


def test_empty_id_is_refused(request_xml: str) -> None:
    """An empty id is as good as none: client.missing_header_field."""
    data = re.sub(r"<xrd:id>.*?</xrd:id>", "<xrd:id></xrd:id>", request_xml)
    assert _fault_code(data) == "client.missing_header_field"


@pytest.mark.parametrize(
    "pattern",
    [
        r"<xrd:client .*?</xrd:client>",
        r"<xrd:service .*?</xrd:service>",
        r"<xrd:id>.*?</xrd:id>",
        r"<xrd:userId>.*?</xrd:userId>",
        r"<xrd:issue>.*?</xrd:issue>",
        r"<xrd:protocolVersion>.*?</xrd:protocolVersion>",
    ],
    ids=["client", "service", "id", "userId", "issue", "protocolVersion"],
)
def test_duplicate_field_is_refused(request_xml: str, pattern: str) -> None:
    """A header field given twice is client.duplicate_header_field, even with the same value."""
    match = re.search(pattern, request_xml, re.S)
    assert match is not None
    assert _fault_code(_insert_in_header(request_xml, match.group(0))) == "client.duplicate_header_field"


@pytest.mark.parametrize("version", ["3.0", "5.0", "4", "", " 4.0", "v4.0"])
def test_wrong_protocol_version_is_refused(request_xml: str, version: str) -> None:
    """A protocolVersion that is not 4.x is client.invalid_protocol_version."""
    data = request_xml.replace("<xrd:protocolVersion>4.0<", f"<xrd:protocolVersion>{version}<")
    assert _fault_code(data) == "client.invalid_protocol_version"


def test_minor_protocol_version_is_accepted(request_xml: str) -> None:
    """Any 4.x is accepted: minor versions are compatible (pr-mess §2.2)."""
    message = _parse(request_xml.replace("<xrd:protocolVersion>4.0<", "<xrd:protocolVersion>4.1<"))
    assert message.header is not None and message.header.protocol_version == "4.1"


def test_missing_body_is_refused(request_xml: str) -> None:
    """A request without a SOAP body is client.missing_body."""
    assert _fault_code(_without(request_xml, r"<SOAP-ENV:Body>.*</SOAP-ENV:Body>")) == "client.missing_body"


def test_body_without_wrapper_is_refused(request_xml: str) -> None:
    """A body with no element is client.invalid_body (X-Road: exactly one child element)."""
    assert _fault_code(_without(request_xml, r"<ns1:exampleService>.*</ns1:exampleService>")) == "client.invalid_body"


def test_body_with_two_wrappers_is_refused(request_xml: str) -> None:
    """A body with two elements is client.invalid_body."""
    data = request_xml.replace("</SOAP-ENV:Body>", "<ns1:exampleService/></SOAP-ENV:Body>")
    assert _fault_code(data) == "client.invalid_body"


def test_wrapper_not_the_service_code_is_refused(request_xml: str) -> None:
    """A request wrapper other than the service code is client.inconsistent_headers."""
    data = request_xml.replace("ns1:exampleService>", "ns1:otherService>")
    assert _fault_code(data) == "client.inconsistent_headers"


def test_wrapper_only_starting_with_the_service_code_is_refused(request_xml: str) -> None:
    """fedbus wants equality: a wrapper that only starts with the service code (X-Road lets it by) is refused."""
    data = request_xml.replace("ns1:exampleService>", "ns1:exampleServiceAdmin>")
    assert _fault_code(data) == "client.inconsistent_headers"


def test_request_that_is_a_fault_is_refused(xroad_vectors: Path) -> None:
    """A SOAP fault sent as a request is refused under its own code lower-cased, as X-Road's SoapFaultToClientProxy
    case pins (ClientMessageProcessor.java, ErrorCode.withCode): client.<faultcode>."""
    data = _section(xroad_vectors, "### 1.3")
    sent = re.search(r"<faultcode>([^<]*)</faultcode>", data)
    assert sent is not None
    assert _fault_code(data) == "client." + sent.group(1).lower()


def test_header_field_with_child_elements_is_refused(request_xml: str) -> None:
    """A simple header field holding elements is client.bad_request."""
    data = request_xml.replace("<xrd:issue>12345</xrd:issue>", "<xrd:issue><b>12345</b></xrd:issue>")
    assert _fault_code(data) == "client.bad_request"


def test_object_type_missing_unknown_or_unexpected_is_invalid_xml(request_xml: str) -> None:
    """An identifier block's id:objectType missing, unknown or not the block's is client.invalid_xml, X-Road's own
    check (SaxSoapParserImpl.java, MissingObjectTypeMessage)."""
    for old, new in (
        ('<xrd:client id:objectType="SUBSYSTEM">', "<xrd:client>"),
        ('<xrd:client id:objectType="SUBSYSTEM">', '<xrd:client id:objectType="SERVICE">'),
        ('<xrd:client id:objectType="SUBSYSTEM">', '<xrd:client id:objectType="subsystem">'),
        ('<xrd:service id:objectType="SERVICE">', '<xrd:service id:objectType="SUBSYSTEM">'),
    ):
        assert old in request_xml
        assert _fault_code(request_xml.replace(old, new, 1)) == "client.invalid_xml", new


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("<id:memberCode>MEMBER1</id:memberCode>", "<id:memberCode>MEMBER 1</id:memberCode>"),
        ("<id:memberCode>MEMBER1</id:memberCode>", "<id:memberCode>MEMBER/1</id:memberCode>"),
        ("<id:memberCode>MEMBER1</id:memberCode>", "<id:memberCode>MEMBER%2F1</id:memberCode>"),
        ("<id:memberCode>MEMBER1</id:memberCode>", "<id:memberCode>..</id:memberCode>"),
        ("<id:memberCode>MEMBER1</id:memberCode>", "<id:memberCode></id:memberCode>"),
        ("<id:serviceCode>exampleService</id:serviceCode>", "<id:serviceCode>example&#9;Service</id:serviceCode>"),
        ("<id:subsystemCode>SUBSYSTEM1</id:subsystemCode>", ""),
    ],
    ids=[
        "space",
        "slash",
        "percent-encoded",
        "dot-dot",
        "empty",
        "tab-in-service-code",
        "subsystem-without-code",
    ],
)
def test_malformed_identifier_is_refused(request_xml: str, old: str, new: str) -> None:
    """A malformed client or service identifier is client.invalid_client_identifier, never normalised."""
    assert old in request_xml
    assert _fault_code(request_xml.replace(old, new, 1)) == "client.invalid_client_identifier"


def test_malformed_represented_party_is_refused(xroad_vectors: Path) -> None:
    """A represented party code outside X-Road's character set is client.invalid_client_identifier."""
    data = _section(xroad_vectors, "### 2.1").replace("<repr:partyCode>MEMBER3<", "<repr:partyCode>MEMBER 3<")
    assert _fault_code(data) == "client.invalid_client_identifier"


@pytest.mark.parametrize(
    "content_type",
    ["application/json", "text/html; charset=UTF-8", "multipart/related; boundary=x", "", "text/xml; charset", ";"],
)
def test_wrong_content_type_is_refused(request_xml: str, content_type: str) -> None:
    """A content type other than text/xml or application/xop+xml is client.invalid_content_type."""
    assert _fault_code(request_xml, content_type=content_type) == "client.invalid_content_type"


def test_charset_contradicting_the_document_is_refused(request_xml: str) -> None:
    """A charset that the document does not use is client.invalid_content_type, not a guess."""
    assert _fault_code(request_xml, content_type="text/xml; charset=UTF-16") == "client.invalid_content_type"


# --- requestHash and response consistency --------------------------------------------------------------------


def _answer(request_text: str, response_text: str) -> tuple[SoapMessage, SoapMessage]:
    """The request and the provider's response after its security server added requestHash."""
    request = _parse(request_text)
    service_response = _parse(response_text, is_response=True)
    return request, _parse(add_request_hash(service_response, request.raw), is_response=True)


def test_request_hash_is_sha512_of_the_raw_bytes(request_xml: str) -> None:
    """request_hash is SHA-512 over the exact bytes the IS posted (pr-mess §2.2)."""
    raw = request_xml.encode("utf-8")
    assert request_hash(raw) == hashlib.sha512(raw).digest()


def test_added_request_hash_checks(request_xml: str, response_xml: str) -> None:
    """A response with requestHash added over the request passes the consumer's consistency check."""
    request, response = _answer(request_xml, response_xml)
    check_response_consistency(request, response, request.raw)
    assert response.header is not None and response.header.request_hash == (
        SHA512_URI,
        base64.b64encode(hashlib.sha512(request.raw).digest()).decode("ascii"),
    )


def test_service_request_hash_is_replaced(request_xml: str, response_xml: str) -> None:
    """Whatever requestHash the service wrote (E.2's illustrative one) is replaced by exactly one of ours."""
    request, response = _answer(request_xml, response_xml)
    assert response.raw.count(b"requestHash ") == 1
    assert b"29KTVbZf83" not in response.raw


def test_request_hash_goes_after_id_and_keeps_the_prolog(request_xml: str, response_xml: str) -> None:
    """requestHash is inserted right after id (as X-Road does) and the XML declaration stays byte for byte."""
    request, response = _answer(request_xml, _without(response_xml, r"<xrd:requestHash.*?</xrd:requestHash>\s*"))
    assert response.raw.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n<SOAP-ENV:Envelope')
    header = response.root.find("{http://schemas.xmlsoap.org/soap/envelope/}Header")
    assert header is not None
    names = [etree.QName(child).localname for child in header]
    assert names == ["client", "service", "id", "requestHash", "userId", "issue", "protocolVersion"]


def test_add_request_hash_leaves_the_response_untouched(request_xml: str, response_xml: str) -> None:
    """add_request_hash gives new bytes and leaves the parsed response as it was."""
    request = _parse(request_xml)
    response = _parse(response_xml, is_response=True)
    before = etree.tostring(response.root)
    first = add_request_hash(response, request.raw)
    assert etree.tostring(response.root) == before
    assert add_request_hash(response, request.raw) == first
    assert response.raw == response_xml.encode("utf-8")


def test_add_request_hash_leaves_faults_alone(xroad_vectors: Path, request_xml: str) -> None:
    """A fault need not echo the request, so it gets no requestHash."""
    fault = _parse(_section(xroad_vectors, "### 1.3"), is_response=True)
    assert add_request_hash(fault, request_xml.encode("utf-8")) == fault.raw


def test_changed_request_byte_is_inconsistent(request_xml: str, response_xml: str) -> None:
    """One changed byte of the request makes the response's requestHash fail: inconsistent_response."""
    request, response = _answer(request_xml, response_xml)
    tampered = bytearray(request.raw)
    tampered[len(tampered) // 2] ^= 0x01
    with pytest.raises(InconsistentResponse) as caught:
        check_response_consistency(request, response, bytes(tampered))
    assert caught.value.fault_code == "server.clientproxy.inconsistent_response"


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("<xrd:id>4894e35d-bf0f-44a6-867a-8e51f1daa7e0<", "<xrd:id>4894e35d-bf0f-44a6-867a-8e51f1daa7e1<"),
        ("<id:memberCode>MEMBER1<", "<id:memberCode>MEMBER9<"),
        ("<id:serviceCode>exampleService<", "<id:serviceCode>otherService<"),
        ("<id:serviceVersion>v1<", "<id:serviceVersion>v2<"),
        ("<xrd:userId>EE12345678901<", "<xrd:userId>EE10000000000<"),
        ("<xrd:issue>12345<", "<xrd:issue>54321<"),
        ("<xrd:protocolVersion>4.0<", "<xrd:protocolVersion>4.1<"),
    ],
    ids=["id", "client", "service", "service-version", "userId", "issue", "protocolVersion"],
)
def test_response_with_other_header_is_inconsistent(request_xml: str, response_xml: str, old: str, new: str) -> None:
    """A response that does not echo a request header exactly is inconsistent_response, requestHash or not."""
    assert old in response_xml
    request, response = _answer(request_xml, response_xml.replace(old, new, 1))
    with pytest.raises(InconsistentResponse):
        check_response_consistency(request, response, request.raw)


def test_response_dropping_optional_header_is_inconsistent(request_xml: str, response_xml: str) -> None:
    """A response that leaves out the request's userId is inconsistent_response."""
    request, response = _answer(request_xml, _without(response_xml, r"<xrd:userId>.*?</xrd:userId>"))
    with pytest.raises(InconsistentResponse):
        check_response_consistency(request, response)


def test_missing_request_hash_is_inconsistent(request_xml: str, response_xml: str) -> None:
    """A response without requestHash is inconsistent_response (the consumer's server insists on it)."""
    request = _parse(request_xml)
    response = _parse(_without(response_xml, r"<xrd:requestHash.*?</xrd:requestHash>"), is_response=True)
    with pytest.raises(InconsistentResponse):
        check_response_consistency(request, response, request.raw)


def test_wrong_request_hash_is_inconsistent(request_xml: str, response_xml: str) -> None:
    """E.2's illustrative requestHash does not match E.1's bytes: inconsistent_response."""
    request = _parse(request_xml)
    response = _parse(response_xml, is_response=True)
    with pytest.raises(InconsistentResponse):
        check_response_consistency(request, response, request.raw)


def _with_hash(response_xml: str, algorithm: str, value: str) -> str:
    return re.sub(
        r"<xrd:requestHash.*?</xrd:requestHash>",
        f'<xrd:requestHash algorithmId="{algorithm}">{value}</xrd:requestHash>',
        response_xml,
        flags=re.S,
    )


def test_request_hash_with_other_algorithm_is_inconsistent(request_xml: str, response_xml: str) -> None:
    """A requestHash made with another algorithm than agreed is inconsistent_response."""
    request = _parse(request_xml)
    value = base64.b64encode(hashlib.sha256(request.raw).digest()).decode()
    response = _parse(_with_hash(response_xml, digests.SHA256.uri, value), is_response=True)
    with pytest.raises(InconsistentResponse):
        check_response_consistency(request, response)


def test_request_hash_not_base64_is_inconsistent(request_xml: str, response_xml: str) -> None:
    """A requestHash that is not base64 is inconsistent_response, not a crash."""
    request = _parse(request_xml)
    response = _parse(_with_hash(response_xml, SHA512_URI, "not*base64!"), is_response=True)
    with pytest.raises(InconsistentResponse):
        check_response_consistency(request, response)


def test_wrapped_request_hash_is_accepted(request_xml: str, response_xml: str) -> None:
    """A correct requestHash wrapped over lines, as in pr-mess E.2, is accepted."""
    request = _parse(request_xml)
    value = base64.b64encode(hashlib.sha512(request.raw).digest()).decode()
    wrapped = f"\n            {value[:44]}\n            {value[44:]}\n        "
    response = _parse(_with_hash(response_xml, SHA512_URI, wrapped), is_response=True)
    check_response_consistency(request, response)


def test_request_hash_covers_the_given_soap_part(request_xml: str, response_xml: str) -> None:
    """For a multipart request the hash is over the SOAP part: request_raw is what add and check both use."""
    request = _parse(request_xml)
    soap_part = request.raw
    response = _parse(add_request_hash(_parse(response_xml, is_response=True), soap_part), is_response=True)
    check_response_consistency(request, response, soap_part)
    with pytest.raises(InconsistentResponse):
        check_response_consistency(request, response, b"--MIME_boundary\r\n" + soap_part)


def test_fault_response_cannot_be_checked(xroad_vectors: Path, request_xml: str) -> None:
    """A fault has no header to echo; checking it fails closed with inconsistent_response."""
    request = _parse(request_xml)
    fault = _parse(_section(xroad_vectors, "### 1.3"), is_response=True)
    with pytest.raises(InconsistentResponse):
        check_response_consistency(request, fault)


# --- property tests --------------------------------------------------------------------------------------------

ALLOWED = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789'()+,-.=?"
parts = st.text(alphabet=ALLOWED, min_size=1, max_size=12).filter(lambda p: p not in (".", ".."))
codes = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", min_size=1, max_size=12)
clients = st.builds(ClientId, parts, parts, parts, st.one_of(st.none(), parts))
xml_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc", "Cn", "Co")), min_size=1, max_size=30
)
headers = st.builds(
    SoapHeader,
    client=clients,
    service=st.builds(ServiceId, clients, codes, st.one_of(st.none(), parts)),
    id=xml_text,
    protocol_version=st.sampled_from(["4.0", "4.1", "4.10"]),
    user_id=st.one_of(st.none(), st.text(alphabet=ALLOWED, max_size=20)),
    issue=st.one_of(st.none(), xml_text),
    security_server=st.one_of(st.none(), st.builds(SecurityServerId, st.builds(ClientId, parts, parts, parts), parts)),
    represented_party=st.one_of(st.none(), st.tuples(st.one_of(st.none(), parts), parts)),
)


def _wrapper(name: str, text: str) -> etree._Element:
    element = etree.Element(f"{{http://example.org/producer}}{name}")
    etree.SubElement(element, "input").text = text
    return element


@settings(max_examples=75, deadline=None)
@given(headers, xml_text)
def test_envelope_round_trip(header: SoapHeader, body_text: str) -> None:
    """parse_soap(build_envelope(header, wrapper)) gives back the same header and wrapper, byte-exact raw."""
    data = build_envelope(header, _wrapper(header.service.service_code, body_text))
    message = parse_soap(data, CT, max_bytes=MAX)
    assert message.header == header
    assert message.raw == data
    assert message.wrapper == etree.QName("http://example.org/producer", header.service.service_code)
    assert message.body[0].findtext("input") == body_text


@settings(max_examples=50, deadline=None)
@given(headers, xml_text, st.data())
def test_request_hash_binds_response_to_request(header: SoapHeader, body_text: str, data: st.DataObject) -> None:
    """An echoed response with requestHash added checks, and any single flipped request byte is caught."""
    request_raw = build_envelope(header, _wrapper(header.service.service_code, body_text))
    request = parse_soap(request_raw, CT, max_bytes=MAX)
    service_answer = build_envelope(header, _wrapper(header.service.service_code + "Response", "ok"))
    response = parse_soap(add_request_hash(parse_soap(service_answer, CT, max_bytes=MAX, is_response=True), request_raw),
                          CT, max_bytes=MAX, is_response=True)
    check_response_consistency(request, response, request_raw)
    index = data.draw(st.integers(0, len(request_raw) - 1))
    flip = data.draw(st.integers(1, 255))
    tampered = bytearray(request_raw)
    tampered[index] ^= flip
    with pytest.raises(InconsistentResponse):
        check_response_consistency(request, response, bytes(tampered))


def test_header_namespaces_are_x_road_s() -> None:
    """The built header uses X-Road's namespaces, so X-Road's own parser would read it."""
    header = SoapHeader(ClientId("EE", "GOV", "1"), ServiceId(ClientId("EE", "GOV", "2", "s"), "op"), "q", represented_party=(None, "X"))
    root = parse_xml(build_envelope(header, _wrapper("op", "x")))
    namespaces = {etree.QName(element).namespace for element in root.iter() if isinstance(element.tag, str)}
    assert {XROAD_NS, IDENTIFIERS_NS, REPRESENTATION_NS} <= namespaces
