"""The ordered writer: call order, group commit, answers only after commit, and failure without damage.

The writer owns a real thread, so these tests run on trial's real reactor (bounded by ``timeout``); the crash
tests run the writer in a child process (``writer_child.py``) and kill it.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import structlog
from twisted.internet import reactor
from twisted.internet.defer import Deferred, gatherResults
from twisted.internet.interfaces import IReactorFromThreads, IReactorTime
from twisted.internet.task import deferLater
from twisted.trial import unittest

from security_server.core.errors import LoggingFailed
from security_server.core.logchain import GENESIS_LINK, Direction, LogEntry, LogRecord
from security_server.messagelog.store import MessageLogStore, Synchronous
from security_server.messagelog.writer import MessageLogWriter

REACTOR_THREADS: IReactorFromThreads = reactor
REACTOR_TIME: IReactorTime = reactor
T0 = datetime(2026, 11, 29, 12, 0, tzinfo=timezone.utc)
HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[2]
CHILD = HERE / "writer_child.py"


def entry(n: int) -> LogEntry:
    """The n-th test entry."""
    return LogEntry(
        query_id=f"q-{n}",
        direction=Direction.REQUEST if n % 2 == 0 else Direction.RESPONSE,
        client="SUBSYSTEM:EE/GOV/1234/consumer",
        service="SERVICE:EE/GOV/5678/provider/getPerson",
        time=T0 + timedelta(milliseconds=n),
        message=f"<message n='{n}'/>".encode(),
        signature=f"<signature n='{n}'/>".encode(),
    )


def is_healthy(writer: MessageLogWriter) -> bool:
    """The writer's health flag, read afresh (it changes between awaits)."""
    return writer.healthy


class WriterTests(unittest.TestCase):
    """The writer on the real reactor with a real SQLite file."""

    timeout = 20

    def setUp(self) -> None:
        folder = tempfile.TemporaryDirectory()
        self.addCleanup(folder.cleanup)
        self.path = Path(folder.name)
        self.db = self.path / "log.db"

    def writer(self, path: Path | None = None, **options: Any) -> MessageLogWriter:
        """A started writer on ``path`` (default: this test's log), stopped at cleanup."""
        writer = MessageLogWriter(REACTOR_THREADS, path or self.db, **options)
        writer.start()
        self.addCleanup(writer.stop)
        return writer

    def reader(self) -> sqlite3.Connection:
        """An independent connection to the log, not the writer's."""
        conn = sqlite3.connect(self.db, isolation_level=None)
        self.addCleanup(conn.close)
        return conn

    async def test_records_are_chained_in_call_order_and_committed_before_their_deferreds_fire(self) -> None:
        """Concurrent log() calls give one unbroken chain in call order; each fires only once its row is visible."""
        writer = self.writer()
        await writer.log(entry(-1))  # the file and schema exist before the independent reader opens it
        reader = self.reader()
        seen_at_fire: list[bytes | None] = []

        def check(record: LogRecord) -> LogRecord:
            row = reader.execute("SELECT link FROM logrecord WHERE id = ?", [record.id]).fetchone()
            seen_at_fire.append(None if row is None else row[0])
            return record

        calls = [writer.log(entry(n)).addCallback(check) for n in range(200)]
        records: list[LogRecord] = await gatherResults(calls)
        assert [record.query_id for record in records] == [f"q-{n}" for n in range(200)]
        assert [record.id for record in records] == list(range(2, 202))
        assert seen_at_fire == [record.link for record in records]
        assert writer.records_committed == 201
        assert is_healthy(writer)
        with MessageLogStore(self.db) as store:
            assert store.verify() == 201

    async def test_queued_records_wait_for_the_lock_and_commit_together(self) -> None:
        """While the file is locked nothing fires; afterwards everything queued commits in at most two transactions."""
        MessageLogStore(self.db).close()
        locker = self.reader()
        locker.execute("BEGIN IMMEDIATE")
        appending: Deferred[None] = Deferred()

        class ObservedStore(MessageLogStore):
            """The writer's store, telling the reactor when the writer thread starts its first append."""

            def append_entries(self, entries: Any) -> list[LogRecord]:
                if not appending.called:
                    REACTOR_THREADS.callFromThread(appending.callback, None)
                return super().append_entries(entries)

        writer = self.writer(busy_timeout=10.0, store_factory=ObservedStore)
        fired: list[int] = []

        def note(record: LogRecord) -> LogRecord:
            fired.append(record.id)
            return record

        calls = [writer.log(entry(n)).addCallback(note) for n in range(50)]
        await appending  # the writer thread is in its transaction, which waits for the lock; answers come after it
        assert fired == []
        locker.execute("COMMIT")
        records: list[LogRecord] = await gatherResults(calls)
        assert fired == [record.id for record in records] == list(range(1, 51))
        assert writer.batches_committed <= 2

    async def test_max_batch_caps_each_transaction(self) -> None:
        """With max_batch=1 every record is its own transaction, still in call order."""
        writer = self.writer(max_batch=1)
        records: list[LogRecord] = await gatherResults([writer.log(entry(n)) for n in range(10)])
        assert [record.id for record in records] == list(range(1, 11))
        assert writer.batches_committed == 10

    async def test_a_file_that_is_not_a_database_fails_logging_and_turns_health_red(self) -> None:
        """log() on a non-SQLite file fails with LoggingFailed, health goes red, and the file is left untouched."""
        garbage = b"this is not a database\n" * 200
        self.db.write_bytes(garbage)
        writer = self.writer()
        with structlog.testing.capture_logs() as events:
            with pytest.raises(LoggingFailed) as caught:
                await writer.log(entry(0))
        assert caught.value.fault_code == "server.logging_failed"
        assert "not a database" in caught.value.reason
        assert not is_healthy(writer)
        assert self.db.read_bytes() == garbage
        failures = [event for event in events if event["event"] == "message_log_write_failed"]
        assert [event["fault_detail"] for event in failures] == [caught.value.detail_id]
        assert failures[0]["query_id"] == "q-0"

    async def test_an_unopenable_path_fails_logging(self) -> None:
        """A log path under a regular file fails every log() with LoggingFailed and health red."""
        (self.path / "plain-file").write_bytes(b"")
        writer = self.writer(self.path / "plain-file" / "log.db")
        with pytest.raises(LoggingFailed):
            await writer.log(entry(0))
        assert not is_healthy(writer)

    async def test_a_locked_database_fails_the_batch_then_the_writer_recovers(self) -> None:
        """A write lock held past the busy timeout fails the batch cleanly; the next write continues the chain."""
        writer = self.writer(busy_timeout=0.1)
        first = await writer.log(entry(0))
        locker = self.reader()
        locker.execute("BEGIN IMMEDIATE")
        failed = [writer.log(entry(n)) for n in (1, 2, 3)]
        errors = []
        for deferred in failed:
            with pytest.raises(LoggingFailed) as caught:
                await deferred
            errors.append(caught.value)
        assert len({error.detail_id for error in errors}) == 3  # one fault-detail UUID per exchange
        assert all("locked" in error.reason for error in errors)
        assert not is_healthy(writer)
        assert locker.execute("SELECT count(*) FROM logrecord").fetchone()[0] == 1
        locker.execute("ROLLBACK")
        second = await writer.log(entry(4))
        assert (second.id, second.prev_link) == (2, first.link)
        assert is_healthy(writer)
        with MessageLogStore(self.db) as store:
            assert store.verify() == 2

    async def test_records_appended_by_another_connection_are_chained_after(self) -> None:
        """The writer reads the head inside each transaction, so the chain never forks around another appender."""
        writer = self.writer()
        first = await writer.log(entry(0))
        with MessageLogStore(self.db) as other:
            [middle] = other.append_entries([entry(1)])
        last = await writer.log(entry(2))
        assert (middle.prev_link, last.id, last.prev_link) == (first.link, 3, middle.link)
        with MessageLogStore(self.db) as store:
            assert store.verify() == 3

    async def test_stop_commits_everything_queued_then_refuses(self) -> None:
        """stop() drains the queue before closing; log() after it fails with LoggingFailed; stop() again is a no-op."""
        writer = MessageLogWriter(REACTOR_THREADS, self.db)
        writer.start()
        calls = [writer.log(entry(n)) for n in range(30)]
        await writer.stop()
        records: list[LogRecord] = await gatherResults(calls)
        assert [record.id for record in records] == list(range(1, 31))
        with pytest.raises(LoggingFailed):
            await writer.log(entry(30))
        await writer.stop()
        with MessageLogStore(self.db) as store:
            assert store.verify() == 30

    async def test_log_before_start_is_refused(self) -> None:
        """A writer that was never started refuses entries instead of leaving callers waiting."""
        writer = MessageLogWriter(REACTOR_THREADS, self.db)
        with pytest.raises(LoggingFailed):
            await writer.log(entry(0))
        await writer.stop()

    def test_log_takes_only_entries(self) -> None:
        """Passing anything but a LogEntry is a programming error, raised at once."""
        writer = MessageLogWriter(REACTOR_THREADS, self.db)
        with pytest.raises(TypeError):
            writer.log("record")  # type: ignore[arg-type]
        with pytest.raises(ValueError):
            MessageLogWriter(REACTOR_THREADS, self.db, max_batch=0)

    async def test_runs_as_a_service(self) -> None:
        """As a twisted IService, the writer starts on startService and drains on stopService."""
        writer = MessageLogWriter(REACTOR_THREADS, self.db, synchronous=Synchronous.NORMAL)
        writer.startService()
        assert writer.running
        pending = writer.log(entry(0))
        await writer.stopService()
        assert not writer.running
        record = await pending
        assert record.prev_link == GENESIS_LINK

    async def test_run_executes_a_store_function_after_the_entries_queued_before_it(self) -> None:
        """run(f) runs f(store) in the writer thread, after every entry queued before it, and returns its result."""
        writer = self.writer()
        pending = [writer.log(entry(n)) for n in range(5)]
        seen = await writer.run(lambda store: (threading.current_thread().name, store.count()))
        assert seen == ("fedbus-messagelog-writer", 5)
        await gatherResults(pending)

    async def test_run_passes_the_functions_failure_on_and_the_writer_carries_on(self) -> None:
        """An exception in the function fails its Deferred; later entries are still written."""
        writer = self.writer()

        def broken(store: MessageLogStore) -> None:
            raise LookupError("nothing here")

        with pytest.raises(LookupError):
            await writer.run(broken)
        record = await writer.log(entry(0))
        assert record.id == 1 and writer.healthy

    async def test_an_admission_check_refuses_entries_with_its_error(self) -> None:
        """set_admission: while the check returns an error, log() fails with it and nothing is queued."""
        writer = self.writer()
        refusal = LoggingFailed("closed for the test")
        writer.set_admission(lambda _entry: refusal)
        with pytest.raises(LoggingFailed):
            await writer.log(entry(0))
        writer.set_admission(None)
        assert (await writer.log(entry(1))).id == 1

    async def test_a_commit_hook_runs_before_the_caller_is_answered(self) -> None:
        """set_commit_hook: the caller's Deferred fires after the hook's; a failed hook fails the caller, the
        record stays committed."""
        writer = self.writer()
        hooked: list[int] = []

        def refuse() -> None:
            raise LoggingFailed("the hook failed")

        def hook(record: LogRecord) -> Any:
            hooked.append(record.id)
            return deferLater(REACTOR_TIME, 0, refuse if record.id == 2 else lambda: None)

        writer.set_commit_hook(hook)
        first = await writer.log(entry(0))
        assert first.id == 1 and hooked == [1]
        with pytest.raises(LoggingFailed):
            await writer.log(entry(1))
        assert await writer.run(lambda store: store.count()) == 2


def _run_child(mode: str, db: Path, *, stop_after_acks: int | None, deadline: float) -> list[str]:
    """Run writer_child.py; kill -9 it after ``stop_after_acks`` acks, or let it end; return its stdout lines."""
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), PYTHONDONTWRITEBYTECODE="1")
    child = subprocess.Popen(
        [sys.executable, str(CHILD), mode, str(db)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True
    )
    lines: list[str] = []
    enough = threading.Event()

    def read() -> None:
        assert child.stdout is not None
        for line in child.stdout:
            lines.append(line.strip())
            if stop_after_acks is not None and sum(1 for seen in lines if seen.startswith("ACK ")) >= stop_after_acks:
                enough.set()
        enough.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert enough.wait(deadline), f"child gave {len(lines)} lines in {deadline} s"
        if stop_after_acks is not None:
            os.kill(child.pid, signal.SIGKILL)
        child.wait(deadline)
        reader.join(deadline)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        assert child.stderr is not None
        errors = child.stderr.read()
        child.stderr.close()
        assert child.stdout is not None
        child.stdout.close()
    if stop_after_acks is not None:
        assert child.returncode == -signal.SIGKILL, errors
    else:
        assert child.returncode == 0, errors
    return lines


def _acks(lines: list[str]) -> dict[int, str]:
    return {int(parts[1]): parts[2] for parts in (line.split() for line in lines) if parts[0] == "ACK"}


def test_kill_9_leaves_a_verifiable_chain_with_every_acked_record(tmp_path: Path) -> None:
    """After SIGKILL mid-stream the chain verifies, no half record exists and every acked record is present."""
    db = tmp_path / "log.db"
    lines = _run_child("loop", db, stop_after_acks=300, deadline=120)  # a bound, generous for a busy machine
    acks = _acks(lines)
    assert len(acks) >= 300
    with MessageLogStore(db) as store:
        assert store.database.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        total = store.verify()
        assert total >= len(acks)
        for record_id, query_id in acks.items():
            record = store.get(record_id)
            assert record is not None and record.query_id == query_id


def test_a_full_disk_fails_the_write_and_leaves_only_committed_records(tmp_path: Path) -> None:
    """A log that cannot grow (RLIMIT_FSIZE, like a full disk) fails the write, health red; only acked records stay."""
    db = tmp_path / "log.db"
    lines = _run_child("fsize", db, stop_after_acks=None, deadline=120)
    failures = [line for line in lines if line.startswith("FAIL ")]
    assert failures == ["FAIL server.logging_failed False"]
    acks = _acks(lines)
    assert acks, "the cap left no room for a single record"
    with MessageLogStore(db) as store:
        assert store.verify() == len(acks)
        assert {record.id: record.query_id for record in store.records()} == acks
