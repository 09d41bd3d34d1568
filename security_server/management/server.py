"""Putting the management API together: the site, and the service that serves it over HTTPS.

:func:`make_management_site` builds the resource tree with its stores, sessions, throttle and audit log (tests
use it over an in-memory transport); :class:`ManagementService` listens on ``[management] interface:port`` with
TLS 1.2+ and the directory's certificate (:mod:`security_server.management.tls`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Callable, Iterable

import structlog
from twisted.internet import defer
from twisted.internet.threads import deferToThreadPool

from security_server.admin import registration as admin_registration
from security_server.admin.server_dir import ServerDirectory
from security_server.console_web.resource import ConsoleResource
from security_server.core.config import LayeredConfig
from security_server.core.evidence import VerificationConf
from security_server.core.identifiers import ClientId
from security_server.management.api import Operation
from security_server.management.context import MaintenanceSwitch, OperationContext
from security_server.management.diagnostics import Diagnostics
from security_server.management.https_listener import HttpsService, listen_https
from security_server.management.audit import AUDIT_NAME, AuditLog
from security_server.management.config import ManagementConfig
from security_server.management.credentials import DB_NAME as CREDENTIALS_DB
from security_server.management.operations import security_server_operations
from security_server.management.resource import Executor, ManagementResource
from security_server.management.routing import Router
from security_server.management.sessions import SessionStore
from security_server.management.throttle import LoginThrottle
from security_server.edge.health_checker import HealthChecker
from security_server.edge.http_fetch import fetch
from security_server.proxy.bounded_request import BoundedSite

log = structlog.get_logger(__name__)


def thread_executor(reactor: Any) -> Executor:
    """Run operations in the reactor's thread pool."""

    def run(work: Callable[[], Any]) -> Any:
        return deferToThreadPool(reactor, reactor.getThreadPool(), work)

    return run


MAX_DESCRIPTION_FETCH_BYTES = 10 * 1024 * 1024
DESCRIPTION_FETCH_SECONDS = 60.0


def description_fetcher(reactor: Any) -> Callable[[str], Any]:
    """Fetch a WSDL or OpenAPI document by URL (http or https), bounded in size and time."""
    from twisted.web.client import Agent

    agent = Agent(reactor)  # type: ignore[no-untyped-call]

    def fetch_description(url: str) -> Any:
        answer = fetch(agent, reactor, url, what="the service description", max_bytes=MAX_DESCRIPTION_FETCH_BYTES,
                       timeout_seconds=DESCRIPTION_FETCH_SECONDS)
        return answer.addCallback(lambda got: got.body)

    return fetch_description


def make_management_site(
    reactor: Any,
    server_dir: ServerDirectory,
    config: ManagementConfig,
    *,
    executor: Executor | None = None,
    operations: Iterable[Operation] | None = None,
    now: Callable[[], datetime] | None = None,
    secure_cookies: bool = True,
    layered_config: LayeredConfig | None = None,
    maintenance: MaintenanceSwitch | None = None,
    fetch: Callable[[str], Any] | None = None,
    global_conf: Callable[[], Any] | None = None,
    register_client: Callable[[ClientId], Any] | None = None,
    diagnostics: Diagnostics | None = None,
    register_server: Callable[[str], Any] | None = None,
    unregister_client: Callable[[ClientId], Any] | None = None,
    unregister_server: Callable[[str], Any] | None = None,
    change_address: Callable[[str], Any] | None = None,
    verification_conf: Callable[[datetime], VerificationConf] | None = None,
) -> BoundedSite:
    """The management API's site for one security server (``reactor`` gives time and the thread pool), with the
    console at ``/console/`` (``verification_conf``: what it verifies containers with, by default the server's)."""
    clock = now or (lambda: datetime.fromtimestamp(reactor.seconds(), tz=UTC))
    server_dir.path.mkdir(mode=0o700, parents=True, exist_ok=True)
    run = executor or thread_executor(reactor)
    context = OperationContext(
        server_dir, server_dir.path / CREDENTIALS_DB, clock, layered_config, maintenance,
        global_conf=global_conf, fetch=fetch if fetch is not None else description_fetcher(reactor), blocking=run,
        register_client=register_client, diagnostics=diagnostics, register_server=register_server,
        unregister_client=unregister_client, unregister_server=unregister_server, change_address=change_address,
    )
    resource = ManagementResource(
        Router(security_server_operations() if operations is None else operations),
        context,
        sessions=SessionStore(reactor, idle_seconds=config.session_idle_seconds),
        throttle=LoginThrottle(reactor),
        audit=AuditLog(server_dir.path / AUDIT_NAME, clock),
        executor=run,
        secure_cookies=secure_cookies,
    )
    resource.console = ConsoleResource(
        resource, server_dir, now=clock, executor=run, config=layered_config, diagnostics=diagnostics,
        health=maintenance if isinstance(maintenance, HealthChecker) else None, verification_conf=verification_conf,
    )
    return BoundedSite(resource, max_body_bytes=config.max_body_bytes, reactor=reactor)


class ManagementService(HttpsService):
    """Serves the management API over HTTPS while running."""

    def __init__(
        self, reactor: Any, server_dir: ServerDirectory, config: ManagementConfig,
        layered_config: LayeredConfig | None = None,
        maintenance: MaintenanceSwitch | None = None,
        global_conf: Callable[[], Any] | None = None,
        diagnostics: Diagnostics | None = None,
    ) -> None:
        self.reactor = reactor
        self.server_dir = server_dir
        self.config = config
        self.layered_config = layered_config
        self.maintenance = maintenance
        self.global_conf = global_conf
        self.diagnostics = diagnostics

        def register(client: ClientId) -> Any:
            return defer.Deferred.fromCoroutine(admin_registration.register_client(reactor, server_dir, client))

        def register_own(address: str) -> Any:
            return defer.Deferred.fromCoroutine(admin_registration.register_server(reactor, server_dir, address))

        def unregister(client: ClientId) -> Any:
            return defer.Deferred.fromCoroutine(admin_registration.unregister_client(reactor, server_dir, client))

        def unregister_own(cert_hash: str) -> Any:
            return defer.Deferred.fromCoroutine(admin_registration.unregister_server_cert(
                reactor, server_dir, cert_hash, layered_config))

        self.register_client = register
        self.register_server = register_own
        self.unregister_client = unregister
        def change_own_address(address: str) -> Any:
            return defer.Deferred.fromCoroutine(admin_registration.change_address(reactor, server_dir, address))

        self.unregister_server = unregister_own
        self.change_address = change_own_address

    def startService(self) -> None:
        """Make the certificate if missing, then listen."""
        super().startService()  # type: ignore[no-untyped-call]
        site = make_management_site(
            self.reactor, self.server_dir, self.config, layered_config=self.layered_config, maintenance=self.maintenance,
            global_conf=self.global_conf, register_client=self.register_client, diagnostics=self.diagnostics,
            register_server=self.register_server, unregister_client=self.unregister_client,
            unregister_server=self.unregister_server, change_address=self.change_address,
        )
        self._port = listen_https(self.reactor, site, self.server_dir.path, self.config)
        log.info("management_api_started", interface=self.config.interface, port=self.port)


def make_management_service(
    reactor: Any,
    server_dir: ServerDirectory,
    config: LayeredConfig,
    *,
    maintenance: MaintenanceSwitch | None = None,
    global_conf: Callable[[], Any] | None = None,
) -> ManagementService:
    """The service :mod:`security_server.service` adds to the security server's MultiService (``[management]``
    for where it listens, the ``[pkcs11:NAME]`` sections for the tokens it lists, the health checker for the
    maintenance switch, the configuration client's ``current`` for the approved timestamping services)."""
    return ManagementService(reactor, server_dir, ManagementConfig.from_config(config), config, maintenance, global_conf)
