"""The registry's management API in memory: the real site over a StringTransport, a Clock, operations run at once.

Every answer to a path of X-Road's central-server OpenAPI file is checked against the file by openapi-core
(``check=False`` only for statuses the file does not list, which the tests assert themselves).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from cryptography.hazmat.primitives import serialization
from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport

from central_registry.management.context import RegistryContext, opening_store
from central_registry.management.roles import Role
from central_registry.publisher import Publisher, SelfSignedKey
from central_registry.management.server import make_registry_management_site
from central_registry.service import RegistryPaths
from security_server.management.config import ManagementConfig
from security_server.management.credentials import CredentialStore
from security_server.management.routing import Router
from tests.central_registry.management.xroad_cs_openapi import PREFIX, check_response, documented
from tests.security_server.management.harness import Answer, _parse, run_now

START = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
ADMIN_PASSWORD = "correct horse battery"


def _template_of(router: Router, method: str, path: str) -> str | None:
    try:
        operation, _ = router.match(method, path)
    except Exception:
        return None
    return operation.path[len(PREFIX):] if operation.path.startswith(PREFIX) else None


@dataclass
class RegistryApi:
    """The registry's API over one registry directory, with a clock and an admin user."""

    root: Path
    config: ManagementConfig = field(default_factory=lambda: ManagementConfig(port=0, max_body_bytes=64 * 1024))
    clock: Clock = field(default_factory=Clock)
    publisher: Publisher | None = None
    """The running registry's publisher, when a test gives one (the anchor)."""

    def __post_init__(self) -> None:
        self.clock.advance(START.timestamp())
        self.paths = RegistryPaths(self.root)
        self.site = make_registry_management_site(
            self.clock, self.root, self.config, executor=run_now, open_store=opening_store(self.paths.database),
            secure_cookies=False, publisher=lambda: self.publisher,
        )
        self.router: Router = self.site.resource._router
        self.context: RegistryContext = self.site.resource._context
        with self.credentials() as store:
            store.add_user("admin", ADMIN_PASSWORD, frozenset({Role.SYSTEM_ADMINISTRATOR}), now=START)

    def credentials(self) -> CredentialStore:
        """The credential store of the registry directory."""
        return self.context.credentials()

    def api_key(self, *roles: Role) -> str:
        """A new API key with ``roles`` (made in the store directly)."""
        with self.credentials() as store:
            return store.create_api_key(frozenset(roles), created_by="test", now=START).key

    def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        body: bytes | None = None,
        content_type: str | None = None,
        key: str | None = None,
        query: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        cookies: dict[str, str] | None = None,
        check: bool = True,
    ) -> Answer:
        """Send one HTTP/1.0 request through the site and read the whole answer (checked against X-Road's file)."""
        if json_body is not None:
            body, content_type = json.dumps(json_body).encode(), "application/json"
        target = path + ("?" + urlencode(query) if query else "")
        lines = [f"{method} {target} HTTP/1.0", "Host: localhost:4100"]
        if body is not None:
            lines.append(f"Content-Length: {len(body)}")
        if content_type is not None:
            lines.append(f"Content-Type: {content_type}")
        if key is not None:
            lines.append(f"Authorization: X-Road-ApiKey token={key}")
        if cookies:
            lines.append("Cookie: " + "; ".join(f"{k}={v}" for k, v in cookies.items()))
        for name, value in (headers or {}).items():
            lines.append(f"{name}: {value}")
        raw = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b"")
        site: Any = self.site
        transport: Any = StringTransport(peerAddress=IPv4Address("TCP", "127.0.0.1", 40000))  # type: ignore[no-untyped-call]
        channel = site.buildProtocol(IPv4Address("TCP", "127.0.0.1", 40000))
        channel.makeConnection(transport)
        channel.dataReceived(raw)
        answer = _parse(transport.value())
        channel.connectionLost(None)
        template = _template_of(self.router, method, path)
        if check and template is not None and documented(method, template):
            check_response(method, path, query or {}, answer.status, answer.header("content-type"), answer.body)
        return answer


def multipart_form(fields: dict[str, str], files: dict[str, bytes]) -> tuple[bytes, str]:
    """A multipart/form-data body as X-Road's UI sends uploads."""
    boundary = "fedbus-test-boundary"
    chunks = []
    for name, value in fields.items():
        chunks.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
    for name, data in files.items():
        chunks.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{name}.pem"\r\n'
                      f"Content-Type: application/octet-stream\r\n\r\n".encode() + data + b"\r\n")
    return b"".join(chunks) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def certificate_pem(api: RegistryApi, common_name: str) -> bytes:
    """A self-signed certificate (PEM) standing in for a CA's, a responder's or a TSA's."""
    key = SelfSignedKey.create(api.root / common_name.replace(" ", "-"), common_name, START)
    return key.cert.public_bytes(serialization.Encoding.PEM)
