"""Deleting clients, service descriptions and local groups, and changing a service (``PATCH /services/{id}``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from security_server.admin import access_rights, local_groups, services
from security_server.core.acl import AccessRight
from security_server.core.identifiers import ClientId, LocalGroupId, ServiceId
from security_server.management.roles import Role
from security_server.serverconf.store import ClientState, ServiceKind
from tests.security_server.management.harness import Api
from tests.security_server.management.xroad_openapi import error_object

PROVIDER = "EE:GOV:70000310:registry"
CLIENT = ClientId("EE", "GOV", "70000310", "registry")
CONSUMER = ClientId("EE", "GOV", "70000311", "portal")
GROUP = LocalGroupId("partners")
WSDL = Path(__file__).resolve().parents[1] / "getrandom.wsdl"


@pytest.fixture
def provider(initialised: Api) -> Api:
    """A saved client with two SOAP services from one WSDL, a REST service, a local group and rights to each."""
    key = initialised.api_key(Role.REGISTRATION_OFFICER)
    initialised.request("POST", "/api/v1/clients", key=key, json_body={
        "client": {"member_class": "GOV", "member_code": "70000310", "subsystem_code": "registry"}})
    wsdl = WSDL.read_bytes()
    for code in ("getRandom", "helloService"):
        services.add_service(initialised.server_dir, ServiceId(CLIENT, code, "v1"), url="http://127.0.0.1:9/soap",
                             description=wsdl)
    services.add_service(initialised.server_dir, ServiceId(CLIENT, "pets"), url="http://127.0.0.1:9/pets",
                         kind=ServiceKind.REST)
    local_groups.create_group(initialised.server_dir, CLIENT, GROUP, "Partners")
    local_groups.add_members(initialised.server_dir, CLIENT, GROUP, [CONSUMER])
    for code in ("getRandom", "pets"):
        access_rights.grant(initialised.server_dir, AccessRight(CONSUMER, ServiceId(CLIENT, code)))
    access_rights.grant(initialised.server_dir, AccessRight(GROUP, ServiceId(CLIENT, "pets")))
    return initialised


def _code(answer: object) -> str:
    code: str = error_object(answer.body)["error"]["code"]  # type: ignore[attr-defined]
    return code


# --- DELETE /clients/{id} -------------------------------------------------------------------------------------------


def test_a_saved_client_is_deleted_with_its_services_groups_and_rights(provider: Api) -> None:
    """204; the client, its services, its local group and every right to its services are gone."""
    answer = provider.request("DELETE", f"/api/v1/clients/{PROVIDER}", key=provider.api_key(Role.REGISTRATION_OFFICER))
    assert answer.status == 204, answer.body
    snapshot = provider.server_dir.snapshot()
    assert snapshot.client(CLIENT) is None and not snapshot.services_of(CLIENT)
    assert not snapshot.groups and not snapshot.rights
    gone = provider.request("GET", f"/api/v1/clients/{PROVIDER}", key=provider.api_key(Role.SECURITYSERVER_OBSERVER))
    assert gone.status == 404


def test_a_registered_client_and_the_owner_are_not_deleted(provider: Api) -> None:
    """400 action_not_possible (X-Road's file documents no 409 here) for a registered client and for the owner."""
    with provider.server_dir.open_store() as store:
        store.set_client_state(CLIENT, ClientState.REGISTERED)
    key = provider.api_key(Role.REGISTRATION_OFFICER)
    answer = provider.request("DELETE", f"/api/v1/clients/{PROVIDER}", key=key)
    assert answer.status == 400 and _code(answer) == "action_not_possible"
    owner = provider.request("DELETE", "/api/v1/clients/EE:GOV:70000310", key=key)
    assert owner.status == 400 and _code(owner) == "action_not_possible"
    assert provider.server_dir.snapshot().client(CLIENT) is not None


def test_deleting_an_unknown_client_is_404_and_an_observer_is_refused(provider: Api) -> None:
    """404 client_not_found for a client not hosted here; 403 for the service administrator's role."""
    unknown = provider.request("DELETE", "/api/v1/clients/EE:GOV:70000310:nothing",
                               key=provider.api_key(Role.REGISTRATION_OFFICER))
    assert unknown.status == 404 and _code(unknown) == "client_not_found"
    refused = provider.request("DELETE", f"/api/v1/clients/{PROVIDER}", key=provider.api_key(Role.SERVICE_ADMINISTRATOR))
    assert refused.status == 403 and provider.server_dir.snapshot().client(CLIENT) is not None


# --- DELETE /service-descriptions/{id} ------------------------------------------------------------------------------


def test_a_description_is_deleted_with_its_services_and_their_rights(provider: Api) -> None:
    """204; both services of the WSDL and the right to getRandom are gone, the REST service and its rights stay."""
    answer = provider.request("DELETE", f"/api/v1/service-descriptions/{PROVIDER}:getRandom.v1",
                              key=provider.api_key(Role.SERVICE_ADMINISTRATOR))
    assert answer.status == 204, answer.body
    snapshot = provider.server_dir.snapshot()
    assert [s.id.service_code for s in snapshot.services_of(CLIENT)] == ["pets"]
    assert {r.service_code for r in snapshot.rights} == {"pets"}


def test_deleting_an_unknown_description_is_404(provider: Api) -> None:
    """404 service_description_not_found; an observer gets 403 and nothing changes."""
    path = f"/api/v1/service-descriptions/{PROVIDER}:nothing.v1"
    unknown = provider.request("DELETE", path, key=provider.api_key(Role.SERVICE_ADMINISTRATOR))
    assert unknown.status == 404 and _code(unknown) == "service_description_not_found"
    refused = provider.request("DELETE", f"/api/v1/service-descriptions/{PROVIDER}:pets",
                               key=provider.api_key(Role.SECURITYSERVER_OBSERVER))
    assert refused.status == 403 and len(provider.server_dir.snapshot().services_of(CLIENT)) == 3


# --- DELETE /local-groups/{group_id} --------------------------------------------------------------------------------


def test_a_local_group_is_deleted_with_its_members_and_rights(provider: Api) -> None:
    """204; the group and the right granted to it are gone, the consumer's own right stays."""
    path = f"/api/v1/local-groups/{PROVIDER}:partners"
    answer = provider.request("DELETE", path, key=provider.api_key(Role.SERVICE_ADMINISTRATOR))
    assert answer.status == 204, answer.body
    snapshot = provider.server_dir.snapshot()
    assert not snapshot.groups and all(r.subject == CONSUMER for r in snapshot.rights) and len(snapshot.rights) == 2
    again = provider.request("DELETE", path, key=provider.api_key(Role.SERVICE_ADMINISTRATOR))
    assert again.status == 404 and _code(again) == "local_group_not_found"


# --- PATCH /services/{id} -------------------------------------------------------------------------------------------


def test_a_service_gets_a_new_url_and_timeout(provider: Api) -> None:
    """200 with X-Road's Service; only that service changes without the ``*_all`` flags."""
    key = provider.api_key(Role.SERVICE_ADMINISTRATOR)
    answer = provider.request("PATCH", f"/api/v1/services/{PROVIDER}:getRandom.v1", key=key, json_body={
        "url": "https://127.0.0.1:8443/soap", "timeout": 90, "ssl_auth": True})
    assert answer.status == 200, answer.body
    assert answer.json()["url"] == "https://127.0.0.1:8443/soap" and answer.json()["timeout"] == 90
    other = provider.server_dir.snapshot().service(ServiceId(CLIENT, "helloService", "v1"))
    assert other is not None and other.url == "http://127.0.0.1:9/soap" and other.timeout_seconds != 90


def test_the_all_flags_apply_to_every_service_of_the_description(provider: Api) -> None:
    """``url_all`` and ``timeout_all`` change the WSDL's other service too, and not the REST service."""
    key = provider.api_key(Role.SERVICE_ADMINISTRATOR)
    answer = provider.request("PATCH", f"/api/v1/services/{PROVIDER}:getRandom.v1", key=key, json_body={
        "url": "http://127.0.0.1:10/soap", "timeout": 7, "ssl_auth": False, "url_all": True, "timeout_all": True})
    assert answer.status == 200, answer.body
    snapshot = provider.server_dir.snapshot()
    assert {(s.url, s.timeout_seconds) for s in snapshot.services if s.kind is ServiceKind.SOAP} == {
        ("http://127.0.0.1:10/soap", 7)}
    rest = snapshot.service(ServiceId(CLIENT, "pets"))
    assert rest is not None and rest.url == "http://127.0.0.1:9/pets"


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"url": "http://127.0.0.1:10/", "timeout": 1001, "ssl_auth": False}, "invalid_field"),
        ({"url": "http://127.0.0.1:10/", "timeout": 5}, "missing_field"),
        ({"url": "http://127.0.0.1:10/", "timeout": 5, "ssl_auth": False, "colour": "red"}, "unknown_field"),
        ({"url": "ftp://127.0.0.1/", "timeout": 5, "ssl_auth": False}, "invalid_request"),
    ],
)
def test_an_invalid_service_update_is_400(provider: Api, body: dict[str, object], code: str) -> None:
    """A timeout over X-Road's 1000, a missing ssl_auth, an unknown field, a URL that is not http(s): 400."""
    answer = provider.request("PATCH", f"/api/v1/services/{PROVIDER}:getRandom.v1",
                              key=provider.api_key(Role.SERVICE_ADMINISTRATOR), json_body=body)
    assert answer.status == 400 and _code(answer) == code, answer.body


def test_updating_an_unknown_service_is_404_and_an_observer_is_refused(provider: Api) -> None:
    """404 service_not_found; 403 for an observer."""
    body = {"url": "http://127.0.0.1:10/", "timeout": 5, "ssl_auth": False}
    unknown = provider.request("PATCH", f"/api/v1/services/{PROVIDER}:nothing.v1",
                               key=provider.api_key(Role.SERVICE_ADMINISTRATOR), json_body=body)
    assert unknown.status == 404 and _code(unknown) == "service_not_found"
    refused = provider.request("PATCH", f"/api/v1/services/{PROVIDER}:getRandom.v1",
                               key=provider.api_key(Role.SECURITYSERVER_OBSERVER), json_body=body)
    assert refused.status == 403
