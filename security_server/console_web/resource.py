"""The console's one twisted.web resource, mounted by the management API at ``/console/``.

Every page checks the signed-in user's roles on the server (:data:`~security_server.management.permissions.
CONSOLE_PERMISSIONS`); the login, session cookie and XSRF token are the management API's own
(:meth:`~security_server.management.resource.ManagementResource.log_in`): a form POST must carry the session's
XSRF token in its ``_xsrf`` field (or the ``X-XSRF-TOKEN`` header). Without a session a page redirects to the
login page. Answers are never cached, framed or sniffed, and a Content-Security-Policy allows no script at all.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable
from urllib.parse import quote

import structlog
from twisted.internet import defer
from twisted.python.failure import Failure
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET

from security_server.admin.server_dir import ServerDirectory
from security_server.console_web import audit_pages, overview_page
from security_server.console_web.forms import Fields, request_fields, text_field
from security_server.console_web.markup import Markup, NavItem, esc, page
from security_server.console_web.overview_page import HealthSource
from security_server.console_web.stylesheet import CSS
from security_server.console_web.traffic import Window
from security_server.core.config import LayeredConfig
from security_server.management.diagnostics import Diagnostics
from security_server.management.errors import ApiError
from security_server.management.permissions import CONSOLE_PERMISSIONS
from security_server.management.resource import Executor, ManagementResource
from security_server.management.routing import split_path
from security_server.management.sessions import XSRF_HEADER, Session
from security_server.messagelog.asic_export import ASIC_MEDIA_TYPE, NotExportable

log = structlog.get_logger(__name__)

HTML = "text/html; charset=utf-8"
SECURITY_HEADERS = (
    (b"Cache-Control", b"no-store"),
    (b"X-Content-Type-Options", b"nosniff"),
    (b"X-Frame-Options", b"DENY"),
    (b"Referrer-Policy", b"no-referrer"),
    (b"Content-Security-Policy", b"default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
                                 b"frame-ancestors 'none'; base-uri 'none'"),
)
NAV = (
    (NavItem("/console/overview", "Overview", "overview"), "console.overview"),
    (NavItem("/console/audit", "Audit", "audit"), "console.audit"),
)
_NUMBER = re.compile(r"[0-9]{1,18}")


@dataclass(frozen=True, slots=True)
class Reply:
    """One answer: status, body, its type and any extra headers."""

    status: int
    body: bytes
    content_type: str = HTML
    headers: tuple[tuple[bytes, bytes], ...] = ()


class PageError(Exception):
    """Answer with an error page (403, 404, ...) saying ``message``."""

    def __init__(self, status: int, title: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.title = title
        self.message = message


def _forbidden() -> PageError:
    return PageError(403, "Forbidden", "Your role may not open this page.")


def _not_found() -> PageError:
    return PageError(404, "Not found", "There is no such page.")


def _arg(request: Any, name: str) -> str:
    return text_field(_fields(request), name)


def _fields(request: Any) -> Fields:
    """The request's form fields, parsed once."""
    found: Fields | None = getattr(request, "_console_fields", None)
    if found is None:
        found = request_fields(request)
        request._console_fields = found
    return found


def _number(text: str) -> int:
    if not _NUMBER.fullmatch(text):
        raise _not_found()
    return int(text)


def _download_name(name: str) -> bytes:
    ascii_name = re.sub(r"[^A-Za-z0-9._-]", "_", name)
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name, safe='')}".encode("ascii")


class ConsoleResource(Resource):
    """The console's pages for one security server (``executor`` runs store reads off the reactor thread)."""

    isLeaf = True

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
        super().__init__()  # type: ignore[no-untyped-call]  # Twisted leaves it unannotated
        self._api = api
        self._server_dir = server_dir
        self._now = now
        self._executor = executor
        self._config = config
        self._health = health
        self._diagnostics = diagnostics
        self._verification_conf = verification_conf or audit_pages.server_conf_source(server_dir.path)

    # --- answering ------------------------------------------------------------------------------------------

    def render(self, request: Any) -> Any:
        """Answer one request under ``/console`` (asynchronously)."""
        method = (request.method or b"").decode("ascii", "replace")
        answer: defer.Deferred[Reply] = defer.maybeDeferred(self._route, request, method)
        answer.addErrback(self._failed, request).addCallback(self._write, request)
        return NOT_DONE_YET

    def _write(self, reply: Reply, request: Any) -> None:
        if request.finished or getattr(request, "_disconnected", False):
            return
        request.setResponseCode(reply.status)
        for name, value in (*SECURITY_HEADERS, *reply.headers):
            request.responseHeaders.addRawHeader(name, value)
        request.setHeader(b"Content-Type", reply.content_type.encode("ascii"))
        request.write(reply.body)
        request.finish()

    def _failed(self, reason: Failure, request: Any) -> Reply:
        error = reason.value
        if isinstance(error, ApiError) and error.status == 404:
            error = _not_found()
        if not isinstance(error, PageError):
            log.error("console_page_failed", error=type(error).__name__)
            error = PageError(500, "Internal error", "The page could not be made; the server's log says why.")
        session = self._api.session_of(request)
        return self._page(error.status, error.title, Markup(f'<p class="error">{esc(error.message)}</p>'), session)

    def _nav(self, session: Session | None) -> tuple[NavItem, ...]:
        if session is None:
            return ()
        return tuple(item for item, permission in NAV if session.roles & CONSOLE_PERMISSIONS[permission])

    def _page(self, status: int, title: str, body: Markup, session: Session | None, current: str = "",
              headers: tuple[tuple[bytes, bytes], ...] = ()) -> Reply:
        return Reply(status, page(title, body, current=current, nav=self._nav(session),
                                  user=None if session is None else session.username,
                                  xsrf=None if session is None else session.xsrf_token), headers=headers)

    # --- routing and checks ---------------------------------------------------------------------------------

    def _route(self, request: Any, method: str) -> Any:
        """A :class:`Reply` or a Deferred firing with one."""
        parts = split_path((request.uri or b"/").decode("latin-1"))[1:]
        if parts == ("static", "console.css"):
            self._method(method, "GET")
            return Reply(200, CSS, "text/css; charset=utf-8")
        if parts == ("login",):
            return self._login(request, method)
        session = self._api.session_of(request)
        if session is None:
            if method == "GET":
                return Reply(303, b"", headers=((b"Location", b"/console/login"),))
            raise PageError(401, "Signed out", "Your session has ended; log in again.")
        if parts == ():
            self._method(method, "GET")
            return Reply(303, b"", headers=((b"Location", self._home(session).encode("ascii")),))
        if parts == ("logout",):
            self._method(method, "POST")
            self._xsrf(request, session)
            cleared = self._api.log_out(session, method, "/console/logout")
            return Reply(303, b"", headers=((b"Location", b"/console/login"), *cleared))
        if parts == ("overview",):
            self._method(method, "GET")
            self._allowed(session, "console.overview")
            return self._overview(request, session)
        if parts[:1] == ("audit",):
            self._allowed(session, "console.audit")
            return self._audit(request, method, session, parts[1:])
        raise _not_found()

    @staticmethod
    def _method(method: str, allowed: str) -> None:
        if method != allowed:
            raise PageError(405, "Method not allowed", f"This page answers {allowed} only.")

    @staticmethod
    def _allowed(session: Session, permission: str) -> None:
        if not session.roles & CONSOLE_PERMISSIONS[permission]:
            raise _forbidden()

    @staticmethod
    def _xsrf(request: Any, session: Session) -> None:
        presented = _arg(request, "_xsrf") or (request.getHeader(XSRF_HEADER) or b"").decode("latin-1")
        if not session.xsrf_matches(presented or None):
            raise PageError(403, "Forbidden", "The form did not carry this session's XSRF token; reload the page "
                                              "and try again.")

    def _home(self, session: Session) -> str:
        items = self._nav(session)
        return items[0].href if items else "/console/overview"  # which then says the role may not open it

    # --- login ----------------------------------------------------------------------------------------------

    def _login_page(self, status: int, message: str = "", username: str = "") -> Reply:
        error = f'<p class="error" role="alert" id="login-error">{esc(message)}</p>' if message else ""
        form = Markup(
            error + '<form method="post" action="/console/login">'
            '<div><label for="username">User name</label>'
            f'<input type="text" id="username" name="username" autocomplete="username" required maxlength="255"'
            f' value="{esc(username)}"></div>'
            '<div><label for="password">Password</label>'
            '<input type="password" id="password" name="password" autocomplete="current-password" required'
            ' maxlength="255"></div>'
            '<div><button type="submit">Log in</button></div></form>'
        )
        return self._page(status, "Log in", form, None)

    def _login(self, request: Any, method: str) -> Reply | defer.Deferred[Reply]:
        if method == "GET":
            return self._login_page(200)
        self._method(method, "POST")
        username, password = _arg(request, "username"), _arg(request, "password")
        if not username or not password or len(username) > 255 or len(password) > 255:
            return self._login_page(400, "Give a user name and a password.", username[:255])

        def done(session: Session) -> Reply:
            return Reply(303, b"", headers=((b"Location", self._home(session).encode("ascii")),
                                            *self._api.session_cookies(session)))

        def refused(reason: Failure) -> Reply:
            error = reason.value
            if isinstance(error, ApiError) and error.status == 429:
                return self._login_page(429, "Too many attempts: wait a while and try again.", username)
            if isinstance(error, ApiError) and error.status == 401:
                return self._login_page(401, "Wrong user name or password.", username)
            return self._login_page(500, "The login could not be checked; the server's log says why.", username)

        return self._api.log_in(request, username, password, "/console/login").addCallbacks(done, refused)

    # --- overview -------------------------------------------------------------------------------------------

    def _overview(self, request: Any, session: Session) -> defer.Deferred[Reply]:
        window = Window.parse(_arg(request, "window"))
        now = self._now()

        def read(health: overview_page.Health | None) -> defer.Deferred[overview_page.Overview]:
            return self._executor(lambda: overview_page.read_overview(
                self._server_dir, self._config, self._diagnostics, health, window, now))

        def show(found: overview_page.Overview) -> Reply:
            return self._page(200, "Overview", overview_page.overview_body(found), session, "overview")

        return overview_page.ask_health(self._health).addCallback(read).addCallback(show)

    # --- audit ----------------------------------------------------------------------------------------------

    def _audit(self, request: Any, method: str, session: Session, parts: tuple[str, ...]) -> Any:
        directory = self._server_dir.path
        if parts == ():
            self._method(method, "GET")
            criteria = audit_pages.parse_criteria({name: _arg(request, name) for name in audit_pages.FIELDS})

            def searched(results: list[Any] | None) -> Reply:
                body = audit_pages.search_body(criteria, results, session.xsrf_token)
                return self._page(400 if criteria.errors else 200, "Audit", body, session, "audit")

            if criteria.errors or not criteria.asked:
                return searched(None)
            return self._executor(lambda: audit_pages.search(directory, criteria)).addCallback(searched)
        if parts == ("verify",):
            self._method(method, "POST")
            self._xsrf(request, session)
            data = (_fields(request).get("container") or [b""])[-1]
            if not data:
                raise PageError(400, "No container", "Choose an ASiC-E container file to verify.")
            return self._verify(session, f"uploaded file ({len(data)} bytes)", data)
        if len(parts) < 3 or parts[0] != "records" or len(parts) > 4:
            raise _not_found()
        shard, record_id = _number(parts[1]), _number(parts[2])
        if shard > audit_pages.MAX_SHARD:
            raise _not_found()
        action = parts[3] if len(parts) == 4 else ""
        if action not in ("", "container", "verify"):
            raise _not_found()
        self._method(method, "POST" if action == "verify" else "GET")
        if action == "verify":
            self._xsrf(request, session)

        def found(detail: audit_pages.RecordDetail | None) -> Any:
            if detail is None:
                raise PageError(404, "No such record", f"There is no record {shard}:{record_id}.")
            if action == "":
                show = bool(session.roles & CONSOLE_PERMISSIONS["console.audit.bodies"])
                body = audit_pages.detail_body(detail, show_bodies=show, xsrf=session.xsrf_token)
                return self._page(200, f"Record {shard}:{record_id}", body, session, "audit")
            try:
                name, data = audit_pages.container_of(detail)
            except NotExportable as err:
                raise PageError(409, "No container", str(err)) from err
            if action == "container":
                return Reply(200, data, ASIC_MEDIA_TYPE, ((b"Content-Disposition", _download_name(name)),))
            return self._verify(session, name, data)

        return self._executor(lambda: audit_pages.read_record(directory, shard, record_id)).addCallback(found)

    def _verify(self, session: Session, subject: str, data: bytes) -> defer.Deferred[Reply]:
        now = self._now()

        def show(result: audit_pages.Verification) -> Reply:
            return self._page(200, "Verification", audit_pages.verification_body(result), session, "audit")

        return self._executor(lambda: audit_pages.verify(subject, data, self._verification_conf, now)).addCallback(show)

