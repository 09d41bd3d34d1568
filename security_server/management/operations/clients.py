"""``/clients``: list and search, show, add (X-Road's ``Client`` and ``ClientAdd``), and each client's internal TLS
certificates (``/clients/{id}/tls-certificates``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Callable

from cryptography import x509
from twisted.internet.defer import Deferred

from security_server.admin import clients, registration
from security_server.admin.clients import ClientFilter
from security_server.admin.errors import ActionNotPossible
from security_server.core.errors import BusError, InvalidClientIdentifier
from security_server.core.identifiers import ClientId
from security_server.management.api import (
    ApiRequest,
    ApiResponse,
    Operation,
    bool_field,
    string_field,
)
from security_server.management.certificates import certificate_details
from security_server.management.context import OperationContext
from security_server.management.errors import ApiError, bad_request
from security_server.management.ids import client_id_text, parse_client_id
from security_server.management.operations.common import PREFIX
from security_server.management.permissions import roles_for
from security_server.serverconf.store import ClientState, HostedClient, TlsCertificate
from security_server.signer.softtoken import KeyKind

_STATUS = {
    ClientState.SAVED: "SAVED",
    ClientState.REGISTRATION_IN_PROGRESS: "REGISTRATION_IN_PROGRESS",
    ClientState.REGISTERED: "REGISTERED",
    ClientState.DELETION_IN_PROGRESS: "DELETION_IN_PROGRESS",
}
_CLIENT_FIELDS = frozenset({
    "id", "instance_id", "member_name", "member_class", "member_code", "subsystem_code", "subsystem_name", "owner",
    "has_valid_local_sign_cert", "is_management_services_provider", "rename_status", "connection_type", "status",
})
"""The fields of X-Road's ``Client``; in a request only member class, member code and subsystem code count (the
rest are read-only)."""


def _members_with_valid_sign_cert(context: OperationContext) -> set[ClientId]:
    now = datetime.now(UTC)
    return {
        k.owner for k in context.server_dir.soft_token().list()
        if k.kind is KeyKind.SIGN and k.cert is not None and k.cert.not_valid_after_utc > now and isinstance(k.owner, ClientId)
    }


def member_names(context: OperationContext) -> Callable[[ClientId], str | None]:
    """Members' names from the global configuration in force (none known without it)."""
    if context.global_conf is None:
        return lambda _: None
    try:
        conf = context.global_conf()
    except BusError:
        return lambda _: None
    return lambda client: conf.member_name(client.member)


def client_json(
    client: HostedClient, signers: set[ClientId], names: Callable[[ClientId], str | None] = lambda _: None
) -> dict[str, Any]:
    """X-Road's ``Client``, with the member's name when the global configuration knows it. The client proxy
    listens on plain HTTP on loopback: connection type ``HTTP``."""
    data: dict[str, Any] = {
        "id": client_id_text(client.id),
        "instance_id": client.id.instance,
        "member_class": client.id.member_class,
        "member_code": client.id.member_code,
        "owner": client.is_owner,
        "has_valid_local_sign_cert": client.id.member in signers,
        "connection_type": "HTTP",
        "status": _STATUS[client.state],
    }
    if client.id.subsystem_code is not None:
        data["subsystem_code"] = client.id.subsystem_code
    name = names(client.id)
    if name:
        data["member_name"] = name
    return data


def find_clients(context: OperationContext, request: ApiRequest) -> ApiResponse:
    """``GET /clients``: the hosted clients, filtered by the given parts (exact match)."""
    for name in ("local_valid_sign_cert",):
        request.query_bool(name, False)
    if not request.query_bool("internal_search", True) or request.query_bool("exclude_local", False):
        # Searching the global configuration's members is not implemented yet: only local clients are listed.
        return ApiResponse(200, [])
    search = ClientFilter(
        instance=request.query_value("instance") or None,
        member_class=request.query_value("member_class") or None,
        member_code=request.query_value("member_code") or None,
        subsystem_code=request.query_value("subsystem_code") or None,
        show_members=request.query_bool("show_members", True),
    )
    found = clients.list_clients(context.server_dir, search)
    signers = _members_with_valid_sign_cert(context)
    wanted = request.query_value("local_valid_sign_cert")
    if wanted is not None:
        found = tuple(c for c in found if (c.id.member in signers) == (wanted.lower() == "true"))
    names = member_names(context)
    return ApiResponse(200, [client_json(c, signers, names) for c in found])


def get_client(context: OperationContext, request: ApiRequest) -> ApiResponse:
    """``GET /clients/{id}``."""
    found = clients.get_client(context.server_dir, parse_client_id(request.params["id"]))
    return ApiResponse(200, client_json(found, _members_with_valid_sign_cert(context), member_names(context)))


def add_client(context: OperationContext, request: ApiRequest) -> ApiResponse:
    """``POST /clients``: a subsystem of this server's instance, added in state SAVED."""
    data = request.json_object(frozenset({"client", "ignore_warnings"}), frozenset({"client"}))
    bool_field(data, "ignore_warnings")
    given = data["client"]
    if not isinstance(given, dict):
        raise bad_request("invalid_field", "client")
    unknown = sorted(set(given) - _CLIENT_FIELDS)
    if unknown:
        raise bad_request("unknown_field", *(f"client.{name}" for name in unknown))
    member_class = string_field(given, "member_class")
    member_code = string_field(given, "member_code")
    subsystem_code = string_field(given, "subsystem_code", required=False)
    instance = context.server_dir.snapshot().identity.instance
    try:
        client_id = ClientId(instance, str(member_class), str(member_code), subsystem_code)
    except InvalidClientIdentifier as err:
        raise ApiError(400, "invalid_client_id", err.message) from err
    added = clients.add_client(context.server_dir, client_id)
    return ApiResponse(201, client_json(added, _members_with_valid_sign_cert(context), member_names(context)))


def register_client(context: OperationContext, request: ApiRequest) -> Deferred[ApiResponse]:
    """``PUT /clients/{id}/register``: clientReg to the registry (pr-mserv §2.1); the client is then in
    REGISTRATION_IN_PROGRESS until the registry approves. Runs on the reactor thread (it talks to the registry)."""
    client = parse_client_id(request.params["id"])
    if context.register_client is None:
        raise ApiError(404, "registration_unavailable", "the management API runs without the server")
    assert context.blocking is not None
    register = context.register_client
    checked = context.blocking(lambda: registration.check_registrable(context.server_dir, client))
    return checked.addCallback(lambda _: register(client)).addCallback(lambda _: ApiResponse(204))


def unregister_client(context: OperationContext, request: ApiRequest) -> Deferred[ApiResponse]:
    """``PUT /clients/{id}/unregister``: clientDeletion to the registry (pr-mserv §2.4) for a registered subsystem
    (or one in registration); the client is then DELETION_IN_PROGRESS and can be deleted. 400 for a member or a
    client not registered. Runs on the reactor thread (it talks to the registry)."""
    client = parse_client_id(request.params["id"])
    if context.unregister_client is None:
        raise ApiError(404, "registration_unavailable", "the management API runs without the server")
    assert context.blocking is not None
    unregister = context.unregister_client
    checked = context.blocking(lambda: registration.check_unregistrable(context.server_dir, client))
    return checked.addCallback(lambda _: unregister(client)).addCallback(lambda _: ApiResponse(204))


def delete_client(context: OperationContext, request: ApiRequest) -> ApiResponse:
    """``DELETE /clients/{id}``: a subsystem saved or with its unregistration sent. The owner and a registered
    client are refused with ``action_not_possible`` as 400: X-Road's implementation answers 409, its OpenAPI file
    documents no 409 for this operation, and the file wins (docs/compatibility.md)."""
    try:
        clients.delete_client(context.server_dir, parse_client_id(request.params["id"]))
    except ActionNotPossible as err:
        raise ApiError(400, err.api_code, err.message) from err
    return ApiResponse(204)


def find_member_name(context: OperationContext, request: ApiRequest) -> ApiResponse:
    """``GET /member-names?member_class=&member_code=``: a member of this server's instance, by the global
    configuration."""
    member_class, member_code = request.query_value("member_class"), request.query_value("member_code")
    if not member_class or not member_code:
        raise bad_request("missing_parameter", "member_class", "member_code")
    instance = context.server_dir.snapshot().identity.instance
    try:
        member = ClientId(instance, member_class, member_code)
    except InvalidClientIdentifier as err:
        raise ApiError(400, "invalid_client_id", err.message) from err
    if context.global_conf is None:
        raise ApiError(404, "global_conf_unavailable", "the management API runs without the server")
    name = member_names(context)(member)
    if name is None:
        raise ApiError(404, "member_not_found", client_id_text(member))
    return ApiResponse(200, {"member_name": name})


MAX_CERTIFICATE_BYTES = 64 * 1024
"""The largest TLS certificate upload accepted (as the token certificates' import)."""


def _tls_json(certificate: TlsCertificate) -> dict[str, Any]:
    return certificate_details(x509.load_der_x509_certificate(certificate.der))


def get_tls_certificates(context: OperationContext, request: ApiRequest) -> ApiResponse:
    """``GET /clients/{id}/tls-certificates``: the client's internal TLS certificates (its information systems')."""
    found = clients.list_tls_certificates(context.server_dir, parse_client_id(request.params["id"]))
    return ApiResponse(200, [_tls_json(c) for c in found])


def get_tls_certificate(context: OperationContext, request: ApiRequest) -> ApiResponse:
    """``GET /clients/{id}/tls-certificates/{hash}``: one by its SHA-256 (hex, either case); 404
    ``certificate_not_found``."""
    found = clients.get_tls_certificate(
        context.server_dir, parse_client_id(request.params["id"]), request.params["hash"]
    )
    return ApiResponse(200, _tls_json(found))


def add_tls_certificate(context: OperationContext, request: ApiRequest) -> ApiResponse:
    """``POST /clients/{id}/tls-certificates``: a certificate (PEM or DER, the whole body); 400
    ``invalid_certificate`` when it is not one, 409 ``certificate_already_exists`` when the client has it."""
    if not request.body or len(request.body) > MAX_CERTIFICATE_BYTES:
        raise bad_request("invalid_certificate", "the body is a PEM or DER certificate of at most 64 KiB")
    added = clients.add_tls_certificate(context.server_dir, parse_client_id(request.params["id"]), request.body)
    return ApiResponse(201, _tls_json(added))


def delete_tls_certificate(context: OperationContext, request: ApiRequest) -> ApiResponse:
    """``DELETE /clients/{id}/tls-certificates/{hash}``; 404 ``certificate_not_found``."""
    clients.delete_tls_certificate(context.server_dir, parse_client_id(request.params["id"]), request.params["hash"])
    return ApiResponse(204)


OPERATIONS = (
    Operation("GET", f"{PREFIX}/clients", "findClients", roles_for("findClients"), find_clients),
    Operation("POST", f"{PREFIX}/clients", "addClient", roles_for("addClient"), add_client),
    Operation("GET", f"{PREFIX}/clients/{{id}}", "getClient", roles_for("getClient"), get_client),
    Operation("DELETE", f"{PREFIX}/clients/{{id}}", "deleteClient", roles_for("deleteClient"), delete_client),
    Operation("PUT", f"{PREFIX}/clients/{{id}}/register", "registerClient", roles_for("registerClient"),
              register_client, in_reactor=True),
    Operation("PUT", f"{PREFIX}/clients/{{id}}/unregister", "unregisterClient", roles_for("unregisterClient"),
              unregister_client, in_reactor=True),
    Operation("GET", f"{PREFIX}/clients/{{id}}/tls-certificates", "getClientTlsCertificates",
              roles_for("getClientTlsCertificates"), get_tls_certificates),
    Operation("POST", f"{PREFIX}/clients/{{id}}/tls-certificates", "addClientTlsCertificate",
              roles_for("addClientTlsCertificate"), add_tls_certificate),
    Operation("GET", f"{PREFIX}/clients/{{id}}/tls-certificates/{{hash}}", "getClientTlsCertificate",
              roles_for("getClientTlsCertificate"), get_tls_certificate),
    Operation("DELETE", f"{PREFIX}/clients/{{id}}/tls-certificates/{{hash}}", "deleteClientTlsCertificate",
              roles_for("deleteClientTlsCertificate"), delete_tls_certificate),
    Operation("GET", f"{PREFIX}/member-names", "findMemberName", roles_for("findMemberName"), find_member_name),
)
