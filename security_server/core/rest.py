"""X-Road's REST protocol r1: the request and response "message" parts, their headers, the request hash, errors.

A REST call from a department system is ``{METHOD} /r1/{instance}/{class}/{member}/{subsystem}/{service}[/path]
[?query]`` with an ``X-Road-Client`` header (pr-rest §4.1, §4.3; XROAD-REFERENCE.md §3.3). Between security
servers the call travels as a signed "message" part (``application/x-road-rest-request``) and the body as a
separate part (protocol-examples §4.6, §11.3; X-Road ``RestRequest``/``RestResponse``). The message part is::

    VERB CRLF  raw-path[?raw-query] CRLF  (Name:Value CRLF)*           (request)
    status CRLF  reason CRLF  (Name:Value CRLF)*                        (response)

UTF-8, headers in order, with no space after the colon (protocol-examples §12.4 is a real one). The request's
headers are the department system's own, without the hop-by-hop and host-revealing ones (:data:`SKIPPED_HEADERS`,
pr-rest §4.3 "Filtered headers") and without ``X-Road-Request-Id``/``X-Road-Request-Hash``; the consumer's server
appends ``x-road-request-id`` and, when the system sent none, ``x-road-id`` (``<instance>-<uuid>``, as X-Road
does). The response's headers are the provider's, without those and without any ``X-Road-*`` identity header the
provider set, followed by ``x-road-id``, ``x-road-client``, ``x-road-service``, ``x-road-request-id`` and
``x-road-request-hash`` set by the provider's server (pr-rest §4.3: "any values set by the service are
overwritten").

**Request hash** (pr-rest §4.3): ``SHA-512(SHA-512(request message part) || SHA-512(body))``, or
``SHA-512(request message part)`` for a call without a body; the provider's server writes it base64 in
``X-Road-Request-Hash`` and the consumer's server checks it. A body of no bytes is no body (X-Road sends no body
part for it either).

Where X-Road is lenient we are strict, and say so:

* ``X-Road-Client`` and the other ``X-Road-*`` identity headers: pr-rest §4.3 says the last of repeated
  ``X-Road-Client`` headers wins. The consumer's server keeps only that last one in the message it signs and
  forwards, so the provider's system can never read a different client than the one that was authenticated; a
  signed message that still repeats one is refused.
* The service path must pass :func:`security_server.core.restpath.normalise_service_path`.
* Header values may not hold control characters; names are RFC 7230 tokens.

Errors that arise inside the bus are answered with the error JSON (pr-rest §4.6) and ``X-Road-Error``; or as XML
when ``Accept`` asks for ``text/xml``, ``application/xml`` or ``text/*`` (X-Road ``ClientRestMessageHandler``).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass, field
from typing import Iterable, Sequence
from urllib.parse import unquote_to_bytes

from lxml import etree

from security_server.core import digests
from security_server.core.digests import DigestAlgorithm
from security_server.core.errors import BadRequest, BusError, InvalidClientIdentifier, RequestTooLarge
from security_server.core.identifiers import ClientId, SecurityServerId, ServiceId, check_part
from security_server.core.restpath import normalise_service_path

PROTOCOL_PREFIX = "/r1/"
"""Request paths of REST protocol version 1 start with this (pr-rest §4.1)."""

VERBS = frozenset({"DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "TRACE"})
"""The methods a REST call may use (X-Road ``RestRequest.Verb``)."""

# Header names as X-Road writes them (MimeUtils.java).
X_ROAD_CLIENT = "x-road-client"
X_ROAD_SERVICE = "x-road-service"
X_ROAD_ID = "x-road-id"
X_ROAD_USER_ID = "x-road-userid"
X_ROAD_ISSUE = "x-road-issue"
X_ROAD_SECURITY_SERVER = "x-road-security-server"
X_ROAD_REPRESENTED_PARTY = "x-road-represented-party"
X_ROAD_REQUEST_ID = "x-road-request-id"
X_ROAD_REQUEST_HASH = "x-road-request-hash"
X_ROAD_ERROR = "x-road-error"

SKIPPED_HEADERS = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "user-agent",
        "server",
        "content-length",
        "expect",
    }
)
"""Headers that never travel end to end (pr-rest §4.3 "Filtered headers"; X-Road ``RestMessage.SKIPPED_HEADERS``)."""

_REQUEST_IDENTITY_HEADERS = frozenset(
    {X_ROAD_CLIENT, X_ROAD_ID, X_ROAD_USER_ID, X_ROAD_ISSUE, X_ROAD_SECURITY_SERVER, X_ROAD_REPRESENTED_PARTY}
)
_RESPONSE_SET_HEADERS = frozenset({X_ROAD_ID, X_ROAD_CLIENT, X_ROAD_SERVICE, X_ROAD_REQUEST_ID, X_ROAD_REQUEST_HASH})

JSON_CONTENT_TYPE = "application/json;charset=utf-8"
"""Content type of the bus's own JSON answers (errors, metadata), as X-Road writes it."""

MAX_MESSAGE_BYTES = 256 * 1024
"""Largest REST message part (request line and headers) we parse."""

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
"""A control character a header value may not hold (horizontal tab is allowed)."""
_RAW_PATH = re.compile(r"/[A-Za-z0-9\-._~!$&'()*+,;=:@%/]*")
_RAW_QUERY = re.compile(r"[\x21-\x22\x24-\x7e]*")  # printable ASCII without space and '#'
_CRLF = "\r\n"

Headers = tuple[tuple[str, str], ...]


# --- headers -----------------------------------------------------------------------------------------------------


def _check_header(name: str, value: str) -> None:
    if not isinstance(name, str) or not _TOKEN.fullmatch(name):
        raise BadRequest("Invalid HTTP header name", reason=f"header name {str(name)[:80]!r}")
    if not isinstance(value, str) or _CONTROL.search(value) is not None:
        raise BadRequest(f"HTTP header {name} has control characters")


def header_value(headers: Iterable[tuple[str, str]], name: str) -> str | None:
    """The last value of header ``name`` (case-insensitive), or None."""
    wanted = name.lower()
    found: str | None = None
    for key, value in headers:
        if key.lower() == wanted:
            found = value
    return found


def _connection_tokens(headers: Sequence[tuple[str, str]]) -> set[str]:
    """Header names that ``Connection`` marks as hop-by-hop (RFC 7230 §6.1)."""
    tokens: set[str] = set()
    for name, value in headers:
        if name.lower() == "connection":
            tokens.update(t.strip().lower() for t in value.split(",") if t.strip())
    return tokens


def filter_end_to_end(headers: Sequence[tuple[str, str]], also_skip: Iterable[str] = ()) -> Headers:
    """``headers`` without the hop-by-hop and host-revealing ones, nor those ``Connection`` names, nor ``also_skip``."""
    skip = SKIPPED_HEADERS | _connection_tokens(headers) | {n.lower() for n in also_skip}
    kept: list[tuple[str, str]] = []
    for name, value in headers:
        if name.lower() in skip:
            continue
        _check_header(name, value)
        kept.append((name, value))
    return tuple(kept)


def _serialise_headers(headers: Headers) -> str:
    return "".join(f"{name}:{value}{_CRLF}" for name, value in headers)


def _parse_header_lines(lines: Sequence[str]) -> Headers:
    headers: list[tuple[str, str]] = []
    for line in lines:
        name, colon, value = line.partition(":")
        if not colon:
            raise BadRequest("REST message header line has no ':'")
        _check_header(name, value)
        if name.lower() in SKIPPED_HEADERS:
            raise BadRequest(f"REST message carries the hop-by-hop header {name}")
        headers.append((name, value))
    return tuple(headers)


def _split_message(data: bytes, what: str) -> tuple[str, str, list[str]]:
    if not isinstance(data, bytes) or not data:
        raise BadRequest(f"{what} is empty")
    if len(data) > MAX_MESSAGE_BYTES:
        raise RequestTooLarge(f"{what} is larger than {MAX_MESSAGE_BYTES} bytes")
    try:
        text = data.decode("utf-8", errors="strict")
    except UnicodeDecodeError as err:
        raise BadRequest(f"{what} is not UTF-8") from err
    if not text.endswith(_CRLF):
        raise BadRequest(f"{what} does not end with CRLF")
    lines = text[: -len(_CRLF)].split(_CRLF)
    if len(lines) < 2 or any("\r" in line or "\n" in line for line in lines):
        raise BadRequest(f"{what} is not lines separated by CRLF")
    return lines[0], lines[1], lines[2:]


def _only_once(headers: Headers, names: Iterable[str], what: str) -> None:
    for name in names:
        count = sum(1 for key, _ in headers if key.lower() == name)
        if count > 1:
            raise BadRequest(f"{what} carries header {name} more than once")


def _decode_part(text: str, what: str) -> str:
    try:
        return check_part(unquote_to_bytes(text).decode("utf-8", errors="strict"), what)
    except UnicodeDecodeError as err:
        raise InvalidClientIdentifier(f"{what} is not UTF-8 after percent decoding") from err


def parse_represented_party(value: str) -> tuple[str | None, str]:
    """``X-Road-Represented-Party``: ``[class/]code``, each part percent-decoded (pr-rest §4.3)."""
    parts = value.split("/")
    if len(parts) == 1:
        return None, _decode_part(parts[0], "partyCode")
    if len(parts) == 2:
        return _decode_part(parts[0], "partyClass"), _decode_part(parts[1], "partyCode")
    raise InvalidClientIdentifier("X-Road-Represented-Party must be [class/]code")


# --- the request ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RestRequest:
    """A REST call as it is signed and forwarded: method, raw path and query, and its end-to-end headers.

    The identifiers are read from the path and headers when it is made, so an instance is always a well-formed
    call: ``service`` (5 parts, pr-rest §4.1), ``service_path`` (raw, ``''`` or from ``/``) and its normal form
    ``normal_path``, ``client`` (``X-Road-Client``, required), ``query_id`` (``X-Road-Id``, required), and the
    optional ``user_id``, ``issue``, ``security_server``, ``represented_party`` and ``request_id``.
    """

    method: str
    path: str
    query: str | None
    headers: Headers
    service: ServiceId = field(init=False)
    service_path: str = field(init=False)
    normal_path: str = field(init=False)
    client: ClientId = field(init=False)
    query_id: str = field(init=False)
    user_id: str | None = field(init=False)
    issue: str | None = field(init=False)
    security_server: SecurityServerId | None = field(init=False)
    represented_party: tuple[str | None, str] | None = field(init=False)
    request_id: str | None = field(init=False)

    def __post_init__(self) -> None:
        if not isinstance(self.method, str) or self.method not in VERBS:
            raise BadRequest("Unsupported HTTP method for REST", reason=f"method {str(self.method)[:16]!r}")
        if not isinstance(self.path, str) or not _RAW_PATH.fullmatch(self.path):
            raise BadRequest("Request path has characters that must be percent-encoded")
        if self.query is not None and (not isinstance(self.query, str) or not _RAW_QUERY.fullmatch(self.query)):
            raise BadRequest("Request query has characters that must be percent-encoded")
        object.__setattr__(self, "headers", tuple((n, v) for n, v in self.headers))
        for name, value in self.headers:
            _check_header(name, value)
            if name.lower() in SKIPPED_HEADERS:
                raise BadRequest(f"REST message carries the hop-by-hop header {name}")
        _only_once(self.headers, _REQUEST_IDENTITY_HEADERS | {X_ROAD_REQUEST_ID}, "REST request")

        # pr-rest §4.1; X-Road RestRequest.decodeIdentifiers: /r1/ then five identifier segments, then the path.
        parts = self.path.split("/", 7)
        if len(parts) < 7 or parts[0] != "" or parts[1] != PROTOCOL_PREFIX.strip("/"):
            raise BadRequest(
                "Invalid REST request path: expected /r1/{instance}/{class}/{member}/{subsystem}/{service}[/path]",
                reason=f"path {self.path[:200]!r}",
            )
        service = ServiceId.parse_path("/".join(parts[2:7]))  # each segment decoded on its own
        service_path = "/" + parts[7] if len(parts) == 8 else ""
        object.__setattr__(self, "service", service)
        object.__setattr__(self, "service_path", service_path)
        object.__setattr__(self, "normal_path", normalise_service_path(service_path))

        client_text = header_value(self.headers, X_ROAD_CLIENT)
        if client_text is None or not client_text.strip():
            raise BadRequest("Request has no X-Road-Client header", reason="X-Road-Client missing or empty")
        object.__setattr__(self, "client", ClientId.parse_path(client_text.strip()))
        query_id = header_value(self.headers, X_ROAD_ID)
        if query_id is None or not query_id.strip():
            raise BadRequest("Request has no X-Road-Id")
        object.__setattr__(self, "query_id", query_id)
        object.__setattr__(self, "user_id", header_value(self.headers, X_ROAD_USER_ID))
        object.__setattr__(self, "issue", header_value(self.headers, X_ROAD_ISSUE))
        server_text = header_value(self.headers, X_ROAD_SECURITY_SERVER)
        object.__setattr__(
            self, "security_server", None if server_text is None else SecurityServerId.parse_path(server_text.strip())
        )
        party = header_value(self.headers, X_ROAD_REPRESENTED_PARTY)
        object.__setattr__(self, "represented_party", None if party is None else parse_represented_party(party.strip()))
        object.__setattr__(self, "request_id", header_value(self.headers, X_ROAD_REQUEST_ID))

    @classmethod
    def from_client(
        cls,
        method: str,
        target: str,
        headers: Sequence[tuple[str, str]],
        *,
        request_id: str,
        new_query_id: str,
    ) -> RestRequest:
        """The call a department system made (``target`` is the raw request target), as the consumer's server
        signs it: end-to-end headers only, identity headers once (the last), then ``x-road-request-id`` and,
        if the system sent none, ``x-road-id`` = ``new_query_id`` (X-Road ``RestRequest``, ``setQueryId``)."""
        if not isinstance(target, str) or not target.startswith("/"):
            raise BadRequest("Invalid REST request target")
        path, question, query = target.partition("?")
        kept = list(filter_end_to_end(headers, also_skip=(X_ROAD_REQUEST_ID, X_ROAD_REQUEST_HASH)))
        last: dict[str, int] = {}
        for index, (name, _) in enumerate(kept):
            if name.lower() in _REQUEST_IDENTITY_HEADERS:
                last[name.lower()] = index
        kept = [
            (name, value)
            for index, (name, value) in enumerate(kept)
            if name.lower() not in _REQUEST_IDENTITY_HEADERS or last[name.lower()] == index
        ]
        kept.append((X_ROAD_REQUEST_ID, request_id))
        existing = header_value(kept, X_ROAD_ID)
        if existing is None or not existing.strip():
            kept = [(n, v) for n, v in kept if n.lower() != X_ROAD_ID]
            kept.append((X_ROAD_ID, new_query_id))
        return cls(method, path, query if question else None, tuple(kept))

    @classmethod
    def parse(cls, data: bytes) -> RestRequest:
        """Read a request message part (``application/x-road-rest-request``) strictly."""
        verb, target, lines = _split_message(data, "REST request message")
        if not target.startswith("/"):
            raise BadRequest("REST request message names an absolute URI")  # X-Road: no scheme or authority
        path, question, query = target.partition("?")
        return cls(verb, path, query if question else None, _parse_header_lines(lines))

    @property
    def target(self) -> str:
        """The raw path with its query, as the department system sent it."""
        return self.path if self.query is None else f"{self.path}?{self.query}"

    def to_bytes(self) -> bytes:
        """The message part (protocol-examples §11.3; X-Road ``RestRequest.toByteArray``)."""
        return (f"{self.method}{_CRLF}{self.target}{_CRLF}" + _serialise_headers(self.headers)).encode("utf-8")

    def provider_target(self, base_url: str) -> str:
        """The provider's URL: the service's base URL, the service path and the query appended unchanged
        (pr-rest §4.1; X-Road ``concatPath``: one ``/`` between them)."""
        address = base_url
        if self.service_path:
            address = address[:-1] + self.service_path if address.endswith("/") else address + self.service_path
        return address if self.query is None else f"{address}?{self.query}"


def request_hash(message: bytes, body: bytes | None, algorithm: DigestAlgorithm = digests.SHA512) -> bytes:
    """The REST request hash (pr-rest §4.3): H(H(message) || H(body)), or H(message) without a body."""
    if not body:
        return algorithm.digest(message)
    return algorithm.digest(algorithm.digest(message) + algorithm.digest(body))


# --- the response --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RestResponse:
    """A provider's answer as it is signed and returned: status, reason and headers (the X-Road ones included).

    Read from the headers when made: ``query_id`` (``x-road-id``) and ``request_hash`` (``x-road-request-hash``,
    decoded) are required, as X-Road requires them; ``client``, ``service`` and ``request_id`` may be None here and
    are checked against the request by the consumer's server.
    """

    status: int
    reason: str
    headers: Headers
    query_id: str = field(init=False)
    request_hash: bytes = field(init=False, repr=False)
    client: ClientId | None = field(init=False)
    service: ServiceId | None = field(init=False)
    request_id: str | None = field(init=False)

    def __post_init__(self) -> None:
        if isinstance(self.status, bool) or not isinstance(self.status, int) or not 100 <= self.status <= 599:
            raise BadRequest("REST response has an invalid status code")
        if not isinstance(self.reason, str) or any(ord(c) < 0x20 and c != "\t" for c in self.reason):
            raise BadRequest("REST response has an invalid reason phrase")
        object.__setattr__(self, "headers", tuple((n, v) for n, v in self.headers))
        for name, value in self.headers:
            _check_header(name, value)
            if name.lower() in SKIPPED_HEADERS:
                raise BadRequest(f"REST message carries the hop-by-hop header {name}")
        _only_once(self.headers, _RESPONSE_SET_HEADERS, "REST response")
        query_id = header_value(self.headers, X_ROAD_ID)
        hash_text = header_value(self.headers, X_ROAD_REQUEST_HASH)
        if not query_id or not hash_text:
            raise BadRequest("Invalid REST response message: no x-road-id or x-road-request-hash")
        try:
            digest = base64.b64decode(hash_text.strip(), validate=True)
        except (binascii.Error, ValueError) as err:
            raise BadRequest("Invalid REST response message: x-road-request-hash is not base64") from err
        object.__setattr__(self, "query_id", query_id)
        object.__setattr__(self, "request_hash", digest)
        client_text = header_value(self.headers, X_ROAD_CLIENT)
        service_text = header_value(self.headers, X_ROAD_SERVICE)
        object.__setattr__(self, "client", None if client_text is None else ClientId.parse_path(client_text))
        object.__setattr__(self, "service", None if service_text is None else ServiceId.parse_path(service_text))
        object.__setattr__(self, "request_id", header_value(self.headers, X_ROAD_REQUEST_ID))

    @classmethod
    def answering(
        cls,
        request: RestRequest,
        status: int,
        reason: str,
        provider_headers: Sequence[tuple[str, str]],
        request_digest: bytes,
        request_id: str | None,
    ) -> RestResponse:
        """The response the provider's server signs: the provider's end-to-end headers without any X-Road
        header it set, then the five X-Road headers (X-Road ``RestResponse``; pr-rest §4.3)."""
        kept = list(filter_end_to_end(provider_headers, also_skip=_RESPONSE_SET_HEADERS | {X_ROAD_ERROR}))
        kept += [
            (X_ROAD_ID, request.query_id),
            (X_ROAD_CLIENT, request.client.to_path()),
            (X_ROAD_SERVICE, request.service.to_path()),
        ]
        if request_id is not None:
            kept.append((X_ROAD_REQUEST_ID, request_id))
        kept.append((X_ROAD_REQUEST_HASH, base64.b64encode(request_digest).decode("ascii")))
        return cls(status, reason, tuple(kept))

    @classmethod
    def parse(cls, data: bytes) -> RestResponse:
        """Read a response message part (``application/x-road-rest-response``) strictly."""
        status, reason, lines = _split_message(data, "REST response message")
        if not status.isdigit() or len(status) != 3:
            raise BadRequest("REST response message has an invalid status line")
        return cls(int(status), reason, _parse_header_lines(lines))

    def to_bytes(self) -> bytes:
        """The message part (X-Road ``RestResponse.toByteArray``)."""
        return (f"{self.status}{_CRLF}{self.reason}{_CRLF}" + _serialise_headers(self.headers)).encode("utf-8")

    def header(self, name: str) -> str | None:
        """The last value of header ``name``."""
        return header_value(self.headers, name)


# --- answers to the department system -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RestAnswer:
    """What the consumer's server answers a REST call with: status, headers in order, body."""

    status: int
    headers: Headers
    body: bytes = b""


_XML_ERROR_TYPES = ("text/xml", "application/xml", "text/*")


def error_media_type(accept: str | None) -> str:
    """``text/xml`` or ``application/xml`` when ``Accept`` asks for XML, else JSON (X-Road
    ``ClientRestMessageHandler.decideErrorResponseContentType``)."""
    for item in (accept or "").split(","):
        media = item.split(";", 1)[0].strip().lower()
        if media in _XML_ERROR_TYPES:
            return "text/xml" if media == "text/*" else media
    return "application/json"


def rest_error(code: str, message: str, detail: str, *, accept: str | None = None, status: int | None = None) -> RestAnswer:
    """An error that arose inside the bus (pr-rest §4.6): ``{"type", "message", "detail"}`` and ``X-Road-Error``.

    The status is ``status`` when given, else 500 for a ``server.*`` code and 400 for any other (X-Road).
    """
    if status is None:
        status = 500 if code.startswith("server.") else 400
    media = error_media_type(accept)
    if media == "application/json":
        body = json.dumps({"type": code, "message": message, "detail": detail}).encode("utf-8")
    else:
        root = etree.Element("error")
        for name, value in (("type", code), ("message", message), ("detail", detail)):
            etree.SubElement(root, name).text = value
        body = bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))
    headers = (("Content-Type", f"{media};charset=utf-8"), ("X-Road-Error", code))
    return RestAnswer(status, headers, body)


def rest_error_of(error: BusError, *, accept: str | None = None, own_status: bool = False) -> RestAnswer:
    """:func:`rest_error` for one of our errors; ``own_status`` uses the error's HTTP status (e.g. 413)."""
    return rest_error(
        error.fault_code, error.message, error.detail_id, accept=accept, status=error.http_status if own_status else None
    )
