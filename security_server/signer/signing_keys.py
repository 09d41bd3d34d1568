"""Our members' signing keys and certificates, read from the tokens and kept for a short while."""

from __future__ import annotations

from datetime import datetime

from cryptography import x509

from security_server.core.identifiers import ClientId
from security_server.signer.softtoken import PrivateKey, SoftToken
from security_server.signer.softtoken_pin import LOGINS
from security_server.signer.token import Token
from security_server.signer.token_set import TokenSet

DEFAULT_KEY_CACHE_SECONDS = 60.0
"""How long a signing key read from the token is reused before the token is read again."""


def _only_soft(token: Token) -> bool:
    if isinstance(token, SoftToken):
        return True
    return isinstance(token, TokenSet) and all(isinstance(t, SoftToken) for t in token.tokens)


class SigningKeys:
    """Signing keys and certificates read from the token (or the token set), reused for ``ttl_seconds`` (reading a
    key file and loading the key costs milliseconds, too much for every message; a renewed certificate is picked
    up within ``ttl_seconds``).

    Reading a PKCS#11 token blocks for as long as the token takes, so when a PKCS#11 token is among the tokens
    (:attr:`may_block`), the batch signer asks :meth:`cached` on the reactor and calls :meth:`get` on a worker
    thread only when that misses (the cache is one dict, whose single gets and sets need no lock).

    A soft token logout, PIN change, or a certificate disabled or deleted empties the cache at once (the logins'
    generation moved), so a logged-out token stops signing with its next message, not ``ttl_seconds`` later."""

    def __init__(self, token: Token, ttl_seconds: float = DEFAULT_KEY_CACHE_SECONDS) -> None:
        self._token = token
        self._ttl = ttl_seconds
        self._cache: dict[ClientId, tuple[float, PrivateKey, x509.Certificate]] = {}
        self._generation = LOGINS.generation
        self.may_block = not _only_soft(token)
        """Whether :meth:`get` may call a PKCS#11 token (so it must not run on the reactor thread)."""

    def cached(self, member: ClientId, now: datetime) -> tuple[PrivateKey, x509.Certificate] | None:
        """The key and certificate of ``member`` at ``now`` if they are in the cache and fresh; never reads a token."""
        if self._generation != LOGINS.generation:
            self._cache = {}
            self._generation = LOGINS.generation
        found = self._cache.get(member.member)
        if found is None:
            return None
        read_at, key, cert = found
        if 0 <= now.timestamp() - read_at < self._ttl and cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
            return key, cert
        return None

    def get(self, member: ClientId, now: datetime) -> tuple[PrivateKey, x509.Certificate]:
        """The key and certificate ``member`` signs with at ``now`` (KeyNotAvailable when there is none)."""
        member = member.member
        found = self.cached(member, now)
        if found is not None:
            return found
        key, cert = self._token.signing_key(member, now=now)
        self._cache[member] = (now.timestamp(), key, cert)
        return key, cert
