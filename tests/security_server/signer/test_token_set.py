"""The soft token and the PKCS#11 tokens as one: keys found wherever they are, a token that is out reported as such."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from central_registry.trust.ca import CertKind, DevelopmentCA
from security_server.core.certprofile import signing_subject
from security_server.core.config import IniLayer, LayeredConfig
from security_server.core.identifiers import ClientId
from security_server.signer.pkcs11_key import Pkcs11RsaKey
from security_server.signer.pkcs11_token import Pkcs11Token
from security_server.signer.token import KeyAlgorithm, KeyKind, KeyNotAvailable, TokenNotAvailable, TokenStatus
from security_server.signer.token_set import TokenSet, UnknownToken, open_tokens
from tests.security_server.signer.softhsm import SoftHsm

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
MEMBER = ClientId("EE", "GOV", "70000310")
OTHER = ClientId("EE", "GOV", "70000999")


def _tokens(tmp_path: Path, softhsm: SoftHsm, label: str | None = None) -> TokenSet:
    hsm = softhsm.init_token()
    config = LayeredConfig.from_layers([IniLayer("local.ini", (
        f"[pkcs11:hsm1]\nlibrary = {hsm.module}\ntoken-label = {label or hsm.label}\npin-env = PIN\n"
    ))])
    return open_tokens(tmp_path / "keys", config, environ={"PIN": hsm.pin})


def _certify(tokens: TokenSet, key_id: str, ca: DevelopmentCA, member: ClientId) -> None:
    cert = ca.issue(tokens.csr(key_id, signing_subject(member, "Ministry")), CertKind.SIGN, NOW)
    tokens.import_cert(cert.public_bytes(serialization.Encoding.PEM), now=NOW)


def test_keys_are_found_on_whichever_token_holds_them(tmp_path: Path, softhsm: SoftHsm) -> None:
    """One member's key in the soft token, another's in the HSM: CSR, import and signing_key route to the holder."""
    tokens = _tokens(tmp_path, softhsm)
    assert [t.name for t in tokens.tokens] == ["soft", "hsm1"]
    ca = DevelopmentCA.init(tmp_path / "ca", "CA", NOW, key_size=2048)
    soft_id = tokens.generate(KeyKind.SIGN, MEMBER, KeyAlgorithm.EC_P256)
    hsm_id = tokens.token("hsm1").generate(KeyKind.SIGN, OTHER, KeyAlgorithm.RSA2048)
    _certify(tokens, soft_id, ca, MEMBER)
    _certify(tokens, hsm_id, ca, OTHER)
    assert tokens.holder(soft_id).name == "soft" and tokens.holder(hsm_id).name == "hsm1"
    assert {k.key_id for k in tokens.list()} == {soft_id, hsm_id}
    key, _ = tokens.signing_key(OTHER, now=NOW)
    assert isinstance(key, Pkcs11RsaKey) and key.key_id == hsm_id
    assert tokens.statuses() == {"soft": TokenStatus.LOGGED_IN, "hsm1": TokenStatus.LOGGED_IN}
    with pytest.raises(UnknownToken):
        tokens.token("hsm2")


def test_a_token_that_is_out_is_the_error_when_no_other_token_has_the_key(tmp_path: Path, softhsm: SoftHsm) -> None:
    """With the HSM not there, a member without a soft key gets token_not_available, not key_not_found."""
    tokens = _tokens(tmp_path, softhsm, label="no-such-token")
    assert tokens.status() is TokenStatus.NOT_PRESENT
    with pytest.raises(TokenNotAvailable):
        tokens.signing_key(MEMBER, now=NOW)
    hsm = tokens.token("hsm1")
    assert isinstance(hsm, Pkcs11Token)
    tokens.tokens = (tokens.tokens[0],)
    with pytest.raises(KeyNotAvailable):
        tokens.signing_key(MEMBER, now=NOW)


def test_the_auth_key_is_not_asked_of_a_token_that_may_not_hold_one(tmp_path: Path, softhsm: SoftHsm) -> None:
    """An absent HSM is not consulted for the auth key (TLS cannot use token keys), so its state never reaches the
    TLS or health paths; a token that allows auth keys is still asked."""
    tokens = _tokens(tmp_path, softhsm, label="no-such-token")
    with pytest.raises(KeyNotAvailable):  # the soft token has none; the absent HSM is not asked
        tokens.auth_key(now=NOW)
    hsm = tokens.token("hsm1")
    assert isinstance(hsm, Pkcs11Token)
    hsm.allow_auth_keys = True
    with pytest.raises(TokenNotAvailable):  # asked now, and it is not there
        tokens.auth_key(now=NOW)
