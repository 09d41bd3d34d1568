"""Access rights: who may call which service code, or one REST endpoint of it (UG-SS §7; default deny)."""

from __future__ import annotations

from typing import Sequence

from security_server.admin.errors import (
    AccessRightExists,
    AccessRightNotFound,
    ClientNotFound,
    LocalGroupNotFound,
    NotFound,
    ServiceNotFound,
)
from security_server.admin.server_dir import ServerDirectory
from security_server.core.acl import AccessRight, Endpoint, Subject
from security_server.core.identifiers import ClientId, LocalGroupId, ServiceId
from security_server.serverconf.store import ServerConfSnapshot, ServiceKind

WHOLE_SERVICE = Endpoint("*", "**")
"""The endpoint X-Road generates for every REST service: any method, any path."""


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


def _check_provider(snapshot: ServerConfSnapshot, provider: ClientId) -> None:
    if snapshot.client(provider) is None:
        raise ClientNotFound(f"{provider} is not a client of this security server")


def _check_subject(snapshot: ServerConfSnapshot, provider: ClientId, subject: Subject) -> None:
    if isinstance(subject, LocalGroupId) and subject not in snapshot.local_groups(provider):
        raise LocalGroupNotFound(f"{provider} has no local group {subject.group_code}")


def service_clients(
    server_dir: ServerDirectory, provider: ClientId, service_code: str | None = None
) -> tuple[Subject, ...]:
    """The subjects holding a right to ``provider``'s services (or to one service code), first grant first."""
    snapshot = server_dir.snapshot()
    _check_provider(snapshot, provider)
    if service_code is not None and not any(s.id.service_code == service_code for s in snapshot.services_of(provider)):
        raise ServiceNotFound(f"{provider} has no service {service_code}")
    found = (r.subject for r in snapshot.rights if r.provider == provider and service_code in (None, r.service_code))
    return tuple(dict.fromkeys(found))


def rights_of(server_dir: ServerDirectory, provider: ClientId, subject: Subject) -> tuple[AccessRight, ...]:
    """The rights ``subject`` holds to ``provider``'s services."""
    snapshot = server_dir.snapshot()
    _check_provider(snapshot, provider)
    return tuple(r for r in snapshot.rights if r.provider == provider and r.subject == subject)


def grant_all(server_dir: ServerDirectory, rights: Sequence[AccessRight]) -> None:
    """Grant several rights; refused as a whole (nothing granted) when one exists or names something unknown."""
    with server_dir.open_store() as store:
        snapshot = store.snapshot()
        for right in rights:
            _check_provider(snapshot, right.provider)
            if not any(s.id.service_code == right.service_code for s in snapshot.services_of(right.provider)):
                raise ServiceNotFound(f"{right.provider} has no service {right.service_code}")
            _check_subject(snapshot, right.provider, right.subject)
            if right in snapshot.rights:
                raise AccessRightExists(f"{right.subject} already has this right to {right.service_code}")
        for right in dict.fromkeys(rights):
            store.grant(right)


def revoke_all(server_dir: ServerDirectory, rights: Sequence[AccessRight]) -> None:
    """Revoke several rights; refused as a whole when one of them was never granted."""
    with server_dir.open_store() as store:
        snapshot = store.snapshot()
        for right in rights:
            _check_provider(snapshot, right.provider)
            if right not in snapshot.rights:
                raise AccessRightNotFound(f"{right.subject} has no right to {right.service_code} of {right.provider}")
        for right in dict.fromkeys(rights):
            store.revoke(right)


class EndpointNotFound(NotFound):
    """The REST service has no such endpoint."""

    api_code = "endpoint_not_found"


def get_endpoint(server_dir: ServerDirectory, service: ServiceId, endpoint: Endpoint) -> Endpoint:
    """An endpoint of a REST service (declared by its OpenAPI description, or ``* **``, the whole service)."""
    snapshot = server_dir.snapshot()
    _check_provider(snapshot, service.client)
    found = [s for s in snapshot.services_of(service.client)
             if s.id.service_code == service.service_code and s.kind is ServiceKind.REST]
    if not found:
        raise ServiceNotFound(f"{service.client} has no REST service {service.service_code}")
    if endpoint != WHOLE_SERVICE and endpoint not in found[0].endpoints:
        raise EndpointNotFound(f"service {service.service_code} has no endpoint {endpoint}")
    return endpoint


def endpoint_clients(server_dir: ServerDirectory, service: ServiceId, endpoint: Endpoint) -> tuple[Subject, ...]:
    """The subjects holding a right to exactly this endpoint, first grant first."""
    get_endpoint(server_dir, service, endpoint)
    rights = server_dir.snapshot().rights
    found = (r.subject for r in rights
             if r.provider == service.client and r.service_code == service.service_code and r.endpoint == endpoint)
    return tuple(dict.fromkeys(found))
