"""The seam between a store and its database engine: what a store may ask of an open database.

A store (registry, server configuration, message log) writes SQL against these three protocols and never imports
a driver. :mod:`security_server.store.sqlite` implements them over the standard library's ``sqlite3``,
:mod:`security_server.store.postgresql` over psycopg 3 and a connection pool (issue 19);
:func:`security_server.store.opening.open_database` chooses when the store is opened. The contract both keep:

- **SQL** uses ``?`` placeholders and the SQL both engines accept (``ON CONFLICT`` upserts, ``RETURNING``);
  the PostgreSQL engine rewrites the placeholders. Where a statement must differ (``BLOB`` against ``BYTEA``,
  ``STRICT`` tables, ``AUTOINCREMENT``), a migration asks :attr:`Connection.engine` and writes each form once.
- **One transaction mode.** :meth:`Database.write` is one write transaction that takes the write lock at its
  start (SQLite ``BEGIN IMMEDIATE``; PostgreSQL an advisory lock), so two writers never both read and then fail
  to upgrade; :meth:`Database.read` is one consistent snapshot. A transaction opened while another of the same
  database is open in the same thread joins it (it commits or rolls back with the outermost), so a workflow
  made of several changes commits whole. An exception leaving the outermost rolls everything back. A write may
  not start inside a read. (On PostgreSQL a failed statement spoils the rest of its transaction: a store lets
  the error leave the transaction rather than carry on inside it.)
- **One statement on its own**, :meth:`Database.execute`, runs in its own implicit transaction, or inside the
  transaction open in this thread if there is one.
- **Errors** leave as the leaves of :mod:`security_server.store.errors` (all of them
  :class:`~security_server.core.errors.DatabaseError`), never as a driver's exception, whether they happen on
  opening, on a statement, while fetching rows or on commit.
- **Rows** are tuples in the order of the ``SELECT``; :func:`as_dicts` names them by column.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any, Iterable, Iterator, Protocol, Sequence

Row = tuple[Any, ...]
"""One result row, values in the order the statement selected them."""

Params = Sequence[Any]


class Cursor(Protocol):
    """The result of one statement; a lazy cursor must be read before the next statement of its transaction."""

    @property
    def rowcount(self) -> int:
        """Rows changed by an INSERT, UPDATE or DELETE."""
        ...

    @property
    def lastrowid(self) -> int | None:
        """The integer key of the row an INSERT created (SQLite only; PostgreSQL gives None: use ``RETURNING``)."""
        ...

    @property
    def columns(self) -> tuple[str, ...]:
        """The names of the selected columns."""
        ...

    def fetchone(self) -> Row | None:
        """The next row, or None."""
        ...

    def fetchall(self) -> list[Row]:
        """The remaining rows."""
        ...

    def __iter__(self) -> Iterator[Row]:
        """The remaining rows, one at a time."""
        ...


class Connection(Protocol):
    """Statements inside one open transaction."""

    @property
    def engine(self) -> str:
        """The engine's name (``sqlite`` or ``postgresql``), for the few statements that must differ."""
        ...

    def execute(self, sql: str, params: Params = ()) -> Cursor:
        """Run one statement."""
        ...

    def executemany(self, sql: str, rows: Iterable[Params]) -> Cursor:
        """Run one statement once per parameter row (one round trip where the engine allows it)."""
        ...

    def has_table(self, name: str) -> bool:
        """Whether a table of that name exists."""
        ...


class Database(Protocol):
    """One open database of one store."""

    @property
    def engine(self) -> str:
        """The engine's name."""
        ...

    @property
    def label(self) -> str:
        """What the store calls itself in messages (``message log``, ``server configuration``, ``registry``)."""
        ...

    @property
    def location(self) -> str:
        """Where the database is (a file path; a URL without its password), for the reason of an error."""
        ...

    def write(self, action: str) -> AbstractContextManager[Connection]:
        """One write transaction; ``action`` (``appending 3 records``) names it in any error."""
        ...

    def read(self, action: str) -> AbstractContextManager[Connection]:
        """One consistent read transaction."""
        ...

    def execute(self, sql: str, params: Params = (), *, action: str) -> Cursor:
        """One statement on its own (inside the open transaction of this thread, if any)."""
        ...

    def close(self) -> None:
        """Close the database; later calls raise :class:`~security_server.store.errors.StoreClosed`."""
        ...


def as_dicts(cursor: Cursor) -> list[dict[str, Any]]:
    """The remaining rows of ``cursor`` as dictionaries keyed by column name."""
    names = cursor.columns
    return [dict(zip(names, row)) for row in cursor]
