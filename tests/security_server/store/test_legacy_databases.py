"""Databases written by fedbus before the store layer open with today's code: data kept, version recorded."""

from __future__ import annotations

import contextlib
import sqlite3
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from central_registry.store import SCHEMA as REGISTRY_SCHEMA
from central_registry.store import RegistryStore
from security_server.core.identifiers import ClientId, ServiceId
from security_server.core.logchain import GENESIS_LINK, Direction, LogEntry, LogRecord, make_record, time_to_micros
from security_server.messagelog.store import SCHEMA as MESSAGELOG_SCHEMA
from security_server.messagelog.store import MessageLogStore, encode_attachments
from security_server.serverconf.store import SCHEMA as SERVERCONF_SCHEMA
from security_server.serverconf.store import ClientState, ServerConfStore
from security_server.store.errors import SchemaTooNew
from tests.security_server.store.legacy_schemas import (
    schema_of,
    write_messagelog,
    write_registry,
    write_serverconf,
)

OWNER = ClientId("EE", "GOV", "70000310")
PROVIDER = OWNER.subsystem("registry")
T0 = datetime(2026, 11, 1, 12, 0, tzinfo=timezone.utc)


def versions(path: Path, store: str) -> list[tuple[int, str]]:
    """What the database records for ``store`` in schema_migrations."""
    with contextlib.closing(sqlite3.connect(path)) as conn:
        rows = conn.execute("SELECT version, name FROM schema_migrations WHERE store = ? ORDER BY version", (store,))
        return [(int(v), str(n)) for v, n in rows]


def test_a_registry_from_before_migrations_keeps_its_data_and_is_recorded_at_version_1(tmp_path: Path) -> None:
    """A registry with the old schema and data opens unchanged: settings, members, audit trail, version 1."""
    path = tmp_path / "registry.db"
    with contextlib.closing(write_registry(path)) as conn:
        conn.execute("INSERT INTO settings (key, value) VALUES ('instance', 'EE')")
        conn.execute("INSERT INTO member_classes (code, description) VALUES ('GOV', 'Government')")
        conn.execute("INSERT INTO members VALUES ('MEMBER:EE/GOV/70000310', 'GOV', '70000310', 'Registry office')")
        conn.execute("INSERT INTO audit (at, event, detail) VALUES ('2026-11-01T12:00:00+00:00', 'member_added', '{}')")
    fresh = tmp_path / "fresh.db"
    RegistryStore(fresh).close()
    store = RegistryStore(path)
    try:
        assert store.settings().instance == "EE"
        assert [(m.id, m.name) for m in store.members()] == [(OWNER, "Registry office")]
        assert [e["event"] for e in store.audit_events()] == ["member_added"]
        store.add_subsystem(PROVIDER)  # and it keeps working, auditing after the old rows
        assert [e["seq"] for e in store.audit_events()] == [1, 2]
    finally:
        store.close()
    assert versions(path, "registry") == [(m.version, m.name) for m in REGISTRY_SCHEMA.migrations] == [
        (1, "registry"), (2, "registry nodes"), (3, "intermediate CAs"), (4, "trusted anchors and subsystem names"),
    ]
    assert schema_of(path) == schema_of(fresh)


def _records(count: int) -> list[LogRecord]:
    records, link = [], GENESIS_LINK
    for n in range(count):
        entry = LogEntry(
            query_id=f"q-{n // 2}", direction=Direction.RESPONSE if n % 2 else Direction.REQUEST,
            client="SUBSYSTEM:EE/GOV/1/a", service="SERVICE:EE/GOV/2/b/get/v1", time=T0 + timedelta(seconds=n),
            message=b"<m/>", signature=b"<sig/>", attachments=(b"body",) if n == 1 else (),
        )
        records.append(make_record(entry, record_id=n + 1, prev_link=link))
        link = records[-1].link
    return records


def _insert(conn: sqlite3.Connection, record: LogRecord) -> None:
    conn.execute(
        "INSERT INTO logrecord (id, query_id, x_request_id, direction, client, service, time_us, message, signature,"
        " hashchain, hashchainresult, signature_hash, succeeded, fault_code, prev_link, link, attachments)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            record.id, record.query_id, record.x_request_id, record.direction.value, record.client, record.service,
            time_to_micros(record.time), record.message, record.signature, record.hashchain, record.hashchainresult,
            record.signature_hash, int(record.succeeded), record.fault_code, record.prev_link, record.link,
            encode_attachments(record.attachments),
        ),
    )


@pytest.mark.parametrize("upto", [3, 2], ids=["fully-migrated", "before-evidence"])
def test_a_message_log_from_before_keeps_its_chain_and_is_recorded(tmp_path: Path, upto: int) -> None:
    """An old log (sqlite-utils history) opens with its records verifying, is recorded at 1..3 and keeps working."""
    path = tmp_path / "messagelog.db"
    records = _records(4)
    with contextlib.closing(write_messagelog(path, upto=upto)) as conn:
        for record in records:
            _insert(conn, record)
    fresh = tmp_path / "fresh.db"
    MessageLogStore(fresh).close()
    with MessageLogStore(path) as store:
        assert list(store.records()) == records and store.verify() == 4
        assert store.untimestamped(10) == [(r.id, r.signature_hash) for r in records]  # migration 3's columns
        [more] = store.append_entries([records[0].to_entry()])
        assert more.prev_link == records[-1].link and store.verify() == 5
    assert versions(path, "messagelog") == [(m.version, m.name) for m in MESSAGELOG_SCHEMA.migrations]
    assert schema_of(path) == schema_of(fresh)


def test_a_server_configuration_from_before_keeps_its_data_and_is_recorded(tmp_path: Path) -> None:
    """An old configuration (sqlite-utils history) opens with its server, clients and services, recorded at 1..2."""
    path = tmp_path / "serverconf.db"
    with contextlib.closing(write_serverconf(path)) as conn:
        conn.execute("INSERT INTO server VALUES (1, ?, 'ss1', x'3c613e')", (str(OWNER),))
        conn.execute("INSERT INTO client VALUES (?, 'saved', 1)", (str(OWNER),))
        conn.execute("INSERT INTO client VALUES (?, 'registered', 0)", (str(PROVIDER),))
        conn.execute(
            "INSERT INTO service (client, code, version, kind, url, timeout, enabled, disabled_notice)"
            " VALUES (?, 'getRandom', 'v1', 'soap', 'http://127.0.0.1/r', 60, 1, '')",
            (str(PROVIDER),),
        )
    fresh = tmp_path / "fresh.db"
    ServerConfStore(fresh).close()
    with ServerConfStore(path) as store:
        snapshot = store.snapshot()
        assert snapshot.identity.server_code == "ss1" and snapshot.anchor == b"<a>"
        assert [(c.id, c.state) for c in snapshot.clients] == [(OWNER, ClientState.SAVED), (PROVIDER, ClientState.REGISTERED)]
        assert [s.id for s in snapshot.services] == [ServiceId(PROVIDER, "getRandom", "v1")]
    assert versions(path, "serverconf") == [
        (1, "serverconf"), (2, "service_descriptions"), (3, "description_source"), (4, "timestamping_services"),
        (5, "tls_certificates"), (6, "client_connection_type"), (7, "endpoints_and_names")]
    assert [(m.version, m.name) for m in SERVERCONF_SCHEMA.migrations] == versions(path, "serverconf")
    assert schema_of(path) == schema_of(fresh)


def test_an_old_database_with_a_step_this_code_does_not_know_is_refused(tmp_path: Path) -> None:
    """A sqlite-utils history naming an unknown step (a newer fedbus) is refused and left as it was."""
    path = tmp_path / "serverconf.db"
    with contextlib.closing(write_serverconf(path)) as conn:
        conn.execute(
            "INSERT INTO _sqlite_migrations (migration_set, name, applied_at) VALUES ('fedbus.serverconf', 'm003_x', 'x')"
        )
        before = list(conn.iterdump())
    with pytest.raises(SchemaTooNew, match="m003_x"):
        ServerConfStore(path)
    with contextlib.closing(sqlite3.connect(path)) as conn:
        assert list(conn.iterdump()) == before
