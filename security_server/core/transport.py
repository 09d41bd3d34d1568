"""The message between two security servers: X-Road's ``multipart/mixed`` transport message and its HTTP headers.

pr-messtransp §3.1 (XROAD-REFERENCE.md §4.1). A request's parts, in this order:

1. ``application/ocsp-response`` x N: OCSP responses for the sender's authentication certificate chain;
2. the message: SOAP (``text/xml`` or ``application/xop+xml``) or the REST header part
   (``application/x-road-rest-request`` / ``-response``);
3. optional: SOAP attachments as one nested ``multipart/mixed`` part, or for REST the body
   (``application/x-road-rest-body``);
4. optional, for a batch signature: ``application/hash-chain-result`` then ``application/hash-chain``;
5. the signature, ``signature/bdoc-1.0/ts``.

A response is the same without OCSP parts. When the provider's server fails after it has started to answer,
a SOAP fault (``text/xml``) takes the signature's place as the last part; when it fails before, the whole
body is a ``text/xml`` SOAP fault (an early failure). Verdicts follow X-Road's ``ProxyMessageDecoder``, but
stricter: a part out of place is refused (``invalid_message``), a part of unknown type is an
``invalid_content_type``, a message without its message part is ``missing_soap``, one without its signature
``missing_signature``; a lone hash-chain part is a ``malformed_signature``. Bodies are opaque bytes here:
the SOAP part is checked by :mod:`security_server.core.soap`, OCSP by ``trust``, the signature by
``signature``.

The types say what is present: a :class:`SignedMessage` (its :class:`MessageContent`, its
:class:`~security_server.core.signature.SignatureData` with or without a hash chain, and for a request the OCSP
responses) or, for a response only, a :class:`FaultMessage` (early: the whole body; late: after the message part).
:func:`decode_request` returns a signed message by type.
"""

from __future__ import annotations

import enum
import functools
import re
from dataclasses import dataclass, field
from typing import Iterable, Mapping, Union

from security_server.core import digests
from security_server.core.digests import DigestAlgorithm
from security_server.core.errors import (
    BadRequest,
    InvalidContentType,
    InvalidMessage,
    MalformedSignature,
    MissingSignature,
    MissingSoap,
    RequestTooLarge,
)
from security_server.core.multipart import (
    CRLF,
    DEFAULT_LIMITS,
    HeaderValue,
    Limits,
    Part,
    boundary_of,
    build_encoded_multipart,
    build_multipart,
    encode_head,
    format_header_value,
    parse_header_value,
    parse_multipart,
    parse_multipart_message,
)
from security_server.core.signature import SignatureData

# Media types of the parts (X-Road MimeTypes.java).
MULTIPART_MIXED = "multipart/mixed"
OCSP_RESPONSE = "application/ocsp-response"
TEXT_XML = "text/xml"
XOP_XML = "application/xop+xml"
REST_REQUEST = "application/x-road-rest-request"
REST_RESPONSE = "application/x-road-rest-response"
REST_BODY = "application/x-road-rest-body"
HASH_CHAIN_RESULT = "application/hash-chain-result"
HASH_CHAIN = "application/hash-chain"
SIGNATURE = "signature/bdoc-1.0/ts"

SOAP_MEDIA_TYPES = (TEXT_XML, XOP_XML)
REST_MEDIA_TYPES = (REST_REQUEST, REST_RESPONSE)
FAULT_CONTENT_TYPE = "text/xml; charset=UTF-8"

# HTTP headers between security servers (pr-messtransp §3.2; X-Road MimeUtils.java).
HEADER_REQUEST_ID = "x-road-request-id"
HEADER_HASH_ALGORITHM = "x-hash-algorithm"
HEADER_ORIGINAL_CONTENT_TYPE = "x-original-content-type"
HEADER_ORIGINAL_SOAP_ACTION = "x-original-soapaction"
HEADER_PROXY_VERSION = "x-proxy-version"
HEADER_MESSAGE_TYPE = "x-road-message-type"
MESSAGE_TYPE_REST = "REST"

_KNOWN_PART_TYPES = frozenset(
    {OCSP_RESPONSE, *SOAP_MEDIA_TYPES, *REST_MEDIA_TYPES, REST_BODY, MULTIPART_MIXED, HASH_CHAIN_RESULT, HASH_CHAIN, SIGNATURE}
)
# Printable ASCII and blanks: what an HTTP header value may carry without smuggling a line break.
_HEADER_TEXT = re.compile(r"[\x20-\x7e\t]*")


class MessageKind(enum.Enum):
    """What the message part carries."""

    SOAP = "soap"
    REST = "rest"


@dataclass(frozen=True, slots=True)
class TransportLimits:
    """Bounds for decoding a transport message: the MIME limits, and how many OCSP responses and attachments."""

    mime: Limits = DEFAULT_LIMITS
    max_ocsp_responses: int = 16
    max_attachments: int = 100

    def __post_init__(self) -> None:
        for name in ("max_ocsp_responses", "max_attachments"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be a non-negative integer")


DEFAULT_TRANSPORT_LIMITS = TransportLimits()


def _header_value(content_type: str, what: str) -> HeaderValue:
    try:
        return parse_header_value(content_type)
    except BadRequest as err:
        raise InvalidContentType(f"Invalid content type of {what}", reason=f"{what}: {err.message}") from err


@functools.lru_cache(maxsize=64)
def _known_media_type(content_type: str) -> str | None:
    """The media type of a part's content type, or None when it does not parse (remembered: the parts of every
    transport message carry the same few content types, so each is parsed once, not several times a message)."""
    try:
        return parse_header_value(content_type).media_type
    except BadRequest:
        return None


def _media_type(content_type: str, what: str) -> str:
    media_type = _known_media_type(content_type)
    return media_type if media_type is not None else _header_value(content_type, what).media_type


@dataclass(frozen=True, slots=True)
class MessageContent:
    """What a transport message carries and its signature covers: the message part (SOAP or REST) with its content
    type and other MIME headers (those of the consumer's own SOAP part are preserved, pr-messtransp §3.1), and the
    SOAP attachments (sent as one nested ``multipart/mixed`` part) or the REST body (``None`` when there is none)."""

    message: bytes
    content_type: str
    headers: tuple[tuple[str, str], ...] = ()
    attachments: tuple[Part, ...] = ()
    rest_body: bytes | None = None
    kind: MessageKind = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "headers", tuple((n, v) for n, v in self.headers))
        object.__setattr__(self, "attachments", tuple(self.attachments))
        for name in ("message", "rest_body"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, bytes):
                raise BadRequest(f"transport part {name} must be bytes")
        if not all(isinstance(item, Part) for item in self.attachments):
            raise BadRequest("attachments must be MIME parts")
        media_type = _media_type(self.content_type, "the message part")
        if media_type not in SOAP_MEDIA_TYPES + REST_MEDIA_TYPES:
            raise InvalidContentType(f"Invalid content type for the message part: {media_type}")
        kind = MessageKind.REST if media_type in REST_MEDIA_TYPES else MessageKind.SOAP
        object.__setattr__(self, "kind", kind)
        for name, value in self.headers:
            Part(((name, value),))  # checks the header's name and value
            if name.lower() == "content-type":
                raise BadRequest("message headers must not repeat the content type")
        if kind is MessageKind.REST and self.attachments:
            raise InvalidMessage("A REST message has a body, not SOAP attachments")
        if kind is MessageKind.SOAP and self.rest_body is not None:
            raise InvalidMessage("A SOAP message has attachments, not a REST body")

    @property
    def signed_bodies(self) -> tuple[bytes, ...]:
        """The parts the signature covers after the message (``/attachment1`` ...): the attachments' bodies, or
        the REST body when there is one (XROAD-REFERENCE.md §4.2)."""
        if self.rest_body:
            return (self.rest_body,)
        return tuple(part.body for part in self.attachments)


@dataclass(frozen=True, slots=True)
class SignedMessage:
    """A signed transport message: a request, after the OCSP responses for the sender's authentication certificate,
    or a response (without them). ``signature`` carries the hash chain and its result when it is a hash-chain
    signature (attachments, a REST body, or a batch)."""

    content: MessageContent
    signature: SignatureData
    ocsp_responses: tuple[bytes, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "ocsp_responses", tuple(self.ocsp_responses))
        if not all(isinstance(item, bytes) for item in self.ocsp_responses):
            raise BadRequest("OCSP responses must be bytes")
        if not isinstance(self.signature.signature_xml, bytes):
            raise BadRequest("transport part signature must be bytes")


@dataclass(frozen=True, slots=True)
class FaultMessage:
    """A response in which a SOAP fault takes the signed message's place: the whole body when the provider's server
    failed before answering (``content`` is None, an early failure), else the last part after the message part
    (a late failure; pr-messtransp §3.1)."""

    fault: bytes
    content: MessageContent | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.fault, bytes):
            raise BadRequest("transport part fault must be bytes")

    @property
    def is_early_fault(self) -> bool:
        """Whether the whole body is the fault."""
        return self.content is None


TransportMessage = Union[SignedMessage, FaultMessage]
"""A transport message as sent or received: signed, or (a response only) a fault in its place."""


def _fixed_head(content_type: str) -> bytes:
    return encode_head((("Content-Type", content_type),), blank_line=False)


# The part headers of the transport message, as the bytes they are on the wire (pr-messtransp §3.1).
_OCSP_HEAD = _fixed_head(OCSP_RESPONSE)
_REST_BODY_HEAD = _fixed_head(REST_BODY)
_HASH_CHAIN_RESULT_HEAD = _fixed_head(HASH_CHAIN_RESULT)
_HASH_CHAIN_HEAD = _fixed_head(HASH_CHAIN)
_SIGNATURE_HEAD = _fixed_head(SIGNATURE)
_FAULT_HEAD = _fixed_head(FAULT_CONTENT_TYPE)


def _piece(head_lines: bytes, body: bytes) -> tuple[bytes, bytes]:
    """A part as ``(head, body)`` for :func:`build_encoded_multipart`: its header lines, and the blank line when a
    body follows (a part with an empty body ends after its header lines, as :func:`build_multipart` writes it)."""
    if not isinstance(body, bytes):
        raise BadRequest("MIME part body must be bytes")
    return (head_lines + CRLF if body else head_lines), body


def _multipart_mixed(boundary: str) -> str:
    return format_header_value(MULTIPART_MIXED, [("charset", "UTF-8"), ("boundary", boundary)])


def encode_transport(message: TransportMessage) -> tuple[str, bytes]:
    """Encode as ``(Content-Type, body)``: ``multipart/mixed`` in X-Road's part order, or a whole-body fault.
    The part headers are fixed bytes (the message part's are its own); the boundary is derived from the parts."""
    ocsp: tuple[bytes, ...] = ()
    last: list[tuple[bytes, bytes]] = []
    if isinstance(message, FaultMessage):
        if message.content is None:
            return FAULT_CONTENT_TYPE, message.fault
        content = message.content
        last.append(_piece(_FAULT_HEAD, message.fault))
    else:
        content, ocsp, signature = message.content, message.ocsp_responses, message.signature
        if signature.hash_chain_result is not None and signature.hash_chain is not None:
            last.append(_piece(_HASH_CHAIN_RESULT_HEAD, signature.hash_chain_result))
            last.append(_piece(_HASH_CHAIN_HEAD, signature.hash_chain))
        last.append(_piece(_SIGNATURE_HEAD, signature.signature_xml))
    parts = [_piece(_OCSP_HEAD, der) for der in ocsp]
    message_head = encode_head((("Content-Type", content.content_type), *content.headers), blank_line=False)
    parts.append(_piece(message_head, content.message))
    if content.attachments:
        boundary, nested = build_multipart(content.attachments)
        parts.append(_piece(_fixed_head(_multipart_mixed(boundary)), nested))
    if content.rest_body is not None:
        parts.append(_piece(_REST_BODY_HEAD, content.rest_body))
    boundary, body = build_encoded_multipart([*parts, *last])
    return _multipart_mixed(boundary), body


class _Stage(enum.IntEnum):
    """Where the decoder is in the part order; each part may only move it forward."""

    OCSP = 0  # OCSP responses, then the message
    CONTENT = 1  # after the message: attachments or REST body, hash chain result, signature or late fault
    CHAIN_RESULT = 2  # after the content: hash chain result, signature or late fault
    CHAIN = 3  # after the hash chain result: the hash chain, nothing else
    SIGNATURE = 4  # after the hash chain: the signature, nothing else
    END = 5


def _decode_attachments(part: Part, limits: TransportLimits) -> tuple[Part, ...]:
    """The SOAP attachments, carried as one nested ``multipart/mixed`` part (pr-messtransp §3.1)."""
    content_type = part.require_header("Content-Type")
    _, attachments = parse_multipart_message(content_type, part.body, (MULTIPART_MIXED,), limits.mime)
    if len(attachments) > limits.max_attachments:
        raise RequestTooLarge(f"Transport message has more than {limits.max_attachments} attachments")
    return attachments


def decode_request(content_type: str, body: bytes, *, limits: TransportLimits = DEFAULT_TRANSPORT_LIMITS) -> SignedMessage:
    """Decode a request strictly (see the module docstring): always signed; every failure is a BusError."""
    message = decode_transport(content_type, body, is_response=False, limits=limits)
    if isinstance(message, FaultMessage):  # the decoder reads a fault part in responses only
        raise InvalidMessage("A request cannot carry a fault")
    return message


def decode_transport(
    content_type: str, body: bytes, *, is_response: bool, limits: TransportLimits = DEFAULT_TRANSPORT_LIMITS
) -> TransportMessage:
    """Decode a transport message strictly (see the module docstring); every failure is a BusError. A request is
    always a :class:`SignedMessage` (:func:`decode_request` says so in its type); a response may be a
    :class:`FaultMessage`."""
    if not isinstance(body, bytes):
        raise BadRequest("transport body must be bytes")
    header = _header_value(content_type, "the transport message")  # its boundary is new in every message: parsed once
    media = header.media_type
    if media == TEXT_XML and is_response:
        # pr-messtransp §3.1: a text/xml response is a SOAP fault sent instead of the whole message.
        if not body:
            raise InvalidMessage("Empty fault from the provider's security server")
        if len(body) > limits.mime.max_body_bytes:
            raise RequestTooLarge(f"Transport body is larger than {limits.mime.max_body_bytes} bytes")
        return FaultMessage(body)
    if media != MULTIPART_MIXED:
        raise InvalidContentType(f"Invalid content type: {media}")
    parts = parse_multipart(body, boundary_of(header, (MULTIPART_MIXED,)), limits.mime)

    stage = _Stage.OCSP
    ocsp: list[bytes] = []
    message: Part | None = None
    message_media = ""
    attachments: tuple[Part, ...] = ()
    rest_body: bytes | None = None
    hashchain_result: bytes | None = None
    hashchain: bytes | None = None
    signature: bytes | None = None
    fault: bytes | None = None

    for index, part in enumerate(parts):
        where = f"part {index + 1}"
        header_value = part.header("Content-Type")
        if header_value is None:
            raise InvalidContentType(f"Transport message {where} has no content type")
        part_media = _media_type(header_value, where)
        if part_media not in _KNOWN_PART_TYPES:
            raise InvalidContentType(f"Invalid content type in transport message: {part_media}")
        if stage is _Stage.END:
            raise InvalidMessage(f"Extra content ({part_media}) after the last part", reason=where)
        if stage is _Stage.OCSP:
            if part_media == OCSP_RESPONSE:
                if is_response:
                    raise InvalidMessage("A response carries no OCSP responses", reason=where)
                if len(ocsp) >= limits.max_ocsp_responses:
                    raise RequestTooLarge(f"Transport message has more than {limits.max_ocsp_responses} OCSP responses")
                ocsp.append(part.body)
            elif part_media in SOAP_MEDIA_TYPES or part_media == (REST_RESPONSE if is_response else REST_REQUEST):
                message, message_media, stage = part, part_media, _Stage.CONTENT
            elif part_media in REST_MEDIA_TYPES:
                raise InvalidMessage(f"A {'response' if is_response else 'request'} cannot carry {part_media}")
            else:
                raise MissingSoap("Transport message does not have a message part", reason=f"{where} is {part_media}")
        elif part_media == MULTIPART_MIXED and stage is _Stage.CONTENT and message_media in SOAP_MEDIA_TYPES:
            attachments = _decode_attachments(part, limits)
            stage = _Stage.CHAIN_RESULT
        elif part_media == REST_BODY and stage is _Stage.CONTENT and message_media in REST_MEDIA_TYPES:
            rest_body, stage = part.body, _Stage.CHAIN_RESULT
        elif part_media == HASH_CHAIN_RESULT and stage in (_Stage.CONTENT, _Stage.CHAIN_RESULT):
            hashchain_result, stage = part.body, _Stage.CHAIN
        elif part_media == HASH_CHAIN and stage is _Stage.CHAIN:
            hashchain, stage = part.body, _Stage.SIGNATURE
        elif part_media == HASH_CHAIN and stage < _Stage.CHAIN:
            raise MalformedSignature("Hash chain without a hash chain result", reason=where)
        elif stage is _Stage.CHAIN:
            raise MalformedSignature("Hash chain result without a hash chain", reason=f"{where} is {part_media}")
        elif part_media == SIGNATURE:
            signature, stage = part.body, _Stage.END
        elif part_media == TEXT_XML and is_response and stage is not _Stage.SIGNATURE:
            # pr-messtransp §3.1: a fault sent late takes the signature's place as the last part.
            fault, stage = part.body, _Stage.END
        else:
            raise InvalidMessage(f"Unexpected {part_media} part in transport message", reason=where)

    if message is None:
        raise MissingSoap("Transport message does not have a message part")
    if stage is _Stage.CHAIN:
        raise MalformedSignature("Hash chain result without a hash chain")
    content = MessageContent(
        message.body,
        message.require_header("Content-Type"),
        tuple((n, v) for n, v in message.headers if n.lower() != "content-type"),
        attachments,
        rest_body,
    )
    if fault is not None:
        return FaultMessage(fault, content)
    if signature is None:
        raise MissingSignature("Transport message does not have a signature")
    return SignedMessage(content, SignatureData(signature, hashchain_result, hashchain), tuple(ocsp))


# --- HTTP headers of the exchange (pr-messtransp §3.2) -------------------------------------------------------


def _header_text(value: object, name: str) -> str:
    if not isinstance(value, str) or not _HEADER_TEXT.fullmatch(value):
        raise BadRequest(f"HTTP header {name} must be printable ASCII")
    return value


@dataclass(frozen=True, slots=True)
class TransportHeaders:
    """The HTTP headers one security server sends the other with a transport message (pr-messtransp §3.2).

    ``request_id`` is shared by a request and its response; ``hash_algorithm`` names the digest the peer uses
    for the parts (X-Road sends its Java name, ``SHA-512``); the original content type and SOAPAction travel
    end to end (pr-mess §2.2); ``proxy_version`` lets the provider refuse old clients; ``rest`` marks REST.
    """

    request_id: str | None
    hash_algorithm: DigestAlgorithm = digests.SHA512
    original_content_type: str | None = None
    original_soap_action: str | None = None
    proxy_version: str | None = None
    rest: bool = False

    def __post_init__(self) -> None:
        if self.request_id is not None:
            _header_text(self.request_id, HEADER_REQUEST_ID)
            if not self.request_id.strip():
                raise BadRequest(f"HTTP header {HEADER_REQUEST_ID} is empty")
        if not isinstance(self.hash_algorithm, DigestAlgorithm):
            raise BadRequest("hash_algorithm must be a digest algorithm")
        for name, value in (
            (HEADER_ORIGINAL_CONTENT_TYPE, self.original_content_type),
            (HEADER_ORIGINAL_SOAP_ACTION, self.original_soap_action),
            (HEADER_PROXY_VERSION, self.proxy_version),
        ):
            if value is not None:
                _header_text(value, name)

    def to_http(self) -> tuple[tuple[str, str], ...]:
        """The headers as ``(name, value)`` pairs, in X-Road's spelling."""
        out: list[tuple[str, str]] = []
        if self.request_id is not None:
            out.append((HEADER_REQUEST_ID, self.request_id))
        out.append((HEADER_HASH_ALGORITHM, self.hash_algorithm.name))
        if self.original_content_type is not None:
            out.append((HEADER_ORIGINAL_CONTENT_TYPE, self.original_content_type))
        if self.original_soap_action is not None:
            out.append((HEADER_ORIGINAL_SOAP_ACTION, self.original_soap_action))
        if self.proxy_version is not None:
            out.append((HEADER_PROXY_VERSION, self.proxy_version))
        if self.rest:
            out.append((HEADER_MESSAGE_TYPE, MESSAGE_TYPE_REST))
        return tuple(out)

    @classmethod
    def from_http(cls, headers: Mapping[str, str] | Iterable[tuple[str, str]], *, is_response: bool) -> TransportHeaders:
        """Read the headers (names case-insensitive); a repeated one, or a request without an id, is refused."""
        pairs = headers.items() if isinstance(headers, Mapping) else headers
        wanted = {
            HEADER_REQUEST_ID,
            HEADER_HASH_ALGORITHM,
            HEADER_ORIGINAL_CONTENT_TYPE,
            HEADER_ORIGINAL_SOAP_ACTION,
            HEADER_PROXY_VERSION,
            HEADER_MESSAGE_TYPE,
        }
        found: dict[str, str] = {}
        for name, value in pairs:
            key = name.lower()
            if key in wanted:
                if key in found:
                    raise BadRequest(f"HTTP header {key} appears more than once")
                found[key] = _header_text(value, key)
        request_id = found.get(HEADER_REQUEST_ID)
        if request_id is None and not is_response:
            raise BadRequest(f"Request has no {HEADER_REQUEST_ID} header")
        algorithm_name = found.get(HEADER_HASH_ALGORITHM)
        if algorithm_name is None:
            raise BadRequest(f"Message has no {HEADER_HASH_ALGORITHM} header")
        algorithm = digests.lookup_name(algorithm_name)
        if algorithm is None:
            raise BadRequest(f"Unsupported hash algorithm {algorithm_name!r}")
        message_type = found.get(HEADER_MESSAGE_TYPE)
        if message_type is not None and message_type != MESSAGE_TYPE_REST:
            raise BadRequest(f"Unknown {HEADER_MESSAGE_TYPE} {message_type!r}")
        return cls(
            request_id=request_id,
            hash_algorithm=algorithm,
            original_content_type=found.get(HEADER_ORIGINAL_CONTENT_TYPE),
            original_soap_action=found.get(HEADER_ORIGINAL_SOAP_ACTION),
            proxy_version=found.get(HEADER_PROXY_VERSION),
            rest=message_type == MESSAGE_TYPE_REST,
        )
