"""What every console shares (the security server's and the registry's): answering, login, logout, roles, XSRF.

A console is a leaf twisted.web resource mounted by a management API's
:class:`~security_server.management.resource.ManagementResource` at ``/console/``: the login, session cookie and
XSRF token are that API's own (:meth:`~security_server.management.resource.ManagementResource.log_in`), and its
forms change things through :meth:`~security_server.management.resource.ManagementResource.perform`, the API's own
operations. A form POST must carry the session's XSRF token in its ``_xsrf`` field (or the ``X-XSRF-TOKEN``
header). Without a session a page redirects to the login page. Answers are never cached, framed or sniffed, and a
Content-Security-Policy allows no script at all.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Mapping
from urllib.parse import quote

import structlog
from twisted.internet import defer
from twisted.python.failure import Failure
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET

from security_server.console_web.api_forms import describe
from security_server.console_web.forms import Fields, request_fields, text_field
from security_server.console_web.markup import Markup, NavItem, esc, page
from security_server.console_web.stylesheet import CSS
from security_server.management.errors import ApiError
from security_server.management.resource import ManagementResource
from security_server.management.routing import split_path
from security_server.management.sessions import XSRF_HEADER, Session

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


def forbidden_page() -> PageError:
    """The page a role may not open."""
    return PageError(403, "Forbidden", "Your role may not open this page.")


def not_found_page() -> PageError:
    """A page that does not exist."""
    return PageError(404, "Not found", "There is no such page.")


def fields_of(request: Any) -> Fields:
    """The request's form fields, parsed once."""
    found: Fields | None = getattr(request, "_console_fields", None)
    if found is None:
        found = request_fields(request)
        request._console_fields = found
    return found


def arg(request: Any, name: str) -> str:
    """One form or query field as text ('' when absent)."""
    return text_field(fields_of(request), name)


def number(text: str) -> int:
    """A path segment that must be a number (404 otherwise)."""
    if not _NUMBER.fullmatch(text):
        raise not_found_page()
    return int(text)


def download_name(name: str) -> bytes:
    """A ``Content-Disposition`` value that saves the answer as ``name``."""
    ascii_name = re.sub(r"[^A-Za-z0-9._-]", "_", name)
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name, safe='')}".encode("ascii")


def see_other(location: str, *headers: tuple[bytes, bytes]) -> Reply:
    """303 to ``location`` (a path of this console: the answer to a form that changed something)."""
    return Reply(303, b"", headers=((b"Location", location.encode("ascii")), *headers))


class ConsoleBase(Resource):
    """A console over one management API: its navigation (each item with the permission that shows it), its
    permission table, and :meth:`pages` for everything but the login, logout and stylesheet."""

    isLeaf = True
    nav: tuple[tuple[NavItem, str], ...] = ()
    permissions: Mapping[str, frozenset[Any]] = {}

    def __init__(self, api: ManagementResource) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # Twisted leaves it unannotated
        self._api = api

    @property
    def api(self) -> ManagementResource:
        """The management API whose operations the forms call."""
        return self._api

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
            error = not_found_page()
        elif isinstance(error, ApiError) and error.status == 403:
            error = forbidden_page()
        elif isinstance(error, ApiError) and error.status < 500:
            error = PageError(error.status, "Refused", describe(error))
        if not isinstance(error, PageError):
            log.error("console_page_failed", error=type(error).__name__)
            error = PageError(500, "Internal error", "The page could not be made; the server's log says why.")
        session = self._api.session_of(request)
        return self.page_reply(error.status, error.title, Markup(f'<p class="error">{esc(error.message)}</p>'),
                               session)

    def nav_items(self, session: Session | None) -> tuple[NavItem, ...]:
        """The navigation the session's roles may open."""
        if session is None:
            return ()
        return tuple(item for item, permission in self.nav if self.may(session, permission))

    def may(self, session: Session, permission: str) -> bool:
        """Whether the session's roles have ``permission``."""
        return bool(session.roles & self.permissions[permission])

    def page_reply(self, status: int, title: str, body: Markup, session: Session | None, current: str = "",
                   headers: tuple[tuple[bytes, bytes], ...] = ()) -> Reply:
        """A whole page as an answer."""
        return Reply(status, page(title, body, current=current, nav=self.nav_items(session),
                                  user=None if session is None else session.username,
                                  xsrf=None if session is None else session.xsrf_token), headers=headers)

    # --- routing and checks ---------------------------------------------------------------------------------

    def _route(self, request: Any, method: str) -> Any:
        """A :class:`Reply` or a Deferred firing with one."""
        parts = split_path((request.uri or b"/").decode("latin-1"))[1:]
        if parts == ("static", "console.css"):
            self.method(method, "GET")
            return Reply(200, CSS, "text/css; charset=utf-8")
        if parts == ("login",):
            return self._login(request, method)
        session = self._api.session_of(request)
        if session is None:
            if method == "GET":
                return see_other("/console/login")
            raise PageError(401, "Signed out", "Your session has ended; log in again.")
        if parts == ():
            self.method(method, "GET")
            return see_other(self._home(session))
        if parts == ("logout",):
            self.method(method, "POST")
            self.check_xsrf(request, session)
            cleared = self._api.log_out(session, method, "/console/logout")
            return see_other("/console/login", *cleared)
        if method == "POST":
            self.check_xsrf(request, session)
        return self.pages(request, method, session, parts)

    def pages(self, request: Any, method: str, session: Session, parts: tuple[str, ...]) -> Any:
        """The console's own pages (a POST's XSRF token is already checked): a Reply or a Deferred of one."""
        raise not_found_page()

    @staticmethod
    def method(method: str, allowed: str) -> None:
        """405 unless the request's method is ``allowed``."""
        if method != allowed:
            raise PageError(405, "Method not allowed", f"This page answers {allowed} only.")

    def allowed(self, session: Session, permission: str) -> None:
        """403 unless the session's roles have ``permission``."""
        if not self.may(session, permission):
            raise forbidden_page()

    @staticmethod
    def check_xsrf(request: Any, session: Session) -> None:
        """403 unless the form carries the session's XSRF token."""
        presented = arg(request, "_xsrf") or (request.getHeader(XSRF_HEADER) or b"").decode("latin-1")
        if not session.xsrf_matches(presented or None):
            raise PageError(403, "Forbidden", "The form did not carry this session's XSRF token; reload the page "
                                              "and try again.")

    def _home(self, session: Session) -> str:
        items = self.nav_items(session)
        return items[0].href if items else (self.nav[0][0].href if self.nav else "/console/login")

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
        return self.page_reply(status, "Log in", form, None)

    def _login(self, request: Any, method: str) -> Reply | defer.Deferred[Reply]:
        if method == "GET":
            return self._login_page(200)
        self.method(method, "POST")
        username, password = arg(request, "username"), arg(request, "password")
        if not username or not password or len(username) > 255 or len(password) > 255:
            return self._login_page(400, "Give a user name and a password.", username[:255])

        def done(session: Session) -> Reply:
            return see_other(self._home(session), *self._api.session_cookies(session))

        def refused(reason: Failure) -> Reply:
            error = reason.value
            if isinstance(error, ApiError) and error.status == 429:
                return self._login_page(429, "Too many attempts: wait a while and try again.", username)
            if isinstance(error, ApiError) and error.status == 401:
                return self._login_page(401, "Wrong user name or password.", username)
            return self._login_page(500, "The login could not be checked; the server's log says why.", username)

        return self._api.log_in(request, username, password, "/console/login").addCallbacks(done, refused)
