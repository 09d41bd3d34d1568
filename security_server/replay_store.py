"""The replay guard of a clustered security server: each node's own guard, then one table in the shared PostgreSQL.

With ``[database] url`` set, the nodes of one security server sit behind a load balancer, so a replayed request
may reach another node than the one that accepted it. :class:`ClusterReplayGuard` first asks the node's own
:class:`~security_server.core.replay.ReplayGuard` (the pure decision: signing-time window, then "seen here
before"), which refuses a replay to the same node without any I/O; a key new to this node is then inserted into
``replay_seen`` in the shared database (``INSERT ... ON CONFLICT DO NOTHING``): a row that was already there
means another node accepted it, and the request is refused as replayed.

**When PostgreSQL is down** the guard falls back to the node-local guard (X-Road has no cross-node guard at
all): the request is accepted if this node has not seen it, ``replay_guard_shared_unavailable`` is logged once
per outage, and :attr:`ClusterReplayGuard.unchecked` counts the requests accepted without the shared check.
The database is not asked again for ``retry_seconds``, so an outage costs at most one failed connection attempt
(bounded by ``timeout_seconds``) per retry interval; a statement is bounded by the same timeout
(``statement_timeout``).

**Nothing on the reactor thread waits for the database.** The server proxy awaits :meth:`ClusterReplayGuard.admit`:
the node's own memory is asked on the reactor thread, and the shared insert runs on a small thread pool of the
guard's own (``threads`` threads, each with its own autocommit connection), so while one exchange waits for its
answer every other exchange, the health check and the metrics go on. All the guard's state (the fallback
interval, the counter, the node's memory) is touched on the reactor thread only; a thread runs one statement and
returns whether it inserted a row. :meth:`ClusterReplayGuard.check` is the same decision, blocking, for callers
without a reactor (the command line, tests).
"""

from __future__ import annotations

import threading
from datetime import datetime
from typing import Any, Callable

import psycopg
import structlog
from twisted.internet import threads
from twisted.python.threadpool import ThreadPool

from security_server.core.config import url_without_password
from security_server.core.replay import (
    DEFAULT_REPLAY_CAPACITY,
    DEFAULT_REPLAY_WINDOW_SECONDS,
    ReplayGuard,
    replayed,
)
from security_server.core.trust import DEFAULT_CLOCK_SKEW_SECONDS

log = structlog.get_logger()

SWEEP_EVERY = 1000
"""Checks between two deletions of expired keys (per node)."""

DEFAULT_RETRY_SECONDS = 5.0
"""How long a node uses its local guard alone after the shared database failed."""

DEFAULT_TIMEOUT_SECONDS = 1.0
"""The most one connection attempt or one statement may take."""

DEFAULT_THREADS = 4
"""Shared inserts that may wait on the database at once (one connection each)."""

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS replay_seen (key BYTEA PRIMARY KEY, stamp DOUBLE PRECISION NOT NULL)",
    "CREATE INDEX IF NOT EXISTS replay_seen_stamp ON replay_seen (stamp)",
)


class ClusterReplayGuard(ReplayGuard):
    """A :class:`ReplayGuard` whose keys the nodes of one clustered server share through PostgreSQL."""

    def __init__(
        self,
        url: str,
        *,
        clock: Callable[[], float],
        window_seconds: float = DEFAULT_REPLAY_WINDOW_SECONDS,
        skew_seconds: float = DEFAULT_CLOCK_SKEW_SECONDS,
        capacity: int = DEFAULT_REPLAY_CAPACITY,
        retry_seconds: float = DEFAULT_RETRY_SECONDS,
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
        threads: int = DEFAULT_THREADS,
        reactor: Any = None,
    ) -> None:
        super().__init__(window_seconds, skew_seconds=skew_seconds, capacity=capacity)
        self.url = url
        self._clock = clock
        self.retry_seconds = retry_seconds
        self.timeout_seconds = timeout_seconds
        self._threads = max(1, threads)
        self._reactor = reactor
        self._pool: ThreadPool | None = None
        self._lock = threading.Lock()
        self._idle: list[psycopg.Connection[Any]] = []
        """Open connections no thread is using (taken and given back under ``_lock``)."""
        self._generation = 0
        """Raised by a failure or :meth:`close`: a connection opened before it is closed instead of kept."""
        self._schema_ready = False
        self._down_until: float | None = None
        self._since_sweep = 0
        self.unchecked = 0
        """Requests accepted on the local guard alone because the shared database was unavailable."""

    @property
    def shared_available(self) -> bool:
        """Whether the last attempt to reach the shared table worked (False during a fallback interval)."""
        return self._down_until is None

    def check(self, key: bytes, signing_time: datetime, now: datetime) -> None:
        """Accept ``key`` once across the cluster (or, while the database is down, once on this node); blocking."""
        sweep = self._local(key, signing_time, now)
        if sweep is None:
            return
        try:
            inserted = self._insert(key, signing_time.timestamp(), now, sweep, self._generation)
        except psycopg.Error as err:
            self._failed(err)
            return
        self._answered(inserted)

    async def admit(self, key: bytes, signing_time: datetime, now: datetime) -> None:
        """:meth:`check` without blocking the reactor: the shared insert runs on the guard's thread pool."""
        sweep = self._local(key, signing_time, now)
        if sweep is None:
            return
        generation = self._generation
        try:
            inserted = await threads.deferToThreadPool(
                self._the_reactor(), self._thread_pool(), self._insert,
                key, signing_time.timestamp(), now, sweep, generation,
            )
        except psycopg.Error as err:
            self._failed(err)
            return
        self._answered(inserted)

    def _local(self, key: bytes, signing_time: datetime, now: datetime) -> bool | None:
        """The node's own guard (raises on a replay to this node); None when the shared check is skipped, else
        whether this insert also sweeps expired keys."""
        super().check(key, signing_time, now)  # the window and this node's memory: no I/O
        if self._down_until is not None and self._clock() < self._down_until:
            self.unchecked += 1
            return None
        self._since_sweep += 1
        if self._since_sweep >= SWEEP_EVERY:
            self._since_sweep = 0
            return True
        return False

    def _answered(self, inserted: bool) -> None:
        if self._down_until is not None:
            self._down_until = None
            log.info("replay_guard_shared_restored", database=url_without_password(self.url))
        if not inserted:
            raise replayed()

    def _failed(self, err: psycopg.Error) -> None:
        if self._down_until is None:
            log.warning(
                "replay_guard_shared_unavailable",
                database=url_without_password(self.url),
                error=type(err).__name__,
                fallback="node-local replay guard",
            )
        self._down_until = self._clock() + self.retry_seconds
        self.unchecked += 1
        self._close_idle()

    # --- the database side: runs on a pool thread (or the caller's, for check) -------------------------------

    def _connect(self) -> psycopg.Connection[Any]:
        timeout_ms = max(1, round(self.timeout_seconds * 1000))
        conn = psycopg.connect(
            self.url, autocommit=True, connect_timeout=max(1, round(self.timeout_seconds)),
            options=f"-c statement_timeout={timeout_ms}",
        )
        if self._schema_ready:  # CREATE INDEX takes a table lock that waits for other nodes' inserts: once only
            return conn
        try:
            for statement in _SCHEMA:
                try:
                    conn.execute(statement)
                except psycopg.errors.UniqueViolation:
                    pass  # another node or thread created it at the same moment
        except BaseException:
            conn.close()
            raise
        self._schema_ready = True
        return conn

    def _insert(self, key: bytes, stamp: float, now: datetime, sweep: bool, generation: int) -> bool:
        with self._lock:
            conn = self._idle.pop() if self._idle else None
        if conn is None or conn.closed:
            conn = self._connect()
        try:
            cursor = conn.execute(
                "INSERT INTO replay_seen (key, stamp) VALUES (%s, %s) ON CONFLICT (key) DO NOTHING", (key, stamp)
            )
            inserted = cursor.rowcount == 1
            if sweep:
                conn.execute("DELETE FROM replay_seen WHERE stamp < %s", ((now - self.window).timestamp(),))
        except BaseException:
            _quietly_close(conn)
            raise
        with self._lock:
            keep = generation == self._generation
            if keep:
                self._idle.append(conn)
        if not keep:
            _quietly_close(conn)
        return inserted

    # --- resources ------------------------------------------------------------------------------------------

    def _the_reactor(self) -> Any:
        if self._reactor is None:
            from twisted.internet import reactor

            self._reactor = reactor
        return self._reactor

    def _thread_pool(self) -> ThreadPool:
        if self._pool is None:
            pool = ThreadPool(minthreads=0, maxthreads=self._threads, name="replay-guard")
            pool.start()
            self._pool = pool
            self._the_reactor().addSystemEventTrigger("during", "shutdown", self._stop_pool)
        return self._pool

    def _stop_pool(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            pool.stop()

    def _close_idle(self) -> None:
        with self._lock:
            self._generation += 1
            idle, self._idle = self._idle, []
        for conn in idle:
            _quietly_close(conn)

    def close(self) -> None:
        """Close the connections to the shared database and stop the threads (the next check opens them again)."""
        self._close_idle()
        self._stop_pool()


def _quietly_close(conn: psycopg.Connection[Any]) -> None:
    try:
        conn.close()
    except psycopg.Error:
        pass
