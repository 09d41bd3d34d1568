"""``/diagnostics/globalconf``, ``/diagnostics/timestamping-services``, ``/diagnostics/ocsp-responders``,
``/diagnostics/proxy-memory-usage-status``.

Read from the running server (:mod:`security_server.management.diagnostics`); the API served without one answers
404 ``diagnostics_unavailable``. A time fedbus does not know (nothing downloaded yet) is the epoch, as elsewhere.
"""

from __future__ import annotations

import os
import resource
from datetime import datetime
from pathlib import Path
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


def _status_kib(status: str, field: str) -> int | None:
    """A ``VmRSS:   1234 kB`` line of ``/proc/self/status``, in bytes."""
    for line in status.splitlines():
        if line.startswith(f"{field}:"):
            parts = line.split()
            if len(parts) >= 2 and parts[1].isdigit():
                return int(parts[1]) * 1024
    return None


def proxy_memory(proc_status: Path = Path("/proc/self/status")) -> dict[str, Any]:
    """X-Road's ``ProxyMemoryUsageStatus`` of this process (the API runs in the server's worker 0, a proxy): used
    is its resident memory, total its address space, max the machine's physical memory (or the process's address
    space limit when lower). fedbus sets no alert threshold: none is given and the usage is never over one."""
    try:
        status = proc_status.read_text(encoding="ascii", errors="replace")
    except OSError:
        status = ""
    used = _status_kib(status, "VmRSS")
    if used is None:  # not Linux: the peak resident size is what the platform tells
        used = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    total = _status_kib(status, "VmSize") or used
    physical = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    limit = resource.getrlimit(resource.RLIMIT_AS)[0]
    maximum = min(physical, limit) if limit != resource.RLIM_INFINITY and limit > 0 else physical
    return {
        "max_memory": maximum,
        "total_memory": total,
        "used_memory": used,
        "usage_percent": round(100.0 * used / maximum, 2) if maximum else 0.0,
        "is_used_over_threshold": False,
    }


def get_proxy_memory_usage(context: OperationContext, request: ApiRequest) -> ApiResponse:
    """``GET /diagnostics/proxy-memory-usage-status``: read from the running server's process (404
    ``diagnostics_unavailable`` when the API runs without it)."""
    _source(context)
    return ApiResponse(200, proxy_memory())


_D = f"{PREFIX}/diagnostics"
OPERATIONS = (
    Operation("GET", f"{_D}/globalconf", "getGlobalConfDiagnostics", roles_for("getGlobalConfDiagnostics"),
              get_global_conf_diagnostics),
    Operation("GET", f"{_D}/timestamping-services", "getTimestampingServicesDiagnostics",
              roles_for("getTimestampingServicesDiagnostics"), get_timestamping_services_diagnostics),
    Operation("GET", f"{_D}/ocsp-responders", "getOcspRespondersDiagnostics",
              roles_for("getOcspRespondersDiagnostics"), get_ocsp_responders_diagnostics),
    Operation("GET", f"{_D}/proxy-memory-usage-status", "getProxyMemoryUsage", roles_for("getProxyMemoryUsage"),
              get_proxy_memory_usage),
)
