"""Keys, certificate requests and certificates on the tokens (UG-SS §3.3, §5)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from security_server.admin.errors import NotFound
from security_server.admin.server_dir import ServerDirectory
from security_server.core.certprofile import auth_subject, signing_subject
from security_server.core.config import LayeredConfig
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
        TokenView(token.name, token.name != SoftToken.name, status, sorted_keys(keys))
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
