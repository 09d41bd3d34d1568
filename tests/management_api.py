"""What the tests of both roles' management APIs share: X-Road's OpenAPI file checked by openapi-core, and one
HTTP/1.0 request through the real site over a StringTransport, its answer checked against that file.

The security server's harness (:mod:`tests.security_server.management.harness`) and the registry's
(:mod:`tests.central_registry.management.harness`) differ in their site, their credential store and X-Road's file
(:mod:`tests.security_server.management.xroad_openapi`, :mod:`tests.central_registry.management.xroad_cs_openapi`).
X-Road's files refer to its common definitions (``common-openapi-definition.yaml``: ``ErrorInfo``,
``CodeWithDetails``, ``User`` and two error examples), which are not in the copies we have; they are put in here
as X-Road defines them (``ErrorInfo``: ``status`` integer, ``error`` a ``CodeWithDetails``, ``warnings`` a list of
them; ``CodeWithDetails``: ``code`` string, ``metadata`` list of strings).
"""

from __future__ import annotations

import base64
import functools
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any, Callable, ClassVar, Mapping
from urllib.parse import urlencode

import yaml  # type: ignore[import-untyped]  # no stubs installed; only safe_load is used
from openapi_core import Config, OpenAPI
from openapi_core.testing import MockRequest, MockResponse
from twisted.internet import defer
from twisted.internet.address import IPv4Address
from twisted.internet.testing import StringTransport

from security_server.management.credentials import CredentialStore
from security_server.management.routing import Router

PREFIX = "/api/v1"
START = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
"""Where the tests' clocks start."""
ADMIN_PASSWORD = "correct horse battery"
"""The password of the ``admin`` user every harness makes."""

CODE_WITH_DETAILS = {
    "type": "object",
    "required": ["code"],
    "properties": {"code": {"type": "string"}, "metadata": {"type": "array", "items": {"type": "string"}}},
}
ERROR_INFO = {
    "type": "object",
    "required": ["status"],
    "properties": {
        "status": {"type": "integer"},
        "error": {"$ref": "#/components/schemas/CodeWithDetails"},
        "warnings": {"type": "array", "items": {"$ref": "#/components/schemas/CodeWithDetails"}},
    },
}


def _xml_as_text(body: bytes | str) -> str:
    """X-Road's files give ``application/xml`` answers (the anchor download) a string schema: keep them text,
    where openapi-core would otherwise parse them into an element tree."""
    return body.decode("utf-8") if isinstance(body, bytes) else body


class XRoadOpenApi:
    """One of X-Road's OpenAPI files (``spec_path``, served at ``host``), with the common definitions put in;
    ``adjust`` changes the loaded document further, and ``validate_spec=False`` skips the check of the document."""

    def __init__(
        self, spec_path: Path, host: str, *, adjust: Callable[[dict[str, Any]], None] = lambda spec: None,
        validate_spec: bool = True,
    ) -> None:
        self.spec_path = spec_path
        self.host = host
        self._adjust = adjust
        self._validate_spec = validate_spec

    @functools.cached_property
    def spec(self) -> dict[str, Any]:
        """The OpenAPI document as a dict, with the common definitions put in."""
        spec: dict[str, Any] = yaml.safe_load(self.spec_path.read_text(encoding="utf-8"))
        schemas = spec["components"]["schemas"]
        schemas["ErrorInfo"] = ERROR_INFO
        schemas["CodeWithDetails"] = CODE_WITH_DETAILS
        schemas["User"] = {"type": "object"}
        examples = spec["components"]["examples"]
        for name, example in list(examples.items()):
            if "$ref" in example:
                examples[name] = {"value": {"status": 400, "error": {"code": "example"}}}
        self._adjust(spec)
        return spec

    @functools.cached_property
    def openapi(self) -> OpenAPI:
        """openapi-core's validator over the file."""
        unchecked: dict[str, Any] = {} if self._validate_spec else {"spec_validator_cls": None}
        config = Config(extra_media_type_deserializers={"application/xml": _xml_as_text}, **unchecked)
        return OpenAPI.from_dict(self.spec, config=config)

    def documented(self, method: str, path_template: str) -> bool:
        """Whether the file has this operation (``path_template`` without ``/api/v1``)."""
        return method.lower() in self.spec["paths"].get(path_template, {})

    def check_response(
        self, method: str, path: str, query: Mapping[str, str], status: int, content_type: str | None, body: bytes
    ) -> None:
        """Fail unless the file allows this answer to this request (status, content type, body schema)."""
        request = MockRequest(self.host, method.lower(), path, args=dict(query))
        response = MockResponse(body, status_code=status, content_type=content_type or "")
        self.openapi.validate_response(request, response)


def run_now(work: Callable[[], Any]) -> defer.Deferred[Any]:
    """The executor of the tests: the operation runs at once, in this thread."""
    return defer.maybeDeferred(work)


@dataclass
class Answer:
    """One HTTP answer."""

    status: int
    headers: dict[str, list[str]]
    body: bytes

    def json(self) -> Any:
        """The body as JSON."""
        return json.loads(self.body)

    def header(self, name: str) -> str | None:
        """One header (the first), or None."""
        values = self.headers.get(name.lower())
        return values[0] if values else None

    def cookies(self) -> dict[str, str]:
        """The cookies set."""
        jar: SimpleCookie = SimpleCookie()
        for value in self.headers.get("set-cookie", []):
            jar.load(value)
        return {k: v.value for k, v in jar.items()}


def parse_answer(data: bytes) -> Answer:
    """The answer in the bytes a site wrote."""
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers: dict[str, list[str]] = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers.setdefault(name.strip().lower(), []).append(value.strip())
    return Answer(int(status_line.split(" ")[1]), headers, body)


def _template_of(router: Router, method: str, path: str) -> str | None:
    try:
        operation, _ = router.match(method, path)
    except Exception:
        return None
    return operation.path[len(PREFIX):] if operation.path.startswith(PREFIX) else None


class InMemoryApi:
    """A role's management API in memory: its ``site`` and ``router`` (set by the role's harness), its
    ``credentials()``, X-Road's file it answers by (``openapi``) and the ``host`` its requests name."""

    openapi: ClassVar[XRoadOpenApi]
    host: ClassVar[str]
    site: Any
    router: Router
    peer: str = "127.0.0.1"

    def credentials(self) -> CredentialStore:
        """The credential store of the API's directory."""
        raise NotImplementedError

    def api_key(self, *roles: str) -> str:
        """A new API key with ``roles`` (made in the store directly)."""
        with self.credentials() as store:
            return store.create_api_key(frozenset(roles), created_by="test", now=START).key

    def request(
        self,
        method: str,
        path: str,
        *,
        body: bytes | None = None,
        json_body: Any = None,
        content_type: str | None = None,
        key: str | None = None,
        basic: tuple[str, str] | None = None,
        headers: dict[str, str] | None = None,
        cookies: dict[str, str] | None = None,
        query: dict[str, str] | None = None,
        check: bool = True,
    ) -> Answer:
        """Send one HTTP/1.0 request through the site and read the whole answer (checked against X-Road's file
        unless ``check=False``, for the statuses the file does not list, which the tests assert themselves)."""
        if json_body is not None:
            body, content_type = json.dumps(json_body).encode(), "application/json"
        target = path + ("?" + urlencode(query) if query else "")
        lines = [f"{method} {target} HTTP/1.0", f"Host: {self.host}"]
        if body is not None:
            lines.append(f"Content-Length: {len(body)}")
        if content_type is not None:
            lines.append(f"Content-Type: {content_type}")
        if key is not None:
            lines.append(f"Authorization: X-Road-ApiKey token={key}")
        if basic is not None:
            token = base64.b64encode(f"{basic[0]}:{basic[1]}".encode()).decode()
            lines.append(f"Authorization: Basic {token}")
        if cookies:
            lines.append("Cookie: " + "; ".join(f"{k}={v}" for k, v in cookies.items()))
        for name, value in (headers or {}).items():
            lines.append(f"{name}: {value}")
        raw = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b"")
        site: Any = self.site  # Twisted leaves Site and StringTransport unannotated
        transport: Any = StringTransport(peerAddress=IPv4Address("TCP", self.peer, 40000))  # type: ignore[no-untyped-call]
        channel = site.buildProtocol(IPv4Address("TCP", self.peer, 40000))
        channel.makeConnection(transport)
        channel.dataReceived(raw)
        answer = parse_answer(transport.value())
        channel.connectionLost(None)
        template = _template_of(self.router, method, path)
        if check and template is not None and self.openapi.documented(method, template):
            self.openapi.check_response(
                method, path, query or {}, answer.status, answer.header("content-type"), answer.body
            )
        return answer
