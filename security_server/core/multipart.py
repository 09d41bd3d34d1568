"""Strict, binary-safe MIME multipart bodies (RFC 2046 §5.1): parse, build, and read header parameters.

Used for the signed directory of the configuration download protocol (pr-gconf §2.3, §2.4), for the
``multipart/mixed`` messages between security servers (pr-messtransp §3) and for SOAP messages with attachments
(core/soapattachments.py). The parser works on bytes only, never decodes a body, and refuses rather than guesses:

* every delimiter is a line end and ``--boundary`` (the first may open the body); a delimiter line followed by
  anything but optional blanks and a line end, or by ``--``, is refused; a body without its close delimiter is
  truncated and refused;
* part headers are ``Name: value`` lines (folded lines are unfolded, RFC 5322 §2.2.3); bare CR, control
  characters and names outside RFC 5322's field-name characters are refused;
* the number of parts, the size of each part and of each header block are limited (:class:`Limits`).

A line end is CRLF, as RFC 2046 prescribes, or a bare LF: X-Road's own test requests
(``src/service/proxy/proxy-core/src/test/queries/*.query``) end their lines with LF and X-Road's MIME parser reads
them, so a lenient reader must too. Each line may end either way (mixed bodies are read line by line). The line
end before a delimiter belongs to the delimiter (RFC 2046 §5.1.1): CRLF, or the single LF, is never part of a
body. What we build always uses CRLF.

A preamble before the first delimiter and an epilogue after the close delimiter are ignored, as RFC 2046
requires. Every failure is a :class:`BadRequest`, or :class:`RequestTooLarge` for a limit; callers that
receive the body from a particular source re-raise them as their own error (``raise X(...) from err``).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Sequence

from security_server.core.errors import BadRequest, InvalidContentType, RequestTooLarge

CRLF = b"\r\n"
LF = b"\n"
CR = b"\r"

# RFC 2046 §5.1.1: boundary := 0*69<bchars> bcharsnospace; bchars include space (not at the end).
_BOUNDARY = re.compile(r"[0-9A-Za-z'()+_,\-./:=? ]{0,69}[0-9A-Za-z'()+_,\-./:=?]")
# RFC 5322 §3.6.8: field-name is printable US-ASCII except colon.
_FIELD_NAME = re.compile(rb"[!-9;-~]+")
# RFC 2045 §5.1: token characters (printable US-ASCII except space and tspecials).
_TOKEN = re.compile(r"[!#$%&'*+\-.0-9A-Z^_`a-z{|}~]+")
_BLANKS = b" \t"


@dataclass(frozen=True, slots=True)
class Limits:
    """Upper bounds applied while parsing a multipart body."""

    max_body_bytes: int = 64 * 1024 * 1024
    max_parts: int = 100
    max_part_bytes: int = 32 * 1024 * 1024
    max_header_bytes: int = 16 * 1024
    max_headers_per_part: int = 50

    def __post_init__(self) -> None:
        for name in ("max_body_bytes", "max_parts", "max_part_bytes", "max_header_bytes", "max_headers_per_part"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer")


DEFAULT_LIMITS = Limits()


_CONTROL = re.compile("[\x00-\x08\x0a-\x1f\x7f]")
"""Control characters other than HT, which a header value may not hold."""


def _check_header(name: str, value: str) -> None:
    if not isinstance(name, str) or not _FIELD_NAME.fullmatch(name.encode("utf-8", "replace")):
        raise BadRequest(f"invalid MIME header name {name!r}")
    if not isinstance(value, str):
        raise BadRequest(f"MIME header {name} has a value that is not text")
    if _CONTROL.search(value):
        raise BadRequest(f"MIME header {name} has control characters")
    if value != value.strip(" \t"):
        raise BadRequest(f"MIME header {name} has leading or trailing blanks")


@dataclass(frozen=True, slots=True)
class Part:
    """One body part: its header fields in order (names as written) and its raw body bytes."""

    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""

    def __post_init__(self) -> None:
        object.__setattr__(self, "headers", tuple((n, v) for n, v in self.headers))
        for name, value in self.headers:
            _check_header(name, value)
        if not isinstance(self.body, bytes):
            raise BadRequest("MIME part body must be bytes")

    def header(self, name: str) -> str | None:
        """The value of header ``name`` (case-insensitive), ``None`` if absent; refused if it is repeated."""
        wanted = name.lower()
        values = [v for n, v in self.headers if n.lower() == wanted]
        if len(values) > 1:
            raise BadRequest(f"MIME header {name} appears more than once")
        return values[0] if values else None

    def require_header(self, name: str) -> str:
        """The value of header ``name``; :class:`BadRequest` when it is absent or repeated."""
        value = self.header(name)
        if value is None:
            raise BadRequest(f"MIME part has no {name} header")
        return value


@dataclass(frozen=True, slots=True)
class HeaderValue:
    """A structured header value: ``value; name=param; ...`` (RFC 2045 §5.1), parameter names lower-cased."""

    value: str
    params: tuple[tuple[str, str], ...] = field(default=())

    def param(self, name: str) -> str | None:
        """The parameter ``name`` (case-insensitive), or ``None``."""
        wanted = name.lower()
        for key, value in self.params:
            if key == wanted:
                return value
        return None

    @property
    def media_type(self) -> str:
        """The value lower-cased, as media types compare (RFC 2045 §5.1)."""
        return self.value.lower()

    def __str__(self) -> str:
        return format_header_value(self.value, self.params)


def parse_header_value(text: str) -> HeaderValue:
    """Parse ``value; a=token; b="quoted"`` into a :class:`HeaderValue`, or raise :class:`BadRequest`.

    Besides RFC 2045's tokens and quoted strings, a parameter may be in single quotes: X-Road's generator
    writes ``Content-identifier: SHARED-PARAMETERS; instance='EE'`` (DirectoryContentBuilder.java).

    The forms fedbus itself writes (the transport message's ``multipart/mixed`` type with a boundary that
    :func:`build_multipart` derived, the content types of its parts) are recognised by an exact match of their
    text and answered without parsing, with the value the full parser gives for them; anything else is parsed
    in full.
    """
    known = _OWN_FORMS.get(text) if isinstance(text, str) else None
    if known is not None:
        return known
    if (
        isinstance(text, str)
        and len(text) == _OWN_BOUNDARY_LENGTH
        and text.startswith(_OWN_BOUNDARY_PREFIX)
        and text[-1] == '"'
        and _DERIVED_HEX.fullmatch(text, len(_OWN_BOUNDARY_PREFIX), len(text) - 1)
    ):
        template = _OWN_BOUNDARY_TEMPLATE
        return HeaderValue(template.value, (template.params[0], ("boundary", text[_OWN_BOUNDARY_START:-1])))
    return _parse_header_value(text)


def _parse_header_value(text: str) -> HeaderValue:
    """The full parser behind :func:`parse_header_value`."""
    if not isinstance(text, str):
        raise BadRequest("header value must be text")
    pos = text.find(";")
    main = (text if pos < 0 else text[:pos]).strip(" \t")
    if not main:
        raise BadRequest("header value is empty")
    params: list[tuple[str, str]] = []
    seen: set[str] = set()
    i = len(text) if pos < 0 else pos
    n = len(text)
    while i < n:
        # at a ';'
        i += 1
        while i < n and text[i] in " \t":
            i += 1
        if i >= n:
            break  # a trailing ';' carries nothing
        if text[i] == ";":
            continue
        eq = text.find("=", i)
        if eq < 0:
            raise BadRequest("header parameter without '='")
        name = text[i:eq].strip(" \t").lower()
        if not _TOKEN.fullmatch(name):
            raise BadRequest("header parameter has an invalid name")
        if name in seen:
            raise BadRequest(f"header parameter {name} appears more than once")
        seen.add(name)
        i = eq + 1
        while i < n and text[i] in " \t":
            i += 1
        if i < n and text[i] == '"':
            chars: list[str] = []
            i += 1
            while True:
                if i >= n:
                    raise BadRequest("header parameter has an unterminated quoted string")
                c = text[i]
                if c == "\\":
                    if i + 1 >= n:
                        raise BadRequest("header parameter has an unterminated quoted string")
                    chars.append(text[i + 1])
                    i += 2
                    continue
                if c == '"':
                    i += 1
                    break
                chars.append(c)
                i += 1
            value = "".join(chars)
        elif i < n and text[i] == "'":
            end = text.find("'", i + 1)
            if end < 0:
                raise BadRequest("header parameter has an unterminated quoted string")
            value = text[i + 1 : end]
            i = end + 1
        else:
            end = text.find(";", i)
            end = n if end < 0 else end
            value = text[i:end].strip(" \t")
            if not _TOKEN.fullmatch(value):
                raise BadRequest(f"header parameter {name} has an invalid value")
            i = end
        while i < n and text[i] in " \t":
            i += 1
        if i < n and text[i] != ";":
            raise BadRequest(f"header parameter {name} is followed by stray text")
        params.append((name, value))
    return HeaderValue(main, tuple(params))


def format_header_value(value: str, params: Sequence[tuple[str, str]] = ()) -> str:
    """Format a structured header value; parameter values are always written as quoted strings."""
    out = [value]
    for name, param in params:
        escaped = param.replace("\\", "\\\\").replace('"', '\\"')
        out.append(f'{name}="{escaped}"')
    return "; ".join(out)


_DERIVED_HEX = re.compile("[0-9a-f]{40}")
"""What follows ``fedbus-`` in a boundary :func:`build_multipart` derives."""

_OWN_BOUNDARY_PREFIX = 'multipart/mixed; charset="UTF-8"; boundary="fedbus-'
"""The transport message's content type (and its attachments part's) up to the boundary's hex digits."""
_OWN_BOUNDARY_LENGTH = len(_OWN_BOUNDARY_PREFIX) + 40 + 1
_OWN_BOUNDARY_START = len(_OWN_BOUNDARY_PREFIX) - len("fedbus-")
_OWN_BOUNDARY_TEMPLATE = _parse_header_value(_OWN_BOUNDARY_PREFIX + "0" * 40 + '"')
"""Its parsed value for one boundary; the fast path of :func:`parse_header_value` puts in the actual one."""

_OWN_FORMS: dict[str, HeaderValue] = {
    text: _parse_header_value(text)
    for text in (
        "text/xml; charset=UTF-8",
        "text/xml;charset=utf-8",
        "text/xml",
        "application/ocsp-response",
        "application/x-road-rest-request",
        "application/x-road-rest-response",
        "application/x-road-rest-body",
        "application/hash-chain-result",
        "application/hash-chain",
        "signature/bdoc-1.0/ts",
    )
}
"""Content types fedbus writes as constants, with their parsed values (a :class:`HeaderValue` is frozen)."""


def check_boundary(boundary: str) -> str:
    """Return ``boundary`` if RFC 2046 §5.1.1 allows it, else raise :class:`InvalidContentType`."""
    if not isinstance(boundary, str) or not _BOUNDARY.fullmatch(boundary):
        raise InvalidContentType("multipart boundary is missing or not allowed by RFC 2046")
    return boundary


def boundary_of(content_type: HeaderValue, media_types: Sequence[str]) -> str:
    """The boundary of a ``multipart/*`` content type whose media type is one of ``media_types``."""
    if content_type.media_type not in media_types:
        raise InvalidContentType(f"content type {content_type.media_type} is not {' or '.join(media_types)}")
    boundary = content_type.param("boundary")
    if boundary is None:
        raise InvalidContentType(f"content type {content_type.media_type} has no boundary")
    return check_boundary(boundary)


def _parse_headers(lines: Sequence[bytes], limits: Limits) -> tuple[tuple[str, str], ...]:
    # ``lines`` are the header lines without their line ends; the size counts each line end as CRLF, as before.
    if sum(len(line) for line in lines) + 2 * max(len(lines) - 1, 0) > limits.max_header_bytes:
        raise RequestTooLarge(f"MIME part headers are longer than {limits.max_header_bytes} bytes")
    fields: list[list[bytes]] = []
    for line in lines:
        if CR in line:
            raise BadRequest("MIME part headers contain a bare CR")
        if line[:1] in (b" ", b"\t"):
            if not fields:
                raise BadRequest("MIME part headers start with a continuation line")
            fields[-1][1] += line  # unfolding removes only the line end (RFC 5322 §2.2.3)
            continue
        colon = line.find(b":")
        if colon <= 0:
            raise BadRequest("MIME part header line is not 'Name: value'")
        name = line[:colon]
        if not _FIELD_NAME.fullmatch(name):
            raise BadRequest("MIME part header has an invalid name")
        fields.append([name, line[colon + 1 :]])
        if len(fields) > limits.max_headers_per_part:
            raise RequestTooLarge(f"MIME part has more than {limits.max_headers_per_part} headers")
    headers: list[tuple[str, str]] = []
    for raw_name, raw_value in fields:
        try:
            text = raw_value.decode("utf-8").strip(" \t")
        except UnicodeDecodeError as err:
            raise BadRequest("MIME part header value is not UTF-8") from err
        field_name = raw_name.decode("ascii")
        _check_header(field_name, text)
        headers.append((field_name, text))
    return tuple(headers)


def _parse_part(content: bytes, limits: Limits) -> Part:
    # A part is header lines, a blank line and the body; each line ends in CRLF or LF. The line end before the
    # next delimiter belongs to the delimiter (RFC 2046 §5.1.1), so a header-only part (X-Road's generator writes
    # them, MultipartMessage.java) ends right after its last header line's line end, with no blank line.
    lines: list[bytes] = []
    pos = 0
    while True:
        newline = content.find(LF, pos)
        if newline < 0:
            if pos == len(content):
                return Part(_parse_headers(lines, limits), b"")
            raise BadRequest("MIME part has neither headers nor a blank line before its body")
        line = content[pos:newline]
        if line.endswith(CR):
            line = line[:-1]
        if not line:
            return Part(_parse_headers(lines, limits), content[newline + 1 :])
        if pos + len(line) > limits.max_header_bytes:
            raise RequestTooLarge(f"MIME part headers are longer than {limits.max_header_bytes} bytes")
        lines.append(line)
        pos = newline + 1


def _line_end(body: bytes, pos: int) -> int:
    """The length of the line end (CRLF 2, LF 1) at ``pos``, 0 if there is none."""
    if body[pos : pos + 2] == CRLF:
        return 2
    if body[pos : pos + 1] == LF:
        return 1
    return 0


def _next_delimiter(body: bytes, dash: bytes, start: int) -> tuple[int, int]:
    """Where the next delimiter after ``start`` begins (its line end) and where its ``--boundary`` begins."""
    found = body.find(LF + dash, start)
    if found < 0:
        return -1, -1
    begin = found - 1 if found > start and body[found - 1 : found] == CR else found
    return begin, found + 1


def parse_multipart(body: bytes, boundary: str, limits: Limits = DEFAULT_LIMITS) -> tuple[Part, ...]:
    """Split a multipart ``body`` on ``boundary`` into its parts; strict, see the module docstring."""
    if not isinstance(body, bytes):
        raise BadRequest("multipart body must be bytes")
    if len(body) > limits.max_body_bytes:
        raise RequestTooLarge(f"multipart body is larger than {limits.max_body_bytes} bytes")
    dash = b"--" + check_boundary(boundary).encode("ascii")
    if body.startswith(dash):
        pos = 0
    else:
        _, pos = _next_delimiter(body, dash, 0)
        if pos < 0:
            raise BadRequest("multipart body has no opening boundary")
    parts: list[Part] = []
    while True:
        after = pos + len(dash)
        if body[after : after + 2] == b"--":
            break  # close delimiter; what follows is the epilogue, ignored (RFC 2046 §5.1.1)
        line_end = after
        while body[line_end : line_end + 1] in (b" ", b"\t"):
            line_end += 1
        ending = _line_end(body, line_end)
        if not ending:
            if line_end >= len(body) - 1:
                raise BadRequest("multipart body is truncated after a boundary")
            raise BadRequest("multipart boundary line has stray characters")
        start = line_end + ending
        end, pos = _next_delimiter(body, dash, start)
        if end < 0:
            raise BadRequest("multipart body is truncated: no closing boundary")
        if end - start > limits.max_part_bytes:
            raise RequestTooLarge(f"multipart part is larger than {limits.max_part_bytes} bytes")
        if len(parts) >= limits.max_parts:
            raise RequestTooLarge(f"multipart body has more than {limits.max_parts} parts")
        parts.append(_parse_part(body[start:end], limits))
    if not parts:
        raise BadRequest("multipart body has no parts")
    return tuple(parts)


def parse_multipart_message(
    content_type: str, body: bytes, media_types: Sequence[str], limits: Limits = DEFAULT_LIMITS
) -> tuple[HeaderValue, tuple[Part, ...]]:
    """Parse a ``Content-Type`` value and the body it describes; the media type must be in ``media_types``."""
    header = parse_header_value(content_type)
    return header, parse_multipart(body, boundary_of(header, media_types), limits)


def encode_head(headers: Sequence[tuple[str, str]], *, blank_line: bool = True) -> bytes:
    """A part's header block as bytes: ``Name: value`` lines, each ending in CRLF, then the blank line (CRLF) that
    opens the body unless ``blank_line`` is false. Each header is checked as :class:`Part` checks it."""
    for name, value in headers:
        _check_header(name, value)
    head = b"".join(f"{name}: {value}".encode("utf-8") + CRLF for name, value in headers)
    return head + CRLF if blank_line else head


def _derive_boundary(encoded: Sequence[tuple[bytes, bytes]], attempt: int) -> str:
    # The digest runs over each part's encoded bytes (head + body) and their length, as one string per part.
    digest = hashlib.sha256()
    digest.update(attempt.to_bytes(4, "big"))
    for head, body in encoded:
        digest.update((len(head) + len(body)).to_bytes(8, "big"))
        digest.update(head)
        digest.update(body)
    return "fedbus-" + digest.hexdigest()[:40]


def _boundary_collides(encoded: Sequence[tuple[bytes, bytes]], boundary: str) -> bool:
    # A head ends in a line end (or is empty) and a boundary holds no CR or LF, so ``--boundary`` can only occur in
    # ``head + body`` within the head or within the body: the two need no joining to be searched.
    dash = b"--" + boundary.encode("ascii")
    return any(dash in head or dash in body for head, body in encoded)


def build_encoded_multipart(parts: Sequence[tuple[bytes, bytes]], boundary: str | None = None) -> tuple[str, bytes]:
    """Encode pre-encoded parts as a multipart body; returns ``(boundary, body)``.

    Each part is ``(head, body)`` and is written as ``head + body``: ``head`` is its header block as fixed bytes,
    header lines each ending in CRLF and, when a body follows, the blank line (:func:`encode_head` builds one; a
    caller may keep them as constants). Delimiters and the close delimiter are CRLF-ended as RFC 2046 §5.1.1
    writes them. Without a ``boundary`` one is derived from the parts' bytes, so the same parts always give the
    same bytes; a boundary that occurs in any part is refused, as is an empty list of parts.
    """
    if not parts:
        raise BadRequest("a multipart body needs at least one part")
    for head, body in parts:
        if not isinstance(head, bytes) or not isinstance(body, bytes):
            raise BadRequest("MIME part head and body must be bytes")
        if head and not head.endswith(CRLF):
            raise BadRequest("MIME part head must end with a line end")
    if boundary is None:
        attempt = 0
        boundary = _derive_boundary(parts, attempt)
        while _boundary_collides(parts, boundary):
            attempt += 1
            boundary = _derive_boundary(parts, attempt)
    else:
        check_boundary(boundary)
        if _boundary_collides(parts, boundary):
            raise BadRequest("multipart boundary occurs inside a part")
    dash = b"--" + boundary.encode("ascii")
    opening = dash + CRLF
    between = CRLF + opening
    pieces: list[bytes] = []
    for head, body in parts:
        pieces += (between if pieces else opening, head, body)
    pieces.append(CRLF + dash + b"--" + CRLF)
    return boundary, b"".join(pieces)


def _encoded(part: Part) -> tuple[bytes, bytes]:
    # Header-only parts end after their last header line, as X-Road's generator writes them
    # (MultipartMessage.java); a part with neither headers nor body is empty.
    head = b"".join(f"{name}: {value}".encode("utf-8") + CRLF for name, value in part.headers)
    return (head + CRLF if part.body else head), part.body


def build_multipart(parts: Sequence[Part], boundary: str | None = None) -> tuple[str, bytes]:
    """Encode ``parts`` as a multipart body; returns ``(boundary, body)``.

    Without a ``boundary`` one is derived from the content, so the same parts always give the same bytes.
    A boundary that occurs in any part is refused (RFC 2046 §5.1.1), as is an empty list of parts. A part with
    an empty body ends after its header lines (no blank line); :func:`build_encoded_multipart` writes any form.
    """
    return build_encoded_multipart([_encoded(part) for part in parts], boundary)
