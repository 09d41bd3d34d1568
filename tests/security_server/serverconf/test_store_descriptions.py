"""Service descriptions (WSDL, OpenAPI) and REST endpoint rights in the server configuration (issue 6), on SQLite
and on PostgreSQL."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Iterator

import pytest

from security_server.core.acl import AccessRight, Endpoint
from security_server.core.errors import AccessDenied
from security_server.core.identifiers import ClientId, GlobalGroupId, ServiceId
from security_server.serverconf.store import (
    ClientState,
    ServerConfError,
    ServerConfStore,
    ServiceKind,
)
from tests.security_server.store.engines import Backend
from tests.security_server.store.legacy_schemas import write_serverconf

OWNER = ClientId("EE", "GOV", "70000310")
PROVIDER = OWNER.subsystem("registry")
CONSUMER = ClientId("EE", "COM", "12345", "crm")
PETS = ServiceId(PROVIDER, "pets")
RANDOM = ServiceId(PROVIDER, "getRandom", "v1")
OPENAPI = json.dumps(
    {"openapi": "3.0.0", "paths": {"/pets": {"get": {}, "post": {}}, "/pets/{id}": {"get": {}}}}
).encode()
WSDL = b'<definitions xmlns="http://schemas.xmlsoap.org/wsdl/"><service name="s"/></definitions>'


def _nobody(client: ClientId, group: GlobalGroupId) -> bool:
    return False


@pytest.fixture
def store(backend: Backend) -> Iterator[ServerConfStore]:
    """An initialised store hosting PROVIDER (registered), on each engine."""
    with ServerConfStore(backend.path, database_url=backend.url) as opened:
        opened.initialise(OWNER, "ss1", b"<anchor/>")
        opened.add_client(PROVIDER)
        opened.set_client_state(PROVIDER, ClientState.REGISTRATION_IN_PROGRESS)
        opened.set_client_state(PROVIDER, ClientState.REGISTERED)
        yield opened


def test_openapi_operations_become_the_rest_services_endpoints(store: ServerConfStore) -> None:
    """A REST service with an OpenAPI description keeps it and lists its operations as endpoints, in order."""
    added = store.add_service(PETS, url="http://127.0.0.1/api/", kind=ServiceKind.REST, description=OPENAPI)
    assert added.service_type == "OPENAPI"
    service = store.snapshot().service(PETS)
    assert service is not None and service.description == OPENAPI
    assert [str(e) for e in service.endpoints] == ["GET /pets", "POST /pets", "GET /pets/*"]


def test_wsdl_is_kept_with_its_soap_service(store: ServerConfStore) -> None:
    """A SOAP service's WSDL is stored for getWsdl; the service has no endpoints."""
    store.add_service(RANDOM, url="http://127.0.0.1/random", description=WSDL)
    service = store.snapshot().service(RANDOM)
    assert service is not None and service.description == WSDL and service.endpoints == ()
    assert service.service_type == "WSDL"


def test_rest_service_without_description_is_plain_rest(store: ServerConfStore) -> None:
    """A REST service with only a base URL is service type REST with no endpoints."""
    store.add_service(PETS, url="http://127.0.0.1/api", kind=ServiceKind.REST)
    service = store.snapshot().service(PETS)
    assert service is not None and service.service_type == "REST" and service.description is None


@pytest.mark.parametrize(
    ("service", "kind", "description"),
    [
        (PETS, ServiceKind.REST, b"openapi: 3.0.0"),  # YAML is not read
        (PETS, ServiceKind.REST, WSDL),
        (RANDOM, ServiceKind.SOAP, OPENAPI),
        (RANDOM, ServiceKind.SOAP, b'<!DOCTYPE x [<!ENTITY e "e">]><definitions xmlns="http://schemas.xmlsoap.org/wsdl/"/>'),
        (PETS, ServiceKind.REST, b""),
        (ServiceId(PROVIDER, "pets", "v1"), ServiceKind.REST, None),  # REST services have no version
    ],
)
def test_unusable_descriptions_are_refused_and_change_nothing(
    store: ServerConfStore, backend: Backend, service: ServiceId, kind: ServiceKind, description: bytes | None
) -> None:
    """A description that is not a WSDL (SOAP) or OpenAPI 3 JSON (REST), or a versioned REST service, is refused."""
    before = backend.dump()
    with pytest.raises(ServerConfError):
        store.add_service(service, url="http://127.0.0.1/x", kind=kind, description=description)
    assert backend.dump() == before


def test_endpoint_rights_decide_rest_calls_in_the_snapshot(store: ServerConfStore) -> None:
    """check_access with a method and normal path honours endpoint rights; without them it ignores them."""
    store.add_service(PETS, url="http://127.0.0.1/api", kind=ServiceKind.REST, description=OPENAPI)
    store.grant(AccessRight(CONSUMER, PETS, Endpoint("GET", "/pets/*")))
    snapshot = store.snapshot()
    snapshot.check_access(CONSUMER, PETS, in_global_group=_nobody, method="GET", path="/pets/7")
    for method, path in (("POST", "/pets/7"), ("GET", "/pets"), (None, None)):
        with pytest.raises(AccessDenied):
            snapshot.check_access(CONSUMER, PETS, in_global_group=_nobody, method=method, path=path)
    assert [str(r.endpoint) for r in snapshot.client_rights(CONSUMER, PETS, in_global_group=_nobody)] == ["GET /pets/*"]


def test_a_database_from_before_descriptions_is_migrated(tmp_path: Path) -> None:
    """A database written before migration 2 opens, gains the columns, and its services read back without descriptions."""
    path = tmp_path / "old.db"
    with contextlib.closing(write_serverconf(path, upto=1)) as conn:
        conn.execute("INSERT INTO server VALUES (1, ?, 'ss1', x'00')", (str(OWNER),))
        conn.execute("INSERT INTO client VALUES (?, 'registered', 0)", (str(PROVIDER),))
        conn.execute(
            "INSERT INTO service VALUES (?, 'getRandom', 'v1', 'soap', 'http://127.0.0.1/r', 60, 1, '')", (str(PROVIDER),)
        )
    with ServerConfStore(path) as opened:
        (service,) = opened.snapshot().services
    assert service.id == RANDOM and service.description is None and service.endpoints == ()
