"""The security server's configuration database (SQLite, or PostgreSQL shared by clustered nodes) and its snapshots.

What it holds follows X-Road's serverconf data model (DM-SS §2), cut to what fedbus uses:

================  ==================================================================================
``server``        one row, set once by :meth:`ServerConfStore.initialise`: owner member, server code and
                  the configuration anchor (opaque bytes; the configuration client parses it)
``client``        hosted clients with their registration state (UG-SS §4.1); the owner member is one
``service``       services per client: code, version, kind (SOAP or REST), provider URL (a REST
                  service's base URL), timeout, enabled or disabled with a notice (DM-SS §2.13, §2.16),
                  and its description: the WSDL of a SOAP service (served by ``getWsdl``) or the OpenAPI 3
                  description of a REST service, whose operations become the service's endpoints
                  (``listMethods``, ``getOpenAPI``; migration 2), and the URL the description was read
                  from with when it was last read (X-Road's refresh; migration 3)
``access_right``  rights per provider client and service code, optionally per REST endpoint
                  (DM-SS §2.1, §2.17); the meaning is :mod:`security_server.core.acl`'s
``local_group``   local groups of one client (code, description) and their members (DM-SS §2.8, §2.11)
``timestamping_   the approved time-stamping services the administrator chose (name, URL; migration 4);
service``         none chosen: the message log uses every approved one
``tls_            the internal TLS certificates of each hosted client (DER; DM-SS §2.3 ``certificate``,
certificate``     X-Road's ``tls-certificates``), and per service whether an ``https`` provider's own TLS
                  certificate must be one of them (``ssl_auth``, DM-SS §2.13 ``sslauthentication``; migration 5)
``endpoint``      endpoints added by hand to a REST service code (DM-SS §2.6 with ``generated`` false; those of
                  an OpenAPI description stay in ``service.endpoints``), and ``client_name`` the names given
                  to hosted subsystems (X-Road's rename; migration 7)
``client.``       each client's connection type (X-Road's ``isauthentication``, DM-SS §2.5; migration 6):
``connection_``   how its information systems must reach the client proxy (core/connection_type.py); HTTP
``type``          for the clients there were before
================  ==================================================================================

The schema is :data:`SCHEMA`, numbered migrations applied on open (:mod:`security_server.store.migrations`); a
database migrated before them by sqlite-utils is adopted as it is. The database (the SQLite file, or the
PostgreSQL database of ``[database] url``) is opened through the store layer (:mod:`security_server.store`),
which maps every engine failure to a :class:`DatabaseError` leaf.

Every change is validated first and runs in one write transaction (holding the write lock from its start); a
change that cannot be made (invalid value, duplicate, unknown client/service/group) raises
:class:`ServerConfError` and leaves the database exactly as it was. Granting a right that exists is refused, like X-Road's ``DuplicateAccessRight``;
revoking one that does not exist is refused too; neither ever touches another right.

The proxies never read the database on the hot path: :meth:`ServerConfStore.snapshot` reads everything in one
read transaction into a frozen :class:`ServerConfSnapshot` with indexed lookups, which they swap in whole.
A store object on SQLite belongs to the thread that opened it (sqlite3's rule).
"""

from __future__ import annotations

import contextlib
import enum
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any, Iterator, Mapping, Sequence
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from security_server.core.acl import (
    AccessRight,
    Endpoint,
    GlobalGroupCheck,
    Subject,
    check_access,
    client_rights,
    is_allowed,
)
from security_server.core.connection_type import ConnectionType
from security_server.core.errors import BusError, ClientFault, DatabaseError, InvalidClientIdentifier
from security_server.core.metadata import check_wsdl, openapi_endpoints
from security_server.core.identifiers import (
    ClientId,
    GlobalGroupId,
    LocalGroupId,
    SecurityServerId,
    ServiceId,
    check_part,
    parse_display,
)
from security_server.store.engine import Connection, Database, Row
from security_server.store.errors import ConstraintViolated
from security_server.store.migrations import Schema, sql_migration, migrate
from security_server.store.opening import open_database
from security_server.store.sqlite import DEFAULT_BUSY_TIMEOUT as DEFAULT_BUSY_TIMEOUT

DEFAULT_TIMEOUT_SECONDS = 60
"""X-Road's default service timeout (UG-SS §6.6)."""

MIN_TIMEOUT_SECONDS = 1
MAX_TIMEOUT_SECONDS = 3600
MAX_URL_LENGTH = 2048
MAX_TEXT_LENGTH = 255
"""Descriptions and disabled notices: DM-SS keeps them in 255-character columns."""
MAX_ANCHOR_BYTES = 1024 * 1024


class ServerConfError(ClientFault):
    """A configuration change that cannot be made (invalid, duplicate or unknown); nothing was changed."""

    code = "invalid_request"


class ClientState(enum.StrEnum):
    """Registration state of a hosted client (UG-SS §4.1; DM-SS §2.5 ``clientstatus``)."""

    SAVED = "saved"
    REGISTRATION_IN_PROGRESS = "registration_in_progress"
    REGISTERED = "registered"
    DELETION_IN_PROGRESS = "deletion_in_progress"
    DISABLED = "disabled"
    """X-Road 7's disabled client: registered, but the proxies refuse its exchanges as if it were not."""


# UG-SS §4.1: the moves between the four states we keep. Saved -> Registered happens when the association is
# already in the global configuration when the client is entered.
_TRANSITIONS: Mapping[ClientState, frozenset[ClientState]] = MappingProxyType(
    {
        ClientState.SAVED: frozenset({ClientState.REGISTRATION_IN_PROGRESS, ClientState.REGISTERED}),
        ClientState.REGISTRATION_IN_PROGRESS: frozenset({ClientState.REGISTERED, ClientState.DELETION_IN_PROGRESS}),
        ClientState.REGISTERED: frozenset({ClientState.DELETION_IN_PROGRESS, ClientState.DISABLED}),
        ClientState.DELETION_IN_PROGRESS: frozenset(),
        ClientState.DISABLED: frozenset({ClientState.REGISTERED, ClientState.DELETION_IN_PROGRESS}),
    }
)


class ServiceKind(enum.StrEnum):
    """How a service is called: X-Road SOAP 4.0 or REST r1 (a SOAP service called over REST is ``service_type``)."""

    SOAP = "soap"
    REST = "rest"


# --- value checks --------------------------------------------------------------------------------------------


def check_text(value: object, what: str, *, allow_empty: bool = False) -> str:
    """A description or notice: at most 255 characters, no control characters."""
    if not isinstance(value, str):
        raise ServerConfError(f"{what} must be text")
    if not value and not allow_empty:
        raise ServerConfError(f"{what} may not be empty")
    if len(value) > MAX_TEXT_LENGTH:
        raise ServerConfError(f"{what} is longer than {MAX_TEXT_LENGTH} characters")
    if any(ord(ch) < 0x20 or 0x7F <= ord(ch) <= 0x9F for ch in value):
        raise ServerConfError(f"{what} may not contain control characters")
    return value


def check_service_url(url: object) -> str:
    """A provider URL: ``http`` or ``https`` with a host, no credentials, fragment, spaces or control characters."""
    if not isinstance(url, str) or not url:
        raise ServerConfError("service URL must be a non-empty string")
    if len(url) > MAX_URL_LENGTH:
        raise ServerConfError(f"service URL is longer than {MAX_URL_LENGTH} characters")
    if any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in url) or not url.isascii():
        raise ServerConfError("service URL may not contain spaces, control or non-ASCII characters")
    try:
        parts = urlsplit(url)
        port = parts.port  # raises ValueError for a port that is not a number in range
    except ValueError as err:
        raise ServerConfError(f"service URL is malformed: {err}") from err
    if parts.scheme not in ("http", "https"):
        raise ServerConfError("service URL must use http or https")
    if not parts.hostname:
        raise ServerConfError("service URL must name a host")
    if parts.username is not None or parts.password is not None:
        raise ServerConfError("service URL may not carry credentials (they would show in every listing)")
    if parts.fragment or url.endswith("#"):
        raise ServerConfError("service URL may not have a fragment")
    if port == 0:
        raise ServerConfError("service URL port must be 1 to 65535")
    return url


def check_timeout(value: object) -> int:
    """A service timeout: whole seconds from 1 to 3600."""
    if type(value) is not int or not MIN_TIMEOUT_SECONDS <= value <= MAX_TIMEOUT_SECONDS:
        raise ServerConfError(f"timeout must be a whole number of seconds from {MIN_TIMEOUT_SECONDS} to {MAX_TIMEOUT_SECONDS}")
    return value


def _service_key(service: ServiceId) -> tuple[str, str, str]:
    """A service's row key: client, code and version (empty when it has none)."""
    return (str(service.client), service.service_code, service.service_version or "")


def _no_such_service(service: ServiceId) -> ServerConfError:
    """The error for a service the configuration does not have."""
    version = service.service_version or "(none)"
    return ServerConfError(f"{service.client} has no service {service.service_code} version {version}")


def _require(value: object, kind: type, what: str) -> None:
    if not isinstance(value, kind):
        raise ServerConfError(f"{what} must be a {kind.__name__}")


# --- the values ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ServerIdentity:
    """Who this security server is: its owner member and server code (the instance is the owner's)."""

    owner: ClientId
    server_code: str

    def __post_init__(self) -> None:
        _require(self.owner, ClientId, "owner")
        if self.owner.subsystem_code is not None:
            raise ServerConfError("the owner of a security server is a member, not a subsystem")
        check_part(self.server_code, "serverCode")

    @property
    def instance(self) -> str:
        """The X-Road instance the server belongs to."""
        return self.owner.instance

    @property
    def server_id(self) -> SecurityServerId:
        """The server's identifier."""
        return SecurityServerId(self.owner, self.server_code)


@dataclass(frozen=True, slots=True)
class HostedClient:
    """A client of this security server and its registration state."""

    id: ClientId
    state: ClientState
    is_owner: bool = False
    connection_type: ConnectionType = ConnectionType.HTTP
    """How its information systems must connect to the client proxy (core/connection_type.py)."""

    @property
    def registered(self) -> bool:
        """Only a registered client may exchange messages (DM-SS §2.5)."""
        return self.state is ClientState.REGISTERED


@dataclass(frozen=True, slots=True)
class Service:
    """A service of a hosted client: where it lives, how long to wait, whether it is enabled."""

    id: ServiceId
    kind: ServiceKind
    url: str
    timeout_seconds: int = DEFAULT_TIMEOUT_SECONDS
    enabled: bool = True
    disabled_notice: str = ""
    description: bytes | None = field(default=None, repr=False)
    """The WSDL of a SOAP service, or the OpenAPI 3 description (JSON) of a REST service; None when not given."""
    endpoints: tuple[Endpoint, ...] = ()
    """A REST service's endpoints: its OpenAPI description's, then those added by hand (X-Road lists them all in
    ``listMethods``)."""
    description_url: str = ""
    """Where its description was read from (empty: given another way), so that it can be read again."""
    refreshed_at: datetime | None = None
    """When the description was last read from ``description_url``."""
    ssl_auth: bool = True
    """For an ``https`` service: whether the provider's TLS certificate must be one of the client's internal TLS
    certificates (X-Road's ``sslAuthentication``, true unless set otherwise); not used for ``http``."""
    added_endpoints: tuple[Endpoint, ...] = ()
    """Those of :attr:`endpoints` an administrator added (X-Road's endpoints not ``generated``; migration 7)."""

    def __post_init__(self) -> None:
        _require(self.id, ServiceId, "service")
        object.__setattr__(self, "kind", _service_kind(self.kind))
        check_service_url(self.url)
        check_timeout(self.timeout_seconds)
        check_text(self.disabled_notice, "disabled notice", allow_empty=True)
        if self.enabled and self.disabled_notice:
            raise ServerConfError("an enabled service has no disabled notice")
        if self.description is not None and (not isinstance(self.description, bytes) or not self.description):
            raise ServerConfError("a service description must be non-empty bytes")
        object.__setattr__(self, "endpoints", tuple(self.endpoints))
        if not all(isinstance(e, Endpoint) for e in self.endpoints):
            raise ServerConfError("service endpoints must be Endpoints")
        if self.endpoints and self.kind is not ServiceKind.REST:
            raise ServerConfError("only REST services have endpoints")
        object.__setattr__(self, "added_endpoints", tuple(self.added_endpoints))
        if not set(self.added_endpoints) <= set(self.endpoints):
            raise ServerConfError("an added endpoint is one of the service's endpoints")
        _require(self.ssl_auth, bool, "ssl_auth")

    @property
    def verifies_tls(self) -> bool:
        """Whether calling it checks the provider's TLS certificate against the client's internal TLS certificates
        (X-Road: an ``http`` service has no TLS to check, whatever ``ssl_auth`` holds)."""
        return self.ssl_auth and self.url.lower().startswith("https:")

    @property
    def service_type(self) -> str:
        """X-Road's description type: ``WSDL`` for SOAP, ``OPENAPI`` for REST with a description, else ``REST``."""
        if self.kind is ServiceKind.SOAP:
            return "WSDL"
        return "OPENAPI" if self.description is not None else "REST"


def check_description(kind: ServiceKind, description: bytes) -> tuple[Endpoint, ...]:
    """Check a service description for ``kind`` (a WSDL for SOAP, an OpenAPI 3 JSON document for REST) and
    return the endpoints it defines (none for a WSDL); :class:`ServerConfError` when it is not acceptable."""
    try:
        if kind is ServiceKind.SOAP:
            check_wsdl(description)
            return ()
        return openapi_endpoints(description)
    except BusError as err:
        raise ServerConfError(f"service description refused: {err.message}") from err


@dataclass(frozen=True, slots=True)
class LocalGroup:
    """A local access-rights group of one hosted client (UG-SS §8)."""

    owner: ClientId
    id: LocalGroupId
    description: str
    members: frozenset[ClientId] = frozenset()


def _service_kind(value: object) -> ServiceKind:
    try:
        return ServiceKind(str(value))
    except ValueError as err:
        raise ServerConfError(f"service kind must be one of {', '.join(k.value for k in ServiceKind)}") from err


def _client_state(value: object) -> ClientState:
    try:
        return ClientState(str(value))
    except ValueError as err:
        raise ServerConfError(f"client state must be one of {', '.join(s.value for s in ClientState)}") from err


def _connection_type(value: object) -> ConnectionType:
    try:
        return ConnectionType.parse(value)
    except ValueError as err:
        raise DatabaseError("server configuration holds an invalid connection type", reason=f"serverconf: {value!r}") from err


@dataclass(frozen=True, slots=True)
class TimestampingService:
    """An approved time-stamping service chosen for the message log: its name and URL (DM-SS §2.18 ``tsp``)."""

    name: str
    url: str

    def __post_init__(self) -> None:
        check_text(self.name, "time-stamping service name")
        check_service_url(self.url)


@dataclass(frozen=True, slots=True)
class TlsCertificate:
    """An internal TLS certificate of a hosted client: the certificate of one of its information systems (DER)."""

    client: ClientId
    der: bytes = field(repr=False)
    hash: str
    """Its SHA-256 fingerprint, hex upper-case (how X-Road's API names it)."""


def tls_certificate(client: ClientId, data: bytes) -> TlsCertificate:
    """A client's internal TLS certificate from PEM or DER; :class:`ServerConfError` when it is not one."""
    _require(client, ClientId, "client")
    try:
        is_pem = data.lstrip().startswith(b"-----")
        cert = (x509.load_pem_x509_certificate if is_pem else x509.load_der_x509_certificate)(bytes(data))
        der = cert.public_bytes(serialization.Encoding.DER)
    except (ValueError, TypeError) as err:
        raise ServerConfError("not an X.509 certificate in PEM or DER") from err
    return TlsCertificate(client, der, cert.fingerprint(hashes.SHA256()).hex().upper())


@dataclass(frozen=True, slots=True)
class ServerConfSnapshot:
    """Everything the proxies need from the configuration, frozen, with indexed lookups."""

    identity: ServerIdentity
    anchor: bytes
    clients: tuple[HostedClient, ...]
    services: tuple[Service, ...]
    rights: tuple[AccessRight, ...]
    groups: tuple[LocalGroup, ...]
    timestamping_services: tuple[TimestampingService, ...] = ()
    """The chosen time-stamping services, in the order they were added (empty: every approved one)."""
    tls_certificates: tuple[TlsCertificate, ...] = ()
    """The hosted clients' internal TLS certificates, in the order they were added."""
    subsystem_names: Mapping[ClientId, str] = field(default_factory=lambda: MappingProxyType({}))
    """The names given to hosted subsystems here (X-Road's rename kept until the registry takes it; migration 7)."""
    _clients: Mapping[ClientId, HostedClient] = field(init=False, repr=False, compare=False)
    _services: Mapping[tuple[ClientId, str, str | None], Service] = field(init=False, repr=False, compare=False)
    _rights: Mapping[tuple[ClientId, str], tuple[AccessRight, ...]] = field(init=False, repr=False, compare=False)
    _groups: Mapping[ClientId, Mapping[LocalGroupId, frozenset[ClientId]]] = field(
        init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        object.__setattr__(self, "_clients", MappingProxyType({c.id: c for c in self.clients}))
        object.__setattr__(
            self,
            "_services",
            MappingProxyType({(s.id.client, s.id.service_code, s.id.service_version): s for s in self.services}),
        )
        rights: dict[tuple[ClientId, str], list[AccessRight]] = {}
        for right in self.rights:
            rights.setdefault((right.provider, right.service_code), []).append(right)
        object.__setattr__(self, "_rights", MappingProxyType({k: tuple(v) for k, v in rights.items()}))
        groups: dict[ClientId, dict[LocalGroupId, frozenset[ClientId]]] = {}
        for group in self.groups:
            groups.setdefault(group.owner, {})[group.id] = group.members
        object.__setattr__(self, "_groups", MappingProxyType({k: MappingProxyType(v) for k, v in groups.items()}))

    @property
    def server_id(self) -> SecurityServerId:
        """This security server's identifier."""
        return self.identity.server_id

    def client(self, client_id: ClientId) -> HostedClient | None:
        """The hosted client ``client_id``, or None if this server does not host it."""
        return self._clients.get(client_id)

    def service(self, service_id: ServiceId) -> Service | None:
        """The service with exactly this client, code and version (X-Road ``ServiceDAOImpl.find``), or None."""
        return self._services.get((service_id.client, service_id.service_code, service_id.service_version))

    def tls_certificates_of(self, client_id: ClientId) -> tuple[TlsCertificate, ...]:
        """The internal TLS certificates of the hosted client ``client_id``, in the order they were added."""
        return tuple(c for c in self.tls_certificates if c.client == client_id)

    def services_of(self, client_id: ClientId) -> tuple[Service, ...]:
        """The services of one hosted client, in the order they were added."""
        return tuple(s for s in self.services if s.id.client == client_id)

    def rights_for(self, provider: ClientId, service_code: str) -> tuple[AccessRight, ...]:
        """The access rights (service and endpoint level) for one service code of one provider."""
        return self._rights.get((provider, service_code), ())

    def local_groups(self, owner: ClientId) -> Mapping[LocalGroupId, frozenset[ClientId]]:
        """The local groups of ``owner`` and their members (local groups belong to one client, UG-SS §8)."""
        return self._groups.get(owner, MappingProxyType({}))

    def client_rights(
        self, client: ClientId, service: ServiceId, *, in_global_group: GlobalGroupCheck
    ) -> tuple[AccessRight, ...]:
        """The rights (service or endpoint level) that ``client`` holds on ``service``'s code."""
        return client_rights(
            client,
            self.rights_for(service.client, service.service_code),
            in_global_group=in_global_group,
            local_groups=self.local_groups(service.client),
        )

    def is_allowed(self, client: ClientId, service: ServiceId, *, in_global_group: GlobalGroupCheck) -> bool:
        """Whether ``client`` may call ``service`` here (:func:`security_server.core.acl.is_allowed`)."""
        return is_allowed(
            client,
            service,
            self.rights_for(service.client, service.service_code),
            in_global_group=in_global_group,
            local_groups=self.local_groups(service.client),
        )

    def check_access(
        self,
        client: ClientId,
        service: ServiceId,
        *,
        in_global_group: GlobalGroupCheck,
        method: str | None = None,
        path: str | None = None,
    ) -> None:
        """Raise :class:`~security_server.core.errors.AccessDenied` unless ``client`` may call ``service``; for a
        REST call give its ``method`` and normal-form ``path`` so that endpoint-level rights count."""
        check_access(
            client,
            service,
            self.rights_for(service.client, service.service_code),
            in_global_group=in_global_group,
            local_groups=self.local_groups(service.client),
            method=method,
            path=path,
        )


# --- the schema ----------------------------------------------------------------------------------------------
# Identifiers are stored in display form (MEMBER:EE/GOV/1, SUBSYSTEM:..., GLOBALGROUP:..., LOCALGROUP:...): the
# X-Road character set has neither ':' nor '/', so the form is unambiguous. A missing service version or
# endpoint is stored as '' so that composite primary keys treat it as one value (NULLs are all distinct).


_TEXT = 'TEXT COLLATE "C"'
"""PostgreSQL text that compares and sorts byte by byte, as SQLite's TEXT does, whatever the database's locale."""
_ROWID = "rowid BIGINT GENERATED ALWAYS AS IDENTITY"
"""PostgreSQL has no implicit rowid: this column stands for it, so ``ORDER BY rowid`` (insertion order) is one
statement on both engines."""

SCHEMA = Schema(
    "serverconf",
    (
        sql_migration(
            1,
            "serverconf",
            "CREATE TABLE server (id INTEGER PRIMARY KEY CHECK (id = 1), owner TEXT NOT NULL,"
            " server_code TEXT NOT NULL, anchor BLOB NOT NULL) STRICT",
            "CREATE TABLE client (id TEXT PRIMARY KEY, state TEXT NOT NULL, is_owner INTEGER NOT NULL) STRICT",
            "CREATE TABLE service (client TEXT NOT NULL REFERENCES client(id), code TEXT NOT NULL,"
            " version TEXT NOT NULL, kind TEXT NOT NULL, url TEXT NOT NULL, timeout INTEGER NOT NULL,"
            " enabled INTEGER NOT NULL, disabled_notice TEXT NOT NULL, PRIMARY KEY (client, code, version)) STRICT",
            "CREATE TABLE local_group (client TEXT NOT NULL REFERENCES client(id), code TEXT NOT NULL,"
            " description TEXT NOT NULL, PRIMARY KEY (client, code)) STRICT",
            "CREATE TABLE local_group_member (client TEXT NOT NULL, code TEXT NOT NULL, member TEXT NOT NULL,"
            " PRIMARY KEY (client, code, member), FOREIGN KEY (client, code) REFERENCES local_group(client, code)) STRICT",
            "CREATE TABLE access_right (provider TEXT NOT NULL REFERENCES client(id), service_code TEXT NOT NULL,"
            " subject TEXT NOT NULL, method TEXT NOT NULL, path TEXT NOT NULL,"
            " PRIMARY KEY (provider, service_code, subject, method, path)) STRICT",
            # PostgreSQL: BYTEA for BLOB, no STRICT (its columns are typed anyway), byte-order text, and an
            # explicit rowid where the snapshot reads rows in the order they were added.
            postgresql=(
                f"CREATE TABLE server (id INTEGER PRIMARY KEY CHECK (id = 1), owner {_TEXT} NOT NULL,"
                f" server_code {_TEXT} NOT NULL, anchor BYTEA NOT NULL)",
                f"CREATE TABLE client (id {_TEXT} PRIMARY KEY, state {_TEXT} NOT NULL, is_owner INTEGER NOT NULL,"
                f" {_ROWID})",
                f"CREATE TABLE service (client {_TEXT} NOT NULL REFERENCES client(id), code {_TEXT} NOT NULL,"
                f" version {_TEXT} NOT NULL, kind {_TEXT} NOT NULL, url {_TEXT} NOT NULL, timeout INTEGER NOT NULL,"
                f" enabled INTEGER NOT NULL, disabled_notice {_TEXT} NOT NULL, {_ROWID},"
                " PRIMARY KEY (client, code, version))",
                f"CREATE TABLE local_group (client {_TEXT} NOT NULL REFERENCES client(id), code {_TEXT} NOT NULL,"
                f" description {_TEXT} NOT NULL, {_ROWID}, PRIMARY KEY (client, code))",
                f"CREATE TABLE local_group_member (client {_TEXT} NOT NULL, code {_TEXT} NOT NULL,"
                f" member {_TEXT} NOT NULL, {_ROWID}, PRIMARY KEY (client, code, member),"
                " FOREIGN KEY (client, code) REFERENCES local_group(client, code))",
                f"CREATE TABLE access_right (provider {_TEXT} NOT NULL REFERENCES client(id),"
                f" service_code {_TEXT} NOT NULL, subject {_TEXT} NOT NULL, method {_TEXT} NOT NULL,"
                f" path {_TEXT} NOT NULL, {_ROWID}, PRIMARY KEY (provider, service_code, subject, method, path))",
            ),
        ),
        # Each service's description (WSDL or OpenAPI) and its endpoints (``METHOD PATH`` lines) (issue 6).
        sql_migration(
            2,
            "service_descriptions",
            "ALTER TABLE service ADD COLUMN description BLOB",
            "ALTER TABLE service ADD COLUMN endpoints TEXT NOT NULL DEFAULT ''",
            postgresql=(
                "ALTER TABLE service ADD COLUMN description BYTEA",
                f"ALTER TABLE service ADD COLUMN endpoints {_TEXT} NOT NULL DEFAULT ''",
            ),
        ),
        # Where each service's description was read from, and when last (X-Road's refresh) (issue 16).
        sql_migration(
            3,
            "description_source",
            "ALTER TABLE service ADD COLUMN description_url TEXT NOT NULL DEFAULT ''",
            "ALTER TABLE service ADD COLUMN refreshed_at TEXT NOT NULL DEFAULT ''",
            postgresql=(
                f"ALTER TABLE service ADD COLUMN description_url {_TEXT} NOT NULL DEFAULT ''",
                f"ALTER TABLE service ADD COLUMN refreshed_at {_TEXT} NOT NULL DEFAULT ''",
            ),
        ),
        # The time-stamping services chosen among the approved ones (issue 16).
        sql_migration(
            4,
            "timestamping_services",
            "CREATE TABLE timestamping_service (url TEXT PRIMARY KEY, name TEXT NOT NULL) STRICT",
            postgresql=(f"CREATE TABLE timestamping_service (url {_TEXT} PRIMARY KEY, name {_TEXT} NOT NULL, {_ROWID})",),
        ),
        # The clients' internal TLS certificates and each service's ssl_auth (issue 16).
        sql_migration(
            5,
            "tls_certificates",
            "ALTER TABLE service ADD COLUMN ssl_auth INTEGER NOT NULL DEFAULT 1",
            "CREATE TABLE tls_certificate (client TEXT NOT NULL REFERENCES client(id), hash TEXT NOT NULL,"
            " der BLOB NOT NULL, PRIMARY KEY (client, hash)) STRICT",
            postgresql=(
                "ALTER TABLE service ADD COLUMN ssl_auth INTEGER NOT NULL DEFAULT 1",
                f"CREATE TABLE tls_certificate (client {_TEXT} NOT NULL REFERENCES client(id), hash {_TEXT} NOT NULL,"
                f" der BYTEA NOT NULL, {_ROWID}, PRIMARY KEY (client, hash))",
            ),
        ),
        # Each client's connection type, X-Road's isauthentication (issue 16); the clients there were stay HTTP.
        sql_migration(
            6,
            "client_connection_type",
            "ALTER TABLE client ADD COLUMN connection_type TEXT NOT NULL DEFAULT 'HTTP'",
            postgresql=(f"ALTER TABLE client ADD COLUMN connection_type {_TEXT} NOT NULL DEFAULT 'HTTP'",),
        ),
        # Endpoints added by hand to REST services, and the names given to subsystems (issue 16).
        sql_migration(
            7,
            "endpoints_and_names",
            "CREATE TABLE endpoint (client TEXT NOT NULL REFERENCES client(id), service_code TEXT NOT NULL,"
            " method TEXT NOT NULL, path TEXT NOT NULL, PRIMARY KEY (client, service_code, method, path)) STRICT",
            "CREATE TABLE client_name (client TEXT PRIMARY KEY REFERENCES client(id), name TEXT NOT NULL) STRICT",
            postgresql=(
                f"CREATE TABLE endpoint (client {_TEXT} NOT NULL REFERENCES client(id), service_code {_TEXT} NOT NULL,"
                f" method {_TEXT} NOT NULL, path {_TEXT} NOT NULL, {_ROWID},"
                " PRIMARY KEY (client, service_code, method, path))",
                f"CREATE TABLE client_name (client {_TEXT} PRIMARY KEY REFERENCES client(id), name {_TEXT} NOT NULL)",
            ),
        ),
    ),
    legacy_set="fedbus.serverconf",
)
"""The server configuration's numbered migrations; later issues append to them."""


def _stored_endpoints(text: str) -> tuple[Endpoint, ...]:
    try:
        return tuple(Endpoint.parse(line) for line in text.split("\n") if line)
    except BusError as err:
        raise DatabaseError("server configuration holds an invalid endpoint", reason=f"serverconf: {err.reason}") from err


def _stored_endpoint(method: str, path: str) -> Endpoint:
    try:
        return Endpoint(method, path)
    except BusError as err:
        raise DatabaseError("server configuration holds an invalid endpoint", reason=f"serverconf: {err.reason}") from err


def _stored_service(row: Row, added: Sequence[Endpoint]) -> Service:
    """A service row with the endpoints added to its code by hand (after its description's, none twice)."""
    generated = _stored_endpoints(row[9])
    extra = tuple(e for e in added if e not in generated)
    return Service(
        ServiceId(_stored_client(row[0]), row[1], row[2] or None),
        _service_kind(row[3]),
        row[4],
        row[5],
        bool(row[6]),
        row[7],
        None if row[8] is None else bytes(row[8]),
        generated + extra,
        row[10],
        datetime.fromisoformat(row[11]) if row[11] else None,
        bool(row[12]),
        extra,
    )


def _stored_client(text: str) -> ClientId:
    try:
        return ClientId.parse_display(text)
    except InvalidClientIdentifier as err:
        raise DatabaseError("server configuration holds an invalid identifier", reason=f"serverconf: {text!r}") from err


def _stored_subject(text: str) -> Subject:
    try:
        subject = parse_display(text)
    except InvalidClientIdentifier as err:
        raise DatabaseError("server configuration holds an invalid identifier", reason=f"serverconf: {text!r}") from err
    if not isinstance(subject, (ClientId, GlobalGroupId, LocalGroupId)):
        raise DatabaseError("server configuration holds an invalid subject", reason=f"serverconf: {text!r}")
    return subject


class ServerConfStore:
    """The configuration database of one security server.

    ``database_url`` (``[database] url``) puts it in that PostgreSQL database, which the nodes of a clustered
    server share; without it, the SQLite file at ``path``.
    """

    def __init__(
        self, path: str | Path, *, busy_timeout: float = DEFAULT_BUSY_TIMEOUT, database_url: str | None = None
    ) -> None:
        self.path = Path(path)
        self._db: Database = open_database(
            database_url, self.path, label="server configuration", busy_timeout=busy_timeout
        )
        try:
            migrate(self._db, SCHEMA)
        except BaseException:
            self._db.close()
            raise

    def close(self) -> None:
        """Close the database; later calls fail with :class:`DatabaseError`."""
        self._db.close()

    def __enter__(self) -> ServerConfStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- plumbing ---------------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _change(self, action: str) -> Iterator[Connection]:
        """One write transaction; any error rolls the whole change back; a broken constraint is a refusal."""
        try:
            with self._db.write(action) as conn:
                yield conn
        except ConstraintViolated as err:
            raise ServerConfError(f"{action} refused: {err.detail}") from err

    @staticmethod
    def _one(conn: Connection, sql: str, params: tuple[Any, ...]) -> Row | None:
        return conn.execute(sql, params).fetchone()

    def _identity(self, conn: Connection) -> ServerIdentity:
        row = self._one(conn, "SELECT owner, server_code FROM server WHERE id = 1", ())
        if row is None:
            raise ServerConfError("the security server is not initialised (run `fedbus server init`)")
        try:
            return ServerIdentity(_stored_client(row[0]), row[1])
        except InvalidClientIdentifier as err:
            raise DatabaseError("server configuration holds an invalid server code") from err

    def _client_state(self, conn: Connection, client: ClientId) -> ClientState:
        row = self._one(conn, "SELECT state FROM client WHERE id = ?", (str(client),))
        if row is None:
            raise ServerConfError(f"{client} is not a client of this security server")
        return _client_state(row[0])

    def _service_kinds(self, conn: Connection, provider: ClientId, code: str) -> set[ServiceKind]:
        rows = conn.execute("SELECT kind FROM service WHERE client = ? AND code = ?", (str(provider), code))
        return {_service_kind(row[0]) for row in rows}

    # --- identity and anchor ------------------------------------------------------------------------------

    def is_initialised(self) -> bool:
        """Whether :meth:`initialise` has run."""
        with self._db.read("reading the identity") as conn:
            return self._one(conn, "SELECT 1 FROM server WHERE id = 1", ()) is not None

    def initialise(self, owner: ClientId, server_code: str, anchor: bytes) -> ServerIdentity:
        """Set the owner member, server code and configuration anchor once; the owner becomes a saved client."""
        identity = ServerIdentity(owner, server_code)
        self._check_anchor(anchor)
        with self._change("initialising") as conn:
            if self._one(conn, "SELECT 1 FROM server WHERE id = 1", ()) is not None:
                raise ServerConfError("the security server is already initialised")
            conn.execute(
                "INSERT INTO server (id, owner, server_code, anchor) VALUES (1, ?, ?, ?)",
                (str(owner), server_code, bytes(anchor)),
            )
            conn.execute(
                "INSERT INTO client (id, state, is_owner) VALUES (?, ?, 1)", (str(owner), ClientState.SAVED.value)
            )
        return identity

    @staticmethod
    def _check_anchor(anchor: object) -> None:
        if not isinstance(anchor, (bytes, bytearray)) or not anchor:
            raise ServerConfError("the configuration anchor must be non-empty bytes")
        if len(anchor) > MAX_ANCHOR_BYTES:
            raise ServerConfError(f"the configuration anchor is larger than {MAX_ANCHOR_BYTES} bytes")

    def identity(self) -> ServerIdentity:
        """The owner and server code; :class:`ServerConfError` before :meth:`initialise`."""
        with self._db.read("reading the identity") as conn:
            return self._identity(conn)

    def anchor(self) -> bytes:
        """The configuration anchor as it was imported."""
        with self._db.read("reading the anchor") as conn:
            row = self._one(conn, "SELECT anchor FROM server WHERE id = 1", ())
        if row is None:
            raise ServerConfError("the security server is not initialised (run `fedbus server init`)")
        return bytes(row[0])

    def replace_anchor(self, anchor: bytes) -> None:
        """Import a new configuration anchor of the same instance (UG-SS §10.1); the caller checks its contents."""
        self._check_anchor(anchor)
        with self._change("replacing the anchor") as conn:
            self._identity(conn)
            conn.execute("UPDATE server SET anchor = ? WHERE id = 1", (bytes(anchor),))

    # --- clients ------------------------------------------------------------------------------------------------

    def add_client(self, client: ClientId) -> HostedClient:
        """Add a subsystem of this instance as a client in state *saved* (UG-SS §4.2)."""
        _require(client, ClientId, "client")
        if client.subsystem_code is None:
            raise ServerConfError("only subsystems are added as clients; the owner member is added by init")
        with self._change("adding a client") as conn:
            identity = self._identity(conn)
            if client.instance != identity.instance:
                raise ServerConfError(f"{client} is not of this server's instance {identity.instance}")
            if self._one(conn, "SELECT 1 FROM client WHERE id = ?", (str(client),)) is not None:
                raise ServerConfError(f"{client} is already a client of this security server")
            conn.execute("INSERT INTO client (id, state, is_owner) VALUES (?, ?, 0)", (str(client), ClientState.SAVED.value))
        return HostedClient(client, ClientState.SAVED)

    def set_client_state(self, client: ClientId, state: ClientState) -> None:
        """Move a client to ``state`` along UG-SS §4.1's transitions; any other move is refused."""
        _require(client, ClientId, "client")
        new_state = _client_state(state)
        with self._change("changing a client state") as conn:
            self._identity(conn)
            current = self._client_state(conn, client)
            if new_state not in _TRANSITIONS[current]:
                raise ServerConfError(f"{client} cannot go from {current.value} to {new_state.value}")
            conn.execute("UPDATE client SET state = ? WHERE id = ?", (new_state.value, str(client)))

    def set_connection_type(self, client: ClientId, connection_type: ConnectionType) -> None:
        """Set how a hosted client's information systems must connect to the client proxy (X-Road's
        ``updateConnectionType``)."""
        _require(client, ClientId, "client")
        _require(connection_type, ConnectionType, "connection type")
        with self._change("changing a client's connection type") as conn:
            self._identity(conn)
            self._client_state(conn, client)
            conn.execute("UPDATE client SET connection_type = ? WHERE id = ?", (connection_type.value, str(client)))

    def delete_client(self, client: ClientId) -> None:
        """Remove a hosted subsystem with everything it holds (services, rights to them, local groups), its
        memberships of other clients' groups and the rights granted to it. The owner member stays (UG-SS §4.5)."""
        _require(client, ClientId, "client")
        with self._change("deleting a client") as conn:
            if self._identity(conn).owner == client:
                raise ServerConfError("the owner member of the security server cannot be deleted")
            self._client_state(conn, client)
            text = str(client)
            conn.execute("DELETE FROM access_right WHERE provider = ? OR subject = ?", (text, text))
            conn.execute("DELETE FROM local_group_member WHERE client = ? OR member = ?", (text, text))
            conn.execute("DELETE FROM local_group WHERE client = ?", (text,))
            conn.execute("DELETE FROM service WHERE client = ?", (text,))
            conn.execute("DELETE FROM tls_certificate WHERE client = ?", (text,))
            conn.execute("DELETE FROM endpoint WHERE client = ?", (text,))
            conn.execute("DELETE FROM client_name WHERE client = ?", (text,))
            conn.execute("DELETE FROM client WHERE id = ?", (text,))

    # --- services -----------------------------------------------------------------------------------------------

    def add_service(
        self,
        service: ServiceId,
        *,
        url: str,
        kind: ServiceKind = ServiceKind.SOAP,
        timeout_seconds: int = DEFAULT_TIMEOUT_SECONDS,
        description: bytes | None = None,
    ) -> Service:
        """Publish ``service`` (code and version) of a hosted client at ``url``; enabled at once.

        ``description`` is the service's WSDL (SOAP) or OpenAPI 3 JSON description (REST), checked here; an
        OpenAPI description's operations become the service's endpoints. A REST service has no version: REST
        calls name a service by its code alone (pr-rest §4.1).
        """
        _require(service, ServiceId, "service")
        service_kind = _service_kind(kind)
        if service_kind is ServiceKind.REST and service.service_version is not None:
            raise ServerConfError("a REST service has no version (REST calls name the service code only)")
        endpoints: tuple[Endpoint, ...] = ()
        if description is not None:
            if not isinstance(description, bytes) or not description:
                raise ServerConfError("a service description must be non-empty bytes")
            endpoints = check_description(service_kind, description)
        value = Service(
            service,
            service_kind,
            check_service_url(url),
            check_timeout(timeout_seconds),
            description=description,
            endpoints=endpoints,
        )
        with self._change("adding a service") as conn:
            self._identity(conn)
            self._client_state(conn, service.client)
            version = service.service_version or ""
            if self._one(
                conn,
                "SELECT 1 FROM service WHERE client = ? AND code = ? AND version = ?",
                (str(service.client), service.service_code, version),
            ):
                raise ServerConfError(f"{service.client} already has service {service.service_code} version {version or '(none)'}")
            other_kinds = self._service_kinds(conn, service.client, service.service_code) - {value.kind}
            if other_kinds:
                raise ServerConfError(
                    f"service code {service.service_code} of {service.client} is already a {other_kinds.pop().value} service"
                )
            conn.execute(
                "INSERT INTO service (client, code, version, kind, url, timeout, enabled, disabled_notice,"
                " description, endpoints) VALUES (?, ?, ?, ?, ?, ?, 1, '', ?, ?)",
                (
                    str(service.client),
                    service.service_code,
                    version,
                    value.kind.value,
                    value.url,
                    value.timeout_seconds,
                    description,
                    "\n".join(str(e) for e in endpoints),
                ),
            )
        return value

    def _set_enabled(self, service: ServiceId, enabled: bool, notice: str) -> None:
        _require(service, ServiceId, "service")
        action = "enabling a service" if enabled else "disabling a service"
        with self._change(action) as conn:
            self._identity(conn)
            key = _service_key(service)
            row = self._one(conn, "SELECT enabled FROM service WHERE client = ? AND code = ? AND version = ?", key)
            if row is None:
                raise _no_such_service(service)
            if bool(row[0]) == enabled:
                raise ServerConfError(f"service {service.service_code} is already {'enabled' if enabled else 'disabled'}")
            conn.execute(
                "UPDATE service SET enabled = ?, disabled_notice = ? WHERE client = ? AND code = ? AND version = ?",
                (1 if enabled else 0, notice, *key),
            )

    def disable_service(self, service: ServiceId, notice: str = "") -> None:
        """Disable a service; callers get ``service_disabled`` with ``notice`` (DM-SS §2.16 ``disablednotice``)."""
        self._set_enabled(service, False, check_text(notice, "disabled notice", allow_empty=True))

    def enable_service(self, service: ServiceId) -> None:
        """Enable a disabled service again and clear its notice."""
        self._set_enabled(service, True, "")

    def update_service(
        self, service: ServiceId, *, url: str, timeout_seconds: int, ssl_auth: bool | None = None
    ) -> None:
        """Change where a service runs, how long a call to it may take (UG-SS §6.4) and, unless ``ssl_auth`` is
        None, whether its provider's TLS certificate is checked (UG-SS §6.4 "Verify TLS certificate")."""
        _require(service, ServiceId, "service")
        checked_url, timeout = check_service_url(url), check_timeout(timeout_seconds)
        if ssl_auth is not None:
            _require(ssl_auth, bool, "ssl_auth")
        with self._change("changing a service") as conn:
            self._identity(conn)
            key = _service_key(service)
            cursor = conn.execute(
                "UPDATE service SET url = ?, timeout = ?, ssl_auth = COALESCE(?, ssl_auth)"
                " WHERE client = ? AND code = ? AND version = ?",
                (checked_url, timeout, None if ssl_auth is None else int(ssl_auth), *key),
            )
            if cursor.rowcount != 1:
                raise _no_such_service(service)

    def delete_services(self, services: Sequence[ServiceId]) -> None:
        """Remove services of one client together (a service description); the access rights to a service code
        go with the last service of that code (UG-SS §6.6). Refused as a whole when one is unknown."""
        for service in services:
            _require(service, ServiceId, "service")
        with self._change("deleting services") as conn:
            self._identity(conn)
            codes: set[tuple[str, str]] = set()
            for service in services:
                key = _service_key(service)
                cursor = conn.execute("DELETE FROM service WHERE client = ? AND code = ? AND version = ?", key)
                if cursor.rowcount != 1:
                    raise _no_such_service(service)
                codes.add(key[:2])
            for provider, code in codes:
                if not self._one(conn, "SELECT 1 FROM service WHERE client = ? AND code = ?", (provider, code)):
                    conn.execute("DELETE FROM access_right WHERE provider = ? AND service_code = ?", (provider, code))
                    conn.execute("DELETE FROM endpoint WHERE client = ? AND service_code = ?", (provider, code))

    def set_description_source(self, services: Sequence[ServiceId], url: str, read_at: datetime) -> None:
        """Record that the description of ``services`` was read from ``url`` at ``read_at``."""
        checked = check_service_url(url)
        if not isinstance(read_at, datetime) or read_at.tzinfo is None:
            raise ServerConfError("the time a description was read must be an aware datetime")
        with self._change("recording a description's source") as conn:
            self._identity(conn)
            for service in services:
                _require(service, ServiceId, "service")
                key = _service_key(service)
                cursor = conn.execute(
                    "UPDATE service SET description_url = ?, refreshed_at = ? WHERE client = ? AND code = ? AND version = ?",
                    (checked, read_at.astimezone(UTC).isoformat(), *key),
                )
                if cursor.rowcount != 1:
                    raise _no_such_service(service)

    def replace_description(self, services: Sequence[ServiceId], description: bytes) -> None:
        """Give ``services`` a new description (read again): checked, and a REST service's endpoints follow it."""
        if not isinstance(description, bytes) or not description:
            raise ServerConfError("a service description must be non-empty bytes")
        with self._change("replacing a description") as conn:
            self._identity(conn)
            for service in services:
                _require(service, ServiceId, "service")
                key = _service_key(service)
                row = self._one(conn, "SELECT kind FROM service WHERE client = ? AND code = ? AND version = ?", key)
                if row is None:
                    raise _no_such_service(service)
                endpoints = check_description(_service_kind(row[0]), description)
                conn.execute(
                    "UPDATE service SET description = ?, endpoints = ? WHERE client = ? AND code = ? AND version = ?",
                    (description, "\n".join(str(e) for e in endpoints), *key),
                )

    # --- endpoints added by hand, service codes, subsystem names ---------------------------------------------

    def _rest_endpoints(self, conn: Connection, client: ClientId, code: str) -> tuple[tuple[Endpoint, ...], set[Endpoint]]:
        """A REST service code's generated endpoints and those added by hand; refused when it has no REST service."""
        row = self._one(conn, "SELECT kind, endpoints FROM service WHERE client = ? AND code = ?", (str(client), code))
        if row is None or _service_kind(row[0]) is not ServiceKind.REST:
            raise ServerConfError(f"{client} has no REST service {code}")
        added = {
            _stored_endpoint(r[0], r[1])
            for r in conn.execute("SELECT method, path FROM endpoint WHERE client = ? AND service_code = ?", (str(client), code))
        }
        return _stored_endpoints(row[1]), added

    def add_endpoint(self, client: ClientId, code: str, endpoint: Endpoint) -> None:
        """Add an endpoint to a REST service code (X-Road's addEndpoint); refused when the code has it already."""
        _require(client, ClientId, "client")
        _require(endpoint, Endpoint, "endpoint")
        with self._change("adding an endpoint") as conn:
            self._identity(conn)
            generated, added = self._rest_endpoints(conn, client, code)
            if endpoint in generated or endpoint in added or (endpoint.method, endpoint.path) == ("*", "**"):
                raise ServerConfError(f"service {code} has endpoint {endpoint} already")
            conn.execute(
                "INSERT INTO endpoint (client, service_code, method, path) VALUES (?, ?, ?, ?)",
                (str(client), code, endpoint.method, endpoint.path),
            )

    def update_endpoint(self, client: ClientId, code: str, old: Endpoint, new: Endpoint) -> None:
        """Change an endpoint added by hand; the access rights limited to it follow it (X-Road keeps them on the
        endpoint). Refused for an endpoint not added by hand and when ``new`` exists already."""
        _require(client, ClientId, "client")
        _require(old, Endpoint, "endpoint")
        _require(new, Endpoint, "endpoint")
        with self._change("changing an endpoint") as conn:
            self._identity(conn)
            generated, added = self._rest_endpoints(conn, client, code)
            if old not in added or old in generated:
                raise ServerConfError(f"service {code} has no endpoint {old} added by hand")
            if new != old and (new in generated or new in added or (new.method, new.path) == ("*", "**")):
                raise ServerConfError(f"service {code} has endpoint {new} already")
            key = (str(client), code, old.method, old.path)
            conn.execute(
                "UPDATE endpoint SET method = ?, path = ? WHERE client = ? AND service_code = ? AND method = ? AND path = ?",
                (new.method, new.path, *key),
            )
            conn.execute(
                "UPDATE access_right SET method = ?, path = ?"
                " WHERE provider = ? AND service_code = ? AND method = ? AND path = ?",
                (new.method, new.path, *key),
            )

    def delete_endpoint(self, client: ClientId, code: str, endpoint: Endpoint) -> None:
        """Remove an endpoint added by hand with the access rights limited to it (X-Road's deleteEndpoint)."""
        _require(client, ClientId, "client")
        _require(endpoint, Endpoint, "endpoint")
        with self._change("deleting an endpoint") as conn:
            self._identity(conn)
            generated, added = self._rest_endpoints(conn, client, code)
            if endpoint not in added or endpoint in generated:
                raise ServerConfError(f"service {code} has no endpoint {endpoint} added by hand")
            key = (str(client), code, endpoint.method, endpoint.path)
            conn.execute("DELETE FROM endpoint WHERE client = ? AND service_code = ? AND method = ? AND path = ?", key)
            conn.execute(
                "DELETE FROM access_right WHERE provider = ? AND service_code = ? AND method = ? AND path = ?", key
            )

    def rename_service_code(self, client: ClientId, code: str, new_code: str) -> None:
        """Give a REST service a new code (X-Road's ``new_rest_service_code``); its access rights and endpoints
        follow. Refused when the client has a service with ``new_code`` already."""
        _require(client, ClientId, "client")
        try:
            ServiceId(client, new_code)
        except BusError as err:
            raise ServerConfError(f"invalid service code: {err.message}") from err
        with self._change("renaming a service code") as conn:
            self._identity(conn)
            self._rest_endpoints(conn, client, code)
            if self._one(conn, "SELECT 1 FROM service WHERE client = ? AND code = ?", (str(client), new_code)):
                raise ServerConfError(f"{client} has service code {new_code} already")
            for table, column in (("service", "client"), ("access_right", "provider"), ("endpoint", "client")):
                code_column = "code" if table == "service" else "service_code"
                conn.execute(
                    f"UPDATE {table} SET {code_column} = ? WHERE {column} = ? AND {code_column} = ?",
                    (new_code, str(client), code),
                )

    def set_subsystem_name(self, client: ClientId, name: str) -> None:
        """Keep the name given to a hosted subsystem (X-Road's ``ClientName``: no control characters, ``:``,
        ``;``, ``/``, ``\\`` or ``%``)."""
        _require(client, ClientId, "client")
        if client.subsystem_code is None:
            raise ServerConfError("only a subsystem has a name of its own")
        text = check_text(name, "subsystem name")
        if any(ch in ":;/\\%" for ch in text):
            raise ServerConfError("a subsystem name may not contain : ; / \\ or %")
        with self._change("naming a subsystem") as conn:
            self._identity(conn)
            self._client_state(conn, client)
            conn.execute("DELETE FROM client_name WHERE client = ?", (str(client),))
            conn.execute("INSERT INTO client_name (client, name) VALUES (?, ?)", (str(client), text))

    # --- internal TLS certificates ---------------------------------------------------------------------------

    def add_tls_certificate(self, certificate: TlsCertificate) -> None:
        """Add an internal TLS certificate to its hosted client; refused when the client has it already."""
        _require(certificate, TlsCertificate, "TLS certificate")
        with self._change("adding a TLS certificate") as conn:
            self._identity(conn)
            self._client_state(conn, certificate.client)
            key = (str(certificate.client), certificate.hash)
            if self._one(conn, "SELECT 1 FROM tls_certificate WHERE client = ? AND hash = ?", key):
                raise ServerConfError(f"{certificate.client} has TLS certificate {certificate.hash} already")
            conn.execute("INSERT INTO tls_certificate (client, hash, der) VALUES (?, ?, ?)", (*key, certificate.der))

    def remove_tls_certificate(self, client: ClientId, cert_hash: str) -> None:
        """Remove an internal TLS certificate of a hosted client by its SHA-256 (hex, either case)."""
        _require(client, ClientId, "client")
        with self._change("removing a TLS certificate") as conn:
            self._identity(conn)
            cursor = conn.execute(
                "DELETE FROM tls_certificate WHERE client = ? AND hash = ?", (str(client), str(cert_hash).upper())
            )
            if cursor.rowcount != 1:
                raise ServerConfError(f"{client} has no TLS certificate {cert_hash}")

    # --- local groups -------------------------------------------------------------------------------------------

    def add_local_group(self, owner: ClientId, group: LocalGroupId, description: str) -> LocalGroup:
        """Create an empty local group for the hosted client ``owner`` (UG-SS §8.1)."""
        _require(owner, ClientId, "group owner")
        _require(group, LocalGroupId, "local group")
        text = check_text(description, "group description")
        with self._change("adding a local group") as conn:
            self._identity(conn)
            self._client_state(conn, owner)
            if self._one(conn, "SELECT 1 FROM local_group WHERE client = ? AND code = ?", (str(owner), group.group_code)):
                raise ServerConfError(f"{owner} already has local group {group.group_code}")
            conn.execute(
                "INSERT INTO local_group (client, code, description) VALUES (?, ?, ?)",
                (str(owner), group.group_code, text),
            )
        return LocalGroup(owner, group, text)

    def _check_group(self, conn: Connection, owner: ClientId, group: LocalGroupId) -> None:
        self._identity(conn)
        self._client_state(conn, owner)
        if not self._one(conn, "SELECT 1 FROM local_group WHERE client = ? AND code = ?", (str(owner), group.group_code)):
            raise ServerConfError(f"{owner} has no local group {group.group_code}")

    def add_local_group_member(self, owner: ClientId, group: LocalGroupId, member: ClientId) -> None:
        """Add a member or subsystem to a local group of ``owner`` (UG-SS §8.2)."""
        _require(owner, ClientId, "group owner")
        _require(group, LocalGroupId, "local group")
        _require(member, ClientId, "group member")
        with self._change("adding a local group member") as conn:
            self._check_group(conn, owner, group)
            key = (str(owner), group.group_code, str(member))
            if self._one(conn, "SELECT 1 FROM local_group_member WHERE client = ? AND code = ? AND member = ?", key):
                raise ServerConfError(f"{member} is already in local group {group.group_code}")
            conn.execute("INSERT INTO local_group_member (client, code, member) VALUES (?, ?, ?)", key)

    def remove_local_group_member(self, owner: ClientId, group: LocalGroupId, member: ClientId) -> None:
        """Remove a member from a local group; the rights granted through the group end for it."""
        _require(owner, ClientId, "group owner")
        _require(group, LocalGroupId, "local group")
        _require(member, ClientId, "group member")
        with self._change("removing a local group member") as conn:
            self._check_group(conn, owner, group)
            key = (str(owner), group.group_code, str(member))
            cursor = conn.execute("DELETE FROM local_group_member WHERE client = ? AND code = ? AND member = ?", key)
            if cursor.rowcount != 1:
                raise ServerConfError(f"{member} is not in local group {group.group_code}")

    def set_local_group_description(self, owner: ClientId, group: LocalGroupId, description: str) -> None:
        """Change a local group's description (X-Road's updateLocalGroup)."""
        _require(owner, ClientId, "group owner")
        _require(group, LocalGroupId, "local group")
        text = check_text(description, "group description")
        with self._change("changing a local group") as conn:
            self._check_group(conn, owner, group)
            conn.execute(
                "UPDATE local_group SET description = ? WHERE client = ? AND code = ?", (text, str(owner), group.group_code)
            )

    def delete_local_group(self, owner: ClientId, group: LocalGroupId) -> None:
        """Remove a local group with its members and the access rights granted to it (UG-SS §8.4)."""
        _require(owner, ClientId, "group owner")
        _require(group, LocalGroupId, "local group")
        with self._change("deleting a local group") as conn:
            self._check_group(conn, owner, group)
            key = (str(owner), group.group_code)
            conn.execute("DELETE FROM access_right WHERE provider = ? AND subject = ?", (key[0], str(group)))
            conn.execute("DELETE FROM local_group_member WHERE client = ? AND code = ?", key)
            conn.execute("DELETE FROM local_group WHERE client = ? AND code = ?", key)

    # --- time-stamping services ------------------------------------------------------------------------------

    def add_timestamping_service(self, service: TimestampingService) -> None:
        """Choose an approved time-stamping service (whether it is approved is the caller's check)."""
        _require(service, TimestampingService, "time-stamping service")
        with self._change("choosing a time-stamping service") as conn:
            self._identity(conn)
            if self._one(conn, "SELECT 1 FROM timestamping_service WHERE url = ?", (service.url,)):
                raise ServerConfError(f"time-stamping service {service.url} is chosen already")
            conn.execute("INSERT INTO timestamping_service (url, name) VALUES (?, ?)", (service.url, service.name))

    def remove_timestamping_service(self, url: str) -> None:
        """Stop using a chosen time-stamping service."""
        with self._change("removing a time-stamping service") as conn:
            self._identity(conn)
            cursor = conn.execute("DELETE FROM timestamping_service WHERE url = ?", (url,))
            if cursor.rowcount != 1:
                raise ServerConfError(f"time-stamping service {url} is not chosen")

    # --- access rights ------------------------------------------------------------------------------------------

    @staticmethod
    def _right_key(right: AccessRight) -> tuple[str, str, str, str, str]:
        endpoint = right.endpoint
        return (
            str(right.provider),
            right.service_code,
            str(right.subject),
            endpoint.method if endpoint else "",
            endpoint.path if endpoint else "",
        )

    def grant(self, right: AccessRight) -> None:
        """Grant ``right``; refused if it exists, if the provider has no such service code, or for an unknown group.

        Endpoint-level rights are for REST services only (UG-SS §7). Granting never changes another right.
        """
        _require(right, AccessRight, "access right")
        with self._change("granting an access right") as conn:
            self._identity(conn)
            self._client_state(conn, right.provider)
            kinds = self._service_kinds(conn, right.provider, right.service_code)
            if not kinds:
                raise ServerConfError(f"{right.provider} has no service {right.service_code}")
            if right.endpoint is not None and kinds != {ServiceKind.REST}:
                raise ServerConfError("endpoint-level access rights are for REST services only")
            if isinstance(right.subject, LocalGroupId):
                self._check_group(conn, right.provider, right.subject)
            key = self._right_key(right)
            if self._one(
                conn,
                "SELECT 1 FROM access_right WHERE provider = ? AND service_code = ? AND subject = ?"
                " AND method = ? AND path = ?",
                key,
            ):
                raise ServerConfError(f"{right.subject} already has this right to {right.service_code}")
            conn.execute(
                "INSERT INTO access_right (provider, service_code, subject, method, path) VALUES (?, ?, ?, ?, ?)", key
            )

    def revoke(self, right: AccessRight) -> None:
        """Revoke exactly ``right``; refused if it was never granted. No other right changes."""
        _require(right, AccessRight, "access right")
        with self._change("revoking an access right") as conn:
            self._identity(conn)
            cursor = conn.execute(
                "DELETE FROM access_right WHERE provider = ? AND service_code = ? AND subject = ?"
                " AND method = ? AND path = ?",
                self._right_key(right),
            )
            if cursor.rowcount != 1:
                raise ServerConfError(f"{right.subject} has no such right to {right.service_code} of {right.provider}")

    # --- snapshot -----------------------------------------------------------------------------------------------

    def snapshot(self) -> ServerConfSnapshot:
        """Read the whole configuration in one read transaction into a frozen snapshot."""
        with self._db.read("reading a snapshot") as conn:
            return self._read_snapshot(conn)

    def _read_snapshot(self, conn: Connection) -> ServerConfSnapshot:
        identity = self._identity(conn)
        anchor_row = self._one(conn, "SELECT anchor FROM server WHERE id = 1", ())
        assert anchor_row is not None  # _identity found the row
        try:
            clients = tuple(
                HostedClient(_stored_client(row[0]), _client_state(row[1]), bool(row[2]), _connection_type(row[3]))
                for row in conn.execute("SELECT id, state, is_owner, connection_type FROM client ORDER BY rowid")
            )
            added: dict[tuple[str, str], list[Endpoint]] = {}
            for row in conn.execute("SELECT client, service_code, method, path FROM endpoint ORDER BY rowid"):
                added.setdefault((row[0], row[1]), []).append(_stored_endpoint(row[2], row[3]))
            services = tuple(
                _stored_service(row, added.get((row[0], row[1]), ()))
                for row in conn.execute(
                    "SELECT client, code, version, kind, url, timeout, enabled, disabled_notice, description, endpoints,"
                    " description_url, refreshed_at, ssl_auth FROM service ORDER BY rowid"
                )
            )
            rights = tuple(
                AccessRight(
                    _stored_subject(row[2]),
                    ServiceId(_stored_client(row[0]), row[1]),
                    Endpoint(row[3], row[4]) if row[3] else None,
                )
                for row in conn.execute(
                    "SELECT provider, service_code, subject, method, path FROM access_right ORDER BY rowid"
                )
            )
            members: dict[tuple[str, str], set[ClientId]] = {}
            for row in conn.execute("SELECT client, code, member FROM local_group_member ORDER BY rowid"):
                members.setdefault((row[0], row[1]), set()).add(_stored_client(row[2]))
            groups = tuple(
                LocalGroup(
                    _stored_client(row[0]),
                    LocalGroupId(row[1]),
                    row[2],
                    frozenset(members.get((row[0], row[1]), ())),
                )
                for row in conn.execute("SELECT client, code, description FROM local_group ORDER BY rowid")
            )
            tsps = tuple(
                TimestampingService(row[0], row[1])
                for row in conn.execute("SELECT name, url FROM timestamping_service ORDER BY rowid")
            )
            tls_certificates = tuple(
                TlsCertificate(_stored_client(row[0]), bytes(row[2]), row[1])
                for row in conn.execute("SELECT client, hash, der FROM tls_certificate ORDER BY rowid")
            )
            names = MappingProxyType({
                _stored_client(row[0]): row[1] for row in conn.execute("SELECT client, name FROM client_name")
            })
        except BusError as err:
            if isinstance(err, DatabaseError):
                raise
            raise DatabaseError("server configuration holds an invalid row", reason=f"serverconf: {err.reason}") from err
        return ServerConfSnapshot(
            identity, bytes(anchor_row[0]), clients, services, rights, groups, tsps, tls_certificates, names
        )
