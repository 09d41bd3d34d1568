"""``/security-servers``: list (search, sort, paging), show, clients, authentication certificates, address, delete."""

from __future__ import annotations

from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from central_registry.admin import members as admin_members
from central_registry.admin import security_servers as admin
from central_registry.management.context import RegistryContext
from central_registry.management.operations.common import (
    PREFIX,
    client_json,
    paged,
    parse_server_id,
    positive_int,
    server_id_json,
    server_id_text,
)
from central_registry.management.permissions import roles_for
from central_registry.store import RegistryStore, SecurityServer
from security_server.management.certificates import certificate_details
from security_server.management.errors import ApiError
from security_server.management.api import ApiRequest, ApiResponse, Operation, no_content, string_field


def server_json(server: SecurityServer, owner_name: str) -> dict[str, Any]:
    """X-Road's ``SecurityServer`` (fedbus has no maintenance mode in the registry: always false)."""
    return {
        "server_id": server_id_json(server.id),
        "server_address": server.address,
        "owner_name": owner_name,
        "in_maintenance_mode": False,
    }


def _names(store: RegistryStore) -> dict[str, str]:
    return {str(m.id): m.name for m in admin_members.members(store)}


def find_servers(context: RegistryContext, request: ApiRequest) -> ApiResponse:
    """GET /security-servers: ``q`` matches the identifier, address or owner name (case-insensitive)."""
    query = (request.query_value("q") or "").lower()
    with context.store() as store:
        names = _names(store)
        servers = admin.security_servers(store)
    rows = [server_json(s, names.get(str(s.id.owner), "")) for s in servers]
    if query:
        rows = [r for r in rows if query in r["server_id"]["encoded_id"].lower() or query in r["server_address"].lower()
                or query in r["owner_name"].lower()]
    keys = {
        "server_id.server_code": lambda r: r["server_id"]["server_code"],
        "server_id.member_class": lambda r: r["server_id"]["member_class"],
        "server_id.member_code": lambda r: r["server_id"]["member_code"],
        "owner_name": lambda r: r["owner_name"],
        "server_address": lambda r: r["server_address"],
    }
    page, metadata = paged(request, rows, keys, "server_id.server_code")
    return ApiResponse(200, {"items": page, "paging_metadata": metadata})


def get_server(context: RegistryContext, request: ApiRequest) -> ApiResponse:
    """GET /security-servers/{server_id}."""
    server_id = parse_server_id(request.params["server_id"])
    with context.store() as store:
        server = admin.security_server(store, server_id)
        return ApiResponse(200, server_json(server, _names(store).get(str(server_id.owner), "")))


def server_clients(context: RegistryContext, request: ApiRequest) -> ApiResponse:
    """GET /security-servers/{server_id}/clients: each client with its member's name."""
    server_id = parse_server_id(request.params["server_id"])
    with context.store() as store:
        server = admin.security_server(store, server_id)
        names = _names(store)
    return ApiResponse(200, [client_json(c, names.get(str(c.member), "")) for c in server.clients])


def cert_id(cert: x509.Certificate) -> int:
    """An authentication certificate's number: the first 31 bits of its SHA-256 (stable and positive)."""
    return int.from_bytes(cert.fingerprint(hashes.SHA256())[:4], "big") >> 1


def delete_auth_cert(context: RegistryContext, request: ApiRequest) -> ApiResponse:
    """DELETE /security-servers/{server_id}/authentication-certificates/{certificate_id}."""
    server_id = parse_server_id(request.params["server_id"])
    number = positive_int(request.params["certificate_id"], "certificate_id")
    with context.store() as store:
        found = [c for c in admin.auth_certificates(store, server_id) if cert_id(c) == number]
        if not found:
            raise ApiError(404, "authentication_certificate_not_found", str(number))
        admin.delete_auth_certificate(store, server_id, found[0])
    return no_content()


def server_auth_certs(context: RegistryContext, request: ApiRequest) -> ApiResponse:
    """GET /security-servers/{server_id}/authentication-certificates: X-Road's ``CertificateDetails`` of each, with
    an ``id`` (X-Road numbers certificates; fedbus keys them by hash: its first 31 bits, stable and positive)."""
    server_id = parse_server_id(request.params["server_id"])
    with context.store() as store:
        certs = admin.auth_certificates(store, server_id)
    answer = []
    for cert in certs:
        details = certificate_details(cert)
        details["id"] = cert_id(cert)
        answer.append(details)
    return ApiResponse(200, answer)


def update_address(context: RegistryContext, request: ApiRequest) -> ApiResponse:
    """PATCH /security-servers/{server_id}: the address, published in the next configuration."""
    data = request.json_object(frozenset({"server_address"}), frozenset({"server_address"}))
    address = string_field(data, "server_address")
    assert address is not None
    server_id = parse_server_id(request.params["server_id"])
    with context.store() as store:
        server = admin.change_address(store, server_id, address)
        return ApiResponse(200, server_json(server, _names(store).get(str(server_id.owner), "")))


def delete_server(context: RegistryContext, request: ApiRequest) -> ApiResponse:
    """DELETE /security-servers/{server_id}."""
    server_id = parse_server_id(request.params["server_id"])
    with context.store() as store:
        admin.delete_security_server(store, server_id)
    return no_content()


def operations() -> list[Operation]:
    """The operations of this area."""
    server = f"{PREFIX}/security-servers/{{server_id}}"
    return [
        Operation("GET", f"{PREFIX}/security-servers", "findSecurityServers", roles_for("findSecurityServers"),
                  find_servers),
        Operation("GET", server, "getSecurityServer", roles_for("getSecurityServer"), get_server),
        Operation("PATCH", server, "updateSecurityServerAddress", roles_for("updateSecurityServerAddress"),
                  update_address),
        Operation("DELETE", server, "deleteSecurityServer", roles_for("deleteSecurityServer"), delete_server),
        Operation("GET", f"{server}/authentication-certificates", "getSecurityServerAuthCerts",
                  roles_for("getSecurityServerAuthCerts"), server_auth_certs),
        Operation("DELETE", f"{server}/authentication-certificates/{{certificate_id}}", "deleteSecurityServerAuthCert",
                  roles_for("deleteSecurityServerAuthCert"), delete_auth_cert),
        Operation("GET", f"{server}/clients", "getSecurityServerClients", roles_for("getSecurityServerClients"),
                  server_clients),
    ]
