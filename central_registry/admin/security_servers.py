"""Registered security servers: list, show, their clients and authentication certificates, address, delete."""

from __future__ import annotations

from cryptography import x509

from central_registry.admin.errors import ServerNotFound
from central_registry.store import RegistryError, RegistryStore, SecurityServer
from security_server.core.identifiers import SecurityServerId


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
