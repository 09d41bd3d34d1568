"""``/tokens`` and ``/keys/{id}``: the soft token's keys and certificates in X-Road's shapes."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from cryptography.hazmat.primitives.serialization import Encoding

from central_registry.trust.ca import CertKind, DevelopmentCA
from security_server.admin import keys
from security_server.management.roles import Role
from security_server.signer.softtoken import KeyAlgorithm, KeyKind
from security_server.signer.token_set import TokenSet
from tests.security_server.management.harness import START, Api
from tests.security_server.management.xroad_openapi import error_object


def test_an_initialised_server_has_an_empty_logged_in_soft_token(initialised: Api) -> None:
    """GET /tokens lists the soft token, SOFTWARE, logged in, without keys."""
    answer = initialised.request("GET", "/api/v1/tokens", key=initialised.api_key(Role.SECURITY_OFFICER))
    assert answer.status == 200
    [token] = answer.json()
    assert (token["type"], token["logged_in"], token["available"], token["keys"]) == ("SOFTWARE", True, True, [])


def test_keys_and_their_certificates_are_shown(initialised: Api, tmp_path: Path) -> None:
    """An auth key with a CA's certificate and a sign key without one show as X-Road's Key and TokenCertificate."""
    server_dir = initialised.server_dir
    auth = keys.generate_key(server_dir, KeyKind.AUTH)
    sign = keys.generate_key(server_dir, KeyKind.SIGN, algorithm=KeyAlgorithm.EC_P256)
    ca = DevelopmentCA.init(tmp_path / "ca", "Test CA", START - timedelta(days=1), key_size=2048)
    soft = TokenSet([server_dir.soft_token()])
    request = keys.request_certificate(soft, auth.info.key_id, "Test Org")
    cert = ca.issue(request.pem, CertKind.AUTH, START - timedelta(hours=1))
    keys.import_certificate(soft, cert.public_bytes(Encoding.PEM), now=START)

    key = initialised.api_key(Role.SECURITYSERVER_OBSERVER)
    [token] = initialised.request("GET", "/api/v1/tokens", key=key).json()
    by_id = {k["id"]: k for k in token["keys"]}
    shown_auth, shown_sign = by_id[auth.info.key_id], by_id[sign.info.key_id]
    assert (shown_auth["usage"], shown_auth["key_algorithm"]) == ("AUTHENTICATION", "RSA")
    assert (shown_sign["usage"], shown_sign["key_algorithm"], shown_sign["certificates"]) == ("SIGNING", "EC", [])
    [certificate] = shown_auth["certificates"]
    assert certificate["owner_id"] == "EE:GOV:70000310" and certificate["status"] == "SAVED"  # imported, not sent
    assert certificate["certificate_details"]["issuer_common_name"] == "Test CA"
    one = initialised.request("GET", f"/api/v1/keys/{auth.info.key_id}", key=key)
    assert one.status == 200 and one.json() == shown_auth
    assert initialised.request("GET", "/api/v1/tokens/soft", key=key).json() == token
    digest = certificate["certificate_details"]["hash"]
    by_hash = initialised.request("GET", f"/api/v1/token-certificates/{digest.lower()}", key=key)
    assert by_hash.status == 200 and by_hash.json() == certificate
    assert initialised.request("GET", f"/api/v1/token-certificates/{'0' * 64}", key=key).status == 404


def test_a_members_signing_certificates_are_listed(initialised: Api, tmp_path: Path) -> None:
    """GET /clients/{id}/sign-certificates lists the owner member's signing certificate, not the auth one."""
    server_dir = initialised.server_dir
    sign = keys.generate_key(server_dir, KeyKind.SIGN)
    soft = TokenSet([server_dir.soft_token()])
    ca = DevelopmentCA.init(tmp_path / "ca", "Test CA", START - timedelta(days=1), key_size=2048)
    request = keys.request_certificate(soft, sign.info.key_id, "Test Org")
    keys.import_certificate(soft, ca.issue(request.pem, CertKind.SIGN, START - timedelta(hours=1)).public_bytes(Encoding.PEM), now=START)
    key = initialised.api_key(Role.REGISTRATION_OFFICER)
    answer = initialised.request("GET", "/api/v1/clients/EE:GOV:70000310/sign-certificates", key=key)
    assert answer.status == 200 and [c["owner_id"] for c in answer.json()] == ["EE:GOV:70000310"]
    assert initialised.request("GET", "/api/v1/clients/EE:GOV:1/sign-certificates", key=key).status == 404


def test_unknown_tokens_and_keys_are_not_found(initialised: Api) -> None:
    """A token name or key id that does not exist is 404 with X-Road's codes."""
    key = initialised.api_key(Role.SECURITYSERVER_OBSERVER)
    token = initialised.request("GET", "/api/v1/tokens/nothing", key=key)
    assert token.status == 404 and error_object(token.body)["error"]["code"] == "token_not_found"
    found = initialised.request("GET", "/api/v1/keys/abc", key=key)
    assert found.status == 404 and error_object(found.body)["error"]["code"] == "key_not_found"
