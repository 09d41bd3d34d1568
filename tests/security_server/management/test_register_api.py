"""``PUT /clients/{id}/register``: the API checks the client, then sends clientReg through the server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from twisted.internet import defer

from security_server.core.identifiers import ClientId
from security_server.management.roles import Role
from security_server.serverconf.store import ClientState
from tests.security_server.management.harness import Api
from tests.security_server.management.xroad_openapi import error_object

SUB = {"member_class": "GOV", "member_code": "70000310", "subsystem_code": "registry"}


def _api(tmp_path: Path, anchor_bytes: bytes, sent: list[ClientId]) -> Api:
    """An initialised server whose clientReg is recorded and moves the client on, as the registry's answer does."""
    holder: dict[str, Api] = {}

    def register(client: ClientId) -> defer.Deferred[Any]:
        sent.append(client)
        with holder["api"].server_dir.open_store() as store:
            store.set_client_state(client, ClientState.REGISTRATION_IN_PROGRESS)
        return defer.succeed({"status": "SUBMITTED"})

    api = Api(tmp_path / "server", register_client=register)
    holder["api"] = api
    key = api.api_key(Role.SYSTEM_ADMINISTRATOR)
    api.request("POST", "/api/v1/system/anchor", body=anchor_bytes, content_type="application/octet-stream", key=key)
    api.request("POST", "/api/v1/initialization", key=key, json_body={
        "owner_member_class": "GOV", "owner_member_code": "70000310", "security_server_code": "ss1"})
    api.request("POST", "/api/v1/clients", key=api.api_key(Role.REGISTRATION_OFFICER), json_body={"client": SUB})
    return api


def test_a_saved_subsystem_is_registered(tmp_path: Path, anchor_bytes: bytes) -> None:
    """A registration officer's PUT sends clientReg once and answers 204; the client shows REGISTRATION_IN_PROGRESS."""
    sent: list[ClientId] = []
    api = _api(tmp_path, anchor_bytes, sent)
    key = api.api_key(Role.REGISTRATION_OFFICER)
    answer = api.request("PUT", "/api/v1/clients/EE:GOV:70000310:registry/register", key=key)
    assert answer.status == 204 and sent == [ClientId("EE", "GOV", "70000310", "registry")]
    shown = api.request("GET", "/api/v1/clients/EE:GOV:70000310:registry", key=key).json()
    assert shown["status"] == "REGISTRATION_IN_PROGRESS"


def test_refusals_send_nothing(tmp_path: Path, anchor_bytes: bytes) -> None:
    """An unknown client (404), the owner member or a client not saved (400), a wrong role (403) send nothing."""
    sent: list[ClientId] = []
    api = _api(tmp_path, anchor_bytes, sent)
    officer = api.api_key(Role.REGISTRATION_OFFICER)
    assert api.request("PUT", "/api/v1/clients/EE:GOV:1:nope/register", key=officer).status == 404
    owner = api.request("PUT", "/api/v1/clients/EE:GOV:70000310/register", key=officer)
    assert owner.status == 400 and error_object(owner.body)["error"]["code"] == "invalid_request"
    observer = api.api_key(Role.SECURITYSERVER_OBSERVER)
    assert api.request("PUT", "/api/v1/clients/EE:GOV:70000310:registry/register", key=observer).status == 403
    assert sent == []
    api.request("PUT", "/api/v1/clients/EE:GOV:70000310:registry/register", key=officer)
    again = api.request("PUT", "/api/v1/clients/EE:GOV:70000310:registry/register", key=officer)
    assert again.status == 400 and len(sent) == 1


def test_without_the_server_registration_is_not_found(initialised: Api) -> None:
    """The API served without the running server cannot reach the registry: 404 registration_unavailable."""
    answer = initialised.request("PUT", "/api/v1/clients/EE:GOV:70000310/register",
                                 key=initialised.api_key(Role.REGISTRATION_OFFICER))
    assert answer.status == 404 and error_object(answer.body)["error"]["code"] == "registration_unavailable"
