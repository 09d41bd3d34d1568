"""Test PKI for a small federation, built at run time with the development CA (never committed keys)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509 import ocsp

from central_registry.trust.ca import CertKind, DevelopmentCA
from central_registry.trust.ocsp_responder import build_ocsp_response
from security_server.core.certprofile import auth_subject, signing_subject
from security_server.core.identifiers import ClientId, SecurityServerId


@dataclass(frozen=True)
class KeyAndCert:
    """A private key with the certificate the CA issued for it."""

    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
    cert: x509.Certificate

    @property
    def cert_der(self) -> bytes:
        """The certificate in DER."""
        return self.cert.public_bytes(serialization.Encoding.DER)


def make_ca(directory: Path, now: datetime) -> DevelopmentCA:
    """A development CA with a delegated OCSP responder (2048-bit keys to keep tests fast)."""
    ca = DevelopmentCA.init(directory, "fedbus test CA", now, key_size=2048, ocsp_url="http://127.0.0.1:1/ocsp")
    ca.issue_ocsp_cert(now)
    return ca


def _csr(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey, subject: x509.Name) -> bytes:
    return (
        x509.CertificateSigningRequestBuilder()
        .subject_name(subject)
        .sign(key, hashes.SHA256())
        .public_bytes(serialization.Encoding.PEM)
    )


def issue_signing(ca: DevelopmentCA, member: ClientId, now: datetime, name: str = "Test member") -> KeyAndCert:
    """A member's signing key and certificate under the profile."""
    key = ec.generate_private_key(ec.SECP256R1())
    return KeyAndCert(key, ca.issue(_csr(key, signing_subject(member, name)), CertKind.SIGN, now))


def issue_auth(ca: DevelopmentCA, server: SecurityServerId, now: datetime, name: str = "Test member") -> KeyAndCert:
    """A security server's authentication key and certificate under the profile."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return KeyAndCert(key, ca.issue(_csr(key, auth_subject(server, name)), CertKind.AUTH, now))


def ocsp_for(ca: DevelopmentCA, cert: x509.Certificate, now: datetime) -> bytes:
    """A real OCSP response from the CA's responder for ``cert`` at ``now``."""
    request = (
        ocsp.OCSPRequestBuilder()
        .add_certificate(cert, ca.certificate, hashes.SHA1())
        .build()
        .public_bytes(serialization.Encoding.DER)
    )
    return build_ocsp_response(request, ca.state(), now)
