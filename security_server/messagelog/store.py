"""The message log's SQLite store: hash-linked records, appended one transaction per batch.

One table, ``logrecord``, holds what X-Road's ``logrecord`` holds for a message record (XROAD-REFERENCE.md §4.5:
query id, message, signature, hash chain and result, signature hash, direction, client, X-Request-Id) plus the
hash link of :mod:`security_server.core.logchain`. ``chain_anchor`` holds where the chain in this database
starts (the first record id and the link before it), so that records removed after archiving (issue 7) leave
a verifiable rest. The nullable ``timestamp_id`` and ``ts_hashchain`` columns are left for batch timestamps
(issue 7); they are not part of the link, because a timestamp is added to a record after it was written.

Durability (PERFORMANCE-NOTES.md B.7, C.3.5): WAL journal, ``synchronous=FULL`` by default so that a committed
record survives a power cut, not only a crash (``NORMAL`` is configurable and survives a process crash only);
records arrive in batches and each batch is one transaction. Every SQLite failure leaves as
:class:`~security_server.core.errors.DatabaseError`, never as a bare ``sqlite3`` exception.

A store object belongs to the thread that opened it (sqlite3's rule); the ordered writer owns one in its thread.
"""

from __future__ import annotations

import contextlib
import enum
import sqlite3
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import sqlite_utils
from sqlite_utils.db import Database, TransactionError
from sqlite_utils.migrations import Migrations

from security_server.core.errors import DatabaseError, LogChainBroken
from security_server.core.logchain import (
    GENESIS_LINK,
    Direction,
    LogEntry,
    LogRecord,
    make_record,
    micros_to_time,
    time_to_micros,
    verify_chain,
)

DEFAULT_BUSY_TIMEOUT = 5.0
"""Seconds a write waits for another connection's lock before it fails."""


class Synchronous(enum.StrEnum):
    """SQLite's ``synchronous`` setting for the log (https://www.sqlite.org/pragma.html#pragma_synchronous)."""

    FULL = "FULL"
    """Every commit is fsynced: a record is kept through a power cut (the default)."""
    NORMAL = "NORMAL"
    """The WAL is fsynced at checkpoints only: kept through a process crash, not a power cut; ~4x faster."""


MIGRATIONS = Migrations("fedbus.messagelog")
"""The schema, as an ordered set of migrations; a later issue appends to it."""

_COLUMNS = (
    "id",
    "query_id",
    "x_request_id",
    "direction",
    "client",
    "service",
    "time_us",
    "message",
    "signature",
    "hashchain",
    "hashchainresult",
    "signature_hash",
    "succeeded",
    "fault_code",
    "prev_link",
    "link",
)
_TEXT_COLUMNS = frozenset({"query_id", "x_request_id", "direction", "client", "service", "fault_code"})
# Text is read as raw bytes and decoded here, so a row holding invalid UTF-8 is reported as a malformed record
# (LogChainBroken naming it) rather than failing inside the sqlite3 module.
_SELECT = "SELECT {} FROM logrecord".format(
    ", ".join(f"CAST({name} AS BLOB)" if name in _TEXT_COLUMNS else name for name in _COLUMNS)
)
_INSERT = f"INSERT INTO logrecord ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' for _ in _COLUMNS)})"


@MIGRATIONS()
def m001_logrecord(db: Database) -> None:
    """Create the record table and the chain anchor."""
    db.table("logrecord").create(
        {
            "id": int,
            "query_id": str,
            "x_request_id": str,
            "direction": str,
            "client": str,
            "service": str,
            "time_us": int,
            "message": bytes,
            "signature": bytes,
            "hashchain": bytes,
            "hashchainresult": bytes,
            "signature_hash": bytes,
            "succeeded": int,
            "fault_code": str,
            "prev_link": bytes,
            "link": bytes,
            # Filled in by batch timestamping (issue 7); outside the hash link.
            "timestamp_id": int,
            "ts_hashchain": bytes,
        },
        pk="id",
        not_null={
            "query_id",
            "direction",
            "client",
            "service",
            "time_us",
            "message",
            "signature",
            "signature_hash",
            "succeeded",
            "prev_link",
            "link",
        },
        strict=True,
    )
    db.table("logrecord").create_index(["query_id"])
    db.table("logrecord").create_index(["time_us"])
    db.table("chain_anchor").create(
        {"id": int, "first_id": int, "prev_link": bytes}, pk="id", not_null={"first_id", "prev_link"}, strict=True
    )
    db.execute("INSERT INTO chain_anchor (id, first_id, prev_link) VALUES (1, 1, ?)", [GENESIS_LINK])


def _known_migrations() -> set[str]:
    """The names of every migration this version knows (all of them are pending on an empty database)."""
    with Database(memory=True, execute_plugins=False) as empty:
        return {migration.name for migration in MIGRATIONS.pending(empty)}


@contextlib.contextmanager
def _database_errors(action: str) -> Iterator[None]:
    """Turn any SQLite failure during ``action`` into :class:`DatabaseError`."""
    try:
        yield
    except (sqlite3.Error, TransactionError) as err:
        raise DatabaseError(f"message log: {action} failed", reason=f"message log: {action} failed: {err}") from err


def _row_values(record: LogRecord) -> tuple[Any, ...]:
    return (
        record.id,
        record.query_id,
        record.x_request_id,
        record.direction.value,
        record.client,
        record.service,
        time_to_micros(record.time),
        record.message,
        record.signature,
        record.hashchain,
        record.hashchainresult,
        record.signature_hash,
        1 if record.succeeded else 0,
        record.fault_code,
        record.prev_link,
        record.link,
    )


def _record_from_row(row: Sequence[Any]) -> LogRecord:
    """Rebuild a record from its row; a row that cannot be a record is a broken chain at that record."""
    values = dict(zip(_COLUMNS, row))
    record_id = values["id"]
    try:
        for name in _TEXT_COLUMNS:
            if values[name] is not None:
                values[name] = bytes(values[name]).decode("utf-8")
        succeeded = values["succeeded"]
        if succeeded not in (0, 1) or type(succeeded) is not int:
            raise ValueError("succeeded is not 0 or 1")
        if type(values["time_us"]) is not int:
            raise ValueError("time_us is not an integer")
        return LogRecord(
            id=record_id,
            query_id=values["query_id"],
            x_request_id=values["x_request_id"],
            direction=Direction(values["direction"]),
            client=values["client"],
            service=values["service"],
            time=micros_to_time(values["time_us"]),
            message=values["message"],
            signature=values["signature"],
            hashchain=values["hashchain"],
            hashchainresult=values["hashchainresult"],
            signature_hash=values["signature_hash"],
            succeeded=bool(succeeded),
            fault_code=values["fault_code"],
            prev_link=values["prev_link"],
            link=values["link"],
        )
    except (ValueError, TypeError, OverflowError) as err:
        raise LogChainBroken(
            f"message log record {record_id} is malformed",
            reason=f"message log record {record_id} is malformed: {err}",
            record_id=record_id if type(record_id) is int else None,
        ) from err


class MessageLogStore:
    """The SQLite file of one security server's message log."""

    def __init__(
        self,
        path: str | Path,
        *,
        synchronous: Synchronous = Synchronous.FULL,
        busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
    ) -> None:
        self.path = Path(path)
        self.synchronous = Synchronous(synchronous)
        self._conn: sqlite3.Connection | None = None
        with _database_errors(f"opening {self.path}"):
            conn = sqlite3.connect(self.path, timeout=busy_timeout)
            try:
                self._db = Database(conn, execute_plugins=False)
                self._db.enable_wal()
                if self._db.journal_mode != "wal":
                    raise sqlite3.OperationalError("the database refused WAL journal mode")
                conn.execute(f"PRAGMA synchronous={self.synchronous.value}")
                self._migrate(conn)
            except BaseException:
                conn.close()
                raise
            self._conn = conn

    def _migrate(self, conn: sqlite3.Connection) -> None:
        """Bring the schema up to date; refuse a database written by a newer fedbus."""
        known = _known_migrations()
        unknown = [m.name for m in MIGRATIONS.applied(self._db) if m.name not in known]
        if unknown:
            raise sqlite3.DatabaseError(f"schema has migrations this version does not know: {unknown}")
        if not MIGRATIONS.pending(self._db):
            return
        # BEGIN IMMEDIATE takes the write lock first, so two processes opening a new log cannot race.
        conn.execute("BEGIN IMMEDIATE")
        try:
            MIGRATIONS.apply(self._db)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    @property
    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise DatabaseError("message log: the store is closed")
        return self._conn

    @property
    def database(self) -> sqlite_utils.Database:
        """The sqlite-utils view of the same connection (for the timestamper and archiver of issue 7)."""
        if self._conn is None:
            raise DatabaseError("message log: the store is closed")
        return self._db

    def close(self) -> None:
        """Close the connection; further calls fail with :class:`DatabaseError`."""
        conn, self._conn = self._conn, None
        if conn is not None:
            with _database_errors("closing"):
                conn.close()

    def __enter__(self) -> MessageLogStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @contextlib.contextmanager
    def _write_transaction(self, action: str) -> Iterator[sqlite3.Connection]:
        """One ``BEGIN IMMEDIATE`` ... ``COMMIT``; on any failure everything in it is rolled back."""
        conn = self._connection
        with _database_errors(action):
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    with contextlib.suppress(sqlite3.Error):
                        conn.execute("ROLLBACK")
                raise

    def _head(self, conn: sqlite3.Connection) -> tuple[int, bytes]:
        row = conn.execute("SELECT id, link FROM logrecord ORDER BY id DESC LIMIT 1").fetchone()
        if row is None:
            first_id, prev_link = self._anchor(conn)
            return first_id - 1, prev_link
        return int(row[0]), bytes(row[1])

    def _anchor(self, conn: sqlite3.Connection) -> tuple[int, bytes]:
        row = conn.execute("SELECT first_id, prev_link FROM chain_anchor WHERE id = 1").fetchone()
        if row is None or type(row[0]) is not int or type(row[1]) is not bytes:
            raise LogChainBroken("message log: the chain anchor is missing or malformed")
        return row[0], row[1]

    def head(self) -> tuple[int, bytes]:
        """The last record's id and link (or the anchor's id - 1 and link while the log is empty)."""
        with _database_errors("reading the chain head"):
            return self._head(self._connection)

    def last_link(self) -> bytes:
        """The link that the next record will carry as its ``prev_link``."""
        return self.head()[1]

    def append_entries(self, entries: Sequence[LogEntry]) -> list[LogRecord]:
        """Chain ``entries`` in order after the last record and commit them in one transaction.

        The head is read inside the write transaction, so the links always continue from what is committed:
        the chain cannot fork, even with another connection appending to the same file.
        """
        if not entries:
            return []
        with self._write_transaction(f"appending {len(entries)} records") as conn:
            last_id, link = self._head(conn)
            records = []
            for offset, entry in enumerate(entries, start=1):
                record = make_record(entry, record_id=last_id + offset, prev_link=link)
                records.append(record)
                link = record.link
            # executemany in one transaction: PERFORMANCE-NOTES.md C.3.5.
            conn.executemany(_INSERT, [_row_values(record) for record in records])
        return records

    def append_batch(self, records: Sequence[LogRecord]) -> None:
        """Commit already-linked ``records`` in one transaction, if they continue the chain exactly.

        Raises :class:`DatabaseError` (nothing written) when they do not start right after the last record,
        or :class:`LogChainBroken` when they do not verify among themselves.
        """
        if not records:
            return
        with self._write_transaction(f"appending {len(records)} records") as conn:
            last_id, last_link = self._head(conn)
            if records[0].id != last_id + 1 or records[0].prev_link != last_link:
                raise DatabaseError(
                    "message log: records do not continue the chain",
                    reason=f"message log: batch starts at record {records[0].id}, the log ends at record {last_id}",
                )
            verify_chain(records, last_link)
            conn.executemany(_INSERT, [_row_values(record) for record in records])

    def records(self, since: int = 0, *, limit: int | None = None) -> Iterator[LogRecord]:
        """The records with an id greater than ``since``, in chain order (lazily, at most ``limit``)."""
        sql = f"{_SELECT} WHERE id > ? ORDER BY id"
        params: list[int] = [since]
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        return self._iterate(sql, params, "reading records")

    def _iterate(self, sql: str, params: Iterable[Any], action: str) -> Iterator[LogRecord]:
        with _database_errors(action):
            cursor = self._connection.execute(sql, list(params))
            for row in cursor:
                yield _record_from_row(row)

    def get(self, record_id: int) -> LogRecord | None:
        """The record with id ``record_id``, if there is one."""
        return next(self._iterate(f"{_SELECT} WHERE id = ?", [record_id], "reading a record"), None)

    def find(self, query_id: str) -> list[LogRecord]:
        """Every record of the exchange with message id ``query_id`` (request and response), in chain order."""
        return list(self._iterate(f"{_SELECT} WHERE query_id = ? ORDER BY id", [query_id], "finding records"))

    def count(self) -> int:
        """How many records the database holds."""
        with _database_errors("counting records"):
            row = self._connection.execute("SELECT count(*) FROM logrecord").fetchone()
        return int(row[0])

    def verify(self) -> int:
        """Verify the whole chain from its anchor; return how many records it holds.

        Raises :class:`LogChainBroken` naming the first bad record, or :class:`DatabaseError` when the file
        cannot be read.
        """
        with _database_errors("reading the chain anchor"):
            first_id, start_link = self._anchor(self._connection)
        counted = 0

        def counting() -> Iterator[LogRecord]:
            nonlocal counted
            for record in self.records(since=first_id - 1):
                counted += 1
                yield record

        verify_chain(counting(), start_link)
        return counted
