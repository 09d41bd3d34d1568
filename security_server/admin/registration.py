"""Registration requests to the registry: this server's auth certificate and its clients (pr-mserv §2)."""

from __future__ import annotations

from typing import Any, Mapping

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from security_server import registration
from security_server.admin import auth_cert_states, keys, state_file
from security_server.admin.errors import ActionNotPossible, ClientNotFound
from security_server.admin.server_dir import ServerDirectory
from security_server.confclient.client import ConfClient
from security_server.core.auth_cert_status import CertStatus, can_unregister
from security_server.core.config import LayeredConfig
from security_server.core.errors import ConfigurationError
from security_server.core.globalconf import GlobalConf
from security_server.core.globalconf.anchor import parse_configuration_anchor
from security_server.core.identifiers import ClientId, SecurityServerId
from security_server.core.server_address import parse_server_address
from security_server.core.mgmtrequest import ManagementRequest, RequestType, SignatureRole, signed_request
from security_server.serverconf.store import ClientState, ServerConfError
from security_server.signer.ocsp_client import OcspClient
from security_server.signer.softtoken import KeyKind
from security_server.signer.token import Token


async def current_conf(reactor: Any, server_dir: ServerDirectory) -> GlobalConf:
    """Download and verify the global configuration once (the anchor is the stored one)."""
    with server_dir.open_store() as store:
        anchor = parse_configuration_anchor(store.anchor())
    conf_client = ConfClient(reactor, anchor, server_dir.path / "globalconf.bundle")
    conf_client.load_stored()
    result = await conf_client.refresh()
    if not result.applied and result.error is not None:
        raise result.error
    return conf_client.current()


async def own_ocsp(reactor: Any, server_dir: ServerDirectory, conf: GlobalConf, cert: x509.Certificate) -> bytes:
    """A fresh OCSP response for one of our own certificates, from its CA's responder."""
    from security_server.service import own_certificates

    targets = [t for t in own_certificates(server_dir.soft_token(), conf) if t.cert == cert]
    if not targets:
        raise ServerConfError("the certificate's CA is not approved in the global configuration")
    client = OcspClient(reactor, targets, freshness_seconds=conf.ocsp_freshness_seconds)  # the registry's window
    await client.refresh(cert)
    der: bytes = client.current(cert)
    return der


async def register_server(reactor: Any, server_dir: ServerDirectory, address: str) -> Mapping[str, Any]:
    """Send authCertReg for this server's authentication certificate (pr-mserv §2.2); the registry's answer."""
    with server_dir.open_store() as store:
        identity = store.identity()
    token = server_dir.soft_token()
    server_id = identity.server_id
    conf = await current_conf(reactor, server_dir)
    _, sign_cert = token.signing_key(server_id.owner)
    ocsp = await own_ocsp(reactor, server_dir, conf, sign_cert)
    _, auth_cert = token.auth_key()
    content_type, body = registration.auth_cert_reg(token, server_id, address, ocsp)
    answer: Mapping[str, Any] = await registration.submit(reactor, conf.management_service, content_type, body)
    auth_cert_states.record(server_dir, keys.certificate_hash(auth_cert), CertStatus.REGISTRATION_IN_PROGRESS)
    return answer


# --- unregistering the server's authentication certificate (pr-mserv §2.3, X-Road's authCertDeletion) ------------


class NotAnAuthCertificate(ActionNotPossible):
    """Only an authentication certificate is registered and unregistered (X-Road answers 400)."""

    http_status = 400


def check_unregistrable_cert(
    server_dir: ServerDirectory, cert_hash: str, config: LayeredConfig | None = None
) -> keys.TokenKey:
    """Refuse before any network work: an unknown hash (404), a signing certificate, or an authentication
    certificate neither registered nor in registration (X-Road's UNREGISTER rule)."""
    found = keys.find_certificate(server_dir, cert_hash, config)
    if found.info.kind is not KeyKind.AUTH:
        raise NotAnAuthCertificate("only an authentication certificate is unregistered")
    status = keys.certificate_status(server_dir, found.info)
    if not can_unregister(status):
        raise ActionNotPossible(f"the certificate is {status}: only a registered one is unregistered")
    return found


def auth_cert_deletion(token: Token, server: SecurityServerId, cert_der: bytes, owner_ocsp_der: bytes) -> tuple[str, bytes]:
    """An authCertDeletion of ``cert_der`` for ``server``, signed by the server's registered auth key and the owner's
    signing key (as clientDeletion is)."""
    auth_key, auth_cert = token.auth_key()
    sign_key, sign_cert = token.signing_key(server.owner)
    request = ManagementRequest(RequestType.AUTH_CERT_DELETION, registration.new_request_id(), server,
                                auth_cert_der=cert_der)
    return signed_request(
        request,
        [
            (SignatureRole.AUTH, auth_key, auth_cert.public_bytes(serialization.Encoding.DER), None),
            (SignatureRole.OWNER, sign_key, sign_cert.public_bytes(serialization.Encoding.DER), owner_ocsp_der),
        ],
    )


async def unregister_server_cert(
    reactor: Any, server_dir: ServerDirectory, cert_hash: str, config: LayeredConfig | None = None
) -> Mapping[str, Any]:
    """Send authCertDeletion for one of this server's registered authentication certificates; it is then
    DELETION_IN_PROGRESS until it is deleted (the registry drops it from the global configuration when it approves)."""
    found = check_unregistrable_cert(server_dir, cert_hash, config)
    assert found.info.cert is not None
    with server_dir.open_store() as store:
        identity = store.identity()
    token = server_dir.soft_token()
    conf = await current_conf(reactor, server_dir)
    _, sign_cert = token.signing_key(identity.server_id.owner)
    ocsp = await own_ocsp(reactor, server_dir, conf, sign_cert)
    content_type, body = auth_cert_deletion(
        token, identity.server_id, found.info.cert.public_bytes(serialization.Encoding.DER), ocsp)
    answer: Mapping[str, Any] = await registration.submit(reactor, conf.management_service, content_type, body)
    auth_cert_states.record(server_dir, cert_hash, CertStatus.DELETION_IN_PROGRESS)
    return answer


def mark_cert_for_deletion(server_dir: ServerDirectory, cert_hash: str, config: LayeredConfig | None = None) -> None:
    """Mark a registered authentication certificate DELETION_IN_PROGRESS without sending anything (X-Road's
    markAuthCertForDeletion: the registry was told another way); it may then be deleted."""
    check_unregistrable_cert(server_dir, cert_hash, config)
    auth_cert_states.record(server_dir, cert_hash, CertStatus.DELETION_IN_PROGRESS)


def check_registrable(server_dir: ServerDirectory, client_id: ClientId) -> None:
    """Refuse before any network work: an unknown client (404), a member (the owner is registered with the server,
    authCertReg), or a client that is not in state saved (UG-SS §4.3: only a saved client is sent)."""
    hosted = server_dir.snapshot().client(client_id)
    if hosted is None:
        raise ClientNotFound(f"{client_id} is not a client of this security server")
    if client_id.subsystem_code is None:
        raise ServerConfError("only subsystems are registered as clients (the owner member comes with the server)")
    if hosted.state is not ClientState.SAVED:
        raise ServerConfError(f"{client_id} is {hosted.state.value}; only a saved client can be registered")


async def register_client(reactor: Any, server_dir: ServerDirectory, client_id: ClientId) -> Mapping[str, Any]:
    """Send clientReg for a hosted subsystem (pr-mserv §2.1); the client then waits for approval."""
    with server_dir.open_store() as store:
        identity = store.identity()
    token = server_dir.soft_token()
    conf = await current_conf(reactor, server_dir)
    _, sign_cert = token.signing_key(client_id.member)
    ocsp = await own_ocsp(reactor, server_dir, conf, sign_cert)
    content_type, body = registration.client_reg(token, identity.server_id, client_id, ocsp)
    answer: Mapping[str, Any] = await registration.submit(reactor, conf.management_service, content_type, body)
    with server_dir.open_store() as store:
        store.set_client_state(client_id, ClientState.REGISTRATION_IN_PROGRESS)
    return answer


UNREGISTRABLE_STATES = frozenset({ClientState.REGISTERED, ClientState.REGISTRATION_IN_PROGRESS, ClientState.DISABLED})
"""X-Road sends clientDeletion for a client registered (disabled too, X-Road 7) or whose registration was sent
(UG-SS §4.4)."""


def check_unregistrable(server_dir: ServerDirectory, client_id: ClientId) -> None:
    """Refuse before any network work: an unknown client (404), the owner member or a member, or a client
    neither registered nor in registration."""
    hosted = server_dir.snapshot().client(client_id)
    if hosted is None:
        raise ClientNotFound(f"{client_id} is not a client of this security server")
    if client_id.subsystem_code is None:
        raise ServerConfError("only subsystems are unregistered (the owner member goes with the server)")
    if hosted.state not in UNREGISTRABLE_STATES:
        raise ServerConfError(f"{client_id} is {hosted.state.value}; only a registered client can be unregistered")


def client_deletion(token: Token, server: SecurityServerId, client: ClientId, client_ocsp_der: bytes) -> tuple[str, bytes]:
    """A clientDeletion for ``client`` on ``server`` (pr-mserv §2.4), signed by the server's auth key and the
    client member's signing key, as clientReg is."""
    auth_key, auth_cert = token.auth_key()
    sign_key, sign_cert = token.signing_key(client.member)
    request = ManagementRequest(RequestType.CLIENT_DELETION, registration.new_request_id(), server, client=client)
    return signed_request(
        request,
        [
            (SignatureRole.AUTH, auth_key, auth_cert.public_bytes(serialization.Encoding.DER), None),
            (SignatureRole.OWNER, sign_key, sign_cert.public_bytes(serialization.Encoding.DER), client_ocsp_der),
        ],
    )


async def unregister_client(reactor: Any, server_dir: ServerDirectory, client_id: ClientId) -> Mapping[str, Any]:
    """Send clientDeletion for a hosted subsystem; the client is then DELETION_IN_PROGRESS and may be deleted."""
    check_unregistrable(server_dir, client_id)
    with server_dir.open_store() as store:
        identity = store.identity()
    token = server_dir.soft_token()
    conf = await current_conf(reactor, server_dir)
    _, sign_cert = token.signing_key(client_id.member)
    ocsp = await own_ocsp(reactor, server_dir, conf, sign_cert)
    content_type, body = client_deletion(token, identity.server_id, client_id, ocsp)
    answer: Mapping[str, Any] = await registration.submit(reactor, conf.management_service, content_type, body)
    with server_dir.open_store() as store:
        store.set_client_state(client_id, ClientState.DELETION_IN_PROGRESS)
    return answer


# --- changing the address other servers reach this one at (X-Road's addressChange) ----------------------------------

ADDRESS_CHANGE_FILE = "address-change.json"
"""The address change sent and not yet in the global configuration: ``{"address": "..."}`` in the server
directory (X-Road keeps it in its admin service's memory; a file survives a restart, as the request does)."""


class AddressChangeRefused(ActionNotPossible):
    """An address change that is not sent (X-Road: 409 in its implementation, 400 by its OpenAPI file, which fedbus
    follows)."""

    http_status = 400


class AddressChangeWaiting(AddressChangeRefused):
    """An address change waits for the registry already."""

    api_code = "address_change_request_already_submitted"


class SameAddress(AddressChangeRefused):
    """The address asked for is the server's address already."""

    api_code = "same_address_change_request"


def requested_address(server_dir: ServerDirectory, current: str | None) -> str | None:
    """The address change waiting for the registry; forgotten once ``current`` (the global configuration's address
    of this server, None when unknown) is that address, as X-Road's configuration checker does."""
    raw = state_file.read(server_dir, ADDRESS_CHANGE_FILE, wrong_shape="holds no address")
    if raw is None:
        return None
    address = raw.get("address")
    if not isinstance(address, str):
        raise ConfigurationError(f"{server_dir.path / ADDRESS_CHANGE_FILE} holds no address")
    if current is not None and address == current:
        (server_dir.path / ADDRESS_CHANGE_FILE).unlink(missing_ok=True)
        return None
    return address


def check_address_change(server_dir: ServerDirectory, address: str, current: str | None) -> None:
    """Refuse before any network work: a malformed address, one the configuration has already, or a change while
    another waits."""
    if parse_server_address(address) is None:
        raise ServerConfError(f"{address!r} is not a host name or address (with or without a port)")
    if requested_address(server_dir, current) is not None:
        raise AddressChangeWaiting("an address change is waiting for the registry already")
    if address == current:
        raise SameAddress(f"{address} is the server's address already")


def address_change(token: Token, server: SecurityServerId, address: str, owner_ocsp_der: bytes) -> tuple[str, bytes]:
    """An addressChange for ``server``, signed by its registered auth key and its owner's signing key."""
    auth_key, auth_cert = token.auth_key()
    sign_key, sign_cert = token.signing_key(server.owner)
    request = ManagementRequest(RequestType.ADDRESS_CHANGE, registration.new_request_id(), server, address=address)
    return signed_request(
        request,
        [
            (SignatureRole.AUTH, auth_key, auth_cert.public_bytes(serialization.Encoding.DER), None),
            (SignatureRole.OWNER, sign_key, sign_cert.public_bytes(serialization.Encoding.DER), owner_ocsp_der),
        ],
    )


async def change_address(reactor: Any, server_dir: ServerDirectory, address: str) -> Mapping[str, Any]:
    """Send addressChange to the registry (checked first against the configuration in force); the address is
    then the requested change until a configuration publishes it."""
    with server_dir.open_store() as store:
        identity = store.identity()
    conf = await current_conf(reactor, server_dir)
    check_address_change(server_dir, address, conf.server_address(identity.server_id))
    token = server_dir.soft_token()
    _, sign_cert = token.signing_key(identity.server_id.owner)
    ocsp = await own_ocsp(reactor, server_dir, conf, sign_cert)
    content_type, body = address_change(token, identity.server_id, address, ocsp)
    answer: Mapping[str, Any] = await registration.submit(reactor, conf.management_service, content_type, body)
    record_address_change(server_dir, address)
    return answer


def record_address_change(server_dir: ServerDirectory, address: str) -> None:
    """Remember the address change sent (until the configuration publishes it)."""
    state_file.write(server_dir, ADDRESS_CHANGE_FILE, {"address": address}, indent=None)
