"""Hosted clients: list, search, show, add, delete (UG-SS §4), disable, enable and name (X-Road 7)."""

from __future__ import annotations

from dataclasses import dataclass

from security_server.admin.errors import (
    ActionNotPossible,
    CertificateExists,
    CertificateNotFound,
    ClientExists,
    ClientNotFound,
    Conflict,
    InvalidCertificate,
)
from security_server.admin.server_dir import ServerDirectory
from security_server.core.identifiers import ClientId
from security_server.serverconf.store import ClientState, HostedClient, ServerConfError, TlsCertificate, tls_certificate


@dataclass(frozen=True, slots=True)
class ClientFilter:
    """X-Road's client search: each given part must match exactly; members may be left out."""

    instance: str | None = None
    member_class: str | None = None
    member_code: str | None = None
    subsystem_code: str | None = None
    show_members: bool = True

    def matches(self, client: ClientId) -> bool:
        """Whether ``client`` passes the filter."""
        if client.subsystem_code is None and not self.show_members:
            return False
        wanted = (self.instance, self.member_class, self.member_code, self.subsystem_code)
        actual = (client.instance, client.member_class, client.member_code, client.subsystem_code)
        return all(want is None or want == have for want, have in zip(wanted, actual))


def list_clients(server_dir: ServerDirectory, search: ClientFilter | None = None) -> tuple[HostedClient, ...]:
    """The hosted clients (the owner member first), in the order they were added, filtered by ``search``."""
    clients = server_dir.snapshot().clients
    return clients if search is None else tuple(c for c in clients if search.matches(c.id))


def get_client(server_dir: ServerDirectory, client_id: ClientId) -> HostedClient:
    """One hosted client; :class:`ClientNotFound` when this server does not host it."""
    found = server_dir.snapshot().client(client_id)
    if found is None:
        raise ClientNotFound(f"{client_id} is not a client of this security server")
    return found


def add_client(server_dir: ServerDirectory, client_id: ClientId) -> HostedClient:
    """Add a subsystem as a client in state saved; :class:`ClientExists` when it is hosted already."""
    with server_dir.open_store() as store:
        if store.snapshot().client(client_id) is not None:
            raise ClientExists(f"{client_id} is already a client of this security server")
        return store.add_client(client_id)


DELETABLE_STATES = frozenset({ClientState.SAVED, ClientState.DELETION_IN_PROGRESS})
"""X-Road deletes a client only before it is registered or once its unregistration was sent (UG-SS §4.5)."""


def delete_client(server_dir: ServerDirectory, client_id: ClientId) -> None:
    """Delete a hosted subsystem with its services, rights and groups; :class:`ClientNotFound`, or
    :class:`ActionNotPossible` for the owner and for a client registered or in registration (unregister it first)."""
    with server_dir.open_store() as store:
        snapshot = store.snapshot()
        found = snapshot.client(client_id)
        if found is None:
            raise ClientNotFound(f"{client_id} is not a client of this security server")
        if found.is_owner or client_id == snapshot.identity.owner:
            raise ActionNotPossible("the owner member of the security server cannot be deleted")
        if found.state not in DELETABLE_STATES:
            raise ActionNotPossible(f"{client_id} is {found.state.value}: unregister it before deleting it")
        store.delete_client(client_id)


def list_tls_certificates(server_dir: ServerDirectory, client_id: ClientId) -> tuple[TlsCertificate, ...]:
    """The internal TLS certificates of a hosted client (its information systems' certificates, X-Road's
    ``tls-certificates``); :class:`ClientNotFound` when this server does not host it."""
    get_client(server_dir, client_id)
    return server_dir.snapshot().tls_certificates_of(client_id)


def get_tls_certificate(server_dir: ServerDirectory, client_id: ClientId, cert_hash: str) -> TlsCertificate:
    """One internal TLS certificate by its SHA-256 (hex, either case); :class:`CertificateNotFound` when the client
    has none such."""
    wanted = cert_hash.upper()
    for certificate in list_tls_certificates(server_dir, client_id):
        if certificate.hash == wanted:
            return certificate
    raise CertificateNotFound(f"{client_id} has no TLS certificate {cert_hash}")


def add_tls_certificate(server_dir: ServerDirectory, client_id: ClientId, data: bytes) -> TlsCertificate:
    """Add an internal TLS certificate (PEM or DER) to a hosted client: :class:`InvalidCertificate` when it is not a
    certificate, :class:`CertificateExists` when the client has it already."""
    get_client(server_dir, client_id)
    try:
        certificate = tls_certificate(client_id, data)
    except ServerConfError as err:
        raise InvalidCertificate(err.message) from err
    with server_dir.open_store() as store:
        if any(c.hash == certificate.hash for c in store.snapshot().tls_certificates_of(client_id)):
            raise CertificateExists(f"{client_id} has TLS certificate {certificate.hash} already")
        store.add_tls_certificate(certificate)
    return certificate


def delete_tls_certificate(server_dir: ServerDirectory, client_id: ClientId, cert_hash: str) -> None:
    """Remove an internal TLS certificate from a hosted client; :class:`CertificateNotFound` when it has none such."""
    found = get_tls_certificate(server_dir, client_id, cert_hash)
    with server_dir.open_store() as store:
        store.remove_tls_certificate(client_id, found.hash)


# --- X-Road 7's disabling and subsystem names -------------------------------------------------------------------


class ManagementServiceClient(Conflict):
    """The client provides the registry's management services: X-Road refuses to disable it."""

    api_code = "forbidden_disable_management_service_client"


class SameName(Conflict):
    """The subsystem has this name already."""

    api_code = "invalid_client_name"


def disable_client(server_dir: ServerDirectory, client_id: ClientId, management_provider: ClientId | None = None) -> None:
    """Disable a registered client (X-Road 7's disableClient): both proxies then refuse its exchanges as those of
    an unknown client. :class:`ClientNotFound`, :class:`ActionNotPossible` in another state,
    :class:`ManagementServiceClient` for the provider of the registry's management services."""
    found = get_client(server_dir, client_id)
    if found.state is not ClientState.REGISTERED:
        raise ActionNotPossible(f"cannot disable {client_id}: it is {found.state.value}")
    if management_provider is not None and client_id == management_provider:
        raise ManagementServiceClient(f"{client_id} provides the management services: it cannot be disabled")
    with server_dir.open_store() as store:
        store.set_client_state(client_id, ClientState.DISABLED)


def enable_client(server_dir: ServerDirectory, client_id: ClientId) -> None:
    """Enable a disabled client again (registered); :class:`ClientNotFound`, :class:`ActionNotPossible` unless it
    is disabled."""
    found = get_client(server_dir, client_id)
    if found.state is not ClientState.DISABLED:
        raise ActionNotPossible(f"cannot enable {client_id}: it is {found.state.value}")
    with server_dir.open_store() as store:
        store.set_client_state(client_id, ClientState.REGISTERED)


RENAMABLE_STATES = frozenset({ClientState.SAVED, ClientState.REGISTERED})
"""X-Road renames a subsystem saved or registered only."""


def subsystem_name(server_dir: ServerDirectory, client_id: ClientId) -> str | None:
    """The name given to a hosted subsystem here, if any."""
    return server_dir.snapshot().subsystem_names.get(client_id)


def rename_client(server_dir: ServerDirectory, client_id: ClientId, name: str) -> None:
    """Give a hosted subsystem a name (X-Road's renameClient), kept here: fedbus's registry takes no rename
    request. :class:`ClientNotFound`; :class:`ActionNotPossible` for a member or a subsystem neither saved nor
    registered; :class:`SameName` when it has that name already."""
    found = get_client(server_dir, client_id)
    if client_id.subsystem_code is None:
        raise ActionNotPossible("only a subsystem can be renamed")
    if found.state not in RENAMABLE_STATES:
        raise ActionNotPossible(f"cannot rename {client_id}: it is {found.state.value}")
    if subsystem_name(server_dir, client_id) == name:
        raise SameName(f"{client_id} is named {name!r} already")
    with server_dir.open_store() as store:
        store.set_subsystem_name(client_id, name)
