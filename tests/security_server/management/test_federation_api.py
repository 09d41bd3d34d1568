"""``/security-servers`` and ``/xroad-instances`` from the running server's global configuration."""

from __future__ import annotations

from pathlib import Path

from security_server.management.roles import Role
from tests.security_server.management.globalconf_fixture import global_conf
from tests.security_server.management.harness import Api


def test_servers_and_instances_are_listed(tmp_path: Path, anchor_bytes: bytes) -> None:
    """All registered servers, this one with current_server=true, one by id, and the local instance."""
    api = Api(tmp_path / "server", global_conf=global_conf)
    key = api.api_key(Role.SYSTEM_ADMINISTRATOR)
    api.request("POST", "/api/v1/system/anchor", body=anchor_bytes, content_type="application/octet-stream", key=key)
    api.request("POST", "/api/v1/initialization", key=key, json_body={
        "owner_member_class": "GOV", "owner_member_code": "70000310", "security_server_code": "ss1"})
    listed = api.request("GET", "/api/v1/security-servers", key=key).json()
    assert [s["id"] for s in listed] == ["EE:COM:12345:ss9", "EE:GOV:70000310:ss1"]
    assert listed[1]["server_address"] == "10.0.0.1" and "server_address" not in listed[0]
    own = api.request("GET", "/api/v1/security-servers", key=key, query={"current_server": "true"}).json()
    assert [s["server_code"] for s in own] == ["ss1"]
    assert api.request("GET", "/api/v1/security-servers/EE:COM:12345:ss9", key=key).json()["member_class"] == "COM"
    assert api.request("GET", "/api/v1/security-servers/EE:COM:1:x", key=key).status == 404
    assert api.request("GET", "/api/v1/xroad-instances", key=key).json() == [{"identifier": "EE", "local": True}]


def test_without_the_server_they_are_not_found(api: Api) -> None:
    """Without the running server's configuration the lists answer 404."""
    key = api.api_key(Role.SECURITYSERVER_OBSERVER)
    assert api.request("GET", "/api/v1/security-servers", key=key).status == 404
    assert api.request("GET", "/api/v1/xroad-instances", key=key).status == 404
