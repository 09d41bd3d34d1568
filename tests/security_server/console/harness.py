"""The console in memory: the real management site over a StringTransport, operations run at once, the
federation's verification configuration, and helpers to log in and send forms as a browser does."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from twisted.internet.task import Clock

from security_server.admin.server_dir import ServerDirectory
from security_server.management.config import ManagementConfig
from security_server.management.credentials import DB_NAME, CredentialStore
from security_server.management.roles import ALL_ROLES
from security_server.management.server import make_management_site
from tests.federation.evidence import federation
from tests.management_api import Answer, InMemoryApi, run_now
from tests.security_server.console.data import PASSWORD
from tests.security_server.management.xroad_openapi import XROAD

_XSRF_FIELD = re.compile(rb'name="_xsrf" value="([^"]+)"')


@dataclass
class Console(InMemoryApi):
    """The management site of ``directory`` with its console; the clock is the real time when made."""

    openapi = XROAD
    host = "localhost:4000"

    directory: Path
    health: Any = None
    clock: Clock = field(default_factory=Clock)
    diagnostics: Any = None

    def __post_init__(self) -> None:
        self.clock.advance(datetime.now(UTC).timestamp())
        conf = federation().conf()
        self.site = make_management_site(
            self.clock, ServerDirectory(self.directory), ManagementConfig(max_body_bytes=4 * 1024 * 1024),
            executor=run_now, secure_cookies=False, maintenance=self.health, verification_conf=lambda now: conf,
            diagnostics=self.diagnostics,
        )
        self.router = self.site.resource._router

    def credentials(self) -> CredentialStore:
        """The credential store of the directory."""
        return CredentialStore(self.directory / DB_NAME, ALL_ROLES)

    def log_in(self, username: str, password: str = PASSWORD) -> dict[str, str]:
        """Log in through the console's form; the cookies the browser would keep."""
        answer = self.form("/console/login", {"username": username, "password": password})
        assert answer.status == 303, answer.body
        return answer.cookies()

    def get(self, path: str, cookies: dict[str, str] | None = None, **query: str) -> Answer:
        """GET a console page."""
        return self.request("GET", path, cookies=cookies, query=query or None, check=False)

    def form(self, path: str, fields: dict[str, str], cookies: dict[str, str] | None = None) -> Answer:
        """POST a url-encoded form."""
        return self.request("POST", path, body=urlencode(fields).encode(), cookies=cookies,
                            content_type="application/x-www-form-urlencoded", check=False)

    def upload(self, path: str, fields: dict[str, str], name: str, data: bytes, cookies: dict[str, str]) -> Answer:
        """POST a multipart form with one file."""
        boundary = "----fedbus-console-test"
        parts = [
            f'--{boundary}\r\nContent-Disposition: form-data; name="{key}"\r\n\r\n{value}\r\n'.encode()
            for key, value in fields.items()
        ]
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="c.asice"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n".encode() + data + b"\r\n"
        )
        body = b"".join(parts) + f"--{boundary}--\r\n".encode()
        return self.request("POST", path, body=body, cookies=cookies, check=False,
                            content_type=f"multipart/form-data; boundary={boundary}")


def xsrf_of(page: bytes) -> str:
    """The XSRF token a page's forms carry."""
    found = _XSRF_FIELD.search(page)
    assert found is not None, "the page has no form with an XSRF token"
    return found.group(1).decode()
