"""Digest algorithms by the names X-Road writes them: XML-DSig/xmlenc URIs and Java names.

X-Road names a digest algorithm by URI inside XML (``ds:DigestMethod``, hash chains, the ASiC manifest) and by
its Java name elsewhere (``requestHash algorithmId="SHA-512"``, the archive ``linkinginfo`` header). Its default
is SHA-512 everywhere (``Digests.DEFAULT_DIGEST_ALGORITHM``; XROAD-REFERENCE.md §4.2). SHA-1 is not offered:
nothing X-Road 7 signs uses it, and a verifier that accepted it would accept collisions.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Callable

from cryptography.hazmat.primitives import hashes

from security_server.core.errors import MalformedSignature


@dataclass(frozen=True, slots=True)
class DigestAlgorithm:
    """One digest algorithm: its Java name, its XML URI, its ASN.1 OID and its hashlib constructor."""

    name: str
    uri: str
    oid: str
    size: int
    _new: Callable[[], "hashlib._Hash"] = field(repr=False, compare=False)

    def __post_init__(self) -> None:
        if self._new().digest_size != self.size:
            raise ValueError(f"digest size of {self.name} is not {self.size}")

    def digest(self, data: bytes) -> bytes:
        """The digest of ``data``."""
        hasher = self._new()
        hasher.update(data)
        return hasher.digest()

    def hasher(self) -> "hashlib._Hash":
        """A fresh incremental hasher, for data that arrives in pieces."""
        return self._new()

    def crypto_hash(self) -> hashes.HashAlgorithm:
        """The same algorithm as a ``cryptography`` hash object (for signing and verifying)."""
        return _CRYPTO[self.name]()


SHA256 = DigestAlgorithm("SHA-256", "http://www.w3.org/2001/04/xmlenc#sha256", "2.16.840.1.101.3.4.2.1", 32, hashlib.sha256)
"""SHA-256 (xmlenc URI)."""

SHA384 = DigestAlgorithm(
    "SHA-384", "http://www.w3.org/2001/04/xmldsig-more#sha384", "2.16.840.1.101.3.4.2.2", 48, hashlib.sha384
)
"""SHA-384 (xmldsig-more URI, RFC 6931)."""

SHA512 = DigestAlgorithm("SHA-512", "http://www.w3.org/2001/04/xmlenc#sha512", "2.16.840.1.101.3.4.2.3", 64, hashlib.sha512)
"""SHA-512 (xmlenc URI): X-Road's default for signatures, hash chains and timestamps."""

DEFAULT = SHA512
"""The digest algorithm fedbus uses whenever it chooses (X-Road's ``DEFAULT_DIGEST_ALGORITHM``)."""

ALL: tuple[DigestAlgorithm, ...] = (SHA256, SHA384, SHA512)
"""Every digest algorithm this module knows."""

_CRYPTO: dict[str, Callable[[], hashes.HashAlgorithm]] = {
    "SHA-256": hashes.SHA256,
    "SHA-384": hashes.SHA384,
    "SHA-512": hashes.SHA512,
}
_BY_URI = {algorithm.uri: algorithm for algorithm in ALL}
_BY_OID = {algorithm.oid: algorithm for algorithm in ALL}
# Java names as X-Road writes them ("SHA-512"), plus the hyphen-less and lower-case spellings seen in the wild.
_BY_NAME = {
    spelling: algorithm
    for algorithm in ALL
    for spelling in (algorithm.name, algorithm.name.replace("-", ""), algorithm.name.lower(), algorithm.name.replace("-", "").lower())
}


def lookup_uri(uri: str) -> DigestAlgorithm | None:
    """The algorithm named by an XML digest-method URI, or None for an unknown or refused URI."""
    return _BY_URI.get(uri)


def by_uri(uri: str) -> DigestAlgorithm:
    """The algorithm named by an XML digest-method URI; an unknown URI is a :class:`MalformedSignature`."""
    algorithm = _BY_URI.get(uri)
    if algorithm is None:
        raise MalformedSignature("unsupported digest algorithm", reason=f"unsupported digest algorithm URI {uri!r}")
    return algorithm


def lookup_name(name: str) -> DigestAlgorithm | None:
    """The algorithm with this Java name (``SHA-512``; ``SHA512`` and lower case also accepted), or None."""
    return _BY_NAME.get(name.strip())


def lookup_oid(oid: str) -> DigestAlgorithm | None:
    """The algorithm with this ASN.1 object identifier (dotted form), or None."""
    return _BY_OID.get(oid)
