"""``/initialization`` and ``/system/anchor`` through the API, checked against X-Road's OpenAPI file."""

from __future__ import annotations

from security_server.core.globalconf.anchor import anchor_hash
from security_server.management.roles import Role
from tests.security_server.management.harness import Api
from tests.security_server.management.xroad_openapi import error_object

OCTETS = "application/octet-stream"


def test_status_of_an_empty_directory_is_nothing_done(api: Api) -> None:
    """Before anything, the status says no anchor, no server code, no owner, no token."""
    key = api.api_key(Role.SECURITYSERVER_OBSERVER)
    answer = api.request("GET", "/api/v1/initialization/status", key=key)
    assert answer.status == 200
    assert answer.json() == {
        "is_anchor_imported": False, "is_server_code_initialized": False, "is_server_owner_initialized": False,
        "software_token_init_status": "NOT_INITIALIZED", "enforce_token_pin_policy": False,
    }


def test_anchor_then_initialization_initialises_the_server(initialised: Api, anchor_bytes: bytes) -> None:
    """Uploading the anchor and posting the owner and server code makes an initialised server with that anchor."""
    key = initialised.api_key(Role.SYSTEM_ADMINISTRATOR)
    status = initialised.request("GET", "/api/v1/initialization/status", key=key).json()
    assert status["is_anchor_imported"] and status["is_server_code_initialized"] and status["is_server_owner_initialized"]
    assert status["software_token_init_status"] == "INITIALIZED"
    anchor = initialised.request("GET", "/api/v1/system/anchor", key=key)
    assert anchor.status == 200 and anchor.json()["hash"] == anchor_hash(anchor_bytes)
    assert len(anchor.json()["created_at"]) == 24
    identity = initialised.server_dir.snapshot().identity
    assert (str(identity.owner), identity.server_code) == ("MEMBER:EE/GOV/70000310", "ss1")


def test_the_uploaded_anchor_is_shown_before_initialization(api: Api, anchor_bytes: bytes) -> None:
    """Between the two steps, GET /system/anchor shows the uploaded anchor."""
    key = api.api_key(Role.SYSTEM_ADMINISTRATOR)
    assert api.request("GET", "/api/v1/system/anchor", key=key).status == 404
    api.request("POST", "/api/v1/system/anchor", body=anchor_bytes, content_type=OCTETS, key=key)
    assert api.request("GET", "/api/v1/system/anchor", key=key).json()["hash"] == anchor_hash(anchor_bytes)


def test_a_second_initial_anchor_or_initialization_conflicts(initialised: Api, anchor_bytes: bytes) -> None:
    """Once initialised, POST /system/anchor and POST /initialization answer 409."""
    key = initialised.api_key(Role.SYSTEM_ADMINISTRATOR)
    again = initialised.request("POST", "/api/v1/system/anchor", body=anchor_bytes, content_type=OCTETS, key=key)
    assert again.status == 409 and error_object(again.body)["error"]["code"] == "init_already_initialized"
    init = initialised.request("POST", "/api/v1/initialization", key=key, json_body={
        "owner_member_class": "GOV", "owner_member_code": "1", "security_server_code": "ss2"})
    assert init.status == 409


def test_initialization_without_an_anchor_is_not_found(api: Api) -> None:
    """POST /initialization before an anchor was uploaded answers 404 anchor_not_found."""
    key = api.api_key(Role.SYSTEM_ADMINISTRATOR)
    answer = api.request("POST", "/api/v1/initialization", key=key, json_body={
        "owner_member_class": "GOV", "owner_member_code": "1", "security_server_code": "ss1"})
    assert answer.status == 404 and error_object(answer.body)["error"]["code"] == "anchor_not_found"


def test_initialization_names_the_missing_parameters(api: Api, anchor_bytes: bytes) -> None:
    """Missing owner or server code is 400 invalid_init_params with X-Road's metadata strings."""
    key = api.api_key(Role.SYSTEM_ADMINISTRATOR)
    api.request("POST", "/api/v1/system/anchor", body=anchor_bytes, content_type=OCTETS, key=key)
    answer = api.request("POST", "/api/v1/initialization", key=key, json_body={"owner_member_class": "GOV"})
    error = error_object(answer.body)
    assert answer.status == 400 and error["error"]["code"] == "invalid_init_params"
    assert error["error"]["metadata"] == ["member_code_not_provided", "server_code_not_provided"]
    assert not api.server_dir.is_initialised()


def test_a_file_that_is_not_an_anchor_is_refused(api: Api) -> None:
    """Uploading something else is 400 invalid_anchor and stores nothing."""
    key = api.api_key(Role.SYSTEM_ADMINISTRATOR)
    answer = api.request("POST", "/api/v1/system/anchor", body=b"<not-an-anchor/>", content_type=OCTETS, key=key)
    assert answer.status == 400 and error_object(answer.body)["error"]["code"] == "invalid_anchor"
    assert not api.server_dir.pending_anchor_path.exists()


def test_replacing_the_anchor_keeps_the_server(initialised: Api, anchor_bytes: bytes) -> None:
    """PUT /system/anchor with an anchor of the same instance is accepted after init, and refused before."""
    key = initialised.api_key(Role.SYSTEM_ADMINISTRATOR)
    answer = initialised.request("PUT", "/api/v1/system/anchor", body=anchor_bytes, content_type=OCTETS, key=key)
    assert answer.status == 201


def test_replacing_before_initialization_is_not_found(api: Api, anchor_bytes: bytes) -> None:
    """PUT /system/anchor on a server that is not initialised answers 404."""
    key = api.api_key(Role.SYSTEM_ADMINISTRATOR)
    answer = api.request("PUT", "/api/v1/system/anchor", body=anchor_bytes, content_type=OCTETS, key=key)
    assert answer.status == 404


def test_an_anchor_is_previewed_without_being_stored(initialised: Api, anchor_bytes: bytes) -> None:
    """POST /system/anchor/previews answers the hash and date and changes nothing; junk is 400."""
    key = initialised.api_key(Role.SYSTEM_ADMINISTRATOR)
    answer = initialised.request("POST", "/api/v1/system/anchor/previews", body=anchor_bytes, content_type=OCTETS, key=key)
    assert answer.status == 201 and answer.json()["hash"] == anchor_hash(anchor_bytes)
    junk = initialised.request("POST", "/api/v1/system/anchor/previews", body=b"<x/>", content_type=OCTETS, key=key)
    assert junk.status == 400


def test_the_anchor_file_is_downloaded_as_imported(initialised: Api, anchor_bytes: bytes) -> None:
    """GET /system/anchor/download answers the anchor's bytes as XML."""
    key = initialised.api_key(Role.SECURITYSERVER_OBSERVER)
    answer = initialised.request("GET", "/api/v1/system/anchor/download", key=key)
    assert answer.status == 200 and answer.body == anchor_bytes
    assert answer.header("content-type") == "application/xml"
