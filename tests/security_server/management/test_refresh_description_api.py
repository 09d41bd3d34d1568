"""A description keeps the URL it was read from; ``PUT /service-descriptions/{id}/refresh`` reads it again."""

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
OPENAPI_URL = "http://provider.example/openapi.json"
WSDL = (Path(__file__).resolve().parents[1] / "getrandom.wsdl").read_bytes()
# The same WSDL with getRandom renamed getNumber: one operation gone, one new.
RENAMED = WSDL.replace(b'operation name="getRandom"', b'operation name="getNumber"')


def _openapi(*paths: str) -> bytes:
    return json.dumps({"openapi": "3.0.0", "info": {"title": "Pets", "version": "1"},
                       "servers": [{"url": "http://127.0.0.1:9/pets"}],
                       "paths": {p: {"get": {"responses": {"200": {"description": "ok"}}}} for p in paths}}).encode()


@pytest.fixture
def provider(initialised: Api) -> Api:
    """A hosted client with a WSDL description and an OpenAPI one, both added by URL, and a right to getRandom."""
    initialised.request("POST", "/api/v1/clients", key=initialised.api_key(Role.REGISTRATION_OFFICER), json_body={
        "client": {"member_class": "GOV", "member_code": "70000310", "subsystem_code": "registry"}})
    initialised.documents[WSDL_URL] = WSDL
    initialised.documents[OPENAPI_URL] = _openapi("/pets")
    key = initialised.api_key(Role.SERVICE_ADMINISTRATOR)
    for body in ({"url": WSDL_URL, "type": "WSDL"}, {"url": OPENAPI_URL, "type": "OPENAPI3", "rest_service_code": "pets"}):
        assert initialised.request("POST", f"/api/v1/clients/{PROVIDER}/service-descriptions", key=key,
                                   json_body=body).status == 201
    access_rights.grant(initialised.server_dir, AccessRight(CONSUMER, ServiceId(CLIENT, "getRandom")))
    return initialised


def test_a_description_shows_the_url_it_was_read_from(provider: Api) -> None:
    """``url`` is the WSDL's own URL (not the service's soap:address) and ``refreshed_at`` when it was read."""
    shown = provider.request("GET", f"/api/v1/service-descriptions/{PROVIDER}:getRandom.v1",
                             key=provider.api_key(Role.SECURITYSERVER_OBSERVER)).json()
    assert shown["url"] == WSDL_URL and shown["refreshed_at"] == "2026-12-07T12:00:00.000Z"
    assert shown["services"][0]["url"] == "http://127.0.0.1:8080/"


def test_an_unchanged_wsdl_refreshes_without_warnings(provider: Api) -> None:
    """200 with the description; its services, their URLs and rights are as before, the time is the new one."""
    provider.clock.advance(60)
    answer = provider.request("PUT", f"/api/v1/service-descriptions/{PROVIDER}:getRandom.v1/refresh",
                              key=provider.api_key(Role.SERVICE_ADMINISTRATOR), json_body={"ignore_warnings": False})
    assert answer.status == 200, answer.body
    assert answer.json()["refreshed_at"] == "2026-12-07T12:01:00.000Z"
    assert [s["id"] for s in answer.json()["services"]] == [f"{PROVIDER}:getRandom.v1"]
    assert len(provider.server_dir.snapshot().rights) == 1


def test_services_added_and_removed_are_warnings_until_ignored(provider: Api) -> None:
    """A WSDL that lost getRandom and gained getNumber: 400 with adding_services and deleting_services; with
    ignore_warnings the services follow it and the right to the removed code goes with it."""
    provider.documents[WSDL_URL] = RENAMED
    key = provider.api_key(Role.SERVICE_ADMINISTRATOR)
    path = f"/api/v1/service-descriptions/{PROVIDER}:getRandom.v1/refresh"
    warned = provider.request("PUT", path, key=key, json_body={})
    assert warned.status == 400 and warned.json()["warnings"] == [
        {"code": "adding_services", "metadata": [f"{PROVIDER}:getNumber.v1"]},
        {"code": "deleting_services", "metadata": [f"{PROVIDER}:getRandom.v1"]}]
    assert provider.server_dir.snapshot().service(ServiceId(CLIENT, "getRandom", "v1")) is not None
    done = provider.request("PUT", path, key=key, json_body={"ignore_warnings": True})
    assert done.status == 200, done.body
    assert [s["id"] for s in done.json()["services"]] == [f"{PROVIDER}:getNumber.v1"]
    snapshot = provider.server_dir.snapshot()
    assert snapshot.service(ServiceId(CLIENT, "getRandom", "v1")) is None and not snapshot.rights


def test_an_openapi_refresh_brings_the_new_endpoints(provider: Api) -> None:
    """The REST service's endpoints follow the new OpenAPI document."""
    provider.documents[OPENAPI_URL] = _openapi("/pets", "/owners")
    answer = provider.request("PUT", f"/api/v1/service-descriptions/{PROVIDER}:pets/refresh",
                              key=provider.api_key(Role.SERVICE_ADMINISTRATOR))
    assert answer.status == 200, answer.body
    service = provider.server_dir.snapshot().service(ServiceId(CLIENT, "pets"))
    assert service is not None and {str(e) for e in service.endpoints} >= {"GET /pets", "GET /owners"}


def test_an_unreachable_url_or_an_observer_changes_nothing(provider: Api) -> None:
    """The URL no longer answering is 400 wsdl_download_failed; an observer is 403; unknown is 404."""
    del provider.documents[WSDL_URL]
    path = f"/api/v1/service-descriptions/{PROVIDER}:getRandom.v1/refresh"
    gone = provider.request("PUT", path, key=provider.api_key(Role.SERVICE_ADMINISTRATOR))
    assert gone.status == 400 and error_object(gone.body)["error"]["code"] == "wsdl_download_failed"
    assert provider.request("PUT", path, key=provider.api_key(Role.SECURITYSERVER_OBSERVER)).status == 403
    unknown = provider.request("PUT", f"/api/v1/service-descriptions/{PROVIDER}:nothing.v1/refresh",
                               key=provider.api_key(Role.SERVICE_ADMINISTRATOR))
    assert unknown.status == 404
