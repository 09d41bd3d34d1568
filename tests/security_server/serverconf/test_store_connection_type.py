"""Each client's connection type in the server configuration (migration 6), on SQLite and on PostgreSQL."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Iterator

import pytest

from security_server.core.connection_type import ConnectionType
from security_server.core.identifiers import ClientId
from security_server.serverconf.store import ServerConfError, ServerConfStore
from tests.security_server.store.engines import Backend
from tests.security_server.store.legacy_schemas import write_serverconf

OWNER = ClientId("EE", "GOV", "70000310")
PROVIDER = OWNER.subsystem("registry")


@pytest.fixture
def store(backend: Backend) -> Iterator[ServerConfStore]:
    """An initialised store hosting PROVIDER."""
    with ServerConfStore(backend.path, database_url=backend.url) as opened:
        opened.initialise(OWNER, "ss1", b"<anchor/>")
        opened.add_client(PROVIDER)
        yield opened


def test_a_new_client_connects_over_http(store: ServerConfStore) -> None:
    """A client added (and the owner made at init) has connection type HTTP until it is changed."""
    snapshot = store.snapshot()
    assert [c.connection_type for c in snapshot.clients] == [ConnectionType.HTTP, ConnectionType.HTTP]


def test_the_connection_type_is_kept(store: ServerConfStore) -> None:
    """A connection type set is what the next snapshot shows, for that client only."""
    store.set_connection_type(PROVIDER, ConnectionType.HTTPS)
    snapshot = store.snapshot()
    provider, owner = snapshot.client(PROVIDER), snapshot.client(OWNER)
    assert provider is not None and provider.connection_type is ConnectionType.HTTPS
    assert owner is not None and owner.connection_type is ConnectionType.HTTP


def test_an_unknown_client_or_value_is_refused(store: ServerConfStore) -> None:
    """Neither a client the server does not host nor a value that is not a ConnectionType is stored."""
    with pytest.raises(ServerConfError):
        store.set_connection_type(OWNER.subsystem("nobody"), ConnectionType.HTTPS)
    with pytest.raises(ServerConfError):
        store.set_connection_type(PROVIDER, "HTTPS")  # type: ignore[arg-type]
    assert all(c.connection_type is ConnectionType.HTTP for c in store.snapshot().clients)


def test_a_database_from_before_keeps_its_clients_on_http(tmp_path: Path) -> None:
    """A configuration at migration 5 opens with every client on HTTP, as they were served before."""
    path = tmp_path / "serverconf.db"
    with contextlib.closing(write_serverconf(path, upto=1)) as conn:
        conn.execute("INSERT INTO server VALUES (1, ?, 'ss1', x'3c613e')", (str(OWNER),))
        conn.execute("INSERT INTO client VALUES (?, 'registered', 1)", (str(OWNER),))
        conn.execute("INSERT INTO client VALUES (?, 'registered', 0)", (str(PROVIDER),))
    with ServerConfStore(path) as opened:
        snapshot = opened.snapshot()
    assert [c.connection_type for c in snapshot.clients] == [ConnectionType.HTTP, ConnectionType.HTTP]
