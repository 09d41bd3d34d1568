"""Management requests: build/parse round trip, signatures over the exact SOAP bytes, hostile bodies."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from hypothesis import given, settings
from hypothesis import strategies as st

from security_server.core import multipart
from security_server.core.errors import BusError, InvalidSignatureValue, MissingSignature
from security_server.core.identifiers import ClientId, SecurityServerId
from security_server.core.mgmtrequest import (
    RSA_PKCS1,
    RSA_PSS,
    RequestSignature,
    build_request,
    ManagementRequest,
    RequestType,
    SignatureRole,
    build_soap,
    parse_request,
    parse_soap,
    signed_request,
)
from security_server.core.mgmtrequest import sign as mgmt_sign
from tests.federation.ca import KeyAndCert, issue_auth, issue_signing, make_ca

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=timezone.utc)
OWNER = ClientId("EE", "GOV", "70000310")
SERVER = SecurityServerId(OWNER, "ss1")


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[KeyAndCert, KeyAndCert, KeyAndCert]:
    """The server's auth key, the owner's signing key and another member's signing key."""
    ca = make_ca(tmp_path_factory.mktemp("ca") / "ca", NOW)
    return (
        issue_auth(ca, SERVER, NOW),
        issue_signing(ca, OWNER, NOW),
        issue_signing(ca, ClientId("EE", "GOV", "99"), NOW),
    )


def _auth_cert_reg(auth: KeyAndCert, request_id: str = "req-1") -> ManagementRequest:
    return ManagementRequest(RequestType.AUTH_CERT_REG, request_id, SERVER, address="127.0.0.1", auth_cert_der=auth.cert_der)


def _signed(request: ManagementRequest, auth: KeyAndCert, owner: KeyAndCert) -> tuple[str, bytes]:
    return signed_request(
        request, [(SignatureRole.AUTH, auth.key, auth.cert_der, None), (SignatureRole.OWNER, owner.key, owner.cert_der, b"ocsp")]
    )


def test_round_trip_of_every_request_type(keys: tuple[KeyAndCert, KeyAndCert, KeyAndCert]) -> None:
    """Each request type survives build -> sign -> parse -> verify unchanged."""
    auth, owner, _ = keys
    requests = [
        _auth_cert_reg(auth),
        ManagementRequest(RequestType.AUTH_CERT_DELETION, "r2", SERVER, auth_cert_der=auth.cert_der),
        ManagementRequest(RequestType.CLIENT_REG, "r3", SERVER, client=OWNER.subsystem("registry")),
        ManagementRequest(RequestType.CLIENT_DELETION, "r4", SERVER, client=OWNER.subsystem("registry")),
    ]
    for request in requests:
        content_type, body = _signed(request, auth, owner)
        signed = parse_request(content_type, body)
        assert signed.request == request
        assert signed.signature(SignatureRole.OWNER).ocsp_der == b"ocsp"


@settings(max_examples=30, deadline=None)
@given(st.text(alphabet="abcdef0123456789-", min_size=1, max_size=36), st.sampled_from(["127.0.0.1", "ss1.example.org:5500"]))
def test_soap_round_trip(request_id: str, address: str) -> None:
    """parse_soap(build_soap(r)) == r for generated request ids and addresses."""
    request = ManagementRequest(RequestType.AUTH_CERT_REG, request_id, SERVER, address=address, auth_cert_der=b"\x30\x00")
    assert parse_soap(build_soap(request)) == request


def test_soap_follows_xroad_shape(keys: tuple[KeyAndCert, KeyAndCert, KeyAndCert]) -> None:
    """The SOAP part names the owner as client and the request type as service code (pr-mserv Annex A.3)."""
    soap = build_soap(_auth_cert_reg(keys[0])).decode()
    assert "<xroad:authCertReg>" in soap
    assert "<id:serviceCode>authCertReg</id:serviceCode>" in soap
    assert "<xroad:protocolVersion>4.0</xroad:protocolVersion>" in soap


def test_tampered_soap_is_refused(keys: tuple[KeyAndCert, KeyAndCert, KeyAndCert]) -> None:
    """Changing one byte of the signed SOAP part breaks the signatures."""
    auth, owner, _ = keys
    content_type, body = _signed(_auth_cert_reg(auth), auth, owner)
    forged = body.replace(b"127.0.0.1", b"127.0.0.2", 1)
    with pytest.raises(InvalidSignatureValue):
        parse_request(content_type, forged)


def test_unsigned_request_is_refused(keys: tuple[KeyAndCert, KeyAndCert, KeyAndCert]) -> None:
    """A request without its owner signature is refused with missing_signature."""
    auth, _, _ = keys
    content_type, body = signed_request(_auth_cert_reg(auth), [(SignatureRole.AUTH, auth.key, auth.cert_der, None)])
    with pytest.raises(MissingSignature):
        parse_request(content_type, body)


def test_signature_by_a_key_that_does_not_match_its_certificate_is_refused(
    keys: tuple[KeyAndCert, KeyAndCert, KeyAndCert],
) -> None:
    """An owner signature made with another key than its certificate's is refused."""
    auth, owner, other = keys
    content_type, body = signed_request(
        _auth_cert_reg(auth),
        [(SignatureRole.AUTH, auth.key, auth.cert_der, None), (SignatureRole.OWNER, other.key, owner.cert_der, None)],
    )
    with pytest.raises(InvalidSignatureValue):
        parse_request(content_type, body)


def test_auth_cert_reg_must_be_signed_by_the_registered_certificate(
    keys: tuple[KeyAndCert, KeyAndCert, KeyAndCert],
) -> None:
    """authCertReg signed with another auth key than the one it registers is refused."""
    auth, owner, other = keys
    request = ManagementRequest(
        RequestType.AUTH_CERT_REG, "r", SERVER, address="127.0.0.1", auth_cert_der=other.cert_der
    )
    content_type, body = _signed(request, auth, owner)
    with pytest.raises(InvalidSignatureValue):
        parse_request(content_type, body)


@pytest.mark.parametrize(
    "mangle",
    [
        lambda ct, body: (ct, body[: len(body) // 2]),  # truncated
        lambda ct, body: ("text/xml", body),  # wrong content type
        lambda ct, body: (ct, b""),  # empty
        lambda ct, body: (ct, body.replace(b"<xroad:authCertReg>", b"<xroad:nosuchRequest>", 1)),
        lambda ct, body: (ct, body.replace(b"<?xml", b'<!DOCTYPE x [<!ENTITY a "b">]><?xml', 1)),
    ],
)
def test_hostile_bodies_give_bus_errors(keys: tuple[KeyAndCert, KeyAndCert, KeyAndCert], mangle: object) -> None:
    """Truncated, mistyped, empty, unknown or DTD-carrying requests give a BusError, never a bare exception."""
    auth, owner, _ = keys
    content_type, body = _signed(_auth_cert_reg(auth), auth, owner)
    bad_type, bad_body = mangle(content_type, body)  # type: ignore[operator]
    with pytest.raises(BusError):
        parse_request(bad_type, bad_body)


def test_request_fields_must_fit_the_type() -> None:
    """A clientReg without a client, or with a certificate, cannot even be built."""
    with pytest.raises(BusError):
        ManagementRequest(RequestType.CLIENT_REG, "r", SERVER)
    with pytest.raises(BusError):
        ManagementRequest(RequestType.CLIENT_REG, "r", SERVER, client=OWNER, auth_cert_der=b"x")


def test_parts_are_tagged_by_role(keys: tuple[KeyAndCert, KeyAndCert, KeyAndCert]) -> None:
    """Every signature part says whose signature it belongs to."""
    auth, owner, _ = keys
    content_type, body = _signed(_auth_cert_reg(auth), auth, owner)
    _, parts = multipart.parse_multipart_message(content_type, body, ("multipart/related",))
    roles = [multipart.parse_header_value(p.require_header("Content-Type")).param("signature-role") for p in parts[1:]]
    assert roles == ["auth", "auth", "owner", "owner", "owner"]


@pytest.fixture(scope="module")
def rsa_owner(tmp_path_factory: pytest.TempPathFactory) -> KeyAndCert:
    """The owner's signing key as RSA 2048 (the key type that signs PKCS#1 v1.5 or PSS)."""
    ca = make_ca(tmp_path_factory.mktemp("rsa-ca") / "ca", NOW)
    return issue_signing(ca, OWNER, NOW, key=rsa.generate_private_key(public_exponent=65537, key_size=2048))


def _signed_pss_owner(request: ManagementRequest, auth: KeyAndCert, owner: KeyAndCert) -> tuple[str, bytes]:
    soap = build_soap(request)
    signatures = []
    for role, signer, pss in ((SignatureRole.AUTH, auth, None), (SignatureRole.OWNER, owner, True)):
        algorithm, value = mgmt_sign(signer.key, soap, pss=pss)
        signatures.append(RequestSignature(role, algorithm, value, signer.cert_der, None))
    return build_request(request, signatures)


def test_an_rsa_key_signs_pkcs1_by_default(rsa_owner: KeyAndCert) -> None:
    """An ordinary RSA key keeps X-Road's default, SHA512withRSA (PKCS#1 v1.5, deterministic bytes)."""
    assert mgmt_sign(rsa_owner.key, b"data") == mgmt_sign(rsa_owner.key, b"data")
    assert mgmt_sign(rsa_owner.key, b"data")[0] == RSA_PKCS1 == "SHA512withRSA"


def test_a_pss_signature_verifies_under_xroads_pss_name(
    keys: tuple[KeyAndCert, KeyAndCert, KeyAndCert], rsa_owner: KeyAndCert
) -> None:
    """An owner signature made RSA-PSS is sent as SHA512withRSAandMGF1 and the registry's parse verifies it."""
    auth, _, _ = keys
    content_type, body = _signed_pss_owner(_auth_cert_reg(auth), auth, rsa_owner)
    parsed = parse_request(content_type, body)
    assert parsed.signature(SignatureRole.OWNER).algorithm == RSA_PSS == "SHA512withRSAandMGF1"
    assert b"signature-algorithm-id: SHA512withRSAandMGF1" in body


def test_a_pss_signature_under_the_pkcs1_name_is_refused(
    keys: tuple[KeyAndCert, KeyAndCert, KeyAndCert], rsa_owner: KeyAndCert
) -> None:
    """The algorithm id decides the padding: a PSS value labelled SHA512withRSA does not verify."""
    auth, _, _ = keys
    content_type, body = _signed_pss_owner(_auth_cert_reg(auth), auth, rsa_owner)
    relabelled = body.replace(b"signature-algorithm-id: SHA512withRSAandMGF1", b"signature-algorithm-id: SHA512withRSA")
    with pytest.raises(InvalidSignatureValue):
        parse_request(content_type, relabelled)


def test_pss_is_refused_for_an_ec_certificate(keys: tuple[KeyAndCert, KeyAndCert, KeyAndCert]) -> None:
    """SHA512withRSAandMGF1 over an EC certificate is malformed, not a verification attempt."""
    auth, owner, _ = keys
    content_type, body = _signed(_auth_cert_reg(auth), auth, owner)
    relabelled = body.replace(b"signature-algorithm-id: SHA512withECDSA", b"signature-algorithm-id: SHA512withRSAandMGF1")
    with pytest.raises(BusError, match="does not fit"):
        parse_request(content_type, relabelled)
