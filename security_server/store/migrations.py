"""Numbered schema migrations, recorded in the database and applied in order when a store opens.

Each store has one :class:`Schema`: its name and the tuple of its :class:`Migration` s, numbered 1, 2, 3, ...
:func:`migrate` reads what the database records in ``schema_migrations`` (one row per applied migration: store,
version, name, time), refuses a database that records a version this code does not know
(:class:`~security_server.store.errors.SchemaTooNew`, before anything is written), and applies the missing ones in
order in one write transaction together with their rows, so a migration that fails half-way leaves the database
exactly as it was, and two processes opening a new database cannot both migrate it (the write lock is taken
first, and the version is read again under it). ``schema_migrations`` has a ``store`` column so that stores
sharing one database (PostgreSQL, issue 19) keep their own histories.

Databases written before numbered migrations are adopted, not rebuilt:

- the server configuration and the message log recorded their migrations with sqlite-utils in
  ``_sqlite_migrations`` as ``m001_<name>``, ``m002_<name>``, ...; :attr:`Schema.legacy_set` names their set, and
  those rows become the first versions (with their original times). The old table is left as it was.
- the registry created its tables with ``CREATE TABLE IF NOT EXISTS`` and recorded nothing; its migration 1 is
  exactly those statements, so applying it to such a database changes nothing and records version 1.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable

from security_server.core.errors import DatabaseError
from security_server.store.engine import Connection, Database
from security_server.store.errors import SchemaTooNew

MIGRATIONS_TABLE = "schema_migrations"
LEGACY_TABLE = "_sqlite_migrations"
"""Where sqlite-utils recorded migrations before numbered migrations (server configuration, message log)."""

_CREATE_TABLE = (
    f"CREATE TABLE IF NOT EXISTS {MIGRATIONS_TABLE} (store TEXT NOT NULL, version INTEGER NOT NULL,"
    " name TEXT NOT NULL, applied_at TEXT NOT NULL, PRIMARY KEY (store, version))"
)


@dataclass(frozen=True, slots=True)
class Migration:
    """One numbered step of a store's schema; ``apply`` runs its statements inside the migration transaction."""

    version: int
    name: str
    apply: Callable[[Connection], None] = field(repr=False, compare=False)

    @property
    def legacy_name(self) -> str:
        """The name sqlite-utils recorded for this step before numbered migrations (``m002_attachments``)."""
        return f"m{self.version:03d}_{self.name}"


def sql_migration(
    version: int, name: str, *statements: str, postgresql: tuple[str, ...] | None = None
) -> Migration:
    """A migration that runs ``statements`` in order; on PostgreSQL it runs ``postgresql`` instead when given.

    Portable SQL is written once. Where the engines differ (``BLOB``/``BYTEA``, ``STRICT``, ``AUTOINCREMENT``
    against identity columns, SQLite's implicit ``rowid``), the SQLite statements stay exactly as the databases
    in the field were created with, and ``postgresql`` gives the same schema in PostgreSQL's words.
    """

    def apply(connection: Connection) -> None:
        chosen = postgresql if postgresql is not None and connection.engine == "postgresql" else statements
        for statement in chosen:
            connection.execute(statement)

    apply.__doc__ = f"Run the statements of migration {version} ({name})."
    return Migration(version, name, apply)


@dataclass(frozen=True, slots=True)
class Schema:
    """A store's migrations, numbered from 1 without gaps; later issues append to them, never edit them."""

    store: str
    migrations: tuple[Migration, ...]
    legacy_set: str | None = None
    """The sqlite-utils migration set whose ``_sqlite_migrations`` rows a database of this store may carry."""

    def __post_init__(self) -> None:
        if not self.store:
            raise ValueError("a schema needs a store name")
        versions = [m.version for m in self.migrations]
        if versions != list(range(1, len(versions) + 1)):
            raise ValueError(f"{self.store}: migrations must be numbered 1, 2, 3, ... in order, not {versions}")
        if len({m.name for m in self.migrations}) != len(self.migrations):
            raise ValueError(f"{self.store}: two migrations have the same name")

    @property
    def latest(self) -> int:
        """The version this code brings a database to."""
        return len(self.migrations)


@dataclass(frozen=True, slots=True)
class _Recorded:
    version: int
    legacy: tuple[tuple[int, str, str], ...] = ()
    """Legacy rows to copy into ``schema_migrations`` (version, name, applied_at); empty once adopted."""


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


def _too_new(schema: Schema, database: Database, what: str) -> SchemaTooNew:
    return SchemaTooNew(
        f"{database.label}: the database was written by a newer fedbus ({what}; this version knows up to"
        f" {schema.latest}); it was left untouched",
        reason=f"{database.label}: {database.location}: {what}; this version knows up to {schema.latest}",
    )


def _inconsistent(database: Database, detail: str) -> DatabaseError:
    return DatabaseError(
        f"{database.label}: the recorded schema history is inconsistent",
        reason=f"{database.label}: {database.location}: {detail}",
    )


def _recorded(connection: Connection, schema: Schema, database: Database) -> _Recorded:
    if connection.has_table(MIGRATIONS_TABLE):
        rows = connection.execute(
            f"SELECT version, name FROM {MIGRATIONS_TABLE} WHERE store = ? ORDER BY version", (schema.store,)
        ).fetchall()
        if rows:
            versions = [row[0] for row in rows]
            if versions != list(range(1, len(versions) + 1)):
                raise _inconsistent(database, f"{MIGRATIONS_TABLE} records versions {versions} of {schema.store}")
            if len(versions) > schema.latest:
                raise _too_new(schema, database, f"schema version {len(versions)}")
            for version, name in rows:
                expected = schema.migrations[version - 1].name
                if name != expected:
                    raise _inconsistent(database, f"version {version} is recorded as {name!r}, not {expected!r}")
            return _Recorded(len(versions))
    if schema.legacy_set is not None and connection.engine == "sqlite" and connection.has_table(LEGACY_TABLE):
        return _legacy(connection, schema, schema.legacy_set, database)
    return _Recorded(0)


def _legacy(connection: Connection, schema: Schema, legacy_set: str, database: Database) -> _Recorded:
    rows = connection.execute(
        f"SELECT name, applied_at FROM {LEGACY_TABLE} WHERE migration_set = ? ORDER BY rowid", (legacy_set,)
    ).fetchall()
    known = {m.legacy_name: m for m in schema.migrations}
    unknown = [str(name) for name, _ in rows if name not in known]
    if unknown:
        raise _too_new(schema, database, f"unknown migrations {', '.join(unknown)}")
    versions = [known[name].version for name, _ in rows]
    if versions != list(range(1, len(versions) + 1)):
        raise _inconsistent(database, f"{LEGACY_TABLE} records {[name for name, _ in rows]}")
    return _Recorded(len(versions), tuple((known[name].version, known[name].name, str(at)) for name, at in rows))


def migrate(database: Database, schema: Schema, *, now: Callable[[], datetime] = _utc_now) -> int:
    """Bring ``database`` to ``schema.latest`` and return it; refuse (untouched) a database from a newer fedbus."""
    with database.read("reading the schema version") as connection:
        recorded = _recorded(connection, schema, database)
    if recorded.version == schema.latest and not recorded.legacy:
        return recorded.version
    with database.write(f"migrating the schema to version {schema.latest}") as connection:
        recorded = _recorded(connection, schema, database)  # again, under the write lock
        connection.execute(_CREATE_TABLE)
        insert = f"INSERT INTO {MIGRATIONS_TABLE} (store, version, name, applied_at) VALUES (?, ?, ?, ?)"
        for version, name, applied_at in recorded.legacy:
            connection.execute(insert, (schema.store, version, name, applied_at))
        for migration in schema.migrations[recorded.version :]:
            migration.apply(connection)
            connection.execute(insert, (schema.store, migration.version, migration.name, now().isoformat()))
    return schema.latest
