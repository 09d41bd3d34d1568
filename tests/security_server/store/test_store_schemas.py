"""The registry's and the server configuration's migrations, on every engine: all run and are recorded, a newer
schema is refused untouched, and both stores can share one database."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from central_registry.store import SCHEMA as REGISTRY_SCHEMA
from central_registry.store import RegistryStore
from security_server.core.identifiers import ClientId
from security_server.serverconf.store import SCHEMA as SERVERCONF_SCHEMA
from security_server.serverconf.store import ServerConfStore
from security_server.store.errors import SchemaTooNew
from security_server.store.migrations import Schema
from tests.security_server.store.engines import Backend

OWNER = ClientId("EE", "GOV", "70000310")


def open_store(schema: Schema, backend: Backend) -> RegistryStore | ServerConfStore:
    """The store of ``schema`` on the backend's database."""
    if schema is REGISTRY_SCHEMA:
        return RegistryStore(backend.path, database_url=backend.url)
    return ServerConfStore(backend.path, database_url=backend.url)


def recorded(backend: Backend, store: str) -> list[tuple[int, str]]:
    """The (version, name) rows of ``store`` in schema_migrations."""
    rows = backend.execute("SELECT version, name FROM schema_migrations WHERE store = ? ORDER BY version", (store,))
    return [(int(version), str(name)) for version, name in rows]


SCHEMAS = pytest.mark.parametrize("schema", [REGISTRY_SCHEMA, SERVERCONF_SCHEMA], ids=["registry", "serverconf"])


@SCHEMAS
def test_every_migration_runs_and_is_recorded(backend: Backend, schema: Schema) -> None:
    """A new database gets every migration of the store, recorded by number and name; reopening adds nothing."""
    open_store(schema, backend).close()
    assert recorded(backend, schema.store) == [(m.version, m.name) for m in schema.migrations]
    before = backend.dump()
    open_store(schema, backend).close()
    assert backend.dump() == before


@SCHEMAS
def test_a_database_from_a_newer_fedbus_is_refused_untouched(backend: Backend, schema: Schema) -> None:
    """A recorded version beyond this code's latest refuses to open (SchemaTooNew) and changes nothing."""
    open_store(schema, backend).close()
    backend.execute(
        "INSERT INTO schema_migrations (store, version, name, applied_at) VALUES (?, ?, 'from_the_future', 'x')",
        (schema.store, schema.latest + 1),
    )
    before = backend.dump()
    with pytest.raises(SchemaTooNew) as caught:
        open_store(schema, backend)
    assert f"schema version {schema.latest + 1}" in caught.value.message and backend.location in caught.value.reason
    assert backend.dump() == before


def test_the_registry_and_a_server_configuration_can_share_one_database(backend: Backend) -> None:
    """Both stores migrate one database side by side, each with its own history, and keep working."""
    registry = RegistryStore(backend.path, database_url=backend.url)
    with ServerConfStore(backend.path, database_url=backend.url) as serverconf:
        registry.initialise("EE")
        serverconf.initialise(OWNER, "ss1", b"<anchor/>")
        assert registry.settings().instance == "EE" and serverconf.identity().server_code == "ss1"
    registry.close()
    assert [v for v, _ in recorded(backend, "registry")] == [m.version for m in REGISTRY_SCHEMA.migrations]
    assert [v for v, _ in recorded(backend, "serverconf")] == [m.version for m in SERVERCONF_SCHEMA.migrations]


def test_nodes_opening_a_new_database_at_once_migrate_it_once(postgres_url: str, tmp_path: Path) -> None:
    """Several nodes of a cluster starting together on one new PostgreSQL database: all open, and the migrations
    run and are recorded once (the write lock is taken before the version is read again)."""
    backend = Backend("postgresql", tmp_path / "unused.db", postgres_url)
    start = threading.Barrier(3)
    errors: list[BaseException] = []

    def node() -> None:
        start.wait()
        try:
            ServerConfStore(backend.path, database_url=backend.url).close()
        except BaseException as err:  # reported below
            errors.append(err)

    threads = [threading.Thread(target=node) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert recorded(backend, "serverconf") == [(m.version, m.name) for m in SERVERCONF_SCHEMA.migrations]
