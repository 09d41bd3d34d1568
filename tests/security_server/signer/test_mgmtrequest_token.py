"""Management requests signed by a key in a PSS-only SoftHSM2 token: sent as RSA-PSS, verified by the registry."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives import serialization

from central_registry.trust.ca import CertKind, DevelopmentCA
from security_server.core.certprofile import signing_subject
from security_server.core.identifiers import ClientId, SecurityServerId
from security_server.core.mgmtrequest import (
    RSA_PKCS1,
    RSA_PSS,
    ManagementRequest,
    RequestType,
    SignatureRole,
    parse_request,
    signed_request,
)
from security_server.signer.pkcs11_config import Pkcs11TokenConfig, SignMechanism
from security_server.signer.pkcs11_token import Pkcs11Token
from security_server.signer.token import KeyAlgorithm, KeyKind
from tests.federation.ca import issue_auth
from tests.security_server.signer.softhsm import SoftHsm

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
MEMBER = ClientId("EE", "GOV", "70000310")
SERVER = SecurityServerId(MEMBER, "ss1")


def _token_with_signing_key(softhsm: SoftHsm, ca: DevelopmentCA, mechanism: SignMechanism) -> Pkcs11Token:
    hsm = softhsm.init_token()
    config = Pkcs11TokenConfig(
        name="hsm", library=hsm.module, token_label=hsm.label, pin_env="PIN", sign_mechanism=mechanism
    )
    token = Pkcs11Token(config, environ={"PIN": hsm.pin})
    key_id = token.generate(KeyKind.SIGN, MEMBER, KeyAlgorithm.RSA2048)
    cert = ca.issue(token.csr(key_id, signing_subject(MEMBER, "Ministry of Tests")), CertKind.SIGN, NOW)
    token.import_cert(cert.public_bytes(serialization.Encoding.PEM), now=NOW)
    return token


@pytest.mark.parametrize(
    ("mechanism", "algorithm"), [(SignMechanism.RSA_PKCS_PSS, RSA_PSS), (SignMechanism.RSA_PKCS, RSA_PKCS1)]
)
def test_client_reg_signed_in_the_token_with_its_mechanism_verifies(
    softhsm: SoftHsm, tmp_path_factory: pytest.TempPathFactory, mechanism: SignMechanism, algorithm: str
) -> None:
    """The owner signature is made inside the token with the mechanism it is configured for (a PSS-only token
    no longer fails), named as X-Road names it, and the registry's parse verifies it beside a soft auth key's."""
    ca = DevelopmentCA.init(tmp_path_factory.mktemp("ca"), "Mgmt token CA", NOW, key_size=2048)
    token = _token_with_signing_key(softhsm, ca, mechanism)
    auth = issue_auth(ca, SERVER, NOW)
    owner_key, owner_cert = token.signing_key(MEMBER, now=NOW)
    request = ManagementRequest(RequestType.CLIENT_REG, "r-token", SERVER, client=MEMBER.subsystem("app"))
    content_type, body = signed_request(request, [
        (SignatureRole.AUTH, auth.key, auth.cert_der, None),
        (SignatureRole.OWNER, owner_key, owner_cert.public_bytes(serialization.Encoding.DER), b"ocsp"),
    ])
    parsed = parse_request(content_type, body)
    assert parsed.signature(SignatureRole.OWNER).algorithm == algorithm
    assert parsed.request == request
