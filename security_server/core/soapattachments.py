"""SOAP messages with attachments: ``multipart/related`` (SOAP with Attachments) and MTOM, read, built and signed.

Between a department system and its security server (pr-mess §2.4; XROAD-REFERENCE.md §3.5; protocol-examples
§1.5, §1.6) a SOAP message may travel as ``multipart/related``: the SOAP part first (``text/xml``, or
``application/xop+xml`` for MTOM), then the attachments, each with its own MIME headers (``Content-Type``,
``Content-ID``, ``Content-Transfer-Encoding``, ``Content-Disposition`` ...). Every part's bytes and headers are
kept exactly: the attachment bodies are digested as they are (never decoded), and their headers travel to the
other side (between security servers as the nested ``multipart/mixed`` of pr-messtransp §3.1, core/transport.py).

The verdicts follow X-Road's ``SoapMessageDecoder``, stricter where it guesses:

* a body whose MIME structure cannot be read (no ``boundary``, a bad or missing delimiter) is
  ``mime_parsing_failed``; a multipart body without any part has no SOAP message: ``missing_soap``;
* the first part is the SOAP part; when it is not a SOAP media type the parser's ``invalid_content_type`` applies
  (X-Road reads the first part as SOAP). When the ``start`` parameter names another part than the first, or the
  ``type`` parameter another media type than the first part's, the message is refused (``invalid_content_type``):
  X-Road ignores both and would sign a different part than the recipient reads as the root;
* every attachment has a ``Content-Type`` (``invalid_content_type``), and there are at most ``max_attachments``.

**Signing** (XROAD-REFERENCE.md §4.2): the parts are ``/message.xml`` (the SOAP part's bytes) and
``/attachment1`` ... in order; a message with more than one part is signed through a hash chain
(:func:`security_server.core.signature.build_signature` builds it, :func:`signed_parts` names the parts, and
:func:`part_resolver` gives a verifier the bytes of each). A REST body is ``/attachment1`` in the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

from security_server.core import digests
from security_server.core.digests import DigestAlgorithm
from security_server.core.errors import (
    BadRequest,
    InvalidContentType,
    MimeParsingFailed,
    MissingSoap,
    RequestTooLarge,
)
from security_server.core.hashchain import MESSAGE, SIG_HASH_CHAIN, SIG_HASH_CHAIN_RESULT, attachment_uri
from security_server.core.multipart import (
    DEFAULT_LIMITS,
    Limits,
    Part,
    build_encoded_multipart,
    build_multipart,
    check_boundary,
    encode_head,
    format_header_value,
    parse_header_value,
    parse_multipart,
)
from security_server.core.signature import MessagePart

MULTIPART_RELATED = "multipart/related"
TEXT_XML = "text/xml"
XOP_XML = "application/xop+xml"
SOAP_PART_TYPES = (TEXT_XML, XOP_XML)


@dataclass(frozen=True, slots=True)
class SoapWithAttachments:
    """A SOAP message and its attachments, each part with its MIME headers as they were sent."""

    soap: Part
    attachments: tuple[Part, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.soap, Part) or not all(isinstance(p, Part) for p in self.attachments):
            raise BadRequest("SOAP parts must be MIME parts")
        object.__setattr__(self, "attachments", tuple(self.attachments))
        _media_type(self.soap.require_header("Content-Type"), "SOAP part", SOAP_PART_TYPES)
        for index, attachment in enumerate(self.attachments, start=1):
            if attachment.header("Content-Type") is None:
                raise InvalidContentType("Could not get content type for part", reason=f"attachment {index}")

    @property
    def soap_content_type(self) -> str:
        """The SOAP part's ``Content-Type``."""
        return self.soap.require_header("Content-Type")

    @property
    def soap_headers(self) -> tuple[tuple[str, str], ...]:
        """The SOAP part's other MIME headers (``Content-ID``, ``Content-Transfer-Encoding`` ...)."""
        return tuple((n, v) for n, v in self.soap.headers if n.lower() != "content-type")

    @property
    def is_mtom(self) -> bool:
        """Whether the SOAP part is XOP (MTOM, ``application/xop+xml``)."""
        return parse_header_value(self.soap_content_type).media_type == XOP_XML


def _media_type(value: str, what: str, allowed: Sequence[str]) -> str:
    try:
        media = parse_header_value(value).media_type
    except BadRequest as err:
        raise InvalidContentType(f"Invalid content type of the {what}", reason=err.reason) from err
    if media not in allowed:
        raise InvalidContentType(f"Invalid content type: {media}", reason=f"{what} is {media}")
    return media


def is_multipart_related(content_type: str) -> bool:
    """Whether ``content_type`` is ``multipart/related`` (a SOAP message with attachments)."""
    try:
        return parse_header_value(content_type).media_type == MULTIPART_RELATED
    except BadRequest:
        return False


def _content_id(part: Part) -> str | None:
    value = part.header("Content-ID")
    return None if value is None else value.strip()


def parse_related(
    content_type: str, body: bytes, *, limits: Limits = DEFAULT_LIMITS, max_attachments: int = 100
) -> SoapWithAttachments:
    """Read a ``multipart/related`` SOAP message (see the module docstring for the verdicts)."""
    try:
        header = parse_header_value(content_type)
    except BadRequest as err:
        raise InvalidContentType("Invalid content type", reason=err.reason) from err
    if header.media_type != MULTIPART_RELATED:
        raise InvalidContentType(f"Invalid content type: {header.media_type}")
    boundary = header.param("boundary")
    if boundary is None:
        raise MimeParsingFailed("Failed to parse MIME message: no boundary in the content type")
    try:
        check_boundary(boundary)
        parts = parse_multipart(body, boundary, limits)
    except RequestTooLarge:
        raise
    except BadRequest as err:
        if err.message in ("multipart body has no parts", "multipart body has no opening boundary"):
            # X-Road's MIME reader finds no part in a body without a delimiter (an empty one included): missing_soap
            raise MissingSoap("Request does not have a SOAP message") from err
        raise MimeParsingFailed(f"Failed to parse MIME message: {err.message}") from err
    soap, attachments = parts[0], parts[1:]
    if soap.header("Content-Type") is None:
        raise InvalidContentType("Could not get content type for part", reason="the first part has no Content-Type")
    soap_media = _media_type(soap.require_header("Content-Type"), "first part", SOAP_PART_TYPES)
    start = header.param("start")
    if start is not None and start.strip() != _content_id(soap):
        raise InvalidContentType(
            "The SOAP part must be the first part", reason=f"start={start!r} is not the first part's Content-ID"
        )
    declared_type = header.param("type")
    if declared_type is not None and declared_type.strip().lower() != soap_media:
        raise InvalidContentType(
            "The SOAP part must be the first part", reason=f"type={declared_type!r} but the first part is {soap_media}"
        )
    if len(attachments) > max_attachments:
        raise RequestTooLarge(f"Message has more than {max_attachments} attachments")
    return SoapWithAttachments(soap, attachments)


def build_related(message: SoapWithAttachments) -> tuple[str, bytes]:
    """Encode as ``multipart/related`` ``(Content-Type, body)``: ``type`` is the SOAP part's media type, ``start``
    its ``Content-ID`` when it has one, and for MTOM ``start-info`` the XOP part's ``type`` parameter."""
    boundary, body = build_multipart([message.soap, *message.attachments])
    soap_type = parse_header_value(message.soap_content_type)
    params: list[tuple[str, str]] = [("type", soap_type.media_type)]
    content_id = _content_id(message.soap)
    if content_id:
        params.append(("start", content_id))
    if soap_type.media_type == XOP_XML:
        params.append(("start-info", soap_type.param("type") or TEXT_XML))
    params.append(("boundary", boundary))
    return format_header_value(MULTIPART_RELATED, params), body


def _xroad_head(part: Part) -> bytes:
    """A part's header block as X-Road's encoder writes it: ``Content-Type`` first, then the part's other headers
    as they came, then the blank line, whatever the body (``MultipartEncoder.startPart``)."""
    content_type = part.require_header("Content-Type")
    return encode_head((("Content-Type", content_type), *((n, v) for n, v in part.headers if n.lower() != "content-type")))


def build_related_as(message: SoapWithAttachments, content_type: str) -> tuple[str, bytes] | None:
    """Encode under ``content_type``, a ``multipart/related`` type written by the message's sender (the IS for a
    request, the provider for an answer), keeping it and its boundary, as X-Road re-encodes a message it passes on
    (``ProxyMessage.writeSoapContent``: its ``MultipartEncoder`` or ``MultipartSoapMessageEncoder`` with the
    original boundary, CRLF line ends, preamble and epilogue dropped, each part's headers kept); also when the
    SOAP part is alone (X-Road's ``MimeSoap``). ``None`` when ``content_type`` is not a ``multipart/related``
    with a usable boundary for these parts; the caller then builds a new one (:func:`build_related`)."""
    try:
        header = parse_header_value(content_type)
        if header.media_type != MULTIPART_RELATED:
            return None
        boundary = header.param("boundary")
        if boundary is None:
            return None
        _, body = build_encoded_multipart(
            [(_xroad_head(part), part.body) for part in (message.soap, *message.attachments)], boundary
        )
    except (BadRequest, InvalidContentType):  # a type that does not parse, a boundary RFC 2046 does not allow
        return None
    return content_type, body


# --- signing: the parts of a message --------------------------------------------------------------------------


def signed_parts(
    message: bytes, attachments: Sequence[bytes], algorithm: DigestAlgorithm = digests.SHA512
) -> list[MessagePart]:
    """``/message.xml`` and ``/attachment1`` ... with their digests: what one message's signature covers."""
    return [MessagePart.of(MESSAGE, message, algorithm)] + [
        MessagePart.of(attachment_uri(index), data, algorithm) for index, data in enumerate(attachments, start=1)
    ]


def expected_uris(attachment_count: int) -> tuple[str, ...]:
    """The URIs a verified signature must cover: the message and each attachment."""
    return (MESSAGE, *(attachment_uri(i) for i in range(1, attachment_count + 1)))


def part_resolver(
    message: bytes,
    attachments: Sequence[bytes],
    hashchain_result: bytes | None = None,
    hashchain: bytes | None = None,
) -> Callable[[str], bytes | None]:
    """The ``resolve`` function of :func:`~security_server.core.signature.verify_signature` for one message."""
    table = {MESSAGE: message}
    for index, data in enumerate(attachments, start=1):
        table[attachment_uri(index)] = data
    if hashchain_result is not None and hashchain is not None:
        table[SIG_HASH_CHAIN_RESULT] = hashchain_result
        table[SIG_HASH_CHAIN] = hashchain
    return table.get
