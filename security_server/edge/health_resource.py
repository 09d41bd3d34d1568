"""The plain-HTTP health endpoint (ig-xlb §3.4) with ``/metrics`` beside it on the same port.

``GET`` on any path but ``/metrics`` answers the health verdict: **200** with an empty body when every check
passes, **500** with a one-line reason naming the failed check, **503** ``Health check interface is in
maintenance mode`` while maintenance is on. ``GET /metrics`` answers the Prometheus text exposition. Nothing here
needs a credential: the port is for a load balancer and a scraper (ARCHITECTURE.md, "Management HTTP"), and
it reveals nothing beyond which part is unfit. ``/checks`` (each check's verdict, as JSON) and ``/maintenance``
answer loopback callers only: they are the server's own CLI's (``fedbus server status``, ``maintenance``).
"""

from __future__ import annotations

import json
from typing import Any, Callable

import structlog
from twisted.python.failure import Failure
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request

from security_server.edge.health_checker import HealthChecker, Status, Verdict

_log = structlog.get_logger("fedbus.healthcheck")

METRICS_CONTENT_TYPE = b"text/plain; version=0.0.4; charset=utf-8"


class MetricsResource(Resource):
    """``/metrics``: the exposition ``render`` returns (e.g. :meth:`ServerMetrics.render`)."""

    isLeaf = True

    def __init__(self, render: Callable[[], bytes], content_type: bytes = METRICS_CONTENT_TYPE) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # Twisted leaves it unannotated
        self._render = render
        self._content_type = content_type

    def render_GET(self, request: Request) -> bytes:
        reply: Any = request  # Twisted leaves Request unannotated
        try:
            body = self._render()
        except Exception as err:
            _log.error("metrics_render_failed", error=f"{type(err).__name__}: {err}")
            reply.setResponseCode(500)
            reply.setHeader(b"content-type", b"text/plain; charset=utf-8")
            return b"metrics unavailable\n"
        reply.setHeader(b"content-type", self._content_type)
        return body


class HealthResource(Resource):
    """The health verdict on every path; ``/metrics`` when a metrics renderer is given."""

    def __init__(self, checker: HealthChecker, metrics: Callable[[], bytes] | None = None) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # Twisted leaves it unannotated
        self._checker = checker
        self._metrics = None if metrics is None else MetricsResource(metrics)

    def getChild(self, path: bytes, request: Request) -> Resource:
        if path == b"metrics" and self._metrics is not None and not request.postpath:
            return self._metrics
        return self

    def render_HEAD(self, request: Request) -> int:
        return self.render_GET(request)

    def render_GET(self, request: Request) -> int:
        reply: Any = request  # Twisted leaves Request unannotated
        gone = {"yes": False}
        reply.notifyFinish().addErrback(lambda _: gone.update(yes=True))
        reply.setHeader(b"content-type", b"text/plain; charset=utf-8")
        reply.setHeader(b"cache-control", b"no-store")

        def answer(verdict: Verdict) -> None:
            if gone["yes"]:
                return
            reply.setResponseCode(verdict.status.value)
            body = b"" if verdict.status is Status.HEALTHY else verdict.reason.encode("utf-8") + b"\n"
            reply.setHeader(b"content-length", str(len(body)).encode("ascii"))
            if body and reply.method != b"HEAD":
                reply.write(body)
            reply.finish()

        def broken(failure: Failure) -> None:  # the checker always answers; guarded so the request always ends
            _log.error("health_check_broken", error=failure.getErrorMessage())
            answer(Verdict(Status.FAILED, "health check failed unexpectedly"))

        self._checker.verdict().addCallbacks(answer, broken)
        return NOT_DONE_YET


class MaintenanceResource(Resource):
    """``GET /maintenance?targetState=true|false``: switch maintenance mode, as X-Road's proxy admin port does
    (ig-xlb §3.4); answers ``Maintenance mode set: false => true``. Callers from other hosts than the loopback
    are refused (403): only the server's own CLI switches it."""

    isLeaf = True

    def __init__(self, checker: HealthChecker) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # Twisted leaves it unannotated
        self._checker = checker

    def render_GET(self, request: Request) -> bytes:
        reply: Any = request  # Twisted leaves Request unannotated
        reply.setHeader(b"content-type", b"text/plain; charset=utf-8")
        host = getattr(reply.getClientAddress(), "host", "")
        if host not in ("127.0.0.1", "::1"):
            reply.setResponseCode(403)
            return b"Maintenance mode can only be switched from the server itself\n"
        values = reply.args.get(b"targetState", [])
        if len(values) != 1 or values[0] not in (b"true", b"false"):
            reply.setResponseCode(400)
            return b"Invalid targetState: give targetState=true or targetState=false\n"
        return self._checker.set_maintenance(values[0] == b"true").encode("utf-8") + b"\n"


class ChecksResource(Resource):
    """``GET /checks``: every check's verdict as JSON (``{"status": 200, "reason": "", "checks": {name: {"ok",
    "reason"}}}``), for ``fedbus server status``. It runs the checks through the cache like the endpoint does, so
    asking costs no more than a load balancer's poll; loopback callers only (403 otherwise)."""

    isLeaf = True

    def __init__(self, checker: HealthChecker) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # Twisted leaves it unannotated
        self._checker = checker

    def render_GET(self, request: Request) -> int | bytes:
        reply: Any = request  # Twisted leaves Request unannotated
        reply.setHeader(b"content-type", b"application/json")
        reply.setHeader(b"cache-control", b"no-store")
        host = getattr(reply.getClientAddress(), "host", "")
        if host not in ("127.0.0.1", "::1"):
            reply.setResponseCode(403)
            return b'{"error": "the check details are only given to the server itself"}\n'
        gone = {"yes": False}
        reply.notifyFinish().addErrback(lambda _: gone.update(yes=True))

        def answer(verdict: Verdict) -> None:
            if gone["yes"]:
                return
            checks = {name: {"ok": r.ok, "reason": r.reason} for name, r in self._checker.cached().items()}
            body = {"status": verdict.status.value, "reason": verdict.reason, "maintenance": self._checker.maintenance,
                    "checks": checks}
            reply.write(json.dumps(body).encode("utf-8") + b"\n")
            reply.finish()

        def broken(failure: Failure) -> None:  # the checker always answers; guarded so the request always ends
            answer(Verdict(Status.FAILED, "health check failed unexpectedly: " + failure.getErrorMessage()))

        self._checker.verdict().addCallbacks(answer, broken)
        return NOT_DONE_YET


def health_site_root(
    checker: HealthChecker, metrics: Callable[[], bytes] | None = None, *, maintenance: bool = True
) -> Resource:
    """The health port's tree: the verdict on every path, ``/metrics``, ``/checks`` and (for a security server)
    ``/maintenance``."""
    root = HealthResource(checker, metrics)
    root.putChild(b"checks", ChecksResource(checker))  # type: ignore[arg-type]  # Resource implements IResource
    if maintenance:
        root.putChild(b"maintenance", MaintenanceResource(checker))  # type: ignore[arg-type]
    return root
