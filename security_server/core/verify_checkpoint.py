"""The auditor's signed checkpoint: how far a message log was verified, so the next run checks only what is new.

``fedbus audit verify log --checkpoint FILE --checkpoint-key KEY`` writes, after a run that verified everything,
one entry per shard: the last record up to which every record is verified (chain, timestamp and, with ``--conf``,
signature: it stops before the first record still waiting for a timestamp) and that record's link. The next run with
``--since-checkpoint FILE`` checks the checkpoint's signature, that the stored record still has that link, and then
verifies only the records after it, from that link.

**Whose key.** The auditor's own, never the server's: the server's operator is the party being audited, and a key it
holds could sign a checkpoint over an edited log. ``KEY`` is a file holding either an Ed25519 private key (PEM,
PKCS#8: ``openssl genpkey -algorithm ed25519``), or at least 32 bytes of secret for HMAC-SHA-512. The same key file
signs and verifies. A checkpoint is a small JSON document; its signature covers the canonical JSON of every other
field (sorted keys, no spaces), so any edit (another record, another link, another key) is refused.

This module is pure: the time is an argument, and the key and document are bytes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from security_server.core.errors import InvalidConfiguration
from security_server.core.logchain import LINK_SIZE

FORMAT = "fedbus-verify-log-checkpoint/1"
"""The ``format`` field of a checkpoint."""
MIN_HMAC_KEY_BYTES = 32
HMAC_SHA512 = "hmac-sha512"
ED25519 = "ed25519"


@dataclass(frozen=True, slots=True)
class ShardMark:
    """Shard ``shard`` of the log verified up to record ``record`` (inclusive), whose link is ``link``."""

    shard: int
    record: int
    link: bytes

    def __post_init__(self) -> None:
        if type(self.shard) is not int or self.shard < 0 or type(self.record) is not int or self.record < 0:
            raise ValueError("a shard mark has a shard index and a record id, both non-negative")
        if type(self.link) is not bytes or len(self.link) != LINK_SIZE:
            raise ValueError(f"a shard mark's link is {LINK_SIZE} bytes")


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """Where each shard of a log was verified up to, and when."""

    marks: tuple[ShardMark, ...]
    made: datetime

    def mark(self, shard: int) -> ShardMark | None:
        """The mark of shard ``shard``, if the checkpoint has one."""
        return next((mark for mark in self.marks if mark.shard == shard), None)


class CheckpointKey:
    """The auditor's checkpoint key: an Ed25519 private key or an HMAC-SHA-512 secret, read from a key file."""

    def __init__(self, data: bytes) -> None:
        self._ed25519: Ed25519PrivateKey | None = None
        self._secret = b""
        if b"-----BEGIN" in data:
            try:
                key = serialization.load_pem_private_key(data, password=None)
            except (ValueError, TypeError) as err:
                raise InvalidConfiguration("checkpoint key: not a readable unencrypted PEM private key") from err
            if not isinstance(key, Ed25519PrivateKey):
                raise InvalidConfiguration("checkpoint key: a PEM key must be an Ed25519 private key")
            self._ed25519 = key
        elif len(data) < MIN_HMAC_KEY_BYTES:
            raise InvalidConfiguration(f"checkpoint key: an HMAC secret is at least {MIN_HMAC_KEY_BYTES} bytes")
        else:
            self._secret = data

    @property
    def algorithm(self) -> str:
        """``ed25519`` or ``hmac-sha512``."""
        return ED25519 if self._ed25519 is not None else HMAC_SHA512

    def sign(self, payload: bytes) -> bytes:
        """The signature (Ed25519) or MAC (HMAC-SHA-512) over ``payload``."""
        if self._ed25519 is not None:
            return self._ed25519.sign(payload)
        return hmac.new(self._secret, payload, hashlib.sha512).digest()

    def verifies(self, payload: bytes, signature: bytes) -> bool:
        """Whether ``signature`` is this key's over ``payload``."""
        if self._ed25519 is not None:
            try:
                self._ed25519.public_key().verify(signature, payload)
                return True
            except InvalidSignature:
                return False
        return hmac.compare_digest(self.sign(payload), signature)


def _body(checkpoint: Checkpoint, algorithm: str) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "made": checkpoint.made.isoformat(),
        "algorithm": algorithm,
        "shards": [{"shard": m.shard, "record": m.record, "link": m.link.hex()} for m in checkpoint.marks],
    }


def _canonical(body: dict[str, Any]) -> bytes:
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def write_checkpoint(checkpoint: Checkpoint, key: CheckpointKey) -> bytes:
    """The checkpoint file: its fields and the key's signature over their canonical JSON."""
    if checkpoint.made.tzinfo is None:
        raise ValueError("a checkpoint's time is timezone-aware")
    body = _body(checkpoint, key.algorithm)
    signed = {**body, "signature": base64.b64encode(key.sign(_canonical(body))).decode("ascii")}
    return (json.dumps(signed, indent=2, sort_keys=True) + "\n").encode("ascii")


def _refused(reason: str) -> InvalidConfiguration:
    return InvalidConfiguration(f"checkpoint refused: {reason}")


def read_checkpoint(data: bytes, key: CheckpointKey) -> Checkpoint:
    """The checkpoint in ``data`` if ``key`` signed exactly it; :class:`InvalidConfiguration` (saying why) otherwise."""
    try:
        document = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as err:
        raise _refused("not a checkpoint file (JSON)") from err
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise _refused(f"not a {FORMAT} document")
    body = {name: value for name, value in document.items() if name != "signature"}
    try:
        signature = base64.b64decode(str(document.get("signature", "")), validate=True)
    except (binascii.Error, ValueError) as err:
        raise _refused("its signature is not base64") from err
    if body.get("algorithm") != key.algorithm:
        raise _refused(f"signed with {body.get('algorithm')!r}, the checkpoint key is {key.algorithm}")
    if not key.verifies(_canonical(body), signature):
        raise _refused("its signature does not verify with the checkpoint key (the file was edited, or another key)")
    try:
        marks = tuple(
            ShardMark(int(entry["shard"]), int(entry["record"]), bytes.fromhex(entry["link"]))
            for entry in body["shards"]
        )
        made = datetime.fromisoformat(body["made"])
    except (KeyError, TypeError, ValueError) as err:
        raise _refused(f"malformed field: {err}") from err
    if made.tzinfo is None or len({mark.shard for mark in marks}) != len(marks):
        raise _refused("malformed: a time without a zone, or a shard given twice")
    return Checkpoint(marks, made)
