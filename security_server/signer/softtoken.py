"""The soft token: the security server's private keys and their certificates, kept as files in one directory.

X-Road's signer holds one authentication key per security server and signing keys per member, on a software
token or an HSM (XROAD-REFERENCE.md §2.1 "Keys/certs"; UG-SS §3, §5). fedbus keeps them in files here, or in an
HSM (security_server/signer/pkcs11_token.py); both are a :class:`~security_server.signer.token.Token`. For a key
with id ``K``, the directory (mode 0700) holds:

=================  ===========================================================================
``K.key.pem``      the private key, PKCS#8 PEM, mode 0600: encrypted under the token PIN once
                   a PIN is set (security_server/signer/softtoken_pin.py), in clear before
``K.json``         what the key is for: ``kind`` (auth or sign), ``owner`` (the security server
                   for auth, the member for sign, display form) and ``algorithm``; optionally its
                   friendly ``name`` and ``cert_active`` (false: the certificate is disabled);
                   written last, so a key appears only once it is complete
``K.cert.pem``     its certificate once imported, PEM
``pin.json``       once a PIN is set: the KDF salt and parameters and the PIN's verifier
=================  ===========================================================================

**The PIN.** A token without ``pin.json`` (made before PINs, or initialised without one) works as before: always
logged in, its keys in clear. Once a PIN is set (:meth:`SoftToken.set_pin`, at initialisation or later) every key
is encrypted under it and the token is logged out until :meth:`SoftToken.login`; while logged out, everything that
needs a private key (signing, the TLS key, a CSR, a new key) is refused with X-Road's ``token_not_active``.

The key id is the first 40 hex digits of the SHA-256 of the key's SubjectPublicKeyInfo, so an imported
certificate finds its key by its public key alone. Every file is written whole: a temporary file beside it,
fsynced, then ``os.replace``. A key file that group or others may read is refused rather than used.

Certificates must fit the key: a signing key takes a certificate with keyUsage nonRepudiation whose subject
names the key's member, an authentication key one for its security server (security_server/core/certprofile.py);
an expired certificate, or one for no key on the token, is refused.
"""

from __future__ import annotations

import hmac
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
from security_server.signer.softtoken_pin import (
    LOGINS,
    PIN_FILE,
    Login,
    PinRecord,
    key_password,
    new_pin_record,
    secret_for,
    verifier_of,
)
from security_server.signer.token import CertExists as CertExists
from security_server.signer.token import CertImportFailed as CertImportFailed
from security_server.signer.token import KeyAlgorithm as KeyAlgorithm
from security_server.signer.token import KeyInfo as KeyInfo
from security_server.signer.token import KeyKind as KeyKind
from security_server.signer.token import KeyNotAvailable as KeyNotAvailable
from security_server.signer.token import KeyNotFound as KeyNotFound
from security_server.signer.token import PrivateKey as PrivateKey
from security_server.signer.token import SoftTokenError as SoftTokenError
from security_server.signer.token import PinIncorrect as PinIncorrect
from security_server.signer.token import TokenNotActive as TokenNotActive
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
NEXT_KEY_SUFFIX = ".key.pem.next"
"""A key re-encrypted under a new PIN, waiting for ``pin.json`` to change (see :meth:`SoftToken.set_pin`)."""
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


def _pem(key: PrivateKey, secret: bytes | None) -> bytes:
    """The key as PKCS#8 PEM: encrypted under the PIN's secret (PBES2 with AES-256-CBC) when there is one."""
    if secret is None:
        return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption())
    # The secret is 256 bits out of scrypt, so the PBKDF2 that PKCS#8's PBES2 runs on top needs no work factor
    # of its own: the PIN's brute-force cost is scrypt's (softtoken_pin.py).
    encryption = serialization.BestAvailableEncryption(key_password(secret))
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)


def _is_encrypted(pem: bytes) -> bool:
    return b"-----BEGIN ENCRYPTED PRIVATE KEY-----" in pem


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
        """Not present without its directory; else logged in when it has no PIN or was logged in, logged out else."""
        if not self.directory.is_dir():
            return TokenStatus.NOT_PRESENT
        if not self.has_pin() or self._current_login() is not None:
            return TokenStatus.LOGGED_IN
        return TokenStatus.LOGGED_OUT

    # --- the PIN -----------------------------------------------------------------------------------------------

    @property
    def pin_path(self) -> Path:
        """``pin.json``: present once the token has a PIN."""
        return self.directory / PIN_FILE

    def has_pin(self) -> bool:
        """Whether a PIN was set (its keys are encrypted under it and it must be logged in to)."""
        return self.pin_path.is_file()

    def pin_incorrect(self) -> bool:
        """Whether the last PIN given in this process was wrong (X-Road's token status ``USER_PIN_INCORRECT``)."""
        return LOGINS.pin_incorrect(self.directory)

    def _pin_record(self) -> PinRecord:
        return PinRecord.parse(self._read(self.pin_path), self.pin_path)

    def _check_pin(self, pin: str) -> bytes:
        try:
            secret = secret_for(self._pin_record(), pin, self.name)
        except PinIncorrect:
            LOGINS.mark_incorrect(self.directory, True)
            raise
        return secret

    def login(self, pin: str) -> None:
        """Unlock the keys with ``pin`` for this process (:class:`PinIncorrect` when wrong; a token without a PIN
        is always logged in, so :class:`SoftTokenError`)."""
        if not self.has_pin():
            raise SoftTokenError(f"token {self.name} has no PIN: it is always logged in")
        LOGINS.set(self.directory, self._check_pin(pin), self._pin_state())

    def logout(self) -> None:
        """Forget the PIN's secret and every decrypted key (:class:`SoftTokenError` for a token without a PIN)."""
        if not self.has_pin():
            raise SoftTokenError(f"token {self.name} has no PIN: it cannot be logged out")
        LOGINS.forget(self.directory)

    def set_pin(self, new_pin: str, old_pin: str | None = None) -> None:
        """Set the PIN (``old_pin`` None: the token has none yet) or change it; every key is encrypted under the new
        one. The token is logged in with the new PIN afterwards.

        Every key is first written re-encrypted beside its file (``K.key.pem.next``); then ``pin.json`` changes (the
        commit point); then each ``.next`` file replaces its key file. A crash anywhere leaves each key readable
        under the PIN in force: before the commit from the key file, after it from the ``.next`` file."""
        if self.has_pin():
            if old_pin is None:
                raise SoftTokenError(f"token {self.name} has a PIN already: give the old one to change it")
            old_secret: bytes | None = self._check_pin(old_pin)
        elif old_pin is not None:
            raise SoftTokenError(f"token {self.name} has no PIN yet")
        else:
            old_secret = None
        record, secret = new_pin_record(new_pin)
        for stale in self.directory.glob(f"*{NEXT_KEY_SUFFIX}"):
            stale.unlink(missing_ok=True)
        keys = self.list()
        for info in keys:
            key = self._load_key(info.key_id, [old_secret, None])
            self._write(self._path(info.key_id, NEXT_KEY_SUFFIX), _pem(key, secret))
        self._write(self.pin_path, record.to_json())
        for info in keys:
            try:
                self._path(info.key_id, NEXT_KEY_SUFFIX).replace(self._path(info.key_id, KEY_SUFFIX))
            except OSError as err:
                raise ConfigurationError(f"cannot replace the key file of {info.key_id}: {err}") from err
        LOGINS.set(self.directory, secret, self._pin_state())

    def _pin_state(self) -> tuple[int, int, int] | None:
        try:
            found = self.pin_path.stat()
        except OSError:
            return None
        return found.st_ino, found.st_mtime_ns, found.st_size

    def _current_login(self) -> Login | None:
        """The login of this token if its secret still fits ``pin.json`` (a PIN changed underneath ends it)."""
        login = LOGINS.get(self.directory)
        if login is None:
            return None
        state = self._pin_state()
        if state is None:
            return None
        if state != login.pin_state:
            try:
                fits = hmac.compare_digest(self._pin_record().verifier, verifier_of(login.secret))
            except ConfigurationError:
                fits = False
            if not fits:
                LOGINS.forget(self.directory)
                return None
            login.pin_state = state
        return login

    def _login(self) -> Login | None:
        """The current login; None for a token without a PIN; :class:`TokenNotActive` when logged out."""
        if not self.has_pin():
            return None
        login = self._current_login()
        if login is None:
            raise TokenNotActive(f"token {self.name} is not logged in (log in with its PIN)")
        return login

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
            name = meta.get("name")
            if name is not None and not isinstance(name, str):
                raise ValueError("name is not text")
            active = meta.get("cert_active", True)
            if not isinstance(active, bool):
                raise ValueError("cert_active is not a boolean")
            info = KeyInfo(key_id, kind, owner, KeyAlgorithm(meta["algorithm"]), None, name, active)
        except (ValueError, KeyError, TypeError, InvalidClientIdentifier, SoftTokenError) as err:
            raise ConfigurationError(f"key metadata {meta_path} is malformed: {err}") from err
        cert_path = self._path(key_id, CERT_SUFFIX)
        if cert_path.is_file():
            try:
                cert = x509.load_pem_x509_certificate(self._read(cert_path))
            except ValueError as err:
                raise ConfigurationError(f"certificate file {cert_path} is malformed: {err}") from err
            return KeyInfo(info.key_id, info.kind, info.owner, info.algorithm, cert, info.name, info.cert_active)
        return info

    def _private_key(self, key_id: str) -> PrivateKey:
        login = self._login()
        if login is None:
            return self._load_key(key_id, [None])
        cached = login.keys.get(key_id)
        if cached is None:
            cached = self._load_key(key_id, [login.secret])
            login.keys[key_id] = cached
        return cached

    def _load_key(self, key_id: str, secrets: list[bytes | None]) -> PrivateKey:
        """Read the key file under the first of ``secrets`` that fits (None: a key in clear, from before the PIN)."""
        path = self._path(key_id, KEY_SUFFIX)
        try:
            mode = path.stat().st_mode
        except OSError as err:
            raise ConfigurationError(f"cannot read the key file {path}: {err}") from err
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise ConfigurationError(f"key file {path} may be read by others (mode {stat.S_IMODE(mode):o}); chmod 600 it")
        candidates = [self._read(path)]
        pending = self._path(key_id, NEXT_KEY_SUFFIX)
        if pending.is_file():  # a PIN change that stopped half-way (see set_pin)
            candidates.append(self._read(pending))
        failure: Exception | None = None
        for pem in candidates:
            passwords = [key_password(s) for s in secrets if s is not None] if _is_encrypted(pem) else [None]
            if not passwords:
                raise TokenNotActive(f"key file {path} is encrypted, but token {self.name} is not logged in")
            for password in passwords:
                try:
                    key = serialization.load_pem_private_key(pem, password=password)
                    break
                except (ValueError, TypeError) as err:
                    failure = err
            else:
                continue
            break
        else:
            raise ConfigurationError(f"key file {path} is malformed or under another PIN: {failure}") from failure
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
        login = self._login()
        key = _generate(algorithm)
        key_id = key_id_of(key.public_key())
        info = KeyInfo(key_id, kind, owner, algorithm)
        pem = _pem(key, login.secret if login is not None else None)
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
        self._update_meta(key_id, cert_active=True)
        return key_id

    # --- changes to a key and its certificate ------------------------------------------------------------------

    def _update_meta(self, key_id: str, **fields: object) -> None:
        meta_path = self._path(key_id, META_SUFFIX)
        self._info(key_id)  # KeyNotFound, or the metadata is well-formed
        meta = json.loads(self._read(meta_path))
        for name, value in fields.items():
            if value is None:
                meta.pop(name, None)
            else:
                meta[name] = value
        self._write(meta_path, json.dumps(meta, sort_keys=True).encode("utf-8") + b"\n")
        LOGINS.changed()

    def rename(self, key_id: str, name: str | None) -> KeyInfo:
        """Give key ``key_id`` a friendly name (None: none); answers the key."""
        self._update_meta(check_key_id(key_id), name=name)
        return self._info(key_id)

    def set_cert_active(self, key_id: str, active: bool) -> KeyInfo:
        """Activate or disable the certificate of key ``key_id`` (a disabled one is never used to sign or to
        authenticate); :class:`SoftTokenError` when the key has no certificate."""
        if self.key(key_id).cert is None:
            raise SoftTokenError(f"key {key_id} has no certificate")
        self._update_meta(key_id, cert_active=active)
        return self._info(key_id)

    def delete_cert(self, key_id: str) -> None:
        """Delete the certificate of key ``key_id`` (the key stays)."""
        if self.key(key_id).cert is None:
            raise SoftTokenError(f"key {key_id} has no certificate")
        self._path(key_id, CERT_SUFFIX).unlink(missing_ok=True)
        self._update_meta(key_id, cert_active=None)

    def delete_key(self, key_id: str) -> None:
        """Delete key ``key_id`` with its certificate: the metadata first, so a crash leaves no half key listed."""
        self.key(key_id)
        for suffix in (META_SUFFIX, CERT_SUFFIX, KEY_SUFFIX, NEXT_KEY_SUFFIX):
            try:
                self._path(key_id, suffix).unlink(missing_ok=True)
            except OSError as err:
                raise ConfigurationError(f"cannot delete {self._path(key_id, suffix)}: {err}") from err
        login = LOGINS.get(self.directory)
        if login is not None:
            login.keys.pop(key_id, None)
        LOGINS.changed()

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
