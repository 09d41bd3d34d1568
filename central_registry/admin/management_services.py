"""The management services' provider (X-Road's management services configuration, UG-CS §9).

X-Road names one subsystem as the provider of the management services (``clientReg``, ``authCertReg``, ...) and
publishes it in the private parameters (``managementService/managementRequestServiceProviderId``); its security
server relays the servers' requests to the central server. fedbus's registry answers the requests itself, at
``/managementservice`` over its own HTTPS (the certificate in ``tls/``, published beside the address, which the
servers pin), so the provider is a name in the configuration: until an administrator names a subsystem, the
registry publishes the instance's reserved identity ``<instance>:REGISTRY:registry:management``.

:func:`set_provider` names an existing subsystem (kept in the settings as ``management_service_provider``);
:func:`register_provider_server` registers it as a client of a security server, as X-Road does: the centre's
client registration request, approved at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from central_registry.admin.errors import NotFound
from central_registry.admin.management_requests import CentreRequest, file_request
from central_registry.requests import RegistrationDesk, RequestStatus
from central_registry.store import RegistryError, RegistryStore
from security_server.core.errors import InvalidClientIdentifier
from security_server.core.identifiers import ClientId, GlobalGroupId, SecurityServerId
from security_server.core.mgmtrequest import RequestType

PROVIDER_SETTING = "management_service_provider"
OWNERS_GROUP = "security-server-owners"
"""X-Road's global group of the security servers' owners (shown when the registry has one by that code)."""


class ProviderSubsystemNotFound(NotFound):
    """The provider named is not a subsystem of the registry (X-Road's ``subsystem_not_found``)."""

    api_code = "subsystem_not_found"


class ProviderNotSet(RegistryError):
    """No provider subsystem is named yet (X-Road's ``management_service_provider_not_set``)."""

    http_status = 400
    api_code = "management_service_provider_not_set"


class ProviderAlreadyRegistered(RegistryError):
    """The provider is a client of a security server already (X-Road's
    ``subsystem_already_registered_to_security_server``)."""

    http_status = 400
    api_code = "subsystem_already_registered_to_security_server"


@dataclass(frozen=True, slots=True)
class ManagementServices:
    """What the configuration says: the provider (named, or None: the reserved identity), its member's name, the
    servers that host it, the owners' global group code (None when the registry has no such group)."""

    provider: ClientId | None
    provider_name: str | None
    servers: tuple[SecurityServerId, ...]
    owners_group: str | None


def reserved_provider(instance: str) -> ClientId:
    """The identity the registry publishes while no provider is named."""
    return ClientId(instance, "REGISTRY", "registry", "management")


def provider(store: RegistryStore) -> ClientId | None:
    """The provider subsystem an administrator named, or None."""
    row = next(iter(store.db.query("SELECT value FROM settings WHERE key = ?", [PROVIDER_SETTING])), None)
    if row is None:
        return None
    try:
        return ClientId.parse_display(str(row["value"]))
    except InvalidClientIdentifier:
        return None


def published_provider(store: RegistryStore) -> ClientId:
    """The provider the private parameters name: the named subsystem, else the reserved identity."""
    return provider(store) or reserved_provider(store.settings().instance)


def configuration(store: RegistryStore) -> ManagementServices:
    """The management services configuration now."""
    named = provider(store)
    name = None
    servers: tuple[SecurityServerId, ...] = ()
    if named is not None and store.has_client(named.member):
        name = store.member(named.member).name
        servers = tuple(sorted((s.id for s in store.security_servers() if named in s.clients), key=str))
    instance = store.settings().instance
    owners = OWNERS_GROUP if any(g.id == GlobalGroupId(instance, OWNERS_GROUP) for g in store.groups()) else None
    return ManagementServices(named, name, servers, owners)


def set_provider(store: RegistryStore, subsystem: ClientId) -> ManagementServices:
    """Name ``subsystem`` the provider of the management services (published from the next configuration)."""
    if subsystem.subsystem_code is None or not store.has_client(subsystem):
        raise ProviderSubsystemNotFound(f"no subsystem {subsystem}")
    with store.transaction("management_service_provider_changed", {"provider": str(subsystem)}):
        store.db.execute(
            "INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            [PROVIDER_SETTING, str(subsystem)],
        )
    return configuration(store)


def register_provider_server(store: RegistryStore, server: SecurityServerId, now: datetime) -> ManagementServices:
    """Register the provider as a client of ``server``: the centre's client registration, approved at once."""
    named = provider(store)
    if named is None:
        raise ProviderNotSet("name the management services' provider first")
    if not store.has_client(named):
        raise ProviderSubsystemNotFound(f"no subsystem {named}")
    if any(named in s.clients for s in store.security_servers()):
        raise ProviderAlreadyRegistered(f"{named} is a client of a security server already")
    filed = file_request(store, CentreRequest(RequestType.CLIENT_REG, server, client=named), now)
    if filed.record.status is RequestStatus.PENDING:
        RegistrationDesk(store).approve(filed.record.id, now)
    return configuration(store)
