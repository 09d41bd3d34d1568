"""The server's own self-signed TLS certificates, made in the server directory when missing: the management API's
and the internal TLS certificate.

X-Road makes its admin UI's certificate at install time; we make ours at the first start of the API (or at
``init`` through :func:`ensure_certificate`). It names ``localhost``, the loopback addresses and the configured
interface, so that a client on the host can pin it. The key never leaves the directory (mode 0600).

The *internal* TLS certificate (X-Road's ``internal.crt``/``internal.key``, UG-SS "Security server TLS
certificate") is what the client proxy's HTTPS port serves to the information systems, and what the server proxy
presents to a provider's ``https`` service: :func:`ensure_internal_certificate` makes it the same way (for server
and client authentication), :func:`write_internal_certificate` replaces it (a CA-signed certificate, or a chain,
for the same key) and :func:`new_internal_identity` makes a new key and certificate.
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Iterator

import structlog
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from security_server.edge.atomic_file import PRIVATE_MODE, PUBLIC_MODE, write_atomically

KEY_NAME = "management-tls.key"
CERT_NAME = "management-tls.crt"
INTERNAL_KEY_NAME = "internal-tls.key"
INTERNAL_CERT_NAME = "internal-tls.crt"
"""The internal TLS key and certificate (PEM; the certificate file may hold a chain, leaf first)."""
INTERNAL_LOCK_NAME = "internal-tls.lock"
VALIDITY = timedelta(days=3650)
log = structlog.get_logger(__name__)
MANAGEMENT_NAME = "fedbus management API"
INTERNAL_NAME = "fedbus security server"


@dataclass(frozen=True, slots=True)
class TlsIdentity:
    """The key and certificate the API serves."""

    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate
    chain: tuple[x509.Certificate, ...] = ()
    """Certificates above ``cert`` (an imported CA-signed certificate's), sent with it."""


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


def make_certificate(
    key: ec.EllipticCurvePrivateKey, interface: str, now: datetime, *, common_name: str = MANAGEMENT_NAME,
    client_auth: bool = False,
) -> x509.Certificate:
    """A self-signed server certificate for ``key`` (also for client authentication with ``client_auth``)."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    usages = [ExtendedKeyUsageOID.SERVER_AUTH, *([ExtendedKeyUsageOID.CLIENT_AUTH] if client_auth else [])]
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
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .sign(key, hashes.SHA256())
    )


def load_identity(key_path: Path, cert_path: Path) -> TlsIdentity:
    """The key and certificate (with the chain after it, if any) kept in these PEM files."""
    key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{key_path} is not an EC key")
    certs = x509.load_pem_x509_certificates(cert_path.read_bytes())
    return TlsIdentity(key, certs[0], tuple(certs[1:]))


def _new_identity(
    key_path: Path, cert_path: Path, interface: str, now: datetime, *, common_name: str, client_auth: bool
) -> TlsIdentity:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = make_certificate(key, interface, now, common_name=common_name, client_auth=client_auth)
    write_atomically(
        key_path,
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
        PRIVATE_MODE,
    )
    write_atomically(cert_path, cert.public_bytes(serialization.Encoding.PEM), PUBLIC_MODE)
    return TlsIdentity(key, cert)


def ensure_certificate(directory: Path, interface: str, now: datetime) -> TlsIdentity:
    """Load the key and certificate from ``directory``, making both first when either is missing."""
    key_path, cert_path = directory / KEY_NAME, directory / CERT_NAME
    if key_path.is_file() and cert_path.is_file():
        return load_identity(key_path, cert_path)
    return _new_identity(key_path, cert_path, interface, now, common_name=MANAGEMENT_NAME, client_auth=False)


@contextlib.contextmanager
def _internal_lock(directory: Path) -> Iterator[None]:
    """Hold the internal TLS files' lock: the worker processes of one server, its API and its CLI may each make or
    replace them, and the key and certificate must stay a pair."""
    with open(directory / INTERNAL_LOCK_NAME, "a+b") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def ensure_internal_certificate(directory: Path, now: datetime, interface: str = "") -> TlsIdentity:
    """The internal TLS key and certificate of the server in ``directory``, made first when either is missing."""
    key_path, cert_path = directory / INTERNAL_KEY_NAME, directory / INTERNAL_CERT_NAME
    if key_path.is_file() and cert_path.is_file():
        return load_identity(key_path, cert_path)
    with _internal_lock(directory):
        if key_path.is_file() and cert_path.is_file():  # another process made them meanwhile
            return load_identity(key_path, cert_path)
        return _new_identity(key_path, cert_path, interface, now, common_name=INTERNAL_NAME, client_auth=True)


def new_internal_identity(directory: Path, now: datetime, interface: str = "") -> TlsIdentity:
    """A new internal TLS key and self-signed certificate, replacing the old ones (X-Road's "generate")."""
    with _internal_lock(directory):
        return _new_identity(
            directory / INTERNAL_KEY_NAME, directory / INTERNAL_CERT_NAME, interface, now,
            common_name=INTERNAL_NAME, client_auth=True,
        )


def write_internal_certificate(directory: Path, chain: list[x509.Certificate]) -> None:
    """Keep ``chain`` (leaf first; its key the internal key's, checked by the caller) as the internal certificate."""
    data = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in chain)
    with _internal_lock(directory):
        write_atomically(directory / INTERNAL_CERT_NAME, data, PUBLIC_MODE)


class InternalIdentity:
    """The internal TLS key and certificate of a server directory as they are now: made when first asked for if
    missing, read again when the files change (one ``stat`` each per call). A key and certificate that do not match
    (one replaced, the other not yet) leave the last good pair in use, logged."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._generation: tuple[tuple[int, int, int], ...] | None = None
        self._identity: TlsIdentity | None = None

    def _current_generation(self) -> tuple[tuple[int, int, int], ...]:
        found = []
        for name in (INTERNAL_KEY_NAME, INTERNAL_CERT_NAME):
            try:
                stat = os.stat(self.directory / name)
            except OSError:
                found.append((0, 0, 0))
            else:
                found.append((stat.st_ino, stat.st_mtime_ns, stat.st_size))
        return tuple(found)

    def current(self) -> TlsIdentity:
        """The key and certificate to use now."""
        if self._identity is None:
            self._identity = ensure_internal_certificate(self.directory, datetime.now(UTC))
            self._generation = self._current_generation()
            return self._identity
        generation = self._current_generation()
        if generation != self._generation:
            try:
                identity = load_identity(self.directory / INTERNAL_KEY_NAME, self.directory / INTERNAL_CERT_NAME)
                if identity.cert.public_key() != identity.key.public_key():
                    raise ValueError("the certificate is not for the key")
            except Exception as err:  # noqa: BLE001 - half-written or mismatched files: keep the last good pair
                log.warning("internal_tls_reload_failed", error=repr(err))
            else:
                self._generation, self._identity = generation, identity
                log.info("internal_tls_certificate_changed")
        return self._identity

