"""The ordered writer: the one thread that appends to the message log, with group commit.

Every record passes through one queue and one thread, so records are chained in the order ``log()`` was
called and the chain never forks; the reactor thread never touches SQLite (CONVENTIONS.md habit 8). The
thread takes everything queued at once, chains it and commits it in one transaction (group commit:
PERFORMANCE-NOTES.md C.3.5), and only then fires the callers' Deferreds on the reactor thread. A caller is
therefore never answered before its record is durable (issue 5, "Message log, write path").

The timestamper and archiver (issue 7) write to the same file; :meth:`MessageLogWriter.run` runs their store
functions in this same thread, between batches, so the log has exactly one writer. The timestamper may also
close the door: :meth:`MessageLogWriter.set_admission` installs a check that refuses new entries (with
``TimestampingFailed`` once batch timestamping has failed for longer than the grace period).

When a batch fails (disk full, database locked past the busy timeout, a corrupt or unwritable file), its
transaction is rolled back, its callers get :class:`~security_server.core.errors.LoggingFailed`, the
writer reports itself unhealthy and drops its connection; the next batch reopens the file and continues the
chain from what is committed (SECURITY-CASES.md: "message log cannot write"; "process killed mid-write").
"""

from __future__ import annotations

import contextlib
import queue
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Generic, TypeVar

import structlog
from twisted.application.service import Service
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.interfaces import IReactorFromThreads

from security_server.core.body_logging import LOG_EVERY_BODY, BodyLogging
from security_server.core.errors import BusError, LoggingFailed
from security_server.core.logchain import LogEntry, LogRecord
from security_server.messagelog.store import DEFAULT_BUSY_TIMEOUT, MessageLogStore, Synchronous

DEFAULT_MAX_BATCH = 1000
"""The most records committed in one transaction."""

_log = structlog.get_logger("fedbus.messagelog")


@dataclass(slots=True, eq=False)
class _Pending:
    """One queued entry and the Deferred to fire once it is committed (touched on the reactor thread only)."""

    entry: LogEntry
    deferred: Deferred[LogRecord] = field(default_factory=Deferred)


@dataclass(frozen=True, slots=True)
class _Outcome:
    """What the writer thread reports for one batch: the committed records, or the error."""

    records: list[LogRecord] | None
    error: Exception | None


_T = TypeVar("_T")


@dataclass(slots=True, eq=False)
class _Call(Generic[_T]):
    """A store function to run in the writer thread, and the Deferred for its result."""

    function: Callable[[MessageLogStore], _T]
    deferred: Deferred[_T] = field(default_factory=Deferred)


AdmissionCheck = Callable[[LogEntry], "BusError | None"]
"""Decides whether the log takes an entry now: None to take it, or the error to refuse it with."""

CommitHook = Callable[[LogRecord], "Deferred[object]"]
"""Runs after a record is committed and before its caller is answered (synchronous timestamping)."""

_STOP = object()


class MessageLogWriter(Service):
    """Appends :class:`LogEntry` values to the message log in call order, one writer thread, group commit."""

    def __init__(
        self,
        reactor: IReactorFromThreads,
        path: str | Path,
        *,
        synchronous: Synchronous = Synchronous.FULL,
        busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
        max_batch: int = DEFAULT_MAX_BATCH,
        store_factory: Callable[..., MessageLogStore] = MessageLogStore,
    ) -> None:
        """``store_factory`` opens the store in the writer thread (``MessageLogStore``; a test may observe it)."""
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self._reactor = reactor
        self.path = Path(path)
        self._synchronous = synchronous
        self._busy_timeout = busy_timeout
        self._max_batch = max_batch
        self._store_factory = store_factory
        self._queue: queue.SimpleQueue[_Pending | _Call[object] | object] = queue.SimpleQueue()
        self._admission: AdmissionCheck | None = None
        self._commit_hook: CommitHook | None = None
        self._thread: threading.Thread | None = None
        self._accepting = False
        self._stopped = False
        self._stop_waiters: list[Deferred[None]] = []
        self._healthy = True
        self.body_logging: BodyLogging = LOG_EVERY_BODY
        """Which bodies the proxies log ([messagelog] ``message-body-logging``; set by the evidence services). The
        proxies apply it when they build an entry (proxy/exchange.py); the writer logs what it is given."""
        self.batches_committed = 0
        """Transactions committed so far (each holds one or more records)."""
        self.records_committed = 0
        """Records committed so far."""

    @property
    def queue_depth(self) -> int:
        """Entries and calls waiting for the writer thread (``fedbus_messagelog_queue_depth``)."""
        return self._queue.qsize()

    @property
    def healthy(self) -> bool:
        """False after a write failed, until a later write succeeds (the health check's signal)."""
        return self._healthy

    def start(self) -> None:
        """Start the writer thread; it opens the store at once, so a broken log shows as unhealthy early."""
        if self._thread is not None:
            return
        self._accepting = True
        self._thread = threading.Thread(target=self._run, name="fedbus-messagelog-writer", daemon=True)
        self._thread.start()

    def log(self, entry: LogEntry) -> Deferred[LogRecord]:
        """Queue ``entry``; the Deferred fires with its record once committed, or fails with LoggingFailed."""
        if not isinstance(entry, LogEntry):
            raise TypeError(f"expected a LogEntry, not {type(entry).__name__}")
        if not self._accepting:
            error = LoggingFailed("message log is not running", reason="message log writer is not running")
            _log.error("message_log_write_refused", query_id=entry.query_id, **error.log_fields())
            return fail(error)
        if self._admission is not None:
            refusal = self._admission(entry)
            if refusal is not None:
                _log.error("message_log_write_refused", query_id=entry.query_id, **refusal.log_fields())
                return fail(refusal)
        pending = _Pending(entry)
        self._queue.put(pending)
        return pending.deferred

    def set_admission(self, check: AdmissionCheck | None) -> None:
        """Install (or with None remove) the check every new entry must pass before it is queued."""
        self._admission = check

    def set_commit_hook(self, hook: CommitHook | None) -> None:
        """Install (or with None remove) a step between a record's commit and its caller's answer.

        The caller's Deferred fires with the record once the hook's Deferred fires, and fails with the
        hook's failure (the record stays committed: the log holds what was attempted).
        """
        self._commit_hook = hook

    def run(self, function: Callable[[MessageLogStore], _T]) -> Deferred[_T]:
        """Run ``function(store)`` in the writer thread, in order with the queued entries; fires with its result.

        For the timestamper and archiver: the log file keeps one writer. The function must not block for
        long, since entries wait behind it. A failure fails the Deferred with the function's exception (a
        store that cannot be opened fails it with :class:`LoggingFailed`).
        """
        if not self._accepting:
            return fail(LoggingFailed("message log is not running", reason="message log writer is not running"))
        call: _Call[_T] = _Call(function)
        self._queue.put(call)
        return call.deferred

    def stop(self) -> Deferred[None]:
        """Stop taking entries, commit everything already queued, close the store; fires when done."""
        if self._thread is None or self._stopped:
            return succeed(None)
        waiter: Deferred[None] = Deferred()
        self._stop_waiters.append(waiter)
        if self._accepting:
            self._accepting = False
            self._queue.put(_STOP)
        return waiter

    def startService(self) -> None:
        """Start with the application (twisted.application.service.IService)."""
        super().startService()  # type: ignore[no-untyped-call]  # Twisted leaves it unannotated
        self.start()

    def stopService(self) -> Deferred[None]:
        """Drain and close when the application stops."""
        super().stopService()  # type: ignore[no-untyped-call]  # Twisted leaves it unannotated
        return self.stop()

    # --- the writer thread ---------------------------------------------------------------------------------

    def _run(self) -> None:
        store: MessageLogStore | None = None
        store, outcome = self._open(store)
        if outcome.error is not None:
            self._report([], outcome)
        stopping = False
        while not stopping:
            batch: list[_Pending] = []
            call: _Call[object] | None = None
            item = self._queue.get()
            while True:
                if item is _STOP:
                    stopping = True
                    break
                if isinstance(item, _Call):
                    call = item  # runs after the entries queued before it
                    break
                assert isinstance(item, _Pending)
                batch.append(item)
                if len(batch) >= self._max_batch:
                    break
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
            if batch:
                store, outcome = self._commit(store, batch)
                self._report(batch, outcome)
            if call is not None:
                store = self._call(store, call)
        if store is not None:
            try:
                store.close()
            except Exception as err:  # the records are committed; only the close failed
                _log.warning("message_log_close_failed", error=str(err))
        self._reactor.callFromThread(self._thread_stopped)

    def _open(self, store: MessageLogStore | None) -> tuple[MessageLogStore | None, _Outcome]:
        if store is not None:
            return store, _Outcome([], None)
        try:
            opened = self._store_factory(self.path, synchronous=self._synchronous, busy_timeout=self._busy_timeout)
        except Exception as err:
            return None, _Outcome(None, err)
        return opened, _Outcome([], None)

    def _commit(
        self, store: MessageLogStore | None, batch: list[_Pending]
    ) -> tuple[MessageLogStore | None, _Outcome]:
        store, outcome = self._open(store)
        if store is None:
            return None, outcome
        try:
            records = store.append_entries([pending.entry for pending in batch])
        except Exception as err:  # any failure fails the batch; a bug must not leave callers waiting forever
            # Drop the connection: the next batch reopens the file and reads the head afresh.
            with contextlib.suppress(Exception):
                store.close()
            return None, _Outcome(None, err)
        return store, _Outcome(records, None)

    def _call(self, store: MessageLogStore | None, call: _Call[object]) -> MessageLogStore | None:
        store, outcome = self._open(store)
        if store is None:
            cause = outcome.error
            reason = cause.reason if isinstance(cause, BusError) else f"message log: {cause}"
            error: BaseException = LoggingFailed("message log cannot be opened", reason=reason)
            self._reactor.callFromThread(call.deferred.errback, error)
            return None
        try:
            result = call.function(store)
        except Exception as err:  # handed to the caller; the connection is dropped as after a failed batch
            with contextlib.suppress(Exception):
                store.close()
            self._reactor.callFromThread(call.deferred.errback, err)
            return None
        self._reactor.callFromThread(call.deferred.callback, result)
        return store

    def _report(self, batch: list[_Pending], outcome: _Outcome) -> None:
        self._reactor.callFromThread(self._settle, batch, outcome)

    # --- back on the reactor thread -------------------------------------------------------------------------

    def _settle(self, batch: list[_Pending], outcome: _Outcome) -> None:
        if outcome.error is None:
            records = outcome.records or []
            if records:
                self.batches_committed += 1
                self.records_committed += len(records)
                if not self._healthy:
                    _log.info("message_log_recovered", path=str(self.path))
                self._healthy = True
            hook = self._commit_hook
            for pending, record in zip(batch, records, strict=True):
                if hook is None:
                    pending.deferred.callback(record)
                else:
                    self._after_hook(hook, pending, record)
            return
        self._healthy = False
        cause = outcome.error
        reason = cause.reason if isinstance(cause, BusError) else f"message log: {type(cause).__name__}: {cause}"
        if not batch:
            error = LoggingFailed("message log cannot be written", reason=reason)
            _log.error("message_log_open_failed", path=str(self.path), **error.log_fields())
        for pending in batch:
            # One error per exchange: each caller's fault carries its own fault-detail UUID (habit 6).
            error = LoggingFailed("message log cannot be written", reason=reason)
            error.__cause__ = cause
            _log.error("message_log_write_failed", query_id=pending.entry.query_id, **error.log_fields())
            pending.deferred.errback(error)

    @staticmethod
    def _after_hook(hook: CommitHook, pending: _Pending, record: LogRecord) -> None:
        try:
            step = hook(record)
        except Exception as err:  # a hook bug must not leave the caller waiting
            pending.deferred.errback(err)
            return
        step.addCallbacks(lambda _: pending.deferred.callback(record), pending.deferred.errback)

    def _thread_stopped(self) -> None:
        self._stopped = True
        waiters, self._stop_waiters = self._stop_waiters, []
        for waiter in waiters:
            waiter.callback(None)
