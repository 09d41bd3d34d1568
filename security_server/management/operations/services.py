"""``/services/{id}``: one service of a hosted client (X-Road's ``Service``)."""

from __future__ import annotations

from typing import Any

from security_server.admin import access_rights, services
from security_server.management.api import ApiRequest, ApiResponse, Operation
from security_server.management.context import OperationContext
from security_server.management.ids import parse_service_id, service_id_text
from security_server.management.operations.common import PREFIX
from security_server.management.permissions import roles_for
from security_server.serverconf.store import Service, ServiceKind


def service_json(service: Service, subjects: int) -> dict[str, Any]:
    """X-Road's ``Service``: id, codes, URL, timeout, how many service clients hold a right to it, and a REST
    service's endpoints."""
    full_code = service.id.service_code + (f".{service.id.service_version}" if service.id.service_version else "")
    data: dict[str, Any] = {
        "id": service_id_text(service.id),
        "full_service_code": full_code,
        "service_code": service.id.service_code,
        "timeout": service.timeout_seconds,
        "url": service.url,
        "subjects_count": subjects,
    }
    if service.kind is ServiceKind.REST:
        from security_server.management.operations.endpoints import rest_endpoints

        data["endpoints"] = rest_endpoints(service.id, service.endpoints)
    return data


def get_service(context: OperationContext, request: ApiRequest) -> ApiResponse:
    """``GET /services/{id}``."""
    service_id = parse_service_id(request.params["id"])
    found = services.get_service(context.server_dir, service_id)
    subjects = access_rights.service_clients(context.server_dir, service_id.client, service_id.service_code)
    return ApiResponse(200, service_json(found, len(subjects)))


OPERATIONS = (
    Operation("GET", f"{PREFIX}/services/{{id}}", "getService", roles_for("getService"), get_service),
)
