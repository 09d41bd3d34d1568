"""Registered security servers: list, show, their clients and authentication certificates, address, delete."""

from __future__ import annotations

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from central_registry.admin.errors import NotFound, ServerNotFound
from central_registry.store import RegistryError, RegistryStore, SecurityServer, auth_cert_hash
from security_server.core.identifiers import ClientId, SecurityServerId


def security_servers(store: RegistryStore) -> list[SecurityServer]:
    """Every server, ordered by identifier."""
    return store.security_servers()


def security_server(store: RegistryStore, server_id: SecurityServerId) -> SecurityServer:
    """One server; :class:`ServerNotFound` when there is none."""
    found = store.security_server(server_id)
    if found is None:
        raise ServerNotFound(f"unknown security server {server_id}")
    return found


def auth_certificates(store: RegistryStore, server_id: SecurityServerId) -> list[x509.Certificate]:
    """The server's registered authentication certificates, in the order of their hashes."""
    security_server(store, server_id)
    rows = store.db.query("SELECT cert_der FROM auth_certs WHERE server_id = ? ORDER BY hash", [str(server_id)])
    return [x509.load_der_x509_certificate(bytes(row["cert_der"])) for row in rows]


def change_address(store: RegistryStore, server_id: SecurityServerId, address: str) -> SecurityServer:
    """Change the address other servers reach it at (published in the next configuration)."""
    security_server(store, server_id)
    if not address.strip() or any(c.isspace() for c in address):
        raise RegistryError("a security server address is a host name or an address")
    with store.transaction("security_server_address_changed", {"server": str(server_id), "address": address}):
        store.db.execute("UPDATE security_servers SET address = ? WHERE id = ?", [address, str(server_id)])
    return security_server(store, server_id)


def delete_security_server(store: RegistryStore, server_id: SecurityServerId) -> None:
    """Delete a server with its certificates and client registrations."""
    security_server(store, server_id)
    store.delete_server(server_id)


def delete_auth_certificate(store: RegistryStore, server_id: SecurityServerId, cert: x509.Certificate) -> None:
    """Remove one of the server's authentication certificates (it can no longer authenticate with it)."""
    security_server(store, server_id)
    store.delete_auth_cert(server_id, auth_cert_hash(cert.public_bytes(serialization.Encoding.DER)))


def unregister_client(store: RegistryStore, server_id: SecurityServerId, client: ClientId) -> None:
    """End ``client``'s registration on the server (the owner member stays: it owns the server)."""
    server = security_server(store, server_id)
    if client not in server.clients:
        raise ClientNotRegistered(f"{client} is not a client of {server_id}")
    if client == server_id.owner:
        raise RegistryError(f"{client} owns {server_id}: delete the server instead")
    store.remove_server_client(server_id, client)


def servers_used_by(store: RegistryStore, member_id: ClientId) -> list[SecurityServer]:
    """The servers that host the member or one of its subsystems."""
    return [s for s in store.security_servers() if any(c.member == member_id for c in s.clients)]


class ClientNotRegistered(NotFound):
    """The client is not registered on the server."""

    api_code = "client_not_registered"
