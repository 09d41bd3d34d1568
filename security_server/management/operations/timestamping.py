"""``/timestamping-services`` and ``/system/timestamping-services``: the time-stamping authorities.

fedbus's message log uses every TSA the global configuration approves (``approvedTSA``), so the configured
services are the approved ones: both lists answer them, read from the running server's configuration client.
Choosing among them (``POST``, ``/delete``) is not implemented. The global configuration carries no cost type:
``cost_type`` is UNDEFINED.
"""

from __future__ import annotations

from typing import Any

from security_server.core.globalconf import GlobalConf
from security_server.management.api import ApiRequest, ApiResponse, Operation
from security_server.management.context import OperationContext
from security_server.management.errors import ApiError
from security_server.management.operations.common import PREFIX
from security_server.management.permissions import roles_for


def _approved(context: OperationContext) -> list[dict[str, Any]]:
    if context.global_conf is None:
        raise ApiError(404, "global_conf_unavailable", "the management API runs without the server")
    conf: GlobalConf = context.global_conf()
    return [{"name": tsa.name, "url": tsa.url, "cost_type": "UNDEFINED"} for tsa in conf.approved_tsas()]


def get_approved_timestamping_services(context: OperationContext, request: ApiRequest) -> ApiResponse:
    """``GET /timestamping-services``."""
    return ApiResponse(200, _approved(context))


def get_configured_timestamping_services(context: OperationContext, request: ApiRequest) -> ApiResponse:
    """``GET /system/timestamping-services``: the same, since every approved TSA is used."""
    return ApiResponse(200, _approved(context))


OPERATIONS = (
    Operation("GET", f"{PREFIX}/timestamping-services", "getApprovedTimestampingServices",
              roles_for("getApprovedTimestampingServices"), get_approved_timestamping_services),
    Operation("GET", f"{PREFIX}/system/timestamping-services", "getConfiguredTimestampingServices",
              roles_for("getConfiguredTimestampingServices"), get_configured_timestamping_services),
)
