"""SOAP with attachments and MTOM: X-Road's examples read, round trips, bad shapes, and the hash chain over parts."""

from __future__ import annotations

import functools
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from hypothesis import given, settings
from hypothesis import strategies as st

from security_server.core.errors import BusError, MalformedSignature, RequestTooLarge
from security_server.core.multipart import Part, build_multipart, format_header_value
from security_server.core.signature import ECDSA_SHA512, build_signature, verify_signature
from security_server.core.soapattachments import (
    SoapWithAttachments,
    build_related,
    build_related_as,
    expected_uris,
    is_multipart_related,
    parse_related,
    part_resolver,
    signed_parts,
)

PROPERTY = settings(max_examples=60, deadline=None)
SOAP = b'<?xml version="1.0"?><Envelope xmlns="http://schemas.xmlsoap.org/soap/envelope/"><Body/></Envelope>'
NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)


def _example(vectors: Path, heading: str) -> tuple[str, bytes]:
    """The Content-Type and CRLF body of a pr-mess Annex F/G example (protocol-examples §1.5, §1.6)."""
    text = (vectors / "protocol-examples.md").read_text(encoding="utf-8")
    block = re.compile(r"```xml\n(.*?)\n```", re.S).search(text, text.index(heading))
    assert block is not None
    head, _, body = block.group(1).partition("MIME-Version: 1.0\n\n")
    content_type = " ".join(line.strip() for line in head.splitlines()[1:] if line.strip())
    assert content_type.startswith("Content-Type: ")
    return content_type[len("Content-Type: ") :], body.replace("\n", "\r\n").encode() + b"\r\n"


def test_swa_example_is_read_with_its_mime_headers(xroad_vectors: Path) -> None:
    """pr-mess Annex F: the SOAP part first, the attachment with every MIME header, its body not decoded."""
    content_type, body = _example(xroad_vectors, "### 1.5 Request with swaRef attachment")
    assert is_multipart_related(content_type)
    message = parse_related(content_type, body)
    assert message.soap.header("Content-ID") == "<rootpart>" and not message.is_mtom
    assert message.soap_headers == (("Content-Transfer-Encoding", "8bit"), ("Content-ID", "<rootpart>"))
    assert b"<SOAP-ENV:Envelope" in message.soap.body
    (attachment,) = message.attachments
    assert attachment.headers == (
        ("Content-Type", "application/octet-stream; name=data.bin"),
        ("Content-Transfer-Encoding", "base64"),
        ("Content-ID", "<data.bin>"),
        ("Content-Disposition", 'attachment; name="data.bin"; filename="data.bin"'),
    )
    assert attachment.body == b"VGhpcyBpcyBhdHRhY2htZW50Lg0K"


def test_mtom_example_is_read(xroad_vectors: Path) -> None:
    """pr-mess Annex G: type=application/xop+xml, the SOAP part is XOP; start-info is accepted."""
    content_type, body = _example(xroad_vectors, "### 1.6 Request with MTOM attachment")
    message = parse_related(content_type, body)
    assert message.is_mtom and len(message.attachments) == 1
    assert b"xop/include" in message.soap.body


def test_built_message_declares_type_start_and_start_info() -> None:
    """A built message names the SOAP part's type and Content-ID, and for MTOM its start-info."""
    soap = Part((("Content-Type", 'application/xop+xml; charset=UTF-8; type="text/xml"'), ("Content-ID", "<root>")), SOAP)
    content_type, body = build_related(SoapWithAttachments(soap, (Part((("Content-Type", "image/png"),), b"\x89PNG"),)))
    assert content_type.startswith('multipart/related; type="application/xop+xml"; start="<root>"; start-info="text/xml"')
    assert parse_related(content_type, body).soap == soap


header_values = st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=20)


@PROPERTY
@given(
    st.lists(
        st.tuples(st.sampled_from(["application/pdf", "text/plain", "image/png"]), header_values, st.binary(max_size=300)),
        max_size=5,
    )
)
def test_any_message_round_trips_with_every_header(attachments: list[tuple[str, str, bytes]]) -> None:
    """Parsing a built message gives back every part, headers in order and bytes exact."""
    soap = Part((("Content-Type", "text/xml; charset=UTF-8"), ("Content-ID", "<rootpart>")), SOAP)
    parts = tuple(
        Part((("Content-Type", media), ("Content-ID", f"<{index}>"), ("X-Extra", value)), data)
        for index, (media, value, data) in enumerate(attachments)
    )
    message = SoapWithAttachments(soap, parts)
    assert parse_related(*build_related(message)) == message


def _content_type_first(part: Part) -> Part:
    return Part(
        (("Content-Type", part.require_header("Content-Type")), *((n, v) for n, v in part.headers if n.lower() != "content-type")),
        part.body,
    )


@PROPERTY
@given(
    st.lists(
        st.tuples(st.sampled_from(["application/pdf", "text/plain", "image/png"]), header_values, st.binary(max_size=300)),
        max_size=5,
    ),
    st.sampled_from(['multipart/related; boundary="b1"', 'Multipart/Related; type="text/xml"; boundary=MIME_x;charset=UTF-8']),
)
def test_a_message_in_its_senders_form_keeps_type_boundary_and_headers(
    attachments: list[tuple[str, str, bytes]], content_type: str
) -> None:
    """build_related_as keeps the sender's Content-Type and boundary and every part, its headers with Content-Type
    first (X-Road's MultipartEncoder.startPart), or declines when the boundary occurs inside a part."""
    soap = Part((("Content-ID", "<rootpart>"), ("Content-Type", "text/xml; charset=UTF-8")), SOAP)
    parts = tuple(
        Part((("X-Extra", value), ("Content-Type", media), ("Content-ID", f"<{index}>")), data)
        for index, (media, value, data) in enumerate(attachments)
    )
    built = build_related_as(SoapWithAttachments(soap, parts), content_type)
    if built is None:
        boundary = b"--" + ("b1" if "b1" in content_type else "MIME_x").encode()
        assert any(boundary in part.body for part in (soap, *parts))
        return
    assert built[0] == content_type
    expected = SoapWithAttachments(_content_type_first(soap), tuple(_content_type_first(p) for p in parts))
    assert parse_related(*built) == expected


def test_a_message_in_its_senders_form_is_written_as_x_road_writes_it() -> None:
    """X-Road's ProxyMessage.writeSoapContent: the sender's boundary, CRLF, Content-Type first, the other headers
    as they came, a blank line before every body (an empty one too), no preamble or epilogue."""
    soap = Part((("Content-ID", "<root>"), ("Content-Type", 'text/xml; charset="utf-8"')), b"<s/>")
    empty = Part((("content-type", "text/plain"),), b"")
    built = build_related_as(SoapWithAttachments(soap, (empty,)), "multipart/related; charset=UTF-8; boundary=jetty")
    assert built == (
        "multipart/related; charset=UTF-8; boundary=jetty",
        b'--jetty\r\nContent-Type: text/xml; charset="utf-8"\r\nContent-ID: <root>\r\n\r\n<s/>\r\n'
        b"--jetty\r\nContent-Type: text/plain\r\n\r\n\r\n--jetty--\r\n",
    )


@pytest.mark.parametrize(
    "content_type",
    ["text/xml; charset=UTF-8", "multipart/related", 'multipart/related; boundary="bad;"', "multipart/related; boundary=in", "x; y"],
)
def test_a_form_that_cannot_carry_the_message_is_declined(content_type: str) -> None:
    """Not multipart/related, no boundary, a boundary RFC 2046 refuses, or one inside a part: None (a new one)."""
    soap = Part((("Content-Type", "text/xml"),), b"<s/>\r\n--in\r\n")
    assert build_related_as(SoapWithAttachments(soap), content_type) is None


# --- bad shapes ------------------------------------------------------------------------------------------------


def _code(content_type: str, body: bytes, **kwargs: int) -> str:
    with pytest.raises(BusError) as caught:
        parse_related(content_type, body, **kwargs)  # type: ignore[arg-type]
    return caught.value.fault_code


def _body(*parts: Part) -> tuple[str, bytes]:
    return build_multipart(parts)


SOAP_PART = Part((("Content-Type", "text/xml"), ("Content-ID", "<rootpart>")), SOAP)
DATA_PART = Part((("Content-Type", "application/octet-stream"), ("Content-ID", "<data>")), b"data")


def test_empty_multipart_is_missing_soap() -> None:
    """A multipart body with no part at all has no SOAP message: client.missing_soap."""
    assert _code('multipart/related; type="text/xml"; boundary="b"', b"--b--\r\n") == "client.missing_soap"


def test_missing_boundary_is_mime_parsing_failed() -> None:
    """multipart/related without a boundary parameter is client.mime_parsing_failed (X_MIME_PARSING_FAILED)."""
    _, body = _body(SOAP_PART, DATA_PART)
    assert _code('multipart/related; type="text/xml"', body) == "client.mime_parsing_failed"


def test_truncated_or_wrongly_delimited_body_is_mime_parsing_failed() -> None:
    """A body without its close delimiter is client.mime_parsing_failed; one with no delimiter of its boundary at all
    holds no part, client.missing_soap, as X-Road's MIME reader finds it (EmptyMultipartRequest)."""
    boundary, body = _body(SOAP_PART, DATA_PART)
    content_type = format_header_value("multipart/related", [("boundary", boundary)])
    assert _code(content_type, body[: body.rindex(b"--" + boundary.encode())]) == "client.mime_parsing_failed"
    assert _code('multipart/related; boundary="other"', body) == "client.missing_soap"


def test_soap_part_not_first_is_invalid_content_type() -> None:
    """An attachment as the first part is client.invalid_content_type (X-Road reads the first part as SOAP)."""
    boundary, body = _body(DATA_PART, SOAP_PART)
    assert _code(format_header_value("multipart/related", [("boundary", boundary)]), body) == "client.invalid_content_type"


def test_start_naming_another_part_is_invalid_content_type() -> None:
    """start= naming a part that is not the first is refused rather than signing another root than is read."""
    boundary, body = _body(SOAP_PART, Part((("Content-Type", "text/xml"), ("Content-ID", "<other>")), SOAP))
    content_type = format_header_value("multipart/related", [("start", "<other>"), ("boundary", boundary)])
    assert _code(content_type, body) == "client.invalid_content_type"


def test_type_contradicting_the_soap_part_is_invalid_content_type() -> None:
    """type=application/xop+xml over a text/xml SOAP part is refused."""
    boundary, body = _body(SOAP_PART, DATA_PART)
    content_type = format_header_value("multipart/related", [("type", "application/xop+xml"), ("boundary", boundary)])
    assert _code(content_type, body) == "client.invalid_content_type"


def test_attachment_without_content_type_is_invalid_content_type() -> None:
    """Every part needs a Content-Type (X-Road: 'Could not get content type for part')."""
    boundary, body = _body(SOAP_PART, Part((("Content-ID", "<x>"),), b"x"))
    assert _code(format_header_value("multipart/related", [("boundary", boundary)]), body) == "client.invalid_content_type"


def test_too_many_attachments_are_refused() -> None:
    """More attachments than the limit is 413 client.bad_request."""
    boundary, body = _body(SOAP_PART, DATA_PART, DATA_PART, DATA_PART)
    with pytest.raises(RequestTooLarge):
        parse_related(format_header_value("multipart/related", [("boundary", boundary)]), body, max_attachments=2)


def test_other_media_types_are_invalid_content_type() -> None:
    """Only multipart/related is a SOAP message with attachments."""
    assert _code("multipart/mixed; boundary=b", b"--b--\r\n") == "client.invalid_content_type"
    assert not is_multipart_related("text/xml") and not is_multipart_related(";;")


# --- the hash chain over the parts ------------------------------------------------------------------------------


@functools.cache
def _key_and_cert() -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "signer")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(7)
        .not_valid_before(NOW - timedelta(days=1))
        .not_valid_after(NOW + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return key, cert


def _sign(message: bytes, attachments: list[bytes]) -> tuple[bytes, bytes | None, bytes | None]:
    key, cert = _key_and_cert()
    data = build_signature(signed_parts(message, attachments), cert, key, b"ocsp", NOW, algorithm=ECDSA_SHA512)
    return data.signature_xml, data.hash_chain_result, data.hash_chain


@PROPERTY
@given(st.lists(st.binary(max_size=100), min_size=1, max_size=4))
def test_every_part_is_signed_through_a_hash_chain(attachments: list[bytes]) -> None:
    """A message with attachments is signed through a hash chain that covers the message and each attachment."""
    signature, result, chain = _sign(SOAP, attachments)
    assert result is not None and chain is not None
    verified = verify_signature(
        signature, part_resolver(SOAP, attachments, result, chain), expected_parts=expected_uris(len(attachments))
    )
    assert set(expected_uris(len(attachments))) <= verified.covered_parts


@PROPERTY
@given(st.lists(st.binary(min_size=1, max_size=50), min_size=2, max_size=4), st.data())
def test_any_changed_attachment_fails_the_signature(attachments: list[bytes], data: st.DataObject) -> None:
    """One byte of any attachment changed: malformed_signature.invalid_hash_chain_ref."""
    signature, result, chain = _sign(SOAP, attachments)
    index = data.draw(st.integers(0, len(attachments) - 1))
    position = data.draw(st.integers(0, len(attachments[index]) - 1))
    changed = list(attachments)
    tampered = bytearray(changed[index])
    tampered[position] ^= 0x01
    changed[index] = bytes(tampered)
    with pytest.raises(MalformedSignature) as caught:
        verify_signature(signature, part_resolver(SOAP, changed, result, chain), expected_parts=expected_uris(len(changed)))
    assert caught.value.fault_code == "server.serverproxy.malformed_signature.invalid_hash_chain_ref"


def test_a_dropped_attachment_fails_the_signature() -> None:
    """A signature over two attachments does not verify a message that claims three, nor one that lost one."""
    signature, result, chain = _sign(SOAP, [b"a", b"b"])
    with pytest.raises(MalformedSignature):
        verify_signature(signature, part_resolver(SOAP, [b"a", b"b", b"c"], result, chain), expected_parts=expected_uris(3))
    with pytest.raises(MalformedSignature):
        verify_signature(signature, part_resolver(SOAP, [b"a"], result, chain), expected_parts=expected_uris(1))


def test_parts_are_named_like_x_road() -> None:
    """The parts are /message.xml, /attachment1, /attachment2 ... in order."""
    assert [p.name for p in signed_parts(SOAP, [b"x", b"y"])] == ["/message.xml", "/attachment1", "/attachment2"]
    assert expected_uris(0) == ("/message.xml",)


@PROPERTY
@given(st.binary(max_size=300), st.sampled_from(['multipart/related; boundary="b"', "multipart/related", "multipart/related; boundary=\"\"", "x"]))
def test_parsing_fails_only_with_bus_errors(body: bytes, content_type: str) -> None:
    """Arbitrary bodies and content types give a message or a BusError, nothing else."""
    for candidate in (body, b"--b\r\n" + body, b"--b\r\nContent-Type: text/xml\r\n\r\n" + body + b"\r\n--b--"):
        try:
            parse_related(content_type, candidate)
        except BusError:
            pass
