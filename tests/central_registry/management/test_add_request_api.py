"""The centre's management requests (X-Road's addManagementRequest): a registration waits for its security
server's request and pairs with it (approved at once when the server's comes second, by an officer when the
centre's does); a deletion takes effect at once; duplicates, unknown types and wrong roles are refused."""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from central_registry.management.roles import Role
from central_registry.requests import RegistrationDesk, RequestStatus
from central_registry.store import ApprovedCa, RegistryStore, auth_cert_hash
from security_server.core.identifiers import ClientId, SecurityServerId
from tests.central_registry.management.harness import START, RegistryApi

OWNER = ClientId("EE", "GOV", "70000310")
SERVER = SecurityServerId(OWNER, "ss1")
NEW_SERVER = SecurityServerId(OWNER, "ss2")
SUBSYSTEM = OWNER.subsystem("reg")
REQUESTS = "/api/v1/management-requests"


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _pki() -> tuple[bytes, bytes, bytes]:
    """A CA certificate, an authentication certificate it issued, and a self-signed one (all DER)."""
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(_name("CA")).issuer_name(_name("CA")).public_key(ca_key.public_key())
          .serial_number(1).not_valid_before(START - timedelta(days=1)).not_valid_after(START + timedelta(days=30))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    usage = x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                          data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
                          encipher_only=False, decipher_only=False)
    auth = (x509.CertificateBuilder().subject_name(_name("ss2")).issuer_name(_name("CA")).public_key(key.public_key())
            .serial_number(2).not_valid_before(START - timedelta(days=1)).not_valid_after(START + timedelta(days=30))
            .add_extension(usage, critical=True).sign(ca_key, hashes.SHA256()))
    rogue = (x509.CertificateBuilder().subject_name(_name("ss2")).issuer_name(_name("ss2")).public_key(key.public_key())
             .serial_number(3).not_valid_before(START - timedelta(days=1)).not_valid_after(START + timedelta(days=30))
             .add_extension(usage, critical=True).sign(key, hashes.SHA256()))
    return tuple(c.public_bytes(serialization.Encoding.DER) for c in (ca, auth, rogue))  # type: ignore[return-value]


@pytest.fixture
def federation(registry: RegistryApi) -> tuple[RegistryApi, bytes, bytes]:
    """A registry with member GOV/70000310 (subsystem reg), its server ss1 hosting both, and an approved CA; the
    CA's authentication certificate for a new server ss2 and a self-signed one."""
    ca, auth, rogue = _pki()
    store = RegistryStore(registry.paths.database)
    try:
        store.db.execute("INSERT INTO member_classes (code, description) VALUES ('GOV', 'Government')")
        store.add_member(OWNER, "Riik")
        store.add_subsystem(SUBSYSTEM)
        store.register_auth_cert(SERVER, "ss1.example.org", b"ss1 certificate")
        store.add_server_client(SERVER, SUBSYSTEM)
        store.add_ca(ApprovedCa("CA", ca, None, None, False, "fedbus"))
    finally:
        store.close()
    return registry, auth, rogue


def _server_submits(api: RegistryApi, request_id: str, kind: str, server: SecurityServerId,
                    client: ClientId | None = None, cert: bytes | None = None) -> None:
    """A server's request as the registration desk stores an accepted one, then its pairing step (submit's)."""
    payload = {"type": kind, "server": str(server), "address": "ss2.example.org" if cert else None,
               "auth_cert": base64.b64encode(cert).decode() if cert else None, "client": str(client) if client else None}
    store = RegistryStore(api.paths.database)
    try:
        with store.transaction("request_submitted", {"id": request_id}):
            store.db.execute(
                "INSERT INTO requests (id, type, payload, status, submitted_at, server_id, client_id)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                [request_id, kind, json.dumps(payload), str(RequestStatus.PENDING),
                 (START + timedelta(seconds=5)).isoformat(), str(server), payload["client"]])
    finally:
        store.close()


def _auth_body(cert: bytes, server: str = "EE:GOV:70000310:ss2") -> dict[str, Any]:
    return {"type": "AUTH_CERT_REGISTRATION_REQUEST", "origin": "CENTER", "security_server_id": server,
            "server_address": "ss2.example.org", "authentication_certificate": base64.b64encode(cert).decode()}


def test_the_centres_auth_cert_registration_pairs_with_the_servers(
        federation: tuple[RegistryApi, bytes, bytes], officer: str) -> None:
    """The centre's request waits (WAITING, origin CENTER); the server's own request pairs with it (both
    SUBMITTED FOR APPROVAL); approving the server's registers the certificate and decides both."""
    api, auth, _ = federation
    filed = api.request("POST", REQUESTS, key=officer, json_body=_auth_body(auth))
    assert filed.status == 201, filed.body
    assert (filed.json()["origin"], filed.json()["status"], filed.json()["type"]) == (
        "CENTER", "WAITING", "AUTH_CERT_REGISTRATION_REQUEST")
    _server_submits(api, "ss2-req", "authCertReg", NEW_SERVER, cert=auth)
    store = RegistryStore(api.paths.database)
    try:
        listed = api.request("GET", REQUESTS, key=officer).json()["items"]
        assert {r["status"] for r in listed} == {"SUBMITTED FOR APPROVAL"}
        RegistrationDesk(store).approve("ss2-req", START)
        server = store.security_server(NEW_SERVER)
        assert server is not None and auth_cert_hash(auth) in server.auth_cert_hashes
    finally:
        store.close()
    statuses = {r["origin"]: r["status"] for r in api.request("GET", REQUESTS, key=officer).json()["items"]}
    assert statuses == {"CENTER": "APPROVED", "SECURITY_SERVER": "APPROVED"}


def test_a_server_request_pairs_with_the_centres_and_the_officer_approves_the_pair(
        federation: tuple[RegistryApi, bytes, bytes], officer: str) -> None:
    """The server asks first; the centre's request then pairs with it (SUBMITTED FOR APPROVAL, not approved by
    itself); approving the centre's applies the registration once and decides both."""
    api, _, _ = federation
    _server_submits(api, "ss1-client", "clientReg", SERVER, client=OWNER.subsystem("new"))
    body = {"type": "CLIENT_REGISTRATION_REQUEST", "origin": "CENTER", "security_server_id": "EE:GOV:70000310:ss1",
            "client_id": "EE:GOV:70000310:new"}
    filed = api.request("POST", REQUESTS, key=officer, json_body=body)
    assert filed.status == 201, filed.body
    assert filed.json()["status"] == "SUBMITTED FOR APPROVAL" and filed.json()["client_id"] == "EE:GOV:70000310:new"
    again = api.request("POST", REQUESTS, key=officer, json_body=body, check=False)
    assert again.status == 409 and again.json()["error"]["code"] == "management_request_exists"
    approved = api.request("POST", f"{REQUESTS}/{filed.json()['id']}/approval", key=officer)
    assert approved.status == 200 and approved.json()["status"] == "APPROVED"
    statuses = [r["status"] for r in api.request("GET", REQUESTS, key=officer).json()["items"]]
    assert statuses == ["APPROVED", "APPROVED"]
    clients = api.request("GET", "/api/v1/security-servers/EE:GOV:70000310:ss1/clients", key=officer).json()
    assert "EE:GOV:70000310:new" in [c["client_id"]["encoded_id"] for c in clients]


def test_the_centres_client_deletion_takes_effect_at_once(
        federation: tuple[RegistryApi, bytes, bytes], officer: str) -> None:
    """A client deletion from the centre removes the client now and is recorded APPROVED; a second one is 404."""
    api, _, _ = federation
    body = {"type": "CLIENT_DELETION_REQUEST", "origin": "CENTER", "security_server_id": "EE:GOV:70000310:ss1",
            "client_id": "EE:GOV:70000310:reg"}
    # check=False: X-Road's ClientDeletionRequest requires ``clientId``, a field its file never defines.
    filed = api.request("POST", REQUESTS, key=officer, json_body=body, check=False)
    assert filed.status == 201 and filed.json()["status"] == "APPROVED"
    assert filed.json()["client_id"] == "EE:GOV:70000310:reg" and filed.json()["origin"] == "CENTER"
    clients = api.request("GET", "/api/v1/security-servers/EE:GOV:70000310:ss1/clients", key=officer).json()
    assert "EE:GOV:70000310:reg" not in [c["client_id"]["encoded_id"] for c in clients]
    gone = api.request("POST", REQUESTS, key=officer, json_body=body, check=False)
    assert gone.status == 404 and gone.json()["error"]["code"] == "management_request_server_client_not_found"


def test_hostile_requests_are_refused(federation: tuple[RegistryApi, bytes, bytes], officer: str) -> None:
    """Unknown and unsupported types, a server's origin, a certificate of no approved CA, an owner as its own
    client, an unknown server's owner and a registered certificate are refused with X-Road's codes; an observer
    files nothing."""
    api, auth, rogue = federation

    def refused(body: dict[str, Any], key: str = officer) -> tuple[int, str]:
        answer = api.request("POST", REQUESTS, key=key, json_body=body, check=False)
        return answer.status, answer.json()["error"]["code"] if answer.body else ""

    assert refused({"type": "TELEPORT_REQUEST", "security_server_id": "EE:GOV:70000310:ss1"}) == (
        400, "management_request_unknown_type")
    assert refused({"type": "OWNER_CHANGE_REQUEST", "origin": "CENTER", "security_server_id": "EE:GOV:70000310:ss1",
                    "client_id": "EE:GOV:70000310"}) == (400, "management_request_not_supported")
    assert refused({"type": "ADDRESS_CHANGE_REQUEST", "origin": "CENTER", "security_server_id": "EE:GOV:70000310:ss1",
                    "server_address": "ss1.example.net"}) == (400, "management_request_not_supported")
    assert refused({**_auth_body(auth), "origin": "SECURITY_SERVER"}) == (400, "management_request_not_supported")
    assert refused(_auth_body(rogue)) == (400, "management_request_invalid_auth_certificate")
    assert refused({"type": "CLIENT_REGISTRATION_REQUEST", "origin": "CENTER",
                    "security_server_id": "EE:GOV:70000310:ss1", "client_id": "EE:GOV:70000310"}) == (
        400, "management_request_cannot_register_owner")
    assert refused(_auth_body(auth, "EE:GOV:99999:ss9")) == (404, "management_request_server_owner_not_found")
    assert refused(_auth_body(auth), api.api_key(Role.OBSERVER))[0] == 403
    assert api.request("POST", REQUESTS, key=officer, json_body=_auth_body(auth)).status == 201
    assert refused(_auth_body(auth)) == (409, "management_request_exists")
