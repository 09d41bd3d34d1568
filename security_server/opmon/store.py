"""Durable storage of operational records: one SQLite table, written in batches, read by time range.

Each record is kept as its pr-opmon JSON (``record``) beside the columns the queries filter on: the second it
was stored in (``monitoring_data_ts``, X-Road's field), the client's and the service provider's identifier
parts, the role, the result and ``response_out_ts``. Batches are one transaction each; records older than the
retention period (X-Road ``keep-records-for-days``, 7) are deleted by :meth:`OpmonStore.delete_older_than`.

The file is opened through the store layer (:mod:`security_server.store`): WAL, numbered migrations
(:data:`SCHEMA`), every SQLite failure a :class:`~security_server.core.errors.DatabaseError` leaf. Operational
data is statistics, not evidence, so it is written with ``synchronous=NORMAL`` (a commit survives a process
crash, not a power cut). A store object is used from one thread at a time (the writer's single worker thread);
after a failure the file is closed and reopened by the next call, so a store that recovers is used again.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

from security_server.core.errors import DatabaseError
from security_server.core.identifiers import ClientId
from security_server.core.opmon.query import RecordQuery
from security_server.core.opmon.record import OperationalRecord, SecurityServerType
from security_server.store.engine import Database
from security_server.store.migrations import Schema, migrate, sql_migration
from security_server.store.sqlite import DEFAULT_BUSY_TIMEOUT, Synchronous, open_sqlite

LABEL = "operational monitoring store"

SCHEMA = Schema(
    "opmon",
    (
        sql_migration(
            1,
            "operational_data",
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
            ) STRICT""",
            "CREATE INDEX idx_operational_data_ts ON operational_data (monitoring_data_ts)",
            "CREATE INDEX idx_operational_data_response_out ON operational_data (response_out_ts)",
        ),
    ),
)
"""The operational monitoring store's numbered migrations; later issues append to them."""

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
    """The operational monitoring database (SQLite through the store layer)."""

    def __init__(self, path: Path | str, *, busy_timeout: float = DEFAULT_BUSY_TIMEOUT) -> None:
        self.path = Path(path)
        self._busy_timeout = busy_timeout
        self._db: Database | None = None

    def _database(self) -> Database:
        if self._db is None:
            db = open_sqlite(self.path, label=LABEL, synchronous=Synchronous.NORMAL, busy_timeout=self._busy_timeout,
                             shared_between_threads=True)
            try:
                migrate(db, SCHEMA)
            except BaseException:
                db.close()
                raise
            self._db = db
        return self._db

    def close(self) -> None:
        """Close the file (the next call reopens it)."""
        db, self._db = self._db, None
        if db is not None:
            try:
                db.close()
            except DatabaseError:
                pass

    def _failed(self) -> None:
        """Drop the connection after a failure, so the next call starts from a fresh one."""
        self.close()

    def store(self, records: Sequence[OperationalRecord], monitoring_data_ts: int) -> int:
        """Store ``records`` in one transaction, stamped with ``monitoring_data_ts``; returns how many."""
        rows = [_row(r.stamped(monitoring_data_ts)) for r in records]
        try:
            with self._database().write("storing operational records") as connection:
                connection.executemany(_INSERT, rows)
        except DatabaseError:
            self._failed()
            raise
        return len(rows)

    def _select(self, sql: str, params: Sequence[object]) -> list[OperationalRecord]:
        try:
            rows = self._database().execute(sql, tuple(params), action="reading operational records").fetchall()
        except DatabaseError:
            self._failed()
            raise
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
        try:
            with self._database().write("deleting old operational records") as connection:
                cursor = connection.execute("DELETE FROM operational_data WHERE monitoring_data_ts < ?", (monitoring_data_ts,))
                return int(cursor.rowcount)
        except DatabaseError:
            self._failed()
            raise

    def count(self) -> int:
        """How many records the store holds."""
        row = self._database().execute("SELECT COUNT(*) FROM operational_data", (), action="counting records").fetchone()
        return 0 if row is None else int(row[0])
