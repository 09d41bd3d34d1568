"""``PATCH /service-descriptions/{id}``: a description's URL and a REST service's code (updateServiceDescription)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from security_server.admin import access_rights
from security_server.core.acl import AccessRight
from security_server.core.identifiers import ClientId, ServiceId
from security_server.management.roles import Role
from tests.security_server.management.harness import Api
from tests.security_server.management.xroad_openapi import error_object

PROVIDER = "EE:GOV:70000310:registry"
CLIENT = ClientId("EE", "GOV", "70000310", "registry")
CONSUMER = ClientId("EE", "GOV", "70000311", "portal")
WSDL_URL = "http://provider.example/getrandom.wsdl"
NEW_WSDL_URL = "http://provider.example/v2/getrandom.wsdl"
OPENAPI_URL = "http://provider.example/openapi.json"
NEW_OPENAPI_URL = "http://provider.example/v2/openapi.json"
REST_URL = "http://provider.example/cats"
WSDL = (Path(__file__).resolve().parents[1] / "getrandom.wsdl").read_bytes()
RENAMED = WSDL.replace(b'operation name="getRandom"', b'operation name="getNumber"')
SD = "/api/v1/service-descriptions"


def _openapi(*paths: str) -> bytes:
    return json.dumps({"openapi": "3.0.0", "info": {"title": "Pets", "version": "1"},
                       "servers": [{"url": "http://127.0.0.1:9/pets"}],
                       "paths": {p: {"get": {"responses": {"200": {"description": "ok"}}}} for p in paths}}).encode()


@pytest.fixture
def provider(initialised: Api) -> Api:
    """A client with a WSDL, an OpenAPI (pets) and a plain REST (cats) description, rights to getRandom and pets."""
    initialised.request("POST", "/api/v1/clients", key=initialised.api_key(Role.REGISTRATION_OFFICER), json_body={
        "client": {"member_class": "GOV", "member_code": "70000310", "subsystem_code": "registry"}})
    initialised.documents.update({WSDL_URL: WSDL, OPENAPI_URL: _openapi("/pets"), NEW_WSDL_URL: RENAMED,
                                  NEW_OPENAPI_URL: _openapi("/pets", "/owners")})
    key = initialised.api_key(Role.SERVICE_ADMINISTRATOR)
    for body in ({"url": WSDL_URL, "type": "WSDL"}, {"url": OPENAPI_URL, "type": "OPENAPI3", "rest_service_code": "pets"},
                 {"url": REST_URL, "type": "REST", "rest_service_code": "cats"}):
        assert initialised.request("POST", f"/api/v1/clients/{PROVIDER}/service-descriptions", key=key,
                                   json_body=body).status == 201
    for code in ("getRandom", "pets"):
        access_rights.grant(initialised.server_dir, AccessRight(CONSUMER, ServiceId(CLIENT, code)))
    return initialised


def test_a_rest_description_gets_a_new_url_and_code(provider: Api) -> None:
    """A REST description's service moves to the new URL and, with new_rest_service_code, takes the new code."""
    answer = provider.request("PATCH", f"{SD}/{PROVIDER}:cats", key=provider.api_key(Role.SERVICE_ADMINISTRATOR),
                              json_body={"type": "REST", "url": "http://provider.example/tigers",
                                         "rest_service_code": "cats", "new_rest_service_code": "tigers"})
    assert answer.status == 200
    shown = answer.json()
    assert (shown["id"], shown["url"]) == (f"{PROVIDER}:tigers", "http://provider.example/tigers")
    assert [s["service_code"] for s in shown["services"]] == ["tigers"]
    assert provider.server_dir.snapshot().service(ServiceId(CLIENT, "cats")) is None


def test_an_openapi_description_is_read_from_its_new_url(provider: Api) -> None:
    """The OpenAPI description read from the new URL: its endpoints follow it; a new code takes the rights with
    it."""
    key = provider.api_key(Role.SERVICE_ADMINISTRATOR)
    answer = provider.request("PATCH", f"{SD}/{PROVIDER}:pets", key=key, json_body={
        "type": "OPENAPI3", "url": NEW_OPENAPI_URL, "rest_service_code": "pets", "new_rest_service_code": "animals"})
    assert answer.status == 200 and answer.json()["url"] == NEW_OPENAPI_URL
    service = provider.server_dir.snapshot().service(ServiceId(CLIENT, "animals"))
    assert service is not None and [str(e) for e in service.endpoints] == ["GET /pets", "GET /owners"]
    rights = provider.server_dir.snapshot().rights
    assert {r.service_code for r in rights} == {"getRandom", "animals"}


def test_a_wsdl_at_a_new_url_warns_then_replaces_its_services(provider: Api) -> None:
    """A WSDL at a new URL that changes the services is X-Road's warnings first (nothing changed), then with
    ignore_warnings its services follow the new document."""
    key = provider.api_key(Role.SERVICE_ADMINISTRATOR)
    body = {"type": "WSDL", "url": NEW_WSDL_URL}
    warned = provider.request("PATCH", f"{SD}/{PROVIDER}:getRandom.v1", key=key, json_body=body)
    assert warned.status == 400
    assert [w["code"] for w in warned.json()["warnings"]] == ["adding_services", "deleting_services"]
    assert provider.server_dir.snapshot().service(ServiceId(CLIENT, "getRandom", "v1")) is not None
    done = provider.request("PATCH", f"{SD}/{PROVIDER}:getRandom.v1", key=key, json_body=body | {"ignore_warnings": True})
    assert done.status == 200 and done.json()["url"] == NEW_WSDL_URL
    assert [s["service_code"] for s in done.json()["services"]] == ["getNumber"]


def test_an_update_of_another_type_or_code_is_refused(provider: Api) -> None:
    """A type other than the description's is 400 wrong_servicedescription_type, a missing rest_service_code 400,
    a rest_service_code the description does not have 404, nothing changes."""
    key = provider.api_key(Role.SERVICE_ADMINISTRATOR)
    wrong = provider.request("PATCH", f"{SD}/{PROVIDER}:cats", key=key,
                             json_body={"type": "WSDL", "url": "http://provider.example/x"})
    assert wrong.status == 400 and error_object(wrong.body)["error"]["code"] == "wrong_servicedescription_type"
    missing = provider.request("PATCH", f"{SD}/{PROVIDER}:cats", key=key,
                               json_body={"type": "REST", "url": "http://provider.example/x"})
    assert missing.status == 400
    other = provider.request("PATCH", f"{SD}/{PROVIDER}:cats", key=key,
                             json_body={"type": "REST", "url": "http://provider.example/x", "rest_service_code": "dogs"})
    assert other.status == 404
    assert provider.server_dir.snapshot().service(ServiceId(CLIENT, "cats")).url == REST_URL  # type: ignore[union-attr]


def test_duplicates_are_conflicts(provider: Api) -> None:
    """Another description's URL is 409 url_already_exists (wsdl_exists for a WSDL), a code the client has 409
    service_code_already_exists."""
    key = provider.api_key(Role.SERVICE_ADMINISTRATOR)
    url = provider.request("PATCH", f"{SD}/{PROVIDER}:cats", key=key,
                           json_body={"type": "REST", "url": OPENAPI_URL, "rest_service_code": "cats"})
    assert url.status == 409 and error_object(url.body)["error"]["code"] == "url_already_exists"
    wsdl = provider.request("PATCH", f"{SD}/{PROVIDER}:getRandom.v1", key=key,
                            json_body={"type": "WSDL", "url": REST_URL})
    assert wsdl.status == 409 and error_object(wsdl.body)["error"]["code"] == "wsdl_exists"
    code = provider.request("PATCH", f"{SD}/{PROVIDER}:cats", key=key, json_body={
        "type": "REST", "url": REST_URL, "rest_service_code": "cats", "new_rest_service_code": "pets"})
    assert code.status == 409 and error_object(code.body)["error"]["code"] == "service_code_already_exists"


def test_bad_requests_roles_unknown_and_unreachable(provider: Api) -> None:
    """Bad JSON, an unknown field, a bad type or URL are 400; the observer 403; an unknown description 404; an
    unreachable new URL 400 openapi_download_failed, nothing changed."""
    key = provider.api_key(Role.SERVICE_ADMINISTRATOR)
    path = f"{SD}/{PROVIDER}:cats"
    assert provider.request("PATCH", path, key=key, body=b"{", content_type="application/json").status == 400
    for body in ({"type": "REST", "url": REST_URL, "rest_service_code": "cats", "x": 1},
                 {"type": "SOAP", "url": REST_URL}, {"type": "REST", "url": "ftp://x", "rest_service_code": "cats"},
                 {"type": "REST", "rest_service_code": "cats"}):
        assert provider.request("PATCH", path, key=key, json_body=body).status == 400, body
    assert provider.request("PATCH", path, key=provider.api_key(Role.SECURITYSERVER_OBSERVER), json_body={
        "type": "REST", "url": REST_URL, "rest_service_code": "cats"}).status == 403
    assert provider.request("PATCH", f"{SD}/{PROVIDER}:dogs", key=key, json_body={
        "type": "REST", "url": REST_URL, "rest_service_code": "dogs"}).status == 404
    gone = provider.request("PATCH", f"{SD}/{PROVIDER}:pets", key=key, json_body={
        "type": "OPENAPI3", "url": "http://provider.example/none.json", "rest_service_code": "pets"})
    assert gone.status == 400 and error_object(gone.body)["error"]["code"] == "openapi_download_failed"
    assert provider.request("GET", f"{SD}/{PROVIDER}:pets", key=key).json()["url"] == OPENAPI_URL
