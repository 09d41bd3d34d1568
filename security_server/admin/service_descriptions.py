"""Service descriptions as X-Road shows them: the services of one client that came from one description.

fedbus stores services one by one, each with its own copy of its description (the WSDL of a SOAP service, the
OpenAPI document of a REST one). X-Road groups services under the description they came from; this module gives
that view over the store: a client's services with the same kind and the same description bytes form one
description (a service without a description is one on its own), named by its first service. When the store
keeps descriptions as rows of their own (added and refreshed by URL), this view becomes a read of them.
"""

from __future__ import annotations

from dataclasses import dataclass

from security_server.admin.errors import ClientNotFound, NotFound
from security_server.admin.server_dir import ServerDirectory
from security_server.core.identifiers import ClientId, ServiceId
from security_server.serverconf.store import Service, ServiceKind


class ServiceDescriptionNotFound(NotFound):
    """No description is named by this service."""

    api_code = "service_description_not_found"


@dataclass(frozen=True, slots=True)
class ServiceDescription:
    """Services of one client from one description."""

    services: tuple[Service, ...]

    @property
    def id(self) -> ServiceId:
        """The first service's identifier names the description."""
        return self.services[0].id

    @property
    def client(self) -> ClientId:
        """The client the services belong to."""
        return self.services[0].id.client

    @property
    def kind(self) -> ServiceKind:
        """SOAP or REST."""
        return self.services[0].kind

    @property
    def has_document(self) -> bool:
        """Whether a WSDL or OpenAPI document came with it."""
        return self.services[0].description is not None

    @property
    def disabled(self) -> bool:
        """X-Road disables a description as a whole; here: all its services are disabled."""
        return all(not s.enabled for s in self.services)

    @property
    def disabled_notice(self) -> str:
        """The notice of its first disabled service."""
        return next((s.disabled_notice for s in self.services if not s.enabled), "")


def _group(services: tuple[Service, ...]) -> tuple[ServiceDescription, ...]:
    groups: dict[object, list[Service]] = {}
    for service in services:
        key: object = (service.kind, service.description) if service.description is not None else service.id
        groups.setdefault(key, []).append(service)
    return tuple(ServiceDescription(tuple(found)) for found in groups.values())


def client_descriptions(server_dir: ServerDirectory, client: ClientId) -> tuple[ServiceDescription, ...]:
    """A hosted client's descriptions, in the order their first services were added."""
    snapshot = server_dir.snapshot()
    if snapshot.client(client) is None:
        raise ClientNotFound(f"{client} is not a client of this security server")
    return _group(snapshot.services_of(client))


def get_description(server_dir: ServerDirectory, description_id: ServiceId) -> ServiceDescription:
    """The description named by ``description_id``; :class:`ServiceDescriptionNotFound` otherwise."""
    snapshot = server_dir.snapshot()
    for description in _group(snapshot.services_of(description_id.client)):
        if description.id == description_id:
            return description
    raise ServiceDescriptionNotFound(f"no service description {description_id.service_code} of {description_id.client}")


def set_enabled(server_dir: ServerDirectory, description_id: ServiceId, enabled: bool, notice: str = "") -> None:
    """Enable or disable every service of a description (those already so are left as they are)."""
    description = get_description(server_dir, description_id)
    with server_dir.open_store() as store:
        for service in description.services:
            if service.enabled != enabled:
                if enabled:
                    store.enable_service(service.id)
                else:
                    store.disable_service(service.id, notice)
