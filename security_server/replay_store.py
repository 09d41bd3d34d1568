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
(``statement_timeout``). The check runs on the reactor thread, like the worker processes' shared SQLite guard
(security_server/shared_replay_guard.py): one short autocommit statement on a connection kept open.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Callable

import psycopg
import structlog

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
    ) -> None:
        super().__init__(window_seconds, skew_seconds=skew_seconds, capacity=capacity)
        self.url = url
        self._clock = clock
        self.retry_seconds = retry_seconds
        self.timeout_seconds = timeout_seconds
        self._conn: psycopg.Connection[Any] | None = None
        self._down_until: float | None = None
        self._since_sweep = 0
        self.unchecked = 0
        """Requests accepted on the local guard alone because the shared database was unavailable."""

    @property
    def shared_available(self) -> bool:
        """Whether the last attempt to reach the shared table worked (False during a fallback interval)."""
        return self._down_until is None

    def check(self, key: bytes, signing_time: datetime, now: datetime) -> None:
        """Accept ``key`` once across the cluster (or, while the database is down, once on this node)."""
        super().check(key, signing_time, now)  # the window and this node's memory: no I/O
        if self._down_until is not None and self._clock() < self._down_until:
            self.unchecked += 1
            return
        try:
            inserted = self._insert(key, signing_time.timestamp(), now)
        except psycopg.Error as err:
            self._fail(err)
            self.unchecked += 1
            return
        if self._down_until is not None:
            self._down_until = None
            log.info("replay_guard_shared_restored", database=url_without_password(self.url))
        if not inserted:
            raise replayed()

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            timeout_ms = max(1, round(self.timeout_seconds * 1000))
            conn = psycopg.connect(
                self.url, autocommit=True, connect_timeout=max(1, round(self.timeout_seconds)),
                options=f"-c statement_timeout={timeout_ms}",
            )
            try:
                for statement in _SCHEMA:
                    conn.execute(statement)
            except BaseException:
                conn.close()
                raise
            self._conn = conn
        return self._conn

    def _insert(self, key: bytes, stamp: float, now: datetime) -> bool:
        conn = self._connection()
        cursor = conn.execute(
            "INSERT INTO replay_seen (key, stamp) VALUES (%s, %s) ON CONFLICT (key) DO NOTHING", (key, stamp)
        )
        self._since_sweep += 1
        if self._since_sweep >= SWEEP_EVERY:
            self._since_sweep = 0
            conn.execute("DELETE FROM replay_seen WHERE stamp < %s", ((now - self.window).timestamp(),))
        return cursor.rowcount == 1

    def _fail(self, err: psycopg.Error) -> None:
        if self._down_until is None:
            log.warning(
                "replay_guard_shared_unavailable",
                database=url_without_password(self.url),
                error=type(err).__name__,
                fallback="node-local replay guard",
            )
        self._down_until = self._clock() + self.retry_seconds
        self.close()

    def close(self) -> None:
        """Close the connection to the shared database (the next check opens one again)."""
        if self._conn is not None:
            conn, self._conn = self._conn, None
            try:
                conn.close()
            except psycopg.Error:
                pass
