"""Access rights at client and service level: X-Road's ``service-clients`` and ``access-rights`` paths.

Client level: ``/clients/{id}/service-clients`` (who holds any right to the client's services) and
``/clients/{id}/service-clients/{sc_id}/access-rights`` (which service codes one of them may call). Service level:
``/services/{id}/service-clients``. A right covers a service code, every version (DM-SS §2.17). fedbus keeps no
time of a grant: ``rights_given_at`` is the epoch.
"""

from __future__ import annotations

from typing import Any

from security_server.admin import access_rights, services
from security_server.core.acl import AccessRight, Subject
from security_server.core.errors import BusError
from security_server.core.identifiers import ClientId, GlobalGroupId, LocalGroupId, ServiceId
from security_server.management.api import (
    ApiRequest,
    ApiResponse,
    Operation,
    no_content,
)
from security_server.management.context import OperationContext
from security_server.management.errors import bad_request
from security_server.management.ids import parse_client_id, parse_service_id, parse_subject, subject_text
from security_server.management.operations.common import EPOCH, PREFIX
from security_server.management.permissions import roles_for


def _type(subject: Subject) -> str:
    if isinstance(subject, GlobalGroupId):
        return "GLOBALGROUP"
    if isinstance(subject, LocalGroupId):
        return "LOCALGROUP"
    return "SUBSYSTEM"


def service_client_json(provider: ClientId, subject: Subject) -> dict[str, Any]:
    """X-Road's ``ServiceClient``."""
    data: dict[str, Any] = {
        "id": subject_text(provider, subject),
        "service_client_type": _type(subject),
        "rights_given_at": EPOCH,
    }
    if isinstance(subject, LocalGroupId):
        data["local_group_code"] = subject.group_code
    return data


def right_json(right: AccessRight) -> dict[str, Any]:
    """X-Road's ``AccessRight``."""
    return {"service_code": right.service_code, "rights_given_at": EPOCH}


def get_client_service_clients(context: OperationContext, request: ApiRequest) -> ApiResponse:
    """``GET /clients/{id}/service-clients``."""
    provider = parse_client_id(request.params["id"])
    subjects = access_rights.service_clients(context.server_dir, provider)
    return ApiResponse(200, [service_client_json(provider, s) for s in subjects])


def get_service_client_access_rights(context: OperationContext, request: ApiRequest) -> ApiResponse:
    """``GET /clients/{id}/service-clients/{sc_id}/access-rights`` (service-level rights)."""
    provider = parse_client_id(request.params["id"])
    subject = parse_subject(provider, request.params["sc_id"])
    rights = access_rights.rights_of(context.server_dir, provider, subject)
    return ApiResponse(200, [right_json(r) for r in dict.fromkeys(r for r in rights if r.endpoint is None)])


def _service_codes(request: ApiRequest) -> list[str]:
    data = request.json_object(frozenset({"items"}), frozenset({"items"}))
    items = data["items"]
    if not isinstance(items, list) or not items:
        raise bad_request("invalid_field", "items")
    codes = []
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("service_code"), str):
            raise bad_request("invalid_field", "items")
        unknown = sorted(set(item) - {"service_code", "service_title", "rights_given_at"})
        if unknown:
            raise bad_request("unknown_field", *unknown)
        codes.append(item["service_code"])
    return codes


def _rights(provider: ClientId, subject: Subject, codes: list[str]) -> list[AccessRight]:
    try:
        return [AccessRight(subject, ServiceId(provider, code)) for code in codes]
    except BusError as err:  # an invalid service code: the identifier types refuse it
        raise bad_request("invalid_field", "service_code") from err


def add_service_client_access_rights(context: OperationContext, request: ApiRequest) -> ApiResponse:
    """``POST /clients/{id}/service-clients/{sc_id}/access-rights``: answers the rights added."""
    provider = parse_client_id(request.params["id"])
    subject = parse_subject(provider, request.params["sc_id"])
    rights = _rights(provider, subject, _service_codes(request))
    access_rights.grant_all(context.server_dir, rights)
    return ApiResponse(201, [right_json(r) for r in dict.fromkeys(rights)])


def delete_service_client_access_rights(context: OperationContext, request: ApiRequest) -> ApiResponse:
    """``POST /clients/{id}/service-clients/{sc_id}/access-rights/delete``."""
    provider = parse_client_id(request.params["id"])
    subject = parse_subject(provider, request.params["sc_id"])
    access_rights.revoke_all(context.server_dir, _rights(provider, subject, _service_codes(request)))
    return no_content()


def subjects_of(provider: ClientId, request: ApiRequest) -> list[Subject]:
    """The service clients of a ``ServiceClients`` body (``items`` with ``id`` and optional type)."""
    data = request.json_object(frozenset({"items"}), frozenset({"items"}))
    items = data["items"]
    if not isinstance(items, list) or not items:
        raise bad_request("invalid_field", "items")
    subjects: list[Subject] = []
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("id"), str):
            raise bad_request("invalid_field", "items")
        unknown = sorted(set(item) - {"id", "name", "local_group_code", "service_client_type", "rights_given_at"})
        if unknown:
            raise bad_request("unknown_field", *unknown)
        kind = item.get("service_client_type")
        if kind is not None and not isinstance(kind, str):
            raise bad_request("invalid_field", "service_client_type")
        subjects.append(parse_subject(provider, item["id"], kind))
    return subjects


def get_service_service_clients(context: OperationContext, request: ApiRequest) -> ApiResponse:
    """``GET /services/{id}/service-clients``."""
    service_id = parse_service_id(request.params["id"])
    services.get_service(context.server_dir, service_id)
    subjects = access_rights.service_clients(context.server_dir, service_id.client, service_id.service_code)
    return ApiResponse(200, [service_client_json(service_id.client, s) for s in subjects])


def add_service_service_clients(context: OperationContext, request: ApiRequest) -> ApiResponse:
    """``POST /services/{id}/service-clients``: answers every service client of the service afterwards."""
    service_id = parse_service_id(request.params["id"])
    services.get_service(context.server_dir, service_id)
    rights = [AccessRight.for_service(s, service_id) for s in subjects_of(service_id.client, request)]
    access_rights.grant_all(context.server_dir, rights)
    subjects = access_rights.service_clients(context.server_dir, service_id.client, service_id.service_code)
    return ApiResponse(201, [service_client_json(service_id.client, s) for s in subjects])


def delete_service_service_clients(context: OperationContext, request: ApiRequest) -> ApiResponse:
    """``POST /services/{id}/service-clients/delete``."""
    service_id = parse_service_id(request.params["id"])
    services.get_service(context.server_dir, service_id)
    rights = [AccessRight.for_service(s, service_id) for s in subjects_of(service_id.client, request)]
    access_rights.revoke_all(context.server_dir, rights)
    return no_content()


_SC = f"{PREFIX}/clients/{{id}}/service-clients"
OPERATIONS = (
    Operation("GET", _SC, "getClientServiceClients", roles_for("getClientServiceClients"), get_client_service_clients),
    Operation("GET", f"{_SC}/{{sc_id}}/access-rights", "getServiceClientAccessRights",
              roles_for("getServiceClientAccessRights"), get_service_client_access_rights),
    Operation("POST", f"{_SC}/{{sc_id}}/access-rights", "addServiceClientAccessRights",
              roles_for("addServiceClientAccessRights"), add_service_client_access_rights),
    Operation("POST", f"{_SC}/{{sc_id}}/access-rights/delete", "deleteServiceClientAccessRights",
              roles_for("deleteServiceClientAccessRights"), delete_service_client_access_rights),
    Operation("GET", f"{PREFIX}/services/{{id}}/service-clients", "getServiceServiceClients",
              roles_for("getServiceServiceClients"), get_service_service_clients),
    Operation("POST", f"{PREFIX}/services/{{id}}/service-clients", "addServiceServiceClients",
              roles_for("addServiceServiceClients"), add_service_service_clients),
    Operation("POST", f"{PREFIX}/services/{{id}}/service-clients/delete", "deleteServiceServiceClients",
              roles_for("deleteServiceServiceClients"), delete_service_service_clients),
)
