"""``/endpoints/{id}``: a REST service's endpoints and endpoint-level access rights."""

from __future__ import annotations

import json

import pytest

from security_server.admin import services
from security_server.core.identifiers import ClientId, ServiceId
from security_server.management.roles import Role
from security_server.serverconf.store import ServiceKind
from tests.security_server.management.harness import Api
from tests.security_server.management.xroad_openapi import error_object

PROVIDER = "EE:GOV:70000310:registry"
CONSUMER = "EE:COM:12345:app"
OPENAPI = json.dumps({
    "openapi": "3.0.0", "info": {"title": "Pets", "version": "1"},
    "paths": {"/pets/{id}": {"get": {"responses": {"200": {"description": "ok"}}}}},
}).encode()


@pytest.fixture
def provider(initialised: Api) -> Api:
    """A client with REST service pets described by OpenAPI (endpoint GET /pets/*)."""
    key = initialised.api_key(Role.REGISTRATION_OFFICER)
    initialised.request("POST", "/api/v1/clients", key=key, json_body={
        "client": {"member_class": "GOV", "member_code": "70000310", "subsystem_code": "registry"}})
    client = ClientId("EE", "GOV", "70000310", "registry")
    services.add_service(initialised.server_dir, ServiceId(client, "pets"), url="http://127.0.0.1:9/pets",
                         kind=ServiceKind.REST, description=OPENAPI)
    return initialised


def test_a_rest_service_lists_its_endpoints(provider: Api) -> None:
    """GET /services/{id} of a REST service lists the whole-service endpoint and its description's."""
    answer = provider.request("GET", f"/api/v1/services/{PROVIDER}:pets", key=provider.api_key(Role.SECURITYSERVER_OBSERVER))
    assert [(e["method"], e["path"], e["id"]) for e in answer.json()["endpoints"]] == [
        ("*", "**", f"{PROVIDER}:pets:***"), ("GET", "/pets/*", f"{PROVIDER}:pets:GET/pets/*")]


def test_endpoint_rights_are_granted_listed_and_revoked(provider: Api) -> None:
    """A right limited to GET /pets/* lets the consumer call that endpoint only, and is revoked again."""
    key = provider.api_key(Role.SERVICE_ADMINISTRATOR)
    path = f"/api/v1/endpoints/{PROVIDER}:pets:GET%2Fpets%2F*"
    shown = provider.request("GET", path, key=key)
    assert shown.status == 200 and shown.json()["method"] == "GET"
    added = provider.request("POST", f"{path}/service-clients", key=key, json_body={"items": [{"id": CONSUMER}]})
    assert added.status == 201 and [c["id"] for c in added.json()] == [CONSUMER]
    snapshot = provider.server_dir.snapshot()
    pets = ServiceId(ClientId("EE", "GOV", "70000310", "registry"), "pets")
    consumer = ClientId("EE", "COM", "12345", "app")
    snapshot.check_access(consumer, pets, in_global_group=lambda *_: False, method="GET", path="/pets/7")
    assert not snapshot.is_allowed(consumer, pets, in_global_group=lambda *_: False)
    assert [c["id"] for c in provider.request("GET", f"{path}/service-clients", key=key).json()] == [CONSUMER]
    twice = provider.request("POST", f"{path}/service-clients", key=key, json_body={"items": [{"id": CONSUMER}]})
    assert twice.status == 409
    removed = provider.request("POST", f"{path}/service-clients/delete", key=key, json_body={"items": [{"id": CONSUMER}]})
    assert removed.status == 204 and provider.server_dir.snapshot().rights == ()


def test_unknown_endpoints_are_not_found(provider: Api) -> None:
    """An endpoint the description does not declare is 404 endpoint_not_found; a malformed id is 400."""
    key = provider.api_key(Role.SECURITYSERVER_OBSERVER)
    missing = provider.request("GET", f"/api/v1/endpoints/{PROVIDER}:pets:DELETE%2Fpets", key=key)
    assert missing.status == 404 and error_object(missing.body)["error"]["code"] == "endpoint_not_found"
    assert provider.request("GET", "/api/v1/endpoints/nonsense", key=key).status == 400
