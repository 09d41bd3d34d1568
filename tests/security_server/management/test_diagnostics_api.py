"""``/diagnostics/*``: the running server's global configuration, timestamping and OCSP status, as X-Road shows it."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from twisted.internet.task import Clock

from security_server.core.errors import NetworkError
from security_server.management.diagnostics import ServerDiagnostics
from security_server.management.roles import Role
from tests.security_server.management.globalconf_fixture import global_conf
from tests.security_server.management.harness import Api
from tests.security_server.management.xroad_openapi import error_object

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


def _server(tmp_path: Path, *, conf_error: Exception | None = None, failed_since: float | None = None,
            stamped: int = 0) -> Any:
    """The parts of a running server the diagnostics read: configuration client, timestamper, OCSP, token."""
    clock = Clock()
    clock.advance(NOW.timestamp())
    bundle = tmp_path / "globalconf.bundle"
    bundle.write_bytes(b"stored")
    conf = global_conf()
    conf_client = SimpleNamespace(current=lambda: conf, store_path=bundle, interval_seconds=60,
                                  last_error=conf_error, healthy=True)
    timestamper = SimpleNamespace(failed_since=failed_since, last_error="TSA answered 500" if failed_since else None,
                                  tokens_received=stamped)
    return SimpleNamespace(reactor=clock, conf_client=conf_client, evidence=SimpleNamespace(timestamper=timestamper),
                           ocsp=None, token=SimpleNamespace(list=lambda: []))


def test_a_working_server_reports_ok(tmp_path: Path) -> None:
    """Configuration downloaded and TSA used: OK with the last update and the next one an interval later."""
    api = Api(tmp_path / "server", diagnostics=ServerDiagnostics(_server(tmp_path, stamped=2)))
    key = api.api_key(Role.SECURITYSERVER_OBSERVER)
    conf = api.request("GET", "/api/v1/diagnostics/globalconf", key=key)
    assert conf.status == 200 and conf.json()["status_class"] == "OK"
    assert conf.json()["prev_update_at"] < conf.json()["next_update_at"]
    tsas = api.request("GET", "/api/v1/diagnostics/timestamping-services", key=key)
    assert tsas.status == 200 and [(t["url"], t["status_class"]) for t in tsas.json()] == [
        ("http://127.0.0.1:9/tsa", "OK")]
    ocsp = api.request("GET", "/api/v1/diagnostics/ocsp-responders", key=key)
    assert ocsp.status == 200 and ocsp.json() == []


def test_failures_are_reported_with_their_error(tmp_path: Path) -> None:
    """A failed download is FAIL with its fault code; a failing timestamper FAIL since its first failure."""
    server = _server(tmp_path, conf_error=NetworkError("registry unreachable", reason="refused"),
                     failed_since=NOW.timestamp() - 30)
    api = Api(tmp_path / "server", diagnostics=ServerDiagnostics(server))
    key = api.api_key(Role.SYSTEM_ADMINISTRATOR)
    conf = api.request("GET", "/api/v1/diagnostics/globalconf", key=key).json()
    assert conf["status_class"] == "FAIL" and conf["error"]["metadata"] == ["registry unreachable"]
    tsa = api.request("GET", "/api/v1/diagnostics/timestamping-services", key=key).json()[0]
    assert tsa["status_class"] == "FAIL" and tsa["prev_update_at"] == "2026-12-07T11:59:30.000Z"
    assert tsa["error"] == {"code": "timestamping_failed", "metadata": ["TSA answered 500"]}


def test_a_timestamper_that_has_not_stamped_yet_is_waiting(tmp_path: Path) -> None:
    """Before its first token the TSA is WAITING, its last update unknown (the epoch)."""
    api = Api(tmp_path / "server", diagnostics=ServerDiagnostics(_server(tmp_path)))
    tsa = api.request("GET", "/api/v1/diagnostics/timestamping-services",
                      key=api.api_key(Role.SECURITYSERVER_OBSERVER)).json()[0]
    assert tsa["status_class"] == "WAITING" and tsa["prev_update_at"] == "1970-01-01T00:00:00.000Z"


def test_without_the_server_diagnostics_are_not_found_and_roles_are_checked(tmp_path: Path) -> None:
    """The API served without the server answers 404 diagnostics_unavailable; a service administrator gets 403."""
    api = Api(tmp_path / "server")
    answer = api.request("GET", "/api/v1/diagnostics/globalconf", key=api.api_key(Role.SYSTEM_ADMINISTRATOR))
    assert answer.status == 404 and error_object(answer.body)["error"]["code"] == "diagnostics_unavailable"
    refused = api.request("GET", "/api/v1/diagnostics/ocsp-responders", key=api.api_key(Role.SERVICE_ADMINISTRATOR))
    assert refused.status == 403
