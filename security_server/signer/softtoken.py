"""The soft token: the security server's private keys and their certificates, kept as files in one directory.

X-Road's signer holds one authentication key per security server and signing keys per member, on a software
token or an HSM (XROAD-REFERENCE.md §2.1 "Keys/certs"; UG-SS §3, §5). fedbus keeps keys in files (PKCS#11 may
come later). For a key with id ``K``, the directory (mode 0700) holds:

=================  ===========================================================================
``K.key.pem``      the private key, unencrypted PKCS#8 PEM, mode 0600
``K.json``         what the key is for: ``kind`` (auth or sign), ``owner`` (the security server
                   for auth, the member for sign, display form) and ``algorithm``; written last,
                   so a key appears only once it is complete
``K.cert.pem``     its certificate once imported, PEM
=================  ===========================================================================

The key id is the first 40 hex digits of the SHA-256 of the key's SubjectPublicKeyInfo, so an imported
certificate finds its key by its public key alone. Every file is written whole: a temporary file beside it,
fsynced, then ``os.replace``. A key file that group or others may read is refused rather than used.

Certificates must fit the key: a signing key takes a certificate with keyUsage nonRepudiation whose subject
names the key's member, an authentication key one for its security server (security_server/core/certprofile.py);
an expired certificate, or one for no key on the token, is refused.
"""

from __future__ import annotations

import enum
import hashlib
import json
import re
import stat
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TypeAlias

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from security_server.core.certprofile import (
    member_from_signing_cert,
    member_from_signing_subject,
    server_from_auth_cert,
    server_from_auth_subject,
)
from security_server.core.errors import (
    CertValidation,
    ClientFault,
    ConfigurationError,
    InvalidClientIdentifier,
    Origin,
    ServerFault,
)
from security_server.core.identifiers import ClientId, SecurityServerId
from security_server.core.trust import is_auth_cert, is_signing_cert
from security_server.edge.atomic_file import PRIVATE_MODE, write_atomically

PrivateKey: TypeAlias = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
"""The private keys the soft token makes."""

FORMAT = 1
KEY_SUFFIX = ".key.pem"
META_SUFFIX = ".json"
CERT_SUFFIX = ".cert.pem"
MAX_CERT_BYTES = 64 * 1024
_KEY_ID = re.compile(r"[0-9a-f]{40}")


class SoftTokenError(ClientFault):
    """A token operation that cannot be done with what the administrator gave; nothing was changed."""

    code = "invalid_request"
    default_origin = Origin.SIGNER


class KeyNotFound(SoftTokenError):
    """No key with that id is on the token."""

    code = "key_not_found"


class CertImportFailed(SoftTokenError):
    """A certificate that cannot be read, or that belongs to no key (or another owner) on the token."""

    code = "cert_import_failed"


class CertExists(SoftTokenError):
    """The certificate is already on the token."""

    code = "cert_exists"


class WrongCertUsage(SoftTokenError):
    """A signing certificate for an authentication key, or the other way round."""

    code = "wrong_cert_usage"


class KeyNotAvailable(ServerFault):
    """No usable key and certificate for what the proxy must do (sign for a member, authenticate the server)."""

    code = "key_not_found"
    default_origin = Origin.SIGNER


class KeyKind(enum.StrEnum):
    """What a key is for."""

    AUTH = "auth"
    SIGN = "sign"


class KeyAlgorithm(enum.StrEnum):
    """The key types the token makes (RSA 2048 is X-Road's default; 3072 for EE/FI; EC P-256 allowed)."""

    RSA2048 = "rsa2048"
    RSA3072 = "rsa3072"
    EC_P256 = "ec-p256"


def _generate(algorithm: KeyAlgorithm) -> PrivateKey:
    if algorithm is KeyAlgorithm.RSA2048:
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if algorithm is KeyAlgorithm.RSA3072:
        return rsa.generate_private_key(public_exponent=65537, key_size=3072)
    return ec.generate_private_key(ec.SECP256R1())


def key_id_of(public_key: Any) -> str:
    """The id of the key whose public half is ``public_key``: SHA-256 of its SubjectPublicKeyInfo, 40 hex digits."""
    spki = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(spki).hexdigest()[:40]


def _check_key_id(key_id: object) -> str:
    if not isinstance(key_id, str) or not _KEY_ID.fullmatch(key_id):
        raise KeyNotFound("a key id is 40 lower-case hex digits")
    return key_id


def _owner_text(owner: ClientId | SecurityServerId) -> str:
    return owner.to_display()


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """One key on the token: its id, what it is for, whose it is, its algorithm and its certificate (if any)."""

    key_id: str
    kind: KeyKind
    owner: ClientId | SecurityServerId
    algorithm: KeyAlgorithm
    cert: x509.Certificate | None = None

    def __post_init__(self) -> None:
        _check_key_id(self.key_id)
        _check_owner(self.kind, self.owner)


def _check_owner(kind: KeyKind, owner: object) -> None:
    if kind is KeyKind.AUTH and not isinstance(owner, SecurityServerId):
        raise SoftTokenError("an authentication key belongs to a security server")
    if kind is KeyKind.SIGN and (not isinstance(owner, ClientId) or owner.subsystem_code is not None):
        raise SoftTokenError("a signing key belongs to a member, not a subsystem")


class SoftToken:
    """Keys and certificates in one directory (see the module docstring for the files)."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        try:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as err:
            raise ConfigurationError(f"cannot create the key directory {self.directory}: {err}") from err

    # --- files -----------------------------------------------------------------------------------------------

    def _path(self, key_id: str, suffix: str) -> Path:
        return self.directory / f"{key_id}{suffix}"

    def _write(self, path: Path, data: bytes) -> None:
        try:
            write_atomically(path, data, PRIVATE_MODE)
        except OSError as err:
            raise ConfigurationError(f"cannot write {path}: {err}") from err

    def _read(self, path: Path) -> bytes:
        try:
            return path.read_bytes()
        except OSError as err:
            raise ConfigurationError(f"cannot read {path}: {err}") from err

    def _info(self, key_id: str) -> KeyInfo:
        meta_path = self._path(key_id, META_SUFFIX)
        if not meta_path.is_file():
            raise KeyNotFound(f"no key {key_id} on this token")
        try:
            meta = json.loads(self._read(meta_path))
            if not isinstance(meta, dict) or meta.get("format") != FORMAT:
                raise ValueError("unknown format")
            kind = KeyKind(meta["kind"])
            owner: ClientId | SecurityServerId = (
                SecurityServerId.parse_display(meta["owner"]) if kind is KeyKind.AUTH else ClientId.parse_display(meta["owner"])
            )
            info = KeyInfo(key_id, kind, owner, KeyAlgorithm(meta["algorithm"]))
        except (ValueError, KeyError, TypeError, InvalidClientIdentifier, SoftTokenError) as err:
            raise ConfigurationError(f"key metadata {meta_path} is malformed: {err}") from err
        cert_path = self._path(key_id, CERT_SUFFIX)
        if cert_path.is_file():
            try:
                cert = x509.load_pem_x509_certificate(self._read(cert_path))
            except ValueError as err:
                raise ConfigurationError(f"certificate file {cert_path} is malformed: {err}") from err
            return KeyInfo(info.key_id, info.kind, info.owner, info.algorithm, cert)
        return info

    def _private_key(self, key_id: str) -> PrivateKey:
        path = self._path(key_id, KEY_SUFFIX)
        try:
            mode = path.stat().st_mode
        except OSError as err:
            raise ConfigurationError(f"cannot read the key file {path}: {err}") from err
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise ConfigurationError(f"key file {path} may be read by others (mode {stat.S_IMODE(mode):o}); chmod 600 it")
        try:
            key = serialization.load_pem_private_key(self._read(path), password=None)
        except (ValueError, TypeError) as err:
            raise ConfigurationError(f"key file {path} is malformed: {err}") from err
        if not isinstance(key, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey)):
            raise ConfigurationError(f"key file {path} holds an unsupported key type")
        if key_id_of(key.public_key()) != key_id:
            raise ConfigurationError(f"key file {path} holds a different key than its name says")
        return key

    # --- operations ------------------------------------------------------------------------------------------

    def generate(
        self,
        kind: KeyKind,
        owner: ClientId | SecurityServerId,
        algorithm: KeyAlgorithm = KeyAlgorithm.RSA2048,
    ) -> str:
        """Make a new key for ``owner`` (a server for ``auth``, a member for ``sign``) and return its id."""
        try:
            kind = KeyKind(kind)
            algorithm = KeyAlgorithm(algorithm)
        except ValueError as err:
            raise SoftTokenError(f"unknown key kind or algorithm: {err}") from err
        _check_owner(kind, owner)
        key = _generate(algorithm)
        key_id = key_id_of(key.public_key())
        info = KeyInfo(key_id, kind, owner, algorithm)
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        meta = {"format": FORMAT, "kind": info.kind.value, "owner": _owner_text(owner), "algorithm": algorithm.value}
        self._write(self._path(key_id, KEY_SUFFIX), pem)
        self._write(self._path(key_id, META_SUFFIX), json.dumps(meta, sort_keys=True).encode("utf-8") + b"\n")
        return key_id

    def key(self, key_id: str) -> KeyInfo:
        """The key ``key_id``; :class:`KeyNotFound` if it is not on the token."""
        return self._info(_check_key_id(key_id))

    def list(self) -> tuple[KeyInfo, ...]:
        """Every complete key on the token, auth keys first, then by owner and id."""
        found = []
        for path in self.directory.glob(f"*{META_SUFFIX}"):
            key_id = path.name[: -len(META_SUFFIX)]
            if _KEY_ID.fullmatch(key_id):
                found.append(self._info(key_id))
        return tuple(sorted(found, key=lambda k: (k.kind is not KeyKind.AUTH, k.owner.to_display(), k.key_id)))

    def csr(self, key_id: str, subject: x509.Name) -> bytes:
        """A PKCS#10 request (PEM) signed by key ``key_id`` for ``subject``, which must name the key's owner.

        Build the subject with ``certprofile.signing_subject`` (sign keys) or ``certprofile.auth_subject`` (auth).
        """
        info = self.key(key_id)
        if not isinstance(subject, x509.Name):
            raise SoftTokenError("the request subject must be an x509.Name")
        named: ClientId | SecurityServerId = (
            server_from_auth_subject(subject) if info.kind is KeyKind.AUTH else member_from_signing_subject(subject)
        )
        if named != info.owner:
            raise SoftTokenError(f"the subject names {named}, but key {key_id} belongs to {info.owner}")
        key = self._private_key(key_id)
        request = x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, hashes.SHA256())
        return request.public_bytes(serialization.Encoding.PEM)

    def import_cert(self, data: bytes, *, now: datetime) -> str:
        """Store a certificate (PEM or DER) beside the key with its public key; return that key's id.

        Refused: unreadable data or more than one certificate, no key with that public key, a certificate
        expired at ``now``, one of the wrong kind for the key or naming another owner, or one already stored.
        """
        cert = self._load_cert(data)
        key_id = key_id_of(cert.public_key())
        if not self._path(key_id, META_SUFFIX).is_file():
            raise CertImportFailed("no key on this token matches the certificate's public key")
        info = self._info(key_id)
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        if cert.not_valid_after_utc < now:
            raise CertValidation(
                "the certificate has expired", reason=f"certificate {cert.serial_number:x} expired {cert.not_valid_after_utc}"
            )
        owner: ClientId | SecurityServerId
        if info.kind is KeyKind.AUTH:
            if not is_auth_cert(cert):
                raise WrongCertUsage("key is an authentication key, but the certificate is not an authentication certificate")
            owner = server_from_auth_cert(cert)
        else:
            if not is_signing_cert(cert):
                raise WrongCertUsage("key is a signing key, but the certificate is not a signing certificate")
            owner = member_from_signing_cert(cert)
        if owner != info.owner:
            raise CertImportFailed(f"the certificate is for {owner}, but key {key_id} belongs to {info.owner}")
        if info.cert is not None and info.cert == cert:
            raise CertExists(f"this certificate is already on key {key_id}")
        self._write(self._path(key_id, CERT_SUFFIX), cert.public_bytes(serialization.Encoding.PEM))
        return key_id

    @staticmethod
    def _load_cert(data: bytes) -> x509.Certificate:
        if not isinstance(data, (bytes, bytearray)) or not data:
            raise CertImportFailed("no certificate given")
        if len(data) > MAX_CERT_BYTES:
            raise CertImportFailed(f"certificate file is larger than {MAX_CERT_BYTES} bytes")
        try:
            if data.lstrip().startswith(b"-----BEGIN"):
                certs = x509.load_pem_x509_certificates(bytes(data))
            else:
                certs = [x509.load_der_x509_certificate(bytes(data))]
        except ValueError as err:
            raise CertImportFailed(f"not a certificate (PEM or DER): {err}") from err
        if len(certs) != 1:
            raise CertImportFailed(f"expected one certificate, found {len(certs)}")
        return certs[0]

    # --- what the proxies use ----------------------------------------------------------------------------------

    def _usable(
        self, kind: KeyKind, owner: ClientId | SecurityServerId | None, now: datetime | None
    ) -> tuple[PrivateKey, x509.Certificate]:
        candidates = [
            (k.cert, k.key_id)
            for k in self.list()
            if k.kind is kind
            and k.cert is not None
            and (owner is None or k.owner == owner)
            and (now is None or k.cert.not_valid_before_utc <= now <= k.cert.not_valid_after_utc)
        ]
        if not candidates:
            whose = f" for {owner}" if owner is not None else ""
            raise KeyNotAvailable(f"no {kind.value} key with a valid certificate{whose} on the token")
        # The newest certificate wins (a renewed certificate takes over from the old one).
        cert, key_id = max(candidates, key=lambda pair: (pair[0].not_valid_before_utc, pair[1]))
        return self._private_key(key_id), cert

    def signing_key(self, member: ClientId, *, now: datetime | None = None) -> tuple[PrivateKey, x509.Certificate]:
        """The signing key and certificate of ``member`` (a subsystem signs with its member's key).

        With ``now``, only a certificate valid at ``now`` is chosen; among several, the newest.
        """
        if not isinstance(member, ClientId):
            raise SoftTokenError("signing keys are looked up by member")
        return self._usable(KeyKind.SIGN, member.member, now)

    def auth_key(self, *, now: datetime | None = None) -> tuple[PrivateKey, x509.Certificate]:
        """This server's authentication key and certificate (the newest valid one if there are several)."""
        return self._usable(KeyKind.AUTH, None, now)
