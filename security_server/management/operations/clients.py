"""``/clients``: list and search, show, add (X-Road's ``Client`` and ``ClientAdd``), each client's internal TLS
certificates (``/clients/{id}/tls-certificates``), X-Road 7's disable, enable and rename, the servers hosting a
client, its service clients and their candidates, and the keys a deleted client left (``orphans``)."""

from __future__ import annotations

from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, Callable, Mapping

from cryptography import x509
from twisted.internet.defer import Deferred

from security_server.admin import clients, orphans, registration, service_clients
from security_server.admin.clients import ClientFilter
from security_server.admin.errors import ActionNotPossible, Conflict
from security_server.core.errors import BusError, InvalidClientIdentifier
from security_server.core.acl import Subject
from security_server.core.globalconf import GlobalConf
from security_server.core.identifiers import ClientId, LocalGroupId
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
from security_server.management.ids import client_id_text, parse_client_id, parse_subject
from security_server.management.operations.access_rights import service_client_json
from security_server.management.operations.common import PREFIX
from security_server.management.operations.federation import server_json
from security_server.management.permissions import roles_for
from security_server.serverconf.store import ClientState, HostedClient, TlsCertificate
from security_server.signer.softtoken import KeyKind

_STATUS = {
    ClientState.SAVED: "SAVED",
    ClientState.REGISTRATION_IN_PROGRESS: "REGISTRATION_IN_PROGRESS",
    ClientState.REGISTERED: "REGISTERED",
    ClientState.DELETION_IN_PROGRESS: "DELETION_IN_PROGRESS",
    ClientState.DISABLED: "DISABLED",
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
    client: HostedClient, signers: set[ClientId], names: Callable[[ClientId], str | None] = lambda _: None,
    subsystem_names: Mapping[ClientId, str] = MappingProxyType({}),
) -> dict[str, Any]:
    """X-Road's ``Client``, with the member's name when the global configuration knows it and the subsystem's
    name given here (``rename_status`` ``NAME_SET``: kept, not sent to the registry), and its stored
    connection type (``PATCH /clients/{id}``, operations/client_connection.py)."""
    data: dict[str, Any] = {
        "id": client_id_text(client.id),
        "instance_id": client.id.instance,
        "member_class": client.id.member_class,
        "member_code": client.id.member_code,
        "owner": client.is_owner,
        "has_valid_local_sign_cert": client.id.member in signers,
        "connection_type": client.connection_type.value,
        "status": _STATUS[client.state],
    }
    if client.id.subsystem_code is not None:
        data["subsystem_code"] = client.id.subsystem_code
    if client.id in subsystem_names:
        data["subsystem_name"] = subsystem_names[client.id]
        data["rename_status"] = "NAME_SET"
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
    names, subsystems = member_names(context), context.server_dir.snapshot().subsystem_names
    return ApiResponse(200, [client_json(c, signers, names, subsystems) for c in found])


def get_client(context: OperationContext, request: ApiRequest) -> ApiResponse:
    """``GET /clients/{id}``."""
    found = clients.get_client(context.server_dir, parse_client_id(request.params["id"]))
    subsystems = context.server_dir.snapshot().subsystem_names
    return ApiResponse(200, client_json(found, _members_with_valid_sign_cert(context), member_names(context), subsystems))


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


def get_client_security_servers(context: OperationContext, request: ApiRequest) -> ApiResponse:
    """``GET /clients/{id}/security-servers``: the servers the global configuration registers the client on (any
    client of the instance, hosted here or not)."""
    client = parse_client_id(request.params["id"])
    if context.global_conf is None:
        raise ApiError(404, "global_conf_unavailable", "the management API runs without the server")
    servers = context.global_conf().security_servers_of(client)
    return ApiResponse(200, [server_json(s.id, s.address) for s in servers])


def get_service_client(context: OperationContext, request: ApiRequest) -> ApiResponse:
    """``GET /clients/{id}/service-clients/{sc_id}``: one subject holding a right to the client's services, with
    its name (the member's, or the group's description) when known; 404 ``service_client_not_found``."""
    provider = parse_client_id(request.params["id"])
    subject = service_clients.service_client(
        context.server_dir, provider, parse_subject(provider, request.params["sc_id"]))
    return ApiResponse(200, _named(service_client_json(provider, subject), _subject_name(context, provider, subject)))


def _named(data: dict[str, Any], name: str | None) -> dict[str, Any]:
    return data | ({"name": name} if name else {})


def _subject_name(context: OperationContext, provider: ClientId, subject: Subject) -> str | None:
    if isinstance(subject, LocalGroupId):
        found = [g for g in context.server_dir.snapshot().groups if g.owner == provider and g.id == subject]
        return found[0].description if found else None
    if isinstance(subject, ClientId):
        return member_names(context)(subject)
    conf = _global_conf(context)
    group = conf.global_group(subject) if conf is not None else None
    return group.description if group is not None else None


def _global_conf(context: OperationContext) -> GlobalConf | None:
    if context.global_conf is None:
        return None
    try:
        return context.global_conf()
    except BusError:
        return None


_CANDIDATE_FILTERS = ("member_name_group_description", "instance", "member_class", "member_group_code",
                      "subsystem_code")


def find_service_client_candidates(context: OperationContext, request: ApiRequest) -> ApiResponse:
    """``GET /clients/{id}/service-client-candidates``: the subsystems and global groups of the global
    configuration and the client's local groups, filtered as X-Road filters them (a name or description part,
    ``service_client_type``, instance and member class exactly, member or group code and subsystem code as
    parts; case ignored)."""
    provider = parse_client_id(request.params["id"])
    values = {name: request.query_value(name) or None for name in _CANDIDATE_FILTERS}
    if any(v is not None and len(v) > 255 for v in values.values()):
        raise bad_request("invalid_parameter", *(n for n, v in values.items() if v is not None and len(v) > 255))
    kind = request.query_value("service_client_type") or None
    if kind not in (None, "SUBSYSTEM", "GLOBALGROUP", "LOCALGROUP"):
        raise bad_request("invalid_parameter", "service_client_type")
    search = service_clients.CandidateSearch(
        values["member_name_group_description"], kind, values["instance"], values["member_class"],
        values["member_group_code"], values["subsystem_code"])
    found = service_clients.candidates(context.server_dir, provider, _global_conf(context), search)
    unique = dict.fromkeys(found)
    return ApiResponse(200, [_named(service_client_json(provider, c.subject), c.name) for c in unique])


def _no_409(call: Callable[[], None]) -> ApiResponse:
    """Run a state change whose refusals X-Road's file lists no 409 for: a conflict is answered 400 with its
    code (docs/compatibility.md)."""
    try:
        call()
    except Conflict as err:
        raise ApiError(400, err.api_code, err.message) from err
    return ApiResponse(204)


def disable_client(context: OperationContext, request: ApiRequest) -> ApiResponse:
    """``PUT /clients/{id}/disable``: a REGISTERED client becomes DISABLED at once (fedbus's registry takes no
    clientDisable request); the proxies then refuse its exchanges with ``server.clientproxy.unknown_member`` /
    ``server.serverproxy.unknown_member``, as X-Road's. 400 ``action_not_possible`` in another state."""
    client = parse_client_id(request.params["id"])
    provider = None
    if context.global_conf is not None:
        try:
            provider = context.global_conf().management_service.management_request_service_provider_id
        except BusError:
            provider = None
    return _no_409(lambda: clients.disable_client(context.server_dir, client, provider))


def enable_client(context: OperationContext, request: ApiRequest) -> ApiResponse:
    """``PUT /clients/{id}/enable``: a DISABLED client is REGISTERED again; 400 ``action_not_possible`` otherwise."""
    client = parse_client_id(request.params["id"])
    return _no_409(lambda: clients.enable_client(context.server_dir, client))


_FORBIDDEN_IN_NAME = frozenset(":;/\\%")


def rename_client(context: OperationContext, request: ApiRequest) -> ApiResponse:
    """``PUT /clients/{id}/rename``: X-Road's ``ClientName``; the name is kept here (``rename_status``
    ``NAME_SET``): fedbus's registry takes no rename request. 400 ``invalid_client_name`` for the same name,
    ``action_not_possible`` for a member or a subsystem neither saved nor registered."""
    client = parse_client_id(request.params["id"])
    data = request.json_object(frozenset({"client_name"}), frozenset({"client_name"}))
    name = str(string_field(data, "client_name"))
    if not name or any(ch in _FORBIDDEN_IN_NAME or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in name):
        raise bad_request("invalid_field", "client_name")
    return _no_409(lambda: clients.rename_client(context.server_dir, client, name))


def get_client_orphans(context: OperationContext, request: ApiRequest) -> ApiResponse:
    """``GET /clients/{id}/orphans``: ``{"orphans_exist": true}`` when the deleted client's member left sign keys,
    certificates or requests; 404 ``orphans_not_found`` otherwise (also while a client of the member is hosted)."""
    client = parse_client_id(request.params["id"])
    if not orphans.orphan_keys(context.server_dir, client):
        raise ApiError(404, "orphans_not_found", client_id_text(client))
    return ApiResponse(200, {"orphans_exist": True})


def delete_client_orphans(context: OperationContext, request: ApiRequest) -> ApiResponse:
    """``DELETE /clients/{id}/orphans``: those keys with their certificates and requests; 404 ``orphans_not_found``."""
    orphans.delete_orphans(context.server_dir, parse_client_id(request.params["id"]), now=context.now())
    return ApiResponse(204)


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
    Operation("GET", f"{PREFIX}/clients/{{id}}/service-clients/{{sc_id}}", "getServiceClient",
              roles_for("getServiceClient"), get_service_client),
    Operation("GET", f"{PREFIX}/clients/{{id}}/service-client-candidates", "findServiceClientCandidates",
              roles_for("findServiceClientCandidates"), find_service_client_candidates),
    Operation("GET", f"{PREFIX}/clients/{{id}}/security-servers", "getClientSecurityServers",
              roles_for("getClientSecurityServers"), get_client_security_servers),
    Operation("PUT", f"{PREFIX}/clients/{{id}}/disable", "disableClient", roles_for("disableClient"), disable_client),
    Operation("PUT", f"{PREFIX}/clients/{{id}}/enable", "enableClient", roles_for("enableClient"), enable_client),
    Operation("PUT", f"{PREFIX}/clients/{{id}}/rename", "renameClient", roles_for("renameClient"), rename_client),
    Operation("GET", f"{PREFIX}/clients/{{id}}/orphans", "getClientOrphans", roles_for("getClientOrphans"),
              get_client_orphans),
    Operation("DELETE", f"{PREFIX}/clients/{{id}}/orphans", "deleteOrphans", roles_for("deleteOrphans"),
              delete_client_orphans),
)
