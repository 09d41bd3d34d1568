"""The signature tests' PKI, generated at run time: one CA, an RSA and an EC signing certificate, another member's
certificate and a real OCSP response, all valid around the fixed signing time :data:`NOW`."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import NameOID

NOW = datetime(2026, 3, 4, 5, 6, 7, 891234, tzinfo=timezone.utc)


@dataclass(frozen=True)
class Pki:
    ca_key: rsa.RSAPrivateKey
    ca: x509.Certificate
    key: rsa.RSAPrivateKey
    cert: x509.Certificate
    ec_key: ec.EllipticCurvePrivateKey
    ec_cert: x509.Certificate
    other_key: rsa.RSAPrivateKey
    other_cert: x509.Certificate
    ocsp: bytes


def _cert(subject: str, key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey, issuer: x509.Certificate | None,
          issuer_key: rsa.RSAPrivateKey, serial: int) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Test & <Sons>"), x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer.subject if issuer else name)
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(NOW - timedelta(days=1))
        .not_valid_after(NOW + timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=issuer is None, path_length=None), critical=True)
        .sign(issuer_key, hashes.SHA256())
    )


@functools.cache
def pki() -> Pki:
    """One CA, an RSA and an EC signing certificate, another member's certificate and a real OCSP response."""
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca = _cert("Test CA", ca_key, None, ca_key, 1)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cert = _cert("1234", key, ca, ca_key, 18)
    ec_key = ec.generate_private_key(ec.SECP384R1())
    ec_cert = _cert("5678", ec_key, ca, ca_key, 19)
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    other_cert = _cert("9999", other_key, ca, ca_key, 20)
    response = (
        ocsp.OCSPResponseBuilder()
        .add_response(cert=cert, issuer=ca, algorithm=hashes.SHA1(), cert_status=ocsp.OCSPCertStatus.GOOD,
                      this_update=NOW, next_update=NOW + timedelta(hours=1), revocation_time=None, revocation_reason=None)
        .responder_id(ocsp.OCSPResponderEncoding.HASH, ca)
        .sign(ca_key, hashes.SHA256())
    )
    return Pki(ca_key, ca, key, cert, ec_key, ec_cert, other_key, other_cert, response.public_bytes(serialization.Encoding.DER))
