"""The SQLite engine: shared pragmas, its file, and every sqlite3 failure mapped to a named store error.

The seam's contract (transactions, nesting, rows, errors), which SQLite shares with PostgreSQL, is pinned on both
engines in ``test_engines``.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from security_server.core.errors import BusError, DatabaseError
from security_server.store.errors import (
    ConstraintViolated,
    DatabaseCorrupt,
    DatabaseLocked,
    DatabaseUnwritable,
)
from security_server.store.sqlite import Synchronous, map_error, open_sqlite


@pytest.fixture
def path(tmp_path: Path) -> Path:
    """Where the test database lives."""
    return tmp_path / "store.db"


def other(path: Path) -> sqlite3.Connection:
    """An independent autocommit connection to the same file."""
    return sqlite3.connect(path, isolation_level=None)


@pytest.mark.parametrize(("mode", "pragma"), [(Synchronous.FULL, 2), (Synchronous.NORMAL, 1)])
def test_every_database_opens_with_the_shared_pragmas(path: Path, mode: Synchronous, pragma: int) -> None:
    """WAL journal, the chosen synchronous level, foreign keys on and the busy timeout in milliseconds."""
    database = open_sqlite(path, label="test store", synchronous=mode, busy_timeout=2.5)
    try:
        raw = database.raw
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert raw.execute("PRAGMA synchronous").fetchone()[0] == pragma
        assert raw.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        assert raw.execute("PRAGMA busy_timeout").fetchone()[0] == 2500
        assert raw.isolation_level is None  # autocommit: every transaction is explicit
    finally:
        database.close()


def test_a_locked_database_is_database_locked_naming_the_file(path: Path) -> None:
    """A write lock held elsewhere past the busy timeout gives DatabaseLocked; the reason names the file."""
    database = open_sqlite(path, label="test store", busy_timeout=0.05)
    database.execute("CREATE TABLE t (x)")
    holder = other(path)
    holder.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(DatabaseLocked) as caught:
            with database.write("adding a row") as conn:
                conn.execute("INSERT INTO t VALUES (1)")
        assert caught.value.message == "test store: adding a row failed: the database is locked by another connection"
        assert str(path) in caught.value.reason and "locked" in caught.value.reason
        assert isinstance(caught.value.__cause__, sqlite3.OperationalError)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    with database.write("adding a row") as conn:  # and it recovers
        conn.execute("INSERT INTO t VALUES (1)")
    database.close()


def test_a_file_that_is_not_a_database_is_database_corrupt_and_left_alone(path: Path) -> None:
    """Opening garbage gives DatabaseCorrupt naming the file; the file keeps its bytes."""
    garbage = b"this is not a database\n" * 300
    path.write_bytes(garbage)
    with pytest.raises(DatabaseCorrupt) as caught:
        open_sqlite(path, label="test store")
    assert caught.value.message == "test store: opening failed: the file is damaged or not a database"
    assert str(path) in caught.value.reason
    assert path.read_bytes() == garbage


def test_a_file_that_cannot_be_created_is_database_unwritable(tmp_path: Path) -> None:
    """A path under a regular file cannot be opened: DatabaseUnwritable naming the path."""
    (tmp_path / "plain-file").write_bytes(b"")
    target = tmp_path / "plain-file" / "store.db"
    with pytest.raises(DatabaseUnwritable) as caught:
        open_sqlite(target, label="test store")
    assert str(target) in caught.value.reason


def test_a_database_that_refuses_wal_is_refused() -> None:
    """An in-memory database cannot use WAL, so the store layer will not open it."""
    with pytest.raises(DatabaseError, match="WAL"):
        open_sqlite(":memory:", label="test store")


def _error(kind: type[sqlite3.Error], code: int | None) -> sqlite3.Error:
    err = kind("engine words")
    if code is not None:
        err.sqlite_errorcode = code
    return err


@pytest.mark.parametrize(
    ("kind", "code", "expected"),
    [
        (sqlite3.OperationalError, 5, DatabaseLocked),  # SQLITE_BUSY
        (sqlite3.OperationalError, 6, DatabaseLocked),  # SQLITE_LOCKED
        (sqlite3.OperationalError, 517, DatabaseLocked),  # SQLITE_BUSY_SNAPSHOT (extended)
        (sqlite3.DatabaseError, 11, DatabaseCorrupt),  # SQLITE_CORRUPT
        (sqlite3.DatabaseError, 26, DatabaseCorrupt),  # SQLITE_NOTADB
        (sqlite3.OperationalError, 3, DatabaseUnwritable),  # SQLITE_PERM
        (sqlite3.OperationalError, 8, DatabaseUnwritable),  # SQLITE_READONLY
        (sqlite3.OperationalError, 10, DatabaseUnwritable),  # SQLITE_IOERR
        (sqlite3.OperationalError, 266, DatabaseUnwritable),  # SQLITE_IOERR_READ (extended)
        (sqlite3.OperationalError, 13, DatabaseUnwritable),  # SQLITE_FULL
        (sqlite3.OperationalError, 14, DatabaseUnwritable),  # SQLITE_CANTOPEN
        (sqlite3.IntegrityError, 2067, ConstraintViolated),  # SQLITE_CONSTRAINT_UNIQUE
        (sqlite3.IntegrityError, None, ConstraintViolated),
        (sqlite3.OperationalError, 1, DatabaseError),  # SQLITE_ERROR
        (sqlite3.ProgrammingError, None, DatabaseError),
    ],
)
def test_each_sqlite_failure_maps_to_its_store_error(
    kind: type[sqlite3.Error], code: int | None, expected: type[DatabaseError]
) -> None:
    """SQLite's primary result code picks the leaf; every leaf is a server-side database_error naming the file."""
    mapped = map_error(_error(kind, code), label="message log", location="/var/x/log.db", action="appending 3 records")
    assert type(mapped) is expected
    assert isinstance(mapped, BusError) and mapped.fault_code == "server.database_error"
    assert mapped.message.startswith("message log: appending 3 records")
    assert mapped.reason.endswith("/var/x/log.db: engine words")


def test_workers_opening_one_fresh_file_together_all_get_it(tmp_path: Path) -> None:
    """Several openers racing on a new file all end in WAL mode (SQLite refuses the loser's switch without waiting)."""
    import threading

    rounds, openers = 20, 6
    for round_number in range(rounds):
        path = tmp_path / f"fresh-{round_number}.db"
        start = threading.Barrier(openers)
        failures: list[BaseException] = []
        opened: list[str] = []

        def open_it() -> None:
            start.wait()
            try:
                database = open_sqlite(path, label="race", busy_timeout=5.0, shared_between_threads=True)
                opened.append(str(database.raw.execute("PRAGMA journal_mode").fetchone()[0]))
                database.close()
            except BaseException as err:  # noqa: BLE001 - collected and asserted below
                failures.append(err)

        threads = [threading.Thread(target=open_it) for _ in range(openers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert failures == []
        assert opened == ["wal"] * openers
