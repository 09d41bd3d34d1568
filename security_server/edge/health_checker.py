"""Runs the health checks with their timeouts, caches their results, and holds maintenance mode.

ig-xlb §3.4: each check has its own timeout (5 s); a success is remembered for 2 s and a failure for 30 s, so a
load balancer polling every second costs almost nothing and a failing node is given time to recover before it
is asked again. Checks run concurrently; a check already running is joined, never started twice. The verdict
names the first failed check in the configured order. Maintenance mode answers 503 without running any check
and is off after every start (X-Road resets it on restart).

Both roles use it: the security server's checks are in ``security_server/healthcheck/checks.py``, the registry's
in ``central_registry/health.py``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, Callable, Coroutine, Sequence

import structlog
from twisted.internet.defer import CancelledError, Deferred, DeferredList, TimeoutError, ensureDeferred, fail, succeed
from twisted.python.failure import Failure

SUCCESS_TTL = 2.0
FAILURE_TTL = 30.0
MAINTENANCE_MESSAGE = "Health check interface is in maintenance mode"

_log = structlog.get_logger("fedbus.healthcheck")

DEFAULT_TIMEOUT = 5.0
"""Seconds a check may take before it counts as failed (ig-xlb §3.4: 5 s per check)."""


class CheckFailed(Exception):
    """A check's part is not fit; the message is the one-line reason."""


Check = Callable[[], Coroutine[Any, Any, None]]


@dataclass(frozen=True, slots=True)
class HealthCheck:
    """One named check with its timeout."""

    name: str
    run: Check
    timeout: float = DEFAULT_TIMEOUT

    def __post_init__(self) -> None:
        if not self.name or "\n" in self.name:
            raise ValueError("a check needs a one-line name")
        if self.timeout <= 0:
            raise ValueError("a check's timeout must be positive")


class Status(enum.Enum):
    """What the health endpoint answers: 200, 500 or 503."""

    HEALTHY = 200
    FAILED = 500
    MAINTENANCE = 503


@dataclass(frozen=True, slots=True)
class Verdict:
    """The endpoint's answer: its status and the one-line reason (empty when healthy)."""

    status: Status
    reason: str = ""


@dataclass(frozen=True, slots=True)
class CheckResult:
    """One check's outcome and when the cached outcome runs out (reactor seconds)."""

    ok: bool
    reason: str
    expires: float


def _one_line(text: str) -> str:
    return " ".join(text.split())[:500]


class HealthChecker:
    """The checks of one node, their cache and its maintenance switch; ``clock`` is an IReactorTime."""

    def __init__(
        self,
        checks: Sequence[HealthCheck],
        clock: Any,
        *,
        success_ttl: float = SUCCESS_TTL,
        failure_ttl: float = FAILURE_TTL,
    ) -> None:
        names = [c.name for c in checks]
        if len(set(names)) != len(names):
            raise ValueError("health check names must be unique")
        self.checks = tuple(checks)
        self._clock = clock
        self.success_ttl = success_ttl
        self.failure_ttl = failure_ttl
        self._cache: dict[str, CheckResult] = {}
        self._running: dict[str, list[Deferred[CheckResult]]] = {}
        self.maintenance = False

    def set_maintenance(self, on: bool) -> str:
        """Switch maintenance mode; answers as X-Road's admin port does (``Maintenance mode set: false => true``)."""
        before, self.maintenance = self.maintenance, bool(on)
        _log.info("maintenance_mode_set", before=before, after=self.maintenance)
        return f"Maintenance mode set: {str(before).lower()} => {str(self.maintenance).lower()}"

    def cached(self) -> dict[str, CheckResult]:
        """The cached results that have not run out (for ``fedbus server status``)."""
        now = self._clock.seconds()
        return {name: result for name, result in self._cache.items() if result.expires > now}

    def _result(self, check: HealthCheck) -> Deferred[CheckResult]:
        now = self._clock.seconds()
        cached = self._cache.get(check.name)
        if cached is not None and cached.expires > now:
            return succeed(cached)
        waiter: Deferred[CheckResult] = Deferred()
        waiters = self._running.get(check.name)
        if waiters is not None:  # already running: join it
            waiters.append(waiter)
            return waiter
        waiters = self._running[check.name] = [waiter]
        try:
            attempt: Deferred[None] = ensureDeferred(check.run())
        except Exception as err:  # a check that fails before its first await
            attempt = fail(err)
        attempt.addTimeout(check.timeout, self._clock)

        def finished(outcome: None | Failure) -> None:
            reason = "" if not isinstance(outcome, Failure) else self._reason(check, outcome)
            ok = not reason
            result = CheckResult(ok, reason, self._clock.seconds() + (self.success_ttl if ok else self.failure_ttl))
            self._cache[check.name] = result
            del self._running[check.name]
            if not ok:
                _log.warning("health_check_failed", check=check.name, reason=reason)
            for each in waiters:
                each.callback(result)

        attempt.addBoth(finished)
        return waiter

    @staticmethod
    def _reason(check: HealthCheck, failure: Failure) -> str:
        if isinstance(failure.value, (TimeoutError, CancelledError)):
            return f"Fetching health check response timed out for: {check.name}"
        error = failure.value
        detail = str(error) if isinstance(error, CheckFailed) else f"{type(error).__name__}: {error}"
        return _one_line(f"{check.name}: {detail}") or check.name

    def verdict(self) -> Deferred[Verdict]:
        """Run (or reuse) every check and say what the endpoint answers."""
        if self.maintenance:
            return succeed(Verdict(Status.MAINTENANCE, MAINTENANCE_MESSAGE))
        pending = [self._result(check) for check in self.checks]

        def decide(results: list[tuple[bool, Any]]) -> Verdict:
            for success, result in results:
                if not success:  # pragma: no cover - _result never fails; guarded so the endpoint always answers
                    return Verdict(Status.FAILED, "health check failed unexpectedly")
                if not result.ok:
                    return Verdict(Status.FAILED, result.reason)
            return Verdict(Status.HEALTHY)

        return DeferredList(pending, consumeErrors=True).addCallback(decide)
