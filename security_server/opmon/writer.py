"""The operational monitoring writer: drains the buffer into the store in batches, off the reactor thread.

A ``LoopingCall`` on the reactor takes up to ``max_batch`` records from the buffer every ``interval`` seconds
and hands them to the store through ``run`` (in production one dedicated worker thread, so SQLite is used from
one thread and never from the reactor: CONVENTIONS.md habit 8). While a batch is still being written the next
ticks take nothing: a stuck store leaves the records in the buffer, which stays bounded by dropping its oldest,
so the proxies are never slowed (issue 15, "Cost"). A batch that fails goes back to the front of the buffer as far
as there is room. A second ``LoopingCall`` deletes records older than the retention period.

The writer is what the health check asks about (:meth:`OpmonWriter.healthy`) and what ``/metrics`` reads
(stored, failed batches, the time of the last good write).
"""

from __future__ import annotations

from typing import Any, Callable, TypeVar

import structlog
from twisted.application.service import Service
from twisted.internet.defer import Deferred
from twisted.internet.task import LoopingCall
from twisted.python.failure import Failure
from twisted.python.threadpool import ThreadPool
from twisted.internet.threads import deferToThreadPool

from security_server.core.opmon.record import OperationalRecord
from security_server.opmon.buffer import OpmonBuffer
from security_server.opmon.store import OpmonStore

DEFAULT_INTERVAL = 1.0
DEFAULT_MAX_BATCH = 1000
DEFAULT_RETENTION_DAYS = 7
DEFAULT_CLEANUP_INTERVAL = 3600.0

_T = TypeVar("_T")

_log = structlog.get_logger("fedbus.opmon")


class SingleThread(Service):
    """One worker thread for a store: ``run(function)`` calls it there and fires a Deferred on the reactor."""

    def __init__(self, reactor: Any, name: str = "fedbus-opmon") -> None:
        self._reactor = reactor
        self._pool = ThreadPool(minthreads=1, maxthreads=1, name=name)

    def startService(self) -> None:
        super().startService()  # type: ignore[no-untyped-call]  # Twisted leaves it unannotated
        self._pool.start()

    def stopService(self) -> None:
        super().stopService()  # type: ignore[no-untyped-call]  # Twisted leaves it unannotated
        self._pool.stop()

    def run(self, function: Callable[[], _T]) -> Deferred[_T]:
        """Run ``function`` in the worker thread."""
        return deferToThreadPool(self._reactor, self._pool, function)


class OpmonWriter(Service):
    """Moves records from the buffer to the store, one batch at a time, and enforces the retention period."""

    def __init__(
        self,
        buffer: OpmonBuffer,
        store: OpmonStore,
        *,
        clock: Any,  # an IReactorTime (the reactor, or task.Clock in tests)
        run: Callable[[Callable[[], int]], Deferred[int]],
        interval: float = DEFAULT_INTERVAL,
        max_batch: int = DEFAULT_MAX_BATCH,
        retention_days: int = DEFAULT_RETENTION_DAYS,
        cleanup_interval: float = DEFAULT_CLEANUP_INTERVAL,
    ) -> None:
        if max_batch < 1 or interval <= 0 or retention_days < 0:
            raise ValueError("max_batch and interval must be positive, retention_days non-negative")
        self.buffer = buffer
        self.store = store
        self._clock = clock
        self._run = run
        self.interval = interval
        self.max_batch = max_batch
        self.retention_days = retention_days
        self.cleanup_interval = cleanup_interval
        self._flush_loop = LoopingCall(self.flush)
        self._flush_loop.clock = clock
        self._cleanup_loop = LoopingCall(self.clean_up)
        self._cleanup_loop.clock = clock
        self._writing_since: float | None = None
        self._cleaning = False
        self.stored = 0
        """Records stored since start."""
        self.failed_batches = 0
        """Batches the store refused since start."""
        self.last_success: float | None = None
        """When (reactor seconds) a batch was last stored."""
        self.last_error: str | None = None

    def startService(self) -> None:
        super().startService()  # type: ignore[no-untyped-call]  # Twisted leaves it unannotated
        self._flush_loop.start(self.interval, now=False).addErrback(self._loop_died, "flush")
        self._cleanup_loop.start(self.cleanup_interval, now=True).addErrback(self._loop_died, "cleanup")

    def stopService(self) -> None:
        super().stopService()  # type: ignore[no-untyped-call]  # Twisted leaves it unannotated
        for loop in (self._flush_loop, self._cleanup_loop):
            if loop.running:
                loop.stop()

    @staticmethod
    def _loop_died(failure: Failure, which: str) -> None:
        _log.error("opmon_loop_failed", loop=which, error=failure.getErrorMessage())

    @property
    def writing_for(self) -> float | None:
        """Seconds the batch in flight has been writing for, or None when nothing is in flight."""
        return None if self._writing_since is None else self._clock.seconds() - self._writing_since

    def healthy(self, stuck_after: float = 30.0) -> tuple[bool, str]:
        """Whether the writer works: its last batch did not fail and no batch has been writing for longer than
        ``stuck_after`` seconds; with the reason when it does not."""
        writing = self.writing_for
        if writing is not None and writing > stuck_after:
            return False, f"operational monitoring store has been writing one batch for {writing:.0f} s"
        if self.last_error is not None:
            return False, f"operational monitoring store failed: {self.last_error}"
        return True, ""

    def flush(self) -> Deferred[int] | None:
        """Store the next batch unless one is still being written; returns the write's Deferred, if any."""
        if self._writing_since is not None:
            return None
        batch = self.buffer.drain(self.max_batch)
        if not batch:
            return None
        now = self._clock.seconds()
        self._writing_since = now
        second = int(now)
        try:
            deferred = self._run(lambda: self.store.store(batch, second))
        except Exception as err:  # a runner that cannot even start the work: keep the records
            self._failed(Failure(err), batch)  # type: ignore[no-untyped-call]
            return None
        deferred.addCallbacks(self._stored, self._failed, errbackArgs=(batch,))
        return deferred

    def _stored(self, count: int) -> int:
        self._writing_since = None
        self.stored += count
        self.last_success = self._clock.seconds()
        self.last_error = None
        return count

    def _failed(self, failure: Failure, batch: list[OperationalRecord]) -> int:
        self._writing_since = None
        self.failed_batches += 1
        self.last_error = failure.getErrorMessage()
        self.buffer.put_back(batch)
        _log.error("opmon_batch_failed", records=len(batch), error=self.last_error)
        return 0

    def clean_up(self) -> Deferred[int] | None:
        """Delete the records older than the retention period (skipped while the last cleanup still runs)."""
        if self._cleaning:
            return None
        cutoff = int(self._clock.seconds()) - self.retention_days * 86400
        self._cleaning = True

        def done(result: int | Failure) -> int:
            self._cleaning = False
            if isinstance(result, Failure):
                _log.error("opmon_cleanup_failed", error=result.getErrorMessage())
                return 0
            if result:
                _log.info("opmon_records_deleted", records=result)
            return result

        try:
            deferred = self._run(lambda: self.store.delete_older_than(cutoff))
        except Exception as err:
            done(Failure(err))  # type: ignore[no-untyped-call]
            return None
        return deferred.addBoth(done)
