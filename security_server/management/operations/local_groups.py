"""``/clients/{id}/local-groups`` and ``/local-groups/{group_id}``: a client's local groups and their members.

fedbus keeps no names of other members (X-Road reads them from the global configuration) nor when a member was
added: ``member_name`` is the member code, ``created_at`` and ``updated_at`` the epoch, until the store keeps them.
"""

from __future__ import annotations

import re
from typing import Any

from security_server.admin import local_groups
from security_server.core.errors import InvalidClientIdentifier
from security_server.core.identifiers import ClientId, LocalGroupId
from security_server.management.api import (
    ApiRequest,
    ApiResponse,
    Operation,
    no_content,
    string_field,
)
from security_server.management.context import OperationContext
from security_server.management.errors import bad_request
from security_server.management.ids import client_id_text, local_group_id_text, parse_client_id, parse_local_group_id
from security_server.management.operations.common import EPOCH, PREFIX
from security_server.management.permissions import roles_for
from security_server.serverconf.store import LocalGroup


def group_json(group: LocalGroup) -> dict[str, Any]:
    """X-Road's ``LocalGroup`` with its members."""
    members = sorted(group.members, key=client_id_text)
    return {
        "id": local_group_id_text(group.owner, group.id),
        "code": group.id.group_code,
        "description": group.description,
        "member_count": len(members),
        "updated_at": EPOCH,
        "members": [
            {"id": client_id_text(m), "member_name": m.member_code, "created_at": EPOCH}
            | ({"subsystem_name": m.subsystem_code} if m.subsystem_code else {})
            for m in members
        ],
    }


def get_client_local_groups(context: OperationContext, request: ApiRequest) -> ApiResponse:
    """``GET /clients/{id}/local-groups``."""
    owner = parse_client_id(request.params["id"])
    return ApiResponse(200, [group_json(g) for g in local_groups.hosted_groups(context.server_dir, owner)])


def add_client_local_group(context: OperationContext, request: ApiRequest) -> ApiResponse:
    """``POST /clients/{id}/local-groups``: ``LocalGroupAdd`` (code, description)."""
    owner = parse_client_id(request.params["id"])
    data = request.json_object(frozenset({"code", "description"}), frozenset({"code", "description"}))
    code, description = string_field(data, "code"), string_field(data, "description")
    try:
        group_code = LocalGroupId(str(code))
    except InvalidClientIdentifier as err:
        raise bad_request("invalid_field", "code") from err
    created = local_groups.create_group(context.server_dir, owner, group_code, str(description))
    return ApiResponse(201, group_json(created))


def get_local_group(context: OperationContext, request: ApiRequest) -> ApiResponse:
    """``GET /local-groups/{group_id}``."""
    owner, code = parse_local_group_id(request.params["group_id"])
    return ApiResponse(200, group_json(local_groups.get_group(context.server_dir, owner, code)))


_DESCRIPTION = re.compile(r"[a-zA-Z0-9\-_,.;:!? ]{1,255}")
"""X-Road's ``LocalGroupDescription.description`` pattern and length."""


def update_local_group(context: OperationContext, request: ApiRequest) -> ApiResponse:
    """``PATCH /local-groups/{group_id}``: ``LocalGroupDescription``; 200 with the group."""
    owner, code = parse_local_group_id(request.params["group_id"])
    data = request.json_object(frozenset({"description"}), frozenset({"description"}))
    description = string_field(data, "description")
    if not _DESCRIPTION.fullmatch(str(description)):
        raise bad_request("invalid_field", "description")
    return ApiResponse(200, group_json(local_groups.update_description(context.server_dir, owner, code, str(description))))


def delete_local_group(context: OperationContext, request: ApiRequest) -> ApiResponse:
    """``DELETE /local-groups/{group_id}``: the group, its members and the access rights granted to it."""
    owner, code = parse_local_group_id(request.params["group_id"])
    local_groups.delete_group(context.server_dir, owner, code)
    return no_content()


def _members(request: ApiRequest) -> list[ClientId]:
    data = request.json_object(frozenset({"items"}), frozenset({"items"}))
    items = data["items"]
    if not isinstance(items, list) or not items or not all(isinstance(i, str) for i in items):
        raise bad_request("invalid_field", "items")
    return [parse_client_id(i) for i in items]


def add_local_group_member(context: OperationContext, request: ApiRequest) -> ApiResponse:
    """``POST /local-groups/{group_id}/members``: ``Members``; answers the members added."""
    owner, code = parse_local_group_id(request.params["group_id"])
    members = _members(request)
    local_groups.add_members(context.server_dir, owner, code, members)
    return ApiResponse(201, {"items": [client_id_text(m) for m in dict.fromkeys(members)]})


def delete_local_group_member(context: OperationContext, request: ApiRequest) -> ApiResponse:
    """``POST /local-groups/{group_id}/members/delete``."""
    owner, code = parse_local_group_id(request.params["group_id"])
    local_groups.remove_members(context.server_dir, owner, code, _members(request))
    return no_content()


OPERATIONS = (
    Operation("GET", f"{PREFIX}/clients/{{id}}/local-groups", "getClientLocalGroups",
              roles_for("getClientLocalGroups"), get_client_local_groups),
    Operation("POST", f"{PREFIX}/clients/{{id}}/local-groups", "addClientLocalGroup",
              roles_for("addClientLocalGroup"), add_client_local_group),
    Operation("GET", f"{PREFIX}/local-groups/{{group_id}}", "getLocalGroup", roles_for("getLocalGroup"),
              get_local_group),
    Operation("PATCH", f"{PREFIX}/local-groups/{{group_id}}", "updateLocalGroup", roles_for("updateLocalGroup"),
              update_local_group),
    Operation("DELETE", f"{PREFIX}/local-groups/{{group_id}}", "deleteLocalGroup", roles_for("deleteLocalGroup"),
              delete_local_group),
    Operation("POST", f"{PREFIX}/local-groups/{{group_id}}/members", "addLocalGroupMember",
              roles_for("addLocalGroupMember"), add_local_group_member),
    Operation("POST", f"{PREFIX}/local-groups/{{group_id}}/members/delete", "deleteLocalGroupMember",
              roles_for("deleteLocalGroupMember"), delete_local_group_member),
)
