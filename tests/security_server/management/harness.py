"""The management API in memory: the real site over a StringTransport, a Clock, operations run at once.

Every answer to a path of X-Road's OpenAPI file is checked against the file by openapi-core (``check=False``
only for the statuses X-Road's file does not list, such as 405 or 413, which the tests assert themselves).
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlencode

from twisted.internet import defer
from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport

from security_server.admin.server_dir import ServerDirectory
from security_server.core.errors import NetworkError
from security_server.management.config import ManagementConfig
from security_server.management.credentials import DB_NAME, CredentialStore
from security_server.management.roles import ALL_ROLES, Role
from security_server.management.routing import Router
from security_server.management.server import make_management_site
from tests.security_server.management.xroad_openapi import PREFIX, check_response, documented

START = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
ADMIN_PASSWORD = "correct horse battery"


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


def _template_of(router: Router, method: str, path: str) -> str | None:
    try:
        operation, _ = router.match(method, path)
    except Exception:
        return None
    return operation.path[len(PREFIX):] if operation.path.startswith(PREFIX) else None


@dataclass
class Api:
    """A management API over one server directory, with a clock and an admin user."""

    directory: Path
    config: ManagementConfig = field(default_factory=lambda: ManagementConfig(max_body_bytes=1024 * 1024))
    clock: Clock = field(default_factory=Clock)
    peer: str = "127.0.0.1"
    maintenance: Any = None
    """The running server's maintenance switch, when a test gives one."""
    global_conf: Any = None
    """The running server's global configuration source, when a test gives one."""
    register_client: Any = None
    """What sending clientReg does, when a test gives it."""
    diagnostics: Any = None
    """The running server's diagnostics, when a test gives them."""
    register_server: Any = None
    """What sending authCertReg does, when a test gives it."""
    unregister_client: Any = None
    """What sending clientDeletion does, when a test gives it."""
    documents: dict[str, bytes] = field(default_factory=dict)
    """What fetching a service description finds at each URL (anything else is unreachable)."""

    def __post_init__(self) -> None:
        self.clock.advance(START.timestamp())
        self.server_dir = ServerDirectory(self.directory)
        self.site = make_management_site(
            self.clock, self.server_dir, self.config, executor=run_now, secure_cookies=False,
            maintenance=self.maintenance, fetch=self._fetch, global_conf=self.global_conf,
            register_client=self.register_client, diagnostics=self.diagnostics, register_server=self.register_server,
            unregister_client=self.unregister_client,
        )
        self.router: Router = self.site.resource._router
        with self.credentials() as store:
            store.add_user("admin", ADMIN_PASSWORD, frozenset({Role.SYSTEM_ADMINISTRATOR}), now=START)

    def _fetch(self, url: str) -> defer.Deferred[bytes]:
        if url in self.documents:
            return defer.succeed(self.documents[url])
        return defer.fail(NetworkError("the service description could not be reached", reason=url))

    def credentials(self) -> CredentialStore:
        """The credential store of the directory."""
        return CredentialStore(self.directory / DB_NAME, ALL_ROLES)

    def api_key(self, *roles: Role) -> str:
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
        """Send one HTTP/1.0 request through the site and read the whole answer."""
        if json_body is not None:
            body, content_type = json.dumps(json_body).encode(), "application/json"
        target = path + ("?" + urlencode(query) if query else "")
        lines = [f"{method} {target} HTTP/1.0", "Host: localhost:4000"]
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
        answer = _parse(transport.value())
        channel.connectionLost(None)
        template = _template_of(self.router, method, path)
        if check and template is not None and documented(method, template):
            check_response(method, path, query or {}, answer.status, answer.header("content-type"), answer.body)
        return answer


def _parse(data: bytes) -> Answer:
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers: dict[str, list[str]] = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers.setdefault(name.strip().lower(), []).append(value.strip())
    return Answer(int(status_line.split(" ")[1]), headers, body)
