"""Subsystem names, a group's filter model, the HA cluster status and the registry's own OpenAPI document."""

from __future__ import annotations

from datetime import timedelta

import yaml  # type: ignore[import-untyped]  # no stubs installed

from central_registry.admin import ha_status
from central_registry.management.operations import registry_operations
from central_registry.management.roles import Role
from central_registry.store import RegistryStore
from tests.central_registry.management.harness import START, RegistryApi

SUB = "EE:GOV:70000310:registry"


def _member_with_subsystem(registry: RegistryApi, officer: str) -> None:
    registry.request("POST", "/api/v1/member-classes", json_body={"code": "GOV", "description": "Government"},
                     key=registry.api_key(Role.SYSTEM_ADMINISTRATOR))
    registry.request("POST", "/api/v1/members", key=officer, json_body={
        "member_id": {"member_class": "GOV", "member_code": "70000310"}, "member_name": "Riik"})
    registry.request("POST", "/api/v1/subsystems", key=officer, json_body={
        "subsystem_id": {"member_class": "GOV", "member_code": "70000310", "subsystem_code": "registry"},
        "subsystem_name": "Register"})


def test_a_subsystem_is_renamed_and_shown_with_its_name(registry: RegistryApi, officer: str) -> None:
    """PATCH /subsystems/{id} answers X-Road's Client; getSubsystems shows the name; an empty name removes it."""
    _member_with_subsystem(registry, officer)
    listed = registry.request("GET", "/api/v1/members/EE:GOV:70000310/subsystems", key=officer).json()
    assert listed[0]["subsystem_name"] == "Register"
    answer = registry.request("PATCH", f"/api/v1/subsystems/{SUB}", json_body={"subsystem_name": "Rahvastik"},
                              key=officer)
    assert answer.status == 200 and answer.json()["client_id"]["encoded_id"] == SUB
    listed = registry.request("GET", "/api/v1/members/EE:GOV:70000310/subsystems", key=officer).json()
    assert listed[0]["subsystem_name"] == "Rahvastik"
    registry.request("PATCH", f"/api/v1/subsystems/{SUB}", json_body={"subsystem_name": ""}, key=officer)
    assert "subsystem_name" not in registry.request("GET", "/api/v1/members/EE:GOV:70000310/subsystems",
                                                    key=officer).json()[0]


def test_renaming_is_refused_for_unknown_or_bad_input(registry: RegistryApi, officer: str) -> None:
    """Unknown subsystem 404, a member id 400, a name too long 400, another role 403."""
    _member_with_subsystem(registry, officer)
    unknown = registry.request("PATCH", "/api/v1/subsystems/EE:GOV:70000310:nope", json_body={"subsystem_name": "x"},
                               key=officer)
    assert unknown.status == 404 and unknown.json()["error"]["code"] == "subsystem_not_found"
    member = registry.request("PATCH", "/api/v1/subsystems/EE:GOV:70000310", json_body={"subsystem_name": "x"},
                              key=officer)
    assert member.status == 400
    long = registry.request("PATCH", f"/api/v1/subsystems/{SUB}", json_body={"subsystem_name": "x" * 256}, key=officer)
    assert long.status == 400
    observer = registry.api_key(Role.OBSERVER)
    assert registry.request("PATCH", f"/api/v1/subsystems/{SUB}", json_body={"subsystem_name": "x"},
                            key=observer).status == 403


def test_a_groups_filter_model_lists_its_members_values(registry: RegistryApi, officer: str) -> None:
    """The filter model answers the instances, classes, codes and subsystems of the group's members."""
    _member_with_subsystem(registry, officer)
    registry.request("POST", "/api/v1/global-groups", json_body={"code": "owners", "description": "Owners"}, key=officer)
    registry.request("POST", "/api/v1/global-groups/owners/members/add", key=officer,
                     json_body={"items": ["EE:GOV:70000310", SUB]})
    model = registry.request("GET", "/api/v1/global-groups/owners/members/filter-model", key=officer).json()
    assert model == {"instances": ["EE"], "member_classes": ["GOV"], "codes": ["70000310"], "subsystems": ["registry"]}
    missing = registry.request("GET", "/api/v1/global-groups/none/members/filter-model", key=officer, check=False)
    assert missing.status == 404


def test_the_ha_status_shows_each_nodes_last_generation(registry: RegistryApi) -> None:
    """Nodes come from the shared store with X-Road's OK/WARN/ERROR/UNKNOWN by the age of their last generation."""
    store = RegistryStore(registry.paths.database)
    try:
        store.register_node("http://cs1.example.org:8090/internalconf", b"c1")
        store.register_node("http://cs2.example.org:8090/internalconf", b"c2")
        store.register_node("http://cs3.example.org:8090/internalconf", b"c3")
        ha_status.record_generation(store, "http://cs1.example.org:8090/internalconf", START)
        ha_status.record_generation(store, "http://cs2.example.org:8090/internalconf", START - timedelta(seconds=120))
    finally:
        store.close()
    answer = registry.request("GET", "/api/v1/system/high-availability-cluster/status",
                              key=registry.api_key(Role.OBSERVER))
    assert answer.status == 200
    body = answer.json()
    assert body["is_ha_configured"] is False and body["all_nodes_ok"] is False
    assert [(n["node_name"], n["node_address"], n["status"]) for n in body["nodes"]] == [
        ("cs1.example.org:8090", "cs1.example.org", "OK"),
        ("cs2.example.org:8090", "cs2.example.org", "WARN"),
        ("cs3.example.org:8090", "cs3.example.org", "UNKNOWN"),
    ]
    assert body["nodes"][0]["configuration_generated"] == "2026-12-07T12:00:00.000Z"
    registry.clock.advance(3600)
    later = registry.request("GET", "/api/v1/system/high-availability-cluster/status",
                             key=registry.api_key(Role.OBSERVER)).json()
    assert [n["status"] for n in later["nodes"]] == ["ERROR", "ERROR", "UNKNOWN"]


def test_the_openapi_document_has_exactly_the_implemented_operations(registry: RegistryApi) -> None:
    """GET /openapi.yaml is X-Road's file with only the (method, path) pairs the router serves."""
    answer = registry.request("GET", "/api/v1/openapi.yaml", key=registry.api_key(Role.OBSERVER))
    assert answer.status == 200 and answer.header("content-type") == "application/x-yaml"
    document = yaml.safe_load(answer.body)
    served = {(m, p) for p, item in document["paths"].items() for m in item
              if m in ("get", "post", "put", "patch", "delete")}
    expected = {(op.method.lower(), op.path[len("/api/v1"):]) for op in registry_operations()
                if op.name != "getConfigurationGenerations"}
    assert served == expected
    assert "components" in document and document["info"]["title"] == "X-Road Central Server Admin API"
