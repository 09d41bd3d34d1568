"""Service descriptions as X-Road shows them: the services of one client that came from one description.

fedbus stores services one by one, each with its own copy of its description (the WSDL of a SOAP service, the
OpenAPI document of a REST one). X-Road groups services under the description they came from; this module gives
that view over the store: a client's services with the same kind and the same description bytes form one
description (a service without a description is one on its own), named by its first service. Each service keeps
the URL its description was read from and when; refreshing reads it again and adds, keeps and removes services as
the new document says (X-Road's warnings ``adding_services``/``deleting_services`` unless they are ignored).
Adding one splits it as X-Road does: a WSDL into a SOAP service per binding operation (code and ``xrd:version``,
at the ``soap:address``), an OpenAPI 3 document or a plain REST URL into one REST service.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar
from urllib.parse import urljoin

from security_server.admin.errors import ActionNotPossible, ClientNotFound, Conflict, NotFound, ServiceNotFound
from security_server.admin.server_dir import ServerDirectory
from security_server.core.errors import BusError
from security_server.core.identifiers import XROAD_NS, ClientId, ServiceId
from security_server.core.metadata import WSDL_NS, check_wsdl
from security_server.serverconf.store import ServerConfError, ServerConfSnapshot, Service, ServiceKind


class ServiceDescriptionNotFound(NotFound):
    """No description is named by this service."""

    api_code = "service_description_not_found"


class ServiceExists(Conflict):
    """A service the description brings exists already."""

    api_code = "service_already_exists"


class DescriptionChanges(Conflict):
    """Refreshing would add or remove services (X-Road's warnings); the caller may confirm and go on."""

    api_code = "warnings_detected"

    def __init__(self, added: tuple[ServiceId, ...], removed: tuple[ServiceId, ...]) -> None:
        super().__init__(f"refreshing adds {len(added)} and removes {len(removed)} services")
        self.added = added
        self.removed = removed


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
    def source_url(self) -> str:
        """Where the description was read from (empty when it was not added by URL)."""
        return self.services[0].description_url

    @property
    def refreshed_at(self) -> datetime | None:
        """When it was last read from there."""
        return self.services[0].refreshed_at

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


def description_of(server_dir: ServerDirectory, service_id: ServiceId) -> ServiceDescription:
    """The description a service came from (itself alone when it came without one)."""
    for description in _group(server_dir.snapshot().services_of(service_id.client)):
        if any(s.id == service_id for s in description.services):
            return description
    raise ServiceDescriptionNotFound(f"no service {service_id.service_code} of {service_id.client}")


def delete_description(server_dir: ServerDirectory, description_id: ServiceId) -> None:
    """Delete a description with all its services and the access rights to them (UG-SS §6.6)."""
    description = get_description(server_dir, description_id)
    with server_dir.open_store() as store:
        store.delete_services([s.id for s in description.services])


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


# --- adding a description -------------------------------------------------------------------------------------------

_SOAP_NS = "http://schemas.xmlsoap.org/wsdl/soap/"
_SOAP12_NS = "http://schemas.xmlsoap.org/wsdl/soap12/"


@dataclass(frozen=True, slots=True)
class WsdlService:
    """A service a WSDL describes: its code (the binding operation), version (``xrd:version``) and address."""

    code: str
    version: str | None
    url: str


def wsdl_services(document: bytes) -> tuple[WsdlService, ...]:
    """The services of a WSDL as X-Road splits it (UG-SS §6.1): one per binding operation, versioned by its
    ``xrd:version``, at the ``soap:address`` of the port; :class:`ServerConfError` when it has none."""
    try:
        root = check_wsdl(document)
    except BusError as err:
        raise ServerConfError(f"service description refused: {err.message}") from err
    addresses = [
        element.get("location", "")
        for element in root.iter(f"{{{_SOAP_NS}}}address", f"{{{_SOAP12_NS}}}address")
    ]
    if not addresses or not addresses[0]:
        raise ServerConfError("the WSDL names no soap:address for its services")
    found: dict[tuple[str, str | None], WsdlService] = {}
    for binding in root.iter(f"{{{WSDL_NS}}}binding"):
        for operation in binding.findall(f"{{{WSDL_NS}}}operation"):
            code = operation.get("name", "")
            version_element = operation.find(f"{{{XROAD_NS}}}version")
            version = ((version_element.text or "").strip() or None) if version_element is not None else None
            found.setdefault((code, version), WsdlService(code, version, addresses[0]))
    if not found:
        raise ServerConfError("the WSDL describes no operations")
    return tuple(found.values())


def _refuse_taken(snapshot: ServerConfSnapshot, client: ClientId, codes: list[tuple[str, str | None]]) -> None:
    for code, version in codes:
        if snapshot.service(ServiceId(client, code, version)) is not None:
            raise ServiceExists(f"{client} already has service {code} version {version or '(none)'}")


def add_wsdl(
    server_dir: ServerDirectory, client: ClientId, document: bytes, *, source_url: str = "", read_at: datetime | None = None
) -> ServiceDescription:
    """Publish every service of a WSDL for ``client``; refused as a whole when one exists already. ``source_url``
    (with ``read_at``) is where it was read from, for a later refresh."""
    described = wsdl_services(document)
    with server_dir.open_store() as store:
        snapshot = store.snapshot()
        if snapshot.client(client) is None:
            raise ClientNotFound(f"{client} is not a client of this security server")
        try:
            ids = [ServiceId(client, s.code, s.version) for s in described]
        except BusError as err:
            raise ServerConfError(f"the WSDL has an operation fedbus cannot name: {err.message}") from err
        _refuse_taken(snapshot, client, [(i.service_code, i.service_version) for i in ids])
        added = tuple(
            store.add_service(service_id, url=s.url, kind=ServiceKind.SOAP, description=document)
            for service_id, s in zip(ids, described)
        )
        if source_url and read_at is not None:
            store.set_description_source(ids, source_url, read_at)
            added = tuple(s for s in store.snapshot().services_of(client) if s.id in ids)
    return ServiceDescription(added)


def openapi_service_url(document: bytes, document_url: str) -> str:
    """Where a REST service described by OpenAPI 3 runs: its first ``servers`` URL (relative ones against the
    description's own URL), else the description's origin."""
    try:
        tree = json.loads(document.decode("utf-8"))
        servers = tree.get("servers") if isinstance(tree, dict) else None
        first = servers[0].get("url") if isinstance(servers, list) and servers and isinstance(servers[0], dict) else None
    except (UnicodeDecodeError, ValueError):
        first = None
    return urljoin(document_url, first if isinstance(first, str) and first else "/")


def add_rest(
    server_dir: ServerDirectory, client: ClientId, code: str, url: str, document: bytes | None = None, *,
    source_url: str = "", read_at: datetime | None = None,
) -> ServiceDescription:
    """Publish a REST service (its OpenAPI 3 description, when given, becomes its endpoints, and ``source_url``
    is where it was read from)."""
    try:
        service_id = ServiceId(client, code)
    except BusError as err:
        raise ServerConfError(f"invalid REST service code: {err.message}") from err
    with server_dir.open_store() as store:
        snapshot = store.snapshot()
        if snapshot.client(client) is None:
            raise ClientNotFound(f"{client} is not a client of this security server")
        _refuse_taken(snapshot, client, [(code, None)])
        if any(s.id.service_code == code for s in snapshot.services_of(client)):
            raise ServiceExists(f"{client} already has service code {code}")
        added = store.add_service(service_id, url=url, kind=ServiceKind.REST, description=document)
        if document is not None and source_url and read_at is not None:
            store.set_description_source([service_id], source_url, read_at)
            added = store.snapshot().service(service_id) or added
    return ServiceDescription((added,))


def refresh_description(
    server_dir: ServerDirectory, description_id: ServiceId, document: bytes, read_at: datetime, *,
    ignore_warnings: bool = False,
) -> ServiceDescription:
    """Replace a description by ``document``, read again from its URL: a WSDL's new operations become services,
    those gone are removed with their rights (:class:`DescriptionChanges` first, unless ``ignore_warnings``), the
    others keep their URL, timeout and rights; an OpenAPI description's endpoints follow the new document."""
    description = get_description(server_dir, description_id)
    url = description.source_url
    if not url:
        raise ActionNotPossible("the description was not added by URL: there is nothing to read again")
    return _replace(server_dir, description, document, url, read_at, ignore_warnings)


def _replace(
    server_dir: ServerDirectory, description: ServiceDescription, document: bytes, url: str, read_at: datetime,
    ignore_warnings: bool,
) -> ServiceDescription:
    """``description`` replaced by ``document`` read from ``url`` (a refresh, or an update to a new URL)."""
    description_id = description.id
    client = description.client
    old_ids = [s.id for s in description.services]
    if description.kind is ServiceKind.REST:
        with server_dir.open_store() as store:
            store.replace_description(old_ids, document)
            store.set_description_source(old_ids, url, read_at)
        return get_description(server_dir, description_id)
    described = wsdl_services(document)
    try:
        new_ids = [ServiceId(client, s.code, s.version) for s in described]
    except BusError as err:
        raise ServerConfError(f"the WSDL has an operation fedbus cannot name: {err.message}") from err
    added = tuple(i for i in new_ids if i not in old_ids)
    removed = tuple(i for i in old_ids if i not in new_ids)
    if (added or removed) and not ignore_warnings:
        raise DescriptionChanges(added, removed)
    with server_dir.open_store() as store:
        _refuse_taken(store.snapshot(), client, [(i.service_code, i.service_version) for i in added])
        if removed:
            store.delete_services(removed)
        for service_id, found in zip(new_ids, described):
            if service_id in added:
                store.add_service(service_id, url=found.url, kind=ServiceKind.SOAP, description=document)
        kept = [i for i in new_ids if i not in added]
        if kept:
            store.replace_description(kept, document)
        store.set_description_source(new_ids, url, read_at)
    return description_of(server_dir, new_ids[0])


# --- updating a description (X-Road's updateServiceDescription) --------------------------------------------------


class WrongDescriptionType(ServerConfError):
    """The update names another type than the description's (X-Road's ``wrong_servicedescription_type``)."""

    api_code: ClassVar[str] = "wrong_servicedescription_type"


class UrlExists(Conflict):
    """Another description of the client has this URL."""

    api_code = "url_already_exists"


class WsdlExists(Conflict):
    """Another WSDL description of the client has this URL."""

    api_code = "wsdl_exists"


class ServiceCodeExists(Conflict):
    """The client has a service with the new code already."""

    api_code = "service_code_already_exists"


def description_type(description: ServiceDescription) -> str:
    """X-Road's ``ServiceType``: ``WSDL``, ``OPENAPI3`` or ``REST``."""
    if description.kind is ServiceKind.SOAP:
        return "WSDL"
    return "OPENAPI3" if description.has_document else "REST"


def _shown_url(description: ServiceDescription) -> str:
    return description.source_url or description.services[0].url


def check_update(
    server_dir: ServerDirectory, description_id: ServiceId, kind: str, url: str, code: str | None = None,
    new_code: str | None = None,
) -> ServiceDescription:
    """The description an update names, checked before anything is fetched: its type, the REST service code it
    names, a URL no other description of the client has, a new code the client has no service with."""
    description = get_description(server_dir, description_id)
    if description_type(description) != kind:
        raise WrongDescriptionType(f"the description is {description_type(description)}, not {kind}")
    if kind != "WSDL" and code != description.id.service_code:
        raise ServiceNotFound(f"the description has no REST service {code}")
    others = [d for d in client_descriptions(server_dir, description.client) if d.id != description.id]
    if any(_shown_url(d) == url for d in others):
        raise (WsdlExists if kind == "WSDL" else UrlExists)(f"{description.client} has a description at {url}")
    if new_code is not None and new_code != code:
        try:
            ServiceId(description.client, new_code)
        except BusError as err:
            raise ServerConfError(f"invalid REST service code: {err.message}") from err
        if any(s.id.service_code == new_code for s in server_dir.snapshot().services_of(description.client)):
            raise ServiceCodeExists(f"{description.client} has service code {new_code} already")
    return description


def _renamed(server_dir: ServerDirectory, description: ServiceDescription, new_code: str | None) -> ServiceDescription:
    code = description.id.service_code
    if new_code is None or new_code == code:
        return get_description(server_dir, description.id)
    with server_dir.open_store() as store:
        store.rename_service_code(description.client, code, new_code)
    return get_description(server_dir, ServiceId(description.client, new_code))


def update_rest(
    server_dir: ServerDirectory, description_id: ServiceId, url: str, code: str, new_code: str | None = None,
) -> ServiceDescription:
    """A plain REST description's URL (its service's URL) and, with ``new_code``, its service code (rights and
    endpoints follow)."""
    description = check_update(server_dir, description_id, "REST", url, code, new_code)
    service = description.services[0]
    with server_dir.open_store() as store:
        store.update_service(service.id, url=url, timeout_seconds=service.timeout_seconds)
    return _renamed(server_dir, description, new_code)


def update_openapi(
    server_dir: ServerDirectory, description_id: ServiceId, url: str, code: str, document: bytes, read_at: datetime,
    new_code: str | None = None,
) -> ServiceDescription:
    """An OpenAPI 3 description read from a new URL: its endpoints follow ``document`` (the service keeps its URL,
    timeout and rights), and with ``new_code`` its service code changes."""
    description = check_update(server_dir, description_id, "OPENAPI3", url, code, new_code)
    ids = [s.id for s in description.services]
    with server_dir.open_store() as store:
        store.replace_description(ids, document)
        store.set_description_source(ids, url, read_at)
    return _renamed(server_dir, description, new_code)


def update_wsdl(
    server_dir: ServerDirectory, description_id: ServiceId, url: str, document: bytes, read_at: datetime, *,
    ignore_warnings: bool = False,
) -> ServiceDescription:
    """A WSDL description read from a new URL, as a refresh from there (:class:`DescriptionChanges` unless
    ``ignore_warnings``)."""
    description = check_update(server_dir, description_id, "WSDL", url)
    return _replace(server_dir, description, document, url, read_at, ignore_warnings)
