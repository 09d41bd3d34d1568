"""``/timestamping-services`` and ``/system/timestamping-services``: the approved TSAs of the global configuration."""

from __future__ import annotations

from pathlib import Path

from security_server.management.roles import Role
from tests.security_server.management.globalconf_fixture import global_conf
from tests.security_server.management.harness import Api


def test_both_lists_answer_the_approved_tsas(tmp_path: Path) -> None:
    """Every approved TSA is used, so the configured list is the approved one, cost type UNDEFINED."""
    api = Api(tmp_path / "server", global_conf=global_conf)
    key = api.api_key(Role.SECURITYSERVER_OBSERVER)
    expected = [{"name": "Dev TSA", "url": "http://127.0.0.1:9/tsa", "cost_type": "UNDEFINED"}]
    assert api.request("GET", "/api/v1/timestamping-services", key=key).json() == expected
    assert api.request("GET", "/api/v1/system/timestamping-services", key=key).json() == expected


def test_choosing_tsas_is_not_implemented(tmp_path: Path) -> None:
    """Adding a configured TSA is 405 (the path answers GET only)."""
    api = Api(tmp_path / "server", global_conf=global_conf)
    key = api.api_key(Role.SYSTEM_ADMINISTRATOR)
    answer = api.request("POST", "/api/v1/system/timestamping-services", key=key, check=False,
                         json_body={"name": "Other", "url": "http://tsa.example", "cost_type": "FREE"})
    assert answer.status == 405


def test_without_the_server_the_list_is_not_found(api: Api) -> None:
    """The API served without the server's configuration client answers 404."""
    assert api.request("GET", "/api/v1/timestamping-services", key=api.api_key(Role.SYSTEM_ADMINISTRATOR)).status == 404
