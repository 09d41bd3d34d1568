"""Running a store's tests on every engine: a ``backend`` fixture per engine, and what a test reads behind a store.

``backend`` is parametrized over ``sqlite`` and ``postgresql``: a store opened with ``backend.path`` and
``backend.url`` lands in a new SQLite file, or in a new database on the session's PostgreSQL server
(:mod:`tests.postgres`; that case is skipped without PostgreSQL unless CI is set). ``backend.dump()`` is
everything the database holds, read through an independent connection, so that "changes nothing" means the
same on both engines; ``backend.execute`` writes behind the store's back (a corrupt row, a damaged history).
"""

from __future__ import annotations

import contextlib
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, ContextManager, Iterator, Sequence

import psycopg
import pytest

from security_server.core.config import url_without_password
from security_server.store.engine import Database
from security_server.store.opening import open_database
from security_server.store.postgresql import translate

ENGINES = ("sqlite", "postgresql")


@dataclass(frozen=True)
class Backend:
    """Where one test's database is: an SQLite file (``url`` None) or a PostgreSQL database (``url``)."""

    engine: str
    path: Path
    """The SQLite file; a store on PostgreSQL is given it too and never creates it."""
    url: str | None

    @property
    def location(self) -> str:
        """Where the store layer says the database is (the file, or the URL without its password)."""
        return str(self.path) if self.url is None else url_without_password(self.url)

    def open(self, label: str = "test store", **options: Any) -> Database:
        """The database through the store layer, as a store opens it."""
        return open_database(self.url, self.path, label=label, **options)

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run one statement (``?`` placeholders) on an independent autocommit connection; its rows."""
        if self.url is None:
            with contextlib.closing(sqlite3.connect(self.path, isolation_level=None)) as conn:
                return list(conn.execute(sql, params))
        with psycopg.connect(self.url, autocommit=True) as conn:
            cursor = conn.execute(translate(sql), tuple(params) if params else None)
            return list(cursor.fetchall()) if cursor.description is not None else []

    def tables(self) -> set[str]:
        """The names of the tables in the database."""
        if self.url is None:
            return {str(row[0]) for row in self.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        return {
            str(row[0]) for row in self.execute("SELECT tablename FROM pg_catalog.pg_tables WHERE schemaname = 'public'")
        }

    def dump(self) -> list[str]:
        """Every table's definition and rows: SQLite's own dump, or PostgreSQL's catalog and rows in a fixed order."""
        if self.url is None:
            with contextlib.closing(sqlite3.connect(self.path)) as conn:
                return list(conn.iterdump())
        with psycopg.connect(self.url, autocommit=True) as conn:
            lines = [
                repr(row)
                for row in conn.execute(
                    "SELECT table_name, column_name, data_type, collation_name, is_nullable, column_default,"
                    " is_identity FROM information_schema.columns WHERE table_schema = 'public'"
                    " ORDER BY table_name, ordinal_position"
                )
            ]
            lines += [
                repr(row)
                for row in conn.execute(
                    "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_catalog.pg_constraint"
                    " WHERE connamespace = 'public'::regnamespace ORDER BY 1, 2"
                )
            ]
            tables = [row[0] for row in conn.execute("SELECT tablename FROM pg_catalog.pg_tables"
                                                     " WHERE schemaname = 'public' ORDER BY 1")]
            for table in tables:
                lines += sorted(f"{table}: {row!r}" for row in conn.execute(f'SELECT * FROM "{table}"'))
        return lines


BackendFactory = Callable[[str], ContextManager[Backend]]


@pytest.fixture(scope="session")
def new_backend(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> BackendFactory:
    """Makes a fresh backend of an engine, removed when its block ends (for tests that need several)."""

    @contextlib.contextmanager
    def make(engine: str) -> Iterator[Backend]:
        path = tmp_path_factory.mktemp(engine) / "store.db"
        if engine == "sqlite":
            yield Backend(engine, path, None)
            return
        server = request.getfixturevalue("postgres_server")
        with server.database() as url:
            yield Backend(engine, path, url)

    return make


@pytest.fixture(params=ENGINES)
def backend(request: pytest.FixtureRequest, new_backend: BackendFactory) -> Iterator[Backend]:
    """A fresh database of each engine in turn."""
    with new_backend(request.param) as made:
        yield made
