"""Endpoints added by hand, REST service codes changed, subsystem names, group descriptions and the disabled state
in the server configuration (migration 7), on SQLite and on PostgreSQL."""

from __future__ import annotations

import json
from typing import Iterator

import pytest

from security_server.core.acl import AccessRight, Endpoint
from security_server.core.identifiers import ClientId, LocalGroupId, ServiceId
from security_server.serverconf.store import ClientState, ServerConfError, ServerConfStore, ServiceKind
from tests.security_server.store.engines import Backend

OWNER = ClientId("EE", "GOV", "70000310")
PROVIDER = OWNER.subsystem("registry")
CONSUMER = ClientId("EE", "COM", "12345", "app")
PETS = ServiceId(PROVIDER, "pets")
RANDOM = ServiceId(PROVIDER, "getRandom", "v1")
OPENAPI = json.dumps({"openapi": "3.0.0", "info": {"title": "Pets", "version": "1"},
                      "paths": {"/pets/{id}": {"get": {"responses": {"200": {"description": "ok"}}}}}}).encode()
ADDED = Endpoint("POST", "/pets")


@pytest.fixture
def store(backend: Backend) -> Iterator[ServerConfStore]:
    """An initialised store hosting PROVIDER with REST service pets (OpenAPI: GET /pets/*) and SOAP getRandom."""
    with ServerConfStore(backend.path, database_url=backend.url) as opened:
        opened.initialise(OWNER, "ss1", b"<anchor/>")
        opened.add_client(PROVIDER)
        opened.add_service(PETS, url="http://127.0.0.1:9/pets", kind=ServiceKind.REST, description=OPENAPI)
        opened.add_service(RANDOM, url="http://127.0.0.1:9/soap")
        yield opened


def _pets(store: ServerConfStore) -> tuple[tuple[str, ...], tuple[str, ...]]:
    service = store.snapshot().service(PETS)
    assert service is not None
    return tuple(str(e) for e in service.endpoints), tuple(str(e) for e in service.added_endpoints)


def test_an_added_endpoint_follows_the_descriptions_and_keeps_its_rights(store: ServerConfStore) -> None:
    """An added endpoint is listed after the description's; changed, its rights follow; deleted, they go."""
    store.add_endpoint(PROVIDER, "pets", ADDED)
    assert _pets(store) == (("GET /pets/*", "POST /pets"), ("POST /pets",))
    store.grant(AccessRight(CONSUMER, PETS, ADDED))
    moved = Endpoint("PUT", "/pets/*")
    store.update_endpoint(PROVIDER, "pets", ADDED, moved)
    assert [r.endpoint for r in store.snapshot().rights] == [moved]
    store.delete_endpoint(PROVIDER, "pets", moved)
    assert _pets(store) == (("GET /pets/*",), ()) and store.snapshot().rights == ()


def test_endpoint_changes_are_refused_and_change_nothing(store: ServerConfStore) -> None:
    """A generated or existing endpoint, a SOAP service and an unknown code are refused."""
    store.add_endpoint(PROVIDER, "pets", ADDED)
    for code, endpoint in (("pets", ADDED), ("pets", Endpoint("GET", "/pets/*")), ("pets", Endpoint("*", "**")),
                           ("getRandom", ADDED), ("cats", ADDED)):
        with pytest.raises(ServerConfError):
            store.add_endpoint(PROVIDER, code, endpoint)
    with pytest.raises(ServerConfError):
        store.update_endpoint(PROVIDER, "pets", Endpoint("GET", "/pets/*"), Endpoint("GET", "/x"))
    with pytest.raises(ServerConfError):
        store.delete_endpoint(PROVIDER, "pets", Endpoint("GET", "/pets/*"))
    assert _pets(store) == (("GET /pets/*", "POST /pets"), ("POST /pets",))


def test_a_rest_code_changes_with_its_rights_and_endpoints(store: ServerConfStore) -> None:
    """A new code takes the service, its rights and its added endpoints; a taken code is refused."""
    store.add_endpoint(PROVIDER, "pets", ADDED)
    store.grant(AccessRight(CONSUMER, PETS))
    with pytest.raises(ServerConfError):
        store.rename_service_code(PROVIDER, "pets", "getRandom")
    store.rename_service_code(PROVIDER, "pets", "animals")
    snapshot = store.snapshot()
    animals = snapshot.service(ServiceId(PROVIDER, "animals"))
    assert snapshot.service(PETS) is None and animals is not None and animals.added_endpoints == (ADDED,)
    assert [r.service_code for r in snapshot.rights] == ["animals"]


def test_names_descriptions_and_the_disabled_state(store: ServerConfStore) -> None:
    """A subsystem keeps its name (a member has none, ':' is refused), a group its new description, and a
    registered client goes to DISABLED and back; deleting the client forgets its name and endpoints."""
    store.set_subsystem_name(PROVIDER, "Registry")
    store.set_subsystem_name(PROVIDER, "Population registry")
    assert dict(store.snapshot().subsystem_names) == {PROVIDER: "Population registry"}
    for client, name in ((OWNER, "Owner"), (PROVIDER, "a:b"), (OWNER.subsystem("nobody"), "X")):
        with pytest.raises(ServerConfError):
            store.set_subsystem_name(client, name)
    store.add_local_group(PROVIDER, LocalGroupId("partners"), "Partners")
    store.set_local_group_description(PROVIDER, LocalGroupId("partners"), "Friends")
    assert store.snapshot().groups[0].description == "Friends"
    with pytest.raises(ServerConfError):
        store.set_client_state(PROVIDER, ClientState.DISABLED)
    store.set_client_state(PROVIDER, ClientState.REGISTERED)
    store.set_client_state(PROVIDER, ClientState.DISABLED)
    hosted = store.snapshot().client(PROVIDER)
    assert hosted is not None and hosted.state is ClientState.DISABLED and not hosted.registered
    store.set_client_state(PROVIDER, ClientState.REGISTERED)
    store.set_client_state(PROVIDER, ClientState.DELETION_IN_PROGRESS)
    store.add_endpoint(PROVIDER, "pets", ADDED)
    store.delete_client(PROVIDER)
    assert store.snapshot().subsystem_names == {} and store.snapshot().services == ()
