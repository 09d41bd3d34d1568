"""The management API's own TLS certificate: self-signed, made in the server directory when missing.

X-Road makes its admin UI's certificate at install time; we make ours at the first start of the API (or at
``init`` through :func:`ensure_certificate`). It names ``localhost``, the loopback addresses and the configured
interface, so that a client on the host can pin it. The key never leaves the directory (mode 0600).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from security_server.edge.atomic_file import PRIVATE_MODE, PUBLIC_MODE, write_atomically

KEY_NAME = "management-tls.key"
CERT_NAME = "management-tls.crt"
VALIDITY = timedelta(days=3650)


@dataclass(frozen=True, slots=True)
class TlsIdentity:
    """The key and certificate the API serves."""

    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate


def _names(interface: str) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = [
        x509.DNSName("localhost"),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        x509.IPAddress(ipaddress.ip_address("::1")),
    ]
    try:
        address = ipaddress.ip_address(interface)
    except ValueError:
        if interface and interface != "localhost":
            names.append(x509.DNSName(interface))
        return names
    if not address.is_unspecified and address not in (ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1")):
        names.append(x509.IPAddress(address))
    return names


def make_certificate(key: ec.EllipticCurvePrivateKey, interface: str, now: datetime) -> x509.Certificate:
    """A self-signed server certificate for ``key``."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fedbus management API")])
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.SubjectAlternativeName(_names(interface)), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )


def ensure_certificate(directory: Path, interface: str, now: datetime) -> TlsIdentity:
    """Load the key and certificate from ``directory``, making both first when either is missing."""
    key_path, cert_path = directory / KEY_NAME, directory / CERT_NAME
    if key_path.is_file() and cert_path.is_file():
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError(f"{key_path} is not an EC key")
        return TlsIdentity(key, x509.load_pem_x509_certificate(cert_path.read_bytes()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = make_certificate(key, interface, now)
    write_atomically(
        key_path,
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
        PRIVATE_MODE,
    )
    write_atomically(cert_path, cert.public_bytes(serialization.Encoding.PEM), PUBLIC_MODE)
    return TlsIdentity(key, cert)
