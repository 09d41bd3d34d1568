"""``/timestamping-services`` and ``/system/timestamping-services``: the approved TSAs and those the log uses."""

from __future__ import annotations

from pathlib import Path

import pytest

from security_server.management.roles import Role
from security_server.serverconf.store import TimestampingService
from tests.security_server.management.conftest import OWNER_CLASS, OWNER_CODE, SERVER_CODE
from tests.security_server.management.globalconf_fixture import global_conf
from tests.security_server.management.harness import Api
from tests.security_server.management.xroad_openapi import error_object

DEV = {"name": "Dev TSA", "url": "http://127.0.0.1:9/tsa", "cost_type": "UNDEFINED"}


@pytest.fixture
def server(tmp_path: Path, anchor_bytes: bytes) -> Api:
    """An initialised server whose running part has the test global configuration (one approved TSA)."""
    api = Api(tmp_path / "server", global_conf=global_conf)
    key = api.api_key(Role.SYSTEM_ADMINISTRATOR)
    assert api.request("POST", "/api/v1/system/anchor", body=anchor_bytes, content_type="application/octet-stream",
                       key=key).status == 201
    assert api.request("POST", "/api/v1/initialization", key=key, json_body={
        "owner_member_class": OWNER_CLASS, "owner_member_code": OWNER_CODE, "security_server_code": SERVER_CODE,
        "software_token_pin": "Secret-1234"}).status == 201
    return api


def test_with_nothing_chosen_every_approved_tsa_is_used(server: Api) -> None:
    """Both lists answer the approved TSAs, cost type UNDEFINED, while no choice was made."""
    key = server.api_key(Role.SECURITYSERVER_OBSERVER)
    assert server.request("GET", "/api/v1/timestamping-services", key=key).json() == [DEV]
    assert server.request("GET", "/api/v1/system/timestamping-services", key=key).json() == [DEV]


def test_an_approved_tsa_is_chosen_and_kept_in_the_store(server: Api) -> None:
    """POST answers 201 with the approved service's name; the choice is in the snapshot the message log reads."""
    key = server.api_key(Role.SYSTEM_ADMINISTRATOR)
    answer = server.request("POST", "/api/v1/system/timestamping-services", key=key,
                            json_body={"name": "whatever", "url": DEV["url"], "cost_type": "FREE"})
    assert answer.status == 201 and answer.json() == DEV
    assert server.server_dir.snapshot().timestamping_services == (TimestampingService("Dev TSA", DEV["url"]),)
    again = server.request("POST", "/api/v1/system/timestamping-services", key=key, json_body=DEV)
    assert again.status == 409 and error_object(again.body)["error"]["code"] == "timestamping_service_already_configured"


def test_a_tsa_that_is_not_approved_is_not_found(server: Api) -> None:
    """Choosing or removing a URL the global configuration does not approve is 404; nothing is stored."""
    key = server.api_key(Role.SYSTEM_ADMINISTRATOR)
    other = {"name": "Other", "url": "http://tsa.example/", "cost_type": "FREE"}
    for path in ("/api/v1/system/timestamping-services", "/api/v1/system/timestamping-services/delete"):
        answer = server.request("POST", path, key=key, json_body=other)
        assert answer.status == 404 and error_object(answer.body)["error"]["code"] == "timestamping_service_not_found"
    assert server.server_dir.snapshot().timestamping_services == ()


def test_the_last_tsa_in_use_is_not_removed(server: Api) -> None:
    """Removing the only TSA in use is 400 action_not_possible, also when a stale choice is no longer approved."""
    key = server.api_key(Role.SYSTEM_ADMINISTRATOR)
    path = "/api/v1/system/timestamping-services/delete"
    last = server.request("POST", path, key=key, json_body=DEV)
    assert last.status == 400 and error_object(last.body)["error"]["code"] == "action_not_possible"
    with server.server_dir.open_store() as store:
        store.add_timestamping_service(TimestampingService("Dev TSA", DEV["url"]))
        store.add_timestamping_service(TimestampingService("Gone TSA", "http://127.0.0.1:10/tsa"))
    # The second one is no longer approved: it is not in use, and removing the first would leave none.
    assert server.request("GET", "/api/v1/system/timestamping-services", key=key).json() == [DEV]
    assert server.request("POST", path, key=key, json_body=DEV).status == 400


def test_choosing_is_the_system_administrators(server: Api) -> None:
    """A security officer gets 403 and nothing is chosen."""
    answer = server.request("POST", "/api/v1/system/timestamping-services",
                            key=server.api_key(Role.SECURITY_OFFICER), json_body=DEV)
    assert answer.status == 403 and server.server_dir.snapshot().timestamping_services == ()


def test_without_the_server_the_list_is_not_found(api: Api) -> None:
    """The API served without the server's configuration client answers 404."""
    assert api.request("GET", "/api/v1/timestamping-services", key=api.api_key(Role.SYSTEM_ADMINISTRATOR)).status == 404


def test_the_message_log_uses_the_chosen_tsas_only() -> None:
    """The timestamper's TSAs are the approved ones, or only the chosen URLs among them once any are chosen."""
    from security_server.messagelog.timestamper import tsas_from_global_conf

    conf = global_conf()
    assert [t.url for t in tsas_from_global_conf(conf)] == [DEV["url"]]
    assert [t.url for t in tsas_from_global_conf(conf, [DEV["url"]])] == [DEV["url"]]
    assert tsas_from_global_conf(conf, ["http://127.0.0.1:10/tsa"]) == []
