"""Token keys shaped as cryptography keys: core signing, the CSR builder and the algorithm choice take them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed, decode_dss_signature
from cryptography.x509.oid import NameOID

from security_server.core.signature import (
    ECDSA_SHA512,
    RSA_PSS_SHA512,
    RSA_SHA512,
    MessagePart,
    build_signature,
    verify_signature,
)
from security_server.signer.pkcs11_config import SignMechanism
from security_server.signer.pkcs11_key import KeyStaysInToken, Pkcs11EcKey, Pkcs11RsaKey, signature_algorithm_for

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
_DIGEST_INFO = {
    "sha256": bytes.fromhex("3031300d060960864801650304020105000420"),
    "sha512": bytes.fromhex("3051300d060960864801650304020305000440"),
}


class FakeToken:
    """Signs digests with a real key held here, as a PKCS#11 module would, and records what it was asked."""

    def __init__(self, key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> None:
        self.key = key
        self.calls: list[tuple[str, SignMechanism, int]] = []

    def sign_digest(
        self, key_id: str, digest: bytes, hash_algorithm: hashes.HashAlgorithm, mechanism: SignMechanism, salt_length: int
    ) -> bytes:
        self.calls.append((key_id, mechanism, salt_length))
        if isinstance(self.key, ec.EllipticCurvePrivateKey):
            r, s = decode_dss_signature(self.key.sign(digest, ec.ECDSA(Prehashed(hash_algorithm))))
            size = (self.key.curve.key_size + 7) // 8
            return r.to_bytes(size, "big") + s.to_bytes(size, "big")
        if mechanism is SignMechanism.RSA_PKCS_PSS:
            pss = padding.PSS(mgf=padding.MGF1(hash_algorithm), salt_length=salt_length)
            return self.key.sign(digest, pss, Prehashed(hash_algorithm))
        return self.key.sign(digest, padding.PKCS1v15(), Prehashed(hash_algorithm))


def _cert(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "token key test")])
    return (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(1).not_valid_before(NOW - timedelta(days=1)).not_valid_after(NOW + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def test_rsa_token_key_makes_an_xades_signature_that_verifies(rsa_key: rsa.RSAPrivateKey) -> None:
    """core/signature.py signs with a token RSA key as with a file key, and the signature verifies."""
    token = FakeToken(rsa_key)
    key = Pkcs11RsaKey(token, "ab" * 20, rsa_key.public_key(), SignMechanism.RSA_PKCS)
    message = b"<message/>"
    assert signature_algorithm_for(key) is RSA_SHA512
    signed = build_signature([MessagePart.of("/message.xml", message)], _cert(rsa_key), key, b"ocsp", NOW,
                             algorithm=signature_algorithm_for(key))
    verified = verify_signature(signed.signature_xml, {"/message.xml": message}.get)
    assert verified.algorithm is RSA_SHA512
    assert token.calls == [("ab" * 20, SignMechanism.RSA_PKCS, 0)]


def test_pss_token_key_signs_rsa_pss_with_digest_long_salt(rsa_key: rsa.RSAPrivateKey) -> None:
    """A token configured for CKM_RSA_PKCS_PSS makes RSA-PSS-SHA512 signatures (salt 64) that verify."""
    token = FakeToken(rsa_key)
    key = Pkcs11RsaKey(token, "cd" * 20, rsa_key.public_key(), SignMechanism.RSA_PKCS_PSS)
    assert signature_algorithm_for(key) is RSA_PSS_SHA512
    message = b"<pss/>"
    signed = build_signature([MessagePart.of("/message.xml", message)], _cert(rsa_key), key, b"ocsp", NOW,
                             algorithm=RSA_PSS_SHA512)
    assert verify_signature(signed.signature_xml, {"/message.xml": message}.get).algorithm is RSA_PSS_SHA512
    assert token.calls[-1][1:] == (SignMechanism.RSA_PKCS_PSS, 64)


def test_rsa_token_key_refuses_the_padding_its_token_is_not_configured_for(rsa_key: rsa.RSAPrivateKey) -> None:
    """A PSS-only token key refuses PKCS#1 v1.5 (and the other way round) before the token is asked."""
    token = FakeToken(rsa_key)
    pss_only = Pkcs11RsaKey(token, "cd" * 20, rsa_key.public_key(), SignMechanism.RSA_PKCS_PSS)
    with pytest.raises(ValueError, match="CKM_RSA_PKCS_PSS"):
        pss_only.sign(b"x", padding.PKCS1v15(), hashes.SHA256())
    with pytest.raises(ValueError, match="SHA-256, SHA-384 or SHA-512"):
        pss_only.sign(b"x", padding.PSS(mgf=padding.MGF1(hashes.SHA1()), salt_length=20), hashes.SHA1())
    assert token.calls == []


def test_ec_token_key_returns_der_and_signs_ecdsa_sha512(rsa_key: rsa.RSAPrivateKey) -> None:
    """A token EC key turns the token's r||s into DER, so core/signature.py's ECDSA path verifies."""
    real = ec.generate_private_key(ec.SECP256R1())
    key = Pkcs11EcKey(FakeToken(real), "ef" * 20, real.public_key())
    assert signature_algorithm_for(key) is ECDSA_SHA512
    der = key.sign(b"data", ec.ECDSA(hashes.SHA256()))
    real.public_key().verify(der, b"data", ec.ECDSA(hashes.SHA256()))
    message = b"<ec/>"
    signed = build_signature([MessagePart.of("/message.xml", message)], _cert(real), key, b"ocsp", NOW,
                             algorithm=ECDSA_SHA512)
    assert verify_signature(signed.signature_xml, {"/message.xml": message}.get).algorithm is ECDSA_SHA512


def test_csr_builder_signs_with_a_token_key(rsa_key: rsa.RSAPrivateKey) -> None:
    """cryptography's CSR builder takes a token key; the request's signature verifies."""
    key = Pkcs11RsaKey(FakeToken(rsa_key), "ab" * 20, rsa_key.public_key(), SignMechanism.RSA_PKCS)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "csr")])
    request = x509.CertificateSigningRequestBuilder().subject_name(name).sign(key, hashes.SHA256())
    assert request.is_signature_valid
    assert request.public_key() == rsa_key.public_key()


def test_token_keys_never_give_out_the_private_key(rsa_key: rsa.RSAPrivateKey) -> None:
    """private_bytes, private_numbers and decrypt refuse: the private key stays in the token."""
    key = Pkcs11RsaKey(FakeToken(rsa_key), "ab" * 20, rsa_key.public_key(), SignMechanism.RSA_PKCS)
    with pytest.raises(KeyStaysInToken):
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    with pytest.raises(KeyStaysInToken):
        key.private_numbers()
    with pytest.raises(KeyStaysInToken):
        key.decrypt(b"x", padding.PKCS1v15())
    assert "ab" * 20 in repr(key)
