"""Databases exactly as fedbus wrote them before numbered migrations (commit 7ec5bd8), to open with today's code.

The statements are copied from what that code ran: the registry's ``CREATE TABLE IF NOT EXISTS`` block, and the
sqlite-utils migrations of the server configuration and the message log (the SQL sqlite-utils generated, and its
``_sqlite_migrations`` table with one row per applied step).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Sequence

REGISTRY = (
    "CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS member_classes (code TEXT PRIMARY KEY, description TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS members (id TEXT PRIMARY KEY, member_class TEXT NOT NULL"
    " REFERENCES member_classes(code), member_code TEXT NOT NULL, name TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS subsystems (member_id TEXT NOT NULL REFERENCES members(id) ON DELETE CASCADE,"
    " subsystem_code TEXT NOT NULL, PRIMARY KEY (member_id, subsystem_code))",
    "CREATE TABLE IF NOT EXISTS security_servers (id TEXT PRIMARY KEY, owner_id TEXT NOT NULL"
    " REFERENCES members(id), server_code TEXT NOT NULL, address TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS auth_certs (hash BLOB PRIMARY KEY, server_id TEXT NOT NULL"
    " REFERENCES security_servers(id) ON DELETE CASCADE, cert_der BLOB NOT NULL)",
    "CREATE TABLE IF NOT EXISTS server_clients (server_id TEXT NOT NULL REFERENCES security_servers(id)"
    " ON DELETE CASCADE, client_id TEXT NOT NULL, PRIMARY KEY (server_id, client_id))",
    "CREATE TABLE IF NOT EXISTS approved_cas (name TEXT PRIMARY KEY, cert_der BLOB NOT NULL,"
    " ocsp_url TEXT, ocsp_cert_der BLOB, authentication_only INTEGER NOT NULL, profile TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS approved_tsas (name TEXT PRIMARY KEY, url TEXT NOT NULL, cert_der BLOB NOT NULL)",
    "CREATE TABLE IF NOT EXISTS global_groups (id TEXT PRIMARY KEY, description TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS group_members (group_id TEXT NOT NULL REFERENCES global_groups(id)"
    " ON DELETE CASCADE, client_id TEXT NOT NULL, PRIMARY KEY (group_id, client_id))",
    "CREATE TABLE IF NOT EXISTS requests (id TEXT PRIMARY KEY, type TEXT NOT NULL, payload TEXT NOT NULL,"
    " status TEXT NOT NULL, submitted_at TEXT NOT NULL, decided_at TEXT, server_id TEXT, client_id TEXT)",
    "CREATE TABLE IF NOT EXISTS audit (seq INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL,"
    " event TEXT NOT NULL, detail TEXT NOT NULL)",
)

SQLITE_MIGRATIONS_TABLE = (
    'CREATE TABLE "_sqlite_migrations" (\n   "id" INTEGER PRIMARY KEY,\n   "migration_set" TEXT,\n'
    '   "name" TEXT,\n   "applied_at" TEXT\n)',
    'CREATE UNIQUE INDEX "idx__sqlite_migrations_migration_set_name"\n'
    '    ON "_sqlite_migrations" ("migration_set", "name")',
)

SERVERCONF: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "m001_serverconf",
        (
            "CREATE TABLE server (id INTEGER PRIMARY KEY CHECK (id = 1), owner TEXT NOT NULL,"
            " server_code TEXT NOT NULL, anchor BLOB NOT NULL) STRICT",
            "CREATE TABLE client (id TEXT PRIMARY KEY, state TEXT NOT NULL, is_owner INTEGER NOT NULL) STRICT",
            "CREATE TABLE service (client TEXT NOT NULL REFERENCES client(id), code TEXT NOT NULL,"
            " version TEXT NOT NULL, kind TEXT NOT NULL, url TEXT NOT NULL, timeout INTEGER NOT NULL,"
            " enabled INTEGER NOT NULL, disabled_notice TEXT NOT NULL, PRIMARY KEY (client, code, version)) STRICT",
            "CREATE TABLE local_group (client TEXT NOT NULL REFERENCES client(id), code TEXT NOT NULL,"
            " description TEXT NOT NULL, PRIMARY KEY (client, code)) STRICT",
            "CREATE TABLE local_group_member (client TEXT NOT NULL, code TEXT NOT NULL, member TEXT NOT NULL,"
            " PRIMARY KEY (client, code, member), FOREIGN KEY (client, code) REFERENCES local_group(client, code))"
            " STRICT",
            "CREATE TABLE access_right (provider TEXT NOT NULL REFERENCES client(id), service_code TEXT NOT NULL,"
            " subject TEXT NOT NULL, method TEXT NOT NULL, path TEXT NOT NULL,"
            " PRIMARY KEY (provider, service_code, subject, method, path)) STRICT",
        ),
    ),
    (
        "m002_service_descriptions",
        (
            "ALTER TABLE service ADD COLUMN description BLOB",
            "ALTER TABLE service ADD COLUMN endpoints TEXT NOT NULL DEFAULT ''",
        ),
    ),
)

_GENESIS = "X'" + "00" * 64 + "'"

MESSAGELOG: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "m001_logrecord",
        (
            'CREATE TABLE "logrecord" (\n   "id" INTEGER PRIMARY KEY,\n   "query_id" TEXT NOT NULL,\n'
            '   "x_request_id" TEXT,\n   "direction" TEXT NOT NULL,\n   "client" TEXT NOT NULL,\n'
            '   "service" TEXT NOT NULL,\n   "time_us" INTEGER NOT NULL,\n   "message" BLOB NOT NULL,\n'
            '   "signature" BLOB NOT NULL,\n   "hashchain" BLOB,\n   "hashchainresult" BLOB,\n'
            '   "signature_hash" BLOB NOT NULL,\n   "succeeded" INTEGER NOT NULL,\n   "fault_code" TEXT,\n'
            '   "prev_link" BLOB NOT NULL,\n   "link" BLOB NOT NULL,\n   "timestamp_id" INTEGER,\n'
            '   "ts_hashchain" BLOB\n) STRICT',
            'CREATE INDEX "idx_logrecord_query_id"\n    ON "logrecord" ("query_id")',
            'CREATE INDEX "idx_logrecord_time_us"\n    ON "logrecord" ("time_us")',
            'CREATE TABLE "chain_anchor" (\n   "id" INTEGER PRIMARY KEY,\n   "first_id" INTEGER NOT NULL,\n'
            '   "prev_link" BLOB NOT NULL\n) STRICT',
            f"INSERT INTO chain_anchor (id, first_id, prev_link) VALUES (1, 1, {_GENESIS})",
        ),
    ),
    ("m002_attachments", ("ALTER TABLE logrecord ADD COLUMN attachments BLOB",)),
    (
        "m003_evidence",
        (
            'CREATE TABLE "timestamp" (\n   "id" INTEGER PRIMARY KEY,\n   "time_us" INTEGER NOT NULL,\n'
            '   "token" BLOB NOT NULL,\n   "hash_chain_result" BLOB,\n   "tsa_url" TEXT\n) STRICT',
            "ALTER TABLE logrecord ADD COLUMN archived_us INTEGER",
            "CREATE INDEX idx_logrecord_untimestamped ON logrecord (id) WHERE timestamp_id IS NULL",
            "CREATE INDEX idx_logrecord_unarchived ON logrecord (id) WHERE archived_us IS NULL AND timestamp_id > 0",
            "CREATE INDEX idx_logrecord_timestamp ON logrecord (timestamp_id)",
            'CREATE INDEX "idx_logrecord_client"\n    ON "logrecord" ("client")',
            'CREATE INDEX "idx_logrecord_service"\n    ON "logrecord" ("service")',
            'CREATE TABLE "archive_state" (\n   "id" INTEGER PRIMARY KEY,\n   "last_digest" TEXT NOT NULL,\n'
            '   "last_file" TEXT NOT NULL\n) STRICT',
            "INSERT INTO archive_state (id, last_digest, last_file) VALUES (1, '', '')",
            'CREATE TABLE "pending_archive" (\n   "id" INTEGER PRIMARY KEY,\n   "file_name" TEXT NOT NULL,\n'
            '   "first_id" INTEGER NOT NULL,\n   "last_id" INTEGER NOT NULL,\n   "prev_digest" TEXT NOT NULL,\n'
            '   "prev_file" TEXT NOT NULL,\n   "last_digest" TEXT NOT NULL\n) STRICT',
        ),
    ),
)


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    return conn


def write_registry(path: Path) -> sqlite3.Connection:
    """A registry database as the old code created it (no record of a version); the connection stays open."""
    conn = _connect(path)
    for statement in REGISTRY:
        conn.execute(statement)
    return conn


def write_migrated(
    path: Path, migration_set: str, steps: Sequence[tuple[str, tuple[str, ...]]], *, upto: int | None = None
) -> sqlite3.Connection:
    """A database the old sqlite-utils code migrated through its first ``upto`` steps (all by default)."""
    conn = _connect(path)
    for statement in SQLITE_MIGRATIONS_TABLE:
        conn.execute(statement)
    for name, statements in steps[:upto]:
        for statement in statements:
            conn.execute(statement)
        conn.execute(
            "INSERT INTO _sqlite_migrations (migration_set, name, applied_at) VALUES (?, ?, ?)",
            (migration_set, name, "2026-11-01 12:00:00.000000+00:00"),
        )
    return conn


def write_serverconf(path: Path, *, upto: int | None = None) -> sqlite3.Connection:
    """A server configuration database as the old code migrated it."""
    return write_migrated(path, "fedbus.serverconf", SERVERCONF, upto=upto)


def write_messagelog(path: Path, *, upto: int | None = None) -> sqlite3.Connection:
    """A message log as the old code migrated it."""
    return write_migrated(path, "fedbus.messagelog", MESSAGELOG, upto=upto)


def schema_of(path: Path) -> list[tuple[str, str]]:
    """The tables' and indexes' names and SQL, without the migration bookkeeping of either era."""
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute(
            "SELECT name, sql FROM sqlite_master WHERE sql IS NOT NULL AND name NOT LIKE '%migrations%' ORDER BY name"
        ).fetchall()
    finally:
        conn.close()
    return [(str(name), str(sql)) for name, sql in rows]
