"""The multipart and transport builders as they were before the issue 18 templates: references for the property
tests that check the pre-encoded builder (``multipart.build_encoded_multipart``) and the fixed part headers of
``transport.encode_transport`` write the same bytes."""

from __future__ import annotations

import hashlib
from typing import Sequence

from security_server.core.errors import BadRequest
from security_server.core.multipart import CRLF, Part, check_boundary, format_header_value
from security_server.core.transport import (
    FAULT_CONTENT_TYPE,
    HASH_CHAIN,
    HASH_CHAIN_RESULT,
    MULTIPART_MIXED,
    OCSP_RESPONSE,
    REST_BODY,
    SIGNATURE,
    FaultMessage,
    TransportMessage,
)


def _encode_part(part: Part) -> bytes:
    head = b"".join(f"{name}: {value}".encode("utf-8") + CRLF for name, value in part.headers)
    if not part.body:
        return head
    return head + CRLF + part.body


def _derive_boundary(encoded: Sequence[bytes], attempt: int) -> str:
    digest = hashlib.sha256()
    digest.update(attempt.to_bytes(4, "big"))
    for item in encoded:
        digest.update(len(item).to_bytes(8, "big"))
        digest.update(item)
    return "fedbus-" + digest.hexdigest()[:40]


def _boundary_collides(encoded: Sequence[bytes], boundary: str) -> bool:
    dash = b"--" + boundary.encode("ascii")
    return any(dash in item for item in encoded)


def build_multipart(parts: Sequence[Part], boundary: str | None = None) -> tuple[str, bytes]:
    """The multipart builder over :class:`Part` values, each part encoded and joined in one go."""
    if not parts:
        raise BadRequest("a multipart body needs at least one part")
    encoded = [_encode_part(part) for part in parts]
    if boundary is None:
        attempt = 0
        boundary = _derive_boundary(encoded, attempt)
        while _boundary_collides(encoded, boundary):
            attempt += 1
            boundary = _derive_boundary(encoded, attempt)
    else:
        check_boundary(boundary)
        if _boundary_collides(encoded, boundary):
            raise BadRequest("multipart boundary occurs inside a part")
    dash = b"--" + boundary.encode("ascii")
    out = bytearray()
    for item in encoded:
        out += dash + CRLF + item + CRLF
    out += dash + b"--" + CRLF
    return boundary, bytes(out)


def encode_transport(message: TransportMessage) -> tuple[str, bytes]:
    """The transport encoder building a :class:`Part` for every part, headers included."""
    ocsp: tuple[bytes, ...] = ()
    last: list[Part] = []
    if isinstance(message, FaultMessage):
        if message.content is None:
            return FAULT_CONTENT_TYPE, message.fault
        content = message.content
        last.append(Part((("Content-Type", FAULT_CONTENT_TYPE),), message.fault))
    else:
        content, ocsp, signature = message.content, message.ocsp_responses, message.signature
        if signature.hash_chain_result is not None and signature.hash_chain is not None:
            last.append(Part((("Content-Type", HASH_CHAIN_RESULT),), signature.hash_chain_result))
            last.append(Part((("Content-Type", HASH_CHAIN),), signature.hash_chain))
        last.append(Part((("Content-Type", SIGNATURE),), signature.signature_xml))
    parts = [Part((("Content-Type", OCSP_RESPONSE),), der) for der in ocsp]
    parts.append(Part((("Content-Type", content.content_type), *content.headers), content.message))
    if content.attachments:
        boundary, nested = build_multipart(content.attachments)
        nested_type = format_header_value(MULTIPART_MIXED, [("charset", "UTF-8"), ("boundary", boundary)])
        parts.append(Part((("Content-Type", nested_type),), nested))
    if content.rest_body is not None:
        parts.append(Part((("Content-Type", REST_BODY),), content.rest_body))
    boundary, body = build_multipart([*parts, *last])
    return format_header_value(MULTIPART_MIXED, [("charset", "UTF-8"), ("boundary", boundary)]), body
