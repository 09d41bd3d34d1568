"""The small read-only operations: node type, member classes, prioritization strategies, proxy memory."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from security_server.admin.server_dir import ServerDirectory
from security_server.management.operations.diagnostics import proxy_memory
from security_server.management.roles import Role
from security_server.management.server import make_management_site
from tests.management_api import run_now
from tests.security_server.management.globalconf_fixture import global_conf
from tests.security_server.management.harness import Api


def test_a_server_on_its_own_database_is_standalone(api: Api) -> None:
    """node-type: STANDALONE for a server whose configuration is its own SQLite file; every role may read it."""
    for role in (Role.SECURITYSERVER_OBSERVER, Role.SERVICE_ADMINISTRATOR):
        answer = api.request("GET", "/api/v1/system/node-type", key=api.api_key(role))
        assert (answer.status, answer.json()) == (200, {"node_type": "STANDALONE"})


def test_a_clustered_node_is_primary(tmp_path: Path) -> None:
    """node-type: PRIMARY for a node on a shared database (every fedbus node takes changes; none is read-only)."""
    api = Api(tmp_path / "server")
    api.server_dir = ServerDirectory(api.server_dir.path, "postgresql://db.example/fedbus")  # never connected to
    api.site = make_management_site(api.clock, api.server_dir, api.config, executor=run_now, secure_cookies=False)
    answer = api.request("GET", "/api/v1/system/node-type", key=api.api_key(Role.SECURITYSERVER_OBSERVER))
    assert (answer.status, answer.json()) == (200, {"node_type": "PRIMARY"})


def test_member_classes_come_from_the_global_configuration(tmp_path: Path) -> None:
    """member-classes: the configuration's classes, with or without current_instance; by instance id; an unknown
    instance 404; a bad boolean 400."""
    api = Api(tmp_path / "server", global_conf=global_conf)
    key = api.api_key(Role.SECURITYSERVER_OBSERVER)
    assert api.request("GET", "/api/v1/member-classes", key=key).json() == ["COM", "GOV"]
    assert api.request("GET", "/api/v1/member-classes", key=key, query={"current_instance": "true"}).json() == [
        "COM", "GOV"]
    assert api.request("GET", "/api/v1/member-classes/EE", key=key).json() == ["COM", "GOV"]
    unknown = api.request("GET", "/api/v1/member-classes/FI", key=key)
    assert unknown.status == 404 and b"instance_identifier_not_found" in unknown.body
    bad = api.request("GET", "/api/v1/member-classes", key=key, query={"current_instance": "maybe"})
    assert bad.status == 400


def test_member_classes_without_the_server_are_not_found(api: Api) -> None:
    """Without the running server's configuration, 404 global_conf_unavailable."""
    answer = api.request("GET", "/api/v1/member-classes", key=api.api_key(Role.SECURITYSERVER_OBSERVER))
    assert answer.status == 404 and b"global_conf_unavailable" in answer.body


def test_prioritization_is_the_published_order(api: Api) -> None:
    """Both strategies are X-Road's NONE: fedbus asks services in their published order, with no cost types."""
    key = api.api_key(Role.SECURITYSERVER_OBSERVER)
    for path in ("/system/timestamping-services/prioritization-strategy",
                 "/certificate-authorities/ocsp-prioritization-strategy"):
        answer = api.request("GET", f"/api/v1{path}", key=key)
        assert (answer.status, answer.json()) == (200, "NONE"), path


def test_proxy_memory_is_this_process(tmp_path: Path) -> None:
    """proxy-memory-usage-status: this process's resident memory, within its address space and the machine's
    memory; the percentage is used over max; no threshold, so never over it. The observer may read it, the
    security officer not (X-Road's DIAGNOSTICS)."""
    api = Api(tmp_path / "server", diagnostics=SimpleNamespace())
    answer = api.request("GET", "/api/v1/diagnostics/proxy-memory-usage-status",
                         key=api.api_key(Role.SECURITYSERVER_OBSERVER))
    assert answer.status == 200, answer.body
    shown: dict[str, Any] = answer.json()
    assert 0 < shown["used_memory"] <= shown["total_memory"] and shown["used_memory"] <= shown["max_memory"]
    assert shown["usage_percent"] == pytest.approx(100 * shown["used_memory"] / shown["max_memory"], abs=0.01)
    assert shown["is_used_over_threshold"] is False and "threshold" not in shown
    refused = api.request("GET", "/api/v1/diagnostics/proxy-memory-usage-status",
                          key=api.api_key(Role.SECURITY_OFFICER))
    assert refused.status == 403


def test_proxy_memory_reads_proc_status(tmp_path: Path) -> None:
    """The figures are /proc/self/status's VmRSS and VmSize, in bytes."""
    status = tmp_path / "status"
    status.write_text("Name:\tpython\nVmSize:\t  204800 kB\nVmRSS:\t   10240 kB\n", encoding="ascii")
    shown = proxy_memory(status)
    assert (shown["used_memory"], shown["total_memory"]) == (10240 * 1024, 204800 * 1024)


def test_proxy_memory_without_the_server_is_not_found(api: Api) -> None:
    """The API run without the server has no proxy to measure: 404 diagnostics_unavailable."""
    answer = api.request("GET", "/api/v1/diagnostics/proxy-memory-usage-status",
                         key=api.api_key(Role.SECURITYSERVER_OBSERVER))
    assert answer.status == 404
