"""``/clients`` through the API: list, search, show, add, with X-Road's id format and error objects."""

from __future__ import annotations

from pathlib import Path

from security_server.management.roles import Role
from tests.security_server.management.globalconf_fixture import global_conf
from tests.security_server.management.harness import Api
from tests.security_server.management.xroad_openapi import error_object

OWNER = "EE:GOV:70000310"
SUB = {"member_class": "GOV", "member_code": "70000310", "subsystem_code": "registry"}


def test_the_owner_is_listed_after_initialization(initialised: Api) -> None:
    """GET /clients lists the owner member, saved, with owner true."""
    answer = initialised.request("GET", "/api/v1/clients", key=initialised.api_key(Role.SECURITYSERVER_OBSERVER))
    assert answer.status == 200
    [owner] = answer.json()
    assert (owner["id"], owner["owner"], owner["status"], owner["instance_id"]) == (OWNER, True, "SAVED", "EE")


def test_a_registration_officer_adds_a_subsystem(initialised: Api) -> None:
    """POST /clients adds a subsystem of the server's instance in state SAVED and answers the Client, 201."""
    key = initialised.api_key(Role.REGISTRATION_OFFICER)
    answer = initialised.request("POST", "/api/v1/clients", key=key, json_body={"client": SUB, "ignore_warnings": False})
    assert answer.status == 201
    assert answer.json()["id"] == "EE:GOV:70000310:registry" and answer.json()["status"] == "SAVED"
    shown = initialised.request("GET", "/api/v1/clients/EE:GOV:70000310:registry", key=key)
    assert shown.status == 200 and shown.json()["subsystem_code"] == "registry"


def test_an_encoded_client_id_is_the_same_client(initialised: Api) -> None:
    """The id may be percent-encoded in the path (EE%3AGOV%3A70000310)."""
    key = initialised.api_key(Role.REGISTRATION_OFFICER)
    assert initialised.request("GET", "/api/v1/clients/EE%3AGOV%3A70000310", key=key).json()["id"] == OWNER


def test_search_filters_by_each_part(initialised: Api) -> None:
    """Search parameters match exactly; show_members=false leaves the owner member out."""
    key = initialised.api_key(Role.REGISTRATION_OFFICER)
    initialised.request("POST", "/api/v1/clients", key=key, json_body={"client": SUB})

    def ids(**query: str) -> list[str]:
        return [c["id"] for c in initialised.request("GET", "/api/v1/clients", key=key, query=query).json()]

    assert ids(subsystem_code="registry") == ["EE:GOV:70000310:registry"]
    assert ids(show_members="false") == ["EE:GOV:70000310:registry"]
    assert ids(member_class="COM") == []
    assert len(ids(instance="EE", member_code="70000310")) == 2


def test_adding_a_hosted_client_again_conflicts(initialised: Api) -> None:
    """A second POST of the same subsystem is 409 client_already_exists."""
    key = initialised.api_key(Role.REGISTRATION_OFFICER)
    initialised.request("POST", "/api/v1/clients", key=key, json_body={"client": SUB})
    again = initialised.request("POST", "/api/v1/clients", key=key, json_body={"client": SUB})
    assert again.status == 409 and error_object(again.body)["error"]["code"] == "client_already_exists"


def test_an_unknown_client_is_not_found(initialised: Api) -> None:
    """GET /clients/{id} of a client not hosted here is 404 client_not_found."""
    answer = initialised.request("GET", "/api/v1/clients/EE:GOV:1:nope", key=initialised.api_key(Role.SECURITYSERVER_OBSERVER))
    assert answer.status == 404 and error_object(answer.body)["error"]["code"] == "client_not_found"


def test_a_malformed_client_id_is_a_bad_request(initialised: Api) -> None:
    """An id with two or five parts is 400 invalid_client_id."""
    key = initialised.api_key(Role.SECURITYSERVER_OBSERVER)
    for bad in ("EE:GOV", "EE:GOV:1:a:b"):
        answer = initialised.request("GET", f"/api/v1/clients/{bad}", key=key)
        assert answer.status == 400 and error_object(answer.body)["error"]["code"] == "invalid_client_id"


def test_unknown_fields_and_bad_json_are_refused(initialised: Api) -> None:
    """A field X-Road's ClientAdd does not have, or a body that is not JSON, is 400 and adds nothing."""
    key = initialised.api_key(Role.REGISTRATION_OFFICER)
    unknown = initialised.request("POST", "/api/v1/clients", key=key, json_body={"client": SUB, "force": True})
    assert unknown.status == 400 and error_object(unknown.body)["error"] == {"code": "unknown_field", "metadata": ["force"]}
    nested = initialised.request("POST", "/api/v1/clients", key=key, json_body={"client": {**SUB, "colour": "red"}})
    assert nested.status == 400 and error_object(nested.body)["error"]["metadata"] == ["client.colour"]
    broken = initialised.request("POST", "/api/v1/clients", key=key, body=b"{", content_type="application/json")
    assert broken.status == 400 and error_object(broken.body)["error"]["code"] == "invalid_json"
    assert len(initialised.server_dir.snapshot().clients) == 1


def test_a_member_is_not_added_as_a_client(initialised: Api) -> None:
    """fedbus hosts subsystems only (the owner member is added by initialisation): a member is 400."""
    key = initialised.api_key(Role.REGISTRATION_OFFICER)
    answer = initialised.request("POST", "/api/v1/clients", key=key,
                                 json_body={"client": {"member_class": "GOV", "member_code": "123"}})
    assert answer.status == 400


def test_the_cli_and_the_api_see_the_same_clients(initialised: Api) -> None:
    """A client added through the API is in the service layer's list that the CLI prints."""
    from security_server.admin import clients

    key = initialised.api_key(Role.REGISTRATION_OFFICER)
    initialised.request("POST", "/api/v1/clients", key=key, json_body={"client": SUB})
    assert [str(c.id) for c in clients.list_clients(initialised.server_dir)] == [
        "MEMBER:EE/GOV/70000310", "SUBSYSTEM:EE/GOV/70000310/registry"]


def test_member_names_come_from_the_global_configuration(tmp_path: Path, anchor_bytes: bytes) -> None:
    """With the server's global configuration, clients carry member_name and /member-names finds a member."""
    api = Api(tmp_path / "server", global_conf=global_conf)
    key = api.api_key(Role.SYSTEM_ADMINISTRATOR)
    api.request("POST", "/api/v1/system/anchor", body=anchor_bytes, content_type="application/octet-stream", key=key)
    api.request("POST", "/api/v1/initialization", key=key, json_body={
        "owner_member_class": "GOV", "owner_member_code": "70000310", "security_server_code": "ss1"})
    [owner] = api.request("GET", "/api/v1/clients", key=key).json()
    assert owner["member_name"] == "Ministry"
    found = api.request("GET", "/api/v1/member-names", key=key, query={"member_class": "GOV", "member_code": "70000310"})
    assert found.json() == {"member_name": "Ministry"}
    missing = api.request("GET", "/api/v1/member-names", key=key, query={"member_class": "GOV", "member_code": "1"})
    assert missing.status == 404 and error_object(missing.body)["error"]["code"] == "member_not_found"
