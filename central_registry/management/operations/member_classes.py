"""``/member-classes``: list, add, change the description, delete one no member uses."""

from __future__ import annotations

from central_registry.admin import member_classes as admin
from central_registry.management.context import RegistryContext
from central_registry.management.operations.common import PREFIX
from central_registry.management.permissions import roles_for
from security_server.management.api import ApiRequest, ApiResponse, Operation, no_content, string_field


def list_classes(context: RegistryContext, request: ApiRequest) -> ApiResponse:
    """GET /member-classes."""
    with context.store() as store:
        classes = admin.member_classes(store)
    return ApiResponse(200, [{"code": code, "description": text} for code, text in classes.items()])


def add_class(context: RegistryContext, request: ApiRequest) -> ApiResponse:
    """POST /member-classes."""
    data = request.json_object(frozenset({"code", "description"}), frozenset({"code", "description"}))
    code, description = string_field(data, "code"), string_field(data, "description")
    assert code is not None and description is not None
    with context.store() as store:
        admin.add_member_class(store, code, description)
    return ApiResponse(201, {"code": code, "description": description})


def update_class(context: RegistryContext, request: ApiRequest) -> ApiResponse:
    """PATCH /member-classes/{code}."""
    data = request.json_object(frozenset({"description"}), frozenset({"description"}))
    description = string_field(data, "description")
    assert description is not None
    code = request.params["code"]
    with context.store() as store:
        admin.update_member_class(store, code, description)
    return ApiResponse(200, {"code": code, "description": description})


def delete_class(context: RegistryContext, request: ApiRequest) -> ApiResponse:
    """DELETE /member-classes/{code}."""
    with context.store() as store:
        admin.delete_member_class(store, request.params["code"])
    return no_content()


def operations() -> list[Operation]:
    """The operations of this area."""
    return [
        Operation("GET", f"{PREFIX}/member-classes", "getMemberClasses", roles_for("getMemberClasses"), list_classes),
        Operation("POST", f"{PREFIX}/member-classes", "addMemberClass", roles_for("addMemberClass"), add_class),
        Operation("PATCH", f"{PREFIX}/member-classes/{{code}}", "updateMemberClass", roles_for("updateMemberClass"),
                  update_class),
        Operation("DELETE", f"{PREFIX}/member-classes/{{code}}", "deleteMemberClass", roles_for("deleteMemberClass"),
                  delete_class),
    ]
