"""A security server's signed request that pairs with a waiting request the centre filed for the same registration
is approved on arrival (X-Road's auto-approval of a request its centre filed first); without one it waits."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from cryptography.hazmat.primitives import serialization

from central_registry.admin.management_requests import CentreRequest, file_request, requests
from central_registry.requests import RegistrationDesk, RequestStatus
from central_registry.store import ApprovedCa, RegistryStore, auth_cert_hash
from security_server.core.identifiers import ClientId, SecurityServerId
from security_server.core.mgmtrequest import ManagementRequest, RequestType, SignatureRole, signed_request
from tests.federation.ca import issue_auth, issue_signing, make_ca, ocsp_for

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=timezone.utc)
OWNER = ClientId("EE", "GOV", "70000310")
SERVER = SecurityServerId(OWNER, "ss1")


def test_the_servers_request_completes_the_centres_and_is_approved(tmp_path: Path) -> None:
    """The centre files an authCertReg; the server's signed request for the same certificate is approved at once
    with it (both APPROVED, the certificate registered); a second server request for another waits."""
    ca = make_ca(tmp_path / "ca", NOW)
    responder = ca.state().responder_cert
    assert ca.certificate is not None and responder is not None
    store = RegistryStore(tmp_path / "registry.db")
    try:
        store.initialise("EE")
        store.add_ca(ApprovedCa("dev", ca.certificate.public_bytes(serialization.Encoding.DER), "http://127.0.0.1/ocsp",
                                responder.public_bytes(serialization.Encoding.DER), False, "fedbus"))
        store.add_member(OWNER, "Owner")
        auth, owner = issue_auth(ca, SERVER, NOW), issue_signing(ca, OWNER, NOW)
        filed = file_request(store, CentreRequest(RequestType.AUTH_CERT_REG, SERVER, auth_cert_der=auth.cert_der,
                                                  address="127.0.0.1:5500"), NOW)
        assert (filed.origin, filed.record.status, filed.paired) == ("CENTER", RequestStatus.PENDING, False)
        request = ManagementRequest(RequestType.AUTH_CERT_REG, "r1", SERVER, address="127.0.0.1:5500",
                                    auth_cert_der=auth.cert_der)
        content_type, body = signed_request(request, [
            (SignatureRole.AUTH, auth.key, auth.cert_der, None),
            (SignatureRole.OWNER, owner.key, owner.cert_der, ocsp_for(ca, owner.cert, NOW)),
        ])
        record = RegistrationDesk(store).submit(content_type, body, NOW)
        assert record.status is RequestStatus.APPROVED
        assert [r.record.status for r in requests(store)] == [RequestStatus.APPROVED, RequestStatus.APPROVED]
        server = store.security_server(SERVER)
        assert server is not None and server.auth_cert_hashes == (auth_cert_hash(auth.cert_der),)
    finally:
        store.close()
