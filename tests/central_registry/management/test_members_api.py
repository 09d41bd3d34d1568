"""The registry API's member classes, members and subsystems (X-Road's /member-classes, /members, /subsystems)."""

from __future__ import annotations

from central_registry.management.roles import Role
from tests.central_registry.management.harness import RegistryApi

MEMBER = {"member_class": "GOV", "member_code": "70000310"}


def _with_class(registry: RegistryApi, key: str) -> None:
    answer = registry.request("POST", "/api/v1/member-classes", json_body={"code": "GOV", "description": "Government"},
                              key=key)
    assert answer.status == 201, answer.body


def test_member_classes_are_added_listed_changed_and_deleted(registry: RegistryApi, officer: str) -> None:
    """A class is added (201), listed, its description changed (200), and deleted while unused (204)."""
    assert registry.request("GET", "/api/v1/member-classes", key=officer).json() == []
    _with_class(registry, officer)
    changed = registry.request("PATCH", "/api/v1/member-classes/GOV", json_body={"description": "State"}, key=officer)
    assert changed.status == 200 and changed.json() == {"code": "GOV", "description": "State"}
    assert registry.request("GET", "/api/v1/member-classes", key=officer).json() == [
        {"code": "GOV", "description": "State"}]
    assert registry.request("DELETE", "/api/v1/member-classes/GOV", key=officer).status == 204
    assert registry.request("GET", "/api/v1/member-classes", key=officer).json() == []


def test_a_duplicate_class_is_a_conflict_and_an_unknown_one_not_found(registry: RegistryApi, officer: str) -> None:
    """Adding a class twice is 409; changing or deleting an unknown one is 404."""
    _with_class(registry, officer)
    again = registry.request("POST", "/api/v1/member-classes", json_body={"code": "GOV", "description": "x"},
                             key=officer)
    assert again.status == 409 and again.json()["error"]["code"] == "member_class_exists"
    missing = registry.request("PATCH", "/api/v1/member-classes/COM", json_body={"description": "x"}, key=officer,
                               check=False)
    assert missing.status == 404 and missing.json()["error"]["code"] == "member_class_not_found"
    assert registry.request("DELETE", "/api/v1/member-classes/COM", key=officer).status == 404


def test_a_class_in_use_is_not_deleted(registry: RegistryApi, officer: str) -> None:
    """A class with a member is refused with 409 (X-Road's file lists no 409 there: not checked) and stays."""
    _with_class(registry, officer)
    registry.request("POST", "/api/v1/members", json_body={"member_id": MEMBER, "member_name": "Riik"}, key=officer)
    answer = registry.request("DELETE", "/api/v1/member-classes/GOV", key=officer, check=False)
    assert answer.status == 409 and answer.json()["error"]["code"] == "member_class_is_in_use"
    assert len(registry.request("GET", "/api/v1/member-classes", key=officer).json()) == 1


def test_a_member_is_added_shown_renamed_and_deleted(registry: RegistryApi, officer: str) -> None:
    """POST /members answers X-Road's Client; GET shows it, PATCH renames it, DELETE removes it."""
    _with_class(registry, officer)
    added = registry.request("POST", "/api/v1/members", json_body={"member_id": MEMBER, "member_name": "Riik"},
                             key=officer)
    assert added.status == 201
    assert added.json() == {"member_name": "Riik", "client_id": {
        "instance_id": "EE", "type": "MEMBER", "member_class": "GOV", "member_code": "70000310",
        "encoded_id": "EE:GOV:70000310"}}
    assert registry.request("GET", "/api/v1/members/EE:GOV:70000310", key=officer).json()["member_name"] == "Riik"
    renamed = registry.request("PATCH", "/api/v1/members/EE:GOV:70000310", json_body={"member_name": "Vabariik"},
                               key=officer)
    assert renamed.status == 200 and renamed.json()["member_name"] == "Vabariik"
    assert registry.request("DELETE", "/api/v1/members/EE:GOV:70000310", key=officer).status == 204
    gone = registry.request("GET", "/api/v1/members/EE:GOV:70000310", key=officer)
    assert gone.status == 404 and gone.json()["error"]["code"] == "member_not_found"


def test_a_member_twice_or_of_an_unknown_class_is_refused(registry: RegistryApi, officer: str) -> None:
    """A second add is 409; a member of a class that does not exist is refused, naming the class."""
    unknown = registry.request("POST", "/api/v1/members", json_body={"member_id": MEMBER, "member_name": "Riik"},
                               key=officer, check=False)
    assert unknown.status == 404 and unknown.json()["error"]["code"] == "member_class_not_found"
    _with_class(registry, officer)
    registry.request("POST", "/api/v1/members", json_body={"member_id": MEMBER, "member_name": "Riik"}, key=officer)
    again = registry.request("POST", "/api/v1/members", json_body={"member_id": MEMBER, "member_name": "Riik"},
                             key=officer)
    assert again.status == 409 and again.json()["error"]["code"] == "member_exists"


def test_subsystems_are_added_listed_and_deleted(registry: RegistryApi, officer: str) -> None:
    """POST /subsystems adds one to a member; the member lists it; DELETE removes it."""
    _with_class(registry, officer)
    registry.request("POST", "/api/v1/members", json_body={"member_id": MEMBER, "member_name": "Riik"}, key=officer)
    added = registry.request("POST", "/api/v1/subsystems",
                             json_body={"subsystem_id": {**MEMBER, "subsystem_code": "reg"}}, key=officer)
    assert added.status == 201
    assert added.json()["client_id"]["encoded_id"] == "EE:GOV:70000310:reg"
    listed = registry.request("GET", "/api/v1/members/EE:GOV:70000310/subsystems", key=officer).json()
    assert [s["subsystem_id"]["subsystem_code"] for s in listed] == ["reg"]
    assert listed[0]["used_security_servers"] == []
    assert registry.request("DELETE", "/api/v1/subsystems/EE:GOV:70000310:reg", key=officer).status == 204
    assert registry.request("GET", "/api/v1/members/EE:GOV:70000310/subsystems", key=officer).json() == []


def test_the_observer_reads_but_does_not_add(registry: RegistryApi, officer: str) -> None:
    """An observer key may list member classes but adding a member is 403; the refusal is in the audit log."""
    observer = registry.api_key(Role.OBSERVER)
    assert registry.request("GET", "/api/v1/member-classes", key=observer).status == 200
    refused = registry.request("POST", "/api/v1/members", json_body={"member_id": MEMBER, "member_name": "x"},
                               key=observer)
    assert refused.status == 403
    lines = (registry.root / "management-audit.jsonl").read_text().splitlines()
    assert '"operation":"addMember"' in lines[-1] and '"status":403' in lines[-1]


def test_unknown_fields_and_bad_identifiers_are_bad_requests(registry: RegistryApi, officer: str) -> None:
    """An unknown body field and a malformed member id are 400 with X-Road's error object."""
    unknown = registry.request("POST", "/api/v1/member-classes", json_body={"code": "X", "description": "y", "z": 1},
                               key=officer)
    assert unknown.status == 400 and unknown.json()["error"] == {"code": "unknown_field", "metadata": ["z"]}
    bad = registry.request("GET", "/api/v1/members/EE:GOV", key=officer)
    assert bad.status == 400 and bad.json()["error"]["code"] == "invalid_client_id"


def test_clients_are_searched_filtered_and_paged(registry: RegistryApi, officer: str) -> None:
    """GET /clients lists members and subsystems; ``q``, ``client_type`` and paging narrow it."""
    _with_class(registry, officer)
    registry.request("POST", "/api/v1/members", json_body={"member_id": MEMBER, "member_name": "Riik"}, key=officer)
    registry.request("POST", "/api/v1/subsystems", json_body={"subsystem_id": {**MEMBER, "subsystem_code": "reg"}},
                     key=officer)
    everything = registry.request("GET", "/api/v1/clients", key=officer).json()
    assert [c["client_id"]["encoded_id"] for c in everything["items"]] == ["EE:GOV:70000310", "EE:GOV:70000310:reg"]
    subsystems = registry.request("GET", "/api/v1/clients", key=officer,
                                  query={"q": "reg", "client_type": "SUBSYSTEM"}).json()
    assert [c["client_id"]["encoded_id"] for c in subsystems["items"]] == ["EE:GOV:70000310:reg"]
    page = registry.request("GET", "/api/v1/clients", key=officer, query={"limit": "1", "offset": "1"}).json()
    assert page["paging_metadata"] == {"total_items": 2, "items": 1, "limit": 1, "offset": 1}
