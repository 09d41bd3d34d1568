"""Access rights: who may call which service code, or one REST endpoint of it (UG-SS §7; default deny)."""

from __future__ import annotations

from security_server.admin.server_dir import ServerDirectory
from security_server.core.acl import AccessRight
from security_server.core.identifiers import ClientId, ServiceId


def grant(server_dir: ServerDirectory, right: AccessRight) -> None:
    """Grant ``right``; refused when it exists or names an unknown service or group."""
    with server_dir.open_store() as store:
        store.grant(right)


def revoke(server_dir: ServerDirectory, right: AccessRight) -> None:
    """Revoke exactly ``right``; refused when it was never granted."""
    with server_dir.open_store() as store:
        store.revoke(right)


def list_rights(
    server_dir: ServerDirectory, *, provider: ClientId | None = None, service: ServiceId | None = None
) -> tuple[AccessRight, ...]:
    """The rights to ``provider``'s services, or to ``service``'s code (every version), in the order granted."""
    return tuple(
        r
        for r in server_dir.snapshot().rights
        if (provider is None or r.provider == provider)
        and (service is None or (r.provider, r.service_code) == (service.client, service.service_code))
    )
