"""The fields of a console request: the query string of a GET, the url-encoded or multipart body of a POST.

The management site never lets Twisted parse a body into ``request.args`` (proxy/bounded_request.py keeps the
body as bytes, bounded by the site's limit), so the console reads the forms it sends itself, here.
"""

from __future__ import annotations

from email import policy
from email.parser import BytesParser
from typing import Any
from urllib.parse import parse_qs

Fields = dict[str, list[bytes]]


def _urlencoded(data: bytes) -> Fields:
    found: Fields = {}
    for key, values in parse_qs(data, keep_blank_values=True).items():
        found.setdefault(key.decode("utf-8", "replace"), []).extend(values)
    return found


def _multipart(content_type: str, body: bytes) -> Fields:
    """The parts of a ``multipart/form-data`` body by their ``name`` (files as their bytes)."""
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode("latin-1")
    message = BytesParser(policy=policy.HTTP).parsebytes(head + body)
    found: Fields = {}
    if not message.is_multipart():
        return found
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            continue
        payload = part.get_payload(decode=True)
        found.setdefault(name, []).append(payload if isinstance(payload, bytes) else b"")
    return found


def request_fields(request: Any) -> Fields:
    """The query string's fields, plus the body's for a form POST."""
    uri: bytes = request.uri or b""
    fields = _urlencoded(uri.split(b"?", 1)[1]) if b"?" in uri else {}
    if (request.method or b"") != b"POST":
        return fields
    content = request.content
    body = content.getvalue() if content is not None and hasattr(content, "getvalue") else b""
    content_type = (request.getHeader(b"Content-Type") or b"").decode("latin-1")
    kind = content_type.split(";")[0].strip().lower()
    extra = _urlencoded(body) if kind == "application/x-www-form-urlencoded" else (
        _multipart(content_type, body) if kind == "multipart/form-data" else {})
    for key, values in extra.items():
        fields.setdefault(key, []).extend(values)
    return fields


def text_field(fields: Fields, name: str) -> str:
    """The last value of ``name`` as text ('' when absent)."""
    values = fields.get(name)
    return values[-1].decode("utf-8", "replace") if values else ""
