"""Keys with certificate requests, their download, and certificate import through the API."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from central_registry.trust.ca import CertKind, DevelopmentCA
from security_server.management.roles import Role
from tests.security_server.management.harness import START, Api
from tests.security_server.management.xroad_openapi import error_object


def _request(usage: str, organisation: str = "Test Org", **extra: object) -> dict[str, object]:
    return {"key_label": "my key", "csr_generate_request": {
        "key_usage_type": usage, "ca_name": "Test CA", "csr_format": "PEM",
        "subject_field_values": {"O": organisation}, **extra}}


def test_sign_key_request_certificate_and_import(initialised: Api, tmp_path: Path) -> None:
    """A registration officer makes a sign key with a request, downloads it, and imports the CA's certificate."""
    key = initialised.api_key(Role.REGISTRATION_OFFICER)
    made = initialised.request("POST", "/api/v1/tokens/soft/keys-with-csrs", key=key,
                               json_body=_request("SIGNING", member_id="EE:GOV:70000310"))
    assert made.status == 201
    key_id, csr_id = made.json()["key"]["id"], made.json()["csr_id"]
    assert made.json()["key"]["certificate_signing_requests"] == [
        {"id": csr_id, "owner_id": "EE:GOV:70000310", "possible_actions": []}]
    pem = initialised.request("GET", f"/api/v1/keys/{key_id}/csrs/{csr_id}", key=key, query={"csr_format": "PEM"})
    assert pem.status == 201 and pem.body.startswith(b"-----BEGIN CERTIFICATE REQUEST-----")
    der = initialised.request("GET", f"/api/v1/keys/{key_id}/csrs/{csr_id}", key=key, query={"csr_format": "DER"})
    assert x509.load_der_x509_csr(der.body).subject == x509.load_pem_x509_csr(pem.body).subject
    subject = x509.load_pem_x509_csr(pem.body).subject.rfc4514_string()
    assert "O=Test Org" in subject and "EE/GOV/70000310" in subject

    ca = DevelopmentCA.init(tmp_path / "ca", "Test CA", START - timedelta(days=1), key_size=2048)
    cert = ca.issue(pem.body, CertKind.SIGN, START - timedelta(hours=1))
    imported = initialised.request("POST", "/api/v1/token-certificates", key=key,
                                   body=cert.public_bytes(Encoding.DER), content_type="application/octet-stream")
    assert imported.status == 201 and imported.json()["owner_id"] == "EE:GOV:70000310"
    shown = initialised.request("GET", f"/api/v1/keys/{key_id}", key=key).json()
    assert len(shown["certificates"]) == 1 and shown["certificate_signing_requests"] == []


def test_an_auth_request_is_the_security_officers(initialised: Api) -> None:
    """A registration officer may not make an auth key (403); a security officer may."""
    officer = initialised.api_key(Role.REGISTRATION_OFFICER)
    refused = initialised.request("POST", "/api/v1/tokens/soft/keys-with-csrs", key=officer,
                                  json_body=_request("AUTHENTICATION"))
    assert refused.status == 403
    security = initialised.api_key(Role.SECURITY_OFFICER)
    made = initialised.request("POST", "/api/v1/tokens/soft/keys-with-csrs", key=security,
                               json_body=_request("AUTHENTICATION"))
    assert made.status == 201 and made.json()["key"]["usage"] == "AUTHENTICATION"


def test_bad_requests_make_no_key(initialised: Api) -> None:
    """A missing organisation, an unknown subject field or usage is 400 and the token gets no key."""
    key = initialised.api_key(Role.REGISTRATION_OFFICER)
    bodies = [
        {"csr_generate_request": {"key_usage_type": "SIGNING", "ca_name": "CA", "csr_format": "PEM",
                                  "subject_field_values": {}}},
        {"csr_generate_request": {"key_usage_type": "SIGNING", "ca_name": "CA", "csr_format": "PEM",
                                  "subject_field_values": {"O": "x", "L": "Tallinn"}}},
        {"csr_generate_request": {"key_usage_type": "BOTH", "ca_name": "CA", "csr_format": "PEM",
                                  "subject_field_values": {"O": "x"}}},
    ]
    for body in bodies:
        assert initialised.request("POST", "/api/v1/tokens/soft/keys-with-csrs", key=key, json_body=body).status == 400
    assert initialised.server_dir.soft_token().list() == ()


def test_unknown_tokens_requests_and_certificates(initialised: Api) -> None:
    """An unknown token is 404, an unknown request 404, a certificate for no key here 400 or 404."""
    key = initialised.api_key(Role.REGISTRATION_OFFICER)
    token = initialised.request("POST", "/api/v1/tokens/nothing/keys-with-csrs", key=key, json_body=_request("SIGNING"))
    assert token.status == 404 and error_object(token.body)["error"]["code"] == "token_not_found"
    missing = initialised.request("GET", f"/api/v1/keys/{'0' * 40}/csrs/{'0' * 16}", key=key)
    assert missing.status == 404 and error_object(missing.body)["error"]["code"] == "csr_not_found"
    junk = initialised.request("POST", "/api/v1/token-certificates", key=key, body=b"not a certificate",
                               content_type="application/octet-stream")
    assert junk.status in (400, 404)


def test_a_request_is_deleted(initialised: Api) -> None:
    """DELETE /keys/{id}/csrs/{csr_id} forgets the request."""
    key = initialised.api_key(Role.REGISTRATION_OFFICER)
    made = initialised.request("POST", "/api/v1/tokens/soft/keys-with-csrs", key=key, json_body=_request("SIGNING")).json()
    path = f"/api/v1/keys/{made['key']['id']}/csrs/{made['csr_id']}"
    assert initialised.request("DELETE", path, key=key).status == 204
    assert initialised.request("GET", path, key=key).status == 404
