"""The soft token: the security server's private keys and their certificates, kept as files in one directory.

X-Road's signer holds one authentication key per security server and signing keys per member, on a software
token or an HSM (XROAD-REFERENCE.md §2.1 "Keys/certs"; UG-SS §3, §5). fedbus keeps them in files here, or in an
HSM (security_server/signer/pkcs11_token.py); both are a :class:`~security_server.signer.token.Token`. For a key
with id ``K``, the directory (mode 0700) holds:

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

import json
import stat
from datetime import datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from security_server.core.errors import ConfigurationError, InvalidClientIdentifier
from security_server.core.identifiers import ClientId, SecurityServerId
from security_server.edge.atomic_file import PRIVATE_MODE, write_atomically
from security_server.signer.token import CertExists as CertExists
from security_server.signer.token import CertImportFailed as CertImportFailed
from security_server.signer.token import KeyAlgorithm as KeyAlgorithm
from security_server.signer.token import KeyInfo as KeyInfo
from security_server.signer.token import KeyKind as KeyKind
from security_server.signer.token import KeyNotAvailable as KeyNotAvailable
from security_server.signer.token import KeyNotFound as KeyNotFound
from security_server.signer.token import PrivateKey as PrivateKey
from security_server.signer.token import SoftTokenError as SoftTokenError
from security_server.signer.token import TokenStatus
from security_server.signer.token import WrongCertUsage as WrongCertUsage
from security_server.signer.token import (
    check_cert_for_key,
    check_csr_subject,
    check_key_id,
    check_request,
    choose_usable,
    is_key_id,
    load_cert,
    sorted_keys,
)
from security_server.signer.token import key_id_of as key_id_of

FORMAT = 1
KEY_SUFFIX = ".key.pem"
META_SUFFIX = ".json"
CERT_SUFFIX = ".cert.pem"
SOFT_TOKEN_NAME = "soft"
"""The name the soft token goes by beside PKCS#11 tokens (X-Road: token ``0``, "softToken-0")."""


def _generate(algorithm: KeyAlgorithm) -> PrivateKey:
    if algorithm is KeyAlgorithm.RSA2048:
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if algorithm is KeyAlgorithm.RSA3072:
        return rsa.generate_private_key(public_exponent=65537, key_size=3072)
    return ec.generate_private_key(ec.SECP256R1())


def _owner_text(owner: ClientId | SecurityServerId) -> str:
    return owner.to_display()


class SoftToken:
    """Keys and certificates in one directory (see the module docstring for the files)."""

    name = SOFT_TOKEN_NAME

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        try:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as err:
            raise ConfigurationError(f"cannot create the key directory {self.directory}: {err}") from err

    def status(self) -> TokenStatus:
        """Logged in while its directory is there (the soft token has no PIN), else not present."""
        return TokenStatus.LOGGED_IN if self.directory.is_dir() else TokenStatus.NOT_PRESENT

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
        kind, algorithm = check_request(kind, owner, algorithm)
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
        return self._info(check_key_id(key_id))

    def list(self) -> tuple[KeyInfo, ...]:
        """Every complete key on the token, auth keys first, then by owner and id."""
        found = []
        for path in self.directory.glob(f"*{META_SUFFIX}"):
            key_id = path.name[: -len(META_SUFFIX)]
            if is_key_id(key_id):
                found.append(self._info(key_id))
        return sorted_keys(found)

    def csr(self, key_id: str, subject: x509.Name) -> bytes:
        """A PKCS#10 request (PEM) signed by key ``key_id`` for ``subject``, which must name the key's owner.

        Build the subject with ``certprofile.signing_subject`` (sign keys) or ``certprofile.auth_subject`` (auth).
        """
        check_csr_subject(self.key(key_id), subject)
        key = self._private_key(key_id)
        request = x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, hashes.SHA256())
        return request.public_bytes(serialization.Encoding.PEM)

    def import_cert(self, data: bytes, *, now: datetime) -> str:
        """Store a certificate (PEM or DER) beside the key with its public key; return that key's id.

        Refused: unreadable data or more than one certificate, no key with that public key, a certificate
        expired at ``now``, one of the wrong kind for the key or naming another owner, or one already stored.
        """
        cert = load_cert(data)
        key_id = key_id_of(cert.public_key())
        if not self._path(key_id, META_SUFFIX).is_file():
            raise CertImportFailed("no key on this token matches the certificate's public key")
        check_cert_for_key(self._info(key_id), cert, now)
        self._write(self._path(key_id, CERT_SUFFIX), cert.public_bytes(serialization.Encoding.PEM))
        return key_id

    # --- what the proxies use ----------------------------------------------------------------------------------

    def _usable(
        self, kind: KeyKind, owner: ClientId | SecurityServerId | None, now: datetime | None
    ) -> tuple[PrivateKey, x509.Certificate]:
        key_id, cert = choose_usable(self.list(), kind, owner, now)
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
