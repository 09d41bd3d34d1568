"""The PostgreSQL engine behind the store seam: psycopg 3 and a connection pool, for what clustered nodes share.

:func:`open_postgresql` checks the URL with one direct connection first, so that a refused connection, wrong
credentials or an unknown database fail at start-up with PostgreSQL's own words and the setting that named the
URL (``[database] url``, never its password), then keeps a :class:`psycopg_pool.ConnectionPool`. Each thread
that opens a transaction borrows one connection for the whole outermost transaction and gives it back at its
end; a statement on its own borrows one for that statement. Connections are checked when borrowed, so a
database that restarted costs no failed statement, and one that is down fails after the pool's wait with
:class:`~security_server.store.errors.DatabaseUnreachable`.

**The same transaction semantics as the SQLite engine.** A write is ``BEGIN ISOLATION LEVEL READ COMMITTED``
followed by a transaction-scoped advisory lock (one key per database, :data:`WRITE_LOCK_KEY`): writers of a
database run one at a time, like SQLite's ``BEGIN IMMEDIATE``, and since each statement of a READ COMMITTED
transaction sees what committed before it, a writer that waited sees the previous writer's rows and never fails
to serialize. A read is ``BEGIN ISOLATION LEVEL REPEATABLE READ``: one snapshot for all its statements.
Transactions nest by joining the outermost (per thread), and a write may not start inside a read. Waiting for
the lock is bounded by ``lock_timeout`` (the SQLite engine's busy timeout); giving up is
:class:`~security_server.store.errors.DatabaseLocked`. DDL is transactional, so a migration failing half-way
leaves nothing behind, as on SQLite.

**Placeholders are translated, not the stores' SQL.** Stores write ``?`` (the seam's one placeholder, which
SQLite requires in that form and psycopg does not accept); this engine rewrites each ``?`` outside string
literals, quoted identifiers and comments to ``%s`` and doubles a literal ``%``, once per distinct statement.
No placeholder spelling is accepted by both drivers, and translating in one place keeps every store's SQL
written once. (So PostgreSQL's own ``?`` operators, jsonb's, cannot be written through the seam; no store needs
them.)

**Rows** are read in full when a statement runs (psycopg's client-side cursors hold them anyway), so a cursor
stays readable after its connection went back to the pool. ``lastrowid`` is always None: an INSERT that needs
its key says ``RETURNING`` (SQLite has it too).

Errors map by SQLSTATE (https://www.postgresql.org/docs/current/errcodes-appendix.html): class 23 is
:class:`ConstraintViolated`; serialization failures, deadlocks, lock and statement timeouts are
:class:`DatabaseLocked`; connection failures, refused credentials, an unknown database and a server shutting
down are :class:`DatabaseUnreachable`; a full disk, missing privileges or a read-only server (a standby) are
:class:`DatabaseUnwritable`; damaged data is :class:`DatabaseCorrupt`.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import threading
from typing import Any, Iterable, Iterator, NoReturn
from urllib.parse import urlsplit

import psycopg
import psycopg_pool

from security_server.core.config import url_without_password
from security_server.core.errors import DatabaseError
from security_server.store.engine import Params, Row
from security_server.store.errors import (
    ConstraintViolated,
    DatabaseCorrupt,
    DatabaseLocked,
    DatabaseUnreachable,
    DatabaseUnwritable,
    StoreClosed,
)
from security_server.store.transaction import TransactionalDatabase, TransactionState

ENGINE = "postgresql"

DEFAULT_LOCK_TIMEOUT = 5.0
"""Seconds a write waits for another writer's lock before it fails (the SQLite engine's busy timeout)."""
DEFAULT_CONNECT_TIMEOUT = 5.0
"""Seconds to wait for a connection: the first one on opening, and one from the pool later."""
DEFAULT_POOL_SIZE = 4
"""Connections one open database keeps at most (one per thread inside a transaction)."""

WRITE_LOCK_KEY = int.from_bytes(hashlib.sha256(b"fedbus store write lock").digest()[:8], "big", signed=True)
"""The advisory lock every write transaction of a database takes first (one writer at a time, as on SQLite)."""

_BEGIN_WRITE = f"BEGIN ISOLATION LEVEL READ COMMITTED; SELECT pg_advisory_xact_lock({WRITE_LOCK_KEY})"
_BEGIN_READ = "BEGIN ISOLATION LEVEL REPEATABLE READ"

_UNREACHABLE_STATES = frozenset({"3D000", "57P01", "57P02", "57P03", "53300"})
"""Unknown database, server shutting down or starting, too many connections."""
_LOCKED_STATES = frozenset({"40001", "40P01", "55P03", "57014"})
"""Serialization failure, deadlock, lock not available (lock_timeout), statement cancelled (statement_timeout)."""
_UNWRITABLE_STATES = frozenset({"42501", "25006"})
"""Insufficient privilege, read-only transaction (a hot standby)."""
_CORRUPT_STATES = frozenset({"XX001", "XX002"})
"""Data corrupted, index corrupted."""


def map_error(err: Exception, *, label: str, location: str, action: str, setting: str | None = None) -> DatabaseError:
    """The store error for a psycopg (or pool) exception raised while ``label`` was doing ``action``."""
    state = getattr(err, "sqlstate", None) or ""
    diag = getattr(err, "diag", None)
    primary = getattr(diag, "message_primary", None) or str(err).strip() or type(err).__name__
    detail = getattr(diag, "message_detail", None)
    text = f"{primary}: {detail}" if detail else primary
    failed = f"{label}: {action} failed"
    reason = f"{failed}: {location}: {text}"
    check = f": {location} (check {setting})" if setting else ""
    if not state and isinstance(err, psycopg.OperationalError):  # libpq reports a failed connection in words only
        if "authentication failed" in primary or "no password supplied" in primary:
            state = "28P01"
        elif "does not exist" in primary and "database" in primary:
            state = "3D000"
    if state.startswith("23") or isinstance(err, psycopg.IntegrityError):
        return ConstraintViolated(f"{label}: {action} refused: {text}", detail=text, reason=reason)
    if state in _LOCKED_STATES:
        return DatabaseLocked(f"{failed}: the database is locked by another connection", reason=reason)
    if state.startswith("28"):
        return DatabaseUnreachable(f"{failed}: the database server refused the credentials{check}", reason=reason)
    if state == "3D000":
        return DatabaseUnreachable(f"{failed}: the database does not exist{check}", reason=reason)
    if (
        state.startswith("08")
        or state in _UNREACHABLE_STATES
        or isinstance(err, psycopg_pool.PoolTimeout)
        or (isinstance(err, psycopg.OperationalError) and not state)
    ):
        return DatabaseUnreachable(f"{failed}: the database server cannot be reached{check}", reason=reason)
    if state.startswith("53") or state in _UNWRITABLE_STATES:
        return DatabaseUnwritable(f"{failed}: the database cannot be written", reason=reason)
    if state in _CORRUPT_STATES:
        return DatabaseCorrupt(f"{failed}: the database's data is damaged", reason=reason)
    return DatabaseError(failed, reason=reason)


@functools.lru_cache(maxsize=1024)
def translate(sql: str) -> str:
    """``sql`` with each ``?`` placeholder as ``%s`` and each literal ``%`` doubled (outside quotes and comments)."""
    out: list[str] = []
    i, n = 0, len(sql)
    while i < n:
        ch = sql[i]
        if ch in "'\"":  # a string literal or quoted identifier; a doubled quote stays inside it
            end = i + 1
            while end < n:
                if sql[end] == ch:
                    if end + 1 < n and sql[end + 1] == ch:
                        end += 2
                        continue
                    break
                end += 1
            out.append(sql[i : end + 1].replace("%", "%%"))
            i = end + 1
        elif sql.startswith("--", i):
            end = sql.find("\n", i)
            end = n if end < 0 else end
            out.append(sql[i:end].replace("%", "%%"))
            i = end
        elif sql.startswith("/*", i):
            end = sql.find("*/", i + 2)
            end = n if end < 0 else end + 2
            out.append(sql[i:end].replace("%", "%%"))
            i = end
        else:
            out.append("%s" if ch == "?" else "%%" if ch == "%" else ch)
            i += 1
    return "".join(out)


class PostgresCursor:
    """A statement's result, read in full when it ran."""

    __slots__ = ("_rows", "_rowcount", "_columns", "_next")

    def __init__(self, cursor: psycopg.Cursor[Row]) -> None:
        description = cursor.description
        self._columns = tuple(column.name for column in description or ())
        self._rows: list[Row] = cursor.fetchall() if description is not None else []
        self._rowcount = cursor.rowcount
        self._next = 0

    @property
    def rowcount(self) -> int:
        """Rows changed by the statement (rows returned, for a query)."""
        return self._rowcount

    @property
    def lastrowid(self) -> int | None:
        """Always None: PostgreSQL has no rowid; an INSERT that needs its key says ``RETURNING``."""
        return None

    @property
    def columns(self) -> tuple[str, ...]:
        """The names of the selected columns."""
        return self._columns

    def fetchone(self) -> Row | None:
        """The next row, or None."""
        if self._next >= len(self._rows):
            return None
        self._next += 1
        return self._rows[self._next - 1]

    def fetchall(self) -> list[Row]:
        """The remaining rows."""
        rows, self._next = self._rows[self._next :], len(self._rows)
        return rows

    def __iter__(self) -> Iterator[Row]:
        while self._next < len(self._rows):
            self._next += 1
            yield self._rows[self._next - 1]


class _ThreadState(threading.local, TransactionState[psycopg.Connection[Row]]):
    """The transaction one thread has open on a database."""


class PostgresConnection:
    """The statements of the transaction this thread has open on a :class:`PostgresDatabase`."""

    __slots__ = ("_database", "_raw")

    engine = ENGINE

    def __init__(self, database: PostgresDatabase, raw: psycopg.Connection[Row]) -> None:
        self._database = database
        self._raw = raw

    def execute(self, sql: str, params: Params = ()) -> PostgresCursor:
        """Run one statement in the open transaction."""
        return self._database.run(self._raw, sql, params, self._database.current_action)

    def executemany(self, sql: str, rows: Iterable[Params]) -> PostgresCursor:
        """Run one statement for every parameter row, in the open transaction (pipelined by psycopg)."""
        action = self._database.current_action
        try:
            with self._raw.cursor() as cursor:
                cursor.executemany(translate(sql), list(rows))
                return PostgresCursor(cursor)
        except psycopg.Error as err:
            raise self._database.mapped(err, action) from err

    def has_table(self, name: str) -> bool:
        """Whether a table named ``name`` exists in the connection's current schema."""
        found = self.execute(
            "SELECT 1 FROM pg_catalog.pg_tables WHERE schemaname = current_schema() AND tablename = ?", (name,)
        ).fetchone()
        return found is not None


class PostgresDatabase(TransactionalDatabase[psycopg.Connection[Row], PostgresConnection]):
    """One PostgreSQL database opened by :func:`open_postgresql`; implements the seam's ``Database``.

    Each thread keeps its own open transaction on a connection borrowed from the pool for the outermost one;
    nesting and rollback are :class:`~security_server.store.transaction.TransactionalDatabase`'s.
    """

    engine = ENGINE

    def __init__(self, pool: psycopg_pool.ConnectionPool[psycopg.Connection[Row]], *, label: str, location: str) -> None:
        super().__init__(label=label, location=location, state=_ThreadState())
        self._pool: psycopg_pool.ConnectionPool[psycopg.Connection[Row]] | None = pool

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` has run."""
        return self._pool is None

    def mapped(self, err: Exception, action: str) -> DatabaseError:
        """The store error for ``err``, raised while doing ``action``."""
        return map_error(err, label=self._label, location=self._location, action=action)

    def _pool_or_closed(self) -> psycopg_pool.ConnectionPool[psycopg.Connection[Row]]:
        if self._pool is None:
            raise StoreClosed(f"{self._label}: the store is closed")
        return self._pool

    def run(self, raw: psycopg.Connection[Row], sql: str, params: Params, action: str) -> PostgresCursor:
        """Run one statement on ``raw`` and read its rows."""
        try:
            with raw.cursor() as cursor:
                cursor.execute(translate(sql), tuple(params) if params else None)
                return PostgresCursor(cursor)
        except psycopg.Error as err:
            raise self.mapped(err, action) from err

    @contextlib.contextmanager
    def _borrowed(self, action: str) -> Iterator[psycopg.Connection[Row]]:
        pool = self._pool_or_closed()
        try:
            raw = pool.getconn()
        except psycopg_pool.PoolClosed as err:
            raise StoreClosed(f"{self._label}: the store is closed") from err
        except psycopg.Error as err:  # PoolTimeout: no connection within the pool's wait
            raise self.mapped(err, action) from err
        try:
            yield raw
        finally:
            pool.putconn(raw)

    def execute(self, sql: str, params: Params = (), *, action: str = "running a statement") -> PostgresCursor:
        """One statement on its own (autocommit), or inside the transaction this thread has open."""
        state = self._state
        if state.connection is not None:
            return self.run(state.connection, sql, params, action)
        with self._borrowed(action) as raw:
            return self.run(raw, sql, params, action)

    def _begin(self, raw: psycopg.Connection[Row], action: str, *, write: bool) -> None:
        try:
            raw.execute(_BEGIN_WRITE if write else _BEGIN_READ)  # one round trip each
        except psycopg.Error as err:
            _rollback(raw)
            raise self.mapped(err, action) from err

    def _session(self, raw: psycopg.Connection[Row]) -> PostgresConnection:
        return PostgresConnection(self, raw)

    def _abort(self, raw: psycopg.Connection[Row], err: BaseException, action: str) -> BaseException | None:
        _rollback(raw)
        return self.mapped(err, action) if isinstance(err, psycopg.Error) else None

    def close(self) -> None:
        """Close the pool; later calls raise :class:`StoreClosed`; closing twice is fine."""
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()


def _rollback(raw: psycopg.Connection[Row]) -> None:
    if raw.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
        with contextlib.suppress(psycopg.Error):
            raw.execute("ROLLBACK")


def _passwords(url: str) -> set[str]:
    """The password of ``url`` as written and as decoded, to keep it out of any message."""
    found: set[str] = set()
    with contextlib.suppress(ValueError):
        raw = urlsplit(url).password
        if raw:
            found.add(raw)
    with contextlib.suppress(psycopg.Error):
        decoded = psycopg.conninfo.conninfo_to_dict(url).get("password")
        if decoded:
            found.add(str(decoded))
    return found


def _opening_failed(err: psycopg.Error, url: str, *, label: str, location: str, setting: str) -> NoReturn:
    mapped = map_error(err, label=label, location=location, action="opening", setting=setting)
    reason = " ".join(mapped.reason.split())  # libpq's words span lines
    for secret in _passwords(url):
        reason = reason.replace(secret, "***")
    if type(mapped) is DatabaseError:  # not a connection failure: the URL itself is unusable
        raise DatabaseUnreachable(
            f"{label}: opening failed: not a usable database URL: {location} (check {setting})", reason=reason
        ) from err
    mapped.reason = reason
    raise mapped from err


def open_postgresql(
    url: str,
    *,
    label: str,
    setting: str = "[database] url",
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
    pool_size: int = DEFAULT_POOL_SIZE,
) -> PostgresDatabase:
    """Open the PostgreSQL database at ``url`` (a ``postgresql://`` URL) with a pool of up to ``pool_size``.

    ``setting`` names where the URL came from; a server that cannot be reached, refuses the credentials or has
    no such database raises :class:`DatabaseUnreachable` naming it and the URL without its password.
    """
    location = url_without_password(url)
    settings: dict[str, Any] = {
        "autocommit": True,  # every transaction is explicit, as on SQLite
        "connect_timeout": max(1, round(connect_timeout)),
        "application_name": f"fedbus {label}",
    }

    def configure(connection: psycopg.Connection[Any]) -> None:
        connection.execute("SELECT set_config('lock_timeout', %s, false)", (f"{round(lock_timeout * 1000)}ms",))

    try:
        with psycopg.connect(url, **settings) as probe:  # PostgreSQL's own words for a bad URL, at start-up
            configure(probe)
    except psycopg.Error as err:
        _opening_failed(err, url, label=label, location=location, setting=setting)
    pool: psycopg_pool.ConnectionPool[psycopg.Connection[Row]] = psycopg_pool.ConnectionPool(
        url,
        kwargs=settings,
        min_size=1,
        max_size=max(1, pool_size),
        open=False,
        configure=configure,
        check=psycopg_pool.ConnectionPool.check_connection,
        timeout=connect_timeout,
        name=f"fedbus {label}",
        num_workers=1,
    )
    pool.open(wait=False)
    return PostgresDatabase(pool, label=label, location=location)
