"""The registry API's global groups and their members (X-Road's /global-groups)."""

from __future__ import annotations

from central_registry.store import RegistryStore
from security_server.core.identifiers import ClientId
from tests.central_registry.management.harness import RegistryApi

OWNER = ClientId("EE", "GOV", "70000310")


def _members(registry: RegistryApi) -> None:
    store = RegistryStore(registry.paths.database)
    try:
        store.db.execute("INSERT INTO member_classes (code, description) VALUES ('GOV', 'Government')")
        store.add_member(OWNER, "Riik")
        store.add_subsystem(OWNER.subsystem("reg"))
    finally:
        store.close()


def test_a_group_is_added_listed_changed_and_deleted(registry: RegistryApi, officer: str) -> None:
    """POST answers X-Road's GlobalGroupResource; GET lists and shows it; PATCH changes it; DELETE removes it."""
    added = registry.request("POST", "/api/v1/global-groups", json_body={"code": "owners", "description": "Owners"},
                             key=officer)
    assert added.status == 201 and added.json()["member_count"] == 0
    assert [g["code"] for g in registry.request("GET", "/api/v1/global-groups", key=officer).json()] == ["owners"]
    changed = registry.request("PATCH", "/api/v1/global-groups/owners", json_body={"description": "Server owners"},
                               key=officer)
    assert changed.json()["description"] == "Server owners"
    again = registry.request("POST", "/api/v1/global-groups", json_body={"code": "owners", "description": "x"},
                             key=officer)
    assert again.status == 409 and again.json()["error"]["code"] == "global_group_exists"
    assert registry.request("DELETE", "/api/v1/global-groups/owners", key=officer).status == 204
    gone = registry.request("GET", "/api/v1/global-groups/owners", key=officer)
    assert gone.status == 404 and gone.json()["error"]["code"] == "global_group_not_found"


def test_members_are_added_searched_and_removed(registry: RegistryApi, officer: str) -> None:
    """Adding answers only the new members; the search pages them with names; DELETE removes one."""
    _members(registry)
    registry.request("POST", "/api/v1/global-groups", json_body={"code": "owners", "description": "Owners"},
                     key=officer)
    added = registry.request("POST", "/api/v1/global-groups/owners/members/add",
                             json_body={"items": ["EE:GOV:70000310", "EE:GOV:70000310:reg"]}, key=officer)
    assert added.status == 201 and added.json() == {"items": ["EE:GOV:70000310", "EE:GOV:70000310:reg"]}
    again = registry.request("POST", "/api/v1/global-groups/owners/members/add",
                             json_body={"items": ["EE:GOV:70000310"]}, key=officer)
    assert again.json() == {"items": []}
    found = registry.request("POST", "/api/v1/global-groups/owners/members",
                             json_body={"types": ["SUBSYSTEM"], "paging_sorting": {"limit": 10}}, key=officer).json()
    assert [m["client_id"]["encoded_id"] for m in found["items"]] == ["EE:GOV:70000310:reg"]
    assert found["items"][0]["name"] == "Riik" and found["paging_metadata"]["limit"] == 10
    assert registry.request("DELETE", "/api/v1/global-groups/owners/members/EE:GOV:70000310:reg",
                            key=officer).status == 204
    assert registry.request("GET", "/api/v1/global-groups/owners", key=officer).json()["member_count"] == 1


def test_an_unknown_member_is_not_added(registry: RegistryApi, officer: str) -> None:
    """A client the registry does not know is 404 and nothing is added."""
    registry.request("POST", "/api/v1/global-groups", json_body={"code": "owners", "description": "Owners"},
                     key=officer)
    refused = registry.request("POST", "/api/v1/global-groups/owners/members/add",
                               json_body={"items": ["EE:GOV:404"]}, key=officer)
    assert refused.status == 404 and refused.json()["error"]["code"] == "member_not_found"
    assert registry.request("GET", "/api/v1/global-groups/owners", key=officer).json()["member_count"] == 0
