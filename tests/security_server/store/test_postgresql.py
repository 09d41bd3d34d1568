"""The PostgreSQL engine's own behaviour: choosing it, bad URLs at start-up, SQLSTATEs mapped, writers one at a time,
and a database that went away and came back."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Iterator

import psycopg
import pytest

from security_server.configfile import load_config
from security_server.core.config import DatabaseConfig, IniLayer, LayeredConfig, url_without_password
from security_server.core.errors import BusError, ConfigurationError, DatabaseError
from security_server.store.errors import (
    ConstraintViolated,
    DatabaseCorrupt,
    DatabaseLocked,
    DatabaseUnreachable,
    DatabaseUnwritable,
)
from security_server.store.opening import open_database
from security_server.store.postgresql import PostgresDatabase, map_error, open_postgresql, translate
from security_server.store.sqlite import SqliteDatabase
from tests.postgres import PostgresServer


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("SELECT ? , ?", "SELECT %s , %s"),
        ("SELECT '?', \"a?\" FROM t WHERE x = ?", "SELECT '?', \"a?\" FROM t WHERE x = %s"),
        ("SELECT 'it''s ?', ?", "SELECT 'it''s ?', %s"),
        ("SELECT 5 % 2, '100%' -- what?\n, ?", "SELECT 5 %% 2, '100%%' -- what?\n, %s"),
        ("SELECT /* ? */ ?", "SELECT /* ? */ %s"),
    ],
)
def test_question_marks_become_psycopg_placeholders_outside_quotes(sql: str, expected: str) -> None:
    """Only a ``?`` outside literals, quoted names and comments is a placeholder; every ``%`` is escaped."""
    assert translate(sql) == expected


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        ("23505", ConstraintViolated),  # unique_violation
        ("23503", ConstraintViolated),  # foreign_key_violation
        ("23502", ConstraintViolated),  # not_null_violation
        ("40001", DatabaseLocked),  # serialization_failure
        ("40P01", DatabaseLocked),  # deadlock_detected
        ("55P03", DatabaseLocked),  # lock_not_available (lock_timeout)
        ("57014", DatabaseLocked),  # query_canceled (statement_timeout)
        ("28P01", DatabaseUnreachable),  # invalid_password
        ("3D000", DatabaseUnreachable),  # invalid_catalog_name
        ("08006", DatabaseUnreachable),  # connection_failure
        ("57P01", DatabaseUnreachable),  # admin_shutdown
        ("53100", DatabaseUnwritable),  # disk_full
        ("25006", DatabaseUnwritable),  # read_only_sql_transaction (a standby)
        ("42501", DatabaseUnwritable),  # insufficient_privilege
        ("XX001", DatabaseCorrupt),  # data_corrupted
        ("42P01", DatabaseError),  # undefined_table
    ],
)
def test_each_sqlstate_maps_to_its_store_error(state: str, expected: type[DatabaseError]) -> None:
    """The SQLSTATE picks the leaf; every leaf is a server-side database_error naming the database."""
    err = psycopg.errors.lookup(state)("engine words")
    mapped = map_error(err, label="registry", location="postgresql://fedbus@db:5432/registry", action="adding a member")
    assert type(mapped) is expected
    assert isinstance(mapped, BusError) and mapped.fault_code == "server.database_error"
    assert mapped.message.startswith("registry: adding a member")
    assert mapped.reason.endswith("postgresql://fedbus@db:5432/registry: engine words")


def test_no_url_opens_sqlite_and_a_postgresql_url_opens_postgresql(
    postgres_url: str, tmp_path: Path
) -> None:
    """open_database is the one choice: None or empty keeps the SQLite file, a postgresql:// URL opens PostgreSQL."""
    for url in (None, ""):
        sqlite = open_database(url, tmp_path / "store.db", label="test store")
        assert isinstance(sqlite, SqliteDatabase) and sqlite.engine == "sqlite"
        sqlite.close()
    postgres = open_database(postgres_url, tmp_path / "unused.db", label="test store")
    assert isinstance(postgres, PostgresDatabase) and postgres.engine == "postgresql"
    assert postgres.location == url_without_password(postgres_url) and ":" not in postgres.location.split("@")[0][13:]
    postgres.close()
    assert not (tmp_path / "unused.db").exists()


def test_another_scheme_is_a_configuration_error_without_the_password(tmp_path: Path) -> None:
    """A URL of another engine is refused before any connection, naming the setting, hiding the password."""
    with pytest.raises(ConfigurationError) as caught:
        open_database("mysql://app:hunter2@db/x", tmp_path / "s.db", label="registry")
    assert "[database] url" in caught.value.message and "mysql://app@db/x" in caught.value.message
    assert "hunter2" not in caught.value.message + caught.value.reason


def config(text: str) -> LayeredConfig:
    """The configuration of one INI file named local.ini."""
    return LayeredConfig.from_layers([IniLayer("local.ini", text)])


def test_the_database_setting_is_read_once_and_checked() -> None:
    """[database] url: absent or empty is SQLite (None); a postgresql URL is kept; anything else is refused."""
    assert DatabaseConfig.from_config(config("")).url is None
    assert DatabaseConfig.from_config(config("[database]\nurl =\n")).url is None
    url = "postgresql://fedbus:pw@db.example:5432/fedbus?sslmode=verify-full"
    read = DatabaseConfig.from_config(config(f"[database]\nurl = {url}\n"))
    assert read.url == url and read.display_url == "postgresql://fedbus@db.example:5432/fedbus?sslmode=verify-full"
    for bad in ("sqlite:///var/x.db", "postgresql://u:pw@host:99999/x", "just text"):
        with pytest.raises(ConfigurationError) as caught:
            DatabaseConfig.from_config(config(f"[database]\nurl = {bad}\n"))
        assert caught.value.message.startswith("local.ini: [database] url = ") and ":pw@" not in caught.value.message


@pytest.mark.parametrize("role", ["security-server", "central-registry"])
def test_the_shipped_defaults_keep_the_embedded_sqlite_database(role: str) -> None:
    """Both roles ship ``[database] url`` empty: SQLite unless an operator names a PostgreSQL database."""
    assert DatabaseConfig.from_config(load_config(role, local_dir=Path("/nonexistent"))) == DatabaseConfig(None)


def test_a_password_never_shows_in_a_redacted_url() -> None:
    """The user part and a password query parameter lose the password; the rest stays."""
    assert url_without_password("postgresql://u:s3cr%40t@h:5/d?password=x&sslmode=require") == (
        "postgresql://u@h:5/d?sslmode=require"
    )
    assert url_without_password("postgresql:///fedbus") == "postgresql:///fedbus"


@pytest.mark.parametrize("problem", ["password", "database", "port"])
def test_a_bad_url_is_a_startup_error_naming_the_setting(postgres_server: PostgresServer, problem: str) -> None:
    """Wrong credentials, an unknown database or a closed port: DatabaseUnreachable naming the setting, no password."""
    url = {
        "password": postgres_server.url(password="wrong-secret"),
        "database": postgres_server.url("no_such_db"),
        "port": postgres_server.url().replace(f":{postgres_server.port}/", ":1/"),
    }[problem]
    words = {
        "password": "the database server refused the credentials",
        "database": "the database does not exist",
        "port": "the database server cannot be reached",
    }[problem]
    with pytest.raises(DatabaseUnreachable) as caught:
        open_postgresql(url, label="server configuration", setting="[database] url")
    assert caught.value.message.startswith(f"server configuration: opening failed: {words}")
    assert caught.value.message.endswith("(check [database] url)")
    assert url_without_password(url) in caught.value.message
    for secret in ("wrong-secret", postgres_server.password):
        assert secret not in caught.value.message + caught.value.reason


@pytest.fixture
def db(postgres_url: str) -> Iterator[PostgresDatabase]:
    """An open PostgreSQL database with one table ``t``."""
    database = open_postgresql(postgres_url, label="test store", lock_timeout=30.0)
    database.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, value TEXT NOT NULL)", action="creating")
    yield database
    database.close()


def test_writers_take_turns_and_the_second_sees_the_first(db: PostgresDatabase) -> None:
    """A write waits for another thread's write to end and then reads its rows, like SQLite's BEGIN IMMEDIATE."""
    first_inside, second_started = threading.Event(), threading.Event()
    seen: list[object] = []

    def second() -> None:
        first_inside.wait()
        second_started.set()
        with db.write("second") as conn:
            seen.append(conn.execute("SELECT count(*) FROM t").fetchone())
            conn.execute("INSERT INTO t (id, value) VALUES (2, 'second')")

    thread = threading.Thread(target=second)
    thread.start()
    with db.write("first") as conn:
        conn.execute("INSERT INTO t (id, value) VALUES (1, 'first')")
        first_inside.set()
        second_started.wait()
        assert seen == []  # the second writer is still waiting for the lock
    thread.join()
    assert seen == [(1,)]
    assert db.execute("SELECT id FROM t ORDER BY id", action="reading").fetchall() == [(1,), (2,)]


def test_each_thread_has_its_own_transaction(db: PostgresDatabase) -> None:
    """A statement of another thread does not join this thread's open transaction."""
    outside: list[object] = []
    with db.write("adding") as conn:
        conn.execute("INSERT INTO t (id, value) VALUES (1, 'a')")
        reader = threading.Thread(
            target=lambda: outside.append(db.execute("SELECT count(*) FROM t", action="counting").fetchone())
        )
        reader.start()
        reader.join()
    assert outside == [(0,)]


def test_connections_killed_under_the_pool_are_replaced(db: PostgresDatabase, postgres_server: PostgresServer) -> None:
    """After the server drops every connection (a restart), the next transaction runs on a new one."""
    db.execute("INSERT INTO t (id, value) VALUES (1, 'a')", action="adding")
    with postgres_server.admin() as admin:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'fedbus test store'"
        )
    with db.write("adding after a restart") as conn:
        conn.execute("INSERT INTO t (id, value) VALUES (2, 'b')")
    assert db.execute("SELECT count(*) FROM t", action="counting").fetchone() == (2,)


def test_a_database_that_refuses_connections_fails_writes_clearly_and_recovers(
    postgres_url: str, postgres_server: PostgresServer
) -> None:
    """While no connection can be had, a write is DatabaseUnreachable; once the database is back, writes work."""
    database = open_postgresql(postgres_url, label="server configuration", connect_timeout=1.0)
    database.execute("CREATE TABLE t (x INTEGER)", action="creating")
    name = postgres_url.rsplit("/", 1)[1]
    with postgres_server.admin() as admin:
        admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        admin.execute(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'")
    try:
        with pytest.raises(DatabaseUnreachable) as caught:
            with database.write("adding a client") as conn:
                conn.execute("INSERT INTO t VALUES (1)")
        assert caught.value.message.startswith("server configuration: adding a client failed")
    finally:
        with postgres_server.admin() as admin:
            admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
    # The pool reconnects in the background with a back-off: on a loaded machine the first write after the
    # database returns may still find no connection within its 1-s timeout; it must succeed within a few tries.
    for attempt in range(30):
        try:
            with database.write("adding a client") as conn:
                conn.execute("INSERT INTO t VALUES (1)")
            break
        except DatabaseUnreachable:
            if attempt == 29:
                raise
            time.sleep(0.5)
    assert database.execute("SELECT x FROM t", action="reading").fetchall() == [(1,)]
    database.close()
