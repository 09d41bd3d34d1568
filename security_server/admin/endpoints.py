"""REST endpoints added by hand (UG-SS §6.3 "Adding a REST endpoint"): add, change, delete.

A REST service's endpoints are ``* **`` (the whole service), those of its OpenAPI description (``generated``:
they change with the description only, and X-Road refuses to edit or delete them) and those an administrator adds.
An endpoint added by hand takes its access rights with it when it is deleted, and keeps them when it is changed.
"""

from __future__ import annotations

from typing import ClassVar

from security_server.admin.access_rights import WHOLE_SERVICE, EndpointNotFound
from security_server.admin.errors import ClientNotFound, Conflict, ServiceNotFound
from security_server.admin.server_dir import ServerDirectory
from security_server.core.acl import Endpoint
from security_server.core.identifiers import ServiceId
from security_server.serverconf.store import Service, ServerConfError, ServiceKind


class EndpointExists(Conflict):
    """The service has an endpoint with this method and path already."""

    api_code = "endpoint_already_exists"


class WrongDescriptionType(ServerConfError):
    """Endpoints are for REST services: the service is a WSDL's."""

    api_code: ClassVar[str] = "wrong_servicedescription_type"


class GeneratedEndpointUpdate(ServerConfError):
    """The endpoint comes from the service's description (or is ``* **``): it cannot be changed by hand."""

    api_code: ClassVar[str] = "illegal_generated_endpoint_update"


class GeneratedEndpointRemove(ServerConfError):
    """The endpoint comes from the service's description (or is ``* **``): it cannot be deleted by hand."""

    api_code: ClassVar[str] = "illegal_generated_endpoint_remove"


def rest_service(server_dir: ServerDirectory, service: ServiceId) -> Service:
    """The REST service with ``service``'s code; :class:`ClientNotFound`, :class:`ServiceNotFound`, or
    :class:`WrongDescriptionType` for a SOAP service."""
    snapshot = server_dir.snapshot()
    if snapshot.client(service.client) is None:
        raise ClientNotFound(f"{service.client} is not a client of this security server")
    found = [s for s in snapshot.services_of(service.client) if s.id.service_code == service.service_code]
    for candidate in found:
        if candidate.kind is ServiceKind.REST:
            return candidate
    if found:
        raise WrongDescriptionType(f"service {service.service_code} is a WSDL's: it has no endpoints")
    raise ServiceNotFound(f"{service.client} has no REST service {service.service_code}")


def is_generated(service: Service, endpoint: Endpoint) -> bool:
    """Whether ``endpoint`` is ``* **`` or one of the service's description (not added by hand)."""
    return endpoint not in service.added_endpoints


def _existing(service: Service, endpoint: Endpoint) -> bool:
    return endpoint == WHOLE_SERVICE or endpoint in service.endpoints


def add_endpoint(server_dir: ServerDirectory, service_id: ServiceId, endpoint: Endpoint) -> Endpoint:
    """Add ``endpoint`` to a REST service; :class:`EndpointExists` when it has it (generated or added)."""
    service = rest_service(server_dir, service_id)
    if _existing(service, endpoint):
        raise EndpointExists(f"service {service_id.service_code} has endpoint {endpoint} already")
    with server_dir.open_store() as store:
        store.add_endpoint(service_id.client, service_id.service_code, endpoint)
    return endpoint


def _added(server_dir: ServerDirectory, service_id: ServiceId, endpoint: Endpoint, refusal: type[ServerConfError]) -> Service:
    service = rest_service(server_dir, service_id)
    if not _existing(service, endpoint):
        raise EndpointNotFound(f"service {service_id.service_code} has no endpoint {endpoint}")
    if is_generated(service, endpoint):
        raise refusal(f"endpoint {endpoint} of service {service_id.service_code} comes from its description")
    return service


def update_endpoint(server_dir: ServerDirectory, service_id: ServiceId, old: Endpoint, new: Endpoint) -> Endpoint:
    """Change an endpoint added by hand (its rights follow); :class:`EndpointNotFound`,
    :class:`GeneratedEndpointUpdate`, or :class:`EndpointExists` when ``new`` is another endpoint of the service."""
    service = _added(server_dir, service_id, old, GeneratedEndpointUpdate)
    if new != old and _existing(service, new):
        raise EndpointExists(f"service {service_id.service_code} has endpoint {new} already")
    with server_dir.open_store() as store:
        store.update_endpoint(service_id.client, service_id.service_code, old, new)
    return new


def delete_endpoint(server_dir: ServerDirectory, service_id: ServiceId, endpoint: Endpoint) -> None:
    """Delete an endpoint added by hand and the access rights limited to it; :class:`EndpointNotFound` or
    :class:`GeneratedEndpointRemove`."""
    _added(server_dir, service_id, endpoint, GeneratedEndpointRemove)
    with server_dir.open_store() as store:
        store.delete_endpoint(service_id.client, service_id.service_code, endpoint)
