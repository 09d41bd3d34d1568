"""``/clients/{id}/service-descriptions`` and ``/service-descriptions/{id}``: X-Road's view of the services."""

from __future__ import annotations

from pathlib import Path

import pytest

from security_server.admin import services
from security_server.core.identifiers import ClientId, ServiceId
from security_server.management.roles import Role
from security_server.serverconf.store import ServiceKind
from tests.security_server.management.harness import Api
from tests.security_server.management.xroad_openapi import error_object

PROVIDER = "EE:GOV:70000310:registry"
WSDL = Path(__file__).resolve().parents[1] / "getrandom.wsdl"


@pytest.fixture
def provider(initialised: Api) -> Api:
    """A client with two SOAP services from one WSDL and a REST service without a description."""
    key = initialised.api_key(Role.REGISTRATION_OFFICER)
    initialised.request("POST", "/api/v1/clients", key=key, json_body={
        "client": {"member_class": "GOV", "member_code": "70000310", "subsystem_code": "registry"}})
    client = ClientId("EE", "GOV", "70000310", "registry")
    wsdl = WSDL.read_bytes()
    for code in ("getRandom", "helloService"):
        services.add_service(initialised.server_dir, ServiceId(client, code, "v1"), url="http://127.0.0.1:9/soap",
                             description=wsdl)
    services.add_service(initialised.server_dir, ServiceId(client, "pets"), url="http://127.0.0.1:9/pets",
                         kind=ServiceKind.REST)
    return initialised


def test_services_are_grouped_by_the_description_they_came_from(provider: Api) -> None:
    """The two services of one WSDL form one WSDL description; the REST service is a REST description."""
    key = provider.api_key(Role.SECURITYSERVER_OBSERVER)
    answer = provider.request("GET", f"/api/v1/clients/{PROVIDER}/service-descriptions", key=key)
    assert answer.status == 200
    found = [(d["id"], d["type"], [s["service_code"] for s in d["services"]]) for d in answer.json()]
    assert found == [(f"{PROVIDER}:getRandom.v1", "WSDL", ["getRandom", "helloService"]),
                     (f"{PROVIDER}:pets", "REST", ["pets"])]
    one = provider.request("GET", f"/api/v1/service-descriptions/{PROVIDER}:getRandom.v1", key=key)
    assert one.status == 200 and one.json()["client_id"] == PROVIDER and not one.json()["disabled"]
    listed = provider.request("GET", f"/api/v1/service-descriptions/{PROVIDER}:getRandom.v1/services", key=key)
    assert [s["id"] for s in listed.json()] == [f"{PROVIDER}:getRandom.v1", f"{PROVIDER}:helloService.v1"]


def test_disabling_a_description_disables_its_services_with_the_notice(provider: Api) -> None:
    """PUT disable turns every service of the description off with the notice; enable turns them on again."""
    key = provider.api_key(Role.SERVICE_ADMINISTRATOR)
    path = f"/api/v1/service-descriptions/{PROVIDER}:getRandom.v1"
    off = provider.request("PUT", f"{path}/disable", key=key, json_body={"disabled_notice": "Maintenance until noon"})
    assert off.status == 204
    shown = provider.request("GET", path, key=key).json()
    assert shown["disabled"] and shown["disabled_notice"] == "Maintenance until noon"
    assert all(not s.enabled for s in provider.server_dir.snapshot().services if s.kind is ServiceKind.SOAP)
    assert provider.request("PUT", f"{path}/enable", key=key).status == 204
    assert all(s.enabled for s in provider.server_dir.snapshot().services)


def test_an_unknown_description_is_not_found(provider: Api) -> None:
    """A description id naming no service is 404 service_description_not_found."""
    answer = provider.request("GET", f"/api/v1/service-descriptions/{PROVIDER}:nothing.v9",
                              key=provider.api_key(Role.SECURITYSERVER_OBSERVER))
    assert answer.status == 404 and error_object(answer.body)["error"]["code"] == "service_description_not_found"


def test_an_observer_cannot_disable(provider: Api) -> None:
    """Disabling is the service administrator's: 403 for an observer, and nothing changes."""
    answer = provider.request("PUT", f"/api/v1/service-descriptions/{PROVIDER}:pets/disable",
                              key=provider.api_key(Role.SECURITYSERVER_OBSERVER), json_body={})
    assert answer.status == 403 and all(s.enabled for s in provider.server_dir.snapshot().services)
