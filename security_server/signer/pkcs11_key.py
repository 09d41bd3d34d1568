"""Private keys that stay in a PKCS#11 token, shaped as ``cryptography`` keys so that every signer takes them.

core/signature.py, management requests, the global-configuration signer and ``cryptography``'s CSR builder all
sign with a ``cryptography`` private key: they call ``key.sign(data, padding, hash)`` (RSA) or
``key.sign(data, ECDSA(hash))`` (EC) and pick the algorithm with ``isinstance`` on
:class:`~cryptography.hazmat.primitives.asymmetric.rsa.RSAPrivateKey` /
:class:`~cryptography.hazmat.primitives.asymmetric.ec.EllipticCurvePrivateKey`. The classes here subclass those
and implement ``sign()`` by hashing the data here and asking the token to sign the digest (X-Road's signer does the
same: the HSM signs a digest with CKM_RSA_PKCS over a DigestInfo, CKM_RSA_PKCS_PSS or CKM_ECDSA). Everything that
would take the private key out of the token (``private_bytes``, ``private_numbers``) refuses.
"""

from __future__ import annotations

from typing import NoReturn, Protocol, Self

from cryptography.hazmat.primitives import _serialization, hashes
from cryptography.hazmat.primitives._asymmetric import AsymmetricPadding
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric import utils as asym_utils
from cryptography.utils import Buffer

from security_server.core.signature import ECDSA_SHA512, RSA_PSS_SHA512, RSA_SHA512, SignatureAlgorithm
from security_server.signer.pkcs11_config import SignMechanism

_HASHES: dict[int, type[hashes.HashAlgorithm]] = {32: hashes.SHA256, 48: hashes.SHA384, 64: hashes.SHA512}
"""The hashes a token key signs with, by digest size (SHA-1 and SHA-224 are refused)."""


class DigestSigner(Protocol):
    """The token side of a key: signs a digest computed here with the key ``key_id`` inside the token."""

    def sign_digest(
        self, key_id: str, digest: bytes, hash_algorithm: hashes.HashAlgorithm, mechanism: SignMechanism, salt_length: int
    ) -> bytes:
        """The signature as the mechanism gives it (PKCS#1 bytes for RSA, raw ``r || s`` for ECDSA)."""
        ...


class KeyStaysInToken(TypeError):
    """The private key cannot leave the token (CKA_SENSITIVE, not extractable)."""


def _digest(data: Buffer, algorithm: object) -> tuple[bytes, hashes.HashAlgorithm]:
    if isinstance(algorithm, asym_utils.Prehashed):
        known = _HASHES.get(algorithm.digest_size)
        if known is None or len(data) != algorithm.digest_size:
            raise ValueError("a prehashed digest must be SHA-256, SHA-384 or SHA-512")
        return bytes(data), known()
    if not isinstance(algorithm, hashes.HashAlgorithm) or _HASHES.get(algorithm.digest_size) is not type(algorithm):
        raise ValueError(f"a token key signs with SHA-256, SHA-384 or SHA-512, not {algorithm!r}")
    hasher = hashes.Hash(algorithm)
    hasher.update(bytes(data))
    return hasher.finalize(), algorithm


class _TokenKey:
    """What every token key shares: the token that signs for it, its id there, the mechanism, and that the
    private key never leaves the token (a copy is the same key)."""

    def __init__(self, token: DigestSigner, key_id: str, mechanism: SignMechanism) -> None:
        self._token = token
        self.key_id = key_id
        self.sign_mechanism = mechanism
        """The mechanism the token is configured to sign with; an RSA key refuses the other padding."""

    def private_numbers(self) -> NoReturn:
        """Refused: the key stays in the token."""
        raise KeyStaysInToken("the private key stays in the token")

    def private_bytes(
        self,
        encoding: _serialization.Encoding,
        format: _serialization.PrivateFormat,
        encryption_algorithm: _serialization.KeySerializationEncryption,
    ) -> NoReturn:
        """Refused: the key stays in the token."""
        raise KeyStaysInToken("the private key stays in the token")

    def __copy__(self) -> Self:
        return self

    def __deepcopy__(self, memo: dict[int, object]) -> Self:
        return self


class Pkcs11RsaKey(_TokenKey, rsa.RSAPrivateKey):
    """An RSA key in a token: signs PKCS#1 v1.5 or PSS there, as the token's ``sign-mechanism`` allows."""

    def __init__(self, token: DigestSigner, key_id: str, public: rsa.RSAPublicKey, mechanism: SignMechanism) -> None:
        if mechanism is SignMechanism.ECDSA:
            raise ValueError("an RSA key does not sign with CKM_ECDSA")
        super().__init__(token, key_id, mechanism)
        self._public = public

    def sign(
        self,
        data: bytes,
        padding: AsymmetricPadding,
        algorithm: asym_utils.Prehashed | hashes.HashAlgorithm | asym_utils.NoDigestInfo,
    ) -> bytes:
        """Sign ``data`` with ``padding`` and ``algorithm`` inside the token."""
        digest, hash_algorithm = _digest(data, algorithm)
        if isinstance(padding, _PKCS1v15):
            wanted, salt = SignMechanism.RSA_PKCS, 0
        elif isinstance(padding, _PSS):
            wanted, salt = SignMechanism.RSA_PKCS_PSS, self._salt(padding, hash_algorithm)
        else:
            raise ValueError(f"a token RSA key signs with PKCS#1 v1.5 or PSS, not {padding.name}")
        if wanted is not self.sign_mechanism:
            raise ValueError(f"the token is configured to sign with {self.sign_mechanism.value}, not {wanted.value}")
        return self._token.sign_digest(self.key_id, digest, hash_algorithm, wanted, salt)

    def _salt(self, pss: _PSS, hash_algorithm: hashes.HashAlgorithm) -> int:
        salt = pss._salt_length
        if isinstance(salt, int):
            return salt
        if isinstance(salt, padding._DigestLength):
            return hash_algorithm.digest_size
        if isinstance(salt, padding._MaxLength):
            return (self.key_size + 7) // 8 - hash_algorithm.digest_size - 2
        raise ValueError("PSS salt length must be a number, DIGEST_LENGTH or MAX_LENGTH")

    @property
    def key_size(self) -> int:
        """The modulus size in bits."""
        return self._public.key_size

    def public_key(self) -> rsa.RSAPublicKey:
        """The public half, read from the token."""
        return self._public

    def decrypt(self, ciphertext: bytes, padding: AsymmetricPadding) -> bytes:
        """Refused: token keys only sign (CKA_DECRYPT false)."""
        raise KeyStaysInToken("a token signing key does not decrypt")

    def __repr__(self) -> str:
        return f"<Pkcs11RsaKey {self.key_id} {self.key_size} bits>"


class Pkcs11EcKey(_TokenKey, ec.EllipticCurvePrivateKey):
    """An EC key in a token: signs ECDSA there (the token returns ``r || s``; ``sign()`` returns DER, as
    ``cryptography`` does)."""

    def __init__(self, token: DigestSigner, key_id: str, public: ec.EllipticCurvePublicKey) -> None:
        super().__init__(token, key_id, SignMechanism.ECDSA)
        self._public = public

    def sign(self, data: Buffer, signature_algorithm: ec.EllipticCurveSignatureAlgorithm) -> bytes:
        """Sign ``data`` with ECDSA inside the token; DER ``Ecdsa-Sig-Value``."""
        if not isinstance(signature_algorithm, ec.ECDSA):
            raise ValueError("a token EC key signs with ECDSA")
        digest, hash_algorithm = _digest(data, signature_algorithm.algorithm)
        raw = self._token.sign_digest(self.key_id, digest, hash_algorithm, SignMechanism.ECDSA, 0)
        half = len(raw) // 2
        if len(raw) % 2 or half == 0:
            raise ValueError("the token returned a malformed ECDSA signature")
        return asym_utils.encode_dss_signature(int.from_bytes(raw[:half], "big"), int.from_bytes(raw[half:], "big"))

    def exchange(self, algorithm: ec.ECDH, peer_public_key: ec.EllipticCurvePublicKey) -> bytes:
        """Refused: token keys only sign."""
        raise KeyStaysInToken("a token signing key does not do key agreement")

    def public_key(self) -> ec.EllipticCurvePublicKey:
        """The public half, read from the token."""
        return self._public

    @property
    def curve(self) -> ec.EllipticCurve:
        """The key's curve."""
        return self._public.curve

    @property
    def key_size(self) -> int:
        """The curve's size in bits."""
        return self._public.key_size

    def __repr__(self) -> str:
        return f"<Pkcs11EcKey {self.key_id} {self.curve.name}>"


_PKCS1v15 = padding.PKCS1v15
_PSS = padding.PSS


def signature_algorithm_for(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> SignatureAlgorithm:
    """The XAdES signature algorithm a key signs messages with: ECDSA-SHA512 for EC keys, RSA-SHA512 for RSA keys
    (X-Road's default), RSA-PSS-SHA512 for a token key whose token signs with CKM_RSA_PKCS_PSS."""
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return ECDSA_SHA512
    if isinstance(key, Pkcs11RsaKey) and key.sign_mechanism is SignMechanism.RSA_PKCS_PSS:
        return RSA_PSS_SHA512
    return RSA_SHA512


def token_name_of(key: object) -> str | None:
    """The name of the token that signs for ``key`` (a PKCS#11 token key), or None for a key held here in memory
    (a soft-token key), which signs inline."""
    if isinstance(key, (Pkcs11RsaKey, Pkcs11EcKey)):
        name = getattr(key._token, "name", None)
        return name if isinstance(name, str) else type(key._token).__name__
    return None
