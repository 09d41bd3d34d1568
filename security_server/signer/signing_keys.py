"""Our members' signing keys and certificates, read from the soft token and kept for a short while."""

from __future__ import annotations

from datetime import datetime

from cryptography import x509

from security_server.core.identifiers import ClientId
from security_server.signer.softtoken import PrivateKey, SoftToken

DEFAULT_KEY_CACHE_SECONDS = 60.0
"""How long a signing key read from the soft token is reused before the token is read again."""


class SigningKeys:
    """Signing keys and certificates read from the soft token, reused for ``ttl_seconds`` (reading a key file
    and loading the key costs milliseconds, too much for every message; a renewed certificate is picked up
    within ``ttl_seconds``)."""

    def __init__(self, token: SoftToken, ttl_seconds: float = DEFAULT_KEY_CACHE_SECONDS) -> None:
        self._token = token
        self._ttl = ttl_seconds
        self._cache: dict[ClientId, tuple[float, PrivateKey, x509.Certificate]] = {}

    def get(self, member: ClientId, now: datetime) -> tuple[PrivateKey, x509.Certificate]:
        """The key and certificate ``member`` signs with at ``now`` (KeyNotAvailable when there is none)."""
        member = member.member
        stamp = now.timestamp()
        cached = self._cache.get(member)
        if cached is not None:
            read_at, key, cert = cached
            if 0 <= stamp - read_at < self._ttl and cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
                return key, cert
        key, cert = self._token.signing_key(member, now=now)
        self._cache[member] = (stamp, key, cert)
        return key, cert
