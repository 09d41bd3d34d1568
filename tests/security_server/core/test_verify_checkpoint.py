"""The auditor's signed verify-log checkpoint: written and read back with its key, any edit or other key refused."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

from security_server.core.errors import InvalidConfiguration
from security_server.core.verify_checkpoint import Checkpoint, CheckpointKey, ShardMark, read_checkpoint, write_checkpoint

MADE = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
HMAC_KEY = CheckpointKey(b"k" * 32)


def ed25519_key() -> CheckpointKey:
    """A fresh Ed25519 checkpoint key, from its PEM file form."""
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return CheckpointKey(pem)


CHECKPOINT = Checkpoint((ShardMark(0, 41, bytes(range(64))), ShardMark(1, 7, bytes(64))), MADE)


@pytest.mark.parametrize("key", [HMAC_KEY, ed25519_key()], ids=["hmac", "ed25519"])
def test_a_checkpoint_reads_back_with_its_key(key: CheckpointKey) -> None:
    """What was written is what is read, per shard."""
    read = read_checkpoint(write_checkpoint(CHECKPOINT, key), key)
    assert read == CHECKPOINT and read.mark(1) == ShardMark(1, 7, bytes(64)) and read.mark(2) is None


@given(st.integers(min_value=0, max_value=10**9))
def test_an_edited_record_number_is_refused(record: int) -> None:
    """Moving the mark to any other record breaks the signature."""
    document = json.loads(write_checkpoint(CHECKPOINT, HMAC_KEY))
    if document["shards"][0]["record"] == record:
        return
    document["shards"][0]["record"] = record
    with pytest.raises(InvalidConfiguration, match="does not verify"):
        read_checkpoint(json.dumps(document).encode(), HMAC_KEY)


def test_another_key_or_algorithm_is_refused() -> None:
    """A checkpoint signed with one key does not verify with another, nor as another algorithm."""
    data = write_checkpoint(CHECKPOINT, HMAC_KEY)
    with pytest.raises(InvalidConfiguration, match="does not verify"):
        read_checkpoint(data, CheckpointKey(b"x" * 32))
    with pytest.raises(InvalidConfiguration, match="signed with 'hmac-sha512'"):
        read_checkpoint(data, ed25519_key())


def test_a_file_that_is_no_checkpoint_is_refused() -> None:
    """Not JSON, or JSON of another kind: refused with a clear reason."""
    with pytest.raises(InvalidConfiguration, match="not a checkpoint file"):
        read_checkpoint(b"\xff", HMAC_KEY)
    with pytest.raises(InvalidConfiguration, match="not a fedbus-verify-log-checkpoint"):
        read_checkpoint(b"{}", HMAC_KEY)


def test_weak_or_foreign_keys_are_refused() -> None:
    """An HMAC secret shorter than 32 bytes, or a PEM key that is not Ed25519, is no checkpoint key."""
    with pytest.raises(InvalidConfiguration, match="at least 32 bytes"):
        CheckpointKey(b"short")
    with pytest.raises(InvalidConfiguration, match="PEM"):
        CheckpointKey(b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
