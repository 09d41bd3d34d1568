"""``/management-requests``: list (X-Road's filters, sort and paging), show, approve, decline.

Statuses and types in X-Road's names: a fedbus request waiting for a decision is ``WAITING``, an approved one
``APPROVED``, a rejected one ``DECLINED`` (X-Road's ``DELETE`` on a request "revokes" it: fedbus declines it, the
only way it has to refuse a request from a security server). A request signed by a security server has the origin
``SECURITY_SERVER``; one the registry's officer filed (``POST /management-requests``, X-Road's
``addManagementRequest``) ``CENTER``; a waiting pair of the two is ``SUBMITTED FOR APPROVAL``
(central_registry/admin/management_requests.py).
"""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

from central_registry.admin import management_requests as admin
from central_registry.admin import members as admin_members
from central_registry.admin.management_requests import CentreRequest, NumberedRequest
from central_registry.management.context import RegistryContext
from central_registry.management.operations.common import (
    PREFIX,
    client_id_json,
    paged,
    parse_member_id,
    parse_server_id,
    parse_subsystem_id,
    positive_int,
    server_id_json,
    xroad_time,
)
from central_registry.management.permissions import roles_for
from central_registry.requests import CENTRE_ORIGIN, RequestStatus
from security_server.core.identifiers import ClientId, SecurityServerId
from security_server.core.mgmtrequest import RequestType
from security_server.management.api import ApiRequest, ApiResponse, Operation, no_content, string_field
from security_server.management.errors import bad_request

STATUS = {RequestStatus.PENDING: "WAITING", RequestStatus.APPROVED: "APPROVED", RequestStatus.REJECTED: "DECLINED"}
TYPE = {
    RequestType.AUTH_CERT_REG: "AUTH_CERT_REGISTRATION_REQUEST",
    RequestType.AUTH_CERT_DELETION: "AUTH_CERT_DELETION_REQUEST",
    RequestType.CLIENT_REG: "CLIENT_REGISTRATION_REQUEST",
    RequestType.CLIENT_DELETION: "CLIENT_DELETION_REQUEST",
    RequestType.ADDRESS_CHANGE: "ADDRESS_CHANGE_REQUEST",
}
XROAD_TYPES = frozenset({
    "AUTH_CERT_REGISTRATION_REQUEST", "CLIENT_REGISTRATION_REQUEST", "OWNER_CHANGE_REQUEST", "CLIENT_DELETION_REQUEST",
    "CLIENT_DISABLE_REQUEST", "CLIENT_ENABLE_REQUEST", "CLIENT_RENAME_REQUEST", "AUTH_CERT_DELETION_REQUEST",
    "ADDRESS_CHANGE_REQUEST", "MAINTENANCE_MODE_ENABLE_REQUEST", "MAINTENANCE_MODE_DISABLE_REQUEST",
})
XROAD_STATUSES = frozenset({"WAITING", "APPROVED", "DECLINED", "REVOKED", "SUBMITTED FOR APPROVAL"})


def request_json(found: NumberedRequest, names: dict[str, str]) -> dict[str, Any]:
    """X-Road's ``ManagementRequestListView``."""
    record = found.record
    server = SecurityServerId.parse_display(record.server)
    data: dict[str, Any] = {
        "id": found.number,
        "type": TYPE[record.type],
        "origin": found.origin,
        "security_server_owner": names.get(str(server.owner), ""),
        "security_server_id": server_id_json(server),
        "status": "SUBMITTED FOR APPROVAL" if found.paired else STATUS[record.status],
        "created_at": xroad_time(datetime.fromisoformat(record.submitted_at)),
    }
    if found.address is not None:
        data["address"] = found.address
    if record.client is not None:
        client = ClientId.parse_display(record.client)
        data["client_id"] = client_id_json(client)
        data["client_owner_name"] = names.get(str(client.member), "")
        if client.subsystem_code is not None:
            data["client_subsystem_name"] = client.subsystem_code
    return data


def _names(context: RegistryContext) -> tuple[list[NumberedRequest], dict[str, str]]:
    with context.store() as store:
        return admin.requests(store), {str(m.id): m.name for m in admin_members.members(store)}


def find_requests(context: RegistryContext, request: ApiRequest) -> ApiResponse:
    """GET /management-requests: ``status``, ``origin``, ``types``, ``server_id`` and ``query`` filters;
    sort by ``id`` or ``created_at``."""
    everything, names = _names(context)
    rows = [request_json(r, names) for r in everything]
    status = request.query_value("status")
    if status is not None:
        if status not in XROAD_STATUSES:
            raise bad_request("invalid_parameter", "status")
        rows = [r for r in rows if r["status"] == status]
    origin = request.query_value("origin")
    if origin is not None:
        if origin not in ("CENTER", "SECURITY_SERVER"):
            raise bad_request("invalid_parameter", "origin")
        rows = [r for r in rows if r["origin"] == origin]
    types = request.query.get("types", ())
    if types:
        if not set(types) <= XROAD_TYPES:
            raise bad_request("invalid_parameter", "types")
        rows = [r for r in rows if r["type"] in types]
    server = request.query_value("server_id")
    if server:
        rows = [r for r in rows if r["security_server_id"]["encoded_id"] == server]
    text = (request.query_value("query") or "").lower()
    if text:
        rows = [r for r in rows if text in " ".join(
            [r["security_server_id"]["encoded_id"], r["security_server_owner"], r["type"], r["status"],
             r.get("client_id", {}).get("encoded_id", ""), r.get("client_owner_name", "")]).lower()]
    keys = {"id": lambda r: r["id"], "created_at": lambda r: (r["created_at"], r["id"])}
    page, metadata = paged(request, rows, keys, "id")
    return ApiResponse(200, {"items": page, "paging_metadata": metadata})


def get_request(context: RegistryContext, request: ApiRequest) -> ApiResponse:
    """GET /management-requests/{management_request_id} (``ManagementRequestDetailedView``; ``comments`` holds the
    id the security server gave the request)."""
    number = positive_int(request.params["management_request_id"], "management_request_id")
    with context.store() as store:
        found = admin.request(store, number)
        names = {str(m.id): m.name for m in admin_members.members(store)}
    data = request_json(found, names)
    data["comments"] = f"request id {found.record.id}" if found.origin != CENTRE_ORIGIN else "filed by the centre"
    return ApiResponse(200, data)


def approve(context: RegistryContext, request: ApiRequest) -> ApiResponse:
    """POST /management-requests/{management_request_id}/approval."""
    number = positive_int(request.params["management_request_id"], "management_request_id")
    with context.store() as store:
        found = admin.approve(store, number, context.now())
        names = {str(m.id): m.name for m in admin_members.members(store)}
    return ApiResponse(200, decided_json(found, names))


def decided_json(found: NumberedRequest, names: dict[str, str]) -> dict[str, Any]:
    """X-Road's ``ManagementRequest`` with the fields of its type (the discriminator's schemas): the encoded server
    id; the certificate (base64 DER) and address of an authCertReg, the encoded client id of a client request."""
    listed = request_json(found, names)
    data = {k: listed[k] for k in ("id", "type", "origin", "security_server_owner", "status", "created_at")}
    data["security_server_id"] = listed["security_server_id"]["encoded_id"]
    if found.auth_cert_der is not None:
        data["authentication_certificate"] = base64.b64encode(found.auth_cert_der).decode("ascii")
        if found.record.type is RequestType.AUTH_CERT_REG:
            data["server_address"] = found.address or ""
    if "client_id" in listed:
        data["client_id"] = listed["client_id"]["encoded_id"]
    if found.record.type is RequestType.ADDRESS_CHANGE:
        data["server_address"] = found.address or ""
    return data


ADD_FIELDS = frozenset({"type", "origin", "security_server_id", "client_id", "server_address",
                        "authentication_certificate", "subsystem_name", "comments", "id", "status", "created_at",
                        "security_server_owner"})
FILED_TYPES = {name: kind for kind, name in TYPE.items()}


def _centre_request(data: dict[str, Any]) -> CentreRequest:
    """X-Road's ``ManagementRequest`` body (the discriminator's fields) as the centre's request."""
    kind_name = string_field(data, "type")
    if kind_name not in XROAD_TYPES:
        raise bad_request("management_request_unknown_type", str(kind_name))
    if kind_name not in FILED_TYPES:
        raise bad_request("management_request_not_supported", str(kind_name))
    kind = FILED_TYPES[str(kind_name)]
    origin = string_field(data, "origin", required=False) or CENTRE_ORIGIN
    if origin != CENTRE_ORIGIN:
        # A security server's request reaches fedbus signed (/managementservice), never through this API.
        raise bad_request("management_request_not_supported", f"origin {origin}")
    server = parse_server_id(str(string_field(data, "security_server_id", max_length=1279)))
    client = None
    if kind in (RequestType.CLIENT_REG, RequestType.CLIENT_DELETION):
        text = str(string_field(data, "client_id", max_length=1279))
        client = parse_member_id(text) if text.count(":") == 2 else parse_subsystem_id(text)
    cert = None
    if kind in (RequestType.AUTH_CERT_REG, RequestType.AUTH_CERT_DELETION):
        encoded = str(string_field(data, "authentication_certificate", max_length=64 * 1024))
        try:
            cert = base64.b64decode(encoded, validate=True)
        except ValueError as err:
            raise bad_request("management_request_invalid_auth_certificate", "not base64") from err
    address = string_field(data, "server_address", required=kind is RequestType.AUTH_CERT_REG)
    return CentreRequest(kind, server, client, cert, address)


def add_request(context: RegistryContext, request: ApiRequest) -> ApiResponse:
    """POST /management-requests (addManagementRequest): the centre's request; 201 with it (a deletion approved
    at once, a registration waiting for, or paired with, its server's request)."""
    wanted = _centre_request(request.json_object(ADD_FIELDS, frozenset({"type", "security_server_id"})))
    with context.store() as store:
        found = admin.file_request(store, wanted, context.now())
        names = {str(m.id): m.name for m in admin_members.members(store)}
    return ApiResponse(201, decided_json(found, names))


def decline(context: RegistryContext, request: ApiRequest) -> ApiResponse:
    """DELETE /management-requests/{management_request_id}: decline a waiting request."""
    number = positive_int(request.params["management_request_id"], "management_request_id")
    with context.store() as store:
        admin.decline(store, number, context.now())
    return no_content()


def operations() -> list[Operation]:
    """The operations of this area."""
    one = f"{PREFIX}/management-requests/{{management_request_id}}"
    return [
        Operation("GET", f"{PREFIX}/management-requests", "findManagementRequests",
                  roles_for("findManagementRequests"), find_requests),
        Operation("POST", f"{PREFIX}/management-requests", "addManagementRequest", roles_for("addManagementRequest"),
                  add_request),
        Operation("GET", one, "getManagementRequest", roles_for("getManagementRequest"), get_request),
        Operation("POST", f"{one}/approval", "approveManagementRequest", roles_for("approveManagementRequest"),
                  approve),
        Operation("DELETE", one, "revokeManagementRequest", roles_for("revokeManagementRequest"), decline),
    ]
