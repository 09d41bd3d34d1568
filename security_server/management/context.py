"""The security server's operation context: its server directory and what the running server lends the API."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Protocol

from twisted.internet.defer import Deferred

from security_server.admin.server_dir import ServerDirectory
from security_server.core.config import LayeredConfig
from security_server.core.globalconf import GlobalConf
from security_server.core.identifiers import ClientId
from security_server.management.credentials import CredentialStore
from security_server.management.diagnostics import Diagnostics
from security_server.management.roles import ALL_ROLES


class MaintenanceSwitch(Protocol):
    """The running server's maintenance mode (:class:`~security_server.edge.health_checker.HealthChecker`)."""

    maintenance: bool

    def set_maintenance(self, on: bool) -> str:
        """Switch it; answers what changed."""


@dataclass(frozen=True, slots=True)
class OperationContext:
    """What every operation may use: the server directory, the credential store, the time."""

    server_dir: ServerDirectory
    credentials_path: Path
    now: Callable[[], datetime]
    config: LayeredConfig | None = None
    """The layered configuration, for the ``[pkcs11:NAME]`` tokens (None: the soft token only)."""
    maintenance: MaintenanceSwitch | None = None
    """The running server's maintenance switch (its health checker); None when the API runs without one."""
    global_conf: Callable[[], GlobalConf] | None = None
    """The global configuration in force (the running server's ``ConfClient.current``); None without a server."""
    fetch: Callable[[str], Deferred[bytes]] | None = None
    """Fetch a service description by URL (on the reactor thread); None when the API cannot reach out."""
    register_client: Callable[[ClientId], Deferred[Any]] | None = None
    """Send clientReg to the registry for a hosted subsystem (on the reactor thread); None without a server."""
    unregister_client: Callable[[ClientId], Deferred[Any]] | None = None
    """Send clientDeletion to the registry for a hosted subsystem (on the reactor thread); None without a server."""
    register_server: Callable[[str], Deferred[Any]] | None = None
    """Send authCertReg for this server's auth certificate with its address (on the reactor thread); None when
    the API cannot reach the registry."""
    unregister_server: Callable[[str], Deferred[Any]] | None = None
    """Send authCertDeletion for the auth certificate of this SHA-256 hex hash (on the reactor thread); None when
    the API cannot reach the registry."""
    change_address: Callable[[str], Deferred[Any]] | None = None
    """Send addressChange for this server with the new address (on the reactor thread); None when the API cannot
    reach the registry."""
    blocking: Callable[[Callable[[], Any]], Deferred[Any]] | None = None
    """Run blocking work (stores) off the reactor thread, for operations that run on it."""
    diagnostics: Diagnostics | None = None
    """The running server's diagnostics (global configuration, timestamping, OCSP); None without a server."""

    def credentials(self) -> CredentialStore:
        """Open the credential store (in the calling thread)."""
        return CredentialStore(self.credentials_path, ALL_ROLES)
