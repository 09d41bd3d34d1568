"""``/members`` and ``/subsystems``: add, show, rename, delete; a member's subsystems and servers."""

from __future__ import annotations

from typing import Any, Mapping

from central_registry.admin import global_groups as admin_groups
from central_registry.admin import members as admin
from central_registry.admin import security_servers as admin_servers
from central_registry.management.context import RegistryContext
from central_registry.management.operations.common import (
    PREFIX,
    client_id_json,
    member_json,
    parse_member_id,
    parse_server_id,
    parse_subsystem_id,
    server_id_text,
)
from central_registry.management.operations.global_groups import EPOCH
from central_registry.management.operations.security_servers import server_json
from central_registry.management.permissions import roles_for
from security_server.core.errors import BusError
from security_server.core.identifiers import ClientId
from security_server.management.api import ApiRequest, ApiResponse, Operation, no_content, string_field
from security_server.management.errors import bad_request
from security_server.management.ids import client_id_text

_ID_FIELDS = frozenset({"member_class", "member_code"})


def _new_id(data: Any, name: str, with_subsystem: bool) -> ClientId:
    """``NewMemberId`` / ``NewSubsystemId``: class, code (and subsystem code) of this registry's instance."""
    if not isinstance(data, Mapping):
        raise bad_request("invalid_field", name)
    allowed = _ID_FIELDS | {"subsystem_code", "instance_id", "type", "encoded_id"}
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise bad_request("unknown_field", *unknown)
    member_class, member_code = string_field(data, "member_class"), string_field(data, "member_code")
    subsystem = string_field(data, "subsystem_code", required=with_subsystem)
    assert member_class is not None and member_code is not None
    return _client(data.get("instance_id"), member_class, member_code, subsystem if with_subsystem else None, name)


def _client(instance: Any, member_class: str, member_code: str, subsystem: str | None, name: str) -> ClientId:
    try:
        return ClientId(str(instance), member_class, member_code, subsystem)
    except BusError as err:
        raise bad_request("invalid_field", name) from err


def add_member(context: RegistryContext, request: ApiRequest) -> ApiResponse:
    """POST /members."""
    data = request.json_object(frozenset({"member_id", "member_name"}), frozenset({"member_id", "member_name"}))
    name = string_field(data, "member_name")
    assert name is not None
    with context.store() as store:
        instance = store.settings().instance
        raw = dict(data["member_id"]) if isinstance(data["member_id"], Mapping) else data["member_id"]
        if isinstance(raw, dict):
            raw.setdefault("instance_id", instance)
        member_id = _new_id(raw, "member_id", with_subsystem=False)
        member = admin.add_member(store, member_id, name)
    return ApiResponse(201, member_json(member))


def get_member(context: RegistryContext, request: ApiRequest) -> ApiResponse:
    """GET /members/{member_id}."""
    member_id = parse_member_id(request.params["member_id"])
    with context.store() as store:
        return ApiResponse(200, member_json(admin.member(store, member_id)))


def rename_member(context: RegistryContext, request: ApiRequest) -> ApiResponse:
    """PATCH /members/{member_id}."""
    data = request.json_object(frozenset({"member_name"}), frozenset({"member_name"}))
    name = string_field(data, "member_name")
    assert name is not None
    member_id = parse_member_id(request.params["member_id"])
    with context.store() as store:
        return ApiResponse(200, member_json(admin.rename_member(store, member_id, name)))


def delete_member(context: RegistryContext, request: ApiRequest) -> ApiResponse:
    """DELETE /members/{member_id}."""
    member_id = parse_member_id(request.params["member_id"])
    with context.store() as store:
        admin.delete_member(store, member_id)
    return no_content()


def member_subsystems(context: RegistryContext, request: ApiRequest) -> ApiResponse:
    """GET /members/{member_id}/subsystems: each with the servers it is registered on."""
    member_id = parse_member_id(request.params["member_id"])
    with context.store() as store:
        member = admin.member(store, member_id)
        servers = admin_servers.security_servers(store)
        names = admin.subsystem_names(store, member_id)
    answer = []
    for code in member.subsystems:
        subsystem = member_id.subsystem(code)
        used = [
            {"encoded_id": server_id_text(s.id), "server_code": s.id.server_code, "server_owner": client_id_text(s.id.owner),
             "status": "APPROVED"}
            for s in servers if subsystem in s.clients
        ]
        shown: dict[str, Any] = {"subsystem_id": client_id_json(subsystem), "used_security_servers": used}
        if code in names:
            shown["subsystem_name"] = names[code]
        answer.append(shown)
    return ApiResponse(200, answer)


def owned_servers(context: RegistryContext, request: ApiRequest) -> ApiResponse:
    """GET /members/{member_id}/owned-servers."""
    member_id = parse_member_id(request.params["member_id"])
    with context.store() as store:
        member = admin.member(store, member_id)
        servers = [s for s in admin_servers.security_servers(store) if s.id.owner == member_id]
    return ApiResponse(200, [server_json(s, member.name) for s in servers])


def member_global_groups(context: RegistryContext, request: ApiRequest) -> ApiResponse:
    """GET /members/{member_id}/global-groups: the groups it or one of its subsystems is in."""
    member_id = parse_member_id(request.params["member_id"])
    with context.store() as store:
        admin.member(store, member_id)
        found = admin_groups.groups_of_member(store, member_id)
    return ApiResponse(200, [
        {"group_code": group.id.group_code, "subsystem": client.subsystem_code or "", "added_to_group": EPOCH}
        for group, client in found
    ])


def used_servers(context: RegistryContext, request: ApiRequest) -> ApiResponse:
    """GET /members/{member_id}/used-servers: the servers that host it or one of its subsystems."""
    member_id = parse_member_id(request.params["member_id"])
    with context.store() as store:
        admin.member(store, member_id)
        names = {str(m.id): m.name for m in admin.members(store)}
        servers = admin_servers.servers_used_by(store, member_id)
    return ApiResponse(200, [server_json(s, names.get(str(s.id.owner), "")) for s in servers])


def unregister_member(context: RegistryContext, request: ApiRequest) -> ApiResponse:
    """DELETE /members/{member_id}/servers/{server_id}: end the member's registration on a server it does not own."""
    member_id = parse_member_id(request.params["member_id"])
    with context.store() as store:
        admin_servers.unregister_client(store, parse_server_id(request.params["server_id"]), member_id)
    return no_content()


def unregister_subsystem(context: RegistryContext, request: ApiRequest) -> ApiResponse:
    """DELETE /subsystems/{subsystem_id}/servers/{server_id}: end the subsystem's registration on a server."""
    subsystem = parse_subsystem_id(request.params["subsystem_id"])
    with context.store() as store:
        admin_servers.unregister_client(store, parse_server_id(request.params["server_id"]), subsystem)
    return no_content()


def add_subsystem(context: RegistryContext, request: ApiRequest) -> ApiResponse:
    """POST /subsystems."""
    data = request.json_object(frozenset({"subsystem_id", "subsystem_name"}), frozenset({"subsystem_id"}))
    name = _subsystem_name(data)
    with context.store() as store:
        raw = dict(data["subsystem_id"]) if isinstance(data["subsystem_id"], Mapping) else data["subsystem_id"]
        if isinstance(raw, dict):
            raw.setdefault("instance_id", store.settings().instance)
        subsystem = _new_id(raw, "subsystem_id", with_subsystem=True)
        with store.transaction("subsystem_added_by_api", {"subsystem": str(subsystem)}, audit=False):
            admin.add_subsystem(store, subsystem)
            if name:
                admin.rename_subsystem(store, subsystem, name)
        member = admin.member(store, subsystem.member)
    return ApiResponse(201, {"member_name": member.name, "client_id": client_id_json(subsystem)})


def _subsystem_name(data: Mapping[str, Any]) -> str | None:
    """X-Road's ``SubsystemName``: up to 255 characters, empty for none."""
    name = data.get("subsystem_name")
    if name is None or name == "":
        return None
    return string_field(data, "subsystem_name", required=False)


def rename_subsystem(context: RegistryContext, request: ApiRequest) -> ApiResponse:
    """PATCH /subsystems/{subsystem_id} (updateSubsystemName): the name is the registry's own record (fedbus's
    shared parameters have no ``subsystemName``); answers X-Road's ``Client`` (its member's name)."""
    data = request.json_object(frozenset({"subsystem_name"}))
    name = _subsystem_name(data)
    subsystem = parse_subsystem_id(request.params["subsystem_id"])
    with context.store() as store:
        admin.rename_subsystem(store, subsystem, name)
        member = admin.member(store, subsystem.member)
    return ApiResponse(200, {"member_name": member.name, "client_id": client_id_json(subsystem)})


def delete_subsystem(context: RegistryContext, request: ApiRequest) -> ApiResponse:
    """DELETE /subsystems/{subsystem_id}."""
    subsystem = parse_subsystem_id(request.params["subsystem_id"])
    with context.store() as store:
        admin.delete_subsystem(store, subsystem)
    return no_content()


def operations() -> list[Operation]:
    """The operations of this area."""
    member = f"{PREFIX}/members/{{member_id}}"
    return [
        Operation("POST", f"{PREFIX}/members", "addMember", roles_for("addMember"), add_member),
        Operation("GET", member, "getMember", roles_for("getMember"), get_member),
        Operation("PATCH", member, "updateMemberName", roles_for("updateMemberName"), rename_member),
        Operation("DELETE", member, "deleteMember", roles_for("deleteMember"), delete_member),
        Operation("GET", f"{member}/subsystems", "getSubsystems", roles_for("getSubsystems"), member_subsystems),
        Operation("GET", f"{member}/owned-servers", "getOwnedServers", roles_for("getOwnedServers"), owned_servers),
        Operation("GET", f"{member}/global-groups", "getMemberGlobalGroups", roles_for("getMemberGlobalGroups"),
                  member_global_groups),
        Operation("GET", f"{member}/used-servers", "getUsedServers", roles_for("getUsedServers"), used_servers),
        Operation("DELETE", f"{member}/servers/{{server_id}}", "unregisterMember", roles_for("unregisterMember"),
                  unregister_member),
        Operation("DELETE", f"{PREFIX}/subsystems/{{subsystem_id}}/servers/{{server_id}}", "unregisterSubsystem",
                  roles_for("unregisterSubsystem"), unregister_subsystem),
        Operation("POST", f"{PREFIX}/subsystems", "addSubsystem", roles_for("addSubsystem"), add_subsystem),
        Operation("DELETE", f"{PREFIX}/subsystems/{{subsystem_id}}", "deleteSubsystem", roles_for("deleteSubsystem"),
                  delete_subsystem),
        Operation("PATCH", f"{PREFIX}/subsystems/{{subsystem_id}}", "updateSubsystemName",
                  roles_for("updateSubsystemName"), rename_subsystem),
    ]
