"""The server configuration store, on SQLite and on PostgreSQL: valid changes land, every invalid change is refused
and changes nothing."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Callable, Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from security_server.core.acl import AccessRight, Endpoint
from security_server.core.errors import AccessDenied, DatabaseError, InvalidClientIdentifier
from security_server.core.identifiers import ClientId, GlobalGroupId, LocalGroupId, ServiceId
from security_server.serverconf.store import (
    ClientState,
    ServerConfError,
    ServerConfStore,
    ServiceKind,
    check_service_url,
)
from security_server.store.errors import DatabaseUnreachable
from tests.postgres import PostgresServer
from tests.security_server.store.engines import Backend, BackendFactory

OWNER = ClientId("EE", "GOV", "70000310")
PROVIDER = OWNER.subsystem("registry")
OTHER_HOSTED = OWNER.subsystem("archive")
CONSUMER = ClientId("EE", "COM", "12345", "crm")
GET_RANDOM = ServiceId(PROVIDER, "getRandom")
GET_RANDOM_V1 = ServiceId(PROVIDER, "getRandom", "v1")
PETS = ServiceId(PROVIDER, "pets")
PARTNERS = LocalGroupId("partners")
ANCHOR = b"<configurationAnchor>opaque to the store</configurationAnchor>"


def _nobody(client: ClientId, group: GlobalGroupId) -> bool:
    return False


def opened(backend: Backend) -> ServerConfStore:
    """The configuration store in the backend's database (SQLite file or PostgreSQL)."""
    return ServerConfStore(backend.path, database_url=backend.url)


@pytest.fixture
def store(backend: Backend) -> Iterator[ServerConfStore]:
    """An initialised store hosting PROVIDER (registered) with getRandom v1 (SOAP) and pets (REST), on each engine."""
    with opened(backend) as ready:
        ready.initialise(OWNER, "ss1", ANCHOR)
        ready.add_client(PROVIDER)
        ready.set_client_state(PROVIDER, ClientState.REGISTRATION_IN_PROGRESS)
        ready.set_client_state(PROVIDER, ClientState.REGISTERED)
        ready.add_service(GET_RANDOM_V1, url="http://127.0.0.1:8080/random")
        ready.add_service(PETS, url="https://pets.example/api", kind=ServiceKind.REST, timeout_seconds=5)
        ready.add_local_group(PROVIDER, PARTNERS, "Partner systems")
        ready.add_local_group_member(PROVIDER, PARTNERS, CONSUMER)
        ready.grant(AccessRight(CONSUMER, GET_RANDOM))
        yield ready


# --- what lands ---------------------------------------------------------------------------------------------


def test_initialise_records_identity_anchor_and_owner_client(backend: Backend) -> None:
    """init stores owner, server code and anchor; the owner is a saved client of its own server."""
    with opened(backend) as fresh:
        assert not fresh.is_initialised()
        identity = fresh.initialise(OWNER, "ss1", ANCHOR)
        assert fresh.is_initialised()
        assert fresh.identity() == identity
        assert str(identity.server_id) == "SERVER:EE/GOV/70000310/ss1"
        assert fresh.anchor() == ANCHOR
        snapshot = fresh.snapshot()
        owner = snapshot.client(OWNER)
        assert owner is not None and owner.is_owner and owner.state is ClientState.SAVED


def test_the_store_survives_reopening(store: ServerConfStore, backend: Backend) -> None:
    """A second store on the same database reads the same configuration (the data is committed)."""
    before = store.snapshot()
    with opened(backend) as again:
        assert again.snapshot() == before


def test_a_change_through_one_store_is_seen_by_the_next_snapshot_of_another(
    store: ServerConfStore, backend: Backend
) -> None:
    """Two stores on one database (two nodes of a cluster on PostgreSQL) see each other's changes at once."""
    with opened(backend) as other_node:
        other_node.disable_service(GET_RANDOM_V1, "maintenance")
        store.revoke(AccessRight(CONSUMER, GET_RANDOM))
        for snapshot in (store.snapshot(), other_node.snapshot()):
            service = snapshot.service(GET_RANDOM_V1)
            assert service is not None and service.disabled_notice == "maintenance"
            assert snapshot.rights_for(PROVIDER, "getRandom") == ()


def test_snapshot_lookups(store: ServerConfStore) -> None:
    """The snapshot finds clients, services by exact version, rights per service code and local groups."""
    snapshot = store.snapshot()
    provider = snapshot.client(PROVIDER)
    assert provider is not None and provider.registered and not provider.is_owner
    assert snapshot.client(CONSUMER) is None
    service = snapshot.service(GET_RANDOM_V1)
    assert service is not None and service.kind is ServiceKind.SOAP and service.timeout_seconds == 60
    assert service.enabled and service.disabled_notice == ""
    assert snapshot.service(GET_RANDOM) is None  # X-Road matches the version exactly
    assert snapshot.service(ServiceId(PROVIDER, "getRandom", "v2")) is None
    pets = snapshot.service(PETS)
    assert pets is not None and pets.kind is ServiceKind.REST and pets.timeout_seconds == 5
    assert snapshot.rights_for(PROVIDER, "getRandom") == (AccessRight(CONSUMER, GET_RANDOM),)
    assert snapshot.rights_for(PROVIDER, "pets") == ()
    assert snapshot.local_groups(PROVIDER) == {PARTNERS: frozenset({CONSUMER})}
    assert snapshot.local_groups(OWNER) == {}
    assert [s.id for s in snapshot.services_of(PROVIDER)] == [GET_RANDOM_V1, PETS]


def test_snapshot_is_frozen(store: ServerConfStore) -> None:
    """A snapshot cannot be changed, and later store changes do not reach it."""
    snapshot = store.snapshot()
    with pytest.raises(AttributeError):
        snapshot.rights = ()  # type: ignore[misc]
    with pytest.raises(TypeError):
        snapshot.local_groups(PROVIDER)[LocalGroupId("x")] = frozenset()  # type: ignore[index]
    store.revoke(AccessRight(CONSUMER, GET_RANDOM))
    assert snapshot.rights_for(PROVIDER, "getRandom") == (AccessRight(CONSUMER, GET_RANDOM),)
    assert store.snapshot().rights_for(PROVIDER, "getRandom") == ()


def test_snapshot_access_decisions(store: ServerConfStore) -> None:
    """The snapshot applies the ACL: granted client allowed for any version, others denied."""
    snapshot = store.snapshot()
    assert snapshot.is_allowed(CONSUMER, GET_RANDOM_V1, in_global_group=_nobody)
    assert snapshot.is_allowed(CONSUMER, ServiceId(PROVIDER, "getRandom", "v9"), in_global_group=_nobody)
    assert not snapshot.is_allowed(CONSUMER.member, GET_RANDOM_V1, in_global_group=_nobody)
    assert not snapshot.is_allowed(CONSUMER, PETS, in_global_group=_nobody)
    with pytest.raises(AccessDenied):
        snapshot.check_access(CONSUMER, PETS, in_global_group=_nobody)


def test_local_group_rights_use_the_providers_groups(store: ServerConfStore) -> None:
    """A right for a local group lets its members in, and removing a member takes the access away."""
    store.grant(AccessRight(PARTNERS, PETS))
    assert store.snapshot().is_allowed(CONSUMER, PETS, in_global_group=_nobody)
    store.remove_local_group_member(PROVIDER, PARTNERS, CONSUMER)
    assert not store.snapshot().is_allowed(CONSUMER, PETS, in_global_group=_nobody)


def test_global_group_rights_ask_the_callable(store: ServerConfStore) -> None:
    """A right for a global group allows whoever the global configuration puts in it."""
    group = GlobalGroupId("EE", "security-server-owners")
    store.grant(AccessRight(group, PETS))
    snapshot = store.snapshot()
    assert snapshot.is_allowed(OTHER_HOSTED, PETS, in_global_group=lambda c, g: (c, g) == (OTHER_HOSTED, group))
    assert not snapshot.is_allowed(OTHER_HOSTED, PETS, in_global_group=_nobody)


def test_endpoint_rights_are_stored_for_rest_services(store: ServerConfStore) -> None:
    """An endpoint-level right on a REST service is stored and read back with its endpoint."""
    right = AccessRight(CONSUMER, PETS, Endpoint("GET", "/pets/{id}"))
    store.grant(right)
    assert store.snapshot().rights_for(PROVIDER, "pets") == (right,)
    assert not store.snapshot().is_allowed(CONSUMER, PETS, in_global_group=_nobody)  # not service level


def test_disable_and_enable_a_service(store: ServerConfStore) -> None:
    """Disabling keeps the notice; enabling clears it."""
    store.disable_service(GET_RANDOM_V1, "Down for maintenance until 14:00")
    service = store.snapshot().service(GET_RANDOM_V1)
    assert service is not None and not service.enabled and service.disabled_notice == "Down for maintenance until 14:00"
    store.enable_service(GET_RANDOM_V1)
    service = store.snapshot().service(GET_RANDOM_V1)
    assert service is not None and service.enabled and service.disabled_notice == ""


def test_grant_twice_is_refused_and_revoke_then_grant_works(store: ServerConfStore) -> None:
    """Granting an existing right is refused (X-Road: duplicate access right); after revoking it can be granted."""
    with pytest.raises(ServerConfError, match="already has"):
        store.grant(AccessRight(CONSUMER, GET_RANDOM))
    store.revoke(AccessRight(CONSUMER, GET_RANDOM))
    store.grant(AccessRight(CONSUMER, GET_RANDOM))
    assert store.snapshot().rights_for(PROVIDER, "getRandom") == (AccessRight(CONSUMER, GET_RANDOM),)


def test_client_state_transitions_follow_the_user_guide(store: ServerConfStore) -> None:
    """saved -> registration in progress -> registered -> deletion in progress; nothing else."""
    store.add_client(OTHER_HOSTED)
    with pytest.raises(ServerConfError, match="cannot go from saved to deletion_in_progress"):
        store.set_client_state(OTHER_HOSTED, ClientState.DELETION_IN_PROGRESS)
    store.set_client_state(OTHER_HOSTED, ClientState.REGISTERED)
    store.set_client_state(OTHER_HOSTED, ClientState.DELETION_IN_PROGRESS)
    with pytest.raises(ServerConfError):
        store.set_client_state(OTHER_HOSTED, ClientState.REGISTERED)


# --- Hypothesis: adding rights through the store never removes one ----------------------------------------------

subjects = st.one_of(
    st.builds(ClientId, st.just("EE"), st.sampled_from(["GOV", "COM"]), st.sampled_from(["1", "2"]),
              st.sampled_from([None, "a"])),
    st.builds(GlobalGroupId, st.just("EE"), st.sampled_from(["g1", "g2"])),
    st.just(PARTNERS),
)
grants = st.lists(st.tuples(subjects, st.sampled_from([GET_RANDOM, PETS])), max_size=8)


@pytest.mark.parametrize(("engine", "examples"), [("sqlite", 25), ("postgresql", 10)])
def test_granting_keeps_every_earlier_right(new_backend: BackendFactory, engine: str, examples: int) -> None:
    """Each successful grant adds exactly its right; duplicates are refused and change nothing."""

    @settings(max_examples=examples, deadline=None)  # fewer on PostgreSQL: a new database per example
    @given(grants)
    def grant_all(steps: list[tuple[object, ServiceId]]) -> None:
        with new_backend(engine) as backend, opened(backend) as fresh:
            fresh.initialise(OWNER, "ss1", ANCHOR)
            fresh.add_client(PROVIDER)
            fresh.add_service(GET_RANDOM, url="http://127.0.0.1/")
            fresh.add_service(PETS, url="http://127.0.0.1/", kind=ServiceKind.REST)
            fresh.add_local_group(PROVIDER, PARTNERS, "partners")
            expected: list[AccessRight] = []
            for subject, service in steps:
                right = AccessRight(subject, service)  # type: ignore[arg-type]
                if right in expected:
                    with pytest.raises(ServerConfError):
                        fresh.grant(right)
                else:
                    fresh.grant(right)
                    expected.append(right)
                assert list(fresh.snapshot().rights) == expected

    grant_all()


# --- every invalid change is refused and changes nothing ---------------------------------------------------------

INVALID_CHANGES: list[tuple[str, Callable[[ServerConfStore], object]]] = [
    ("init twice", lambda s: s.initialise(OWNER, "ss2", ANCHOR)),
    ("replace anchor with nothing", lambda s: s.replace_anchor(b"")),
    ("add the same client twice", lambda s: s.add_client(PROVIDER)),
    ("add a member as a client", lambda s: s.add_client(CONSUMER.member)),
    ("add a client of another instance", lambda s: s.add_client(ClientId("FI", "GOV", "1", "x"))),
    ("add a client that is not an identifier", lambda s: s.add_client("SUBSYSTEM:EE/GOV/1/x")),  # type: ignore[arg-type]
    ("move a client backwards", lambda s: s.set_client_state(PROVIDER, ClientState.SAVED)),
    ("move an unknown client", lambda s: s.set_client_state(CONSUMER, ClientState.REGISTERED)),
    ("set an unknown state", lambda s: s.set_client_state(PROVIDER, "approved")),  # type: ignore[arg-type]
    ("service of an unknown client", lambda s: s.add_service(ServiceId(CONSUMER, "x"), url="http://a/")),
    ("duplicate service", lambda s: s.add_service(GET_RANDOM_V1, url="http://other/")),
    ("same code as another kind", lambda s: s.add_service(ServiceId(PROVIDER, "pets", "v2"), url="http://a/")),
    ("service URL with ftp", lambda s: s.add_service(GET_RANDOM, url="ftp://files/x")),
    ("service URL without host", lambda s: s.add_service(GET_RANDOM, url="http:///x")),
    ("service URL relative", lambda s: s.add_service(GET_RANDOM, url="/random")),
    ("service URL with credentials", lambda s: s.add_service(GET_RANDOM, url="http://u:p@host/")),
    ("service URL with a space", lambda s: s.add_service(GET_RANDOM, url="http://host/a b")),
    ("service URL with a bad port", lambda s: s.add_service(GET_RANDOM, url="http://host:99999/")),
    ("timeout zero", lambda s: s.add_service(GET_RANDOM, url="http://a/", timeout_seconds=0)),
    ("timeout too long", lambda s: s.add_service(GET_RANDOM, url="http://a/", timeout_seconds=3601)),
    ("timeout not whole", lambda s: s.add_service(GET_RANDOM, url="http://a/", timeout_seconds=1.5)),  # type: ignore[arg-type]
    ("timeout a boolean", lambda s: s.add_service(GET_RANDOM, url="http://a/", timeout_seconds=True)),
    ("unknown service kind", lambda s: s.add_service(GET_RANDOM, url="http://a/", kind="graphql")),  # type: ignore[arg-type]
    ("disable an unknown service", lambda s: s.disable_service(GET_RANDOM, "x")),
    ("disable with a control character", lambda s: s.disable_service(GET_RANDOM_V1, "bad\nnotice")),
    ("disable with a long notice", lambda s: s.disable_service(GET_RANDOM_V1, "x" * 256)),
    ("enable an enabled service", lambda s: s.enable_service(GET_RANDOM_V1)),
    ("grant twice", lambda s: s.grant(AccessRight(CONSUMER, GET_RANDOM))),
    ("grant on an unknown service code", lambda s: s.grant(AccessRight(CONSUMER, ServiceId(PROVIDER, "nope")))),
    ("grant on an unknown provider", lambda s: s.grant(AccessRight(CONSUMER, ServiceId(OTHER_HOSTED, "getRandom")))),
    ("grant to an unknown local group", lambda s: s.grant(AccessRight(LocalGroupId("nobody"), GET_RANDOM))),
    ("endpoint right on a SOAP service", lambda s: s.grant(AccessRight(CONSUMER, GET_RANDOM, Endpoint("GET", "/")))),
    ("revoke a right never granted", lambda s: s.revoke(AccessRight(CONSUMER, PETS))),
    ("revoke with another subject", lambda s: s.revoke(AccessRight(CONSUMER.member, GET_RANDOM))),
    ("local group of an unknown client", lambda s: s.add_local_group(CONSUMER, LocalGroupId("g"), "d")),
    ("local group twice", lambda s: s.add_local_group(PROVIDER, PARTNERS, "again")),
    ("local group without description", lambda s: s.add_local_group(PROVIDER, LocalGroupId("g"), "")),
    ("member of an unknown group", lambda s: s.add_local_group_member(PROVIDER, LocalGroupId("g"), CONSUMER)),
    ("member twice", lambda s: s.add_local_group_member(PROVIDER, PARTNERS, CONSUMER)),
    ("remove a non-member", lambda s: s.remove_local_group_member(PROVIDER, PARTNERS, CONSUMER.member)),
]


@pytest.mark.parametrize("change", [c for _, c in INVALID_CHANGES], ids=[name for name, _ in INVALID_CHANGES])
def test_invalid_change_is_refused_and_changes_nothing(
    store: ServerConfStore, backend: Backend, change: Callable[[ServerConfStore], object]
) -> None:
    """The change raises ServerConfError (invalid_request) and the database holds exactly what it held."""
    before = backend.dump()
    with pytest.raises(ServerConfError) as caught:
        change(store)
    assert caught.value.fault_code == "client.invalid_request"
    assert backend.dump() == before


@pytest.mark.parametrize(
    "change",
    [
        lambda s: s.add_client(PROVIDER),
        lambda s: s.add_service(GET_RANDOM, url="http://a/"),
        lambda s: s.grant(AccessRight(CONSUMER, GET_RANDOM)),
        lambda s: s.add_local_group(PROVIDER, PARTNERS, "d"),
        lambda s: s.snapshot(),
        lambda s: s.identity(),
        lambda s: s.anchor(),
    ],
)
def test_nothing_works_before_init(backend: Backend, change: Callable[[ServerConfStore], object]) -> None:
    """Before init every change and read is refused with a pointer to `fedbus server init`."""
    with opened(backend) as fresh:
        before = backend.dump()
        with pytest.raises(ServerConfError, match="server init"):
            change(fresh)
        assert backend.dump() == before


@pytest.mark.parametrize(
    ("owner", "code", "anchor"),
    [
        (PROVIDER, "ss1", ANCHOR),  # a subsystem cannot own a server
        (OWNER, "ss/1", ANCHOR),
        (OWNER, "", ANCHOR),
        (OWNER, "ss1", b""),
        (OWNER, "ss1", "text, not bytes"),
        (OWNER, "ss1", b"x" * (1024 * 1024 + 1)),
    ],
)
def test_invalid_init_is_refused_and_changes_nothing(
    backend: Backend, owner: ClientId, code: str, anchor: bytes
) -> None:
    """A bad owner, server code or anchor leaves the store uninitialised."""
    with opened(backend) as fresh:
        before = backend.dump()
        with pytest.raises((ServerConfError, InvalidClientIdentifier)):
            fresh.initialise(owner, code, anchor)
        assert backend.dump() == before and not fresh.is_initialised()


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8080/random", "https://service.example/api/v1?x=1", "http://[::1]:80/", "http://host"]
)
def test_good_service_urls_are_accepted(url: str) -> None:
    """Ordinary http and https URLs with a host pass the check unchanged."""
    assert check_service_url(url) == url


def test_a_closed_store_refuses_with_database_error(backend: Backend) -> None:
    """Using a closed store is a DatabaseError, not a crash inside the driver."""
    fresh = opened(backend)
    fresh.close()
    with pytest.raises(DatabaseError):
        fresh.is_initialised()


def test_an_unreadable_database_is_a_database_error(tmp_path: Path) -> None:
    """A file that is not an SQLite database fails with DatabaseError on open."""
    bad = tmp_path / "serverconf.db"
    bad.write_bytes(b"not a database" * 100)
    with pytest.raises(DatabaseError):
        ServerConfStore(bad)


def test_a_corrupt_row_fails_the_snapshot_closed(store: ServerConfStore, backend: Backend) -> None:
    """A row holding an invalid identifier makes snapshot() raise DatabaseError rather than guess."""
    backend.execute("UPDATE access_right SET subject = 'SUBSYSTEM:EE/../x/y'")
    with pytest.raises(DatabaseError):
        store.snapshot()


def test_an_unreachable_database_server_is_a_startup_error_naming_the_setting(
    postgres_server: PostgresServer, tmp_path: Path
) -> None:
    """A server that does not answer (a closed port) refuses to open, naming [database] url and the URL."""
    url = f"postgresql://fedbus:secret-word@127.0.0.1:{_closed_port()}/serverconf"
    with pytest.raises(DatabaseUnreachable) as caught:
        ServerConfStore(tmp_path / "serverconf.db", database_url=url)
    message = caught.value.message
    assert message.startswith("server configuration: opening failed: the database server cannot be reached")
    assert "[database] url" in message and "postgresql://fedbus@127.0.0.1:" in message
    assert "secret-word" not in message + caught.value.reason
    assert not (tmp_path / "serverconf.db").exists()


def _closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
