"""The security server's internal TLS certificate (X-Road's "Security server TLS certificate", UG-SS §10.4).

The client proxy's HTTPS port serves it to the information systems, who pin it (or its CA). The administrator
shows it, exports it (a ``tar.gz`` holding ``cert.pem`` and ``cert.cer``, as X-Road), makes a new key and
self-signed certificate, asks for a CA-signed certificate for the current key (a PKCS#10 request with the subject
given as X-Road's ``C=FI, O=..., CN=...``), and imports the CA's certificate (or chain) for that key. The files are
management/tls.py's; a running server takes a new certificate into use at its next HTTPS connection.
"""

from __future__ import annotations

import io
import re
import tarfile
from datetime import UTC, datetime

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID

from security_server.admin.errors import CertificateExists, InvalidCertificate
from security_server.admin.server_dir import ServerDirectory
from security_server.management.tls import (
    TlsIdentity,
    ensure_internal_certificate,
    new_internal_identity,
    write_internal_certificate,
)
from security_server.serverconf.store import ServerConfError

MAX_CERTIFICATE_BYTES = 64 * 1024
"""The largest certificate (or chain) file imported."""


class KeyNotFound(ServerConfError):
    """The imported certificate is not for the internal TLS key (X-Road answers 400 ``key_not_found``)."""

    api_code = "key_not_found"


class InvalidDistinguishedName(ServerConfError):
    """The subject asked for in a certificate request is not a distinguished name."""

    api_code = "invalid_distinguished_name"


def _now() -> datetime:
    return datetime.now(UTC)


def identity(server_dir: ServerDirectory) -> TlsIdentity:
    """The internal TLS key and certificate, made first when missing."""
    return ensure_internal_certificate(server_dir.path, _now())


def certificate(server_dir: ServerDirectory) -> x509.Certificate:
    """The internal TLS certificate."""
    return identity(server_dir).cert


def export(server_dir: ServerDirectory) -> bytes:
    """X-Road's ``certs.tar.gz``: the certificate as ``cert.pem`` (PEM) and ``cert.cer`` (DER)."""
    cert = certificate(server_dir)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in (
            ("./cert.pem", cert.public_bytes(serialization.Encoding.PEM)),
            ("./cert.cer", cert.public_bytes(serialization.Encoding.DER)),
        ):
            member = tarfile.TarInfo(name)
            member.size, member.mtime, member.mode = len(data), int(_now().timestamp()), 0o644
            archive.addfile(member, io.BytesIO(data))
    return buffer.getvalue()


def regenerate(server_dir: ServerDirectory) -> x509.Certificate:
    """A new internal TLS key and self-signed certificate in place of the old ones (X-Road's "generate")."""
    return new_internal_identity(server_dir.path, _now()).cert


_EXTRA_NAMES = {
    name: oid
    for oid, names in (
        (NameOID.SERIAL_NUMBER, ("serialNumber", "SERIALNUMBER", "SN")),
        (NameOID.EMAIL_ADDRESS, ("E", "EMAILADDRESS", "emailAddress")),
        (NameOID.GIVEN_NAME, ("GIVENNAME", "givenName")),
        (NameOID.SURNAME, ("SURNAME", "surname")),
    )
    for name in names
}
"""Attribute names X-Road's subjects use (BouncyCastle's) beyond RFC 4514's."""
_UNESCAPED_COMMA = re.compile(r"(?<!\\),")


def _subject(name: str) -> x509.Name:
    """X-Road's subject text, ``C=FI, O=X-Road Test, CN=...`` (BouncyCastle's ``X500Name``): attributes in the
    order written, each read as RFC 4514 reads one."""
    if not isinstance(name, str) or not name.strip() or len(name) > 255:
        raise InvalidDistinguishedName("the subject is a distinguished name of 1-255 characters")
    rdns: list[x509.RelativeDistinguishedName] = []
    for part in _UNESCAPED_COMMA.split(name):
        text = part.strip()
        if "=" not in text or not text.split("=", 1)[0].strip() or not text.split("=", 1)[1].strip():
            raise InvalidDistinguishedName(f"not an attribute: {text!r}")
        kind, value = (side.strip() for side in text.split("=", 1))
        try:
            rdns += x509.Name.from_rfc4514_string(f"{kind}={value}", _EXTRA_NAMES).rdns
        except ValueError as err:
            raise InvalidDistinguishedName(f"not an attribute: {text!r}") from err
    return x509.Name(rdns)


def certificate_request(server_dir: ServerDirectory, name: str) -> bytes:
    """A PKCS#10 request (DER) for the internal TLS key with subject ``name``."""
    subject = _subject(name)
    key = identity(server_dir).key
    try:
        request = x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, hashes.SHA256())
    except ValueError as err:
        raise InvalidDistinguishedName(f"not a usable subject: {err}") from err
    return request.public_bytes(serialization.Encoding.DER)


def _certificates(data: bytes) -> list[x509.Certificate]:
    if not isinstance(data, (bytes, bytearray)) or not data or len(data) > MAX_CERTIFICATE_BYTES:
        raise InvalidCertificate("the body is a PEM or DER certificate (or PEM chain) of at most 64 KiB")
    try:
        if bytes(data).lstrip().startswith(b"-----"):
            return x509.load_pem_x509_certificates(bytes(data))
        return [x509.load_der_x509_certificate(bytes(data))]
    except ValueError as err:
        raise InvalidCertificate("not an X.509 certificate in PEM or DER") from err


def import_certificate(server_dir: ServerDirectory, data: bytes) -> x509.Certificate:
    """Keep a CA-signed certificate (or chain) for the internal TLS key as the internal TLS certificate (X-Road
    ``importInternalTlsCertificate``): :class:`InvalidCertificate` when it is none, :class:`KeyNotFound` when no
    certificate in it is for the key, :class:`CertificateExists` when it is the one in use. The key's certificate."""
    chain = _certificates(data)
    current = identity(server_dir)
    public = current.key.public_key()
    matching = [c for c in chain if c.public_key() == public]
    if not matching:
        raise KeyNotFound("the imported certificate does not match the internal TLS key")
    if chain == [current.cert, *current.chain]:
        raise CertificateExists("the imported certificate is the internal TLS certificate already")
    leaf = matching[0]
    write_internal_certificate(server_dir.path, [leaf, *(c for c in chain if c is not leaf)])
    return leaf
