"""The registry API over a shared PostgreSQL store (a clustered registry): the HA status of its nodes, and
backups refused with a clear error."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from central_registry.admin import ha_status
from central_registry.management.context import opening_store
from central_registry.management.roles import Role
from central_registry.management.server import make_registry_management_site
from central_registry.store import RegistryStore
from tests.central_registry.management.harness import START, RegistryApi
from tests.management_api import run_now

NODE1 = "http://cs1.example.org:8090/internalconf"
NODE2 = "http://cs2.example.org:8090/internalconf"


def _clustered(tmp_path: Path, url: str) -> RegistryApi:
    api = RegistryApi(tmp_path / "node1")
    api.site = make_registry_management_site(
        api.clock, api.root, api.config, executor=run_now, open_store=opening_store(api.paths.database, url),
        secure_cookies=False, database_url=url,
    )
    api.router = api.site.resource._router
    api.context = api.site.resource._context
    return api


def test_the_ha_status_reads_every_nodes_generation_from_the_shared_store(tmp_path: Path, postgres_url: str) -> None:
    """Two nodes on one PostgreSQL database: is_ha_configured, each node's last generation and status."""
    store = RegistryStore(tmp_path / "unused.db", database_url=postgres_url)
    try:
        store.initialise("EE")
        store.register_node(NODE1, b"cert-1")
        store.register_node(NODE2, b"cert-2")
        ha_status.record_generation(store, NODE1, START)
        ha_status.record_generation(store, NODE2, START - timedelta(hours=1))
    finally:
        store.close()
    api = _clustered(tmp_path, postgres_url)
    body = api.request("GET", "/api/v1/system/high-availability-cluster/status",
                       key=api.api_key(Role.OBSERVER)).json()
    assert body["is_ha_configured"] is True and body["all_nodes_ok"] is False
    assert [(n["node_name"], n["status"]) for n in body["nodes"]] == [
        ("cs1.example.org:8090", "OK"), ("cs2.example.org:8090", "ERROR")]
    assert body["nodes"][1]["configuration_generated"] == "2026-12-07T11:00:00.000Z"


def test_a_backup_of_a_shared_store_is_refused_with_a_clear_error(tmp_path: Path, postgres_url: str) -> None:
    """POST /backups on a PostgreSQL store is 400 backup_generation_failed naming pg_dump; nothing is written."""
    store = RegistryStore(tmp_path / "unused.db", database_url=postgres_url)
    try:
        store.initialise("EE")
    finally:
        store.close()
    api = _clustered(tmp_path, postgres_url)
    answer = api.request("POST", "/api/v1/backups", key=api.api_key(Role.SYSTEM_ADMINISTRATOR))
    assert answer.status == 400 and answer.json()["error"]["code"] == "backup_generation_failed"
    assert "pg_dump" in answer.json()["error"]["metadata"][0]
    assert not (api.root / "backups").exists()
