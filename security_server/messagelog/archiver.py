"""The archiver: timestamped records out to chained zip archives of ASiC-E containers, then out of the database.

X-Road's archiver (XROAD-REFERENCE.md §4.6; UG-SS §11.1.5-11.1.7; ``LogArchiver``, ``LogArchiveWriter``,
``LogCleaner``) runs every 6 hours: the timestamped records not yet archived become containers
(``asic_export``) in ``mlog-<first>-<last>-<digest16>.zip`` files of about ``archive-max-filesize`` (32 MiB)
each, whose ``linkinginfo`` chains every container to the one before it and the first to the previous
archive's last digest (``core.archive``); a second job deletes archived records older than
``keep-records-for`` (30 days).

**Atomic, and never forked.** An archive goes in four steps: (1) build it in memory from a fixed range of
records; (2) record that range, the file name and the digests in ``pending_archive``; (3) write the file to a
temporary name, ``fsync``, rename it into place, ``fsync`` the folder; (4) mark the records archived and move
the archive chain on, deleting the pending row, in one transaction. After a crash at any point the next run
finds either nothing, or the pending row, and then rebuilds the same range, which gives the same bytes (entry
times are record times) and the same name, and finishes steps 3 and 4. So there is never a half archive, and
never two archives continuing from the same digest.

**At size, in bounded memory, without stalling the proxies** (issue 23, item 4). A backlog of any size is taken
``read_batch`` records at a time (an archive never holds more), and retention deletes ``clean_batch`` records per
transaction; nothing ever holds the backlog. Reading records to archive goes through a connection of the
archiver's own in the reactor's thread pool (WAL: readers never block the writer), so the exchanges' appends never
queue behind an archive read; only the small writes (record the pending archive, mark a range archived, delete a
batch) go through the message-log writer's thread (:meth:`MessageLogWriter.run`), one short transaction each,
interleaved with the exchanges' batches. Reading and building an archive run in the thread pool, or, with
``archive-in-separate-process``, in one child process, where building containers (CPU work in Python) does not take
the proxies' interpreter lock; files are written from the thread pool; every step hands control back to the
reactor. Retention deletes small batches and waits after each three times as long as the batch held the writer, so
it takes at most a quarter of its time;
it deletes only a prefix of the chain and moves the chain anchor (``store.delete_archived``), so the rest of the log
still verifies.
"""

from __future__ import annotations

import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Callable

import structlog
from twisted.application.service import Service
from twisted.internet.defer import Deferred, DeferredLock, inlineCallbacks, succeed
from twisted.internet.task import deferLater
from twisted.internet.threads import deferToThreadPool

from security_server.core import digests
from security_server.core.archive import ArchiveEntry, BuiltArchive, archive_file_name, build_archive
from security_server.core.errors import DatabaseError
from security_server.core.logchain import LogRecord
from security_server.edge.atomic_file import PRIVATE_MODE, write_atomically
from security_server.messagelog.asic_export import record_container, record_container_name
from security_server.messagelog.store import MessageLogStore, PendingArchive, RecordTimestamp
from security_server.messagelog.writer import MessageLogWriter

DEFAULT_ARCHIVE_INTERVAL_SECONDS = 6 * 3600.0
"""How often timestamped records are archived (X-Road ``archive-interval``: every 6 hours)."""
DEFAULT_CLEAN_INTERVAL_SECONDS = 12 * 3600.0
"""How often archived records are deleted (X-Road ``clean-interval``: every 12 hours)."""
DEFAULT_KEEP_RECORDS_SECONDS = 30 * 86400.0
"""How long archived records stay in the database (X-Road ``keep-records-for``: 30 days)."""
DEFAULT_MAX_ARCHIVE_BYTES = 32 * 1024 * 1024
"""Container bytes after which an archive is closed and the next begun (X-Road ``archive-max-filesize``)."""
DEFAULT_READ_BATCH = 500
"""Records read from the database per step while filling an archive (the most an archive holds)."""
DEFAULT_CLEAN_BATCH = 200
"""Records deleted per transaction by retention (each a short stop for the writer thread)."""
DEFAULT_CLEAN_PAUSE_FACTOR = 3.0
"""Retention pauses 3 times as long as each batch held the writer: at most a quarter of the writer's time."""

_log = structlog.get_logger("fedbus.messagelog.archiver")


@dataclass(frozen=True, slots=True)
class ArchiverSettings:
    """Where archives go and how often the archiver and the cleaner run."""

    archive_dir: Path
    archive_interval_seconds: float = DEFAULT_ARCHIVE_INTERVAL_SECONDS
    clean_interval_seconds: float = DEFAULT_CLEAN_INTERVAL_SECONDS
    keep_records_seconds: float = DEFAULT_KEEP_RECORDS_SECONDS
    max_archive_bytes: int = DEFAULT_MAX_ARCHIVE_BYTES
    read_batch: int = DEFAULT_READ_BATCH
    clean_batch: int = DEFAULT_CLEAN_BATCH
    separate_process: bool = False
    """Read and build archives in a child process, off the proxies' interpreter (``archive-in-separate-process``;
    a running server's configuration defaults to true, see ``evidence_services``; this class stays in-thread by
    default so tests using it directly spawn no child)."""
    clean_pause_factor: float = DEFAULT_CLEAN_PAUSE_FACTOR
    """After each deleted batch the cleaner waits this many times as long as the batch took."""

    def __post_init__(self) -> None:
        if min(self.archive_interval_seconds, self.clean_interval_seconds) <= 0 or self.keep_records_seconds < 0:
            raise ValueError("archiver intervals must be positive and the retention not negative")
        if self.max_archive_bytes < 1 or self.read_batch < 1 or self.clean_batch < 1:
            raise ValueError("archive size, read batch and clean batch must be positive")
        if self.clean_pause_factor < 0:
            raise ValueError("the cleaner's pause factor must not be negative")


@dataclass(frozen=True, slots=True)
class _Planned:
    """An archive ready to write: its range, bytes and name."""

    pending: PendingArchive
    built: BuiltArchive


def _containers(records: list[tuple[LogRecord, RecordTimestamp | None]]) -> list[ArchiveEntry]:
    entries = []
    for record, stamp in records:
        if stamp is None:
            raise DatabaseError(f"message log: record {record.id} lost its timestamp before archiving")
        entries.append(ArchiveEntry(record_container_name(record), record_container(record, stamp), record.time))
    return entries


def _plan(
    records: list[tuple[LogRecord, RecordTimestamp | None]], prev_digest: str, prev_file: str, max_bytes: int
) -> _Planned:
    """Containers for ``records`` up to ``max_bytes`` (at least one), as an archive continuing the chain."""
    entries: list[ArchiveEntry] = []
    total = 0
    used: list[LogRecord] = []
    for (record, _), entry in zip(records, _containers(records)):
        if entries and total + len(entry.data) > max_bytes:
            break
        entries.append(entry)
        used.append(record)
        total += len(entry.data)
    built = build_archive(entries, prev_digest=prev_digest, prev_file=prev_file, algorithm=digests.SHA512)
    name = archive_file_name(used[0].time, max(r.time for r in used), built.linking.last_digest)
    pending = PendingArchive(name, used[0].id, used[-1].id, prev_digest, prev_file, built.linking.last_digest)
    return _Planned(pending, built)


def _rebuild(records: list[tuple[LogRecord, RecordTimestamp | None]], pending: PendingArchive) -> _Planned:
    """The archive a pending row describes, rebuilt from its records; it must come out identical."""
    built = build_archive(_containers(records), prev_digest=pending.prev_digest, prev_file=pending.prev_file)
    name = archive_file_name(records[0][0].time, max(r.time for r, _ in records), built.linking.last_digest)
    if (name, built.linking.last_digest) != (pending.file_name, pending.last_digest):
        raise DatabaseError(
            "message log: the pending archive cannot be rebuilt identically",
            reason=f"pending {pending.file_name}, rebuilt {name}: the records changed after the archive was planned",
        )
    return _Planned(pending, built)


def write_archive(path: Path, data: bytes) -> None:
    """Write one archive file whole (temporary file, fsync, rename, fsync the folder), readable by us only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, data, PRIVATE_MODE)


def remove_stale_temporaries(folder: Path) -> int:
    """Delete temporary files a killed archive write left in ``folder`` (``.mlog-*.tmp``: see edge/atomic_file.py).

    Only one archive run writes at a time, so a temporary file found before a run starts is a leftover.
    """
    removed = 0
    if folder.is_dir():
        for leftover in folder.glob(".mlog-*.tmp"):
            leftover.unlink(missing_ok=True)
            removed += 1
    if removed:
        _log.warning("message_log_archive_leftovers_removed", count=removed, folder=str(folder))
    return removed


ReaderFactory = Callable[[Path], MessageLogStore]
"""Opens the archiver's own (reading) connection to the log file at a path (``MessageLogStore``; a test may observe)."""


class Archiver(Service):
    """Archives timestamped records and deletes old archived ones on schedule; takes the reactor."""

    def __init__(
        self, reactor: Any, writer: MessageLogWriter, settings: ArchiverSettings, *, reader: ReaderFactory = MessageLogStore
    ) -> None:
        self._reactor = reactor
        self._writer = writer
        self._reader = reader
        self.settings = settings
        self._archive_call: Any = None
        self._clean_call: Any = None
        self._processes: ProcessPoolExecutor | None = None
        self._lock = DeferredLock()
        """Archiving and cleaning run one at a time, whoever asks (the schedule, ``/asic`` tooling, a test)."""
        self.archives_written: list[Path] = []
        """Archive files written since start, in order."""

    def startService(self) -> None:
        """Schedule the archiver and the cleaner."""
        super().startService()  # type: ignore[no-untyped-call]  # Twisted leaves it unannotated
        self._archive_call = self._reactor.callLater(self.settings.archive_interval_seconds, self._archive_tick)
        self._clean_call = self._reactor.callLater(self.settings.clean_interval_seconds, self._clean_tick)

    def stopService(self) -> Deferred[None]:
        """Stop scheduling; fires when a run in progress has finished."""
        super().stopService()  # type: ignore[no-untyped-call]  # Twisted leaves it unannotated
        for call in (self._archive_call, self._clean_call):
            if call is not None and call.active():
                call.cancel()
        self._archive_call = self._clean_call = None
        # Taking the lock waits for a run in progress; nothing else is queued behind a stopping service.
        return self._lock.run(self._stop_processes)

    def _stop_processes(self) -> None:
        if self._processes is not None:
            self._processes.shutdown(wait=False, cancel_futures=True)
            self._processes = None

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._reactor.seconds(), tz=UTC)

    def _archive_tick(self) -> None:
        def again(_: object) -> None:
            if self.running:
                self._archive_call = self._reactor.callLater(self.settings.archive_interval_seconds, self._archive_tick)

        self._scheduled(self.archive_now).addBoth(again)

    def _clean_tick(self) -> None:
        def again(_: object) -> None:
            if self.running:
                self._clean_call = self._reactor.callLater(self.settings.clean_interval_seconds, self._clean_tick)

        self._scheduled(self.clean_now).addBoth(again)

    def _scheduled(self, job: Any) -> Deferred[Any]:
        """A scheduled run: skipped while another run holds the lock; failures logged, never raised further."""
        if self._lock.locked:
            return succeed(None)

        def failed(failure: Any) -> None:
            _log.error("message_log_archiving_failed", reason=failure.getErrorMessage())

        running: Deferred[Any] = job()
        return running.addErrback(failed)

    def _in_thread(self, function: Any, *args: Any) -> Deferred[Any]:
        return deferToThreadPool(self._reactor, self._reactor.getThreadPool(), function, *args)

    def _prepare(self, function: Callable[..., _Planned | None], *args: Any) -> Deferred[_Planned | None]:
        """``function(reader, path, *args)``: read records on a connection of the archiver's own and build their
        archive, so no exchange's append waits behind an archive read. In the thread pool, or with
        ``separate_process`` in a child process (spawned on first use), where building containers does not take
        the proxies' interpreter lock."""
        path = self._writer.path
        if not self.settings.separate_process:
            return self._in_thread(function, self._reader, path, *args)
        if self._processes is None:
            self._processes = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
        future = self._processes.submit(function, self._reader, path, *args)
        return self._in_thread(future.result)

    def archive_now(self) -> Deferred[list[Path]]:
        """Archive every timestamped record not archived yet (finishing a pending archive first); fires with the
        paths written. Runs after any archiving or cleaning in progress (one run at a time)."""
        return self._lock.run(self._archive)

    @inlineCallbacks
    def _archive(self) -> Any:
        written: list[Path] = []
        yield self._in_thread(remove_stale_temporaries, self.settings.archive_dir)
        while True:
            pending = yield self._writer.run(lambda store: store.pending_archive())
            if pending is not None:
                planned = yield self._prepare(_rebuild_pending, pending)
            else:
                state = yield self._writer.run(lambda store: store.archive_state())
                planned = yield self._prepare(
                    _plan_next, self.settings.read_batch, state.last_digest, state.last_file, self.settings.max_archive_bytes
                )
                if planned is None:
                    return written
                yield self._writer.run(_begin(planned.pending))
            path = self.settings.archive_dir / planned.pending.file_name
            yield self._in_thread(write_archive, path, planned.built.data)
            count = yield self._writer.run(_finish(planned.pending, self._now()))
            written.append(path)
            self.archives_written.append(path)
            _log.info(
                "message_log_archived",
                archive=path.name,
                records=count,
                first_record=planned.pending.first_id,
                last_record=planned.pending.last_id,
                last_digest=planned.pending.last_digest,
            )

    def clean_now(self) -> Deferred[int]:
        """Delete archived records older than the retention period; fires with how many went (one run at a time)."""
        return self._lock.run(self._clean)

    @inlineCallbacks
    def _clean(self) -> Any:
        cutoff = self._now() - timedelta(seconds=self.settings.keep_records_seconds)
        total = 0
        while True:
            started = time.monotonic()
            count = yield self._writer.run(
                lambda store: store.delete_archived(before=cutoff, limit=self.settings.clean_batch)
            )
            total += count
            if count < self.settings.clean_batch:
                break
            # More to delete: leave the writer thread to the exchanges for ``clean_pause_factor`` times as long as
            # that batch held it (each batch is one transaction and one fsync, during which appends queue), so a
            # backlog's retention takes at most 1 / (1 + factor) of the writer's time (issue 23, item 4).
            held = time.monotonic() - started
            yield deferLater(self._reactor, held * self.settings.clean_pause_factor, lambda: None)
        if total:
            _log.info("message_log_cleaned", records=total, before=cutoff.isoformat())
        return total


def _plan_next(
    reader: ReaderFactory, path: Path, read_batch: int, prev_digest: str, prev_file: str, max_bytes: int
) -> _Planned | None:
    """The next archive: up to ``read_batch`` archivable records read on a connection of its own (None: none)."""
    with reader(path) as store:
        records = _with_stamps(store, store.archivable(read_batch))
    return _plan(records, prev_digest, prev_file, max_bytes) if records else None


def _rebuild_pending(reader: ReaderFactory, path: Path, pending: PendingArchive) -> _Planned:
    """The pending archive rebuilt from its records, read on a connection of its own."""
    with reader(path) as store:
        records = _with_stamps(store, store.records_between(pending.first_id, pending.last_id))
    return _rebuild(records, pending)


def _begin(pending: PendingArchive) -> Callable[[MessageLogStore], None]:
    return lambda store: store.begin_archive(pending)


def _finish(pending: PendingArchive, now: datetime) -> Callable[[MessageLogStore], int]:
    return lambda store: store.finish_archive(pending, time=now)


def _with_stamps(store: MessageLogStore, records: list[LogRecord]) -> list[tuple[LogRecord, RecordTimestamp | None]]:
    return [(record, store.timestamp_of(record.id)) for record in records]
