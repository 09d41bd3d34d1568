"""A worker other than 0 refuses new records once its shard's oldest unstamped record waited past the grace period."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Callable, TypeVar

from twisted.internet.defer import Deferred, succeed
from twisted.internet.task import Clock

from security_server.core.errors import TimestampingFailed
from security_server.messagelog.shard_admission import ShardAdmission
from security_server.messagelog.store import MessageLogStore
from security_server.messagelog.writer import AdmissionCheck
from tests.federation.evidence import exchange, failed_entry
from tests.security_server.messagelog.stamping import stamp_all

T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
T = TypeVar("T")


class InlineWriter:
    """The writer's two calls the admission uses, run at once on the test's store."""

    def __init__(self, store: MessageLogStore) -> None:
        self.store = store
        self.admission: AdmissionCheck | None = None

    def run(self, function: Callable[[MessageLogStore], T]) -> Deferred[T]:
        return succeed(function(self.store))

    def set_admission(self, check: AdmissionCheck | None) -> None:
        self.admission = check


def test_the_oldest_signed_record_waiting_is_found(tmp_path: Path) -> None:
    """Unsigned failure records do not count; once everything is stamped nothing waits."""
    with MessageLogStore(tmp_path / "log.db") as store:
        assert store.oldest_untimestamped_time() is None
        store.append_entries([failed_entry("f", T0 - timedelta(hours=1)), *exchange("a", T0)])
        assert store.oldest_untimestamped_time() == T0
        stamp_all(store)
        assert store.oldest_untimestamped_time() is None


def test_new_records_are_refused_past_grace_and_slack(tmp_path: Path) -> None:
    """Within grace + slack the door is open; after it TimestampingFailed; stamped again, open again."""
    clock = Clock()
    with MessageLogStore(tmp_path / "log.db") as store:
        store.append_entries([*exchange("a", T0)])
        writer: Any = InlineWriter(store)
        admission = ShardAdmission(clock, writer, 600, poll_seconds=10, slack_seconds=120)
        clock.advance(T0.timestamp() + 720)
        admission.startService()
        assert writer.admission is not None and writer.admission(None) is None
        clock.advance(10)
        refusal = writer.admission(None)
        assert isinstance(refusal, TimestampingFailed) and "waited 730 s" in (refusal.reason or "")
        stamp_all(store)
        clock.advance(10)
        assert writer.admission(None) is None
        admission.stopService()
        assert writer.admission is None


def test_a_grace_period_of_zero_never_refuses(tmp_path: Path) -> None:
    """acceptable-timestamp-failure-period = 0 switches the check off, as for the timestamper."""
    clock = Clock()
    with MessageLogStore(tmp_path / "log.db") as store:
        store.append_entries([*exchange("a", T0)])
        writer: Any = InlineWriter(store)
        admission = ShardAdmission(clock, writer, 0)
        clock.advance(T0.timestamp() + 10**6)
        admission.startService()
        assert writer.admission(None) is None
        admission.stopService()
