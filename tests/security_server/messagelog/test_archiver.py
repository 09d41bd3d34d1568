"""The archiver on a real SQLite log: chained archives that verify, atomic writes, crash recovery, retention."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from twisted.internet import task
from twisted.internet.defer import gatherResults
from twisted.trial import unittest

from security_server.core.archive import verify_archive
from security_server.core.evidence import verify_evidence
from security_server.messagelog.archiver import Archiver, ArchiverSettings, _plan, _with_stamps
from security_server.messagelog.store import MessageLogStore
from security_server.messagelog.writer import MessageLogWriter
from tests.loopback import REACTOR
from tests.federation.evidence import exchange, failed_entry, federation
from tests.security_server.messagelog.stamping import stamp_all


class ThreadedClock(task.Clock):
    """A fake clock for the archiver's schedule whose thread work (building and writing archives) is real."""

    def __init__(self) -> None:
        super().__init__()
        self.advance(REACTOR.seconds())  # today, so archive names and retention read sensible dates

    def getThreadPool(self) -> Any:  # noqa: N802  # Twisted's name
        """The real reactor's pool."""
        return REACTOR.getThreadPool()

    def callFromThread(self, function: Any, *args: Any, **kwargs: Any) -> None:  # noqa: N802  # Twisted's name
        """Results come back through the real reactor."""
        REACTOR.callFromThread(function, *args, **kwargs)


class ArchiverTests(unittest.TestCase):
    """Writer and archiver on a temporary folder, on the real reactor."""

    timeout = 30

    def setUp(self) -> None:
        self.folder = Path(self.mktemp())  # type: ignore[no-untyped-call]
        self.folder.mkdir(parents=True)
        self.writer = MessageLogWriter(REACTOR, self.folder / "log.db")
        self.writer.start()
        self.addCleanup(self.writer.stop)
        self.archive_dir = self.folder / "archive"

    def archiver(self, **settings: Any) -> Archiver:
        values: dict[str, Any] = {"archive_dir": self.archive_dir}
        values.update(settings)
        return Archiver(REACTOR, self.writer, ArchiverSettings(**values))

    async def log_exchanges(self, *query_ids: str, stamp: bool = True) -> None:
        for query_id in query_ids:
            for entry in exchange(query_id):
                await self.writer.log(entry)
        if stamp:
            await self.writer.run(stamp_all)

    async def in_log(self, function: Any) -> Any:
        return await self.writer.run(function)

    def check_containers(self, data: bytes, previous: str | None) -> str:
        """Verify an archive and every container in it; return its last digest."""
        verdict = verify_archive(data, previous)
        assert verdict.ok, verdict.checks
        for name, container in verdict.containers:
            report = verify_evidence(container, federation().conf(), datetime.now(UTC))
            assert report.ok, (name, report.checks)
        assert verdict.last_digest is not None
        return verdict.last_digest

    async def test_timestamped_records_go_into_a_first_archive_that_verifies(self) -> None:
        """Four stamped records: one archive, first of its chain, every container verifies; records marked."""
        await self.log_exchanges("arch-1", "arch-2")
        archiver = self.archiver()
        [path] = await archiver.archive_now()
        assert path.parent == self.archive_dir and path.name.startswith("mlog-") and path.name.endswith(".zip")
        last = self.check_containers(path.read_bytes(), None)
        state = await self.in_log(lambda store: store.archive_state())
        assert (state.last_digest, state.last_file) == (last, path.name)
        assert path.name.endswith(f"-{last[:16]}.zip")
        assert await self.in_log(lambda store: store.archivable(100)) == []
        assert list(self.archive_dir.glob(".*")) == []  # no temporary file left behind

    async def test_the_next_archive_continues_the_chain(self) -> None:
        """A second archive's linkinginfo starts at the first archive's last digest and names its file."""
        archiver = self.archiver()
        await self.log_exchanges("chain-1")
        [first] = await archiver.archive_now()
        await self.log_exchanges("chain-2")
        [second] = await archiver.archive_now()
        first_last = self.check_containers(first.read_bytes(), None)
        verdict = verify_archive(second.read_bytes(), first_last)
        assert verdict.ok and verdict.linking is not None and verdict.linking.prev_file == first.name
        self.check_containers(second.read_bytes(), first_last)
        assert not verify_archive(second.read_bytes(), None).ok

    async def test_records_waiting_for_a_timestamp_stop_the_archive(self) -> None:
        """Archiving stops before the first record without a timestamp; nothing later is archived out of order."""
        await self.log_exchanges("wait-1")
        await self.log_exchanges("wait-2", stamp=False)
        await self.log_exchanges("wait-3", stamp=False)
        archiver = self.archiver()
        [path] = await archiver.archive_now()
        assert len(verify_archive(path.read_bytes(), None).containers) == 2
        await self.in_log(stamp_all)
        later: list[Path] = await archiver.archive_now()
        first_last = verify_archive(path.read_bytes(), None).last_digest
        assert len(later) == 1 and len(verify_archive(later[0].read_bytes(), first_last).containers) == 4

    async def test_unsigned_failure_records_are_not_archived_but_do_not_block(self) -> None:
        """A failed exchange's unsigned record has no container; the archive holds the signed ones around it."""
        request, response = exchange("mixed-1")
        for entry in (request, failed_entry("mixed-1"), response):
            await self.writer.log(entry)
        await self.in_log(stamp_all)
        [path] = await self.archiver().archive_now()
        assert [name for name, _ in verify_archive(path.read_bytes(), None).containers] == [
            "mixed-1-request-1.asice",
            "mixed-1-response-3.asice",
        ]

    async def test_archives_are_cut_at_the_size_limit_and_stay_chained(self) -> None:
        """With a tiny size limit every container goes in its own archive; the archives form one chain."""
        await self.log_exchanges("size-1", "size-2")
        paths = await self.archiver(max_archive_bytes=1).archive_now()
        assert len(paths) == 4
        previous: str | None = None
        for path in paths:
            previous = self.check_containers(path.read_bytes(), previous)

    async def test_a_crash_after_planning_rebuilds_the_same_archive_and_never_forks(self) -> None:
        """A pending archive (planned and recorded, file never written) is rebuilt byte for byte by the next run."""
        await self.log_exchanges("crash-1")

        def plan(store: MessageLogStore) -> Any:
            state = store.archive_state()
            planned = _plan(_with_stamps(store, store.archivable(100)), state.last_digest, state.last_file, 1 << 30)
            store.begin_archive(planned.pending)
            return planned

        planned = await self.in_log(plan)  # ... and the process died here
        await self.log_exchanges("crash-2")  # more traffic before the restart
        paths = await self.archiver().archive_now()
        assert paths[0].name == planned.pending.file_name
        assert paths[0].read_bytes() == planned.built.data
        first_last = self.check_containers(paths[0].read_bytes(), None)
        assert len(paths) == 2
        self.check_containers(paths[1].read_bytes(), first_last)
        assert await self.in_log(lambda store: store.pending_archive()) is None

    async def test_a_crash_after_writing_before_recording_finishes_with_the_same_file(self) -> None:
        """The file written but not recorded: the next run writes the identical file again and records it."""
        await self.log_exchanges("late-1")

        def plan(store: MessageLogStore) -> Any:
            planned = _plan(_with_stamps(store, store.archivable(100)), "", "", 1 << 30)
            store.begin_archive(planned.pending)
            return planned

        planned = await self.in_log(plan)
        self.archive_dir.mkdir()
        (self.archive_dir / planned.pending.file_name).write_bytes(planned.built.data)
        [path] = await self.archiver().archive_now()
        assert path.read_bytes() == planned.built.data
        assert (await self.in_log(lambda store: store.archive_state())).last_file == path.name
        assert sorted(p.name for p in self.archive_dir.iterdir()) == [path.name]

    async def test_a_failed_write_leaves_no_archive_and_no_marks_then_completes(self) -> None:
        """When the archive folder cannot be written, no file and no archived mark appear; a later run finishes."""
        await self.log_exchanges("fail-1")
        self.archive_dir.write_bytes(b"not a folder")
        archiver = self.archiver()
        failure: Exception | None = None
        try:
            await archiver.archive_now()
        except OSError as err:
            failure = err
        assert failure is not None
        assert len(await self.in_log(lambda store: store.archivable(100))) == 2
        self.archive_dir.unlink()
        [path] = await archiver.archive_now()
        self.check_containers(path.read_bytes(), None)

    async def test_retention_deletes_archived_records_and_the_rest_still_verifies(self) -> None:
        """Archived records past retention go from the front; the chain anchor moves; the log still verifies."""
        await self.log_exchanges("old-1", "old-2")
        archiver = self.archiver(keep_records_seconds=0)
        await archiver.archive_now()
        await self.log_exchanges("new-1", stamp=False)
        assert await archiver.clean_now() == 4
        count, anchor, ids = await self.in_log(
            lambda store: (store.verify(), store.anchor(), [r.id for r in store.records()])
        )
        assert count == 2 and anchor[0] == 5 and ids == [5, 6]
        assert await archiver.clean_now() == 0  # the unarchived ones stay
        rows = await self.in_log(lambda store: store.database.execute("SELECT count(*) FROM timestamp").fetchone()[0])
        assert rows == 0  # the orphaned timestamp went with its records

    async def test_records_within_retention_are_kept(self) -> None:
        """With the default 30 days, freshly archived records stay in the database."""
        await self.log_exchanges("keep-1")
        archiver = self.archiver()
        await archiver.archive_now()
        assert await archiver.clean_now() == 0
        assert await self.in_log(lambda store: store.count()) == 2

    async def test_concurrent_runs_take_turns_and_never_fork_the_chain(self) -> None:
        """Two archive_now calls at once (e.g. the schedule and an operator) run one after the other."""
        await self.log_exchanges("turns-1", "turns-2")
        archiver = self.archiver(max_archive_bytes=1)
        first, second = await gatherResults([archiver.archive_now(), archiver.archive_now()])
        assert len(first) == 4 and second == []
        previous: str | None = None
        for path in first:
            previous = self.check_containers(path.read_bytes(), previous)

    async def test_the_scheduled_service_archives_by_itself(self) -> None:
        """Started as a service, the archiver writes the archive when its interval has passed, without being asked."""
        await self.log_exchanges("sched-1")
        clock = ThreadedClock()
        settings = ArchiverSettings(archive_dir=self.archive_dir, archive_interval_seconds=60, clean_interval_seconds=3600)
        archiver = Archiver(clock, self.writer, settings)
        archiver.startService()
        self.addCleanup(archiver.stopService)
        clock.advance(60)  # the scheduled run starts now and holds the archiver until it has finished
        await archiver.stopService()  # fires when that run has finished
        assert len(archiver.archives_written) == 1
        self.check_containers(archiver.archives_written[0].read_bytes(), None)
