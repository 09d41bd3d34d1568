"""The token seam: what the signer asks of any key store, the soft token (files) or a PKCS#11 token (an HSM).

X-Road's signer speaks to a software token and to HSMs through one module interface (XROAD-REFERENCE.md §2.1
"Keys/certs"; ``devices.ini``); fedbus does the same with :class:`Token`. Both implementations share the values
(:class:`KeyInfo`, :class:`KeyKind`, :class:`KeyAlgorithm`), the errors, the key id (SHA-256 of the public key,
so that a certificate finds its key by its public key alone on any token) and the rules that decide whether a
CSR subject or a certificate fits a key and which certificate the proxies use; only the storage differs.

A token hands out its private keys as ``cryptography`` key objects (:data:`PrivateKey`): the soft token's are
real ones, a PKCS#11 token's implement the same ``sign()`` by asking the token, so everything that signs
(core/signature.py, the CSR builder, management requests) takes either without knowing.
"""

from __future__ import annotations

import enum
import hashlib
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Iterable, Protocol, TypeAlias

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from security_server.core.certprofile import (
    member_from_signing_cert,
    member_from_signing_subject,
    names_owner,
    server_from_auth_cert,
    server_from_auth_subject,
)
from security_server.core.errors import CertValidation, ClientFault, Origin, ServerFault
from security_server.core.identifiers import ClientId, SecurityServerId
from security_server.core.trust import is_auth_cert, is_signing_cert

PrivateKey: TypeAlias = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
"""The private keys a token hands out (a PKCS#11 token's are subclasses that sign inside the token)."""

MAX_CERT_BYTES = 64 * 1024
_KEY_ID = re.compile(r"[0-9a-f]{40}")


# --- errors -------------------------------------------------------------------------------------------------------


class SoftTokenError(ClientFault):
    """A token operation that cannot be done with what the administrator gave; nothing was changed.

    (The name predates PKCS#11 tokens; every token raises it and its subclasses.)"""

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


class TokenNotAvailable(ServerFault):
    """The token cannot be reached: its module does not load, its slot or label is not there, or it was removed."""

    code = "token_not_available"
    default_origin = Origin.SIGNER


class TokenNotActive(ServerFault):
    """The token is there but not logged in: no PIN configured or readable, or the PIN is locked."""

    code = "token_not_active"
    default_origin = Origin.SIGNER


class PinIncorrect(ServerFault):
    """The token refused the configured PIN (X-Road ``pin_incorrect``)."""

    code = "pin_incorrect"
    default_origin = Origin.SIGNER


class TokenOperationFailed(ServerFault):
    """The token failed an operation it should have done (the module's own error is in the reason)."""

    code = "cannot_sign"
    default_origin = Origin.SIGNER


class TokenTimedOut(TokenOperationFailed):
    """The token did not answer within the bounded wait (a hung or unreachable network HSM); X-Road's signer fault
    code ``cannot_sign``, with the token's name and the wait in the message."""


# --- values -------------------------------------------------------------------------------------------------------


class TokenStatus(enum.StrEnum):
    """Whether a token can be used now (X-Road: token active / inactive / not available)."""

    LOGGED_IN = "logged-in"
    LOGGED_OUT = "logged-out"
    NOT_PRESENT = "not-present"


class KeyKind(enum.StrEnum):
    """What a key is for."""

    AUTH = "auth"
    SIGN = "sign"


class KeyAlgorithm(enum.StrEnum):
    """The key types a token makes (RSA 2048 is X-Road's default; 3072 for EE/FI; EC P-256 allowed)."""

    RSA2048 = "rsa2048"
    RSA3072 = "rsa3072"
    EC_P256 = "ec-p256"


def key_id_of(public_key: Any) -> str:
    """The id of the key whose public half is ``public_key``: SHA-256 of its SubjectPublicKeyInfo, 40 hex digits."""
    spki = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(spki).hexdigest()[:40]


def is_key_id(text: str) -> bool:
    """Whether ``text`` has the form of a key id (40 lower-case hex digits)."""
    return _KEY_ID.fullmatch(text) is not None


def check_key_id(key_id: object) -> str:
    """``key_id`` if it is a well-formed key id, else :class:`KeyNotFound` (no lookup is built from a bad one)."""
    if not isinstance(key_id, str) or not _KEY_ID.fullmatch(key_id):
        raise KeyNotFound("a key id is 40 lower-case hex digits")
    return key_id


def check_owner(kind: KeyKind, owner: object) -> None:
    """An auth key belongs to a security server, a sign key to a member (not a subsystem)."""
    if kind is KeyKind.AUTH and not isinstance(owner, SecurityServerId):
        raise SoftTokenError("an authentication key belongs to a security server")
    if kind is KeyKind.SIGN and (not isinstance(owner, ClientId) or owner.subsystem_code is not None):
        raise SoftTokenError("a signing key belongs to a member, not a subsystem")


def check_request(kind: str, owner: object, algorithm: str) -> tuple[KeyKind, KeyAlgorithm]:
    """The kind and algorithm of a key generation request, checked against its owner."""
    try:
        key_kind = KeyKind(kind)
        key_algorithm = KeyAlgorithm(algorithm)
    except ValueError as err:
        raise SoftTokenError(f"unknown key kind or algorithm: {err}") from err
    check_owner(key_kind, owner)
    return key_kind, key_algorithm


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """One key on the token: its id, what it is for, whose it is, its algorithm and its certificate (if any)."""

    key_id: str
    kind: KeyKind
    owner: ClientId | SecurityServerId
    algorithm: KeyAlgorithm
    cert: x509.Certificate | None = None
    name: str | None = None
    """The key's friendly name (X-Road's ``name``), if an administrator gave one."""
    cert_active: bool = True
    """Whether its certificate may be used (X-Road's ``active``: a disabled certificate signs nothing)."""

    def __post_init__(self) -> None:
        check_key_id(self.key_id)
        check_owner(self.kind, self.owner)


def sorted_keys(keys: Iterable[KeyInfo]) -> tuple[KeyInfo, ...]:
    """Auth keys first, then by owner and id (the order every token lists in)."""
    return tuple(sorted(keys, key=lambda k: (k.kind is not KeyKind.AUTH, k.owner.to_display(), k.key_id)))


# --- the rules every token applies ----------------------------------------------------------------------------------


def check_csr_subject(info: KeyInfo, subject: object) -> x509.Name:
    """``subject`` if it names the owner of ``info``'s key (certprofile.signing_subject / auth_subject)."""
    if not isinstance(subject, x509.Name):
        raise SoftTokenError("the request subject must be an x509.Name")
    named: ClientId | SecurityServerId
    try:
        named = server_from_auth_subject(subject) if info.kind is KeyKind.AUTH else member_from_signing_subject(subject)
    except CertValidation:
        # Not fedbus's profile: a request for a CA of one of X-Road's (core/certprofile.py), naming this key's owner.
        if names_owner(subject, info.owner):
            return subject
        raise
    if named != info.owner:
        raise SoftTokenError(f"the subject names {named}, but key {info.key_id} belongs to {info.owner}")
    return subject


def load_cert(data: bytes) -> x509.Certificate:
    """The one certificate in ``data`` (PEM or DER, at most :data:`MAX_CERT_BYTES`)."""
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


def check_cert_for_key(info: KeyInfo, cert: x509.Certificate, now: datetime) -> None:
    """Refuse ``cert`` for the key ``info``: expired at ``now``, of the wrong kind, for another owner, or stored."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if cert.not_valid_after_utc < now:
        raise CertValidation(
            "the certificate has expired", reason=f"certificate {cert.serial_number:x} expired {cert.not_valid_after_utc}"
        )
    owner: ClientId | SecurityServerId
    try:
        if info.kind is KeyKind.AUTH:
            if not is_auth_cert(cert):
                raise WrongCertUsage("key is an authentication key, but the certificate is not an authentication certificate")
            owner = server_from_auth_cert(cert)
        else:
            if not is_signing_cert(cert):
                raise WrongCertUsage("key is a signing key, but the certificate is not a signing certificate")
            owner = member_from_signing_cert(cert)
    except CertValidation:
        # Not fedbus's profile: the token does not know the issuing CA, so a subject that names the key's owner under
        # one of X-Road's profiles is taken (the exchange checks read it with the CA's own profile).
        if not names_owner(cert.subject, info.owner):
            raise
        owner = info.owner
    if owner != info.owner:
        raise CertImportFailed(f"the certificate is for {owner}, but key {info.key_id} belongs to {info.owner}")
    if info.cert is not None and info.cert == cert:
        raise CertExists(f"this certificate is already on key {info.key_id}")


def choose_usable(
    keys: Iterable[KeyInfo], kind: KeyKind, owner: ClientId | SecurityServerId | None, now: datetime | None
) -> tuple[str, x509.Certificate]:
    """The key id and certificate to use for ``kind`` (and ``owner``): with ``now``, only a certificate valid at
    ``now``; among several, the newest (a renewed certificate takes over from the old one). A disabled certificate
    is never chosen."""
    candidates = [
        (k.cert, k.key_id)
        for k in keys
        if k.kind is kind
        and k.cert is not None
        and k.cert_active
        and (owner is None or k.owner == owner)
        and (now is None or k.cert.not_valid_before_utc <= now <= k.cert.not_valid_after_utc)
    ]
    if not candidates:
        whose = f" for {owner}" if owner is not None else ""
        raise KeyNotAvailable(f"no {kind.value} key with a valid certificate{whose} on the token")
    cert, key_id = max(candidates, key=lambda pair: (pair[0].not_valid_before_utc, pair[1]))
    return key_id, cert


# --- the seam -------------------------------------------------------------------------------------------------------


class Token(Protocol):
    """What the signer, the proxies and the CLI ask of a token (:class:`~security_server.signer.softtoken.SoftToken`,
    :class:`~security_server.signer.pkcs11_token.Pkcs11Token`)."""

    @property
    def name(self) -> str:
        """The token's name: ``soft`` or the ``NAME`` of its ``[pkcs11:NAME]`` section."""
        ...

    def status(self) -> TokenStatus:
        """Whether the token can be used now; never raises."""
        ...

    def generate(
        self, kind: KeyKind, owner: ClientId | SecurityServerId, algorithm: KeyAlgorithm = KeyAlgorithm.RSA2048
    ) -> str:
        """Make a new key for ``owner`` (a server for ``auth``, a member for ``sign``) and return its id."""
        ...

    def key(self, key_id: str) -> KeyInfo:
        """The key ``key_id``; :class:`KeyNotFound` if it is not on the token."""
        ...

    def list(self) -> tuple[KeyInfo, ...]:
        """Every key on the token, auth keys first, then by owner and id."""
        ...

    def csr(self, key_id: str, subject: x509.Name) -> bytes:
        """A PKCS#10 request (PEM) signed by key ``key_id`` for ``subject``, which must name the key's owner."""
        ...

    def import_cert(self, data: bytes, *, now: datetime) -> str:
        """Store a certificate (PEM or DER) with the key that has its public key; return that key's id."""
        ...

    def signing_key(self, member: ClientId, *, now: datetime | None = None) -> tuple[PrivateKey, x509.Certificate]:
        """The signing key and certificate of ``member`` (a subsystem signs with its member's key)."""
        ...

    def auth_key(self, *, now: datetime | None = None) -> tuple[PrivateKey, x509.Certificate]:
        """This server's authentication key and certificate (the newest valid one if there are several)."""
        ...
