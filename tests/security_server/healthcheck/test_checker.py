"""Health checks with a fake clock: each check's verdict, timeouts, the 2 s / 30 s cache, maintenance mode."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Callable

import pytest
from twisted.internet.defer import Deferred, succeed
from twisted.internet.task import Clock

from security_server.core.trust import CertStatus, OcspStatus
from security_server.healthcheck import checks
from security_server.edge.health_checker import MAINTENANCE_MESSAGE, HealthChecker, Status, Verdict
from security_server.healthcheck.checks import CheckFailed, HealthCheck

START = 1_700_000_000.0


def result_of(deferred: Deferred[Any]) -> Any:
    """The result of a Deferred that has already fired."""
    box: list[Any] = []
    deferred.addBoth(box.append)
    assert box, "the Deferred has not fired"
    return box[0]


def counting(outcome: Callable[[], Any]) -> tuple[HealthCheck, list[int]]:
    calls: list[int] = []

    async def run() -> None:
        calls.append(1)
        value = outcome()
        if isinstance(value, Deferred):
            await value

    return HealthCheck("Counting", run, timeout=5.0), calls


def clock() -> Clock:
    fake = Clock()
    fake.advance(START)
    return fake


# --- the named checks -------------------------------------------------------------------------------------


def verdict_of(check: HealthCheck, fake: Clock | None = None) -> Verdict:
    return result_of(HealthChecker([check], fake or clock()).verdict())  # type: ignore[no-any-return]


def test_auth_key_check() -> None:
    """Authentication key: usable passes; unusable fails naming the check; a Deferred source is awaited."""
    assert verdict_of(checks.auth_key(lambda: True)).status is Status.HEALTHY
    assert verdict_of(checks.auth_key(lambda: succeed(True))).status is Status.HEALTHY
    failed = verdict_of(checks.auth_key(lambda: False))
    assert failed.status is Status.FAILED and failed.reason.startswith("Authentication key: ")


def test_auth_ocsp_check_uses_the_clock() -> None:
    """Authentication key OCSP status: good and fresh by the reactor's time."""
    produced = datetime.fromtimestamp(START, tz=UTC) - timedelta(seconds=100)
    good = OcspStatus(CertStatus.GOOD, 1, produced, None, produced, "CN=ocsp")
    fake = clock()
    check = checks.auth_ocsp(lambda: good, clock=fake.seconds, max_age_seconds=3600)
    assert verdict_of(check, fake).status is Status.HEALTHY
    fake.advance(3600)
    late = verdict_of(check, fake)
    assert late.status is Status.FAILED and late.reason.startswith("Authentication key OCSP status: ")


def test_serverconf_check_fails_on_a_read_error() -> None:
    """Server configuration: a read that raises fails with the error's type and message, on one line."""
    def broken() -> None:
        raise OSError("database is locked\nretry")

    assert verdict_of(checks.serverconf(lambda: 1)).status is Status.HEALTHY
    failed = verdict_of(checks.serverconf(broken))
    assert failed.reason == "Server configuration: OSError: database is locked retry"


def test_globalconf_messagelog_timestamper_checks() -> None:
    """Global configuration, message log and timestamping checks follow their sources."""
    fake = clock()
    future = datetime.fromtimestamp(START + 60, tz=UTC)
    assert verdict_of(checks.globalconf(lambda: future, clock=fake.seconds), fake).status is Status.HEALTHY
    assert verdict_of(checks.globalconf(lambda: None, clock=fake.seconds), fake).reason == (
        "Global configuration: no valid global configuration")
    assert verdict_of(checks.messagelog_writer(lambda: (True, ""))).status is Status.HEALTHY
    assert verdict_of(checks.messagelog_writer(lambda: (False, "disk full"))).reason == "Message log: disk full"
    assert verdict_of(checks.messagelog_writer(lambda: False)).reason == "Message log: message log writer is not healthy"
    assert verdict_of(checks.timestamper(lambda: None, grace_seconds=10)).status is Status.HEALTHY
    assert verdict_of(checks.timestamper(lambda: 11.0, grace_seconds=10)).reason.startswith("Timestamping: ")
    assert verdict_of(checks.memory(lambda: 90, threshold_percent=80)).reason.startswith("Memory usage: ")


def test_check_names_are_one_line_and_unique() -> None:
    """A check name is one line; two checks of one checker never share a name."""
    with pytest.raises(ValueError):
        checks.HealthCheck("two\nlines", checks.auth_key(lambda: True).run)
    with pytest.raises(ValueError):
        HealthChecker([checks.auth_key(lambda: True), checks.auth_key(lambda: True)], clock())


# --- the checker ------------------------------------------------------------------------------------------


def test_success_is_cached_for_two_seconds() -> None:
    """A passing check is not run again until 2 s have passed."""
    fake = clock()
    check, calls = counting(lambda: None)
    checker = HealthChecker([check], fake)
    for _ in range(3):
        assert result_of(checker.verdict()) == Verdict(Status.HEALTHY)
    fake.advance(1.9)
    result_of(checker.verdict())
    assert len(calls) == 1
    fake.advance(0.2)
    result_of(checker.verdict())
    assert len(calls) == 2


def test_failure_is_cached_for_thirty_seconds() -> None:
    """A failing check is remembered for 30 s (the node is given time to recover) and then run again."""
    fake = clock()
    state = {"ok": False}

    def outcome() -> None:
        if not state["ok"]:
            raise CheckFailed("down")

    check, calls = counting(outcome)
    checker = HealthChecker([check], fake)
    assert result_of(checker.verdict()) == Verdict(Status.FAILED, "Counting: down")
    state["ok"] = True
    fake.advance(29)
    assert result_of(checker.verdict()).status is Status.FAILED and len(calls) == 1
    fake.advance(1.5)
    assert result_of(checker.verdict()).status is Status.HEALTHY and len(calls) == 2


def test_a_check_that_hangs_times_out() -> None:
    """A check that does not answer within its timeout fails with X-Road's 'timed out for' reason."""
    fake = clock()
    never: Deferred[None] = Deferred()
    check, _ = counting(lambda: never)
    pending = HealthChecker([check], fake).verdict()
    assert not pending.called
    fake.advance(5.1)
    assert result_of(pending) == Verdict(Status.FAILED, "Fetching health check response timed out for: Counting")


def test_concurrent_requests_share_one_run() -> None:
    """Two polls while a check runs wait for the same run; it is not started twice."""
    fake = clock()
    gate: Deferred[None] = Deferred()
    check, calls = counting(lambda: gate)
    checker = HealthChecker([check], fake)
    first, second = checker.verdict(), checker.verdict()
    gate.callback(None)
    assert result_of(first) == result_of(second) == Verdict(Status.HEALTHY) and len(calls) == 1


def test_first_failed_check_in_order_is_named() -> None:
    """With several failures the verdict names the first failed check in the configured order."""
    checker = HealthChecker([checks.auth_key(lambda: True), checks.serverconf(lambda: 1 / 0),
                             checks.messagelog_writer(lambda: False)], clock())
    assert result_of(checker.verdict()).reason == "Server configuration: ZeroDivisionError: division by zero"
    assert set(checker.cached()) == {"Authentication key", "Server configuration", "Message log"}


def test_maintenance_mode_answers_503_without_running_checks() -> None:
    """In maintenance the endpoint answers 503 with X-Road's message and runs nothing; it is off at start."""
    check, calls = counting(lambda: None)
    checker = HealthChecker([check], clock())
    assert checker.maintenance is False
    assert checker.set_maintenance(True) == "Maintenance mode set: false => true"
    assert result_of(checker.verdict()) == Verdict(Status.MAINTENANCE, MAINTENANCE_MESSAGE) and calls == []
    assert checker.set_maintenance(False) == "Maintenance mode set: true => false"
    assert result_of(checker.verdict()).status is Status.HEALTHY
