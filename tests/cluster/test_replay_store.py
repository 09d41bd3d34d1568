"""The cluster replay guard: a message accepted by one node is refused by another; PostgreSQL down falls back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Callable

import psycopg
import pytest
from structlog.testing import capture_logs
from twisted.internet import defer
from twisted.internet.task import deferLater
from twisted.trial import unittest

from security_server.core.errors import InvalidRequest
from security_server.metrics import GaugeSources, ServerMetrics
from security_server.replay_store import ClusterReplayGuard
from tests.loopback import REACTOR, free_port

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
SIGNED = NOW - timedelta(seconds=1)


class Clock:
    """A settable clock (POSIX seconds)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _available(guard: ClusterReplayGuard) -> bool:
    return guard.shared_available


def test_a_message_accepted_by_one_node_is_refused_by_another(postgres_url: str) -> None:
    """Two nodes on one database: the second node refuses the first node's key as replayed_signature."""
    clock = Clock()
    node1, node2 = ClusterReplayGuard(postgres_url, clock=clock), ClusterReplayGuard(postgres_url, clock=clock)
    try:
        node1.check(b"k" * 16, SIGNED, NOW)
        with pytest.raises(InvalidRequest) as info:
            node2.check(b"k" * 16, SIGNED, NOW)
        assert info.value.subcode == "replayed_signature"
        node2.check(b"other-key-16byte", SIGNED, NOW)
        assert node1.unchecked == node2.unchecked == 0
    finally:
        node1.close()
        node2.close()


def test_a_replay_to_the_same_node_is_refused_without_the_database(postgres_url: str) -> None:
    """The local first-level guard refuses a replay to the same node, counting nothing as unchecked."""
    guard = ClusterReplayGuard(postgres_url, clock=Clock())
    try:
        guard.check(b"a" * 16, SIGNED, NOW)
        guard.close()
        guard.url = f"postgresql://nobody@127.0.0.1:{free_port()}/none"  # the database is not asked again
        with pytest.raises(InvalidRequest):
            guard.check(b"a" * 16, SIGNED, NOW)
        assert guard.unchecked == 0
    finally:
        guard.close()


def test_database_down_falls_back_to_the_local_guard_and_recovers(postgres_url: str) -> None:
    """Down: accepted on the local guard, counted and logged once; after the retry interval the shared check returns."""
    clock = Clock()
    guard = ClusterReplayGuard(f"postgresql://fedbus:x@127.0.0.1:{free_port()}/none", clock=clock, retry_seconds=5)
    try:
        with capture_logs() as logs:
            guard.check(b"1" * 16, SIGNED, NOW)
            guard.check(b"2" * 16, SIGNED, NOW)
        assert guard.unchecked == 2 and not _available(guard)
        assert [e["event"] for e in logs] == ["replay_guard_shared_unavailable"]
        assert "x@" not in str(logs)
        with pytest.raises(InvalidRequest):
            guard.check(b"1" * 16, SIGNED, NOW)  # still refused on this node
        guard.url = postgres_url  # the database is back
        clock.now += 5
        with capture_logs() as logs:
            guard.check(b"3" * 16, SIGNED, NOW)
        assert _available(guard) and guard.unchecked == 2
        assert [e["event"] for e in logs] == ["replay_guard_shared_restored"]
        other = ClusterReplayGuard(postgres_url, clock=clock)
        try:
            with pytest.raises(InvalidRequest):
                other.check(b"3" * 16, SIGNED, NOW)
        finally:
            other.close()
    finally:
        guard.close()


def test_requests_accepted_without_the_shared_check_are_a_counter_in_metrics() -> None:
    """/metrics carries ``fedbus_replay_guard_unchecked_total`` for a clustered node, and nothing for a single one."""
    clustered = ServerMetrics(GaugeSources(replay_guard_unchecked=lambda: 3), clock=lambda: 0.0).render()
    assert b"fedbus_replay_guard_unchecked_total 3.0" in clustered
    assert b"fedbus_replay_guard_unchecked" not in ServerMetrics(GaugeSources(), clock=lambda: 0.0).render()


@pytest.mark.usefixtures("slow_database")
class AdmitDoesNotBlockTheReactor(unittest.TestCase):
    """The shared check as the server proxy awaits it: the database's answer is awaited off the reactor thread."""

    url: str

    def _guard(self) -> ClusterReplayGuard:
        guard = ClusterReplayGuard(self.url, clock=Clock(), timeout_seconds=60, reactor=REACTOR)
        self.addCleanup(guard.close)
        return guard

    @defer.inlineCallbacks
    def test_a_check_waiting_on_a_locked_row_lets_other_checks_and_timers_run(self) -> Any:
        """A row locked by another transaction holds one check; a second check and a reactor timer are served
        meanwhile; when the holder commits, the waiting check is refused as replayed (another node accepted it)."""
        guard = self._guard()
        yield guard.admit(b"warm-up-16-bytes", SIGNED, NOW)  # the table exists, a connection is open
        holder = psycopg.connect(self.url)  # another node, mid-transaction on the same key
        self.addCleanup(holder.close)
        holder.execute("INSERT INTO replay_seen (key, stamp) VALUES (%s, %s)", (b"h" * 16, SIGNED.timestamp()))
        waiting = defer.Deferred.fromCoroutine(guard.admit(b"h" * 16, SIGNED, NOW))
        yield _until(lambda: _blocked_on_lock(self.url))  # the guard's insert now waits for the holder's lock
        assert not waiting.called
        timer: defer.Deferred[str] = defer.Deferred()
        REACTOR.callLater(0, timer.callback, "ran")
        assert (yield timer) == "ran"  # the reactor turns while the check waits
        yield guard.admit(b"o" * 16, SIGNED, NOW)  # another exchange's check is answered meanwhile
        assert not waiting.called
        holder.commit()
        refused = yield waiting.addCallbacks(lambda _: None, lambda failure: failure.value)
        assert isinstance(refused, InvalidRequest) and refused.subcode == "replayed_signature"
        assert guard.unchecked == 0 and guard.shared_available

    @defer.inlineCallbacks
    def test_admit_falls_back_and_refuses_like_check(self) -> Any:
        """Awaited, the guard keeps check's rules: a replay to another node is refused; an outage accepts on the
        local guard, counted and logged once."""
        node1, node2 = self._guard(), self._guard()
        yield node1.admit(b"x" * 16, SIGNED, NOW)
        with pytest.raises(InvalidRequest):
            yield node2.admit(b"x" * 16, SIGNED, NOW)
        down = ClusterReplayGuard(f"postgresql://fedbus:x@127.0.0.1:{free_port()}/none", clock=Clock(), reactor=REACTOR)
        self.addCleanup(down.close)
        with capture_logs() as logs:
            yield down.admit(b"1" * 16, SIGNED, NOW)
            yield down.admit(b"2" * 16, SIGNED, NOW)
        assert down.unchecked == 2 and not down.shared_available
        assert [e["event"] for e in logs] == ["replay_guard_shared_unavailable"]


@pytest.fixture
def slow_database(request: pytest.FixtureRequest, postgres_url: str) -> None:
    """The test case's database URL."""
    request.instance.url = postgres_url


def _blocked_on_lock(url: str) -> bool:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE 'INSERT INTO replay_seen%%'"
        ).fetchone()
    return row is not None and int(row[0]) > 0


@defer.inlineCallbacks
def _until(condition: Callable[[], bool]) -> Any:
    """Turn the reactor until ``condition`` holds (a state to reach, not a time to wait)."""
    while not condition():
        yield deferLater(REACTOR, 0.01, lambda: None)
