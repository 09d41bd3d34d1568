"""The SQLite engine behind the store seam: one file, WAL, plain ``sqlite3`` (see the package docstring for why).

:func:`open_sqlite` opens the file with the settings every store shares: WAL journal (readers never wait for the
writer), ``synchronous`` FULL unless the store asks for NORMAL, foreign keys on, and a busy timeout so that a
write waits for another connection's lock before failing. The connection runs in autocommit mode and every
transaction is explicit: ``BEGIN IMMEDIATE`` for a write (the write lock is taken first, so a transaction that
read the chain head or a row count cannot be overtaken before it writes), ``BEGIN`` for a consistent read.

Every ``sqlite3`` exception, on opening, on a statement, while fetching or on commit, leaves as one of
:mod:`security_server.store.errors`' leaves, chosen by SQLite's primary result code
(https://www.sqlite.org/rescode.html), with the store, the action and the file in it.

A database object belongs to the thread that opened it (sqlite3's rule) unless it is opened with
``shared_between_threads``, which only allows handing it from one thread to another, never concurrent use.
"""

from __future__ import annotations

import contextlib
import enum
import sqlite3
import time
from pathlib import Path
from typing import Any, Iterable, Iterator

from security_server.core.errors import DatabaseError
from security_server.store.engine import Params, Row
from security_server.store.errors import (
    ConstraintViolated,
    DatabaseCorrupt,
    DatabaseLocked,
    DatabaseUnwritable,
    StoreClosed,
)
from security_server.store.transaction import TransactionalDatabase, TransactionState

ENGINE = "sqlite"

DEFAULT_BUSY_TIMEOUT = 5.0
"""Seconds a statement waits for another connection's lock before it fails."""

_FETCH_CHUNK = 64


class Synchronous(enum.StrEnum):
    """SQLite's ``synchronous`` setting (https://www.sqlite.org/pragma.html#pragma_synchronous)."""

    FULL = "FULL"
    """Every commit is fsynced: a committed transaction survives a power cut (the default)."""
    NORMAL = "NORMAL"
    """The WAL is fsynced at checkpoints only: a commit survives a process crash, not a power cut; faster."""


# Primary result codes (the low byte of an extended code), https://www.sqlite.org/rescode.html.
_LOCKED_CODES = frozenset({5, 6})  # SQLITE_BUSY, SQLITE_LOCKED
_CORRUPT_CODES = frozenset({11, 26})  # SQLITE_CORRUPT, SQLITE_NOTADB
_UNWRITABLE_CODES = frozenset({3, 8, 10, 13, 14})  # SQLITE_PERM, READONLY, IOERR, FULL, CANTOPEN
_CONSTRAINT_CODE = 19  # SQLITE_CONSTRAINT


def map_error(err: sqlite3.Error, *, label: str, location: str, action: str) -> DatabaseError:
    """The store error for an ``sqlite3`` exception raised while ``label`` was doing ``action`` on ``location``."""
    code = getattr(err, "sqlite_errorcode", None)
    primary = code & 0xFF if isinstance(code, int) else None
    text = str(err)
    failed = f"{label}: {action} failed"
    reason = f"{failed}: {location}: {text}"
    if isinstance(err, sqlite3.IntegrityError) or primary == _CONSTRAINT_CODE:
        return ConstraintViolated(f"{label}: {action} refused: {text}", detail=text, reason=reason)
    if primary in _LOCKED_CODES:
        return DatabaseLocked(f"{failed}: the database is locked by another connection", reason=reason)
    if primary in _CORRUPT_CODES:
        return DatabaseCorrupt(f"{failed}: the file is damaged or not a database", reason=reason)
    if primary in _UNWRITABLE_CODES:
        return DatabaseUnwritable(f"{failed}: the database cannot be opened or written", reason=reason)
    return DatabaseError(failed, reason=reason)


class SqliteCursor:
    """A statement's result; rows are fetched lazily and a failure while fetching is a store error too."""

    __slots__ = ("_cursor", "_database", "_action")

    def __init__(self, cursor: sqlite3.Cursor, database: SqliteDatabase, action: str) -> None:
        self._cursor = cursor
        self._database = database
        self._action = action

    @property
    def rowcount(self) -> int:
        """Rows changed by the statement."""
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        """The rowid of the row an INSERT created."""
        return self._cursor.lastrowid

    @property
    def columns(self) -> tuple[str, ...]:
        """The names of the selected columns."""
        return tuple(column[0] for column in self._cursor.description or ())

    # The hot path (the message log's append) passes here a few times per batch: plain try/except, no
    # context-manager objects.

    def fetchone(self) -> Row | None:
        """The next row, or None."""
        try:
            row: Row | None = self._cursor.fetchone()
        except sqlite3.Error as err:
            raise self._database.mapped(err, self._action) from err
        return row

    def fetchall(self) -> list[Row]:
        """The remaining rows."""
        try:
            rows: list[Row] = self._cursor.fetchall()
        except sqlite3.Error as err:
            raise self._database.mapped(err, self._action) from err
        return rows

    def __iter__(self) -> Iterator[Row]:
        while True:
            try:
                rows: list[Row] = self._cursor.fetchmany(_FETCH_CHUNK)
            except sqlite3.Error as err:
                raise self._database.mapped(err, self._action) from err
            if not rows:
                return
            yield from rows


class SqliteConnection:
    """The statements of the transaction that is open on a :class:`SqliteDatabase`."""

    __slots__ = ("_database",)

    engine = ENGINE

    def __init__(self, database: SqliteDatabase) -> None:
        self._database = database

    def execute(self, sql: str, params: Params = ()) -> SqliteCursor:
        """Run one statement in the open transaction."""
        return self._database.run(sql, params, self._database.current_action)

    def executemany(self, sql: str, rows: Iterable[Params]) -> SqliteCursor:
        """Run one statement for every parameter row, in the open transaction."""
        database = self._database
        action = database.current_action
        try:
            return SqliteCursor(database.raw.executemany(sql, rows), database, action)
        except sqlite3.Error as err:
            raise database.mapped(err, action) from err

    def has_table(self, name: str) -> bool:
        """Whether a table named ``name`` exists."""
        found = self.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)).fetchone()
        return found is not None


class SqliteDatabase(TransactionalDatabase[sqlite3.Connection, SqliteConnection]):
    """One SQLite file opened by :func:`open_sqlite`; implements :class:`security_server.store.engine.Database`.

    A write is ``BEGIN IMMEDIATE`` ... ``COMMIT``, a read ``BEGIN`` ... ``COMMIT``; nesting and rollback are
    :class:`~security_server.store.transaction.TransactionalDatabase`'s.
    """

    engine = ENGINE

    def __init__(self, connection: sqlite3.Connection, *, label: str, location: str) -> None:
        super().__init__(label=label, location=location, state=TransactionState())
        self._raw: sqlite3.Connection | None = connection
        self._connection = SqliteConnection(self)

    @property
    def raw(self) -> sqlite3.Connection:
        """The ``sqlite3`` connection (for this engine and its benchmark only: stores use the seam)."""
        if self._raw is None:
            raise StoreClosed(f"{self._label}: the store is closed")
        return self._raw

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` has run."""
        return self._raw is None

    def mapped(self, err: sqlite3.Error, action: str) -> DatabaseError:
        """The store error for ``err``, raised while doing ``action``."""
        return map_error(err, label=self._label, location=self._location, action=action)

    def run(self, sql: str, params: Params, action: str) -> SqliteCursor:
        """Run one statement on the connection, as it stands (inside or outside a transaction)."""
        connection = self.raw
        try:
            return SqliteCursor(connection.execute(sql, params), self, action)
        except sqlite3.Error as err:
            raise self.mapped(err, action) from err

    def execute(self, sql: str, params: Params = (), *, action: str = "running a statement") -> SqliteCursor:
        """One statement on its own, or inside the transaction open on this database."""
        return self.run(sql, params, action)

    def _check_open(self) -> None:
        """A closed file fails every transaction, a nested one too."""
        _ = self.raw

    def _borrowed(self, action: str) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        return contextlib.nullcontext(self.raw)

    def _begin(self, raw: sqlite3.Connection, action: str, *, write: bool) -> None:
        try:
            raw.execute("BEGIN IMMEDIATE" if write else "BEGIN")
        except sqlite3.Error as err:
            raise self.mapped(err, action) from err

    def _session(self, raw: sqlite3.Connection) -> SqliteConnection:
        return self._connection

    def _abort(self, raw: sqlite3.Connection, err: BaseException, action: str) -> BaseException | None:
        if raw.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                raw.execute("ROLLBACK")
        return self.mapped(err, action) if isinstance(err, sqlite3.Error) else None

    def close(self) -> None:
        """Close the file; later calls raise :class:`StoreClosed`; closing twice is fine."""
        connection, self._raw = self._raw, None
        if connection is not None:
            try:
                connection.close()
            except sqlite3.Error as err:
                raise self.mapped(err, "closing") from err


def _switch_to_wal(connection: sqlite3.Connection, busy_timeout: float) -> Any:
    """``PRAGMA journal_mode=WAL``, retried while another process holds the lock, for at most ``busy_timeout``.

    Changing the journal mode of a new file needs an exclusive lock, and SQLite answers "database is locked" at once
    rather than calling the busy handler; so N workers (or cluster nodes) opening one fresh file together would fail
    now and then (about 1 in 30 runs of three threads). Once a file is in WAL mode the pragma takes no lock.
    """
    deadline = time.monotonic() + busy_timeout
    pause = 0.005
    while True:
        try:
            return connection.execute("PRAGMA journal_mode=WAL").fetchone()
        except sqlite3.OperationalError as err:
            if "locked" not in str(err) or time.monotonic() >= deadline:
                raise
            time.sleep(pause)
            pause = min(pause * 2, 0.1)


def open_sqlite(
    path: str | Path,
    *,
    label: str,
    synchronous: Synchronous = Synchronous.FULL,
    busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
    shared_between_threads: bool = False,
) -> SqliteDatabase:
    """Open (creating if need be) the SQLite file at ``path`` in WAL mode with the shared settings.

    ``label`` names the store in error messages. A file that is not a database, cannot be created or refuses WAL
    mode raises a store error and is left as it was.
    """
    location = str(path)
    mode = Synchronous(synchronous)
    with contextlib.ExitStack() as cleanup:
        try:
            connection = sqlite3.connect(
                location, timeout=busy_timeout, isolation_level=None, check_same_thread=not shared_between_threads
            )
            cleanup.callback(connection.close)
            journal = _switch_to_wal(connection, busy_timeout)
            if journal is None or str(journal[0]).lower() != "wal":
                raise DatabaseError(
                    f"{label}: opening failed: the database refused WAL journal mode",
                    reason=f"{label}: opening failed: {location}: journal mode stays {journal and journal[0]}",
                )
            connection.execute(f"PRAGMA synchronous={mode.value}")
            connection.execute("PRAGMA foreign_keys=ON")
        except sqlite3.Error as err:
            raise map_error(err, label=label, location=location, action="opening") from err
        cleanup.pop_all()
    return SqliteDatabase(connection, label=label, location=location)
