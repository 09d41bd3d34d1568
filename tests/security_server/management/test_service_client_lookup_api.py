"""``GET /clients/{id}/service-clients/{sc_id}``, ``/service-client-candidates`` and ``PATCH /local-groups/{id}``."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from security_server.admin import services
from security_server.core.globalconf import GlobalConf
from security_server.core.globalconf.sharedparams import GlobalGroup
from security_server.core.identifiers import ClientId, GlobalGroupId, ServiceId
from security_server.management.roles import Role
from tests.security_server.management.conftest import OWNER_CLASS, OWNER_CODE, SERVER_CODE
from tests.security_server.management.globalconf_fixture import OTHER, global_conf
from tests.security_server.management.harness import Api
from tests.security_server.management.xroad_openapi import error_object

PROVIDER = "EE:GOV:70000310:registry"
CLIENT = ClientId("EE", "GOV", "70000310", "registry")
GROUP = f"{PROVIDER}:partners"


def _conf() -> GlobalConf:
    conf = global_conf()
    groups = (GlobalGroup(GlobalGroupId("EE", "security-server-owners"), "Security server owners", (OTHER,)),)
    return dataclasses.replace(conf, shared=dataclasses.replace(conf.shared, global_groups=groups))


@pytest.fixture
def server(tmp_path: Path, anchor_bytes: bytes) -> Api:
    """A server with the test configuration (and a global group), client registry with service getRandom and
    local group partners."""
    api = Api(tmp_path / "server", global_conf=_conf)
    key = api.api_key(Role.SYSTEM_ADMINISTRATOR)
    api.request("POST", "/api/v1/system/anchor", body=anchor_bytes, content_type="application/octet-stream", key=key)
    api.request("POST", "/api/v1/initialization", key=key, json_body={
        "owner_member_class": OWNER_CLASS, "owner_member_code": OWNER_CODE, "security_server_code": SERVER_CODE,
        "software_token_pin": "Secret-1234"})
    api.request("POST", "/api/v1/clients", key=api.api_key(Role.REGISTRATION_OFFICER), json_body={
        "client": {"member_class": "GOV", "member_code": "70000310", "subsystem_code": "registry"}})
    services.add_service(api.server_dir, ServiceId(CLIENT, "getRandom", "v1"), url="http://127.0.0.1:9/soap")
    admin = api.api_key(Role.SERVICE_ADMINISTRATOR)
    assert api.request("POST", f"/api/v1/clients/{PROVIDER}/local-groups", key=admin,
                       json_body={"code": "partners", "description": "Partner systems"}).status == 201
    return api


def test_a_service_client_is_shown_with_its_name(server: Api) -> None:
    """A subject holding a right is shown with the member's name or the group's description; one holding none is
    404 service_client_not_found."""
    key = server.api_key(Role.SERVICE_ADMINISTRATOR)
    for subject in ("EE:COM:12345:app", GROUP, "EE:security-server-owners"):
        assert server.request("POST", f"/api/v1/clients/{PROVIDER}/service-clients/{subject}/access-rights",
                              key=key, json_body={"items": [{"service_code": "getRandom"}]}).status == 201
    app = server.request("GET", f"/api/v1/clients/{PROVIDER}/service-clients/EE:COM:12345:app", key=key)
    assert app.status == 200 and app.json()["name"] == "Company" and app.json()["service_client_type"] == "SUBSYSTEM"
    group = server.request("GET", f"/api/v1/clients/{PROVIDER}/service-clients/{GROUP}", key=key).json()
    assert (group["name"], group["local_group_code"]) == ("Partner systems", "partners")
    owners = server.request("GET", f"/api/v1/clients/{PROVIDER}/service-clients/EE:security-server-owners", key=key)
    assert owners.json()["name"] == "Security server owners"
    none = server.request("GET", f"/api/v1/clients/{PROVIDER}/service-clients/EE:COM:12345:other", key=key)
    assert none.status == 404 and error_object(none.body)["error"]["code"] == "service_client_not_found"


def test_service_client_lookup_refuses_roles_and_unknown_clients(server: Api) -> None:
    """The registration officer is 403, an unknown provider 404, a malformed subject 400."""
    key = server.api_key(Role.SECURITYSERVER_OBSERVER)
    path = f"/api/v1/clients/{PROVIDER}/service-clients/EE:COM:12345:app"
    assert server.request("GET", path, key=server.api_key(Role.REGISTRATION_OFFICER)).status == 403
    assert server.request("GET", "/api/v1/clients/EE:GOV:70000310:x/service-clients/EE:COM:12345:app",
                          key=key).status == 404
    assert server.request("GET", f"/api/v1/clients/{PROVIDER}/service-clients/a:b:c:d:e:f", key=key).status == 400


def _candidates(api: Api, **query: str) -> list[str]:
    answer = api.request("GET", f"/api/v1/clients/{PROVIDER}/service-client-candidates",
                         key=api.api_key(Role.SECURITYSERVER_OBSERVER), query=query)
    assert answer.status == 200, answer.body
    return [c["id"] for c in answer.json()]


def test_candidates_are_subsystems_global_and_local_groups(server: Api) -> None:
    """Without filters: every subsystem of the configuration (its members' order), its global groups, the client's
    local groups; no member."""
    assert _candidates(server) == [
        "EE:COM:12345:app", "EE:GOV:70000310:registry", "EE:security-server-owners", GROUP]


def test_candidates_are_filtered_as_x_road_filters_them(server: Api) -> None:
    """Type, name or description part, member class exactly, member or group code part, subsystem code part,
    instance (local groups always pass), all ignoring case."""
    assert _candidates(server, service_client_type="LOCALGROUP") == [GROUP]
    assert _candidates(server, member_name_group_description="comp") == ["EE:COM:12345:app"]
    assert _candidates(server, member_name_group_description="PARTNER") == [GROUP]
    assert _candidates(server, member_class="gov") == ["EE:GOV:70000310:registry"]
    assert _candidates(server, member_group_code="owners") == ["EE:security-server-owners"]
    assert _candidates(server, member_group_code="2345") == ["EE:COM:12345:app"]
    assert _candidates(server, subsystem_code="REG") == ["EE:GOV:70000310:registry"]
    assert _candidates(server, instance="FI") == [GROUP]


def test_candidates_refuse_bad_filters_roles_and_unknown_clients(server: Api) -> None:
    """An unknown type is 400, the registration officer 403, an unknown client 404."""
    path = f"/api/v1/clients/{PROVIDER}/service-client-candidates"
    key = server.api_key(Role.SERVICE_ADMINISTRATOR)
    assert server.request("GET", path, key=key, query={"service_client_type": "MEMBER"}, check=False).status == 400
    assert server.request("GET", path, key=server.api_key(Role.REGISTRATION_OFFICER)).status == 403
    assert server.request("GET", "/api/v1/clients/EE:GOV:70000310:x/service-client-candidates", key=key).status == 404


def test_candidates_without_the_configuration_are_local_groups(initialised: Api) -> None:
    """Without the running server's configuration only the client's local groups are candidates."""
    key = initialised.api_key(Role.REGISTRATION_OFFICER)
    initialised.request("POST", "/api/v1/clients", key=key, json_body={
        "client": {"member_class": "GOV", "member_code": "70000310", "subsystem_code": "registry"}})
    admin = initialised.api_key(Role.SERVICE_ADMINISTRATOR)
    initialised.request("POST", f"/api/v1/clients/{PROVIDER}/local-groups", key=admin,
                        json_body={"code": "partners", "description": "Partner systems"})
    assert _candidates(initialised) == [GROUP]


def test_a_local_groups_description_is_changed(server: Api) -> None:
    """PATCH /local-groups/{id} changes the description and answers the group."""
    key = server.api_key(Role.SERVICE_ADMINISTRATOR)
    answer = server.request("PATCH", f"/api/v1/local-groups/{GROUP}", key=key, json_body={"description": "Friends"})
    assert answer.status == 200 and answer.json()["description"] == "Friends"
    assert server.request("GET", f"/api/v1/local-groups/{GROUP}", key=key).json()["description"] == "Friends"


def test_changing_a_local_group_refuses_bad_bodies_roles_and_unknown_groups(server: Api) -> None:
    """A missing, empty or patterned-out description and an unknown field are 400, the observer 403, an unknown
    group 404; the description stays."""
    key = server.api_key(Role.SERVICE_ADMINISTRATOR)
    path = f"/api/v1/local-groups/{GROUP}"
    for body in ({}, {"description": ""}, {"description": "a\nb"}, {"description": "ok", "code": "x"},
                 {"description": "x" * 256}):
        assert server.request("PATCH", path, key=key, json_body=body, check=False).status == 400, body
    assert server.request("PATCH", path, key=key, body=b"[", content_type="application/json").status == 400
    assert server.request("PATCH", path, key=server.api_key(Role.SECURITYSERVER_OBSERVER),
                          json_body={"description": "x"}).status == 403
    missing = server.request("PATCH", f"/api/v1/local-groups/{PROVIDER}:nobody", key=key, json_body={"description": "x"})
    assert missing.status == 404 and error_object(missing.body)["error"]["code"] == "local_group_not_found"
    assert server.request("GET", path, key=key).json()["description"] == "Partner systems"
