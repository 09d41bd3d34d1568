"""The registry store, on SQLite and on PostgreSQL: valid changes are recorded and audited; invalid ones are refused
and change nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from central_registry.store import ApprovedCa, ApprovedTsa, RegistryError, RegistryStore, auth_cert_hash
from security_server.core.errors import DatabaseError
from security_server.core.identifiers import ClientId, GlobalGroupId, SecurityServerId
from security_server.store.errors import DatabaseUnreachable
from tests.postgres import PostgresServer
from tests.security_server.store.engines import Backend

GOV1 = ClientId("EE", "GOV", "70000310")
GOV2 = ClientId("EE", "GOV", "70000311")


def opened(backend: Backend) -> RegistryStore:
    """The registry store in the backend's database."""
    return RegistryStore(backend.path, database_url=backend.url)


@pytest.fixture
def store(backend: Backend) -> Iterator[RegistryStore]:
    """An initialised registry for instance EE, on each engine."""
    registry = opened(backend)
    registry.initialise("EE")
    yield registry
    registry.close()


def _snapshot(store: RegistryStore) -> tuple[object, ...]:
    return (store.members(), store.security_servers(), store.cas(), store.tsas(), store.groups())


def test_members_subsystems_and_servers(store: RegistryStore) -> None:
    """Members, subsystems and a server with its auth cert come back as stored."""
    store.add_member(GOV1, "Population Register")
    store.add_subsystem(GOV1.subsystem("registry"))
    server = SecurityServerId(GOV1, "ss1")
    store.register_auth_cert(server, "127.0.0.1", b"cert-der")
    store.add_server_client(server, GOV1.subsystem("registry"))
    assert store.member(GOV1).subsystems == ("registry",)
    registered = store.security_server(server)
    assert registered is not None
    assert registered.auth_cert_hashes == (auth_cert_hash(b"cert-der"),)
    assert set(registered.clients) == {GOV1, GOV1.subsystem("registry")}


@pytest.mark.parametrize(
    "change",
    [
        lambda s: s.add_member(GOV1, "Duplicate"),  # duplicate member
        lambda s: s.add_member(ClientId("FI", "GOV", "1"), "Other instance"),  # wrong instance
        lambda s: s.add_member(ClientId("EE", "NOSUCH", "1"), "Unknown class"),  # unknown member class
        lambda s: s.add_member(ClientId("EE", "GOV", "9"), "  "),  # empty name
        lambda s: s.add_subsystem(ClientId("EE", "GOV", "404", "sub")),  # unknown owner
        lambda s: s.add_subsystem(GOV1.subsystem("registry")),  # duplicate subsystem
        lambda s: s.register_auth_cert(SecurityServerId(GOV2, "ss9"), "h", b"x"),  # unknown owner
        lambda s: s.register_auth_cert(SecurityServerId(GOV1, "ss2"), "h", b"cert-1"),  # cert already registered
        lambda s: s.add_server_client(SecurityServerId(GOV1, "nope"), GOV1),  # unknown server
        lambda s: s.add_server_client(SecurityServerId(GOV1, "ss1"), ClientId("EE", "GOV", "70000310", "ghost")),
        lambda s: s.add_group_member(GlobalGroupId("EE", "nogroup"), GOV1),
        lambda s: s.add_group(GlobalGroupId("FI", "g"), "other instance"),
        lambda s: s.add_ca(ApprovedCa("ca", b"other", None, None, False, "fedbus")),  # duplicate CA name
        lambda s: s.add_tsa(ApprovedTsa("tsa", "http://x", b"c")),  # duplicate TSA name
        lambda s: s.remove_member(GOV1),  # owns a server
        lambda s: s.initialise("EE"),  # twice
        lambda s: s.set_setting("ocsp_freshness_seconds", "-5"),
        lambda s: s.set_setting("no_such_setting", "1"),
    ],
)
def test_invalid_changes_are_refused_and_change_nothing(store: RegistryStore, change: object) -> None:
    """Each invalid change raises a RegistryError and leaves the store exactly as it was."""
    store.add_member(GOV1, "Population Register")
    store.add_subsystem(GOV1.subsystem("registry"))
    store.register_auth_cert(SecurityServerId(GOV1, "ss1"), "127.0.0.1", b"cert-1")
    store.add_ca(ApprovedCa("ca", b"der", "http://127.0.0.1/ocsp", None, False, "fedbus"))
    store.add_tsa(ApprovedTsa("tsa", "http://127.0.0.1/tsa", b"der"))
    before = _snapshot(store)
    audit_before = len(store.audit_events())
    with pytest.raises(RegistryError):
        change(store)  # type: ignore[operator]
    assert _snapshot(store) == before
    assert len(store.audit_events()) == audit_before


def test_every_change_is_audited(store: RegistryStore) -> None:
    """Each successful change leaves one audit event."""
    store.add_member(GOV1, "A")
    store.add_subsystem(GOV1.subsystem("s"))
    events = [event["event"] for event in store.audit_events()]
    assert events == ["registry_initialised", "member_added", "subsystem_added"]


def test_remove_member_removes_its_memberships(store: RegistryStore) -> None:
    """Removing a member drops its subsystems and group memberships."""
    store.add_member(GOV2, "B")
    store.add_subsystem(GOV2.subsystem("s"))
    group = GlobalGroupId("EE", "vip")
    store.add_group(group, "Very important")
    store.add_group_member(group, GOV2.subsystem("s"))
    store.remove_member(GOV2)
    assert store.members() == []
    assert store.groups()[0].members == ()


def test_settings_defaults_and_changes(store: RegistryStore) -> None:
    """Settings start at X-Road's defaults and change within their ranges."""
    assert store.settings().ocsp_freshness_seconds == 3600
    assert store.settings().conf_expire_seconds == 600
    store.set_setting("timestamping_interval_seconds", "1")
    store.set_setting("auto_approve", "true")
    assert store.settings().timestamping_interval_seconds == 1
    assert store.settings().auto_approve is True


def test_uninitialised_registry_is_refused(backend: Backend) -> None:
    """Using a registry before `init` gives a clear error."""
    registry = opened(backend)
    try:
        with pytest.raises(RegistryError, match="not initialised"):
            registry.settings()
    finally:
        registry.close()


def test_listings_come_in_byte_order_on_every_engine(store: RegistryStore) -> None:
    """Members are listed in the byte order of their identifiers (SQLite's), whatever PostgreSQL's locale says."""
    codes = ["b", "B", "a-1", "a1", "(x)", "Z", "a.2"]
    for code in codes:
        store.add_member(ClientId("EE", "GOV", code), f"member {code}")
    assert [m.id.member_code for m in store.members()] == sorted(codes, key=lambda c: str(ClientId("EE", "GOV", c)).encode())


def test_a_changed_setting_is_kept_once(store: RegistryStore, backend: Backend) -> None:
    """Changing a setting twice leaves one row with the last value (an upsert on both engines)."""
    store.set_setting("conf_expire_seconds", "60")
    store.set_setting("conf_expire_seconds", "120")
    assert store.settings().conf_expire_seconds == 120
    assert backend.execute("SELECT value FROM settings WHERE key = 'conf_expire_seconds'") == [("120",)]


def test_a_database_url_that_does_not_answer_is_a_startup_error_naming_the_setting(
    postgres_server: PostgresServer, tmp_path: Path
) -> None:
    """A wrong password or an unknown database refuses to open, naming [database] url and never the password."""
    for url in (postgres_server.url(password="not-the-password"), postgres_server.url("no_such_registry")):
        with pytest.raises(DatabaseUnreachable) as caught:
            RegistryStore(tmp_path / "registry.db", database_url=url)
        assert "[database] url" in caught.value.message and caught.value.message.startswith("registry: opening failed")
        assert "not-the-password" not in caught.value.message + caught.value.reason
        assert postgres_server.password not in caught.value.message + caught.value.reason
    assert not (tmp_path / "registry.db").exists()


def test_corrupt_database_gives_database_error(tmp_path: Path) -> None:
    """A file that is not a database gives DatabaseError."""
    path = tmp_path / "r.db"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(DatabaseError):
        RegistryStore(path)
