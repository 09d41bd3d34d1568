"""Putting the registry's management API together: the site, and the service that serves it over HTTPS.

:func:`make_registry_management_site` builds the resource of the shared pieces
(:class:`~security_server.management.resource.ManagementResource`: authentication, roles, XSRF, audit) over the
registry's operations; :class:`RegistryManagementService` listens on ``[management] interface:port`` (default
4100, :mod:`.config`) with TLS 1.2+ and a certificate made in the registry's directory.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Callable, Iterable

import structlog

from central_registry.console_web.resource import RegistryConsole
from central_registry.management.context import RegistryContext
from central_registry.management.operations import registry_operations
from central_registry.publisher import Publisher
from central_registry.store import RegistryStore
from security_server.management.api import Operation
from security_server.management.audit import AUDIT_NAME, AuditLog
from security_server.management.config import ManagementConfig
from security_server.management.credentials import DB_NAME as CREDENTIALS_DB
from security_server.management.https_listener import HttpsService, listen_https
from security_server.management.resource import Executor, ManagementResource
from security_server.management.routing import Router
from security_server.management.sessions import SessionStore
from security_server.management.throttle import LoginThrottle
from security_server.proxy.bounded_request import BoundedSite

log = structlog.get_logger(__name__)

def make_registry_management_site(
    reactor: Any,
    root: Path,
    config: ManagementConfig,
    *,
    executor: Executor,
    open_store: Callable[[], AbstractContextManager[RegistryStore]],
    now: Callable[[], datetime] | None = None,
    database_url: str | None = None,
    publisher: Callable[[], Publisher | None] = lambda: None,
    operations: Iterable[Operation] | None = None,
    secure_cookies: bool = True,
) -> BoundedSite:
    """The registry API's site over the registry in ``root`` (``reactor`` gives time; ``executor`` runs the
    operations: the registry's store thread when it runs), with the console at ``/console/``."""
    clock = now or (lambda: datetime.fromtimestamp(reactor.seconds(), tz=UTC))
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    context = RegistryContext(root, root / CREDENTIALS_DB, clock, open_store, database_url, publisher)
    resource = ManagementResource(
        Router(registry_operations() if operations is None else operations),
        context,
        sessions=SessionStore(reactor, idle_seconds=config.session_idle_seconds),
        throttle=LoginThrottle(reactor),
        audit=AuditLog(root / AUDIT_NAME, clock),
        executor=executor,
        secure_cookies=secure_cookies,
    )
    resource.console = RegistryConsole(resource)
    return BoundedSite(resource, max_body_bytes=config.max_body_bytes, reactor=reactor)


class RegistryManagementService(HttpsService):
    """Serves the registry's API over HTTPS while running."""

    def __init__(self, reactor: Any, site: BoundedSite, root: Path, config: ManagementConfig) -> None:
        self.reactor = reactor
        self.site = site
        self.root = root
        self.config = config

    def startService(self) -> None:
        """Make the certificate if missing, then listen."""
        super().startService()  # type: ignore[no-untyped-call]
        self._port = listen_https(self.reactor, self.site, self.root, self.config)
        log.info("registry_management_api_started", interface=self.config.interface, port=self.port)
