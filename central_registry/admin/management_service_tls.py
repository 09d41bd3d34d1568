"""The management service's TLS key and certificate (X-Road's "management service TLS certificate", UG-CS §9).

Security servers POST their management requests to the registry's HTTPS ``/managementservice``; its key and
certificate are ``tls/key.pem`` and ``tls/cert.pem`` in the registry's directory, and the certificate is published
in the private parameters beside the address, where the servers pin it. These functions replace them on disk: the
running registry's HTTPS listener and the configuration it publishes keep the old pair until its next start (both
switch together then, and each server connects again once it has downloaded the configuration that names the new
certificate, as with X-Road's).
"""

from __future__ import annotations

import re
import shutil
from datetime import datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from central_registry.publisher import SelfSignedKey
from central_registry.store import RegistryError
from security_server.edge.atomic_file import PRIVATE_MODE, PUBLIC_MODE, write_atomically
from security_server.signer.token import key_id_of

MAX_CERTIFICATE_BYTES = 64 * 1024
_UNESCAPED_COMMA = re.compile(r"(?<!\\),")


class InvalidCertificate(RegistryError):
    """The upload is no certificate (X-Road's ``cannot_convert_bytes_to_certificate``)."""

    http_status = 400
    api_code = "cannot_convert_bytes_to_certificate"


class CertificateKeyNotFound(RegistryError):
    """No certificate of the upload is for the management service's key (X-Road's ``key_not_found``)."""

    http_status = 400
    api_code = "key_not_found"


class CertificateAlreadyThere(RegistryError):
    """The upload is the certificate in use (X-Road's ``certificate_already_exists``)."""

    http_status = 400
    api_code = "certificate_already_exists"


class InvalidDistinguishedName(RegistryError):
    """A CSR's subject that is not a distinguished name (X-Road's ``invalid_distinguished_name``)."""

    http_status = 400
    api_code = "invalid_distinguished_name"


def certificate(folder: Path) -> x509.Certificate:
    """The management service's certificate (``folder``: the registry's ``tls/``)."""
    return SelfSignedKey.load(folder).cert


def new_key_and_certificate(folder: Path, common_name: str, now: datetime) -> x509.Certificate:
    """A new key and self-signed certificate replace the pair in ``folder`` (each file written whole)."""
    staging = folder.parent / f".{folder.name}.new"
    shutil.rmtree(staging, ignore_errors=True)  # left by a crash half-way
    made = SelfSignedKey.create(staging, common_name, now)
    write_atomically(folder / "key.pem", (staging / "key.pem").read_bytes(), PRIVATE_MODE)
    write_atomically(folder / "cert.pem", (staging / "cert.pem").read_bytes(), PUBLIC_MODE)
    shutil.rmtree(staging, ignore_errors=True)
    return made.cert


def _subject(name: object) -> x509.Name:
    """X-Road's subject text (``C=FI, O=X-Road Test, CN=...``, BouncyCastle's): attributes in the order written,
    each read as RFC 4514 reads one."""
    if not isinstance(name, str) or not name.strip() or len(name) > 255:
        raise InvalidDistinguishedName("the subject is a distinguished name of 1-255 characters")
    rdns: list[x509.RelativeDistinguishedName] = []
    for part in _UNESCAPED_COMMA.split(name):
        try:
            parsed = x509.Name.from_rfc4514_string(part.strip())
        except ValueError as err:
            raise InvalidDistinguishedName(f"not an attribute: {part.strip()!r}") from err
        if not parsed.rdns:
            raise InvalidDistinguishedName(f"not an attribute: {part.strip()!r}")
        rdns += parsed.rdns
    return x509.Name(rdns)


def certificate_request(folder: Path, name: object) -> bytes:
    """A PKCS#10 request (DER) for the management service's key with subject ``name``."""
    key = SelfSignedKey.load(folder).key
    request = x509.CertificateSigningRequestBuilder().subject_name(_subject(name)).sign(key, hashes.SHA256())
    return request.public_bytes(serialization.Encoding.DER)


def import_certificate(folder: Path, data: bytes, now: datetime) -> x509.Certificate:
    """Replace the certificate with ``data`` (PEM, a PEM chain or DER) whose first certificate for the key in
    ``folder`` is valid now; the key stays."""
    if not data or len(data) > MAX_CERTIFICATE_BYTES:
        raise InvalidCertificate(f"the upload is a PEM or DER certificate of at most {MAX_CERTIFICATE_BYTES} bytes")
    try:
        found = (x509.load_pem_x509_certificates(data) if data.lstrip().startswith(b"-----")
                 else [x509.load_der_x509_certificate(data)])
    except ValueError as err:
        raise InvalidCertificate("the upload is not a certificate") from err
    current = SelfSignedKey.load(folder)
    wanted = key_id_of(current.key.public_key())
    mine = next((c for c in found if key_id_of(c.public_key()) == wanted), None)
    if mine is None:
        raise CertificateKeyNotFound("no certificate of the upload is for the management service's key")
    if mine == current.cert:
        raise CertificateAlreadyThere("that certificate is the one in use")
    if not mine.not_valid_before_utc - timedelta(minutes=5) <= now <= mine.not_valid_after_utc:
        raise InvalidCertificate("the certificate is not valid now")
    write_atomically(folder / "cert.pem", mine.public_bytes(serialization.Encoding.PEM))
    return mine
