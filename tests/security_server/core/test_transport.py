"""The SS<->SS transport message: X-Road's examples, round trips, and every malformed shape with its fault code."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from security_server.core import digests
from security_server.core.errors import BusError
from security_server.core.multipart import Limits, Part, build_multipart
from security_server.core.signature import SignatureData
from security_server.core.transport import (
    FAULT_CONTENT_TYPE,
    HASH_CHAIN,
    HASH_CHAIN_RESULT,
    MULTIPART_MIXED,
    OCSP_RESPONSE,
    REST_BODY,
    REST_REQUEST,
    REST_RESPONSE,
    SIGNATURE,
    FaultMessage,
    MessageContent,
    MessageKind,
    SignedMessage,
    TransportHeaders,
    TransportLimits,
    TransportMessage,
    decode_request,
    decode_transport,
    encode_transport,
)
from tests.security_server.core import multipart_reference

SOAP_CT = "text/xml; charset=UTF-8"


def _example(vectors: Path, heading: str) -> tuple[str, bytes]:
    """The HTTP content type and CRLF body of a pr-messtransp annex example (protocol-examples.md §4)."""
    text = (vectors / "protocol-examples.md").read_text(encoding="utf-8")
    start = text.index(f"\n{heading} ")
    match = re.compile(r"```http\n(.*?)\n```", re.S).search(text, start)
    assert match is not None
    first, _, rest = match.group(1).partition("\n")
    assert first.startswith("Content-Type: ")
    body = rest.lstrip(" \n")
    return first[len("Content-Type: ") :], body.replace("\n", "\r\n").encode("utf-8") + b"\r\n"


def _code(content_type: str, body: bytes, *, is_response: bool = False, limits: TransportLimits | None = None) -> str:
    with pytest.raises(BusError) as caught:
        decode_transport(content_type, body, is_response=is_response, limits=limits or TransportLimits())
    return caught.value.fault_code


def _signed(message: TransportMessage) -> SignedMessage:
    assert isinstance(message, SignedMessage), message
    return message


def _fault(message: TransportMessage) -> FaultMessage:
    assert isinstance(message, FaultMessage), message
    return message


def _body(*parts: tuple[str, bytes]) -> tuple[str, bytes]:
    """A multipart/mixed body with the given (content type, body) parts, in the given order."""
    boundary, body = build_multipart([Part((("Content-Type", ct),), data) for ct, data in parts])
    return f'multipart/mixed; boundary="{boundary}"', body


# --- X-Road's examples (pr-messtransp Annex) -----------------------------------------------------------------


def test_xroad_simple_soap_request_decodes(xroad_vectors: Path) -> None:
    """pr-messtransp's simple SOAP request: one OCSP response, the SOAP message, the signature."""
    content_type, body = _example(xroad_vectors, "### 4.2")
    message = decode_request(content_type, body)
    assert message.ocsp_responses == (b"...ocsp response...",)
    assert message.content.message == b"...request SOAP..."
    assert message.content.kind is MessageKind.SOAP
    assert message.signature == SignatureData(b"...signature XML...")


def test_xroad_simple_soap_response_decodes(xroad_vectors: Path) -> None:
    """pr-messtransp's simple SOAP response: the SOAP message and the signature, no OCSP."""
    content_type, body = _example(xroad_vectors, "### 4.3")
    message = _signed(decode_transport(content_type, body, is_response=True))
    assert message.ocsp_responses == ()
    assert message.content.message == b"...response SOAP..."
    assert message.signature == SignatureData(b"...signature XML...")


def test_xroad_response_with_late_fault_decodes(xroad_vectors: Path) -> None:
    """pr-messtransp's response with a SOAP fault as the last part: the fault takes the signature's place."""
    content_type, body = _example(xroad_vectors, "### 4.5")
    message = _fault(decode_transport(content_type, body, is_response=True))
    assert message.content is not None and message.content.message == b"...response SOAP..."
    assert message.fault == b"...SOAP fault..."
    assert not message.is_early_fault


def test_xroad_rest_request_decodes(xroad_vectors: Path) -> None:
    """pr-messtransp's REST request: OCSP, REST header part, body, hash chain result and chain, signature."""
    content_type, body = _example(xroad_vectors, "### 4.6")
    message = decode_request(content_type, body)
    assert message.content.kind is MessageKind.REST
    assert message.content.message == b"...REST request header..."
    assert message.content.rest_body == b"...REST request body..."
    assert message.signature == SignatureData(
        b"...signature XML...", b"...hash chain result XML...", b"...hash chain XML..."
    )


def test_xroad_rest_response_decodes(xroad_vectors: Path) -> None:
    """pr-messtransp's REST response decodes with its body and batch-signature parts."""
    content_type, body = _example(xroad_vectors, "### 4.7")
    message = _signed(decode_transport(content_type, body, is_response=True))
    assert message.content.kind is MessageKind.REST
    assert message.content.message == b"...REST response header..."
    assert message.content.rest_body == b"...REST response body..."


def test_xroad_attachment_example_decodes_once_its_typos_are_fixed(xroad_vectors: Path) -> None:
    """pr-messtransp's attachments example decodes once its two typos are fixed; verbatim it is refused.

    The annex closes the nested multipart with ``--boundary --`` (not a close delimiter, RFC 2046 §5.1.1) and
    has a header block ended by a line holding one blank (a header continuation line): the strict parser
    refuses rather than guesses.
    """
    content_type, body = _example(xroad_vectors, "### 4.4")
    assert _code(content_type, body) == "client.bad_request"
    fixed = body.replace(b"xtop569125687h3h10du0 --", b"xtop569125687h3h10du0--").replace(
        b"attachment.txt\r\n \r\n", b"attachment.txt\r\n\r\n"
    )
    message = decode_request(content_type, fixed)
    assert [part.header("Content-Type") for part in message.content.attachments] == [
        "text/plain; charset=UTF-8",
        "application/octet-stream",
    ]
    assert message.content.attachments[1].header("Content-Id") == "<data.bin>"
    assert message.signature.hash_chain_result == b"...hash chain result XML..."


def test_ocsp_download_response_is_not_a_transport_message(xroad_vectors: Path) -> None:
    """The OCSP download answer (multipart/related) is not a transport message: invalid_content_type."""
    content_type, body = _example(xroad_vectors, "### 4.1")
    assert _code(content_type, body) == "client.invalid_content_type"


# --- encoding ------------------------------------------------------------------------------------------------


def test_request_parts_are_written_in_x_road_order() -> None:
    """encode_transport writes OCSP, message, attachments, hash chain result, hash chain, signature."""
    attachment = Part((("Content-Type", "application/octet-stream"),), b"data")
    message = SignedMessage(
        MessageContent(b"<soap/>", SOAP_CT, attachments=(attachment,)),
        SignatureData(b"sig", b"result", b"chain"),
        (b"o1", b"o2"),
    )
    content_type, body = encode_transport(message)
    assert content_type.startswith("multipart/mixed; ")
    types = re.findall(rb"\r\nContent-Type: ([^;\r]+)", b"\r\n" + body)
    assert types[:3] == [OCSP_RESPONSE.encode(), OCSP_RESPONSE.encode(), b"text/xml"]
    assert types[3] == MULTIPART_MIXED.encode()
    assert types[-3:] == [HASH_CHAIN_RESULT.encode(), HASH_CHAIN.encode(), SIGNATURE.encode()]
    assert decode_transport(content_type, body, is_response=False) == message


def test_early_fault_is_a_whole_text_xml_body() -> None:
    """A fault before anything was sent is the whole body, as text/xml, and decodes back as an early fault."""
    fault = b"<SOAP-ENV:Envelope>fault</SOAP-ENV:Envelope>"
    content_type, body = encode_transport(FaultMessage(fault))
    assert (content_type, body) == (FAULT_CONTENT_TYPE, fault)
    decoded = _fault(decode_transport(content_type, body, is_response=True))
    assert decoded.is_early_fault and decoded.fault == fault and decoded.content is None


def test_soap_part_keeps_its_mime_headers() -> None:
    """The MIME headers of the consumer's SOAP part travel with it (pr-messtransp §3.1)."""
    content = MessageContent(b"<soap/>", SOAP_CT, (("Content-Transfer-Encoding", "8bit"), ("Content-ID", "<rootpart>")))
    content_type, body = encode_transport(SignedMessage(content, SignatureData(b"s")))
    assert _signed(decode_transport(content_type, body, is_response=True)).content.headers == content.headers


@pytest.mark.parametrize(
    "kwargs",
    [
        {"message": b"m", "content_type": "application/json"},
        {"message": b"m", "content_type": REST_REQUEST, "attachments": (Part(),)},
        {"message": b"m", "content_type": SOAP_CT, "rest_body": b"b"},
        {"message": b"m", "content_type": SOAP_CT, "headers": (("Content-Type", "text/plain"),)},
    ],
    ids=["bad-type", "rest-attachments", "soap-rest-body", "repeated-content-type"],
)
def test_impossible_contents_cannot_be_built(kwargs: dict[str, object]) -> None:
    """Message content that breaks the part rules cannot be constructed. (An unsigned message, one both signed and
    ending in a fault, or an early fault with other parts have no type at all.)"""
    with pytest.raises(BusError):
        MessageContent(**kwargs)  # type: ignore[arg-type]


def test_a_lone_hash_chain_cannot_be_built() -> None:
    """A hash chain without its result (or the reverse) is not a signature."""
    with pytest.raises(ValueError):
        SignatureData(b"s", None, b"c")


# --- malformed and hostile input ---------------------------------------------------------------------------


def test_missing_signature_is_refused() -> None:
    """A request that ends after its message is missing_signature."""
    assert _code(*_body((OCSP_RESPONSE, b"o"), (SOAP_CT, b"m"))) == "server.serverproxy.missing_signature"


def test_missing_message_is_refused() -> None:
    """A request with OCSP responses and a signature but no message is missing_soap."""
    assert _code(*_body((OCSP_RESPONSE, b"o"), (SIGNATURE, b"s"))) == "client.missing_soap"


def test_only_ocsp_is_refused() -> None:
    """A request of OCSP responses alone is missing_soap."""
    assert _code(*_body((OCSP_RESPONSE, b"o"))) == "client.missing_soap"


def test_ocsp_after_message_is_refused() -> None:
    """An OCSP response after the message is out of order: invalid_message."""
    assert _code(*_body((SOAP_CT, b"m"), (OCSP_RESPONSE, b"o"), (SIGNATURE, b"s"))) == "client.invalid_message"


def test_ocsp_in_response_is_refused() -> None:
    """A response carries no OCSP responses: invalid_message."""
    assert _code(*_body((OCSP_RESPONSE, b"o"), (SOAP_CT, b"m"), (SIGNATURE, b"s")), is_response=True) == (
        "client.invalid_message"
    )


def test_part_after_signature_is_refused() -> None:
    """Anything after the signature is invalid_message (X-Road: extra content after signature)."""
    assert _code(*_body((SOAP_CT, b"m"), (SIGNATURE, b"s"), (SIGNATURE, b"s"))) == "client.invalid_message"


def test_second_message_is_refused() -> None:
    """A second SOAP part in a request is invalid_message."""
    assert _code(*_body((SOAP_CT, b"m"), (SOAP_CT, b"m2"), (SIGNATURE, b"s"))) == "client.invalid_message"


def test_late_fault_in_request_is_refused() -> None:
    """Only a response may end in a fault; a request that does is invalid_message."""
    assert _code(*_body((SOAP_CT, b"m"), (SOAP_CT, b"fault"))) == "client.invalid_message"


def test_signature_before_hash_chain_is_refused() -> None:
    """The hash chain parts come before the signature; after it they are invalid_message."""
    parts = ((SOAP_CT, b"m"), (SIGNATURE, b"s"), (HASH_CHAIN_RESULT, b"r"), (HASH_CHAIN, b"c"))
    assert _code(*_body(*parts)) == "client.invalid_message"


def test_hash_chain_without_result_is_refused() -> None:
    """A hash chain without its result is malformed_signature."""
    assert _code(*_body((SOAP_CT, b"m"), (HASH_CHAIN, b"c"), (SIGNATURE, b"s"))) == "server.serverproxy.malformed_signature"


def test_hash_chain_result_without_chain_is_refused() -> None:
    """A hash chain result followed straight by the signature is malformed_signature."""
    parts = ((SOAP_CT, b"m"), (HASH_CHAIN_RESULT, b"r"), (SIGNATURE, b"s"))
    assert _code(*_body(*parts)) == "server.serverproxy.malformed_signature"


def test_rest_body_after_soap_is_refused() -> None:
    """A REST body after a SOAP message is invalid_message."""
    assert _code(*_body((SOAP_CT, b"m"), (REST_BODY, b"b"), (SIGNATURE, b"s"))) == "client.invalid_message"


def test_rest_response_part_in_request_is_refused() -> None:
    """A REST response header part in a request is invalid_message."""
    assert _code(*_body((REST_RESPONSE, b"h"), (SIGNATURE, b"s"))) == "client.invalid_message"


def test_unknown_part_type_is_refused() -> None:
    """A part of a type the protocol does not have is invalid_content_type."""
    assert _code(*_body((SOAP_CT, b"m"), ("application/x-evil", b"e"), (SIGNATURE, b"s"))) == "client.invalid_content_type"


def test_part_without_content_type_is_refused() -> None:
    """A part without a Content-Type header is invalid_content_type."""
    boundary, body = build_multipart([Part((("Content-Type", SOAP_CT),), b"m"), Part((("X-Other", "1"),), b"s")])
    assert _code(f"multipart/mixed; boundary={boundary}", body) == "client.invalid_content_type"


def test_too_many_ocsp_responses_are_refused() -> None:
    """More OCSP responses than the limit is refused with 413."""
    parts = [(OCSP_RESPONSE, b"o")] * 4 + [(SOAP_CT, b"m"), (SIGNATURE, b"s")]
    with pytest.raises(BusError) as caught:
        decode_transport(*_body(*parts), is_response=False, limits=TransportLimits(max_ocsp_responses=3))
    assert caught.value.http_status == 413


def test_too_many_attachments_are_refused() -> None:
    """More attachments than the limit is refused with 413."""
    attachments = tuple(Part((("Content-Type", "text/plain"),), b"a") for _ in range(3))
    message = SignedMessage(MessageContent(b"m", SOAP_CT, attachments=attachments), SignatureData(b"s"))
    with pytest.raises(BusError) as caught:
        decode_transport(*encode_transport(message), is_response=False, limits=TransportLimits(max_attachments=2))
    assert caught.value.http_status == 413


def test_oversized_body_is_refused() -> None:
    """A body over the MIME limit is refused with 413 before it is split."""
    content_type, body = _body((SOAP_CT, b"m" * 2000), (SIGNATURE, b"s"))
    with pytest.raises(BusError) as caught:
        decode_transport(content_type, body, is_response=False, limits=TransportLimits(mime=Limits(max_body_bytes=1000)))
    assert caught.value.http_status == 413


@pytest.mark.parametrize("content_type", ["application/json", "multipart/related; boundary=x", "multipart/mixed", "text/xml"])
def test_wrong_content_type_of_request_is_refused(content_type: str) -> None:
    """A request that is not multipart/mixed with a boundary (text/xml included) is invalid_content_type."""
    _, body = _body((SOAP_CT, b"m"), (SIGNATURE, b"s"))
    assert _code(content_type, body) == "client.invalid_content_type"


def test_empty_body_is_refused() -> None:
    """An empty multipart body is refused as a bad request."""
    assert _code('multipart/mixed; boundary="b"', b"") == "client.bad_request"


def test_empty_early_fault_is_refused() -> None:
    """An empty text/xml response is not a fault: invalid_message."""
    assert _code("text/xml", b"", is_response=True) == "client.invalid_message"


# --- HTTP headers --------------------------------------------------------------------------------------------


def test_headers_round_trip_in_x_road_spelling() -> None:
    """TransportHeaders writes X-Road's names and its Java digest name, and reads them back case-insensitively."""
    headers = TransportHeaders(
        "f92591a3-6bf0-49b1-987b-0dd78c034cc3", original_content_type=SOAP_CT, original_soap_action='""',
        proxy_version="7.8.0",
    )
    pairs = headers.to_http()
    assert ("x-hash-algorithm", "SHA-512") in pairs and ("x-road-request-id", headers.request_id) in pairs
    shouted = [(name.upper(), value) for name, value in pairs]
    assert TransportHeaders.from_http(shouted, is_response=False) == headers
    rest = TransportHeaders("id", hash_algorithm=digests.SHA256, rest=True)
    assert TransportHeaders.from_http(dict(rest.to_http()), is_response=False) == rest


@pytest.mark.parametrize(
    ("pairs", "is_response"),
    [
        ([("x-hash-algorithm", "SHA-512")], False),
        ([("x-road-request-id", "1")], False),
        ([("x-road-request-id", "1"), ("x-hash-algorithm", "MD5")], False),
        ([("x-road-request-id", "1"), ("X-Road-Request-Id", "2"), ("x-hash-algorithm", "SHA-512")], False),
        ([("x-road-request-id", "1\r\nx-evil: 1"), ("x-hash-algorithm", "SHA-512")], False),
        ([("x-hash-algorithm", "SHA-512"), ("x-road-message-type", "SOAP")], True),
    ],
    ids=["no-request-id", "no-hash-algorithm", "unknown-algorithm", "repeated", "line-break", "bad-message-type"],
)
def test_bad_headers_are_refused(pairs: list[tuple[str, str]], is_response: bool) -> None:
    """Missing, repeated, unknown or line-breaking transport headers are client.bad_request."""
    with pytest.raises(BusError) as caught:
        TransportHeaders.from_http(pairs, is_response=is_response)
    assert caught.value.fault_code == "client.bad_request"


def test_response_may_omit_request_id() -> None:
    """A response's headers need not repeat the request id."""
    assert TransportHeaders.from_http({"x-hash-algorithm": "SHA-512"}, is_response=True).request_id is None


# --- property tests --------------------------------------------------------------------------------------------

blobs = st.binary(max_size=200)
attachment_parts = st.lists(
    st.builds(lambda body: Part((("Content-Type", "application/octet-stream"),), body), blobs), max_size=3
).map(tuple)


@st.composite
def transport_messages(draw: st.DrawFn) -> tuple[TransportMessage, bool]:
    """A valid request or response with arbitrary bytes in every part."""
    is_response = draw(st.booleans())
    rest = draw(st.booleans())
    kind_type = (REST_RESPONSE if is_response else REST_REQUEST) if rest else SOAP_CT
    batch = draw(st.booleans())
    late_fault = is_response and not batch and draw(st.booleans())
    content = MessageContent(
        draw(blobs),
        kind_type,
        attachments=() if rest else draw(attachment_parts),
        rest_body=draw(st.one_of(st.none(), blobs)) if rest else None,
    )
    if late_fault:
        return FaultMessage(draw(blobs), content), is_response
    signature = SignatureData(draw(blobs), draw(blobs), draw(blobs)) if batch else SignatureData(draw(blobs))
    ocsp = () if is_response else tuple(draw(st.lists(blobs, max_size=3)))
    return SignedMessage(content, signature, ocsp), is_response


@settings(max_examples=100, deadline=None)
@given(transport_messages())
def test_encode_decode_round_trip(case: tuple[TransportMessage, bool]) -> None:
    """decode(encode(m)) == m for every part shape, with arbitrary bytes in every part (binary-safe)."""
    message, is_response = case
    content_type, body = encode_transport(message)
    assert decode_transport(content_type, body, is_response=is_response) == message


@settings(max_examples=60, deadline=None)
@given(transport_messages(), st.data())
def test_any_truncation_is_refused(case: tuple[TransportMessage, bool], data: st.DataObject) -> None:
    """Cutting an encoded body anywhere before its close delimiter ends gives a BusError, never a message."""
    message, is_response = case
    content_type, body = encode_transport(message)
    # The last two bytes are the CRLF after the close delimiter, which RFC 2046 leaves to the epilogue.
    cut = data.draw(st.integers(0, len(body) - 3))
    with pytest.raises(BusError):
        decode_transport(content_type, body[:cut], is_response=is_response)


def test_remembered_part_content_types_keep_every_verdict() -> None:
    """A part content type that does not parse is invalid_content_type every time (a refusal is never
    remembered), and a remembered valid one still decodes, in any case and spelling."""
    bad = _body((SOAP_CT, b"m"), ('text/xml; charset="unterminated', b"x"), (SIGNATURE, b"s"))
    for _ in range(3):
        assert _code(*bad) == "client.invalid_content_type"
    for soap_type in (SOAP_CT, SOAP_CT.upper(), "text/xml", "TEXT/XML; charset=utf-8"):
        for _ in range(2):
            message = _signed(decode_transport(*_body((soap_type, b"<m/>"), (SIGNATURE, b"s")), is_response=True))
            assert message.content.content_type == soap_type and message.signature.signature_xml == b"s"


soap_mime_headers = st.lists(
    st.sampled_from([("Content-ID", "<soap@example.org>"), ("Content-Transfer-Encoding", "8bit"), ("X-Note", "ä ü")]),
    max_size=2,
    unique=True,
).map(tuple)


@st.composite
def transport_messages_with_headers(draw: st.DrawFn) -> tuple[TransportMessage, bool]:
    """A transport message from :func:`transport_messages`, its SOAP part given MIME headers of its own."""
    message, is_response = draw(transport_messages())
    content = message.content
    if content is not None and content.kind is MessageKind.SOAP:
        content = MessageContent(content.message, content.content_type, draw(soap_mime_headers), content.attachments)
        message = (
            FaultMessage(message.fault, content)
            if isinstance(message, FaultMessage)
            else SignedMessage(content, message.signature, message.ocsp_responses)
        )
    return message, is_response


@settings(max_examples=150, deadline=None)
@given(st.one_of(transport_messages(), transport_messages_with_headers()))
def test_fixed_part_headers_write_the_reference_bytes(case: tuple[TransportMessage, bool]) -> None:
    """encode_transport over fixed part-header bytes gives exactly the content type and body of the Part-based
    encoder it replaced (tests/security_server/core/multipart_reference.py), for every part shape and empty bodies."""
    message, _ = case
    assert encode_transport(message) == multipart_reference.encode_transport(message)


def test_early_fault_and_empty_parts_write_the_reference_bytes() -> None:
    """A whole-body fault, and parts with empty bodies (header-only, as X-Road writes them), match the reference."""
    content = MessageContent(b"", REST_REQUEST, rest_body=b"")
    for message in (
        FaultMessage(b"<fault/>"),
        SignedMessage(content, SignatureData(b"", b"", b""), (b"",)),
        FaultMessage(b"", MessageContent(b"<m/>", SOAP_CT, attachments=(Part((("Content-Type", "a/b"),), b""),))),
    ):
        assert encode_transport(message) == multipart_reference.encode_transport(message)
