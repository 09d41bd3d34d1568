"""X-Road 7's client operations: disable, enable, rename, the servers hosting a client, and orphans."""

from __future__ import annotations

from pathlib import Path

import pytest

from security_server.core.identifiers import ClientId
from security_server.management.roles import Role
from security_server.serverconf.store import ClientState
from security_server.signer.softtoken import KeyKind
from tests.security_server.management.conftest import OWNER_CLASS, OWNER_CODE, SERVER_CODE
from tests.security_server.management.globalconf_fixture import global_conf
from tests.security_server.management.harness import Api
from tests.security_server.management.xroad_openapi import error_object

CLIENT = ClientId("EE", "GOV", "70000310", "registry")
CLIENT_TEXT = "EE:GOV:70000310:registry"


@pytest.fixture
def server(tmp_path: Path, anchor_bytes: bytes) -> Api:
    """An initialised server with the test global configuration and subsystem registry (SAVED)."""
    api = Api(tmp_path / "server", global_conf=global_conf)
    key = api.api_key(Role.SYSTEM_ADMINISTRATOR)
    api.request("POST", "/api/v1/system/anchor", body=anchor_bytes, content_type="application/octet-stream", key=key)
    assert api.request("POST", "/api/v1/initialization", key=key, json_body={
        "owner_member_class": OWNER_CLASS, "owner_member_code": OWNER_CODE, "security_server_code": SERVER_CODE,
        "software_token_pin": "Secret-1234"}).status == 201
    assert api.request("POST", "/api/v1/clients", key=api.api_key(Role.REGISTRATION_OFFICER), json_body={
        "client": {"member_class": "GOV", "member_code": "70000310", "subsystem_code": "registry"}}).status == 201
    return api


def _registered(api: Api) -> None:
    with api.server_dir.open_store() as store:
        store.set_client_state(CLIENT, ClientState.REGISTERED)


def _status(api: Api, key: str) -> str:
    return str(api.request("GET", f"/api/v1/clients/{CLIENT_TEXT}", key=key).json()["status"])


def test_a_registered_client_is_disabled_and_enabled(server: Api) -> None:
    """disable makes a REGISTERED client DISABLED (no longer registered for the proxies), enable REGISTERED again."""
    _registered(server)
    key = server.api_key(Role.REGISTRATION_OFFICER)
    assert server.request("PUT", f"/api/v1/clients/{CLIENT_TEXT}/disable", key=key).status == 204
    assert _status(server, key) == "DISABLED"
    hosted = server.server_dir.snapshot().client(CLIENT)
    assert hosted is not None and not hosted.registered
    assert server.request("PUT", f"/api/v1/clients/{CLIENT_TEXT}/enable", key=key).status == 204
    assert _status(server, key) == "REGISTERED"


def test_disable_and_enable_refuse_other_states_roles_and_ids(server: Api) -> None:
    """A SAVED client cannot be disabled, a registered one not enabled (400 action_not_possible); another role is
    403, an unknown client 404, a malformed id 400."""
    key = server.api_key(Role.REGISTRATION_OFFICER)
    saved = server.request("PUT", f"/api/v1/clients/{CLIENT_TEXT}/disable", key=key)
    assert saved.status == 400 and error_object(saved.body)["error"]["code"] == "action_not_possible"
    _registered(server)
    enabled = server.request("PUT", f"/api/v1/clients/{CLIENT_TEXT}/enable", key=key)
    assert enabled.status == 400 and error_object(enabled.body)["error"]["code"] == "action_not_possible"
    assert server.request("PUT", f"/api/v1/clients/{CLIENT_TEXT}/disable",
                          key=server.api_key(Role.SERVICE_ADMINISTRATOR)).status == 403
    assert server.request("PUT", "/api/v1/clients/EE:GOV:70000310:nobody/disable", key=key).status == 404
    assert server.request("PUT", "/api/v1/clients/nonsense/disable", key=key).status == 400
    assert _status(server, key) == "REGISTERED"


def test_the_management_service_provider_cannot_be_disabled(server: Api) -> None:
    """The provider of the registry's management services is refused with
    forbidden_disable_management_service_client."""
    key = server.api_key(Role.REGISTRATION_OFFICER)
    server.request("POST", "/api/v1/clients", key=key, json_body={
        "client": {"member_class": "GOV", "member_code": "70000310", "subsystem_code": "management"}})
    management = ClientId("EE", "GOV", "70000310", "management")
    with server.server_dir.open_store() as store:
        store.set_client_state(management, ClientState.REGISTERED)
    answer = server.request("PUT", "/api/v1/clients/EE:GOV:70000310:management/disable", key=key)
    assert answer.status == 400
    assert error_object(answer.body)["error"]["code"] == "forbidden_disable_management_service_client"


def test_a_disabled_client_cannot_be_deleted(server: Api) -> None:
    """A disabled client cannot be deleted (it is registered with the registry): 400 action_not_possible."""
    _registered(server)
    key = server.api_key(Role.REGISTRATION_OFFICER)
    server.request("PUT", f"/api/v1/clients/{CLIENT_TEXT}/disable", key=key)
    deleted = server.request("DELETE", f"/api/v1/clients/{CLIENT_TEXT}", key=key)
    assert deleted.status == 400 and error_object(deleted.body)["error"]["code"] == "action_not_possible"


def test_a_disabled_client_can_be_unregistered(server: Api) -> None:
    """As X-Road 7, a disabled client may be unregistered (clientDeletion) without enabling it first."""
    from security_server.admin import registration

    _registered(server)
    server.request("PUT", f"/api/v1/clients/{CLIENT_TEXT}/disable", key=server.api_key(Role.REGISTRATION_OFFICER))
    registration.check_unregistrable(server.server_dir, CLIENT)
    with server.server_dir.open_store() as store:
        store.set_client_state(CLIENT, ClientState.DELETION_IN_PROGRESS)


def test_a_subsystem_is_renamed_and_shows_its_name(server: Api) -> None:
    """rename keeps the name: the client shows subsystem_name and rename_status NAME_SET; the same name again is
    400 invalid_client_name."""
    key = server.api_key(Role.REGISTRATION_OFFICER)
    path = f"/api/v1/clients/{CLIENT_TEXT}/rename"
    assert server.request("PUT", path, key=key, json_body={"client_name": "Population registry"}).status == 204
    shown = server.request("GET", f"/api/v1/clients/{CLIENT_TEXT}", key=key).json()
    assert (shown["subsystem_name"], shown["rename_status"]) == ("Population registry", "NAME_SET")
    listed = server.request("GET", "/api/v1/clients", key=key, query={"subsystem_code": "registry"}).json()
    assert listed[0]["subsystem_name"] == "Population registry"
    again = server.request("PUT", path, key=key, json_body={"client_name": "Population registry"})
    assert again.status == 400 and error_object(again.body)["error"]["code"] == "invalid_client_name"


def test_rename_refuses_members_bad_names_and_other_states(server: Api) -> None:
    """A member is 400 action_not_possible, a name with ':' or empty 400 invalid_field, an unknown field 400, a
    client in DELETION_IN_PROGRESS 400, another role 403, an unknown client 404."""
    key = server.api_key(Role.REGISTRATION_OFFICER)
    member = server.request("PUT", "/api/v1/clients/EE:GOV:70000310/rename", key=key, json_body={"client_name": "X"})
    assert member.status == 400 and error_object(member.body)["error"]["code"] == "action_not_possible"
    path = f"/api/v1/clients/{CLIENT_TEXT}/rename"
    for body in ({"client_name": "a:b"}, {"client_name": ""}, {"client_name": "ok", "x": 1}, {}):
        assert server.request("PUT", path, key=key, json_body=body).status == 400, body
    assert server.request("PUT", path, key=server.api_key(Role.SERVICE_ADMINISTRATOR),
                          json_body={"client_name": "X"}).status == 403
    assert server.request("PUT", "/api/v1/clients/EE:GOV:70000310:nobody/rename", key=key,
                          json_body={"client_name": "X"}).status == 404
    with server.server_dir.open_store() as store:
        store.set_client_state(CLIENT, ClientState.REGISTRATION_IN_PROGRESS)
    assert server.request("PUT", path, key=key, json_body={"client_name": "X"}).status == 400
    assert "subsystem_name" not in server.request("GET", f"/api/v1/clients/{CLIENT_TEXT}", key=key).json()


def test_a_clients_security_servers_come_from_the_global_configuration(server: Api) -> None:
    """The servers registering the client in the global configuration, any client of the instance; 404 without
    the running server."""
    key = server.api_key(Role.SECURITYSERVER_OBSERVER)
    own = server.request("GET", "/api/v1/clients/EE:GOV:70000310/security-servers", key=key)
    assert own.status == 200 and [s["id"] for s in own.json()] == ["EE:GOV:70000310:ss1"]
    other = server.request("GET", "/api/v1/clients/EE:COM:12345/security-servers", key=key).json()
    assert [s["server_code"] for s in other] == ["ss9"]
    assert server.request("GET", f"/api/v1/clients/{CLIENT_TEXT}/security-servers", key=key).json() == []
    assert server.request("GET", "/api/v1/clients/EE:GOV/security-servers", key=key).status == 400
    assert server.request("GET", "/api/v1/clients/EE:GOV:70000310/security-servers",
                          key=server.api_key(Role.AUDITOR)).status == 403


def test_security_servers_need_the_running_server(initialised: Api) -> None:
    """Without the global configuration the servers of a client answer 404."""
    key = initialised.api_key(Role.SECURITYSERVER_OBSERVER)
    assert initialised.request("GET", "/api/v1/clients/EE:GOV:70000310/security-servers", key=key).status == 404


def test_a_deleted_clients_keys_are_orphans_until_deleted(server: Api) -> None:
    """A sign key of a member whose every client is deleted is an orphan: GET shows it, DELETE removes the key;
    then both answer 404 orphans_not_found."""
    token = server.server_dir.soft_token()
    token.login("Secret-1234")
    key_id = token.generate(KeyKind.SIGN, ClientId("EE", "COM", "12345"))
    from security_server.admin import csrs

    csrs.keep_csr(server.server_dir, key_id, b"-----BEGIN CERTIFICATE REQUEST-----\n-----END CERTIFICATE REQUEST-----\n")
    key = server.api_key(Role.REGISTRATION_OFFICER)
    path = "/api/v1/clients/EE:COM:12345:app/orphans"
    found = server.request("GET", path, key=key)
    assert found.status == 200 and found.json() == {"orphans_exist": True}
    assert server.request("DELETE", path, key=server.api_key(Role.SECURITYSERVER_OBSERVER)).status == 403
    assert server.request("DELETE", path, key=key).status == 204
    assert all(k.key_id != key_id for k in token.list())
    gone = server.request("GET", path, key=key)
    assert gone.status == 404 and error_object(gone.body)["error"]["code"] == "orphans_not_found"
    assert server.request("DELETE", path, key=key).status == 404
    assert server.request("GET", "/api/v1/clients/EE:COM/orphans", key=key).status == 400


def test_a_hosted_members_keys_are_no_orphans(server: Api) -> None:
    """While a client of the member is hosted its keys are not orphans: 404 orphans_not_found."""
    token = server.server_dir.soft_token()
    token.login("Secret-1234")
    token.generate(KeyKind.SIGN, ClientId("EE", "GOV", "70000310"))
    key = server.api_key(Role.REGISTRATION_OFFICER)
    assert server.request("GET", f"/api/v1/clients/{CLIENT_TEXT}/orphans", key=key).status == 404
    assert server.request("DELETE", f"/api/v1/clients/{CLIENT_TEXT}/orphans", key=key).status == 404
