"""The archiver at size (issue 23, item 4): it never asks the store for more than a batch, and reads off the writer."""

from __future__ import annotations

import threading
from datetime import datetime
from pathlib import Path
from typing import Any

from twisted.trial import unittest

from security_server.core.archive import verify_archive
from security_server.core.logchain import LogRecord
from security_server.messagelog.archiver import Archiver, ArchiverSettings
from security_server.messagelog.store import MessageLogStore
from security_server.messagelog.writer import MessageLogWriter
from tests.federation.evidence import exchange
from tests.loopback import REACTOR
from tests.security_server.messagelog.stamping import stamp_all


class RecordingStore(MessageLogStore):
    """A real store that notes how much each archiving call asks for, and from which thread."""

    calls: list[tuple[str, int, str]] = []

    def archivable(self, limit: int, *, before: datetime | None = None) -> list[LogRecord]:
        found = super().archivable(limit, before=before)
        self.calls.append(("archivable", limit, threading.current_thread().name))
        assert len(found) <= limit
        return found

    def records_between(self, first_id: int, last_id: int) -> list[LogRecord]:
        self.calls.append(("records_between", last_id - first_id + 1, threading.current_thread().name))
        return super().records_between(first_id, last_id)

    def delete_archived(self, *, before: datetime, limit: int = 10_000) -> int:
        deleted = super().delete_archived(before=before, limit=limit)
        self.calls.append(("delete_archived", limit, threading.current_thread().name))
        assert deleted <= limit
        return deleted


class PausesSeen:
    """The loopback reactor, noting the delay of every call scheduled through it (the cleaner's pauses)."""

    delays: list[float] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(REACTOR, name)

    def callLater(self, delay: float, function: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N802 (Twisted's name)
        self.delays.append(delay)
        return REACTOR.callLater(delay, function, *args, **kwargs)


class BoundedArchiverTests(unittest.TestCase):
    """A backlog many batches long, archived and cleaned with small batches."""

    timeout = 60

    def setUp(self) -> None:
        RecordingStore.calls = []
        folder = Path(self.mktemp())  # type: ignore[no-untyped-call]
        folder.mkdir(parents=True)
        self.writer = MessageLogWriter(REACTOR, folder / "log.db", store_factory=RecordingStore)
        self.writer.start()
        self.addCleanup(self.writer.stop)
        self.archive_dir = folder / "archive"

    async def test_a_backlog_is_taken_a_batch_at_a_time_and_never_held_whole(self) -> None:
        """Twenty records, batches of three: every read asks for at most three records and every delete for at
        most two; all twenty are archived and then deleted."""
        for n in range(10):
            for entry in exchange(f"backlog-{n}"):
                await self.writer.log(entry)
        await self.writer.run(stamp_all)
        settings = ArchiverSettings(archive_dir=self.archive_dir, read_batch=3, clean_batch=2, keep_records_seconds=0)
        archiver = Archiver(REACTOR, self.writer, settings, reader=RecordingStore)
        paths = await archiver.archive_now()
        assert len(paths) == 7  # 20 records, at most 3 per archive
        assert await archiver.clean_now() == 20
        asked: dict[str, list[int]] = {}
        for name, amount, _ in RecordingStore.calls:
            asked.setdefault(name, []).append(amount)
        assert asked["archivable"] and max(asked["archivable"]) == 3
        assert asked["delete_archived"] and max(asked["delete_archived"]) == 2
        assert max(asked.get("records_between", [0])) <= 3

    async def test_the_cleaner_pauses_after_every_full_batch(self) -> None:
        """Retention deletes batch after batch of ``clean_batch`` records, each its own call, and hands the writer
        back to the exchanges (a pause scaled by ``clean_pause_factor``) after every full batch before the next."""
        for n in range(5):
            for entry in exchange(f"pause-{n}"):
                await self.writer.log(entry)
        await self.writer.run(stamp_all)
        settings = ArchiverSettings(
            archive_dir=self.archive_dir, clean_batch=3, keep_records_seconds=0, clean_pause_factor=2.0
        )
        archiver = Archiver(PausesSeen(), self.writer, settings, reader=RecordingStore)
        await archiver.archive_now()
        PausesSeen.delays = []
        RecordingStore.calls = []
        assert await archiver.clean_now() == 10
        deletes = [amount for name, amount, _ in RecordingStore.calls if name == "delete_archived"]
        assert deletes == [3, 3, 3, 3]  # 3 + 3 + 3 + 1: a pause after each of the three full batches
        assert len(PausesSeen.delays) == 3 and min(PausesSeen.delays) >= 0

    async def test_archive_reads_do_not_run_in_the_writer_thread(self) -> None:
        """Records to archive are read through the archiver's own connection, so appends never wait behind them."""
        for entry in exchange("reader-1"):
            await self.writer.log(entry)
        await self.writer.run(stamp_all)
        archiver = Archiver(REACTOR, self.writer, ArchiverSettings(archive_dir=self.archive_dir), reader=RecordingStore)
        await archiver.archive_now()
        readers = {thread for name, _, thread in RecordingStore.calls if name == "archivable"}
        assert readers and "fedbus-messagelog-writer" not in readers

    async def test_archives_built_in_a_separate_process_are_the_same_chain(self) -> None:
        """archive-in-separate-process: a child process reads and builds; the archives chain and the records are
        marked as in the thread pool; stopping the service ends the child."""
        for n in range(3):
            for entry in exchange(f"child-{n}"):
                await self.writer.log(entry)
        await self.writer.run(stamp_all)
        settings = ArchiverSettings(archive_dir=self.archive_dir, read_batch=4, separate_process=True)
        archiver = Archiver(REACTOR, self.writer, settings)
        archiver.startService()
        paths = await archiver.archive_now()
        await archiver.stopService()
        previous = None
        for path in paths:
            verdict = verify_archive(path.read_bytes(), previous)
            assert verdict.ok, verdict.checks
            previous = verdict.last_digest
        assert len(paths) == 2 and await self.writer.run(lambda store: store.archivable(10)) == []
