"""Numbered migrations, on every engine: applied in order and once, recorded, refused when newer, rolled back whole.

PostgreSQL's DDL is transactional like SQLite's, so a migration failing half-way leaves nothing on either. The
adoption of sqlite-utils' records is SQLite's alone (at the end).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Callable, Iterator

import psycopg
import pytest

from security_server.core.errors import DatabaseError
from security_server.store.engine import Connection, Database
from security_server.store.errors import SchemaTooNew
from security_server.store.migrations import Migration, Schema, migrate, sql_migration
from tests.security_server.store.engines import Backend


@pytest.fixture
def path(tmp_path: Path) -> Path:
    """Where the test database lives (the SQLite-only tests)."""
    return tmp_path / "store.db"


def dump(path: Path) -> list[str]:
    """Every statement that rebuilds the file, through an independent connection."""
    conn = sqlite3.connect(path)
    try:
        return list(conn.iterdump())
    finally:
        conn.close()


def recorded(backend: Backend, store: str = "toy") -> list[tuple[int, str]]:
    """The (version, name) rows the database records for ``store``."""
    rows = backend.execute("SELECT version, name FROM schema_migrations WHERE store = ? ORDER BY version", (store,))
    return [(int(version), str(name)) for version, name in rows]


def toy(count: int, runs: list[int], *, store: str = "toy", fail_at: int | None = None) -> Schema:
    """A schema of ``count`` migrations that note their version in ``runs`` and in a ``trail`` table."""

    def step(version: int) -> Callable[[Connection], None]:
        def apply(conn: Connection) -> None:
            runs.append(version)
            if version == 1:
                conn.execute("CREATE TABLE trail (version INTEGER NOT NULL)")
            conn.execute(f"CREATE TABLE made_by_{version} (x INTEGER)")
            conn.execute("INSERT INTO trail (version) VALUES (?)", (version,))
            if version == fail_at:
                raise RuntimeError(f"migration {version} fails half-way")

        return apply

    return Schema(store, tuple(Migration(v, f"step{v}", step(v)) for v in range(1, count + 1)))


def trail(backend: Backend) -> list[int]:
    """The versions the migrations wrote into the trail table."""
    return [int(row[0]) for row in backend.execute("SELECT version FROM trail ORDER BY version")]


def tables(path: Path) -> set[str]:
    """The names of the tables in the SQLite file."""
    return Backend("sqlite", path, None).tables()


@pytest.fixture
def database(backend: Backend) -> Iterator[Database]:
    """An open database, closed after the test."""
    db = backend.open()
    yield db
    db.close()


def test_migrations_apply_in_order_and_are_recorded(backend: Backend, database: Database) -> None:
    """A new database runs every migration once, in version order, and records each version with its name."""
    runs: list[int] = []
    assert migrate(database, toy(3, runs)) == 3
    assert runs == [1, 2, 3] and trail(backend) == [1, 2, 3]
    assert recorded(backend) == [(1, "step1"), (2, "step2"), (3, "step3")]


def test_an_up_to_date_database_runs_no_migration(backend: Backend) -> None:
    """Opening again runs nothing and writes nothing."""
    runs: list[int] = []
    with_db(backend, lambda db: migrate(db, toy(3, runs)))
    before = backend.dump()
    assert with_db(backend, lambda db: migrate(db, toy(3, runs))) == 3
    assert runs == [1, 2, 3] and backend.dump() == before


def test_only_the_new_migrations_run_on_an_older_database(backend: Backend) -> None:
    """A database at version 2 opened by code that knows 4 runs migrations 3 and 4, in that order."""
    runs: list[int] = []
    with_db(backend, lambda db: migrate(db, toy(2, runs)))
    with_db(backend, lambda db: migrate(db, toy(4, runs)))
    assert runs == [1, 2, 3, 4] and trail(backend) == [1, 2, 3, 4]
    assert [version for version, _ in recorded(backend)] == [1, 2, 3, 4]


def test_a_newer_database_is_refused_and_left_untouched(backend: Backend) -> None:
    """A database at version 3 opened by code that knows 2 raises SchemaTooNew naming the file; nothing changes."""
    with_db(backend, lambda db: migrate(db, toy(3, [])))
    before = backend.dump()
    runs: list[int] = []
    with pytest.raises(SchemaTooNew) as caught:
        with_db(backend, lambda db: migrate(db, toy(2, runs)))
    assert isinstance(caught.value, DatabaseError) and caught.value.fault_code == "server.database_error"
    assert "newer fedbus" in caught.value.message and "version 3" in caught.value.message
    assert backend.location in caught.value.reason
    assert runs == [] and backend.dump() == before


def test_a_migration_failing_half_way_rolls_back_everything_it_did(backend: Backend) -> None:
    """An exception inside migration 3 leaves the database at version 2: no table, no trail row, no record of 3."""
    with_db(backend, lambda db: migrate(db, toy(2, [])))
    before = backend.dump()
    with pytest.raises(RuntimeError, match="half-way"):
        with_db(backend, lambda db: migrate(db, toy(4, [], fail_at=3)))
    assert backend.dump() == before
    assert "made_by_3" not in backend.tables() and [v for v, _ in recorded(backend)] == [1, 2]
    runs: list[int] = []
    with_db(backend, lambda db: migrate(db, toy(4, runs)))
    assert runs == [3, 4]


def test_a_failed_first_migration_leaves_a_new_database_empty(backend: Backend) -> None:
    """On a new database a failing migration rolls back the earlier ones of the same run and the history table."""
    with pytest.raises(RuntimeError):
        with_db(backend, lambda db: migrate(db, toy(3, [], fail_at=2)))
    assert backend.tables() == set()


def test_a_failing_statement_in_a_migration_is_a_database_error_and_rolls_back(backend: Backend) -> None:
    """An SQL error in a migration leaves as DatabaseError (not the driver's) and nothing of the run stays."""
    schema = Schema(
        "toy", (sql_migration(1, "good", "CREATE TABLE a (x INTEGER)"), sql_migration(2, "bad", "CREATE TABLE a (y INTEGER)"))
    )
    with pytest.raises(DatabaseError) as caught:
        with_db(backend, lambda db: migrate(db, schema))
    assert isinstance(caught.value.__cause__, sqlite3.Error if backend.engine == "sqlite" else psycopg.Error)
    assert "already exists" in caught.value.reason and backend.tables() == set()


def test_stores_sharing_a_database_keep_their_own_histories(backend: Backend) -> None:
    """Two schemas migrated in one database are recorded under their own store names."""
    with_db(backend, lambda db: migrate(db, Schema("one", (sql_migration(1, "a", "CREATE TABLE one_a (x INTEGER)"),))))
    with_db(backend, lambda db: migrate(db, Schema("two", (sql_migration(1, "b", "CREATE TABLE two_b (x INTEGER)"),))))
    assert recorded(backend, "one") == [(1, "a")] and recorded(backend, "two") == [(1, "b")]


def test_a_history_that_is_not_this_stores_is_refused(backend: Backend) -> None:
    """A recorded version whose name differs from this code's migration of that number is a DatabaseError."""
    with_db(backend, lambda db: migrate(db, Schema("toy", (sql_migration(1, "other", "CREATE TABLE t (x INTEGER)"),))))
    with pytest.raises(DatabaseError, match="inconsistent"):
        with_db(backend, lambda db: migrate(db, Schema("toy", (sql_migration(1, "mine", "CREATE TABLE u (x INTEGER)"),))))


def test_a_history_with_a_gap_is_refused(backend: Backend) -> None:
    """Versions 1 and 3 without 2 are an inconsistent history, refused rather than guessed at."""
    with_db(backend, lambda db: migrate(db, toy(3, [])))
    backend.execute("DELETE FROM schema_migrations WHERE version = 2")
    with pytest.raises(DatabaseError, match="inconsistent"):
        with_db(backend, lambda db: migrate(db, toy(3, [])))


@pytest.mark.parametrize(
    "versions",
    [(2,), (1, 3), (1, 1), (2, 1)],
    ids=["starts-at-2", "gap", "repeated", "out-of-order"],
)
def test_a_schema_must_number_its_migrations_from_one_without_gaps(versions: tuple[int, ...]) -> None:
    """Schema() refuses migrations not numbered 1, 2, 3, ... in order."""
    with pytest.raises(ValueError):
        Schema("toy", tuple(sql_migration(v, f"m{i}", "SELECT 1") for i, v in enumerate(versions)))


def test_a_schema_refuses_two_migrations_of_one_name() -> None:
    """Two migrations with the same name are refused."""
    with pytest.raises(ValueError):
        Schema("toy", (sql_migration(1, "same", "SELECT 1"), sql_migration(2, "same", "SELECT 1")))


def legacy(path: Path, names: list[str]) -> None:
    """A database whose migrations sqlite-utils recorded under the set ``fedbus.toy``, one table per step."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("CREATE TABLE _sqlite_migrations (id INTEGER PRIMARY KEY, migration_set TEXT, name TEXT, applied_at TEXT)")
    for name in names:
        conn.execute(f"CREATE TABLE legacy_{name} (x)")
        conn.execute(
            "INSERT INTO _sqlite_migrations (migration_set, name, applied_at) VALUES ('fedbus.toy', ?, '2026-01-02')",
            (name,),
        )
    conn.execute("INSERT INTO _sqlite_migrations (migration_set, name, applied_at) VALUES ('other', 'm009_x', 'x')")
    conn.close()


def legacy_schema(count: int) -> Schema:
    """The legacy toy store's migrations as numbered migrations (each makes its legacy table)."""
    return Schema(
        "toy",
        tuple(sql_migration(v, f"step{v}", f"CREATE TABLE legacy_m{v:03d}_step{v} (x)") for v in range(1, count + 1)),
        legacy_set="fedbus.toy",
    )


def test_sqlite_utils_records_are_adopted_as_the_first_versions(path: Path) -> None:
    """A database migrated by sqlite-utils through m002 is recorded at 1 and 2 (their times kept); 3 then runs."""
    legacy(path, ["m001_step1", "m002_step2"])
    with_sqlite(path, lambda db: migrate(db, legacy_schema(3)))
    conn = sqlite3.connect(path)
    rows = conn.execute("SELECT version, name, applied_at FROM schema_migrations ORDER BY version").fetchall()
    legacy_rows = conn.execute("SELECT count(*) FROM _sqlite_migrations").fetchone()[0]
    conn.close()
    assert rows[:2] == [(1, "step1", "2026-01-02"), (2, "step2", "2026-01-02")]
    assert [row[:2] for row in rows[2:]] == [(3, "step3")] and "legacy_m003_step3" in tables(path)
    assert legacy_rows == 3  # the old table is left as it was


def test_a_sqlite_utils_record_this_code_does_not_know_is_a_newer_database(path: Path) -> None:
    """A legacy migration name that no migration here carries is refused as a newer database, untouched."""
    legacy(path, ["m001_step1", "m002_step2", "m003_later"])
    before = dump(path)
    with pytest.raises(SchemaTooNew, match="m003_later"):
        with_sqlite(path, lambda db: migrate(db, legacy_schema(2)))
    assert dump(path) == before


def with_db(backend: Backend, action: Callable[[Database], int]) -> int:
    """Open the database, run ``action`` on it, close it; what ``action`` returned."""
    db = backend.open()
    try:
        return action(db)
    finally:
        db.close()


def with_sqlite(path: Path, action: Callable[[Database], int]) -> int:
    """:func:`with_db` on the SQLite file at ``path``."""
    return with_db(Backend("sqlite", path, None), action)
