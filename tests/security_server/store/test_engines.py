"""The seam's contract, on every engine: one transaction mode, nesting, snapshots, rows, and errors as store errors."""

from __future__ import annotations

import sqlite3
from typing import Iterator

import psycopg
import pytest

from security_server.core.errors import DatabaseError
from security_server.store.engine import Database, as_dicts
from security_server.store.errors import ConstraintViolated, DatabaseLocked, StoreClosed
from security_server.store.postgresql import WRITE_LOCK_KEY
from tests.security_server.store.engines import Backend


@pytest.fixture
def db(backend: Backend) -> Iterator[Database]:
    """An open database with one table ``t`` (integer key, text value)."""
    database = backend.open()
    database.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, value TEXT NOT NULL)", action="creating")
    yield database
    database.close()


def values(backend: Backend) -> list[str]:
    """The values in ``t``, read through another connection."""
    return [str(row[0]) for row in backend.execute("SELECT value FROM t ORDER BY id")]


def test_a_write_commits_at_its_end(backend: Backend, db: Database) -> None:
    """Rows written in a write transaction are visible to another connection once it ends, not before."""
    with db.write("adding") as conn:
        conn.execute("INSERT INTO t (id, value) VALUES (1, 'a')")
        conn.executemany("INSERT INTO t (id, value) VALUES (?, ?)", [(2, "b"), (3, "c")])
        assert values(backend) == []
    assert values(backend) == ["a", "b", "c"]


def test_an_exception_rolls_the_whole_write_back(backend: Backend, db: Database) -> None:
    """Any exception in a write transaction leaves nothing of it and comes out unchanged."""
    with pytest.raises(ValueError, match="stop"):
        with db.write("adding") as conn:
            conn.execute("INSERT INTO t (id, value) VALUES (1, 'a')")
            raise ValueError("stop")
    assert values(backend) == [] and not db.in_transaction  # type: ignore[attr-defined]


def test_nested_transactions_join_the_outermost(backend: Backend, db: Database) -> None:
    """An inner write (or lone statement) joins the outer one and is rolled back with it."""
    with pytest.raises(ValueError):
        with db.write("outer") as conn:
            conn.execute("INSERT INTO t (id, value) VALUES (1, 'outer')")
            with db.write("inner") as inner:
                inner.execute("INSERT INTO t (id, value) VALUES (2, 'inner')")
            db.execute("INSERT INTO t (id, value) VALUES (3, 'lone')", action="adding")
            with db.read("reading inside") as reader:
                assert reader.execute("SELECT count(*) FROM t").fetchone() == (3,)
            raise ValueError("abandon")
    assert values(backend) == []


def test_a_write_cannot_start_inside_a_read(db: Database) -> None:
    """Upgrading a read transaction to a write is a programming error, refused at once."""
    with db.read("reading") as _:
        with pytest.raises(RuntimeError, match="inside a read"):
            with db.write("writing"):
                pass


def test_a_read_sees_one_state(backend: Backend, db: Database) -> None:
    """Rows committed by another connection during a read transaction are not seen until it ends."""
    db.execute("INSERT INTO t (id, value) VALUES (1, 'a')", action="adding")
    with db.read("reading") as conn:
        assert conn.execute("SELECT count(*) FROM t").fetchone() == (1,)
        backend.execute("INSERT INTO t (id, value) VALUES (2, 'b')")
        assert conn.execute("SELECT count(*) FROM t").fetchone() == (1,)
    assert db.execute("SELECT count(*) FROM t", action="counting").fetchone() == (2,)


def test_rows_come_as_tuples_or_named(backend: Backend, db: Database) -> None:
    """Cursor rows are tuples in SELECT order; as_dicts names them by column; rowcount and RETURNING are given."""
    with db.write("adding") as conn:
        cursor = conn.execute("INSERT INTO t (id, value) VALUES (1, 'a')")
        assert cursor.lastrowid == (1 if backend.engine == "sqlite" else None)  # PostgreSQL: say RETURNING
        assert conn.executemany("INSERT INTO t (id, value) VALUES (?, ?)", [(2, "b"), (3, "c")]).rowcount == 2
        assert conn.execute("INSERT INTO t (id, value) VALUES (4, 'd') RETURNING id").fetchall() == [(4,)]
        assert conn.execute("UPDATE t SET value = value || '!' WHERE id > ?", (2,)).rowcount == 2
    assert list(db.execute("SELECT id, value FROM t ORDER BY id", action="reading")) == [
        (1, "a"), (2, "b"), (3, "c!"), (4, "d!"),
    ]
    assert as_dicts(db.execute("SELECT value, id FROM t WHERE id = 2", action="reading")) == [{"value": "b", "id": 2}]
    assert db.execute("SELECT 1 FROM t WHERE id = 9", action="reading").fetchone() is None


def test_placeholders_inside_quotes_stay_text(db: Database) -> None:
    """A ``?`` or ``%`` inside a string literal is text, not a placeholder, on every engine."""
    db.execute("INSERT INTO t (id, value) VALUES (?, 'what? 100%')", (1,), action="adding")
    found = db.execute("SELECT value FROM t WHERE value LIKE '%?%' AND id = ?", (1,), action="reading").fetchone()
    assert found == ("what? 100%",)


def test_a_broken_constraint_is_constraint_violated_and_rolls_back(backend: Backend, db: Database) -> None:
    """A duplicate key raises ConstraintViolated with the engine's words; the transaction's other rows are gone too."""
    db.execute("INSERT INTO t (id, value) VALUES (1, 'a')", action="adding")
    with pytest.raises(ConstraintViolated) as caught:
        with db.write("adding twice") as conn:
            conn.execute("INSERT INTO t (id, value) VALUES (2, 'b')")
            conn.execute("INSERT INTO t (id, value) VALUES (1, 'again')")
    if backend.engine == "sqlite":
        assert caught.value.detail == "UNIQUE constraint failed: t.id"
    else:
        assert caught.value.detail.startswith('duplicate key value violates unique constraint "t_pkey"')
    assert caught.value.message.startswith("test store: adding twice refused")
    assert values(backend) == ["a"]


def test_a_write_waiting_past_the_timeout_for_the_lock_is_database_locked(backend: Backend) -> None:
    """A write lock held elsewhere past the busy timeout gives DatabaseLocked naming the database; then it recovers."""
    database = backend.open(busy_timeout=0.05)
    database.execute("CREATE TABLE t (x INTEGER)", action="creating")
    if backend.url is None:
        holder: sqlite3.Connection | psycopg.Connection[tuple[object, ...]] = sqlite3.connect(
            backend.path, isolation_level=None
        )
        holder.execute("BEGIN IMMEDIATE")
    else:
        holder = psycopg.connect(backend.url, autocommit=True)
        holder.execute("BEGIN")
        holder.execute("SELECT pg_advisory_xact_lock(%s)", (WRITE_LOCK_KEY,))
    try:
        with pytest.raises(DatabaseLocked) as caught:
            with database.write("adding a row") as conn:
                conn.execute("INSERT INTO t VALUES (1)")
        assert caught.value.message == "test store: adding a row failed: the database is locked by another connection"
        assert database.location in caught.value.reason
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    with database.write("adding a row") as conn:
        conn.execute("INSERT INTO t VALUES (1)")
    database.close()


def test_a_bad_statement_is_a_database_error(backend: Backend, db: Database) -> None:
    """SQL the engine refuses gives DatabaseError (not the driver's), the action and its words in the reason."""
    with pytest.raises(DatabaseError) as caught:
        db.execute("SELECT x FROM nowhere", action="reading nothing")
    assert type(caught.value) is DatabaseError
    assert isinstance(caught.value.__cause__, sqlite3.Error if backend.engine == "sqlite" else psycopg.Error)
    words = "no such table" if backend.engine == "sqlite" else 'relation "nowhere" does not exist'
    assert caught.value.message == "test store: reading nothing failed" and words in caught.value.reason


def test_a_closed_database_refuses_everything(db: Database) -> None:
    """After close every call raises StoreClosed; closing twice is fine."""
    db.close()
    db.close()
    with pytest.raises(StoreClosed, match="test store: the store is closed"):
        db.execute("SELECT 1", action="reading")
    with pytest.raises(StoreClosed):
        with db.write("writing"):
            pass
    with pytest.raises(StoreClosed):
        with db.read("reading"):
            pass
