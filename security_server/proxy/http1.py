"""The HTTP/1.1 pieces shared by fedbus's lean clients: the field grammar and an incremental response parser.

Two clients speak HTTP/1.1 themselves instead of going through ``twisted.web.client.Agent`` (PERFORMANCE-NOTES
B.6: the Agent costs about 2.5x as much per request): :class:`~security_server.proxy.mtls.MtlsPeerLink` between
security servers, and :class:`~security_server.proxy.provider_client.LeanProviderClient` towards the providers'
SOAP services. Both write one request at a time on a connection and read its answer with :class:`ResponseParser`.

What is here, by RFC 9112 section:

* :data:`TOKEN` and :data:`FIELD_VALUE`: field names and values (§5, RFC 9110 §5.1 and §5.5), for checking the
  headers a client is about to send as well as those it receives;
* :data:`STATUS_LINE`: the status line (§4) of HTTP/1.0 and HTTP/1.1;
* :class:`ResponseParser`: a response read incrementally (§2.1 message format, §4 status line, §5 header fields
  with obsolete line folding (§5.2) refused, §6.3 body length, §7.1 chunked coding with its trailer section
  (§7.1.2) read and dropped, a close-delimited body (§6.3 item 8), interim 1xx responses skipped (RFC 9110
  §15.2) and persistence (§9.3: ``Connection: close``, HTTP/1.0 keep-alive)). Framing it cannot be sure of is
  refused rather than guessed (both ``Transfer-Encoding`` and ``Content-Length``, §6.3 item 3; an unknown
  transfer coding; a bad ``Content-Length``), and the head, the number of header lines, the trailer section and
  the body are all bounded;
* :class:`RawResponse`: what the parser delivers;
* :data:`HOP_BY_HOP`: the headers that belong to one connection and are never forwarded;
* :func:`encode_post`: the request both clients write (Content-Length framing, every field checked).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Iterable

from security_server.core.errors import IoError, Origin, RequestTooLarge

HOP_BY_HOP = frozenset(
    ("connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-connection", "host",
     "content-length")
)
"""Headers that describe one hop (RFC 9110 §7.6.1) or its framing (RFC 9112 §6): a client writes its own and never
copies these from the caller's mapping, and a server never hands them on."""

MAX_RESPONSE_HEAD_BYTES = 64 * 1024
"""The longest status line plus header section (and, separately, trailer section) a response may have."""

MAX_RESPONSE_HEADERS = 100
"""The most header lines a response may have."""

TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
"""A field name (RFC 9110 §5.1, ``token``)."""

FIELD_VALUE = re.compile(rb"[\t\x20-\x7e\x80-\xff]*")
"""A field value (RFC 9110 §5.5): visible characters, space, tab and obs-text; never CR, LF or NUL."""


class FieldError(ValueError):
    """A request header that cannot be sent as it is: not Latin-1, or not a valid field name or value."""

    def __init__(self, name: str, problem: str, reason: str) -> None:
        super().__init__(f"header {name[:40]!r} {problem}")
        self.name = name
        self.problem = problem
        self.reason = reason
        """The detail for our log: the encoding error, or the start of the offending line."""


def encode_post(target: bytes, fields: Iterable[tuple[str, str]], body: bytes) -> bytes:
    """A POST request (RFC 9112 §3: request line, header fields, empty line, body; §6.2: the caller gives
    ``Content-Length``, never chunked) for the origin-form ``target``, its ``fields`` in the given order, each one
    checked (RFC 9110 §5.1, §5.5); :class:`FieldError` for one that cannot be sent."""
    lines = [b"POST " + target + b" HTTP/1.1"]
    for name, value in fields:
        try:
            line = f"{name}: {value}".encode("latin-1")
        except UnicodeEncodeError as err:
            raise FieldError(name, "is not Latin-1", str(err)) from err
        raw_name, _, raw_value = line.partition(b": ")
        if not TOKEN.fullmatch(raw_name) or not FIELD_VALUE.fullmatch(raw_value):
            raise FieldError(name, "has a bad name or value", repr(line[:80]))
        lines.append(line)
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


STATUS_LINE = re.compile(rb"HTTP/1\.([01]) ([0-9]{3})(?: [\t\x20-\x7e\x80-\xff]*)?")
"""The status line (RFC 9112 §4): the minor version and the status code are groups 1 and 2."""

_CHUNK_SIZE = re.compile(rb"[0-9A-Fa-f]+")
_CONTENT_LENGTH = re.compile(r"[0-9]{1,15}")


@dataclass(frozen=True, slots=True)
class RawResponse:
    """A complete response: status, headers (names lower-cased, repeated fields joined with ", "), body and
    whether the connection may carry another request."""

    status: int
    headers: dict[str, str]
    body: bytes
    keep_alive: bool


@dataclass
class ResponseParser:
    """Incremental HTTP/1.1 response parser (RFC 9112 §4-§7): Content-Length, chunked or close-delimited.

    ``who`` names the other end in error messages ("peer", "service") and ``origin`` is the fault-code origin
    of the errors: :class:`~security_server.core.errors.IoError` for a malformed or cut-short response,
    :class:`~security_server.core.errors.RequestTooLarge` for a body over ``max_body``.
    """

    max_body: int
    origin: Origin = Origin.CLIENT_PROXY
    who: str = "peer"
    buffer: bytearray = field(default_factory=bytearray)
    state: str = "head"
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    body: bytearray = field(default_factory=bytearray)
    remaining: int = 0
    keep_alive: bool = True
    trailer_bytes: int = 0

    def feed(self, data: bytes) -> RawResponse | None:
        """Take bytes; return the response once it is complete."""
        self.buffer += data
        return self._advance()

    def finish_on_close(self) -> RawResponse:
        """The other end closed the connection: complete a close-delimited body, else the response was cut short."""
        if self.state == "close":
            self.body += self.buffer
            self._check_size()
            return self._done()
        raise IoError(
            f"{self.who} closed the connection before its response was complete",
            reason=f"response cut short in state {self.state}",
            origin=self.origin,
        )

    def _malformed(self, reason: str) -> IoError:
        return IoError(f"{self.who} sent a malformed HTTP response", reason=reason, origin=self.origin)

    def _too_large(self) -> RequestTooLarge:
        return RequestTooLarge(f"{self.who} response is larger than {self.max_body} bytes", origin=self.origin)

    def _check_size(self) -> None:
        if len(self.body) > self.max_body:
            raise self._too_large()

    def _done(self) -> RawResponse:
        if self.buffer:
            self.keep_alive = False  # bytes after the response: the stream is not in a state we can trust
        return RawResponse(self.status, self.headers, bytes(self.body), self.keep_alive)

    def _advance(self) -> RawResponse | None:
        while True:
            if self.state == "head":
                end = self.buffer.find(b"\r\n\r\n")
                if end < 0:
                    if len(self.buffer) > MAX_RESPONSE_HEAD_BYTES:
                        raise self._malformed(f"response head longer than {MAX_RESPONSE_HEAD_BYTES} bytes")
                    return None
                if end > MAX_RESPONSE_HEAD_BYTES:
                    raise self._malformed(f"response head longer than {MAX_RESPONSE_HEAD_BYTES} bytes")
                head = bytes(self.buffer[:end])
                del self.buffer[: end + 4]
                if self._parse_head(head):
                    return self._done()
            elif self.state == "length":
                if len(self.buffer) < self.remaining:
                    return None
                self.body += self.buffer[: self.remaining]
                del self.buffer[: self.remaining]
                return self._done()
            elif self.state == "chunk-size":
                end = self.buffer.find(b"\r\n")
                if end < 0:
                    if len(self.buffer) > 1024:
                        raise self._malformed("chunk size line too long")
                    return None
                size_text = bytes(self.buffer[:end]).split(b";", 1)[0].strip(b" \t")
                del self.buffer[: end + 2]
                if not size_text or len(size_text) > 16 or not _CHUNK_SIZE.fullmatch(size_text):
                    raise self._malformed(f"bad chunk size {size_text[:20]!r}")
                size = int(size_text, 16)
                if size == 0:
                    self.state = "trailers"
                    continue
                if len(self.body) + size > self.max_body:
                    raise self._too_large()
                self.remaining = size
                self.state = "chunk-data"
            elif self.state == "chunk-data":
                if len(self.buffer) < self.remaining + 2:
                    return None
                if self.buffer[self.remaining : self.remaining + 2] != b"\r\n":
                    raise self._malformed("chunk not followed by CRLF")
                self.body += self.buffer[: self.remaining]
                del self.buffer[: self.remaining + 2]
                self.state = "chunk-size"
            elif self.state == "trailers":
                end = self.buffer.find(b"\r\n")
                if end < 0:
                    if len(self.buffer) > MAX_RESPONSE_HEAD_BYTES:
                        raise self._malformed("trailer section too long")
                    return None
                self.trailer_bytes += end + 2
                if self.trailer_bytes > MAX_RESPONSE_HEAD_BYTES:
                    raise self._malformed("trailer section too long")
                line_empty = end == 0
                del self.buffer[: end + 2]
                if line_empty:
                    return self._done()
            else:  # "close": the body runs to the end of the connection
                self.body += self.buffer
                self.buffer.clear()
                self._check_size()
                return None

    def _parse_head(self, head: bytes) -> bool:
        """Read the status line and headers; choose the body framing. True when the response has no body."""
        lines = head.split(b"\r\n")
        match = STATUS_LINE.fullmatch(lines[0])
        if match is None:
            raise self._malformed(f"bad status line {lines[0][:40]!r}")
        minor, status = match.group(1), int(match.group(2))
        if len(lines) - 1 > MAX_RESPONSE_HEADERS:
            raise self._malformed(f"more than {MAX_RESPONSE_HEADERS} header lines")
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(b":")
            value = value.strip(b" \t")
            if not sep or not TOKEN.fullmatch(name) or not FIELD_VALUE.fullmatch(value):
                raise self._malformed(f"bad header line {line[:40]!r}")  # also refuses obsolete line folding
            key = name.decode("ascii").lower()
            text = value.decode("latin-1")
            headers[key] = f"{headers[key]}, {text}" if key in headers else text
        if 100 <= status < 200:
            if status == 101:
                raise self._malformed(f"{self.who} switched protocols")
            return False  # an interim response: the final one follows (RFC 9110 §15.2)
        self.status = status
        self.headers = headers
        tokens = {t.strip().lower() for t in headers.get("connection", "").split(",")}
        self.keep_alive = "close" not in tokens and (minor == b"1" or "keep-alive" in tokens)
        if status in (204, 304):
            return True
        encoding = headers.get("transfer-encoding")
        length = headers.get("content-length")
        if encoding is not None:
            if length is not None:
                raise self._malformed("both Transfer-Encoding and Content-Length")  # RFC 9112 §6.3: refuse, not guess
            codings = [c.strip().lower() for c in encoding.split(",")]
            if codings != ["chunked"]:
                raise self._malformed(f"unsupported transfer coding {encoding[:40]!r}")
            self.state = "chunk-size"
            return False
        if length is not None:
            values = {v.strip() for v in length.split(",")}
            if len(values) != 1 or not _CONTENT_LENGTH.fullmatch(next(iter(values))):
                raise self._malformed(f"bad Content-Length {length[:40]!r}")
            self.remaining = int(next(iter(values)))
            if self.remaining > self.max_body:
                raise self._too_large()
            self.state = "length"
            return False
        self.state = "close"
        self.keep_alive = False
        return False
