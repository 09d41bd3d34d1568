"""``/endpoints/{id}``: a REST service's endpoints and the rights limited to one of them (the third level).

An endpoint's id is its service's id with method and path (:func:`~security_server.management.ids.endpoint_id_text`).
A REST service's endpoints are the ``* **`` endpoint (the whole service, as X-Road generates it) and those of its
OpenAPI description (``generated``: they come from the description and change with it). Editing and deleting
endpoints are not implemented: fedbus's endpoints are exactly those of the description.
"""

from __future__ import annotations

from typing import Any

from security_server.admin import access_rights
from security_server.admin.access_rights import WHOLE_SERVICE
from security_server.core.acl import AccessRight, Endpoint
from security_server.core.identifiers import ServiceId
from security_server.management.api import (
    ApiRequest,
    ApiResponse,
    Operation,
    no_content,
)
from security_server.management.context import OperationContext
from security_server.management.ids import endpoint_id_text, parse_endpoint_id
from security_server.management.operations.access_rights import service_client_json, subjects_of
from security_server.management.operations.common import PREFIX
from security_server.management.permissions import roles_for


def endpoint_json(service: ServiceId, endpoint: Endpoint) -> dict[str, Any]:
    """X-Road's ``Endpoint``."""
    return {
        "id": endpoint_id_text(service, endpoint),
        "service_code": service.service_code,
        "method": endpoint.method,
        "path": endpoint.path,
        "generated": True,
    }


def rest_endpoints(service: ServiceId, declared: tuple[Endpoint, ...]) -> list[dict[str, Any]]:
    """The endpoints of a REST service: the whole service first, then its description's."""
    return [endpoint_json(service, e) for e in dict.fromkeys((WHOLE_SERVICE, *declared))]


def get_endpoint(context: OperationContext, request: ApiRequest) -> ApiResponse:
    """``GET /endpoints/{id}``."""
    service, endpoint = parse_endpoint_id(request.params["id"])
    access_rights.get_endpoint(context.server_dir, service, endpoint)
    return ApiResponse(200, endpoint_json(service, endpoint))


def get_endpoint_service_clients(context: OperationContext, request: ApiRequest) -> ApiResponse:
    """``GET /endpoints/{id}/service-clients``."""
    service, endpoint = parse_endpoint_id(request.params["id"])
    subjects = access_rights.endpoint_clients(context.server_dir, service, endpoint)
    return ApiResponse(200, [service_client_json(service.client, s) for s in subjects])


def add_endpoint_service_clients(context: OperationContext, request: ApiRequest) -> ApiResponse:
    """``POST /endpoints/{id}/service-clients``: answers the endpoint's service clients afterwards."""
    service, endpoint = parse_endpoint_id(request.params["id"])
    access_rights.get_endpoint(context.server_dir, service, endpoint)
    rights = [AccessRight(s, service, endpoint) for s in subjects_of(service.client, request)]
    access_rights.grant_all(context.server_dir, rights)
    subjects = access_rights.endpoint_clients(context.server_dir, service, endpoint)
    return ApiResponse(201, [service_client_json(service.client, s) for s in subjects])


def delete_endpoint_service_clients(context: OperationContext, request: ApiRequest) -> ApiResponse:
    """``POST /endpoints/{id}/service-clients/delete``."""
    service, endpoint = parse_endpoint_id(request.params["id"])
    access_rights.get_endpoint(context.server_dir, service, endpoint)
    access_rights.revoke_all(context.server_dir, [AccessRight(s, service, endpoint) for s in subjects_of(service.client, request)])
    return no_content()


_EP = f"{PREFIX}/endpoints/{{id}}"
OPERATIONS = (
    Operation("GET", _EP, "getEndpoint", roles_for("getEndpoint"), get_endpoint),
    Operation("GET", f"{_EP}/service-clients", "getEndpointServiceClients", roles_for("getEndpointServiceClients"),
              get_endpoint_service_clients),
    Operation("POST", f"{_EP}/service-clients", "addEndpointServiceClients", roles_for("addEndpointServiceClients"),
              add_endpoint_service_clients),
    Operation("POST", f"{_EP}/service-clients/delete", "deleteEndpointServiceClients",
              roles_for("deleteEndpointServiceClients"), delete_endpoint_service_clients),
)
