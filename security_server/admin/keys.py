"""Keys, certificate requests and certificates on the tokens (UG-SS §3.3, §5)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from security_server.admin import auth_cert_states, state_file
from security_server.admin.errors import ActionNotPossible, NotFound
from security_server.admin.server_dir import ServerDirectory
from security_server.core.auth_cert_status import CertStatus, can_unregister
from security_server.core.certprofile import auth_subject, signing_subject
from security_server.core.config import LayeredConfig
from security_server.core.errors import ConfigurationError
from security_server.core.globalconf import GlobalConf
from security_server.core.identifiers import ClientId, SecurityServerId
from security_server.serverconf.store import ServerConfError
from security_server.signer.softtoken import KeyAlgorithm, KeyInfo, KeyKind, SoftToken
from security_server.signer.token import Token, TokenStatus, sorted_keys
from security_server.signer.token_set import TokenSet


@dataclass(frozen=True, slots=True)
class TokenKey:
    """A key and the name of the token that holds it."""

    token: str
    info: KeyInfo


def generate_key(
    server_dir: ServerDirectory,
    kind: KeyKind,
    *,
    member: ClientId | None = None,
    algorithm: KeyAlgorithm = KeyAlgorithm.RSA2048,
    token_name: str = SoftToken.name,
    config: LayeredConfig | None = None,
) -> TokenKey:
    """Generate an auth key (this server's) or a sign key (``member``'s, default the owner's) on a token.

    ``config`` names the ``[pkcs11:NAME]`` tokens; the soft token needs none.
    """
    identity = server_dir.snapshot().identity
    if kind is KeyKind.AUTH and member is not None:
        raise ServerConfError("an auth key belongs to this server, not to a member")
    owner = identity.server_id if kind is KeyKind.AUTH else (member or identity.owner)
    if token_name == SoftToken.name:
        token: Token = server_dir.soft_token()
    else:
        if config is None:
            raise ServerConfError(f"no token {token_name} is configured")
        token = server_dir.tokens(config).token(token_name)
    key_id = token.generate(kind, owner, algorithm)
    return TokenKey(token.name, token.key(key_id))


@dataclass(frozen=True, slots=True)
class CertificateRequest:
    """A PKCS#10 request (PEM) for a key, with the certificate-profile subject."""

    key_id: str
    subject: str
    pem: bytes


def request_certificate(tokens: TokenSet, key_id: str, name: str) -> CertificateRequest:
    """Make the request for ``key_id``; ``name`` is the member's name, written as O in the subject."""
    info = tokens.key(key_id)
    # KeyInfo guarantees auth keys belong to servers and sign keys to members.
    owner = info.owner
    subject = auth_subject(owner, name) if isinstance(owner, SecurityServerId) else signing_subject(owner, name)
    return CertificateRequest(key_id, subject.rfc4514_string(), tokens.csr(key_id, subject))


def import_certificate(tokens: TokenSet, data: bytes, *, now: datetime) -> TokenKey:
    """Import a certificate (PEM or DER) issued for a key on one of the tokens."""
    key_id = tokens.import_cert(data, now=now)
    holder = tokens.holder(key_id)
    return TokenKey(holder.name, holder.key(key_id))


def list_keys(tokens: TokenSet) -> tuple[TokenKey, ...]:
    """Every key on every token that is in (a token that is out lists nothing)."""
    return tuple(TokenKey(token.name, key) for token, _, keys in tokens.listing() for key in keys)


@dataclass(frozen=True, slots=True)
class TokenView:
    """One token as an administrator sees it: its name, type, state and keys."""

    name: str
    hardware: bool
    status: TokenStatus
    keys: tuple[KeyInfo, ...]
    pin_incorrect: bool = False
    """The last PIN given for it in this process was wrong (X-Road's token status ``USER_PIN_INCORRECT``)."""
    has_pin: bool = True
    """Whether it has a PIN to log in with (a soft token from before PINs has none: always logged in)."""


class TokenNotFound(NotFound):
    """No token has this name."""

    api_code = "token_not_found"


class KeyNotFound(NotFound):
    """No token holds a key with this id."""

    api_code = "key_not_found"


def _token_set(server_dir: ServerDirectory, config: LayeredConfig | None) -> TokenSet:
    return server_dir.tokens(config) if config is not None else TokenSet([server_dir.soft_token()])


def list_tokens(server_dir: ServerDirectory, config: LayeredConfig | None = None) -> tuple[TokenView, ...]:
    """The soft token and the ``[pkcs11:NAME]`` tokens of ``config``, each with its keys (none when it is out)."""
    return tuple(
        TokenView(token.name, token.name != SoftToken.name, status, sorted_keys(keys),
                  isinstance(token, SoftToken) and token.pin_incorrect(),
                  not isinstance(token, SoftToken) or token.has_pin())
        for token, status, keys in _token_set(server_dir, config).listing()
    )


def get_token(server_dir: ServerDirectory, name: str, config: LayeredConfig | None = None) -> TokenView:
    """One token; :class:`TokenNotFound` when there is none of that name."""
    for token in list_tokens(server_dir, config):
        if token.name == name:
            return token
    raise TokenNotFound(f"no token {name}")


def find_key(server_dir: ServerDirectory, key_id: str, config: LayeredConfig | None = None) -> TokenKey:
    """The key ``key_id`` on whichever token holds it; :class:`KeyNotFound` otherwise."""
    for token in list_tokens(server_dir, config):
        for key in token.keys:
            if key.key_id == key_id:
                return TokenKey(token.name, key)
    raise KeyNotFound(f"no key {key_id}")


# --- certificates by hash, key changes (X-Road's token-certificates/{hash} and keys/{id}) ----------------------------


class CertificateNotFound(NotFound):
    """No key on any token has a certificate with this hash."""

    api_code = "certificate_not_found"


class NotOnSoftToken(ActionNotPossible):
    """A change fedbus makes on the soft token only (a PKCS#11 token's keys are renamed, disabled and deleted with
    the HSM's own tools)."""


class RegisteredAuthCert(ActionNotPossible):
    """The authentication certificate is registered: it is unregistered before it (or its key) is deleted."""


def certificate_hash(cert: x509.Certificate) -> str:
    """X-Road's certificate id: the SHA-256 of its DER, upper-case hex."""
    return hashlib.sha256(cert.public_bytes(Encoding.DER)).hexdigest().upper()


def certificate_status(server_dir: ServerDirectory, info: KeyInfo, conf: GlobalConf | None = None) -> CertStatus:
    """The state of the key's certificate (X-Road's ``CertificateStatus``): a signing certificate is REGISTERED; an
    authentication certificate's is what this server sent (security_server/admin/auth_cert_states.py), moved on by
    ``conf`` (the global configuration in force, None when there is none at hand)."""
    if info.cert is None:
        raise ValueError(f"key {info.key_id} has no certificate")
    if info.kind is KeyKind.SIGN or not isinstance(info.owner, SecurityServerId):
        return CertStatus.REGISTERED
    listed = None
    if conf is not None:
        listed = hashlib.sha256(info.cert.public_bytes(Encoding.DER)).digest() in conf.auth_cert_hashes(info.owner)
    return auth_cert_states.current(server_dir, certificate_hash(info.cert), listed)


def is_registered(server_dir: ServerDirectory, info: KeyInfo) -> bool:
    """Whether the key is an auth key whose certificate's registration was sent or is in force (X-Road's UNREGISTER
    rule): it is unregistered before it, or its key, is deleted."""
    return info.kind is KeyKind.AUTH and info.cert is not None and can_unregister(certificate_status(server_dir, info))


def find_certificate(server_dir: ServerDirectory, cert_hash: str, config: LayeredConfig | None = None) -> TokenKey:
    """The key whose certificate has SHA-256 ``cert_hash`` (hex, either case); :class:`CertificateNotFound`."""
    wanted = cert_hash.upper()
    for token in list_tokens(server_dir, config):
        for key in token.keys:
            if key.cert is not None and certificate_hash(key.cert) == wanted:
                return TokenKey(token.name, key)
    raise CertificateNotFound(f"no certificate {cert_hash}")


def _soft_holder(server_dir: ServerDirectory, found: TokenKey, what: str) -> SoftToken:
    if found.token != SoftToken.name:
        raise NotOnSoftToken(f"{what} is done on the soft token only; key {found.info.key_id} is on {found.token}")
    return server_dir.soft_token()


def set_certificate_active(
    server_dir: ServerDirectory, cert_hash: str, active: bool, config: LayeredConfig | None = None
) -> TokenKey:
    """Activate or disable a certificate: a disabled one is not used to sign or authenticate (X-Road's semantics)."""
    found = find_certificate(server_dir, cert_hash, config)
    info = _soft_holder(server_dir, found, "activating or disabling a certificate").set_cert_active(
        found.info.key_id, active)
    return TokenKey(found.token, info)


def delete_certificate(
    server_dir: ServerDirectory, cert_hash: str, *, now: datetime, config: LayeredConfig | None = None
) -> TokenKey:
    """Delete a certificate (its key stays); a registered auth certificate is refused (unregister it first; ``now``
    is kept for the callers: the state is recorded). The
    server may be left without a sign certificate: exchanges are then refused until another one is imported."""
    found = find_certificate(server_dir, cert_hash, config)
    if is_registered(server_dir, found.info):
        raise RegisteredAuthCert("the authentication certificate is registered: unregister it first")
    _soft_holder(server_dir, found, "deleting a certificate").delete_cert(found.info.key_id)
    auth_cert_states.forget(server_dir, cert_hash)
    return found


def rename_key(server_dir: ServerDirectory, key_id: str, name: str, config: LayeredConfig | None = None) -> TokenKey:
    """Give a key its friendly name."""
    found = find_key(server_dir, key_id, config)
    return TokenKey(found.token, _soft_holder(server_dir, found, "renaming a key").rename(key_id, name))


def registered_auth_key(server_dir: ServerDirectory, key_id: str, *, now: datetime,
                        config: LayeredConfig | None = None) -> bool:
    """Whether ``key_id`` is an auth key with a registered certificate (its deletion needs the warning ignored)."""
    return is_registered(server_dir, find_key(server_dir, key_id, config).info)


def delete_key(server_dir: ServerDirectory, key_id: str, *, now: datetime, config: LayeredConfig | None = None) -> TokenKey:
    """Delete a key with its certificate and kept requests; an auth key whose certificate is registered (or being
    registered) is refused: unregister it first (authCertDeletion). ``now`` is kept for the callers: the state is
    recorded, not read from the certificate's dates. Deleting the key in use leaves its member without a sign
    key: exchanges are refused until another one is there."""
    from security_server.admin import csrs  # csrs imports this module

    found = find_key(server_dir, key_id, config)
    if is_registered(server_dir, found.info):
        raise RegisteredAuthCert("the key's authentication certificate is registered: unregister it first")
    _soft_holder(server_dir, found, "deleting a key").delete_key(key_id)
    if found.info.cert is not None:
        auth_cert_states.forget(server_dir, certificate_hash(found.info.cert))
    for csr_id in csrs.csr_ids(server_dir, key_id):
        csrs.delete_csr(server_dir, key_id, csr_id)
    return found


# --- a token's friendly name (X-Road's PATCH /tokens/{id}) ---------------------------------------------------------

TOKEN_NAMES_FILE = "token-names.json"
"""The tokens' friendly names, ``{"<token id>": "<name>"}``, in the server directory (a token's id stays its name in
the configuration: ``soft`` or a ``[pkcs11:NAME]`` section's NAME)."""


def token_names(server_dir: ServerDirectory) -> dict[str, str]:
    """Every token's friendly name given so far."""
    raw = state_file.read(server_dir, TOKEN_NAMES_FILE, wrong_shape="is not an object of names") or {}
    if not all(isinstance(v, str) for v in raw.values()):
        raise ConfigurationError(f"{server_dir.path / TOKEN_NAMES_FILE} is not an object of names")
    return raw


def rename_token(server_dir: ServerDirectory, name: str, friendly: str, config: LayeredConfig | None = None) -> TokenView:
    """Give token ``name`` its friendly name (1 to 255 printable characters); answers the token."""
    token = get_token(server_dir, name, config)
    if not friendly or len(friendly) > 255 or not friendly.isprintable():
        raise ServerConfError("a token's name is 1 to 255 printable characters")
    state_file.write(server_dir, TOKEN_NAMES_FILE, token_names(server_dir) | {name: friendly})
    return token


def add_key(server_dir: ServerDirectory, name: str, label: str | None, config: LayeredConfig | None = None) -> TokenKey:
    """X-Road's addKey: a key without a request on token ``name``, named ``label``. fedbus keys have their usage
    from birth, so it is a signing key of the owner member (an auth key comes with its request, addKeyAndCsr)."""
    token = get_token(server_dir, name, config)
    if token.status is not TokenStatus.LOGGED_IN:
        raise ActionNotPossible(f"token {name} is not logged in")
    made = generate_key(server_dir, KeyKind.SIGN, token_name=name, config=config)
    if label is not None and name == SoftToken.name:
        return rename_key(server_dir, made.info.key_id, label, config)
    return made
