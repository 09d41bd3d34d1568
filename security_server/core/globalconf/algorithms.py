"""Digest and signature algorithms named by URI in the signed directory (pr-gconf §2.3, §2.4; XML-DSig §6).

Directory digests and certificate hashes: SHA-256, SHA-384, SHA-512 (SHA-1 is refused). Signatures: RSA
PKCS#1 v1.5, RSA-PSS (MGF1) and ECDSA over SHA-256/384/512; ECDSA signatures are DER-encoded, as X-Road's
signer returns them (DirectoryContentSigner.java: ``useAsn1DerFormat``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Callable

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from security_server.core.errors import InvalidConfiguration

SHA256_URI = "http://www.w3.org/2001/04/xmlenc#sha256"
SHA384_URI = "http://www.w3.org/2001/04/xmldsig-more#sha384"
SHA512_URI = "http://www.w3.org/2001/04/xmlenc#sha512"

RSA_SHA256_URI = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
RSA_SHA384_URI = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384"
RSA_SHA512_URI = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512"
RSA_PSS_SHA256_URI = "http://www.w3.org/2007/05/xmldsig-more#sha256-rsa-MGF1"
RSA_PSS_SHA384_URI = "http://www.w3.org/2007/05/xmldsig-more#sha384-rsa-MGF1"
RSA_PSS_SHA512_URI = "http://www.w3.org/2007/05/xmldsig-more#sha512-rsa-MGF1"
ECDSA_SHA256_URI = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"
ECDSA_SHA384_URI = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384"
ECDSA_SHA512_URI = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512"

_DIGESTS: dict[str, str] = {SHA256_URI: "sha256", SHA384_URI: "sha384", SHA512_URI: "sha512"}


def digest(algorithm_uri: str, data: bytes) -> bytes:
    """The digest of ``data`` with the algorithm named by ``algorithm_uri``."""
    name = _DIGESTS.get(algorithm_uri)
    if name is None:
        raise InvalidConfiguration(f"unsupported digest algorithm {algorithm_uri}")
    return hashlib.new(name, data).digest()


def digest_size(algorithm_uri: str) -> int:
    """The length in bytes of a digest made with ``algorithm_uri``."""
    name = _DIGESTS.get(algorithm_uri)
    if name is None:
        raise InvalidConfiguration(f"unsupported digest algorithm {algorithm_uri}")
    return hashlib.new(name).digest_size


@dataclass(frozen=True, slots=True)
class _SignatureAlgorithm:
    key_type: str  # "rsa", "rsa-pss" or "ec"
    hash_factory: Callable[[], hashes.HashAlgorithm]


_SIGNATURES: dict[str, _SignatureAlgorithm] = {
    RSA_SHA256_URI: _SignatureAlgorithm("rsa", hashes.SHA256),
    RSA_SHA384_URI: _SignatureAlgorithm("rsa", hashes.SHA384),
    RSA_SHA512_URI: _SignatureAlgorithm("rsa", hashes.SHA512),
    RSA_PSS_SHA256_URI: _SignatureAlgorithm("rsa-pss", hashes.SHA256),
    RSA_PSS_SHA384_URI: _SignatureAlgorithm("rsa-pss", hashes.SHA384),
    RSA_PSS_SHA512_URI: _SignatureAlgorithm("rsa-pss", hashes.SHA512),
    ECDSA_SHA256_URI: _SignatureAlgorithm("ec", hashes.SHA256),
    ECDSA_SHA384_URI: _SignatureAlgorithm("ec", hashes.SHA384),
    ECDSA_SHA512_URI: _SignatureAlgorithm("ec", hashes.SHA512),
}

SignatureKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
"""A private key that can sign a directory."""


def _algorithm(algorithm_uri: str) -> _SignatureAlgorithm:
    algorithm = _SIGNATURES.get(algorithm_uri)
    if algorithm is None:
        raise InvalidConfiguration(f"unsupported signature algorithm {algorithm_uri}")
    return algorithm


def _pss(hash_algorithm: hashes.HashAlgorithm) -> padding.PSS:
    # XML-DSig 1.1 RSASSA-PSS with MGF1 over the same hash; salt as long as the digest (RFC 6931 §2.3.10).
    return padding.PSS(mgf=padding.MGF1(hash_algorithm), salt_length=hash_algorithm.digest_size)


def sign(key: SignatureKey, algorithm_uri: str, data: bytes) -> bytes:
    """Sign ``data`` with ``key`` using the algorithm named by ``algorithm_uri``."""
    algorithm = _algorithm(algorithm_uri)
    hash_algorithm = algorithm.hash_factory()
    if isinstance(key, rsa.RSAPrivateKey) and algorithm.key_type == "rsa":
        return key.sign(data, padding.PKCS1v15(), hash_algorithm)
    if isinstance(key, rsa.RSAPrivateKey) and algorithm.key_type == "rsa-pss":
        return key.sign(data, _pss(hash_algorithm), hash_algorithm)
    if isinstance(key, ec.EllipticCurvePrivateKey) and algorithm.key_type == "ec":
        return key.sign(data, ec.ECDSA(hash_algorithm))
    raise InvalidConfiguration(f"a {type(key).__name__} cannot sign with {algorithm_uri}")


def verify(public_key: object, algorithm_uri: str, signature: bytes, data: bytes) -> bool:
    """True when ``signature`` over ``data`` verifies with ``public_key`` under ``algorithm_uri``."""
    algorithm = _algorithm(algorithm_uri)
    hash_algorithm = algorithm.hash_factory()
    try:
        if isinstance(public_key, rsa.RSAPublicKey) and algorithm.key_type == "rsa":
            public_key.verify(signature, data, padding.PKCS1v15(), hash_algorithm)
        elif isinstance(public_key, rsa.RSAPublicKey) and algorithm.key_type == "rsa-pss":
            # Any salt length is accepted on verification; the salt does not affect what is proven.
            pss = padding.PSS(mgf=padding.MGF1(hash_algorithm), salt_length=padding.PSS.AUTO)
            public_key.verify(signature, data, pss, hash_algorithm)
        elif isinstance(public_key, ec.EllipticCurvePublicKey) and algorithm.key_type == "ec":
            public_key.verify(signature, data, ec.ECDSA(hash_algorithm))
        else:
            return False
    except (InvalidSignature, ValueError):
        return False
    return True
