"""The management API's one twisted.web resource: authentication, roles, XSRF, limits, audit, then the operation.

Every request goes through the same steps, in this order:

1. a body over the site's limit is 413 (:class:`~security_server.proxy.bounded_request.BoundedSite` stops reading
   it), an unknown path 404, a known path with another method 405;
2. ``POST /login`` and ``/logout`` are answered here (form or JSON login, rate-limited per user name and address;
   the session cookie ``JSESSIONID`` and the ``XSRF-TOKEN`` cookie);
3. credentials: ``Authorization: X-Road-ApiKey token=...``, or the session cookie (a write with a session needs
   ``X-XSRF-TOKEN`` equal to its token), or, for the API-key operations only, HTTP Basic with a user's password.
   None, or unknown: 401. Known, without a role the operation allows: 403;
4. the operation runs in a worker thread (it opens SQLite stores), or, for the few that only touch the running
   server's in-memory state (``in_reactor``), on the reactor thread after authentication;
5. every write (any method but GET), allowed or refused, is one line of the audit log.

Answers are JSON (or the bytes an operation returns), never cached, with X-Road's error object on failure.
"""

from __future__ import annotations

import base64
import json
from typing import Any, Callable, Mapping, Protocol, TypeVar
from urllib.parse import parse_qs, quote

import structlog
from twisted.internet import defer
from twisted.python.failure import Failure
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET

from security_server.core.errors import BusError
from security_server.management.api import (
    Access,
    ApiContext,
    ApiRequest,
    ApiResponse,
    AuthKind,
    JSON,
    Operation,
    Principal,
)
from security_server.management.audit import AuditEvent, AuditLog
from security_server.management.errors import ApiError, bad_request, error_json, forbidden, from_bus_error, unauthorized
from security_server.management.routing import Router, split_path
from security_server.management.sessions import SESSION_COOKIE, XSRF_COOKIE, XSRF_HEADER, Session, SessionStore
from security_server.management.throttle import LoginThrottle

log = structlog.get_logger(__name__)

_T = TypeVar("_T")
API_KEY_PREFIX = "X-Road-ApiKey token="
LOGIN_PATHS = (("login",), ("api", "v1", "login"))
LOGOUT_PATHS = (("logout",), ("api", "v1", "logout"))


class Executor(Protocol):
    """Runs blocking work off the reactor thread (``deferToThread``; tests run it at once)."""

    def __call__(self, work: Callable[[], _T]) -> defer.Deferred[_T]: ...


class ManagementResource(Resource):
    """The whole management API as one leaf resource."""

    isLeaf = True

    def __init__(
        self,
        router: Router,
        context: ApiContext,
        *,
        sessions: SessionStore,
        throttle: LoginThrottle,
        audit: AuditLog,
        executor: Executor,
        secure_cookies: bool = True,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # Twisted leaves it unannotated
        self._router = router
        self._context = context
        self._sessions = sessions
        self._throttle = throttle
        self._audit = audit
        self._executor = executor
        self._secure = secure_cookies
        self.console: Resource | None = None
        """The browser console mounted at ``/console/`` (security_server/console_web), when there is one."""

    # --- answering ------------------------------------------------------------------------------------------------

    @staticmethod
    def _common_headers(request: Any) -> None:
        request.setHeader(b"Cache-Control", b"no-store")
        request.setHeader(b"X-Content-Type-Options", b"nosniff")

    def _write(self, request: Any, response: ApiResponse) -> None:
        if request.finished or getattr(request, "_disconnected", False):
            return
        request.setResponseCode(response.status)
        self._common_headers(request)
        for name, value in response.headers:
            request.responseHeaders.addRawHeader(name, value)
        if response.raw is not None:
            request.setHeader(b"Content-Type", response.content_type.encode("ascii"))
            request.write(response.raw)
        elif response.status != 204 and response.body is not None:
            request.setHeader(b"Content-Type", JSON.encode("ascii"))
            request.write(json.dumps(response.body, separators=(",", ":")).encode("utf-8"))
        request.finish()

    def _write_error(self, request: Any, error: ApiError) -> None:
        if request.finished or getattr(request, "_disconnected", False):
            return
        request.setResponseCode(error.status)
        self._common_headers(request)
        request.setHeader(b"Content-Type", JSON.encode("ascii"))
        if error.status == 401:
            request.setHeader(b"WWW-Authenticate", b'X-Road-ApiKey realm="fedbus"')
        request.write(error_json(error))
        request.finish()

    # --- the steps ------------------------------------------------------------------------------------------------

    def render(self, request: Any) -> Any:
        """Answer one request (asynchronously)."""
        method = (request.method or b"").decode("ascii", "replace")
        path = (request.uri or b"/").decode("latin-1")
        try:
            if getattr(request, "body_too_large", False):
                raise ApiError(413, "request_too_large")
            parts = split_path(path)
            if self.console is not None and parts[:1] == ("console",):
                return self.console.render(request)  # type: ignore[no-untyped-call]  # Twisted leaves it unannotated
            if parts in LOGIN_PATHS:
                return self._login(request, method)
            if parts in LOGOUT_PATHS:
                return self._logout(request, method)
            operation, params = self._router.match(method, path)
        except ApiError as err:
            self._write_error(request, err)
            return NOT_DONE_YET
        self._dispatch(request, method, path, operation, params)
        return NOT_DONE_YET

    def _session(self, request: Any) -> Session | None:
        cookie = request.getCookie(SESSION_COOKIE)
        return None if cookie is None else self._sessions.touch(cookie.decode("latin-1"))

    session_of = _session
    """The live session of the request's cookie (None: none, unknown or expired); the console uses it too."""

    def _api_request(self, request: Any, method: str, path: str, params: Any, principal: Principal | None) -> ApiRequest:
        query_text = path.split("?", 1)[1] if "?" in path else ""
        query = {k: tuple(v) for k, v in parse_qs(query_text, keep_blank_values=True).items()}
        content = request.content
        body = content.getvalue() if content is not None and hasattr(content, "getvalue") else b""
        content_type = request.getHeader(b"Content-Type")
        return ApiRequest(method, path.split("?", 1)[0], params, query, body,
                          None if content_type is None else content_type.decode("latin-1"), principal)

    def _dispatch(self, request: Any, method: str, path: str, operation: Operation, params: Any) -> None:
        header = request.getHeader(b"Authorization")
        session = None if header is not None else self._session(request)
        audit_name = "anonymous"
        audit_auth = AuthKind.NONE
        if session is not None:
            audit_name, audit_auth = session.username, AuthKind.SESSION

        def audit(status: int, code: str | None) -> None:
            if operation.writes:
                self._audit.record(AuditEvent(audit_name, audit_auth.value, method, path.split("?", 1)[0],
                                              operation.name, status, code))

        def fail(error: ApiError) -> None:
            audit(error.status, error.code)
            self._write_error(request, error)

        try:
            if session is not None and operation.writes:
                if not session.xsrf_matches(_header_text(request, XSRF_HEADER)):
                    raise ApiError(403, "xsrf_token_invalid")
            api_request = self._api_request(request, method, path, params, None)
        except ApiError as err:
            fail(err)
            return

        def refused(principal: Principal, err: ApiError | BusError) -> _Refused:
            return _Refused(principal, err if isinstance(err, ApiError) else from_bus_error(err))

        def handle(principal: Principal) -> ApiResponse:
            try:
                answer = operation.handler(self._context, _with_principal(api_request, principal))
            except (ApiError, BusError) as err:
                raise refused(principal, err) from err
            if isinstance(answer, defer.Deferred):
                raise TypeError(f"{operation.name} answered a Deferred from a worker thread")
            return answer

        def work() -> tuple[Principal, ApiResponse | None]:
            principal = self._authenticate(operation, header, session)
            if not principal.roles & operation.roles:
                raise _Refused(principal, forbidden(operation.name))
            # An in_reactor operation runs back on the reactor thread, in done().
            return principal, None if operation.in_reactor else handle(principal)

        def answer(principal: Principal, response: ApiResponse) -> None:
            nonlocal audit_name, audit_auth
            audit_name, audit_auth = principal.name, principal.auth
            audit(response.status, None)
            self._write(request, response)

        def done(result: tuple[Principal, ApiResponse | None]) -> Any:
            principal, response = result
            if response is not None:
                answer(principal, response)
                return None

            def in_reactor_failed(reason: Failure) -> Failure:
                error = reason.value
                if isinstance(error, (ApiError, BusError)):
                    raise refused(principal, error)
                return reason

            running: defer.Deferred[Any] = defer.maybeDeferred(
                operation.handler, self._context, _with_principal(api_request, principal)
            )
            return running.addErrback(in_reactor_failed).addCallback(lambda response: answer(principal, response))

        def failed(reason: Failure) -> None:
            nonlocal audit_name, audit_auth
            error = reason.value
            if isinstance(error, _Refused):
                if error.principal is not None:
                    audit_name, audit_auth = error.principal.name, error.principal.auth
                fail(error.error)
            elif isinstance(error, ApiError):
                fail(error)
            elif isinstance(error, BusError):
                fail(from_bus_error(error))
            else:
                log.error("management_operation_failed", operation=operation.name,
                          error=type(error).__name__)
                fail(ApiError(500, "internal_error"))

        self._executor(work).addCallback(done).addErrback(failed)

    def _authenticate(self, operation: Operation, header: bytes | None, session: Session | None) -> Principal:
        """Runs in the worker thread (an API key or a password is checked against the database)."""
        if session is not None:
            return Principal(session.username, session.roles, AuthKind.SESSION)
        if header is None:
            raise _Refused(None, unauthorized())
        text = header.decode("latin-1").strip()
        if text.startswith(API_KEY_PREFIX):
            if operation.access is Access.KEY_ADMIN:
                raise _Refused(None, unauthorized())
            with self._context.credentials() as store:
                found = store.api_key_for(text[len(API_KEY_PREFIX):].strip())
            if found is None:
                raise _Refused(None, unauthorized())
            return Principal(f"api-key:{found.id}", found.roles, AuthKind.API_KEY)
        if text.lower().startswith("basic ") and operation.access is Access.KEY_ADMIN:
            try:
                username, _, password = base64.b64decode(text[6:], validate=True).decode("utf-8").partition(":")
            except (ValueError, UnicodeDecodeError) as err:
                raise _Refused(None, unauthorized()) from err
            with self._context.credentials() as store:
                roles = store.authenticate(username, password)
            if roles is None:
                raise _Refused(None, unauthorized())
            return Principal(username, roles, AuthKind.BASIC)
        raise _Refused(None, unauthorized())

    # --- one operation for the console ---------------------------------------------------------------------------

    def perform(
        self,
        session: Session,
        operation_id: str,
        params: Mapping[str, str] | None = None,
        *,
        body: Any = None,
        raw: bytes = b"",
        content_type: str | None = None,
        query: Mapping[str, tuple[str, ...]] | None = None,
    ) -> defer.Deferred[ApiResponse]:
        """Run one operation for a console session as the API runs it for that session (the console checked its
        XSRF field): the operation's roles, the worker thread (or the reactor for an ``in_reactor`` one), the audit
        line of a write. ``body`` is sent as JSON, else ``raw``. Fails with the :class:`ApiError` the API answers."""
        found = [op for op in self._router.operations if op.name == operation_id]
        if len(found) != 1:
            raise KeyError(operation_id)
        operation = found[0]
        given = dict(params or {})
        path = "/".join(quote(given[s[1:-1]], safe="") if s.startswith("{") else s for s in operation.path.split("/"))
        principal = Principal(session.username, session.roles, AuthKind.SESSION)
        data = raw if body is None else json.dumps(body).encode("utf-8")
        api_request = ApiRequest(operation.method, path, given, dict(query or {}), data,
                                 JSON if body is not None else content_type, principal)

        def audit(status: int, code: str | None) -> None:
            if operation.writes:
                self._audit.record(AuditEvent(session.username, AuthKind.SESSION.value, operation.method, path,
                                              operation.name, status, code))

        def ok(response: ApiResponse) -> ApiResponse:
            audit(response.status, None)
            return response

        def refused(reason: Failure) -> ApiResponse:
            error = reason.value
            if isinstance(error, BusError):
                error = from_bus_error(error)
            elif not isinstance(error, ApiError):
                log.error("management_operation_failed", operation=operation.name, error=type(error).__name__)
                error = ApiError(500, "internal_error")
            audit(error.status, error.code)
            raise error

        if not principal.roles & operation.roles:
            return defer.fail(forbidden(operation.name)).addErrback(refused)
        handler: Callable[[], Any] = lambda: operation.handler(self._context, api_request)
        running: defer.Deferred[Any] = (defer.maybeDeferred(handler) if operation.in_reactor
                                        else self._executor(handler))
        return running.addCallbacks(ok, refused)

    # --- login and logout -------------------------------------------------------------------------------------------

    def _login(self, request: Any, method: str) -> Any:
        if method != "POST":
            raise ApiError(405, "method_not_allowed", method)
        content = request.content
        body = content.getvalue() if content is not None and hasattr(content, "getvalue") else b""
        content_type = (request.getHeader(b"Content-Type") or b"").decode("latin-1").split(";")[0].strip().lower()
        username, password = _login_fields(content_type, body)
        path = "/" + "/".join(split_path((request.uri or b"/").decode("latin-1")))

        def done(session: Session) -> None:
            self._write(request, ApiResponse(200, headers=self.session_cookies(session)))

        def failed(reason: Failure) -> None:
            error = reason.value
            self._write_error(request, error if isinstance(error, ApiError) else ApiError(500, "internal_error"))

        self.log_in(request, username, password, path).addCallbacks(done, failed)
        return NOT_DONE_YET

    def log_in(self, request: Any, username: str, password: str, path: str) -> defer.Deferred[Session]:
        """Check a form login (rate-limited per user name and address, audited) and start its session; fails with
        :class:`ApiError` 429 or 401 (the API's ``/login`` and the console's login page both use it)."""
        peer = request.getClientAddress()
        address_key = f"address:{getattr(peer, 'host', '?')}"
        user_key = f"user:{username}"

        def audit(status: int, code: str | None) -> None:
            self._audit.record(AuditEvent(username, AuthKind.NONE.value, "POST", path, "login", status, code))

        if not self._throttle.allowed(user_key, address_key):
            audit(429, "too_many_login_attempts")
            return defer.fail(ApiError(429, "too_many_login_attempts"))

        def check() -> frozenset[str] | None:
            with self._context.credentials() as store:
                return store.authenticate(username, password)

        def done(roles: frozenset[str] | None) -> Session:
            if roles is None:
                self._throttle.failed(user_key, address_key)
                audit(401, "unauthorized")
                raise unauthorized()
            self._throttle.succeeded(user_key)
            session = self._sessions.create(username, roles)
            audit(200, None)
            return session

        def failed(reason: Failure) -> Failure:
            if isinstance(reason.value, ApiError):
                return reason
            log.error("management_login_failed", error=type(reason.value).__name__)
            audit(500, "internal_error")
            raise ApiError(500, "internal_error")

        return self._executor(check).addCallback(done).addErrback(failed)

    def session_cookies(self, session: Session) -> tuple[tuple[bytes, bytes], ...]:
        """The ``Set-Cookie`` headers that start ``session`` in the browser (session id and XSRF token)."""
        secure = b"; Secure" if self._secure else b""
        return (
            (b"Set-Cookie", SESSION_COOKIE + b"=" + session.id.encode() + b"; Path=/; HttpOnly; SameSite=Strict" + secure),
            (b"Set-Cookie", XSRF_COOKIE + b"=" + session.xsrf_token.encode() + b"; Path=/; SameSite=Strict" + secure),
        )

    def log_out(self, session: Session, method: str, path: str) -> tuple[tuple[bytes, bytes], ...]:
        """End ``session`` (audited); the ``Set-Cookie`` headers that clear its cookies."""
        self._sessions.end(session.id)
        self._audit.record(AuditEvent(session.username, AuthKind.SESSION.value, method, path, "logout", 204))
        expired = b"=; Path=/; Max-Age=0"
        return (b"Set-Cookie", SESSION_COOKIE + expired), (b"Set-Cookie", XSRF_COOKIE + expired)

    def _logout(self, request: Any, method: str) -> Any:
        if method not in ("POST", "DELETE"):
            raise ApiError(405, "method_not_allowed", method)
        session = self._session(request)
        if session is None:
            raise unauthorized()
        if not session.xsrf_matches(_header_text(request, XSRF_HEADER)):
            raise ApiError(403, "xsrf_token_invalid")
        self._write(request, ApiResponse(204, headers=self.log_out(session, method, "/logout")))
        return NOT_DONE_YET


class _Refused(Exception):
    """An :class:`ApiError` with the caller it was for (None before authentication)."""

    def __init__(self, principal: Principal | None, error: ApiError) -> None:
        super().__init__(error.code)
        self.principal = principal
        self.error = error


def _header_text(request: Any, name: bytes) -> str | None:
    value = request.getHeader(name)
    return None if value is None else value.decode("latin-1")


def _with_principal(request: ApiRequest, principal: Principal) -> ApiRequest:
    return ApiRequest(request.method, request.path, request.params, request.query, request.body,
                      request.content_type, principal)


def _login_fields(content_type: str, body: bytes) -> tuple[str, str]:
    """User name and password from a form (X-Road's UI) or a JSON ``LoginRequest``."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as err:
        raise bad_request("invalid_request_body") from err
    if content_type == "application/x-www-form-urlencoded":
        fields = {k: v[-1] for k, v in parse_qs(text, keep_blank_values=True).items()}
    else:
        try:
            data = json.loads(text)
        except ValueError as err:
            raise bad_request("invalid_json") from err
        if not isinstance(data, dict):
            raise bad_request("invalid_json")
        unknown = sorted(set(data) - {"username", "password"})
        if unknown:
            raise bad_request("unknown_field", *unknown)
        fields = data
    username, password = fields.get("username"), fields.get("password")
    if not isinstance(username, str) or not isinstance(password, str) or not username or not password:
        raise bad_request("missing_field", "username", "password")
    if len(username) > 255 or len(password) > 255:
        raise bad_request("invalid_field", "username", "password")
    return username, password
