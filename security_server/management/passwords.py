"""Password hashing for local users: scrypt from the standard library, a memory-hard KDF.

scrypt (RFC 7914) rather than argon2-cffi: it is memory-hard too, ships with Python through OpenSSL (no
compiled dependency to install on every node), and is what OWASP lists next to Argon2id. Parameters: N=2^15,
r=8, p=1 (32 MiB and some 50 ms per check), a 16-byte random salt; they are stored with the hash, so they can
be raised later without breaking the stored ones. API keys are not hashed here: they are 256 random bits, for
which one SHA-256 is enough (:mod:`security_server.management.credentials`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

SCHEME = "scrypt"
N = 2**15
R = 8
P = 1
MAX_PASSWORD_BYTES = 1024
"""Longer passwords are refused before hashing (a cheap way to keep login requests from costing more)."""


def _derive(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=256 * 1024 * 1024, dklen=32)


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    """The stored form ``scrypt$N$r$p$salt$hash`` (base64) of ``password``."""
    if len(password.encode("utf-8")) > MAX_PASSWORD_BYTES:
        raise ValueError(f"a password may have at most {MAX_PASSWORD_BYTES} bytes")
    salt = secrets.token_bytes(16) if salt is None else salt
    digest = _derive(password, salt, N, R, P)
    encode = base64.b64encode
    return f"{SCHEME}${N}${R}${P}${encode(salt).decode()}${encode(digest).decode()}"


def verify_password(password: str, stored: str) -> bool:
    """Whether ``password`` matches the stored form (compared in constant time)."""
    if len(password.encode("utf-8")) > MAX_PASSWORD_BYTES:
        return False
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != SCHEME:
            return False
        expected = base64.b64decode(digest, validate=True)
        actual = _derive(password, base64.b64decode(salt, validate=True), int(n), int(r), int(p))
    except ValueError:
        return False
    return hmac.compare_digest(actual, expected)
