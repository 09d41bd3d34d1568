"""The registration workflow: real signed requests are queued, approved or rejected; forgeries are refused and audited."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from central_registry.management.operations.management_requests import TYPE
from central_registry.requests import RegistrationDesk, RequestStatus
from central_registry.store import ApprovedCa, RegistryError, RegistryStore, auth_cert_hash
from security_server.core.errors import (
    BadRequest,
    BusError,
    CertValidation,
    IncorrectValidationInfo,
    InvalidCertPath,
    SslAuthenticationFailed,
)
from security_server.core.identifiers import ClientId, SecurityServerId
from security_server.core.mgmtrequest import (
    ManagementRequest,
    RequestType,
    SignatureRole,
    build_soap,
    parse_soap,
    signed_request,
)
from tests.federation.ca import KeyAndCert, issue_auth, issue_signing, make_ca, ocsp_for

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=timezone.utc)
OWNER = ClientId("EE", "GOV", "70000310")
OTHER = ClientId("EE", "GOV", "70000311")
SERVER = SecurityServerId(OWNER, "ss1")


class Federation:
    """A registry with an approved development CA, a member with keys, and a desk."""

    def __init__(self, tmp: Path) -> None:
        self.ca = make_ca(tmp / "ca", NOW)
        self.store = RegistryStore(tmp / "registry.db")
        self.store.initialise("EE")
        self.store.add_ca(ApprovedCa("dev", _der(self.ca.certificate), "http://127.0.0.1/ocsp", _der(self.ca.state().responder_cert), False, "fedbus"))
        self.store.add_member(OWNER, "Owner")
        self.store.add_member(OTHER, "Other")
        self.desk = RegistrationDesk(self.store)
        self.auth = issue_auth(self.ca, SERVER, NOW)
        self.owner = issue_signing(self.ca, OWNER, NOW)
        self.other = issue_signing(self.ca, OTHER, NOW)

    def submit(
        self, request: ManagementRequest, auth: KeyAndCert | None = None, owner: KeyAndCert | None = None,
        now: datetime = NOW, ocsp: bytes | None = None,
    ) -> object:
        auth = auth or self.auth
        owner = owner or self.owner
        content_type, body = signed_request(
            request,
            [
                (SignatureRole.AUTH, auth.key, auth.cert_der, None),
                (SignatureRole.OWNER, owner.key, owner.cert_der, ocsp if ocsp is not None else ocsp_for(self.ca, owner.cert, now)),
            ],
        )
        return self.desk.submit(content_type, body, now)

    def auth_cert_reg(self, request_id: str = "r1", auth: KeyAndCert | None = None) -> ManagementRequest:
        return ManagementRequest(
            RequestType.AUTH_CERT_REG, request_id, SERVER, address="127.0.0.1:5500", auth_cert_der=(auth or self.auth).cert_der
        )


def _der(cert: x509.Certificate | None) -> bytes:
    assert cert is not None
    return cert.public_bytes(serialization.Encoding.DER)


@pytest.fixture
def fed(tmp_path: Path) -> Federation:
    """A fresh federation per test."""
    return Federation(tmp_path)


def test_auth_cert_reg_is_pending_until_approved(fed: Federation) -> None:
    """A valid authCertReg waits as pending; approval registers the server with its certificate hash."""
    record = fed.submit(fed.auth_cert_reg())
    assert fed.desk.get("r1").status is RequestStatus.PENDING
    assert fed.store.security_server(SERVER) is None
    fed.desk.approve("r1", NOW)
    server = fed.store.security_server(SERVER)
    assert server is not None
    assert server.auth_cert_hashes == (auth_cert_hash(fed.auth.cert_der),)
    assert server.address == "127.0.0.1:5500"
    assert record is not None


def test_approving_twice_is_refused(fed: Federation) -> None:
    """A request cannot be approved twice, nor rejected after approval."""
    fed.submit(fed.auth_cert_reg())
    fed.desk.approve("r1", NOW)
    with pytest.raises(RegistryError, match="already approved"):
        fed.desk.approve("r1", NOW)
    with pytest.raises(RegistryError):
        fed.desk.reject("r1", NOW)


def test_rejection_changes_nothing(fed: Federation) -> None:
    """A rejected request leaves the registry as it was."""
    fed.submit(fed.auth_cert_reg())
    fed.desk.reject("r1", NOW)
    assert fed.store.security_server(SERVER) is None
    assert fed.desk.get("r1").status is RequestStatus.REJECTED


def test_auto_approve_applies_at_once(fed: Federation) -> None:
    """With auto_approve on, a valid request is applied on submission."""
    fed.store.set_setting("auto_approve", "true")
    fed.submit(fed.auth_cert_reg())
    assert fed.desk.get("r1").status is RequestStatus.APPROVED
    assert fed.store.security_server(SERVER) is not None


def test_client_reg_needs_a_registered_server_key(fed: Federation) -> None:
    """clientReg from an unregistered server is refused; once registered it adds the subsystem as a client."""
    client_reg = ManagementRequest(RequestType.CLIENT_REG, "c1", SERVER, client=OWNER.subsystem("registry"))
    with pytest.raises(SslAuthenticationFailed):
        fed.submit(client_reg)
    fed.submit(fed.auth_cert_reg())
    fed.desk.approve("r1", NOW)
    fed.submit(client_reg)
    fed.desk.approve("c1", NOW)
    server = fed.store.security_server(SERVER)
    assert server is not None and OWNER.subsystem("registry") in server.clients


def test_replayed_request_is_refused_and_recorded(fed: Federation) -> None:
    """The same signed request submitted twice is refused the second time, and the refusal is audited."""
    request = fed.auth_cert_reg()
    content_type, body = signed_request(
        request,
        [
            (SignatureRole.AUTH, fed.auth.key, fed.auth.cert_der, None),
            (SignatureRole.OWNER, fed.owner.key, fed.owner.cert_der, ocsp_for(fed.ca, fed.owner.cert, NOW)),
        ],
    )
    fed.desk.submit(content_type, body, NOW)
    with pytest.raises(RegistryError, match="already been submitted"):
        fed.desk.submit(content_type, body, NOW)
    assert any(e["event"] == "request_refused" and "replay" in e["detail"] for e in fed.store.audit_events())


def test_owner_signature_by_another_member_is_refused(fed: Federation) -> None:
    """authCertReg signed by a member that does not own the server is refused and audited."""
    with pytest.raises(CertValidation):
        fed.submit(fed.auth_cert_reg(), owner=fed.other)
    assert fed.desk.list() == []
    assert fed.store.audit_events()[-1]["event"] == "request_refused"


def test_certificate_from_an_unapproved_ca_is_refused(fed: Federation, tmp_path: Path) -> None:
    """An auth certificate from a CA the registry has not approved is refused."""
    rogue = make_ca(tmp_path / "rogue", NOW)
    forged_auth = issue_auth(rogue, SERVER, NOW)
    with pytest.raises(InvalidCertPath):
        fed.submit(fed.auth_cert_reg(auth=forged_auth), auth=forged_auth)


def test_revoked_owner_certificate_is_refused(fed: Federation) -> None:
    """An owner whose signing certificate is revoked cannot register anything."""
    fed.ca.revoke(fed.owner.cert.serial_number, x509.ReasonFlags.key_compromise, NOW - timedelta(minutes=5))
    with pytest.raises(CertValidation, match="revoked"):
        fed.submit(fed.auth_cert_reg())


def test_stale_ocsp_is_refused(fed: Federation) -> None:
    """An owner OCSP response older than the freshness limit is refused."""
    stale = ocsp_for(fed.ca, fed.owner.cert, NOW - timedelta(hours=2))
    with pytest.raises(IncorrectValidationInfo):
        fed.submit(fed.auth_cert_reg(), ocsp=stale)


def test_unknown_owner_is_refused(fed: Federation) -> None:
    """A server owned by a member the registry does not know is refused at submission."""
    stranger = ClientId("EE", "GOV", "404")
    ca = fed.ca
    server = SecurityServerId(stranger, "ss1")
    auth = issue_auth(ca, server, NOW)
    owner = issue_signing(ca, stranger, NOW)
    request = ManagementRequest(RequestType.AUTH_CERT_REG, "u1", server, address="h", auth_cert_der=auth.cert_der)
    with pytest.raises(RegistryError, match="unknown server owner"):
        fed.submit(request, auth=auth, owner=owner)


def test_garbage_is_refused_and_recorded(fed: Federation) -> None:
    """A body that is not a management request is refused with a BusError and audited."""
    with pytest.raises(BusError):
        fed.desk.submit("multipart/related; boundary=x", b"--x\r\nnonsense", NOW)
    assert fed.store.audit_events()[-1]["event"] == "request_refused"


# --- addressChange (X-Road's request of a security server for a new address) ------------------------------------


@pytest.fixture
def registered(tmp_path: Path) -> Federation:
    """A federation whose server is registered at 127.0.0.1:5500."""
    fed = Federation(tmp_path)
    fed.submit(fed.auth_cert_reg())
    fed.desk.approve("r1", NOW)
    return fed


def _change(request_id: str, address: str) -> ManagementRequest:
    return ManagementRequest(RequestType.ADDRESS_CHANGE, request_id, SERVER, address=address)


def test_an_address_change_round_trips_and_needs_its_address() -> None:
    """The SOAP part names addressChange and carries the address; without one, or with a certificate, it is not
    a request."""
    wanted = _change("a1", "ss1.example.org:5500")
    assert parse_soap(build_soap(wanted)) == wanted
    with pytest.raises(BadRequest):
        ManagementRequest(RequestType.ADDRESS_CHANGE, "a2", SERVER)
    with pytest.raises(BadRequest):
        ManagementRequest(RequestType.ADDRESS_CHANGE, "a3", SERVER, address="x", auth_cert_der=b"\x30")


def test_an_approved_address_change_moves_the_server(registered: Federation) -> None:
    """Waiting until approved; then the server's address is the new one; the API lists it as
    ADDRESS_CHANGE_REQUEST."""
    registered.submit(_change("a1", "ss1.example.org:5501"))
    assert registered.desk.get("a1").status is RequestStatus.PENDING
    server = registered.store.security_server(SERVER)
    assert server is not None and server.address == "127.0.0.1:5500"
    registered.desk.approve("a1", NOW)
    server = registered.store.security_server(SERVER)
    assert server is not None and server.address == "ss1.example.org:5501"
    assert TYPE[RequestType.ADDRESS_CHANGE] == "ADDRESS_CHANGE_REQUEST"


def test_address_changes_that_are_refused(registered: Federation, tmp_path: Path) -> None:
    """An address that is not a host (with a path, with spaces) is refused at submission; so is a change for a
    server that is not registered (its key is not a registered one); nothing changes."""
    for request_id, address in (("b1", "ss1.example.org/admin"), ("b2", "ss1 example")):
        with pytest.raises(RegistryError):
            registered.submit(_change(request_id, address))
    server = registered.store.security_server(SERVER)
    assert server is not None and server.address == "127.0.0.1:5500"
    fresh = Federation(tmp_path / "fresh")
    with pytest.raises(SslAuthenticationFailed):
        fresh.submit(_change("c1", "ss1.example.org"))
