"""``/system/maintenance-mode``: the running server's maintenance switch.

fedbus's maintenance mode is the one X-Road's proxy admin port switches for load balancers (ig-xlb §3.4): while it
is on, the health check answers 503 and the balancer sends traffic to the other nodes. It takes effect at once (no
global configuration round, so never a PENDING state) and has no message: a message given is checked and not kept.
The switch lives in the running server: without it (the API served on its own) these answer 404.
"""

from __future__ import annotations

import re

from security_server.management.api import (
    ApiRequest,
    ApiResponse,
    Operation,
    no_content,
)
from security_server.management.context import MaintenanceSwitch, OperationContext
from security_server.management.errors import ApiError, bad_request
from security_server.management.operations.common import PREFIX
from security_server.management.permissions import roles_for

_MESSAGE = re.compile(r"[a-zA-Z0-9\-_,.;:!? ]{0,255}")


def _switch(context: OperationContext) -> MaintenanceSwitch:
    if context.maintenance is None:
        raise ApiError(404, "maintenance_mode_unavailable", "the management API runs without the server")
    return context.maintenance


def maintenance_mode(context: OperationContext, request: ApiRequest) -> ApiResponse:
    """``GET /system/maintenance-mode``."""
    on = _switch(context).maintenance
    return ApiResponse(200, {"status": "ENABLED_MAINTENANCE_MODE" if on else "DISABLED_MAINTENANCE_MODE",
                             "is_management_services_provider": False})


def enable_maintenance_mode(context: OperationContext, request: ApiRequest) -> ApiResponse:
    """``PUT /system/maintenance-mode/enable`` (X-Road's ``MaintenanceModeMessage`` body is optional)."""
    if request.body:
        message = request.json_object(frozenset({"message"})).get("message", "")
        if not isinstance(message, str) or not _MESSAGE.fullmatch(message):
            raise bad_request("invalid_field", "message")
    _switch(context).set_maintenance(True)
    return no_content()


def disable_maintenance_mode(context: OperationContext, request: ApiRequest) -> ApiResponse:
    """``PUT /system/maintenance-mode/disable``."""
    _switch(context).set_maintenance(False)
    return no_content()


_MM = f"{PREFIX}/system/maintenance-mode"
OPERATIONS = (
    Operation("GET", _MM, "maintenanceMode", roles_for("maintenanceMode"), maintenance_mode, in_reactor=True),
    Operation("PUT", f"{_MM}/enable", "enableMaintenanceMode", roles_for("enableMaintenanceMode"),
              enable_maintenance_mode, in_reactor=True),
    Operation("PUT", f"{_MM}/disable", "disableMaintenanceMode", roles_for("disableMaintenanceMode"),
              disable_maintenance_mode, in_reactor=True),
)
