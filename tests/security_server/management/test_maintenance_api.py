"""``/system/maintenance-mode``: the running server's health-check maintenance switch through the API."""

from __future__ import annotations

from pathlib import Path

from twisted.internet.task import Clock

from security_server.edge.health_checker import HealthChecker
from security_server.management.roles import Role
from tests.security_server.management.harness import Api
from tests.security_server.management.xroad_openapi import error_object


def _api(tmp_path: Path) -> tuple[Api, HealthChecker]:
    clock = Clock()
    checker = HealthChecker([], clock)
    return Api(tmp_path / "server", clock=clock, maintenance=checker), checker


def test_maintenance_is_switched_on_and_off(tmp_path: Path) -> None:
    """enable turns the health checker's maintenance on (GET says ENABLED); disable turns it off."""
    api, checker = _api(tmp_path)
    key = api.api_key(Role.SYSTEM_ADMINISTRATOR)
    assert api.request("GET", "/api/v1/system/maintenance-mode", key=key).json()["status"] == "DISABLED_MAINTENANCE_MODE"
    on = api.request("PUT", "/api/v1/system/maintenance-mode/enable", key=key, json_body={"message": "Back at noon."})
    assert on.status == 204 and checker.maintenance
    assert api.request("GET", "/api/v1/system/maintenance-mode", key=key).json() == {
        "status": "ENABLED_MAINTENANCE_MODE", "is_management_services_provider": False}
    assert api.request("PUT", "/api/v1/system/maintenance-mode/disable", key=key).status == 204
    assert not checker.maintenance


def test_only_the_system_administrator_switches(tmp_path: Path) -> None:
    """An observer reads the state but may not switch it."""
    api, checker = _api(tmp_path)
    key = api.api_key(Role.SECURITYSERVER_OBSERVER)
    assert api.request("GET", "/api/v1/system/maintenance-mode", key=key).status == 200
    assert api.request("PUT", "/api/v1/system/maintenance-mode/enable", key=key).status == 403
    assert not checker.maintenance


def test_a_message_outside_xroads_pattern_is_refused(tmp_path: Path) -> None:
    """A message with characters X-Road's MaintenanceModeMessage does not allow is 400; nothing switches."""
    api, checker = _api(tmp_path)
    key = api.api_key(Role.SYSTEM_ADMINISTRATOR)
    answer = api.request("PUT", "/api/v1/system/maintenance-mode/enable", key=key, json_body={"message": "<b>"})
    assert answer.status == 400 and not checker.maintenance


def test_without_a_running_server_there_is_no_switch(api: Api) -> None:
    """The API served without the server answers 404 maintenance_mode_unavailable."""
    answer = api.request("GET", "/api/v1/system/maintenance-mode", key=api.api_key(Role.SYSTEM_ADMINISTRATOR))
    assert answer.status == 404 and error_object(answer.body)["error"]["code"] == "maintenance_mode_unavailable"
