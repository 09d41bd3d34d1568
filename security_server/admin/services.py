"""Services of the hosted clients: publish, change, enable, disable, list (UG-SS §6)."""

from __future__ import annotations

from security_server.admin.errors import ServiceNotFound
from security_server.admin.server_dir import ServerDirectory
from security_server.core.identifiers import ClientId, ServiceId
from security_server.serverconf.store import DEFAULT_TIMEOUT_SECONDS, Service, ServiceKind


def add_service(
    server_dir: ServerDirectory,
    service_id: ServiceId,
    *,
    url: str,
    kind: ServiceKind = ServiceKind.SOAP,
    timeout_seconds: int = DEFAULT_TIMEOUT_SECONDS,
    description: bytes | None = None,
) -> Service:
    """Publish a service; ``description`` (WSDL or OpenAPI 3 JSON) is checked and split into endpoints."""
    with server_dir.open_store() as store:
        return store.add_service(
            service_id, url=url, kind=kind, timeout_seconds=timeout_seconds, description=description
        )


def disable_service(server_dir: ServerDirectory, service_id: ServiceId, notice: str = "") -> None:
    """Disable a service: callers get ``service_disabled`` with ``notice``."""
    with server_dir.open_store() as store:
        store.disable_service(service_id, notice)


def enable_service(server_dir: ServerDirectory, service_id: ServiceId) -> None:
    """Enable a disabled service."""
    with server_dir.open_store() as store:
        store.enable_service(service_id)


def list_services(server_dir: ServerDirectory, client_id: ClientId | None = None) -> tuple[Service, ...]:
    """Every service, or one client's, in the order they were added."""
    snapshot = server_dir.snapshot()
    return snapshot.services if client_id is None else snapshot.services_of(client_id)


def get_service(server_dir: ServerDirectory, service_id: ServiceId) -> Service:
    """One service by client, code and version; :class:`ServiceNotFound` when there is none."""
    found = server_dir.snapshot().service(service_id)
    if found is None:
        raise ServiceNotFound(f"{service_id.client} has no service {service_id.service_code}"
                              f" version {service_id.service_version or '(none)'}")
    return found


def update_service(
    server_dir: ServerDirectory,
    service_id: ServiceId,
    *,
    url: str,
    timeout_seconds: int,
    url_all: bool = False,
    timeout_all: bool = False,
    ssl_auth: bool | None = None,
    ssl_auth_all: bool = False,
) -> Service:
    """Change a service's URL, timeout and (unless None) ``ssl_auth``; ``url_all``/``timeout_all``/``ssl_auth_all``
    apply them to every service of its description too (X-Road's ``ServiceUpdate``). :class:`ServiceNotFound` when
    there is no such service."""
    from security_server.admin.service_descriptions import description_of

    get_service(server_dir, service_id)
    siblings = description_of(server_dir, service_id).services
    with server_dir.open_store() as store:
        for service in siblings:
            own = service.id == service_id
            if own or url_all or timeout_all or (ssl_auth_all and ssl_auth is not None):
                new_url = url if own or url_all else service.url
                new_ssl_auth = ssl_auth if own or ssl_auth_all else None
                if new_ssl_auth is not None and not new_url.lower().startswith("https:"):
                    new_ssl_auth = True  # X-Road keeps no setting for an http service: https later means checked
                store.update_service(
                    service.id,
                    url=new_url,
                    timeout_seconds=timeout_seconds if own or timeout_all else service.timeout_seconds,
                    ssl_auth=new_ssl_auth,
                )
    return get_service(server_dir, service_id)
