"""``POST /services/{id}/endpoints``, ``PATCH`` and ``DELETE /endpoints/{id}``: endpoints added by hand."""

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
CLIENT = ClientId("EE", "GOV", "70000310", "registry")
CONSUMER = "EE:COM:12345:app"
OPENAPI = json.dumps({
    "openapi": "3.0.0", "info": {"title": "Pets", "version": "1"},
    "paths": {"/pets/{id}": {"get": {"responses": {"200": {"description": "ok"}}}}},
}).encode()
ADDED = f"/api/v1/endpoints/{PROVIDER}:pets:POST%2Fpets"


@pytest.fixture
def provider(initialised: Api) -> Api:
    """A client with REST service pets (OpenAPI: GET /pets/*) and SOAP service getRandom."""
    key = initialised.api_key(Role.REGISTRATION_OFFICER)
    initialised.request("POST", "/api/v1/clients", key=key, json_body={
        "client": {"member_class": "GOV", "member_code": "70000310", "subsystem_code": "registry"}})
    services.add_service(initialised.server_dir, ServiceId(CLIENT, "pets"), url="http://127.0.0.1:9/pets",
                         kind=ServiceKind.REST, description=OPENAPI)
    services.add_service(initialised.server_dir, ServiceId(CLIENT, "getRandom", "v1"), url="http://127.0.0.1:9/soap")
    return initialised


def _add(api: Api, key: str, method: str = "POST", path: str = "/pets", **extra: object) -> object:
    return api.request("POST", f"/api/v1/services/{PROVIDER}:pets/endpoints", key=key,
                       json_body={"service_code": "pets", "method": method, "path": path, **extra})


def test_an_added_endpoint_is_listed_not_generated(provider: Api) -> None:
    """An endpoint added by hand answers 201, is listed in the service after the description's, and is not
    generated."""
    key = provider.api_key(Role.SERVICE_ADMINISTRATOR)
    added = provider.request("POST", f"/api/v1/services/{PROVIDER}:pets/endpoints", key=key,
                             json_body={"service_code": "pets", "method": "POST", "path": "/pets"})
    assert added.status == 201
    assert added.json() == {"id": f"{PROVIDER}:pets:POST/pets", "service_code": "pets", "method": "POST",
                            "path": "/pets", "generated": False}
    listed = provider.request("GET", f"/api/v1/services/{PROVIDER}:pets", key=key).json()["endpoints"]
    assert [(e["method"], e["path"], e["generated"]) for e in listed] == [
        ("*", "**", True), ("GET", "/pets/*", True), ("POST", "/pets", False)]
    assert provider.request("GET", ADDED, key=key).json()["generated"] is False


def test_adding_an_existing_endpoint_is_a_conflict(provider: Api) -> None:
    """Adding a generated or an added endpoint again is 409 endpoint_already_exists; nothing changes."""
    key = provider.api_key(Role.SERVICE_ADMINISTRATOR)
    for method, path in (("GET", "/pets/*"), ("*", "**")):
        again = provider.request("POST", f"/api/v1/services/{PROVIDER}:pets/endpoints", key=key,
                                 json_body={"service_code": "pets", "method": method, "path": path})
        assert again.status == 409 and error_object(again.body)["error"]["code"] == "endpoint_already_exists"
    assert provider.request("POST", f"/api/v1/services/{PROVIDER}:pets/endpoints", key=key,
                            json_body={"service_code": "pets", "method": "POST", "path": "/pets"}).status == 201
    twice = provider.request("POST", f"/api/v1/services/{PROVIDER}:pets/endpoints", key=key,
                             json_body={"service_code": "pets", "method": "POST", "path": "/pets"})
    assert twice.status == 409


def test_adding_is_refused_for_bad_bodies_and_other_services(provider: Api) -> None:
    """An id in the body, an unknown method, a bad path or a wrong code are 400; a WSDL's service is 400
    wrong_servicedescription_type; an unknown service 404; another role 403."""
    key = provider.api_key(Role.SERVICE_ADMINISTRATOR)
    path = f"/api/v1/services/{PROVIDER}:pets/endpoints"
    bodies = [
        ({"id": "1", "service_code": "pets", "method": "GET", "path": "/a"}, "endpoint_id_should_not_be_provided"),
        ({"service_code": "pets", "method": "FETCH", "path": "/a"}, "invalid_field"),
        ({"service_code": "pets", "method": "GET", "path": "/a/../b"}, "invalid_field"),
        ({"service_code": "cats", "method": "GET", "path": "/a"}, "invalid_field"),
        ({"service_code": "pets", "method": "GET", "path": "/a", "color": "red"}, "unknown_field"),
    ]
    for body, code in bodies:
        answer = provider.request("POST", path, key=key, json_body=body)
        assert answer.status == 400 and error_object(answer.body)["error"]["code"] == code, body
    assert provider.request("POST", path, key=key, body=b"{", content_type="application/json").status == 400
    soap = provider.request("POST", f"/api/v1/services/{PROVIDER}:getRandom.v1/endpoints", key=key,
                            json_body={"service_code": "getRandom", "method": "GET", "path": "/a"})
    assert soap.status == 400 and error_object(soap.body)["error"]["code"] == "wrong_servicedescription_type"
    missing = provider.request("POST", f"/api/v1/services/{PROVIDER}:cats/endpoints", key=key,
                               json_body={"service_code": "cats", "method": "GET", "path": "/a"})
    assert missing.status == 404
    observer = provider.api_key(Role.SECURITYSERVER_OBSERVER)
    assert provider.request("POST", path, key=observer,
                            json_body={"service_code": "pets", "method": "GET", "path": "/a"}).status == 403
    assert provider.server_dir.snapshot().service(ServiceId(CLIENT, "pets")).added_endpoints == ()  # type: ignore[union-attr]


def test_an_added_endpoint_is_changed_with_its_rights(provider: Api) -> None:
    """PATCH changes an added endpoint's method and path, and the rights limited to it move with it."""
    key = provider.api_key(Role.SERVICE_ADMINISTRATOR)
    _add(provider, key)
    assert provider.request("POST", f"{ADDED}/service-clients", key=key,
                            json_body={"items": [{"id": CONSUMER}]}).status == 201
    changed = provider.request("PATCH", ADDED, key=key, json_body={"method": "PUT", "path": "/pets/*"})
    assert changed.status == 200 and changed.json()["id"] == f"{PROVIDER}:pets:PUT/pets/*"
    moved = f"/api/v1/endpoints/{PROVIDER}:pets:PUT%2Fpets%2F*"
    assert [c["id"] for c in provider.request("GET", f"{moved}/service-clients", key=key).json()] == [CONSUMER]
    assert provider.request("GET", ADDED, key=key).status == 404


def test_changing_is_refused_for_generated_taken_and_unknown_endpoints(provider: Api) -> None:
    """A generated endpoint is 400 illegal_generated_endpoint_update, one that exists already 409, an unknown one
    404, a body without path 400."""
    key = provider.api_key(Role.SERVICE_ADMINISTRATOR)
    _add(provider, key)
    generated = provider.request("PATCH", f"/api/v1/endpoints/{PROVIDER}:pets:GET%2Fpets%2F*", key=key,
                                 json_body={"method": "GET", "path": "/dogs"})
    assert generated.status == 400
    assert error_object(generated.body)["error"]["code"] == "illegal_generated_endpoint_update"
    whole = provider.request("PATCH", f"/api/v1/endpoints/{PROVIDER}:pets:***", key=key,
                             json_body={"method": "GET", "path": "/dogs"})
    assert whole.status == 400
    taken = provider.request("PATCH", ADDED, key=key, json_body={"method": "GET", "path": "/pets/*"})
    assert taken.status == 409 and error_object(taken.body)["error"]["code"] == "endpoint_already_exists"
    unknown = provider.request("PATCH", f"/api/v1/endpoints/{PROVIDER}:pets:PUT%2Fnone", key=key,
                               json_body={"method": "GET", "path": "/x"})
    assert unknown.status == 404 and error_object(unknown.body)["error"]["code"] == "endpoint_not_found"
    assert provider.request("PATCH", ADDED, key=key, json_body={"method": "GET"}).status == 400


def test_deleting_an_added_endpoint_takes_its_rights(provider: Api) -> None:
    """DELETE removes an added endpoint and the rights limited to it; a generated one is 400
    illegal_generated_endpoint_remove; a second delete 404; the observer 403."""
    key = provider.api_key(Role.SERVICE_ADMINISTRATOR)
    _add(provider, key)
    provider.request("POST", f"{ADDED}/service-clients", key=key, json_body={"items": [{"id": CONSUMER}]})
    assert provider.request("DELETE", ADDED, key=provider.api_key(Role.SECURITYSERVER_OBSERVER)).status == 403
    assert provider.request("DELETE", ADDED, key=key).status == 204
    assert provider.server_dir.snapshot().rights == ()
    assert provider.request("DELETE", ADDED, key=key).status == 404
    generated = provider.request("DELETE", f"/api/v1/endpoints/{PROVIDER}:pets:GET%2Fpets%2F*", key=key)
    assert generated.status == 400
    assert error_object(generated.body)["error"]["code"] == "illegal_generated_endpoint_remove"


def test_added_endpoints_go_with_their_service(provider: Api) -> None:
    """Deleting the service's description removes the endpoints added to it: a new service of that code has
    none."""
    key = provider.api_key(Role.SERVICE_ADMINISTRATOR)
    _add(provider, key)
    assert provider.request("DELETE", f"/api/v1/service-descriptions/{PROVIDER}:pets", key=key).status == 204
    services.add_service(provider.server_dir, ServiceId(CLIENT, "pets"), url="http://127.0.0.1:9/pets",
                         kind=ServiceKind.REST)
    assert provider.server_dir.snapshot().service(ServiceId(CLIENT, "pets")).endpoints == ()  # type: ignore[union-attr]
