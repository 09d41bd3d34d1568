"""The security server's health checks, each a named async callable over a source injected by the service.

A check (:class:`~security_server.edge.health_checker.HealthCheck`, shared with the registry) returns when its
part is fit and raises :class:`CheckFailed` with a one-line reason when it is not (any other exception counts as
a failure too, described by its type and message). The sources are plain
callables that the service wires to the signer, the OCSP cache, the stores, the configuration client and the
message log; a source may answer at once or with a Deferred. The verdicts on what a source says are pure
(:mod:`security_server.core.health`).

The names are what the 500 answer starts with, as X-Road's ("Authentication key OCSP status", ...).
"""

from __future__ import annotations

import inspect
from datetime import UTC, datetime
from typing import Any, Callable

from twisted.internet.defer import Deferred

from security_server.core import health
from security_server.core.trust import OcspStatus
from security_server.edge.health_checker import CheckFailed, HealthCheck

__all__ = ["CheckFailed", "HealthCheck", "auth_key", "auth_ocsp", "globalconf", "memory", "messagelog_writer",
           "serverconf", "signing_tokens", "timestamper"]


async def _ask(source: Callable[[], Any]) -> Any:
    """Call ``source`` and wait for its answer if it is a Deferred or an awaitable."""
    value = source()
    if isinstance(value, Deferred) or inspect.isawaitable(value):
        value = await value
    return value


def _now(clock: Callable[[], float]) -> datetime:
    return datetime.fromtimestamp(clock(), tz=UTC)


def auth_key(usable: Callable[[], Any]) -> HealthCheck:
    """The authentication key is available and its token logged in (``usable`` answers a bool)."""

    async def run() -> None:
        if not await _ask(usable):
            raise CheckFailed("authentication key is not available (token not logged in or key missing)")

    return HealthCheck("Authentication key", run)


def auth_ocsp(status: Callable[[], Any], *, clock: Callable[[], float], max_age_seconds: float) -> HealthCheck:
    """The authentication certificate's OCSP status is good and fresh (``status`` answers an OcspStatus or None)."""

    async def run() -> None:
        current: OcspStatus | None = await _ask(status)
        problem = health.ocsp_problem(current, now=_now(clock), max_age_seconds=max_age_seconds)
        if problem:
            raise CheckFailed(problem)

    return HealthCheck("Authentication key OCSP status", run)


def serverconf(read: Callable[[], Any]) -> HealthCheck:
    """The server configuration store is readable (``read`` performs a small read, raising on failure)."""

    async def run() -> None:
        await _ask(read)

    return HealthCheck("Server configuration", run)


def globalconf(expires_at: Callable[[], Any], *, clock: Callable[[], float]) -> HealthCheck:
    """The global configuration is valid and not expired (``expires_at`` answers its expiry or None)."""

    async def run() -> None:
        problem = health.globalconf_problem(await _ask(expires_at), now=_now(clock))
        if problem:
            raise CheckFailed(problem)

    return HealthCheck("Global configuration", run)


def messagelog_writer(healthy: Callable[[], Any]) -> HealthCheck:
    """The message log writer is healthy (``healthy`` answers a bool, or ``(bool, reason)``)."""

    async def run() -> None:
        answer = await _ask(healthy)
        ok, reason = answer if isinstance(answer, tuple) else (answer, "")
        if not ok:
            raise CheckFailed(reason or "message log writer is not healthy")

    return HealthCheck("Message log", run)


def timestamper(failing_for: Callable[[], Any], *, grace_seconds: float) -> HealthCheck:
    """Timestamping is within its grace period (``failing_for`` answers seconds failing, or None when fine)."""

    async def run() -> None:
        problem = health.timestamping_problem(await _ask(failing_for), grace_seconds=grace_seconds)
        if problem:
            raise CheckFailed(problem)

    return HealthCheck("Timestamping", run)


def memory(used_percent: Callable[[], Any], *, threshold_percent: float) -> HealthCheck:
    """Optional: the process's memory use is under the threshold (ig-xlb §3.4.3)."""

    async def run() -> None:
        problem = health.memory_problem(float(await _ask(used_percent)), threshold_percent=threshold_percent)
        if problem:
            raise CheckFailed(problem)

    return HealthCheck("Memory usage", run)


def signing_tokens(problem: Callable[[], Any]) -> HealthCheck:
    """The PKCS#11 tokens that hold signing keys are present and logged in (``problem`` answers a reason or None)."""

    async def run() -> None:
        reason = await _ask(problem)
        if reason:
            raise CheckFailed(str(reason))

    return HealthCheck("Signing tokens", run)
