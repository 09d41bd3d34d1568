"""The replay guard that the worker processes of one security server share: one small SQLite file (WAL).

With ``[server] workers = N`` a replayed request may reach any worker, so the keys of accepted signatures live in
``<root>/replay-guard.db``, which every worker opens; the decision itself stays the pure one of
:mod:`security_server.core.replay` (the signing-time window, then "seen before"). One check is one short
transaction on the reactor thread: ``BEGIN IMMEDIATE``, read the watermark, ``INSERT OR IGNORE`` the key,
``COMMIT`` — an insert that changes no row is a replay, whichever worker accepted the key first. The file is
written with ``synchronous = OFF``: a killed worker loses nothing (the WAL is in the OS's cache), and a machine
crash loses the guard as it would lose a single process's memory; the time window still refuses anything older.
Measured cost: docs/performance.md ("All cores").

Expired keys (signed before ``now - window``) are deleted every ``SWEEP_EVERY`` checks; when more than
``capacity`` keys are held, the earliest signed are dropped and the watermark rises past them, as in
:class:`~security_server.core.replay.ReplayGuard`.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime
from pathlib import Path

from security_server.core.errors import DatabaseError
from security_server.core.replay import (
    DEFAULT_REPLAY_CAPACITY,
    DEFAULT_REPLAY_WINDOW_SECONDS,
    ReplayGuard,
    check_signing_time,
    replayed,
)
from security_server.core.trust import DEFAULT_CLOCK_SKEW_SECONDS

FILE_NAME = "replay-guard.db"
"""The shared guard's file in the server directory."""

SWEEP_EVERY = 1000
"""Checks between two deletions of expired keys (per process)."""

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS seen (key BLOB PRIMARY KEY, stamp REAL NOT NULL) WITHOUT ROWID",
    "CREATE INDEX IF NOT EXISTS seen_stamp ON seen (stamp)",
    "CREATE TABLE IF NOT EXISTS watermark (id INTEGER PRIMARY KEY CHECK (id = 1), stamp REAL NOT NULL)",
)


class SharedReplayGuard(ReplayGuard):
    """A :class:`ReplayGuard` whose memory is a SQLite file shared by the worker processes of one server."""

    def __init__(
        self,
        path: Path,
        window_seconds: float = DEFAULT_REPLAY_WINDOW_SECONDS,
        *,
        skew_seconds: float = DEFAULT_CLOCK_SKEW_SECONDS,
        capacity: int = DEFAULT_REPLAY_CAPACITY,
    ) -> None:
        super().__init__(window_seconds, skew_seconds=skew_seconds, capacity=capacity)
        self.path = path
        self._conn: sqlite3.Connection | None = None
        self._since_sweep = 0

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            try:
                conn = sqlite3.connect(self.path, isolation_level=None, timeout=5.0, check_same_thread=False)
                conn.execute("PRAGMA journal_mode = WAL")
                conn.execute("PRAGMA synchronous = OFF")
                for statement in _SCHEMA:
                    conn.execute(statement)
            except sqlite3.Error as err:
                raise DatabaseError("replay guard: cannot open the shared store", reason=f"{self.path}: {err}") from err
            self._conn = conn
        return self._conn

    def __len__(self) -> int:
        try:
            row = self._db().execute("SELECT count(*) FROM seen").fetchone()
        except sqlite3.Error:
            return 0
        return int(row[0])

    def check(self, key: bytes, signing_time: datetime, now: datetime) -> None:
        """Accept ``key`` once across every process sharing the file, or raise :class:`InvalidRequest`."""
        check_signing_time(signing_time, now, self.window, self.skew)
        conn = self._db()
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                row = conn.execute("SELECT stamp FROM watermark WHERE id = 1").fetchone()
                if row is not None:
                    check_signing_time(signing_time, now, self.window, self.skew, floor=float(row[0]))
                inserted = conn.execute(
                    "INSERT OR IGNORE INTO seen (key, stamp) VALUES (?, ?)", (key, signing_time.timestamp())
                ).rowcount
                self._since_sweep += 1
                if self._since_sweep >= SWEEP_EVERY:
                    self._since_sweep = 0
                    self._sweep(conn, now)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        except sqlite3.Error as err:
            raise DatabaseError("replay guard: the shared store failed", reason=f"{self.path}: {err}") from err
        if inserted == 0:
            raise replayed()

    def _sweep(self, conn: sqlite3.Connection, now: datetime) -> None:
        """Forget keys signed before the window; past ``capacity``, drop the earliest and raise the watermark."""
        limit = (now - self.window).timestamp()
        forgotten = conn.execute("SELECT max(stamp) FROM seen WHERE stamp < ?", (limit,)).fetchone()[0]
        if forgotten is not None:  # what is forgotten stays refused, as in core/replay.py (a clock stepped back)
            conn.execute(
                "INSERT INTO watermark (id, stamp) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET stamp = max(stamp, ?)",
                (forgotten, forgotten),
            )
        conn.execute("DELETE FROM seen WHERE stamp < ?", (limit,))
        excess = int(conn.execute("SELECT count(*) FROM seen").fetchone()[0]) - self.capacity
        if excess > 0:
            row = conn.execute("SELECT stamp FROM seen ORDER BY stamp LIMIT 1 OFFSET ?", (excess - 1,)).fetchone()
            conn.execute("DELETE FROM seen WHERE stamp <= ?", (row[0],))
            conn.execute(
                "INSERT INTO watermark (id, stamp) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET stamp = max(stamp, ?)",
                (row[0], row[0]),
            )

    def close(self) -> None:
        """Close this process's connection."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None
