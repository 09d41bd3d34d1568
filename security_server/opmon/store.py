"""Durable storage of operational records: one SQLite table, written in batches, read by time range.

Each record is kept as its pr-opmon JSON (``record``) beside the columns the queries filter on: the second it
was stored in (``monitoring_data_ts``, X-Road's field), the client's and the service provider's identifier
parts, the role, the result and ``response_out_ts``. Batches are one transaction each; records older than the
retention period (X-Road ``keep-records-for-days``, 7) are deleted by :meth:`OpmonStore.delete_older_than`.

The schema is one numbered list of migrations (``PRAGMA user_version``), like every fedbus store, so it can move
onto the shared store layer (``security_server/store``) when that lands. A store object is used from one thread
at a time (the writer's single worker thread); every SQLite failure leaves as
:class:`~security_server.core.errors.DatabaseError`.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from pathlib import Path
from typing import Callable, Iterator, Sequence

from security_server.core.errors import DatabaseError
from security_server.core.identifiers import ClientId
from security_server.core.opmon.query import RecordQuery
from security_server.core.opmon.record import OperationalRecord, SecurityServerType

DEFAULT_BUSY_TIMEOUT = 5.0


def _m001_operational_data(conn: sqlite3.Connection) -> None:
    """Create the record table and its time index."""
    conn.execute(
        """CREATE TABLE operational_data (
            id INTEGER PRIMARY KEY,
            monitoring_data_ts INTEGER NOT NULL,
            security_server_type TEXT NOT NULL,
            succeeded INTEGER NOT NULL,
            response_out_ts INTEGER,
            client_instance TEXT, client_class TEXT, client_code TEXT, client_subsystem TEXT,
            service_instance TEXT, service_class TEXT, service_member TEXT, service_subsystem TEXT,
            service_code TEXT, service_version TEXT,
            record TEXT NOT NULL
        ) STRICT"""
    )
    conn.execute("CREATE INDEX idx_operational_data_ts ON operational_data (monitoring_data_ts)")
    conn.execute("CREATE INDEX idx_operational_data_response_out ON operational_data (response_out_ts)")


MIGRATIONS: tuple[Callable[[sqlite3.Connection], None], ...] = (_m001_operational_data,)
"""The schema, in order; ``user_version`` is the number applied."""

_INSERT = """INSERT INTO operational_data (monitoring_data_ts, security_server_type, succeeded, response_out_ts,
    client_instance, client_class, client_code, client_subsystem,
    service_instance, service_class, service_member, service_subsystem, service_code, service_version, record)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"""
_CLIENT_COLUMNS = ("client_instance", "client_class", "client_code", "client_subsystem")
_PROVIDER_COLUMNS = ("service_instance", "service_class", "service_member", "service_subsystem")


def _row(record: OperationalRecord) -> tuple[object, ...]:
    client = record.client.parts() if record.client is not None else ()
    service = record.service
    provider = service.client.parts() if service is not None else ()
    client_cols = tuple(client) + (None,) * (4 - len(client))
    provider_cols = tuple(provider) + (None,) * (4 - len(provider))
    return (
        record.monitoring_data_ts,
        str(record.security_server_type),
        int(record.succeeded),
        record.response_out_ts,
        *client_cols,
        *provider_cols,
        None if service is None else service.service_code,
        None if service is None else service.service_version,
        json.dumps(record.to_json(), separators=(",", ":"), sort_keys=True),
    )


def _is(columns: Sequence[str], client: ClientId) -> tuple[str, list[object]]:
    """SQL matching ``columns`` to ``client``'s parts exactly (``IS`` so that no subsystem matches NULL)."""
    values = [client.instance, client.member_class, client.member_code, client.subsystem_code]
    return "(" + " AND ".join(f"{c} IS ?" for c in columns) + ")", list(values)


def _where(query: RecordQuery) -> tuple[str, list[object]]:
    clauses = ["monitoring_data_ts BETWEEN ? AND ?"]
    params: list[object] = [query.records_from, query.records_to]
    if query.participant is not None:
        as_client, p1 = _is(_CLIENT_COLUMNS, query.participant)
        as_provider, p2 = _is(_PROVIDER_COLUMNS, query.participant)
        clauses.append(f"({as_client} OR {as_provider})")
        params += p1 + p2
    if query.provider is not None:
        clause, p = _is(_PROVIDER_COLUMNS, query.provider)
        clauses.append(clause)
        params += p
    return " AND ".join(clauses), params


class OpmonStore:
    """The operational monitoring database (SQLite, WAL)."""

    def __init__(self, path: Path | str, *, busy_timeout: float = DEFAULT_BUSY_TIMEOUT) -> None:
        self.path = Path(path)
        self._busy_timeout = busy_timeout
        self._conn: sqlite3.Connection | None = None

    @contextlib.contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as err:
            self.close()
            message = f"operational monitoring store could not {doing}"
            raise DatabaseError(message, reason=f"{message}: {self.path}: {err}") from err

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            with self._errors("open its database"):
                conn = sqlite3.connect(self.path, timeout=self._busy_timeout, isolation_level=None, check_same_thread=False)
                try:
                    conn.execute("PRAGMA journal_mode=WAL")
                    conn.execute("PRAGMA synchronous=NORMAL")
                    self._migrate(conn)
                except BaseException:
                    conn.close()
                    raise
                self._conn = conn
        return self._conn

    @staticmethod
    def _migrate(conn: sqlite3.Connection) -> None:
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        if version > len(MIGRATIONS):
            raise DatabaseError(
                "operational monitoring store was written by a newer fedbus",
                reason=f"schema version {version}, this fedbus knows {len(MIGRATIONS)}",
            )
        for number, migration in enumerate(MIGRATIONS[version:], start=version + 1):
            conn.execute("BEGIN IMMEDIATE")
            try:
                migration(conn)
                conn.execute(f"PRAGMA user_version = {number}")
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

    def close(self) -> None:
        """Close the connection (the next call reopens it)."""
        if self._conn is not None:
            with contextlib.suppress(sqlite3.Error):
                self._conn.close()
            self._conn = None

    def store(self, records: Sequence[OperationalRecord], monitoring_data_ts: int) -> int:
        """Store ``records`` in one transaction, stamped with ``monitoring_data_ts``; returns how many."""
        rows = [_row(r.stamped(monitoring_data_ts)) for r in records]
        with self._errors("store records"):
            conn = self._connection()
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.executemany(_INSERT, rows)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        return len(rows)

    def _select(self, sql: str, params: Sequence[object]) -> list[OperationalRecord]:
        with self._errors("read records"):
            rows = self._connection().execute(sql, params).fetchall()
        return [OperationalRecord.from_json(json.loads(row[0])) for row in rows]

    def query(self, query: RecordQuery) -> list[OperationalRecord]:
        """The records of ``query`` in storage order: the first ``limit``, every other record of the last one's
        second, and one more if any remain (what :func:`~security_server.core.opmon.query.cut_to_limit` needs)."""
        where, params = _where(query)
        order = " ORDER BY monitoring_data_ts, id"
        first = self._select(f"SELECT record FROM operational_data WHERE {where}{order} LIMIT ?", [*params, query.limit])
        if len(first) < query.limit:
            return first
        last_ts = first[-1].monitoring_data_ts
        rest = self._select(
            f"SELECT record FROM operational_data WHERE {where} AND monitoring_data_ts >= ?{order} LIMIT -1 OFFSET ?",
            [*params, last_ts, sum(1 for r in first if r.monitoring_data_ts == last_ts)],
        )
        same = [r for r in rest if r.monitoring_data_ts == last_ts]
        later = [r for r in rest if r.monitoring_data_ts != last_ts][:1]
        return first + same + later

    def health_records(self, since_ms: int) -> list[OperationalRecord]:
        """The producer records whose response left after ``since_ms``, and for each service and result the
        latest one before (so the last successful and unsuccessful request times reach back past the period)."""
        producer = str(SecurityServerType.PRODUCER)
        columns = ", ".join(_PROVIDER_COLUMNS + ("service_code", "service_version"))
        sql = f"""SELECT record FROM operational_data WHERE security_server_type = ? AND response_out_ts > ?
            UNION ALL
            SELECT record FROM (
                SELECT record, ROW_NUMBER() OVER (PARTITION BY {columns}, succeeded ORDER BY response_out_ts DESC, id DESC) AS n
                FROM operational_data WHERE security_server_type = ? AND response_out_ts <= ?
            ) WHERE n = 1"""
        return self._select(sql, [producer, since_ms, producer, since_ms])

    def delete_older_than(self, monitoring_data_ts: int) -> int:
        """Delete the records stored before ``monitoring_data_ts`` (retention); returns how many."""
        with self._errors("delete old records"):
            cursor = self._connection().execute("DELETE FROM operational_data WHERE monitoring_data_ts < ?", (monitoring_data_ts,))
        return int(cursor.rowcount)

    def count(self) -> int:
        """How many records the store holds."""
        with self._errors("count records"):
            return int(self._connection().execute("SELECT COUNT(*) FROM operational_data").fetchone()[0])
