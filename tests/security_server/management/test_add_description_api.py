"""``POST /clients/{id}/service-descriptions``: a WSDL, an OpenAPI 3 document or a REST URL becomes services."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from security_server.management.roles import Role
from tests.security_server.management.harness import Api
from tests.security_server.management.xroad_openapi import error_object

PROVIDER = "EE:GOV:70000310:registry"
WSDL = (Path(__file__).resolve().parents[1] / "getrandom.wsdl").read_bytes()
OPENAPI = json.dumps({
    "openapi": "3.0.0", "info": {"title": "Pets", "version": "1"},
    "servers": [{"url": "http://127.0.0.1:9/pets/v1"}],
    "paths": {"/pets": {"get": {"responses": {"200": {"description": "ok"}}}},
              "/pets/{id}": {"get": {"responses": {"200": {"description": "ok"}}},
                             "delete": {"responses": {"204": {"description": "gone"}}}}},
}).encode()


@pytest.fixture
def provider(initialised: Api) -> Api:
    """An initialised server hosting EE/GOV/70000310/registry, with documents served at two URLs."""
    key = initialised.api_key(Role.REGISTRATION_OFFICER)
    initialised.request("POST", "/api/v1/clients", key=key, json_body={
        "client": {"member_class": "GOV", "member_code": "70000310", "subsystem_code": "registry"}})
    initialised.documents["http://provider.example/getrandom.wsdl"] = WSDL
    initialised.documents["http://provider.example/openapi.json"] = OPENAPI
    return initialised


def test_a_wsdl_by_url_becomes_its_services(provider: Api) -> None:
    """A WSDL's binding operations become SOAP services (code, xrd:version) at its soap:address."""
    key = provider.api_key(Role.SERVICE_ADMINISTRATOR)
    answer = provider.request("POST", f"/api/v1/clients/{PROVIDER}/service-descriptions", key=key,
                              json_body={"url": "http://provider.example/getrandom.wsdl", "type": "WSDL"})
    assert answer.status == 201, answer.body
    assert answer.json()["type"] == "WSDL"
    assert [s["id"] for s in answer.json()["services"]] == [f"{PROVIDER}:getRandom.v1"]
    [service] = provider.server_dir.snapshot().services
    assert (service.url, service.description) == ("http://127.0.0.1:8080/", WSDL)
    again = provider.request("POST", f"/api/v1/clients/{PROVIDER}/service-descriptions", key=key,
                             json_body={"url": "http://provider.example/getrandom.wsdl", "type": "WSDL"})
    assert again.status == 409 and error_object(again.body)["error"]["code"] == "service_already_exists"


def test_an_openapi_document_becomes_a_rest_service_with_endpoints(provider: Api) -> None:
    """An OpenAPI 3 document becomes one REST service at its first server URL, its operations the endpoints."""
    key = provider.api_key(Role.SERVICE_ADMINISTRATOR)
    answer = provider.request("POST", f"/api/v1/clients/{PROVIDER}/service-descriptions", key=key, json_body={
        "url": "http://provider.example/openapi.json", "type": "OPENAPI3", "rest_service_code": "pets"})
    assert answer.status == 201 and answer.json()["type"] == "OPENAPI3"
    [service] = provider.server_dir.snapshot().services
    assert service.url == "http://127.0.0.1:9/pets/v1"
    assert [str(e) for e in service.endpoints] == ["GET /pets", "GET /pets/*", "DELETE /pets/*"]


def test_a_plain_rest_url_is_a_rest_service(provider: Api) -> None:
    """type REST takes the URL as the service's base URL; nothing is fetched."""
    key = provider.api_key(Role.SERVICE_ADMINISTRATOR)
    answer = provider.request("POST", f"/api/v1/clients/{PROVIDER}/service-descriptions", key=key, json_body={
        "url": "http://127.0.0.1:9/orders", "type": "REST", "rest_service_code": "orders"})
    assert answer.status == 201 and answer.json()["services"][0]["url"] == "http://127.0.0.1:9/orders"


def test_unreachable_or_invalid_descriptions_add_nothing(provider: Api) -> None:
    """An unreachable URL, a document that is not a WSDL, or a REST description without a code is 400."""
    key = provider.api_key(Role.SERVICE_ADMINISTRATOR)
    provider.documents["http://provider.example/bad.wsdl"] = b"<html/>"
    cases = [
        ({"url": "http://provider.example/missing.wsdl", "type": "WSDL"}, "wsdl_download_failed"),
        ({"url": "http://provider.example/bad.wsdl", "type": "WSDL"}, "invalid_request"),
        ({"url": "http://127.0.0.1:9/orders", "type": "REST"}, "missing_field"),
        ({"url": "ftp://provider.example/x", "type": "REST", "rest_service_code": "x"}, "invalid_url"),
        ({"url": "http://provider.example/openapi.json", "type": "SOAP"}, "invalid_field"),
    ]
    for body, code in cases:
        answer = provider.request("POST", f"/api/v1/clients/{PROVIDER}/service-descriptions", key=key, json_body=body)
        assert answer.status == 400 and error_object(answer.body)["error"]["code"] == code, (body, answer.body)
    assert provider.server_dir.snapshot().services == ()


def test_adding_is_the_service_administrators(provider: Api) -> None:
    """A registration officer may not add a description (403) and nothing is fetched or stored."""
    key = provider.api_key(Role.REGISTRATION_OFFICER)
    answer = provider.request("POST", f"/api/v1/clients/{PROVIDER}/service-descriptions", key=key,
                              json_body={"url": "http://provider.example/getrandom.wsdl", "type": "WSDL"})
    assert answer.status == 403 and provider.server_dir.snapshot().services == ()
