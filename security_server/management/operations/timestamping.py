"""``/timestamping-services`` and ``/system/timestamping-services``: the time-stamping authorities.

The approved services are the global configuration's (``approvedTSA``), read from the running server's
configuration client. The configured ones are those the message log uses (:mod:`security_server.admin.timestamping`):
the chosen ones, or every approved one while none is chosen; adding one to an empty choice makes it the only one.
The global configuration carries no cost type: ``cost_type`` is UNDEFINED.
"""

from __future__ import annotations

from typing import Any

from security_server.admin import timestamping
from security_server.admin.errors import ActionNotPossible
from security_server.core.globalconf import GlobalConf
from security_server.management.api import ApiRequest, ApiResponse, Operation, no_content, string_field
from security_server.management.context import OperationContext
from security_server.management.errors import ApiError, bad_request
from security_server.management.operations.common import PREFIX
from security_server.management.permissions import roles_for
from security_server.serverconf.store import TimestampingService


def _conf(context: OperationContext) -> GlobalConf:
    if context.global_conf is None:
        raise ApiError(404, "global_conf_unavailable", "the management API runs without the server")
    conf: GlobalConf = context.global_conf()
    return conf


def _json(service: TimestampingService) -> dict[str, Any]:
    return {"name": service.name, "url": service.url, "cost_type": "UNDEFINED"}


def get_approved_timestamping_services(context: OperationContext, request: ApiRequest) -> ApiResponse:
    """``GET /timestamping-services``."""
    return ApiResponse(200, [_json(s) for s in timestamping.approved(_conf(context))])


def get_configured_timestamping_services(context: OperationContext, request: ApiRequest) -> ApiResponse:
    """``GET /system/timestamping-services``: the services the message log uses."""
    return ApiResponse(200, [_json(s) for s in timestamping.in_use(context.server_dir, _conf(context))])


def _url(request: ApiRequest) -> str:
    """The ``url`` of X-Road's ``TimestampingService`` body (``name`` and ``cost_type`` are the approved one's)."""
    data = request.json_object(frozenset({"name", "url", "cost_type"}), frozenset({"url"}))
    string_field(data, "name", required=False)
    if data.get("cost_type", "UNDEFINED") not in ("FREE", "PAID", "UNDEFINED"):
        raise bad_request("invalid_field", "cost_type")
    return str(string_field(data, "url"))


def add_configured_timestamping_service(context: OperationContext, request: ApiRequest) -> ApiResponse:
    """``POST /system/timestamping-services``: use an approved service (404 when not approved, 409 when used)."""
    return ApiResponse(201, _json(timestamping.choose(context.server_dir, _conf(context), _url(request))))


def delete_configured_timestamping_service(context: OperationContext, request: ApiRequest) -> ApiResponse:
    """``POST /system/timestamping-services/delete``: stop using one (404 when not in use; the last one in use is
    400 ``action_not_possible``, X-Road's file having no 409 here)."""
    try:
        timestamping.stop_using(context.server_dir, _conf(context), _url(request))
    except ActionNotPossible as err:
        raise ApiError(400, err.api_code, err.message) from err
    return no_content()


_SYSTEM = f"{PREFIX}/system/timestamping-services"
OPERATIONS = (
    Operation("GET", f"{PREFIX}/timestamping-services", "getApprovedTimestampingServices",
              roles_for("getApprovedTimestampingServices"), get_approved_timestamping_services),
    Operation("GET", _SYSTEM, "getConfiguredTimestampingServices",
              roles_for("getConfiguredTimestampingServices"), get_configured_timestamping_services),
    Operation("POST", _SYSTEM, "addConfiguredTimestampingService", roles_for("addConfiguredTimestampingService"),
              add_configured_timestamping_service),
    Operation("POST", f"{_SYSTEM}/delete", "deleteConfiguredTimestampingService",
              roles_for("deleteConfiguredTimestampingService"), delete_configured_timestamping_service),
)
