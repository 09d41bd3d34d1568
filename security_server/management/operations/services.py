"""``/services/{id}``: one service of a hosted client (X-Road's ``Service``), read and changed.

``ssl_auth`` is kept per service (``ssl_auth_all``: for every service of the same description): an ``https``
service with it is called only when its TLS certificate is one of the client's internal TLS certificates
(``/clients/{id}/tls-certificates``); X-Road shows it false for an ``http`` service. ``ignore_warnings`` has no
warning to ignore.
"""

from __future__ import annotations

from typing import Any

from security_server.admin import access_rights, services
from security_server.management.api import ApiRequest, ApiResponse, Operation, bool_field, string_field
from security_server.management.context import OperationContext
from security_server.management.errors import bad_request
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
        "ssl_auth": service.verifies_tls,
        "subjects_count": subjects,
    }
    if service.kind is ServiceKind.REST:
        from security_server.management.operations.endpoints import rest_endpoints

        data["endpoints"] = rest_endpoints(service.id, service.endpoints, service.added_endpoints)
    return data


def get_service(context: OperationContext, request: ApiRequest) -> ApiResponse:
    """``GET /services/{id}``."""
    service_id = parse_service_id(request.params["id"])
    found = services.get_service(context.server_dir, service_id)
    subjects = access_rights.service_clients(context.server_dir, service_id.client, service_id.service_code)
    return ApiResponse(200, service_json(found, len(subjects)))


_UPDATE_FIELDS = frozenset({"url", "timeout", "ssl_auth", "url_all", "timeout_all", "ssl_auth_all", "ignore_warnings"})
MAX_TIMEOUT_SECONDS = 1000
"""X-Road's ``ServiceUpdate.timeout`` maximum."""


def update_service(context: OperationContext, request: ApiRequest) -> ApiResponse:
    """``PATCH /services/{id}``: X-Road's ``ServiceUpdate`` (url, timeout, ssl_auth, and the ``*_all`` flags that
    apply a value to every service of the same description)."""
    service_id = parse_service_id(request.params["id"])
    data = request.json_object(_UPDATE_FIELDS, frozenset({"url", "timeout", "ssl_auth"}))
    url = string_field(data, "url")
    timeout = data["timeout"]
    if isinstance(timeout, bool) or not isinstance(timeout, int) or not 0 <= timeout <= MAX_TIMEOUT_SECONDS:
        raise bad_request("invalid_field", "timeout")
    bool_field(data, "ignore_warnings")
    updated = services.update_service(
        context.server_dir, service_id, url=str(url), timeout_seconds=timeout,
        url_all=bool_field(data, "url_all"), timeout_all=bool_field(data, "timeout_all"),
        ssl_auth=bool_field(data, "ssl_auth"), ssl_auth_all=bool_field(data, "ssl_auth_all"),
    )
    subjects = access_rights.service_clients(context.server_dir, service_id.client, service_id.service_code)
    return ApiResponse(200, service_json(updated, len(subjects)))


OPERATIONS = (
    Operation("GET", f"{PREFIX}/services/{{id}}", "getService", roles_for("getService"), get_service),
    Operation("PATCH", f"{PREFIX}/services/{{id}}", "updateService", roles_for("updateService"), update_service),
)
