"""``PUT /clients/{id}/unregister``: the API checks the client, then sends clientDeletion through the server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from twisted.internet import defer

from security_server.core.identifiers import ClientId
from security_server.management.roles import Role
from security_server.serverconf.store import ClientState
from tests.security_server.management.conftest import OWNER_CLASS, OWNER_CODE, SERVER_CODE
from tests.security_server.management.harness import Api
from tests.security_server.management.xroad_openapi import error_object

SUB = {"member_class": "GOV", "member_code": "70000310", "subsystem_code": "registry"}
CLIENT = ClientId("EE", "GOV", "70000310", "registry")
PATH = "/api/v1/clients/EE:GOV:70000310:registry/unregister"


def _api(tmp_path: Path, anchor_bytes: bytes, sent: list[ClientId]) -> Api:
    """An initialised server with a saved client; clientDeletion is recorded and moves the client on."""
    holder: dict[str, Api] = {}

    def unregister(client: ClientId) -> defer.Deferred[Any]:
        sent.append(client)
        with holder["api"].server_dir.open_store() as store:
            store.set_client_state(client, ClientState.DELETION_IN_PROGRESS)
        return defer.succeed({"status": "submitted"})

    api = Api(tmp_path / "server", unregister_client=unregister)
    holder["api"] = api
    key = api.api_key(Role.SYSTEM_ADMINISTRATOR)
    api.request("POST", "/api/v1/system/anchor", body=anchor_bytes, content_type="application/octet-stream", key=key)
    api.request("POST", "/api/v1/initialization", key=key, json_body={
        "owner_member_class": OWNER_CLASS, "owner_member_code": OWNER_CODE, "security_server_code": SERVER_CODE})
    api.request("POST", "/api/v1/clients", key=api.api_key(Role.REGISTRATION_OFFICER), json_body={"client": SUB})
    return api


def test_a_registered_client_is_unregistered_then_deleted(tmp_path: Path, anchor_bytes: bytes) -> None:
    """204; clientDeletion sent once, the client DELETION_IN_PROGRESS, and then it can be deleted."""
    sent: list[ClientId] = []
    api = _api(tmp_path, anchor_bytes, sent)
    with api.server_dir.open_store() as store:
        store.set_client_state(CLIENT, ClientState.REGISTERED)
    key = api.api_key(Role.REGISTRATION_OFFICER)
    assert api.request("PUT", PATH, key=key).status == 204
    assert sent == [CLIENT]
    assert api.request("GET", "/api/v1/clients/EE:GOV:70000310:registry", key=key).json()["status"] == "DELETION_IN_PROGRESS"
    assert api.request("DELETE", "/api/v1/clients/EE:GOV:70000310:registry", key=key).status == 204


def test_refusals_send_nothing(tmp_path: Path, anchor_bytes: bytes) -> None:
    """A saved client or the owner member is 400, an unknown client 404, another role 403: nothing is sent."""
    sent: list[ClientId] = []
    api = _api(tmp_path, anchor_bytes, sent)
    key = api.api_key(Role.REGISTRATION_OFFICER)
    assert api.request("PUT", PATH, key=key).status == 400
    assert api.request("PUT", "/api/v1/clients/EE:GOV:70000310/unregister", key=key).status == 400
    unknown = api.request("PUT", "/api/v1/clients/EE:GOV:70000310:nothing/unregister", key=key)
    assert unknown.status == 404 and error_object(unknown.body)["error"]["code"] == "client_not_found"
    with api.server_dir.open_store() as store:
        store.set_client_state(CLIENT, ClientState.REGISTERED)
    assert api.request("PUT", PATH, key=api.api_key(Role.SERVICE_ADMINISTRATOR)).status == 403
    assert sent == []


def test_without_the_server_unregistration_is_not_found(initialised: Api) -> None:
    """The API served without the server answers 404 registration_unavailable."""
    answer = initialised.request("PUT", PATH, key=initialised.api_key(Role.REGISTRATION_OFFICER))
    assert answer.status == 404 and error_object(answer.body)["error"]["code"] == "registration_unavailable"
