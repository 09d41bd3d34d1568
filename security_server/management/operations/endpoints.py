"""``/endpoints/{id}``: a REST service's endpoints and the rights limited to one of them (the third level).

An endpoint's id is its service's id with method and path (:func:`~security_server.management.ids.endpoint_id_text`).
A REST service's endpoints are the ``* **`` endpoint (the whole service, as X-Road generates it), those of its
OpenAPI description (``generated``: they come from the description and change with it) and those added by hand
(``POST /services/{id}/endpoints``), which alone can be changed and deleted (400
``illegal_generated_endpoint_update``/``_remove`` for the others, as X-Road).
"""

from __future__ import annotations

from typing import Any

from security_server.admin import access_rights, endpoints
from security_server.admin.access_rights import WHOLE_SERVICE
from security_server.core.acl import AccessRight, Endpoint
from security_server.core.errors import BusError
from security_server.core.identifiers import ServiceId
from security_server.management.api import (
    ApiRequest,
    ApiResponse,
    Operation,
    no_content,
    string_field,
)
from security_server.management.context import OperationContext
from security_server.management.errors import bad_request
from security_server.management.ids import endpoint_id_text, parse_endpoint_id, parse_service_id
from security_server.management.operations.access_rights import service_client_json, subjects_of
from security_server.management.operations.common import PREFIX
from security_server.management.permissions import roles_for


def endpoint_json(service: ServiceId, endpoint: Endpoint, generated: bool = True) -> dict[str, Any]:
    """X-Road's ``Endpoint``."""
    return {
        "id": endpoint_id_text(service, endpoint),
        "service_code": service.service_code,
        "method": endpoint.method,
        "path": endpoint.path,
        "generated": generated,
    }


def rest_endpoints(
    service: ServiceId, declared: tuple[Endpoint, ...], added: tuple[Endpoint, ...] = ()
) -> list[dict[str, Any]]:
    """The endpoints of a REST service: the whole service first, then its description's and those ``added`` by
    hand (not generated)."""
    return [endpoint_json(service, e, e not in added) for e in dict.fromkeys((WHOLE_SERVICE, *declared))]


def get_endpoint(context: OperationContext, request: ApiRequest) -> ApiResponse:
    """``GET /endpoints/{id}``."""
    service, endpoint = parse_endpoint_id(request.params["id"])
    access_rights.get_endpoint(context.server_dir, service, endpoint)
    found = endpoints.rest_service(context.server_dir, service)
    return ApiResponse(200, endpoint_json(service, endpoint, endpoints.is_generated(found, endpoint)))


_METHODS = frozenset({"*", "GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "TRACE"})


def _endpoint_of(data: dict[str, Any]) -> Endpoint:
    """X-Road's ``method`` (its enum) and ``path`` of a request body; 400 ``invalid_field`` otherwise."""
    method, path = data["method"], string_field(data, "path")
    if method not in _METHODS:
        raise bad_request("invalid_field", "method")
    try:
        return Endpoint(str(method), str(path))
    except BusError as err:
        raise bad_request("invalid_field", "path", err.message) from err


def add_endpoint(context: OperationContext, request: ApiRequest) -> ApiResponse:
    """``POST /services/{id}/endpoints``: X-Road's ``Endpoint`` (``service_code``, ``method``, ``path``; no
    ``id``: 400 ``endpoint_id_should_not_be_provided``). 201 with the endpoint, 409 ``endpoint_already_exists``,
    400 ``wrong_servicedescription_type`` for a WSDL's service."""
    service_id = parse_service_id(request.params["id"])
    data = request.json_object(
        frozenset({"id", "service_code", "method", "path", "generated"}), frozenset({"service_code", "method", "path"})
    )
    if data.get("id") is not None:
        raise bad_request("endpoint_id_should_not_be_provided")
    if string_field(data, "service_code") != service_id.service_code:
        raise bad_request("invalid_field", "service_code")
    endpoint = _endpoint_of(data)
    endpoints.add_endpoint(context.server_dir, service_id, endpoint)
    return ApiResponse(201, endpoint_json(ServiceId(service_id.client, service_id.service_code), endpoint, False))


def update_endpoint(context: OperationContext, request: ApiRequest) -> ApiResponse:
    """``PATCH /endpoints/{id}``: X-Road's ``EndpointUpdate`` (``method``, ``path``) of an endpoint added by
    hand; the access rights limited to it follow it. 200 with the endpoint (its id changes with it)."""
    service, endpoint = parse_endpoint_id(request.params["id"])
    new = _endpoint_of(request.json_object(frozenset({"method", "path"}), frozenset({"method", "path"})))
    endpoints.update_endpoint(context.server_dir, service, endpoint, new)
    return ApiResponse(200, endpoint_json(service, new, False))


def delete_endpoint(context: OperationContext, request: ApiRequest) -> ApiResponse:
    """``DELETE /endpoints/{id}``: an endpoint added by hand, with the access rights limited to it."""
    service, endpoint = parse_endpoint_id(request.params["id"])
    endpoints.delete_endpoint(context.server_dir, service, endpoint)
    return no_content()


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
    Operation("PATCH", _EP, "updateEndpoint", roles_for("updateEndpoint"), update_endpoint),
    Operation("DELETE", _EP, "deleteEndpoint", roles_for("deleteEndpoint"), delete_endpoint),
    Operation("POST", f"{PREFIX}/services/{{id}}/endpoints", "addEndpoint", roles_for("addEndpoint"), add_endpoint),
    Operation("GET", f"{_EP}/service-clients", "getEndpointServiceClients", roles_for("getEndpointServiceClients"),
              get_endpoint_service_clients),
    Operation("POST", f"{_EP}/service-clients", "addEndpointServiceClients", roles_for("addEndpointServiceClients"),
              add_endpoint_service_clients),
    Operation("POST", f"{_EP}/service-clients/delete", "deleteEndpointServiceClients",
              roles_for("deleteEndpointServiceClients"), delete_endpoint_service_clients),
)
