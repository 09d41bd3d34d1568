"""Services, access rights (client and service level) and local groups through the API."""

from __future__ import annotations

import pytest

from security_server.admin import services
from security_server.core.identifiers import ClientId, ServiceId
from security_server.management.roles import Role
from tests.security_server.management.harness import Api
from tests.security_server.management.xroad_openapi import error_object

PROVIDER = "EE:GOV:70000310:registry"
CONSUMER = "EE:COM:12345:app"
SERVICE = f"{PROVIDER}:getRandom.v1"


@pytest.fixture
def provider(initialised: Api) -> Api:
    """An initialised server hosting EE/GOV/70000310/registry with SOAP service getRandom v1 (added as the CLI does)."""
    key = initialised.api_key(Role.REGISTRATION_OFFICER)
    initialised.request("POST", "/api/v1/clients", key=key, json_body={
        "client": {"member_class": "GOV", "member_code": "70000310", "subsystem_code": "registry"}})
    client = ClientId("EE", "GOV", "70000310", "registry")
    services.add_service(initialised.server_dir, ServiceId(client, "getRandom", "v1"), url="http://127.0.0.1:9/random")
    return initialised


def test_a_service_is_shown_in_xroad_form(provider: Api) -> None:
    """GET /services/{id} answers X-Road's Service with full and plain service code."""
    answer = provider.request("GET", f"/api/v1/services/{SERVICE}", key=provider.api_key(Role.SECURITYSERVER_OBSERVER))
    assert answer.status == 200
    assert answer.json() == {"id": SERVICE, "full_service_code": "getRandom.v1", "service_code": "getRandom",
                             "timeout": 60, "url": "http://127.0.0.1:9/random", "ssl_auth": False,
                             "subjects_count": 0}


def test_an_unknown_service_is_not_found(provider: Api) -> None:
    """A service code the client does not have is 404 service_not_found."""
    answer = provider.request("GET", f"/api/v1/services/{PROVIDER}:nothing.v1", key=provider.api_key(Role.SECURITYSERVER_OBSERVER))
    assert answer.status == 404 and error_object(answer.body)["error"]["code"] == "service_not_found"


def test_client_level_rights_are_granted_listed_and_revoked(provider: Api) -> None:
    """A service administrator grants a service code to a subsystem, sees it at both levels, and revokes it."""
    key = provider.api_key(Role.SERVICE_ADMINISTRATOR)
    rights = f"/api/v1/clients/{PROVIDER}/service-clients/{CONSUMER}/access-rights"
    added = provider.request("POST", rights, key=key, json_body={"items": [{"service_code": "getRandom"}]})
    assert added.status == 201 and [r["service_code"] for r in added.json()] == ["getRandom"]
    assert [r["service_code"] for r in provider.request("GET", rights, key=key).json()] == ["getRandom"]
    clients = provider.request("GET", f"/api/v1/clients/{PROVIDER}/service-clients", key=key).json()
    assert clients == [{"id": CONSUMER, "service_client_type": "SUBSYSTEM", "rights_given_at": "1970-01-01T00:00:00.000Z"}]
    assert provider.request("GET", f"/api/v1/services/{SERVICE}", key=key).json()["subjects_count"] == 1
    snapshot = provider.server_dir.snapshot()
    assert snapshot.is_allowed(ClientId.parse_display("SUBSYSTEM:EE/COM/12345/app"),
                               ServiceId(ClientId("EE", "GOV", "70000310", "registry"), "getRandom", "v1"),
                               in_global_group=lambda *_: False)
    again = provider.request("POST", rights, key=key, json_body={"items": [{"service_code": "getRandom"}]})
    assert again.status == 409 and error_object(again.body)["error"]["code"] == "duplicate_accessright"
    deleted = provider.request("POST", f"{rights}/delete", key=key, json_body={"items": [{"service_code": "getRandom"}]})
    assert deleted.status == 204
    assert provider.request("GET", rights, key=key).json() == []
    gone = provider.request("POST", f"{rights}/delete", key=key, json_body={"items": [{"service_code": "getRandom"}]})
    assert gone.status == 404


def test_a_right_to_an_unknown_service_code_is_not_found(provider: Api) -> None:
    """Granting a code the provider does not publish is 404 and grants nothing."""
    key = provider.api_key(Role.SERVICE_ADMINISTRATOR)
    answer = provider.request("POST", f"/api/v1/clients/{PROVIDER}/service-clients/{CONSUMER}/access-rights", key=key,
                              json_body={"items": [{"service_code": "getRandom"}, {"service_code": "nothing"}]})
    assert answer.status == 404 and error_object(answer.body)["error"]["code"] == "service_not_found"
    assert provider.server_dir.snapshot().rights == ()


def test_service_level_service_clients_take_global_groups(provider: Api) -> None:
    """POST /services/{id}/service-clients grants the service to a global group and a subsystem."""
    key = provider.api_key(Role.SERVICE_ADMINISTRATOR)
    path = f"/api/v1/services/{SERVICE}/service-clients"
    answer = provider.request("POST", path, key=key, json_body={"items": [
        {"id": "EE:security-server-owners", "service_client_type": "GLOBALGROUP"}, {"id": CONSUMER}]})
    assert answer.status == 201
    assert [(c["id"], c["service_client_type"]) for c in answer.json()] == [
        ("EE:security-server-owners", "GLOBALGROUP"), (CONSUMER, "SUBSYSTEM")]
    assert len(provider.request("GET", path, key=key).json()) == 2
    removed = provider.request("POST", f"{path}/delete", key=key, json_body={"items": [{"id": CONSUMER}]})
    assert removed.status == 204
    assert [c["id"] for c in provider.request("GET", path, key=key).json()] == ["EE:security-server-owners"]


def test_an_observer_cannot_grant(provider: Api) -> None:
    """Granting is the service administrator's: an observer or a registration officer is 403."""
    for role in (Role.SECURITYSERVER_OBSERVER, Role.REGISTRATION_OFFICER):
        answer = provider.request("POST", f"/api/v1/services/{SERVICE}/service-clients", key=provider.api_key(role),
                                  json_body={"items": [{"id": CONSUMER}]})
        assert answer.status == 403


def test_local_groups_are_made_filled_and_used_as_service_clients(provider: Api) -> None:
    """A local group is created, gets members, and is granted a service through its id."""
    key = provider.api_key(Role.SERVICE_ADMINISTRATOR)
    made = provider.request("POST", f"/api/v1/clients/{PROVIDER}/local-groups", key=key,
                            json_body={"code": "partners", "description": "Partner systems"})
    assert made.status == 201 and made.json()["id"] == f"{PROVIDER}:partners" and made.json()["member_count"] == 0
    group = f"/api/v1/local-groups/{PROVIDER}:partners"
    members = provider.request("POST", f"{group}/members", key=key, json_body={"items": [CONSUMER, "EE:COM:999"]})
    assert members.status == 201 and members.json() == {"items": [CONSUMER, "EE:COM:999"]}
    shown = provider.request("GET", group, key=key).json()
    assert shown["member_count"] == 2 and {m["id"] for m in shown["members"]} == {CONSUMER, "EE:COM:999"}
    twice = provider.request("POST", f"{group}/members", key=key, json_body={"items": [CONSUMER]})
    assert twice.status == 409
    assert provider.request("POST", f"{group}/members/delete", key=key, json_body={"items": ["EE:COM:999"]}).status == 204
    assert [g["code"] for g in provider.request("GET", f"/api/v1/clients/{PROVIDER}/local-groups", key=key).json()] == ["partners"]
    granted = provider.request("POST", f"/api/v1/services/{SERVICE}/service-clients", key=key,
                               json_body={"items": [{"id": f"{PROVIDER}:partners", "service_client_type": "LOCALGROUP"}]})
    assert granted.status == 201 and granted.json()[0]["local_group_code"] == "partners"
    by_path = provider.request("GET", f"/api/v1/clients/{PROVIDER}/service-clients/{PROVIDER}:partners/access-rights", key=key)
    assert [r["service_code"] for r in by_path.json()] == ["getRandom"]


def test_a_taken_group_code_conflicts_and_an_unknown_group_is_not_found(provider: Api) -> None:
    """Creating a group code twice is 409; a group that does not exist is 404."""
    key = provider.api_key(Role.SERVICE_ADMINISTRATOR)
    body = {"code": "partners", "description": "Partner systems"}
    provider.request("POST", f"/api/v1/clients/{PROVIDER}/local-groups", key=key, json_body=body)
    again = provider.request("POST", f"/api/v1/clients/{PROVIDER}/local-groups", key=key, json_body=body)
    assert again.status == 409 and error_object(again.body)["error"]["code"] == "local_group_code_already_exists"
    missing = provider.request("GET", f"/api/v1/local-groups/{PROVIDER}:nobody", key=key)
    assert missing.status == 404 and error_object(missing.body)["error"]["code"] == "local_group_not_found"
    no_client = provider.request("GET", "/api/v1/clients/EE:GOV:1:none/local-groups", key=key)
    assert no_client.status == 404
