"""Keys, certificates, CSRs and OCSP responses made with cryptography alone, at run time.

Independent of the development CA (:mod:`tests.federation.ca`), so trust decisions can be tested against
certificates and responses the CA would never make: expired, not yet valid, wrong roles, foreign issuers,
unauthorised responders, stale answers. EC P-256 keys keep it fast; the few RSA keys that must be RSA (directory
signing, as X-Road does) are made once per test process. Never commit what this makes.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


def ec_key() -> ec.EllipticCurvePrivateKey:
    """A fresh EC P-256 key."""
    return ec.generate_private_key(ec.SECP256R1())


def rsa_key(bits: int = 2048) -> rsa.RSAPrivateKey:
    """A fresh RSA key (2048 bits unless asked otherwise)."""
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def der(cert: x509.Certificate) -> bytes:
    """A certificate in DER."""
    return cert.public_bytes(serialization.Encoding.DER)


@dataclass(frozen=True)
class Issued:
    """A private key and its certificate."""

    key: PrivateKey
    cert: x509.Certificate

    @property
    def der(self) -> bytes:
        """The certificate in DER."""
        return der(self.cert)

    @property
    def pem(self) -> bytes:
        """The certificate in PEM."""
        return self.cert.public_bytes(serialization.Encoding.PEM)


def name(common_name: str) -> x509.Name:
    """A subject with just a CN."""
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _usage(**flags: bool) -> x509.KeyUsage:
    names = (
        "digital_signature",
        "content_commitment",
        "key_encipherment",
        "data_encipherment",
        "key_agreement",
        "key_cert_sign",
        "crl_sign",
        "encipher_only",
        "decipher_only",
    )
    return x509.KeyUsage(**{n: flags.get(n, False) for n in names})


def make_ca(
    common_name: str,
    now: datetime,
    *,
    issuer: Issued | None = None,
    key: PrivateKey | None = None,
    not_before: datetime | None = None,
    not_after: datetime | None = None,
    path_length: int | None = 1,
) -> Issued:
    """A CA certificate: self-signed unless ``issuer`` is given (then an intermediate)."""
    key = key or ec_key()
    subject = name(common_name)
    signer_key: CertificateIssuerPrivateKeyTypes = issuer.key if issuer else key
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.cert.subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before or now - timedelta(days=1))
        .not_valid_after(not_after or now + timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
        .add_extension(_usage(key_cert_sign=True, crl_sign=True, digital_signature=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(signer_key, hashes.SHA256())
    )
    return Issued(key, cert)


def make_cert(
    issuer: Issued,
    subject: x509.Name,
    now: datetime,
    *,
    kind: str = "sign",
    key: PrivateKey | None = None,
    not_before: datetime | None = None,
    not_after: datetime | None = None,
) -> Issued:
    """A leaf certificate of ``kind``: sign, auth, ocsp, tsa, tsa-noncritical (EKU not critical) or plain."""
    key = key or ec_key()
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before or now - timedelta(days=1))
        .not_valid_after(not_after or now + timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
    )
    if kind == "sign":
        builder = builder.add_extension(_usage(digital_signature=True, content_commitment=True), critical=True)
    elif kind == "auth":
        builder = builder.add_extension(_usage(digital_signature=True, key_encipherment=True), critical=True)
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
        )
    elif kind == "ocsp":
        builder = builder.add_extension(_usage(digital_signature=True), critical=True)
        builder = builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.OCSP_SIGNING]), critical=False)
    elif kind in ("tsa", "tsa-noncritical"):
        builder = builder.add_extension(_usage(digital_signature=True, content_commitment=True), critical=True)
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=kind == "tsa"
        )
    elif kind != "plain":
        raise ValueError(f"unknown kind {kind}")
    return Issued(key, builder.sign(issuer.key, hashes.SHA256()))


def make_csr(subject: x509.Name, key: PrivateKey | None = None) -> bytes:
    """A PEM PKCS#10 request for ``subject`` signed by ``key`` (a fresh EC key by default)."""
    key = key or ec_key()
    csr = x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, hashes.SHA256())
    return csr.public_bytes(serialization.Encoding.PEM)


def ocsp_request(cert: x509.Certificate, issuer: x509.Certificate, algorithm: hashes.HashAlgorithm | None = None) -> bytes:
    """A DER OCSP request for ``cert`` (SHA-1 CertID unless told otherwise)."""
    builder = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, algorithm or hashes.SHA1())
    return builder.build().public_bytes(serialization.Encoding.DER)


def make_ocsp_response(
    cert: x509.Certificate,
    issuer: x509.Certificate,
    signer: Issued,
    now: datetime,
    *,
    status: str = "good",
    this_update: datetime | None = None,
    next_update: datetime | None = None,
    no_next_update: bool = False,
    revocation_time: datetime | None = None,
    reason: x509.ReasonFlags | None = None,
    embed_signer: bool = True,
    by_name: bool = False,
) -> bytes:
    """A DER OCSP response about ``cert`` signed by ``signer`` (the CA itself or a responder certificate)."""
    this_update = this_update or now - timedelta(seconds=1)
    cert_status = {
        "good": ocsp.OCSPCertStatus.GOOD,
        "revoked": ocsp.OCSPCertStatus.REVOKED,
        "unknown": ocsp.OCSPCertStatus.UNKNOWN,
    }[status]
    builder = ocsp.OCSPResponseBuilder().add_response(
        cert=cert,
        issuer=issuer,
        algorithm=hashes.SHA1(),
        cert_status=cert_status,
        this_update=this_update,
        next_update=None if no_next_update else (next_update or this_update + timedelta(hours=1)),
        revocation_time=(revocation_time or now - timedelta(hours=1)) if status == "revoked" else None,
        revocation_reason=reason if status == "revoked" else None,
    )
    encoding = ocsp.OCSPResponderEncoding.NAME if by_name else ocsp.OCSPResponderEncoding.HASH
    builder = builder.responder_id(encoding, signer.cert)
    if embed_signer and signer.cert.subject != issuer.subject:
        builder = builder.certificates([signer.cert])
    return builder.sign(signer.key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


def write_pem(path: Path, *certs: x509.Certificate) -> Path:
    """Write certificates as PEM to ``path`` and return it (for openssl's command line)."""
    path.write_bytes(b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs))
    return path


# --- named certificates, one per name per test process -------------------------------------------------------

SAMPLE_TIME = datetime(2026, 6, 1, 12, 0, tzinfo=timezone.utc)
"""The moment the named certificates below are valid around (30 days before it to ten years after)."""


def _sample(common_name: str, key: PrivateKey, issuer: Issued | None = None) -> Issued:
    start, end = SAMPLE_TIME - timedelta(days=30), SAMPLE_TIME + timedelta(days=3650)
    if issuer is None:
        return make_ca(common_name, SAMPLE_TIME, key=key, path_length=None, not_before=start, not_after=end)
    return make_cert(issuer, name(common_name), SAMPLE_TIME, kind="plain", key=key, not_before=start, not_after=end)


@functools.cache
def rsa_issued(common_name: str) -> Issued:
    """A self-signed RSA 2048 CA certificate named ``common_name`` (one per name per test process)."""
    return _sample(common_name, rsa_key())


@functools.cache
def ec_issued(common_name: str) -> Issued:
    """A self-signed P-256 CA certificate named ``common_name`` (one per name per test process)."""
    return _sample(common_name, ec_key())


@functools.cache
def ec_issued_by(common_name: str, issuer_name: str) -> Issued:
    """A P-256 end-entity certificate named ``common_name`` issued by :func:`ec_issued` ``issuer_name``."""
    return _sample(common_name, ec_key(), ec_issued(issuer_name))
