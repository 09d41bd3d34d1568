"""The soft token's PIN: how it is checked, the secret its keys are encrypted under, and who is logged in.

X-Road's software token keeps its keys in PKCS#12 files under the token PIN and holds the PIN in memory once an
administrator logs in (UG-SS §3.4 "Logging in to the software token"; its ``SoftwareTokenWorker``). fedbus does the
same with PKCS#8: the PIN goes through scrypt (memory-hard, with a random salt kept in ``pin.json`` beside the keys)
to a 256-bit secret, and every private key file is PKCS#8 PEM encrypted under that secret (PBES2, AES-256-CBC).
``pin.json`` holds only the KDF parameters, the salt and a hash of the secret that tells a right PIN from a wrong
one; the PIN itself is never stored nor kept in memory, only the secret while the token is logged in.

The logins live in :data:`LOGINS`, one per process, keyed by the token's directory: every
:class:`~security_server.signer.softtoken.SoftToken` object made for the same directory in this process (the proxies'
and the management API's, which run in the same process, security_server/service.py) sees the same login. A
restart forgets it, as X-Road's does. As X-Road's soft token, a wrong PIN does not lock the token; it is refused
with ``pin_incorrect`` and the token shows ``USER_PIN_INCORRECT`` until a right one is given.

A server run as several worker processes (security_server/workers.py) has one login per process: an administrator's
login, logout or PIN change (security_server/admin/token_login.py) is announced (:meth:`SoftTokenLogins.announce`)
to the process's relay, which the worker wires to its parent; the parent and the other workers adopt it
(:meth:`SoftTokenLogins.adopt`). What travels is the derived secret (or its end), over the pipes between the processes: never the PIN, never a
file or a command line.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from security_server.core.errors import ConfigurationError
from security_server.signer.token import PinIncorrect, PrivateKey, SoftTokenError

PIN_FILE = "pin.json"
PIN_FORMAT = 1
SCRYPT_N = 2**15
SCRYPT_R = 8
SCRYPT_P = 1
MAX_PIN_BYTES = 255
_VERIFIER_LABEL = b"fedbus soft token PIN verifier"


class WeakPin(SoftTokenError):
    """A PIN that cannot be used: empty, too long or not text (X-Road ``weak_pin``)."""

    code = "weak_pin"


def check_pin(pin: object) -> bytes:
    """``pin`` as UTF-8 bytes, if it is a non-empty string of at most :data:`MAX_PIN_BYTES` bytes."""
    if not isinstance(pin, str) or not pin:
        raise WeakPin("the PIN is a non-empty string")
    data = pin.encode("utf-8")
    if len(data) > MAX_PIN_BYTES:
        raise WeakPin(f"the PIN is at most {MAX_PIN_BYTES} bytes")
    return data


@dataclass(frozen=True, slots=True)
class PinRecord:
    """What ``pin.json`` holds: the scrypt salt and parameters and the hash of the derived secret."""

    salt: bytes
    n: int
    r: int
    p: int
    verifier: bytes

    def to_json(self) -> bytes:
        """The file's bytes."""
        return json.dumps(
            {"format": PIN_FORMAT, "kdf": "scrypt", "salt": self.salt.hex(), "n": self.n, "r": self.r, "p": self.p,
             "verifier": self.verifier.hex()},
            sort_keys=True,
        ).encode("utf-8") + b"\n"

    @classmethod
    def parse(cls, data: bytes, where: Path) -> PinRecord:
        """The record in ``data`` (read from ``where``); :class:`ConfigurationError` when malformed."""
        try:
            raw = json.loads(data)
            if not isinstance(raw, dict) or raw.get("format") != PIN_FORMAT or raw.get("kdf") != "scrypt":
                raise ValueError("unknown format")
            record = cls(bytes.fromhex(raw["salt"]), int(raw["n"]), int(raw["r"]), int(raw["p"]),
                         bytes.fromhex(raw["verifier"]))
        except (ValueError, KeyError, TypeError) as err:
            raise ConfigurationError(f"the PIN file {where} is malformed: {err}") from err
        if len(record.salt) < 16 or record.n < 2**14 or record.n & (record.n - 1) or not 1 <= record.r <= 32 \
                or not 1 <= record.p <= 16 or len(record.verifier) != 32:
            raise ConfigurationError(f"the PIN file {where} has unsafe or malformed KDF parameters")
        return record


def _derive(pin: bytes, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(pin, salt=salt, n=n, r=r, p=p, maxmem=256 * 1024 * 1024, dklen=32)


def verifier_of(secret: bytes) -> bytes:
    """The hash of ``secret`` that ``pin.json`` keeps to tell a right PIN from a wrong one."""
    return hmac.new(secret, _VERIFIER_LABEL, hashlib.sha256).digest()


def new_pin_record(pin: str) -> tuple[PinRecord, bytes]:
    """A fresh record for ``pin`` (new random salt) and the secret it derives."""
    salt = os.urandom(16)
    secret = _derive(check_pin(pin), salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
    return PinRecord(salt, SCRYPT_N, SCRYPT_R, SCRYPT_P, verifier_of(secret)), secret


def secret_for(record: PinRecord, pin: str, token_name: str = "soft") -> bytes:
    """The secret ``pin`` derives under ``record``; :class:`PinIncorrect` when it is not the token's PIN."""
    try:
        data = check_pin(pin)
    except WeakPin as err:
        raise PinIncorrect(f"token {token_name} refused the PIN") from err
    secret = _derive(data, record.salt, record.n, record.r, record.p)
    if not hmac.compare_digest(verifier_of(secret), record.verifier):
        raise PinIncorrect(f"token {token_name} refused the PIN")
    return secret


def key_password(secret: bytes) -> bytes:
    """The PKCS#8 password of the key files (the secret, hex: PKCS#8 passwords are text)."""
    return secret.hex().encode("ascii")


@dataclass(slots=True)
class Login:
    """One logged-in soft token: its secret, the keys decrypted so far (by key id), and the state of ``pin.json``
    (inode, mtime, size) when it was last seen to match, so that a PIN changed underneath (a restored backup, a
    change by another process) ends the login instead of failing on every key."""

    secret: bytes
    pin_state: tuple[int, int, int] | None = None
    keys: dict[str, PrivateKey] = field(default_factory=dict)


class SoftTokenLogins:
    """The soft tokens logged in in this process, by directory, and those whose last PIN was wrong.

    :attr:`generation` grows on every change (login, logout, PIN change, a key or certificate deleted, activated or
    disabled), so that whatever keeps keys read from a token (``SigningKeys``) knows to read them again."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._logins: dict[Path, Login] = {}
        self._incorrect: set[Path] = set()
        self.generation = 0
        self._relay: Callable[[Path, bytes | None], None] | None = None

    def relay_to(self, relay: Callable[[Path, bytes | None], None] | None) -> None:
        """Where :meth:`announce` sends a login's secret (None: a logout); None: nowhere (one process)."""
        with self._lock:
            self._relay = relay

    def announce(self, directory: Path) -> None:
        """Tell the relay, if any, the current login of the token in ``directory`` (its secret, or None when it is
        logged out), after an administrator's login, logout or PIN change."""
        with self._lock:
            relay = self._relay
            where = self._where(directory)
            login = self._logins.get(where)
            secret = None if login is None else login.secret
        if relay is not None:
            relay(where, secret)

    def adopt(self, directory: Path, secret: bytes | None) -> None:
        """Take a login (or a logout, ``secret`` None) announced by another process of the same server; the secret is
        checked against ``pin.json`` at its first use, as after a PIN change."""
        if secret is None:
            self.forget(directory)
        else:
            self.set(directory, secret)

    def secrets(self) -> dict[Path, bytes]:
        """Every current login's secret, by directory (what a newly started worker is given)."""
        with self._lock:
            return {where: login.secret for where, login in self._logins.items()}

    @staticmethod
    def _where(directory: Path) -> Path:
        return Path(os.path.realpath(directory))

    def changed(self) -> None:
        """Note a change that makes keys read earlier stale."""
        with self._lock:
            self.generation += 1

    def get(self, directory: Path) -> Login | None:
        """The login of the token in ``directory``, or None."""
        with self._lock:
            return self._logins.get(self._where(directory))

    def set(self, directory: Path, secret: bytes, pin_state: tuple[int, int, int] | None = None) -> Login:
        """Log the token in ``directory`` in with ``secret`` (replacing an earlier login)."""
        login = Login(secret, pin_state)
        with self._lock:
            where = self._where(directory)
            self._logins[where] = login
            self._incorrect.discard(where)
            self.generation += 1
        return login

    def forget(self, directory: Path) -> None:
        """Log the token in ``directory`` out (its secret and decrypted keys are dropped)."""
        with self._lock:
            where = self._where(directory)
            login = self._logins.pop(where, None)
            if login is not None:
                login.keys.clear()
            self.generation += 1

    def mark_incorrect(self, directory: Path, incorrect: bool) -> None:
        """Remember whether the last PIN given for the token in ``directory`` was wrong."""
        with self._lock:
            where = self._where(directory)
            if incorrect:
                self._incorrect.add(where)
            else:
                self._incorrect.discard(where)

    def pin_incorrect(self, directory: Path) -> bool:
        """Whether the last PIN given for the token in ``directory`` was wrong."""
        with self._lock:
            return self._where(directory) in self._incorrect


LOGINS = SoftTokenLogins()
"""The process's soft token logins (the one piece of global state of the signer)."""
