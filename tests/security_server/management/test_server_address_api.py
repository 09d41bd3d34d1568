"""``/system/server-address``: the address the global configuration publishes, and X-Road's addressChange."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from twisted.internet import defer

from security_server.core.globalconf import GlobalConf
from security_server.core.identifiers import SecurityServerId
from security_server.management.roles import Role
from tests.security_server.management.conftest import OWNER_CLASS, OWNER_CODE, SERVER_CODE
from tests.security_server.management.globalconf_fixture import global_conf
from tests.security_server.management.harness import Api
from tests.security_server.management.xroad_openapi import error_object

PATH = "/api/v1/system/server-address"


@dataclass
class Conf:
    """The management tests' configuration, with this server's published address set by the test."""

    address: str | None = "10.0.0.1"
    real: GlobalConf = field(default_factory=global_conf)

    def server_address(self, server_id: SecurityServerId) -> str | None:
        """The address published for this test's one server."""
        return self.address

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


@dataclass
class Server:
    """An initialised server; the addressChange requests it sent."""

    api: Api
    conf: Conf
    sent: list[str]

    def put(self, body: Any, role: Role = Role.SYSTEM_ADMINISTRATOR) -> Any:
        """``PUT /system/server-address``."""
        return self.api.request("PUT", PATH, key=self.api.api_key(role), json_body=body)

    def shown(self) -> Any:
        """``GET /system/server-address``."""
        answer = self.api.request("GET", PATH, key=self.api.api_key(Role.SYSTEM_ADMINISTRATOR))
        assert answer.status == 200, answer.body
        return answer.json()


@pytest.fixture
def server(tmp_path: Path, anchor_bytes: bytes) -> Server:
    """addressChange is recorded, not sent; the configuration publishes 10.0.0.1 for the server."""
    conf = Conf()
    sent: list[str] = []

    def change(address: str) -> defer.Deferred[Any]:
        sent.append(address)
        return defer.succeed({"status": "submitted"})

    api = Api(tmp_path / "server", global_conf=lambda: conf, change_address=change)
    key = api.api_key(Role.SYSTEM_ADMINISTRATOR)
    api.request("POST", "/api/v1/system/anchor", body=anchor_bytes, content_type="application/octet-stream", key=key)
    api.request("POST", "/api/v1/initialization", key=key, json_body={
        "owner_member_class": OWNER_CLASS, "owner_member_code": OWNER_CODE, "security_server_code": SERVER_CODE})
    return Server(api, conf, sent)


def _code(answer: Any) -> str:
    return str(error_object(answer.body)["error"]["code"])


def test_the_change_is_sent_shown_and_forgotten_once_published(server: Server) -> None:
    """GET: the published address; PUT: 202, addressChange sent once, the change shown as requested; a second
    change while it waits is 400 address_change_request_already_submitted; once the configuration publishes it,
    the request is forgotten and a new change may be sent."""
    assert server.shown() == {"current_address": {"address": "10.0.0.1"}}
    assert server.put({"address": "ss1.example.org:5500"}).status == 202
    assert server.sent == ["ss1.example.org:5500"]
    assert server.shown() == {"current_address": {"address": "10.0.0.1"},
                              "requested_change": {"address": "ss1.example.org:5500"}}
    again = server.put({"address": "ss1.example.org:5501"})
    assert (again.status, _code(again)) == (400, "address_change_request_already_submitted")
    server.conf.address = "ss1.example.org:5500"
    assert server.shown() == {"current_address": {"address": "ss1.example.org:5500"}}
    assert server.put({"address": "10.0.0.2"}).status == 202
    assert server.sent == ["ss1.example.org:5500", "10.0.0.2"]


def test_refusals_send_nothing(server: Server) -> None:
    """The current address (400 same_address_change_request), a malformed address, a missing or extra field (400),
    another role than the system administrator (403): nothing is sent, nothing waits."""
    same = server.put({"address": "10.0.0.1"})
    assert (same.status, _code(same)) == (400, "same_address_change_request")
    for body in ({"address": "ss1.example.org/admin"}, {"address": "a b"}, {"address": ""}, {},
                 {"address": "x" * 256}, {"address": "10.0.0.5", "port": 5500}, {"address": 5}):
        assert server.put(body).status == 400, body
    for role in (Role.SECURITY_OFFICER, Role.SECURITYSERVER_OBSERVER):
        assert server.put({"address": "10.0.0.5"}, role).status == 403
        assert server.api.request("GET", PATH, key=server.api.api_key(role)).status == 403
    assert server.sent == [] and "requested_change" not in server.shown()


def test_without_the_registry_the_change_is_not_found(tmp_path: Path) -> None:
    """The API run without a registry connection: PUT 404 registration_unavailable; GET shows nothing known."""
    api = Api(tmp_path / "server")
    key = api.api_key(Role.SYSTEM_ADMINISTRATOR)
    answer = api.request("PUT", PATH, key=key, json_body={"address": "10.0.0.5"})
    assert (answer.status, _code(answer)) == (404, "registration_unavailable")
