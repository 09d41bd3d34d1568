"""``/diagnostics/globalconf``, ``/diagnostics/timestamping-services``, ``/diagnostics/ocsp-responders``.

Read from the running server (:mod:`security_server.management.diagnostics`); the API served without one answers
404 ``diagnostics_unavailable``. A time fedbus does not know (nothing downloaded yet) is the epoch, as elsewhere.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from security_server.management.api import ApiRequest, ApiResponse, Operation
from security_server.management.context import OperationContext
from security_server.management.diagnostics import Diagnostic, Diagnostics
from security_server.management.errors import ApiError
from security_server.management.operations.common import EPOCH, PREFIX, xroad_time
from security_server.management.permissions import roles_for


def _source(context: OperationContext) -> Diagnostics:
    if context.diagnostics is None:
        raise ApiError(404, "diagnostics_unavailable", "the management API runs without the server")
    return context.diagnostics


def _time(moment: datetime | None) -> str:
    return EPOCH if moment is None else xroad_time(moment)


def _status(diagnostic: Diagnostic, *, next_update: bool) -> dict[str, Any]:
    data: dict[str, Any] = {"status_class": diagnostic.status.value, "prev_update_at": _time(diagnostic.prev_update)}
    if next_update:
        data["next_update_at"] = _time(diagnostic.next_update)
    if diagnostic.error_code is not None:
        data["error"] = {"code": diagnostic.error_code} | (
            {"metadata": [diagnostic.error_detail]} if diagnostic.error_detail else {})
    return data


def get_global_conf_diagnostics(context: OperationContext, request: ApiRequest) -> ApiResponse:
    """``GET /diagnostics/globalconf``: X-Road's ``GlobalConfDiagnostics``."""
    return ApiResponse(200, _status(_source(context).globalconf(), next_update=True))


def get_timestamping_services_diagnostics(context: OperationContext, request: ApiRequest) -> ApiResponse:
    """``GET /diagnostics/timestamping-services``: a ``TimestampingServiceDiagnostics`` per approved service."""
    return ApiResponse(200, [
        {"url": tsa.url, "cost_type": "UNDEFINED"} | _status(tsa.diagnostic, next_update=False)
        for tsa in _source(context).timestamping()
    ])


def get_ocsp_responders_diagnostics(context: OperationContext, request: ApiRequest) -> ApiResponse:
    """``GET /diagnostics/ocsp-responders``: a ``CaOcspDiagnostics`` per CA of our certificates."""
    by_ca: dict[str, list[dict[str, Any]]] = {}
    for responder in _source(context).ocsp():
        by_ca.setdefault(responder.ca, []).append(
            {"url": responder.url, "cost_type": "UNDEFINED"} | _status(responder.diagnostic, next_update=True))
    return ApiResponse(200, [{"distinguished_name": ca, "ocsp_responders": found} for ca, found in by_ca.items()])


_D = f"{PREFIX}/diagnostics"
OPERATIONS = (
    Operation("GET", f"{_D}/globalconf", "getGlobalConfDiagnostics", roles_for("getGlobalConfDiagnostics"),
              get_global_conf_diagnostics),
    Operation("GET", f"{_D}/timestamping-services", "getTimestampingServicesDiagnostics",
              roles_for("getTimestampingServicesDiagnostics"), get_timestamping_services_diagnostics),
    Operation("GET", f"{_D}/ocsp-responders", "getOcspRespondersDiagnostics",
              roles_for("getOcspRespondersDiagnostics"), get_ocsp_responders_diagnostics),
)
