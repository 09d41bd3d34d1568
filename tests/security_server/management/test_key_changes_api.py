"""``/token-certificates/{hash}`` activate, disable, delete, possible actions; ``/keys/{id}`` rename, delete, a new
CSR and possible actions: X-Road's rules and codes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Iterator

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from central_registry.trust.ca import CertKind, DevelopmentCA
from security_server.admin import auth_cert_states, csrs, keys
from security_server.core.auth_cert_status import CertStatus
from security_server.core.identifiers import ClientId
from security_server.management.roles import Role
from security_server.signer.softtoken import KeyKind, KeyNotAvailable
from security_server.signer.softtoken_pin import LOGINS
from security_server.signer.token_set import TokenSet
from tests.security_server.management.harness import START, Api
from tests.security_server.management.xroad_openapi import error_object

OWNER = ClientId("EE", "GOV", "70000310")


@dataclass
class Keys:
    """The initialised server's auth and sign keys (with certificates) and a sign key without one."""

    api: Api
    auth: str
    auth_hash: str
    sign: str
    sign_hash: str
    bare: str


def _code(answer: Any) -> str:
    return str(error_object(answer.body)["error"]["code"])


@pytest.fixture
def made(initialised: Api, tmp_path: Path) -> Iterator[Keys]:
    """Keys and certificates from a development CA on the initialised server's soft token (the auth one registered)."""
    server_dir = initialised.server_dir
    ca = DevelopmentCA.init(tmp_path / "ca", "Test CA", START - timedelta(days=1), key_size=2048)
    soft = TokenSet([server_dir.soft_token()])
    hashes = {}
    ids = {}
    for kind, cert_kind in ((KeyKind.AUTH, CertKind.AUTH), (KeyKind.SIGN, CertKind.SIGN)):
        key_id = keys.generate_key(server_dir, kind).info.key_id
        request = keys.request_certificate(soft, key_id, "Test Org")
        cert = ca.issue(request.pem, cert_kind, START - timedelta(hours=1))
        keys.import_certificate(soft, cert.public_bytes(Encoding.PEM), now=START)
        ids[kind], hashes[kind] = key_id, keys.certificate_hash(cert)
    bare = keys.generate_key(server_dir, KeyKind.SIGN).info.key_id
    auth_cert_states.record(server_dir, hashes[KeyKind.AUTH], CertStatus.REGISTERED)  # as after its registration
    yield Keys(initialised, ids[KeyKind.AUTH], hashes[KeyKind.AUTH], ids[KeyKind.SIGN], hashes[KeyKind.SIGN], bare)
    LOGINS.forget(server_dir.keys_path)


def test_disabling_the_sign_certificate_stops_its_use_and_activating_restores_it(made: Keys) -> None:
    """disable: 204, the certificate shows active false / DISABLED, no signing key; a second disable is 400
    action_not_possible; activate brings it back."""
    api, officer = made.api, made.api.api_key(Role.REGISTRATION_OFFICER)
    assert api.request("PUT", f"/api/v1/token-certificates/{made.sign_hash}/disable", key=officer).status == 204
    shown = api.request("GET", f"/api/v1/token-certificates/{made.sign_hash}", key=officer).json()
    assert (shown["active"], shown["ocsp_status"]) == (False, "DISABLED")
    actions = api.request("GET", f"/api/v1/token-certificates/{made.sign_hash}/possible-actions", key=officer)
    assert actions.status == 200 and "ACTIVATE" in actions.json() and "DISABLE" not in actions.json()
    with pytest.raises(KeyNotAvailable):
        api.server_dir.soft_token().signing_key(OWNER, now=START)
    again = api.request("PUT", f"/api/v1/token-certificates/{made.sign_hash}/disable", key=officer)
    assert again.status == 400 and _code(again) == "action_not_possible"
    assert api.request("PUT", f"/api/v1/token-certificates/{made.sign_hash}/activate", key=officer).status == 204
    api.server_dir.soft_token().signing_key(OWNER, now=START)


def test_the_registered_auth_certificate_is_not_deleted(made: Keys) -> None:
    """The (registered) auth certificate: DELETE is 400 action_not_possible and not among its possible actions; a
    registration officer may not disable it (403)."""
    api, officer = made.api, made.api.api_key(Role.SECURITY_OFFICER)
    actions = api.request("GET", f"/api/v1/token-certificates/{made.auth_hash}/possible-actions", key=officer).json()
    assert "DELETE" not in actions and "DISABLE" in actions
    refused = api.request("DELETE", f"/api/v1/token-certificates/{made.auth_hash}", key=officer)
    assert refused.status == 400 and _code(refused) == "action_not_possible"
    registration = api.api_key(Role.REGISTRATION_OFFICER)
    assert api.request("PUT", f"/api/v1/token-certificates/{made.auth_hash}/disable", key=registration).status == 403


def test_deleting_the_sign_certificate_in_use_leaves_the_key_without_one(made: Keys) -> None:
    """DELETE of the sign certificate: 204, then 404 certificate_not_found, the key stays, nothing signs."""
    api, officer = made.api, made.api.api_key(Role.REGISTRATION_OFFICER)
    assert api.request("DELETE", f"/api/v1/token-certificates/{made.sign_hash.lower()}", key=officer).status == 204
    gone = api.request("GET", f"/api/v1/token-certificates/{made.sign_hash}", key=officer)
    assert gone.status == 404 and _code(gone) == "certificate_not_found"
    key = api.request("GET", f"/api/v1/keys/{made.sign}", key=officer).json()
    assert key["certificates"] == []
    with pytest.raises(KeyNotAvailable):
        api.server_dir.soft_token().signing_key(OWNER, now=START)


def test_unknown_certificates_and_keys_are_404_and_the_observer_changes_nothing(made: Keys) -> None:
    """An unknown hash or key id is 404 for every operation; the observer reads possible actions, changes nothing."""
    api, officer = made.api, made.api.api_key(Role.SECURITY_OFFICER)
    unknown = "AB" * 32
    for method, path in (("PUT", f"token-certificates/{unknown}/activate"), ("PUT", f"token-certificates/{unknown}/disable"),
                         ("DELETE", f"token-certificates/{unknown}"),
                         ("GET", f"token-certificates/{unknown}/possible-actions")):
        answer = api.request(method, f"/api/v1/{path}", key=officer)
        assert answer.status == 404 and _code(answer) == "certificate_not_found", path
    missing = "0" * 40
    for method, path, body in (("DELETE", f"keys/{missing}", None), ("PATCH", f"keys/{missing}", {"name": "x"}),
                               ("GET", f"keys/{missing}/possible-actions", None)):
        answer = api.request(method, f"/api/v1/{path}", key=officer, json_body=body)
        assert answer.status == 404 and _code(answer) == "key_not_found", path
    observer = api.api_key(Role.SECURITYSERVER_OBSERVER)
    assert api.request("GET", f"/api/v1/keys/{made.sign}/possible-actions", key=observer).status == 200
    assert api.request("PUT", f"/api/v1/token-certificates/{made.sign_hash}/disable", key=observer).status == 403
    assert api.request("DELETE", f"/api/v1/keys/{made.sign}", key=observer).status == 403


def test_a_key_gets_a_friendly_name(made: Keys) -> None:
    """PATCH /keys/{id}: 200 with the new name, kept; a body without a name or with another field is 400."""
    api, admin = made.api, made.api.api_key(Role.SYSTEM_ADMINISTRATOR)
    renamed = api.request("PATCH", f"/api/v1/keys/{made.sign}", key=admin, json_body={"name": "signing 2026"})
    assert renamed.status == 200 and renamed.json()["name"] == "signing 2026"
    assert api.request("GET", f"/api/v1/keys/{made.sign}", key=admin).json()["name"] == "signing 2026"
    assert api.request("PATCH", f"/api/v1/keys/{made.sign}", key=admin, json_body={}).status == 400
    extra = api.request("PATCH", f"/api/v1/keys/{made.sign}", key=admin, json_body={"name": "a", "label": "b"})
    assert extra.status == 400 and _code(extra) == "unknown_field"


def test_deleting_an_auth_key_with_a_registered_certificate_warns(made: Keys) -> None:
    """DELETE of the auth key: X-Road's warning auth_key_with_registered_cert_warning; ignored, 400
    action_not_possible (fedbus cannot send authCertDeletion); the key is still there."""
    api, officer = made.api, made.api.api_key(Role.SECURITY_OFFICER)
    warned = api.request("DELETE", f"/api/v1/keys/{made.auth}", key=officer)
    body = error_object(warned.body)
    assert warned.status == 400 and body["error"]["code"] == "warnings_detected"
    assert body["warnings"] == [{"code": "auth_key_with_registered_cert_warning", "metadata": [made.auth]}]
    ignored = api.request("DELETE", f"/api/v1/keys/{made.auth}?ignore_warnings=true", key=officer)
    assert ignored.status == 400 and _code(ignored) == "action_not_possible"
    assert api.request("GET", f"/api/v1/keys/{made.auth}", key=officer).status == 200
    registration = api.api_key(Role.REGISTRATION_OFFICER)
    assert api.request("DELETE", f"/api/v1/keys/{made.auth}", key=registration).status == 403


def test_deleting_the_sign_key_in_use_removes_it_and_its_requests(made: Keys) -> None:
    """DELETE of the sign key in use: 204, its files and kept requests are gone, then 404; nothing signs."""
    api, officer = made.api, made.api.api_key(Role.REGISTRATION_OFFICER)
    csrs.keep_csr(api.server_dir, made.sign, b"-----BEGIN CERTIFICATE REQUEST-----\n")
    assert api.request("DELETE", f"/api/v1/keys/{made.sign}", key=officer).status == 204
    assert list(api.server_dir.keys_path.glob(f"{made.sign}*")) == []
    assert csrs.csr_ids(api.server_dir, made.sign) == ()
    assert api.request("GET", f"/api/v1/keys/{made.sign}", key=officer).status == 404
    assert api.request("DELETE", f"/api/v1/keys/{made.sign}", key=officer).status == 404
    with pytest.raises(KeyNotAvailable):
        api.server_dir.soft_token().signing_key(OWNER, now=START)


def _csr_body(usage: str, form: str = "PEM") -> dict[str, Any]:
    return {"key_usage_type": usage, "ca_name": "Test CA", "csr_format": form, "subject_field_values": {"O": "Org"}}


def test_a_new_csr_for_an_existing_key(made: Keys) -> None:
    """POST /keys/{id}/csrs: 201 with the PEM (or DER) request for that key, kept for download; the wrong usage
    is 400 wrong_key_usage; a key with a certificate, or a logged-out token, is 400 action_not_possible."""
    api, officer = made.api, made.api.api_key(Role.REGISTRATION_OFFICER)
    pem = api.request("POST", f"/api/v1/keys/{made.bare}/csrs", key=officer, json_body=_csr_body("SIGNING"))
    assert pem.status == 201
    request = x509.load_pem_x509_csr(pem.body)
    assert keys.find_key(api.server_dir, made.bare).info.key_id == made.bare
    assert request.is_signature_valid and len(csrs.csr_ids(api.server_dir, made.bare)) == 1
    der = api.request("POST", f"/api/v1/keys/{made.bare}/csrs", key=officer, json_body=_csr_body("SIGNING", "DER"))
    assert der.status == 201 and x509.load_der_x509_csr(der.body).subject == request.subject
    wrong = api.request("POST", f"/api/v1/keys/{made.bare}/csrs", key=api.api_key(Role.SECURITY_OFFICER),
                        json_body=_csr_body("AUTHENTICATION"))
    assert wrong.status == 400 and _code(wrong) == "wrong_key_usage"
    certified = api.request("POST", f"/api/v1/keys/{made.sign}/csrs", key=officer, json_body=_csr_body("SIGNING"))
    assert certified.status == 400 and _code(certified) == "action_not_possible"
    api.server_dir.soft_token().logout()
    out = api.request("POST", f"/api/v1/keys/{made.bare}/csrs", key=officer, json_body=_csr_body("SIGNING"))
    assert out.status == 400 and _code(out) == "action_not_possible"


def test_key_possible_actions_follow_the_token_state(made: Keys) -> None:
    """A sign key without certificate: DELETE, GENERATE_SIGN_CSR, EDIT_FRIENDLY_NAME; logged out, only the name."""
    api, key = made.api, made.api.api_key(Role.SECURITYSERVER_OBSERVER)
    actions = api.request("GET", f"/api/v1/keys/{made.bare}/possible-actions", key=key).json()
    assert actions == ["DELETE", "GENERATE_SIGN_CSR", "EDIT_FRIENDLY_NAME"]
    api.server_dir.soft_token().logout()
    assert api.request("GET", f"/api/v1/keys/{made.bare}/possible-actions", key=key).json() == ["EDIT_FRIENDLY_NAME"]
    officer = api.api_key(Role.REGISTRATION_OFFICER)
    refused = api.request("DELETE", f"/api/v1/keys/{made.bare}", key=officer)
    assert refused.status == 400 and _code(refused) == "action_not_possible"
