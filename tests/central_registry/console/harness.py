"""The registry's console in memory: the real registry management site over a StringTransport, operations run at
once, and helpers to log in and send forms as a browser does."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlencode

from twisted.internet.task import Clock

from central_registry.management.context import opening_store
from central_registry.management.roles import ALL_ROLES
from central_registry.management.server import make_registry_management_site
from central_registry.service import RegistryPaths
from security_server.management.config import ManagementConfig
from security_server.management.credentials import DB_NAME, CredentialStore
from tests.central_registry.console.data import PASSWORD
from tests.central_registry.management.xroad_cs_openapi import XROAD_CS
from tests.management_api import Answer, InMemoryApi, run_now


@dataclass
class RegistryConsoleSite(InMemoryApi):
    """The registry management site of ``root`` with its console; the clock is the real time when made."""

    openapi = XROAD_CS
    host = "localhost:4100"

    root: Path
    clock: Clock = field(default_factory=Clock)

    def __post_init__(self) -> None:
        self.clock.advance(datetime.now(UTC).timestamp())
        self.site = make_registry_management_site(
            self.clock, self.root, ManagementConfig(port=0), executor=run_now,
            open_store=opening_store(RegistryPaths(self.root).database), secure_cookies=False,
        )
        self.router = self.site.resource._router

    def credentials(self) -> CredentialStore:
        """The registry's credential store."""
        return CredentialStore(self.root / DB_NAME, frozenset(ALL_ROLES))

    def log_in(self, username: str, password: str = PASSWORD) -> dict[str, str]:
        """Log in through the console's form; the cookies the browser would keep."""
        answer = self.form("/console/login", {"username": username, "password": password})
        assert answer.status == 303, answer.body
        return answer.cookies()

    def get(self, path: str, cookies: dict[str, str] | None = None) -> Answer:
        """GET a console page."""
        return self.request("GET", path, cookies=cookies, check=False)

    def form(self, path: str, fields: dict[str, str], cookies: dict[str, str] | None = None) -> Answer:
        """POST a url-encoded form."""
        return self.request("POST", path, body=urlencode(fields).encode(), cookies=cookies,
                            content_type="application/x-www-form-urlencoded", check=False)
