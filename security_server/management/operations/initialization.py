"""``/initialization``: X-Road's second initialisation step, and how far initialisation went."""

from __future__ import annotations

from security_server.admin import initialization
from security_server.management.api import (
    ApiRequest,
    ApiResponse,
    Operation,
    bool_field,
    string_field,
)
from security_server.management.context import OperationContext
from security_server.management.errors import ApiError
from security_server.management.operations.common import PREFIX
from security_server.management.permissions import roles_for

_FIELDS = frozenset({"owner_member_class", "owner_member_code", "security_server_code", "software_token_pin", "ignore_warnings"})


def init_security_server(context: OperationContext, request: ApiRequest) -> ApiResponse:
    """``POST /initialization``: owner member (of the uploaded anchor's instance) and server code."""
    data = request.json_object(_FIELDS)
    names = {"owner_member_class": "member_class", "owner_member_code": "member_code",
             "security_server_code": "server_code"}
    missing = [f"{label}_not_provided" for name, label in names.items() if not data.get(name)]
    if missing:
        raise ApiError(400, "invalid_init_params", *missing)
    member_class = string_field(data, "owner_member_class")
    member_code = string_field(data, "owner_member_code")
    server_code = string_field(data, "security_server_code")
    bool_field(data, "ignore_warnings")
    # The soft token's PIN: its keys are encrypted under it and the token is logged in in this process (the
    # running server's); without one the token keeps its keys in clear until a PIN is set (docs/management-api.md).
    pin = string_field(data, "software_token_pin", required=False)
    assert member_class is not None and member_code is not None and server_code is not None
    initialization.initialise_with_pending_anchor(
        context.server_dir, member_class, member_code, server_code, token_pin=pin)
    return ApiResponse(201)


def get_initialization_status(context: OperationContext, request: ApiRequest) -> ApiResponse:
    """``GET /initialization/status``."""
    status = initialization.initialisation_status(context.server_dir)
    return ApiResponse(200, {
        "is_anchor_imported": status.anchor_imported,
        "is_server_code_initialized": status.server_code_initialised,
        "is_server_owner_initialized": status.owner_initialised,
        "software_token_init_status": status.token.value,
        "enforce_token_pin_policy": False,
    })


OPERATIONS = (
    Operation("POST", f"{PREFIX}/initialization", "initSecurityServer", roles_for("initSecurityServer"),
              init_security_server),
    Operation("GET", f"{PREFIX}/initialization/status", "getInitializationStatus",
              roles_for("getInitializationStatus"), get_initialization_status),
)
