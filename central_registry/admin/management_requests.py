"""Management requests from security servers: list, show, approve, decline (through the registration desk).

A request keeps the id its security server gave it (inside the signed request); X-Road numbers requests with
integers, so this layer numbers them 1, 2, ... in the order they were submitted (submission time, then id).
Requests are never deleted, so a request keeps its number.

**Requests from the centre** (X-Road's ``addManagementRequest``, :func:`file_request`): the registry's
administrator files the centre's half of a registration. As X-Road's central server does, a registration
(authentication certificate, client) waits until the security server's own request arrives and pairs with it
(both show ``SUBMITTED FOR APPROVAL``): when the server's request comes second it is approved at once (X-Road's
auto-approval of a request its centre filed first), when the centre's comes second an officer approves the pair.
A deletion (client, authentication certificate) filed by the centre takes effect at once.
"""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509

from central_registry.admin.errors import Conflict, NotFound, RequestNotFound, RequestNotWaiting
from central_registry.requests import (
    CENTRE_ORIGIN,
    SERVER_ORIGIN,
    RegistrationDesk,
    RequestRecord,
    RequestStatus,
    origin_of,
    pairing_key,
    waiting_requests,
)
from central_registry.store import RegistryError, RegistryStore, auth_cert_hash
from security_server.core import trust
from security_server.core.identifiers import ClientId, SecurityServerId
from security_server.core.mgmtrequest import RequestType


@dataclass(frozen=True, slots=True)
class NumberedRequest:
    """A stored request with its number and what its payload says (the server's address, the certificate)."""

    number: int
    record: RequestRecord
    address: str | None
    auth_cert_der: bytes | None
    origin: str = SERVER_ORIGIN
    """``SECURITY_SERVER`` (signed by the server) or ``CENTER`` (filed through :func:`file_request`)."""
    paired: bool = False
    """Waiting, with the request of the other origin it pairs with (X-Road's ``SUBMITTED FOR APPROVAL``)."""


def requests(store: RegistryStore) -> list[NumberedRequest]:
    """Every request, numbered, oldest first."""
    payloads = {
        row["id"]: json.loads(row["payload"]) for row in store.db.query("SELECT id, payload FROM requests")
    }
    waiting_keys: dict[tuple[str, str, str | None, str | None], set[str]] = {}
    records = RegistrationDesk(store).list()
    for record in records:
        if record.status is RequestStatus.PENDING and record.id in payloads:
            waiting_keys.setdefault(pairing_key(payloads[record.id]), set()).add(origin_of(payloads[record.id]))
    found = []
    for number, record in enumerate(records, start=1):
        payload = payloads.get(record.id, {})
        cert = payload.get("auth_cert")
        paired = record.status is RequestStatus.PENDING and len(waiting_keys.get(pairing_key(payload), ())) > 1 \
            if payload else False
        found.append(NumberedRequest(number, record, payload.get("address"),
                                     base64.b64decode(cert) if cert else None, origin_of(payload), paired))
    return found


def request(store: RegistryStore, number: int) -> NumberedRequest:
    """One request by number; :class:`RequestNotFound` when there is none."""
    everything = requests(store)
    if not 1 <= number <= len(everything):
        raise RequestNotFound(f"no management request {number}")
    return everything[number - 1]


def _waiting(store: RegistryStore, number: int) -> NumberedRequest:
    found = request(store, number)
    if found.record.status is not RequestStatus.PENDING:
        raise RequestNotWaiting(f"management request {number} is already {found.record.status}")
    return found


def approve(store: RegistryStore, number: int, now: datetime) -> NumberedRequest:
    """Approve a waiting request: it takes effect in the next published configuration."""
    RegistrationDesk(store).approve(_waiting(store, number).record.id, now)
    return request(store, number)


def decline(store: RegistryStore, number: int, now: datetime) -> NumberedRequest:
    """Decline a waiting request; nothing else changes."""
    RegistrationDesk(store).reject(_waiting(store, number).record.id, now)
    return request(store, number)


def records(store: RegistryStore, status: RequestStatus | None = None) -> list[RequestRecord]:
    """Requests by the ids their servers gave them, oldest first, optionally only those in ``status`` (the CLI)."""
    return RegistrationDesk(store).list(status)


def approve_by_id(store: RegistryStore, request_id: str, now: datetime) -> RequestRecord:
    """Approve a pending request named by its id (the CLI)."""
    return RegistrationDesk(store).approve(request_id, now)


def decline_by_id(store: RegistryStore, request_id: str, now: datetime) -> RequestRecord:
    """Decline (reject) a pending request named by its id (the CLI)."""
    return RegistrationDesk(store).reject(request_id, now)


# --- requests from the centre (addManagementRequest) ---------------------------------------------------------------


class RequestNotSupported(RegistryError):
    """A request type fedbus does not handle (X-Road's ``management_request_not_supported``)."""

    http_status = 400
    api_code = "management_request_not_supported"


class CannotRegisterOwner(RegistryError):
    """The server's owner is its client already (X-Road's ``management_request_cannot_register_owner``)."""

    http_status = 400
    api_code = "management_request_cannot_register_owner"


class InvalidAuthCertificate(RegistryError):
    """Not an authentication certificate of an approved CA, valid now (X-Road's
    ``management_request_invalid_auth_certificate``)."""

    http_status = 400
    api_code = "management_request_invalid_auth_certificate"


class ServerOwnerNotFound(NotFound):
    """The server's owner is no member (X-Road's ``management_request_server_owner_not_found``)."""

    api_code = "management_request_server_owner_not_found"


class ServerClientNotFound(NotFound):
    """The client is not registered on the server (X-Road's ``management_request_server_client_not_found``)."""

    api_code = "management_request_server_client_not_found"


class RequestServerNotFound(Conflict):
    """The server is not registered (X-Road's ``management_request_server_not_found``, 409)."""

    api_code = "management_request_server_not_found"


class RequestMemberNotFound(Conflict):
    """The client's member does not exist (X-Road's ``management_request_member_not_found``, 409)."""

    api_code = "management_request_member_not_found"


class ClientAlreadyRegistered(Conflict):
    """The client is registered on the server already (X-Road's ``management_request_client_already_registered``)."""

    api_code = "management_request_client_already_registered"


class AuthCertAlreadyRegistered(Conflict):
    """The certificate is registered already (X-Road's ``management_request_security_server_exists``)."""

    api_code = "management_request_security_server_exists"


class RequestExists(Conflict):
    """The centre filed the same request already and it waits (X-Road's ``management_request_exists``)."""

    api_code = "management_request_exists"


@dataclass(frozen=True, slots=True)
class CentreRequest:
    """What the centre files: the type, the server, and the client, or the certificate (with the address)."""

    type: RequestType
    server: SecurityServerId
    client: ClientId | None = None
    auth_cert_der: bytes | None = None
    address: str | None = None


def _check_auth_cert(store: RegistryStore, cert_der: bytes, now: datetime) -> None:
    """X-Road's checks of a registration's certificate: an authentication certificate issued by an approved CA,
    valid now, not registered already."""
    try:
        cert = x509.load_der_x509_certificate(cert_der)
        issued = any(trust.is_issued_by(cert, x509.load_der_x509_certificate(ca.cert_der)) for ca in store.cas())
        valid = cert.not_valid_before_utc <= now <= cert.not_valid_after_utc
    except ValueError as err:
        raise InvalidAuthCertificate("the authentication certificate cannot be read") from err
    if not trust.is_auth_cert(cert) or not issued or not valid:
        raise InvalidAuthCertificate("not an authentication certificate of an approved CA, valid now")
    digest = auth_cert_hash(cert_der)
    if any(digest in server.auth_cert_hashes for server in store.security_servers()):
        raise AuthCertAlreadyRegistered("the authentication certificate is registered already")


def _check(store: RegistryStore, wanted: CentreRequest, now: datetime) -> None:
    """X-Road's checks per type before the centre's request is recorded."""
    server = store.security_server(wanted.server)
    if wanted.type is RequestType.AUTH_CERT_REG:
        if not store.has_client(wanted.server.owner):
            raise ServerOwnerNotFound(f"unknown server owner {wanted.server.owner}")
        if wanted.auth_cert_der is None or not wanted.address:
            raise RegistryError("an authentication certificate registration needs the certificate and the address")
        _check_auth_cert(store, wanted.auth_cert_der, now)
    elif wanted.type is RequestType.CLIENT_REG:
        assert wanted.client is not None
        if wanted.client == wanted.server.owner:
            raise CannotRegisterOwner(f"{wanted.client} owns {wanted.server}")
        if server is None:
            raise RequestServerNotFound(f"unknown security server {wanted.server}")
        if not store.has_client(wanted.client.member):
            raise RequestMemberNotFound(f"unknown member {wanted.client.member}")
        if wanted.client in server.clients:
            raise ClientAlreadyRegistered(f"{wanted.client} is a client of {wanted.server} already")
    elif wanted.type is RequestType.CLIENT_DELETION:
        assert wanted.client is not None
        if server is None or wanted.client not in server.clients:
            raise ServerClientNotFound(f"{wanted.client} is not a client of {wanted.server}")
        if wanted.client == wanted.server.owner:
            raise CannotRegisterOwner(f"{wanted.client} owns {wanted.server}: delete the server instead")
    elif wanted.type is RequestType.AUTH_CERT_DELETION:
        assert wanted.auth_cert_der is not None
        if server is None or auth_cert_hash(wanted.auth_cert_der) not in server.auth_cert_hashes:
            raise ServerClientNotFound(f"that certificate is not registered for {wanted.server}")
    else:
        raise RequestNotSupported(f"fedbus does not handle {wanted.type} requests")


def file_request(store: RegistryStore, wanted: CentreRequest, now: datetime) -> NumberedRequest:
    """Record the centre's request (see the module docstring): a registration waits for (or pairs with) its
    server's request; a deletion takes effect at once. A waiting request the centre filed already is 409."""
    _check(store, wanted, now)
    payload = {
        "type": str(wanted.type),
        "server": str(wanted.server),
        "address": wanted.address,
        "auth_cert": base64.b64encode(wanted.auth_cert_der).decode() if wanted.auth_cert_der else None,
        "client": str(wanted.client) if wanted.client else None,
        "origin": CENTRE_ORIGIN,
    }
    waiting = waiting_requests(store, payload)
    if any(origin_of(other) == CENTRE_ORIGIN for _, other in waiting):
        raise RequestExists(f"the centre filed this {wanted.type} request already")
    request_id = f"center-{uuid.uuid4()}"
    with store.transaction("request_filed", {"id": request_id, "type": str(wanted.type), "origin": CENTRE_ORIGIN}):
        store.db.execute(
            "INSERT INTO requests (id, type, payload, status, submitted_at, server_id, client_id)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            [request_id, str(wanted.type), json.dumps(payload, sort_keys=True), str(RequestStatus.PENDING),
             now.isoformat(), str(wanted.server), payload["client"]],
        )
        if wanted.type in (RequestType.CLIENT_DELETION, RequestType.AUTH_CERT_DELETION):
            RegistrationDesk(store).approve(request_id, now)
    return next(found for found in requests(store) if found.record.id == request_id)
