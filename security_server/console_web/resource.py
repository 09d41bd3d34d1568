"""The security server's console, mounted by its management API at ``/console/``.

Every page checks the signed-in user's roles on the server (:data:`~security_server.management.permissions.
CONSOLE_PERMISSIONS`); the login, session cookie, XSRF token and answers are :mod:`.base`'s. The Configuration and
Keys and certificates pages change things only through the API's own operations (:mod:`.configuration_pages`,
:mod:`.keys_pages`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Callable

from twisted.internet import defer

from security_server.admin.server_dir import ServerDirectory
from security_server.console_web import audit_pages, configuration_pages, keys_pages, overview_page
from security_server.console_web.base import (
    ConsoleBase,
    PageError,
    Reply,
    arg,
    download_name,
    fields_of,
    not_found_page,
    number,
)
from security_server.console_web.markup import NavItem
from security_server.console_web.overview_page import HealthSource
from security_server.console_web.traffic import Window
from security_server.core.config import LayeredConfig
from security_server.management.diagnostics import Diagnostics
from security_server.management.permissions import CONSOLE_PERMISSIONS
from security_server.management.resource import Executor, ManagementResource
from security_server.management.sessions import Session
from security_server.messagelog.asic_export import ASIC_MEDIA_TYPE, NotExportable

NAV = (
    (NavItem("/console/overview", "Overview", "overview"), "console.overview"),
    (NavItem("/console/configuration", "Configuration", "configuration"), "console.configuration"),
    (NavItem("/console/keys", "Keys and certificates", "keys"), "console.keys"),
    (NavItem("/console/audit", "Audit", "audit"), "console.audit"),
)


class ConsoleResource(ConsoleBase):
    """The console's pages for one security server (``executor`` runs store reads off the reactor thread)."""

    nav = NAV
    permissions = CONSOLE_PERMISSIONS

    def __init__(
        self,
        api: ManagementResource,
        server_dir: ServerDirectory,
        *,
        now: Callable[[], datetime],
        executor: Executor,
        config: LayeredConfig | None = None,
        health: HealthSource | None = None,
        diagnostics: Diagnostics | None = None,
        verification_conf: audit_pages.ConfSource | None = None,
    ) -> None:
        super().__init__(api)
        self._server_dir = server_dir
        self._now = now
        self._executor = executor
        self._config = config
        self._health = health
        self._diagnostics = diagnostics
        self._verification_conf = verification_conf or audit_pages.server_conf_source(server_dir.path)

    def pages(self, request: Any, method: str, session: Session, parts: tuple[str, ...]) -> Any:
        """Overview, Configuration, Keys and certificates, Audit."""
        if parts == ("overview",):
            self.method(method, "GET")
            self.allowed(session, "console.overview")
            return self._overview(request, session)
        if parts[:1] == ("configuration",):
            self.allowed(session, "console.configuration")
            return configuration_pages.answer(self, request, method, session, parts[1:])
        if parts[:1] == ("keys",):
            self.allowed(session, "console.keys")
            return keys_pages.answer(self, request, method, session, parts[1:])
        if parts[:1] == ("audit",):
            self.allowed(session, "console.audit")
            return self._audit(request, method, session, parts[1:])
        raise not_found_page()

    # --- overview -------------------------------------------------------------------------------------------

    def _overview(self, request: Any, session: Session) -> defer.Deferred[Reply]:
        window = Window.parse(arg(request, "window"))
        now = self._now()

        def read(health: overview_page.Health | None) -> defer.Deferred[overview_page.Overview]:
            return self._executor(lambda: overview_page.read_overview(
                self._server_dir, self._config, self._diagnostics, health, window, now))

        def show(found: overview_page.Overview) -> Reply:
            return self.page_reply(200, "Overview", overview_page.overview_body(found), session, "overview")

        return overview_page.ask_health(self._health).addCallback(read).addCallback(show)

    # --- audit ----------------------------------------------------------------------------------------------

    def _audit(self, request: Any, method: str, session: Session, parts: tuple[str, ...]) -> Any:
        directory = self._server_dir.path
        if parts == ():
            self.method(method, "GET")
            criteria = audit_pages.parse_criteria({name: arg(request, name) for name in audit_pages.FIELDS})

            def searched(results: list[Any] | None) -> Reply:
                body = audit_pages.search_body(criteria, results, session.xsrf_token)
                return self.page_reply(400 if criteria.errors else 200, "Audit", body, session, "audit")

            if criteria.errors or not criteria.asked:
                return searched(None)
            return self._executor(lambda: audit_pages.search(directory, criteria)).addCallback(searched)
        if parts == ("verify",):
            self.method(method, "POST")
            data = (fields_of(request).get("container") or [b""])[-1]
            if not data:
                raise PageError(400, "No container", "Choose an ASiC-E container file to verify.")
            return self._verify(session, f"uploaded file ({len(data)} bytes)", data)
        if len(parts) < 3 or parts[0] != "records" or len(parts) > 4:
            raise not_found_page()
        shard, record_id = number(parts[1]), number(parts[2])
        if shard > audit_pages.MAX_SHARD:
            raise not_found_page()
        action = parts[3] if len(parts) == 4 else ""
        if action not in ("", "container", "verify"):
            raise not_found_page()
        self.method(method, "POST" if action == "verify" else "GET")

        def found(detail: audit_pages.RecordDetail | None) -> Any:
            if detail is None:
                raise PageError(404, "No such record", f"There is no record {shard}:{record_id}.")
            if action == "":
                show = bool(session.roles & CONSOLE_PERMISSIONS["console.audit.bodies"])
                body = audit_pages.detail_body(detail, show_bodies=show, xsrf=session.xsrf_token)
                return self.page_reply(200, f"Record {shard}:{record_id}", body, session, "audit")
            try:
                name, data = audit_pages.container_of(detail)
            except NotExportable as err:
                raise PageError(409, "No container", str(err)) from err
            if action == "container":
                return Reply(200, data, ASIC_MEDIA_TYPE, ((b"Content-Disposition", download_name(name)),))
            return self._verify(session, name, data)

        return self._executor(lambda: audit_pages.read_record(directory, shard, record_id)).addCallback(found)

    def _verify(self, session: Session, subject: str, data: bytes) -> defer.Deferred[Reply]:
        now = self._now()

        def show(result: audit_pages.Verification) -> Reply:
            return self.page_reply(200, "Verification", audit_pages.verification_body(result), session, "audit")

        return self._executor(lambda: audit_pages.verify(subject, data, self._verification_conf, now)).addCallback(show)

