"""``/global-groups``: list, add, show, change the description, delete; members added, searched and removed.

fedbus records no time for a group or a membership: ``created_at`` and ``updated_at`` are the epoch (as the
security server's API answers for times it does not keep), and a membership's ``id`` is its position in the
group's member list (by identifier).
"""

from __future__ import annotations

from typing import Any

from central_registry.admin import global_groups as admin
from central_registry.admin import members as admin_members
from central_registry.management.context import RegistryContext
from central_registry.management.operations.common import PREFIX, client_id_json, paged
from central_registry.management.permissions import roles_for
from central_registry.store import GlobalGroup
from security_server.management.api import ApiRequest, ApiResponse, Operation, no_content, string_field
from security_server.management.errors import bad_request
from security_server.management.ids import client_id_text, parse_client_id

EPOCH = "1970-01-01T00:00:00.000Z"
"""A date-time fedbus does not keep."""


def group_json(group: GlobalGroup) -> dict[str, Any]:
    """X-Road's ``GlobalGroupResource``."""
    return {"code": group.id.group_code, "description": group.description, "member_count": len(group.members),
            "created_at": EPOCH, "updated_at": EPOCH}


def find_groups(context: RegistryContext, request: ApiRequest) -> ApiResponse:
    """GET /global-groups."""
    with context.store() as store:
        return ApiResponse(200, [group_json(g) for g in admin.global_groups(store)])


def add_group(context: RegistryContext, request: ApiRequest) -> ApiResponse:
    """POST /global-groups."""
    data = request.json_object(frozenset({"code", "description"}), frozenset({"code", "description"}))
    code, description = string_field(data, "code"), string_field(data, "description")
    assert code is not None and description is not None
    with context.store() as store:
        return ApiResponse(201, group_json(admin.add_global_group(store, code, description)))


def get_group(context: RegistryContext, request: ApiRequest) -> ApiResponse:
    """GET /global-groups/{group_code}."""
    with context.store() as store:
        return ApiResponse(200, group_json(admin.global_group(store, request.params["group_code"])))


def update_group(context: RegistryContext, request: ApiRequest) -> ApiResponse:
    """PATCH /global-groups/{group_code}: the description."""
    data = request.json_object(frozenset({"description"}), frozenset({"description"}))
    description = string_field(data, "description")
    assert description is not None
    with context.store() as store:
        return ApiResponse(200, group_json(admin.update_description(store, request.params["group_code"], description)))


def delete_group(context: RegistryContext, request: ApiRequest) -> ApiResponse:
    """DELETE /global-groups/{group_code}."""
    with context.store() as store:
        admin.delete_global_group(store, request.params["group_code"])
    return no_content()


def add_members(context: RegistryContext, request: ApiRequest) -> ApiResponse:
    """POST /global-groups/{group_code}/members/add: ``{"items": ["EE:GOV:123", "EE:GOV:123:SUB"]}``; answers the
    ones that were not members yet."""
    data = request.json_object(frozenset({"items"}), frozenset({"items"}))
    items = data["items"]
    if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
        raise bad_request("invalid_field", "items")
    clients = [parse_client_id(i) for i in items]
    with context.store() as store:
        added = admin.add_members(store, request.params["group_code"], clients)
    return ApiResponse(201, {"items": [client_id_text(c) for c in added]})


def find_members(context: RegistryContext, request: ApiRequest) -> ApiResponse:
    """POST /global-groups/{group_code}/members: X-Road's ``GroupMembersFilter`` (``query``, ``member_class``,
    ``types``, ``codes``, ``subsystems``) with paging in its ``paging_sorting``."""
    fields = frozenset({"query", "member_class", "instance", "codes", "subsystems", "types", "paging_sorting"})
    data = request.json_object(fields) if request.body.strip() else {}
    with context.store() as store:
        group = admin.global_group(store, request.params["group_code"])
        names = {str(m.id): m.name for m in admin_members.members(store)}
    rows: list[dict[str, Any]] = [
        {"id": number, "created_at": EPOCH, "client_id": client_id_json(client),
         "name": names.get(str(client.member), client.member_code)}
        for number, client in enumerate(group.members, start=1)
    ]
    text = (data.get("query") or "").lower()
    if text:
        rows = [r for r in rows if text in r["client_id"]["encoded_id"].lower() or text in r["name"].lower()]
    if data.get("member_class"):
        rows = [r for r in rows if r["client_id"]["member_class"] == data["member_class"]]
    if data.get("types"):
        rows = [r for r in rows if r["client_id"]["type"] in data["types"]]
    if data.get("codes"):
        rows = [r for r in rows if r["client_id"]["member_code"] in data["codes"]]
    if data.get("subsystems"):
        rows = [r for r in rows if r["client_id"].get("subsystem_code") in data["subsystems"]]
    paging = data.get("paging_sorting") or {}
    if not isinstance(paging, dict):
        raise bad_request("invalid_field", "paging_sorting")
    query = {k: (str(v).lower() if isinstance(v, bool) else str(v),) for k, v in paging.items()}
    paging_request = ApiRequest(request.method, request.path, request.params, query, b"", None, request.principal)
    keys = {"id": lambda r: r["id"], "name": lambda r: r["name"],
            "client_id": lambda r: r["client_id"]["encoded_id"]}
    page, metadata = paged(paging_request, rows, keys, "id")
    return ApiResponse(200, {"items": page, "paging_metadata": metadata})


def filter_model(context: RegistryContext, request: ApiRequest) -> ApiResponse:
    """GET /global-groups/{group_code}/members/filter-model: the values the group's members have, each sorted, to
    fill ``GroupMembersFilter`` with."""
    with context.store() as store:
        group = admin.global_group(store, request.params["group_code"])
    return ApiResponse(200, {
        "instances": sorted({c.instance for c in group.members}),
        "member_classes": sorted({c.member_class for c in group.members}),
        "codes": sorted({c.member_code for c in group.members}),
        "subsystems": sorted({c.subsystem_code for c in group.members if c.subsystem_code is not None}),
    })


def remove_member(context: RegistryContext, request: ApiRequest) -> ApiResponse:
    """DELETE /global-groups/{group_code}/members/{client_id}."""
    client = parse_client_id(request.params["client_id"])
    with context.store() as store:
        admin.remove_member(store, request.params["group_code"], client)
    return no_content()


def operations() -> list[Operation]:
    """The operations of this area."""
    one = f"{PREFIX}/global-groups/{{group_code}}"
    return [
        Operation("GET", f"{PREFIX}/global-groups", "findGlobalGroups", roles_for("findGlobalGroups"), find_groups),
        Operation("POST", f"{PREFIX}/global-groups", "addGlobalGroup", roles_for("addGlobalGroup"), add_group),
        Operation("GET", one, "getGlobalGroup", roles_for("getGlobalGroup"), get_group),
        Operation("PATCH", one, "updateGlobalGroupDescription", roles_for("updateGlobalGroupDescription"),
                  update_group),
        Operation("DELETE", one, "deleteGlobalGroup", roles_for("deleteGlobalGroup"), delete_group),
        Operation("POST", f"{one}/members/add", "addGlobalGroupMembers", roles_for("addGlobalGroupMembers"),
                  add_members),
        Operation("POST", f"{one}/members", "findGlobalGroupMembers", roles_for("findGlobalGroupMembers"),
                  find_members),
        Operation("GET", f"{one}/members/filter-model", "getGroupMembersFilterModel",
                  roles_for("getGroupMembersFilterModel"), filter_model),
        Operation("DELETE", f"{one}/members/{{client_id}}", "deleteGlobalGroupMember",
                  roles_for("deleteGlobalGroupMember"), remove_member),
    ]
