"""The development CA of ``central_registry.trust`` at run time: certificates under the profile, OCSP answers.

The certificates the registry's CA really issues (through CSRs, the subject rebuilt from the profile), given to
keys held here or to soft tokens; and real responses of its OCSP responder. For certificates the CA would never
issue, see :mod:`tests.federation.pki`. 2048-bit CA keys keep the tests fast.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from central_registry.trust.ca import CertKind, DevelopmentCA
from central_registry.trust.ocsp_responder import build_ocsp_response
from security_server.core.certprofile import auth_subject, signing_subject
from security_server.core.identifiers import ClientId, SecurityServerId
from security_server.signer.softtoken import KeyAlgorithm, KeyKind, SoftToken
from tests.federation.pki import PrivateKey, der, ec_key, make_csr, ocsp_request, rsa_key
from tests.federation.profile_certs import profile_subjects

OCSP_URL = "http://127.0.0.1:1/ocsp"
"""Where the CA says its OCSP responder is (nothing listens there: tests answer from the CA in memory)."""


@dataclass(frozen=True)
class KeyAndCert:
    """A private key with the certificate the CA issued for it."""

    key: PrivateKey
    cert: x509.Certificate

    @property
    def cert_der(self) -> bytes:
        """The certificate in DER."""
        return der(self.cert)


def make_ca(directory: Path, now: datetime, name: str = "fedbus test CA", *, profile: str = "fedbus") -> DevelopmentCA:
    """A development CA with a delegated OCSP responder (2048-bit keys to keep tests fast), issuing under
    certificate ``profile``."""
    ca = DevelopmentCA.init(directory, name, now, key_size=2048, ocsp_url=OCSP_URL, profile=profile)
    ca.issue_ocsp_cert(now)
    return ca


def issue_signing(
    ca: DevelopmentCA, member: ClientId, now: datetime, name: str = "Test member", *, key: PrivateKey | None = None
) -> KeyAndCert:
    """A member's signing key (P-256 unless given) and its certificate under the profile."""
    key = key or ec_key()
    return KeyAndCert(key, ca.issue(make_csr(signing_subject(member, name), key), CertKind.SIGN, now))


def issue_auth(
    ca: DevelopmentCA,
    server: SecurityServerId,
    now: datetime,
    name: str = "Test member",
    *,
    key: PrivateKey | None = None,
    validity_days: int | None = None,
) -> KeyAndCert:
    """A security server's authentication key (RSA 2048 unless given) and certificate under the profile."""
    key = key or rsa_key()
    csr = make_csr(auth_subject(server, name), key)
    if validity_days is None:
        return KeyAndCert(key, ca.issue(csr, CertKind.AUTH, now))
    return KeyAndCert(key, ca.issue(csr, CertKind.AUTH, now, validity_days=validity_days))


def issue_into_token(
    token: SoftToken,
    ca: DevelopmentCA,
    kind: KeyKind,
    owner: ClientId | SecurityServerId,
    algorithm: KeyAlgorithm | str,
    now: datetime,
    name: str = "Test member",
    *,
    profile: str = "fedbus",
) -> x509.Certificate:
    """Generate a key of ``kind`` in ``token``, have the CA certify its CSR, import the certificate; return it.
    With ``profile`` (one of X-Road's), the CSR's subject is that profile's (:mod:`tests.federation.profile_certs`)."""
    key_id = token.generate(kind, owner, algorithm)  # type: ignore[arg-type]  # the token checks owner against kind
    if kind is KeyKind.AUTH:
        assert isinstance(owner, SecurityServerId)
        subject, cert_kind = auth_subject(owner, name), CertKind.AUTH
    else:
        assert isinstance(owner, ClientId)
        subject, cert_kind = signing_subject(owner, name), CertKind.SIGN
    if profile != "fedbus":
        subject = profile_subjects(profile, owner, name)
    cert = ca.issue(token.csr(key_id, subject), cert_kind, now)
    token.import_cert(cert.public_bytes(serialization.Encoding.PEM), now=now)
    return cert


def ocsp_for(ca: DevelopmentCA, cert: x509.Certificate, now: datetime) -> bytes:
    """A real OCSP response from the CA's responder for ``cert`` at ``now``."""
    return build_ocsp_response(ocsp_request(cert, ca.certificate), ca.state(), now)
