"""``/clients/{id}/service-descriptions`` and ``/service-descriptions/{id}``: read, enable, disable.

A description's id is its first service's id (:mod:`security_server.admin.service_descriptions`); its ``url``
is the provider URL of that service (fedbus does not keep the URL a description was read from yet), and
``refreshed_at`` the epoch. Adding and refreshing a description by URL are not implemented yet.
"""

from __future__ import annotations

from typing import Any

from security_server.admin import access_rights, service_descriptions
from security_server.admin.service_descriptions import ServiceDescription
from security_server.management.api import ApiRequest, ApiResponse, Operation, OperationContext, no_content
from security_server.management.errors import bad_request
from security_server.management.ids import client_id_text, parse_client_id, parse_service_id, service_id_text
from security_server.management.operations.common import EPOCH, PREFIX
from security_server.management.operations.services import service_json
from security_server.management.permissions import roles_for
from security_server.serverconf.store import MAX_TEXT_LENGTH, ServiceKind


def _type(description: ServiceDescription) -> str:
    if description.kind is ServiceKind.SOAP:
        return "WSDL"
    return "OPENAPI3" if description.has_document else "REST"


def _services(context: OperationContext, description: ServiceDescription) -> list[dict[str, Any]]:
    return [
        service_json(s, len(access_rights.service_clients(context.server_dir, s.id.client, s.id.service_code)))
        for s in description.services
    ]


def description_json(context: OperationContext, description: ServiceDescription) -> dict[str, Any]:
    """X-Road's ``ServiceDescription``."""
    return {
        "id": service_id_text(description.id),
        "url": description.services[0].url,
        "type": _type(description),
        "disabled": description.disabled,
        "disabled_notice": description.disabled_notice,
        "refreshed_at": EPOCH,
        "services": _services(context, description),
        "client_id": client_id_text(description.client),
    }


def get_client_service_descriptions(context: OperationContext, request: ApiRequest) -> ApiResponse:
    """``GET /clients/{id}/service-descriptions``."""
    client = parse_client_id(request.params["id"])
    found = service_descriptions.client_descriptions(context.server_dir, client)
    return ApiResponse(200, [description_json(context, d) for d in found])


def get_service_description(context: OperationContext, request: ApiRequest) -> ApiResponse:
    """``GET /service-descriptions/{id}``."""
    found = service_descriptions.get_description(context.server_dir, parse_service_id(request.params["id"]))
    return ApiResponse(200, description_json(context, found))


def get_service_description_services(context: OperationContext, request: ApiRequest) -> ApiResponse:
    """``GET /service-descriptions/{id}/services``."""
    found = service_descriptions.get_description(context.server_dir, parse_service_id(request.params["id"]))
    return ApiResponse(200, _services(context, found))


def disable_service_description(context: OperationContext, request: ApiRequest) -> ApiResponse:
    """``PUT /service-descriptions/{id}/disable``: ``ServiceDescriptionDisabledNotice``."""
    description_id = parse_service_id(request.params["id"])
    notice = ""
    if request.body:
        data = request.json_object(frozenset({"disabled_notice"}))
        value = data.get("disabled_notice", "")
        if not isinstance(value, str) or len(value) > MAX_TEXT_LENGTH:
            raise bad_request("invalid_field", "disabled_notice")
        notice = value
    service_descriptions.set_enabled(context.server_dir, description_id, False, notice)
    return no_content()


def enable_service_description(context: OperationContext, request: ApiRequest) -> ApiResponse:
    """``PUT /service-descriptions/{id}/enable``."""
    service_descriptions.set_enabled(context.server_dir, parse_service_id(request.params["id"]), True)
    return no_content()


_SD = f"{PREFIX}/service-descriptions/{{id}}"
OPERATIONS = (
    Operation("GET", f"{PREFIX}/clients/{{id}}/service-descriptions", "getClientServiceDescriptions",
              roles_for("getClientServiceDescriptions"), get_client_service_descriptions),
    Operation("GET", _SD, "getServiceDescription", roles_for("getServiceDescription"), get_service_description),
    Operation("GET", f"{_SD}/services", "getServiceDescriptionServices", roles_for("getServiceDescriptionServices"),
              get_service_description_services),
    Operation("PUT", f"{_SD}/disable", "disableServiceDescription", roles_for("disableServiceDescription"),
              disable_service_description),
    Operation("PUT", f"{_SD}/enable", "enableServiceDescription", roles_for("enableServiceDescription"),
              enable_service_description),
)
