"""The management API in memory: the real site over a StringTransport, a Clock, operations run at once.

The request and its check are both roles' (:class:`tests.management_api.InMemoryApi`): every answer to a path of
X-Road's OpenAPI file is checked against the file by openapi-core (``check=False`` only for the statuses X-Road's
file does not list, such as 405 or 413, which the tests assert themselves).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from twisted.internet import defer
from twisted.internet.task import Clock

from security_server.admin.server_dir import ServerDirectory
from security_server.core.errors import NetworkError
from security_server.management.config import ManagementConfig
from security_server.management.credentials import DB_NAME, CredentialStore
from security_server.management.roles import ALL_ROLES, Role
from security_server.management.server import make_management_site
from tests.management_api import ADMIN_PASSWORD, START, InMemoryApi, run_now
from tests.security_server.management.xroad_openapi import XROAD

__all__ = ["ADMIN_PASSWORD", "START", "Api"]


@dataclass
class Api(InMemoryApi):
    """A management API over one server directory, with a clock and an admin user."""

    openapi = XROAD
    host = "localhost:4000"

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
    unregister_server: Any = None
    """What sending authCertDeletion does, when a test gives it."""
    change_address: Any = None
    """What sending addressChange does, when a test gives it."""
    documents: dict[str, bytes] = field(default_factory=dict)
    """What fetching a service description finds at each URL (anything else is unreachable)."""

    def __post_init__(self) -> None:
        self.clock.advance(START.timestamp())
        self.server_dir = ServerDirectory(self.directory)
        self.site = make_management_site(
            self.clock, self.server_dir, self.config, executor=run_now, secure_cookies=False,
            maintenance=self.maintenance, fetch=self._fetch, global_conf=self.global_conf,
            register_client=self.register_client, diagnostics=self.diagnostics, register_server=self.register_server,
            unregister_client=self.unregister_client, unregister_server=self.unregister_server,
            change_address=self.change_address,
        )
        self.router = self.site.resource._router
        with self.credentials() as store:
            store.add_user("admin", ADMIN_PASSWORD, frozenset({Role.SYSTEM_ADMINISTRATOR}), now=START)

    def _fetch(self, url: str) -> defer.Deferred[bytes]:
        if url in self.documents:
            return defer.succeed(self.documents[url])
        return defer.fail(NetworkError("the service description could not be reached", reason=url))

    def credentials(self) -> CredentialStore:
        """The credential store of the directory."""
        return CredentialStore(self.directory / DB_NAME, ALL_ROLES)
