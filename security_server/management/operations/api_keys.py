"""``/api-keys``: API keys made, listed, changed and revoked by a system administrator (UG-SS §19.1).

Not in X-Road's OpenAPI file (its own controller); the shapes are X-Road's: ``POST`` takes a JSON array of role
names and answers ``{"id", "key", "roles"}`` with the key shown this once; the others answer ``{"id", "roles"}``.
Only a person may manage keys: these operations take a user's password (HTTP Basic) or a session, never a key.
"""

from __future__ import annotations

from typing import Any

from security_server.management.api import (
    Access,
    ApiRequest,
    ApiResponse,
    Operation,
    no_content,
)
from security_server.management.context import OperationContext
from security_server.management.credentials import ApiKey
from security_server.management.errors import ApiError, bad_request
from security_server.management.operations.common import PREFIX
from security_server.management.permissions import roles_for
from security_server.management.roles import Role, UnknownRole, parse_roles


def _roles(request: ApiRequest) -> frozenset[Role]:
    names = request.json()
    if not isinstance(names, list):
        raise bad_request("invalid_json", "the body is a JSON array of role names")
    try:
        return parse_roles(names)
    except UnknownRole as err:
        raise bad_request("invalid_role", str(err)) from err


def _key_id(request: ApiRequest) -> int:
    text = request.params["id"]
    if not text.isdigit() or len(text) > 18:
        raise ApiError(404, "api_key_not_found", text)
    return int(text)


def key_json(key: ApiKey) -> dict[str, Any]:
    """A key without its secret."""
    return {"id": key.id, "roles": sorted(key.roles)}


def create_api_key(context: OperationContext, request: ApiRequest) -> ApiResponse:
    """``POST /api-keys``."""
    roles = _roles(request)
    assert request.principal is not None
    with context.credentials() as store:
        made = store.create_api_key(roles, created_by=request.principal.name, now=context.now())
    return ApiResponse(200, {"key": made.key, **key_json(made.api_key)})


def list_api_keys(context: OperationContext, request: ApiRequest) -> ApiResponse:
    """``GET /api-keys``."""
    with context.credentials() as store:
        return ApiResponse(200, [key_json(k) for k in store.api_keys()])


def get_api_key(context: OperationContext, request: ApiRequest) -> ApiResponse:
    """``GET /api-keys/{id}``."""
    with context.credentials() as store:
        return ApiResponse(200, key_json(store.api_key(_key_id(request))))


def update_api_key(context: OperationContext, request: ApiRequest) -> ApiResponse:
    """``PUT /api-keys/{id}``: replace the roles."""
    key_id = _key_id(request)
    roles = _roles(request)
    with context.credentials() as store:
        return ApiResponse(200, key_json(store.update_api_key(key_id, roles)))


def revoke_api_key(context: OperationContext, request: ApiRequest) -> ApiResponse:
    """``DELETE /api-keys/{id}``."""
    key_id = _key_id(request)
    with context.credentials() as store:
        store.revoke_api_key(key_id)
    return no_content()


_KEYS = f"{PREFIX}/api-keys"
OPERATIONS = (
    Operation("POST", _KEYS, "createApiKey", roles_for("createApiKey"), create_api_key, Access.KEY_ADMIN),
    Operation("GET", _KEYS, "listApiKeys", roles_for("listApiKeys"), list_api_keys, Access.KEY_ADMIN),
    Operation("GET", f"{_KEYS}/{{id}}", "getApiKey", roles_for("getApiKey"), get_api_key, Access.KEY_ADMIN),
    Operation("PUT", f"{_KEYS}/{{id}}", "updateApiKey", roles_for("updateApiKey"), update_api_key, Access.KEY_ADMIN),
    Operation("DELETE", f"{_KEYS}/{{id}}", "revokeApiKey", roles_for("revokeApiKey"), revoke_api_key, Access.KEY_ADMIN),
)
