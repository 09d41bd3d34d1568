"""The replay guard shared by a server's worker processes: a key accepted by one is refused by every other."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from security_server import shared_replay_guard
from security_server.core.errors import InvalidRequest
from security_server.core.replay import ReplayGuard
from security_server.shared_replay_guard import SharedReplayGuard

T0 = datetime(2026, 6, 1, 12, 0, tzinfo=timezone.utc)
KEY = ReplayGuard.key(b"value", b"message")


def subcode(guard: ReplayGuard, key: bytes, signing_time: datetime, now: datetime) -> str | None:
    """What the guard decides: None when accepted, else the refusal's subcode."""
    try:
        guard.check(key, signing_time, now)
    except InvalidRequest as err:
        return err.subcode
    return None


def test_a_key_accepted_by_one_worker_is_refused_by_another(tmp_path: Path) -> None:
    """Two guards on one file (two workers' connections): the second sees the first one's key as a replay."""
    first, second = SharedReplayGuard(tmp_path / "g.db"), SharedReplayGuard(tmp_path / "g.db")
    assert subcode(first, KEY, T0, T0) is None
    assert subcode(second, KEY, T0, T0 + timedelta(seconds=1)) == "replayed_signature"
    assert subcode(first, KEY, T0, T0 + timedelta(seconds=2)) == "replayed_signature"
    assert subcode(second, ReplayGuard.key(b"value", b"other"), T0, T0) is None
    assert len(first) == len(second) == 2


def test_a_key_accepted_in_another_process_is_refused(tmp_path: Path) -> None:
    """A separate OS process (as a worker is) accepts a key; this process then refuses it."""
    program = (
        "import sys; from datetime import datetime; from pathlib import Path;"
        "from security_server.shared_replay_guard import SharedReplayGuard;"
        "t = datetime.fromisoformat(sys.argv[2]);"
        "SharedReplayGuard(Path(sys.argv[1])).check(bytes.fromhex(sys.argv[3]), t, t)"
    )
    subprocess.run([sys.executable, "-c", program, str(tmp_path / "g.db"), T0.isoformat(), KEY.hex()], check=True)
    assert subcode(SharedReplayGuard(tmp_path / "g.db"), KEY, T0, T0) == "replayed_signature"


def test_signing_times_outside_the_window_are_refused_before_the_store(tmp_path: Path) -> None:
    """Stale and future signing times are the pure decision's stale_signature; nothing is stored for them."""
    guard = SharedReplayGuard(tmp_path / "g.db", 600, skew_seconds=60)
    assert subcode(guard, KEY, T0, T0 + timedelta(seconds=601)) == "stale_signature"
    assert subcode(guard, KEY, T0 + timedelta(seconds=61), T0) == "stale_signature"
    assert len(guard) == 0


def test_expired_keys_are_swept_and_a_full_guard_raises_its_watermark(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Keys signed before the window are deleted; past capacity the earliest go and older times are refused."""
    monkeypatch.setattr(shared_replay_guard, "SWEEP_EVERY", 1)
    guard = SharedReplayGuard(tmp_path / "g.db", 600, capacity=2)
    for n in range(3):
        assert subcode(guard, bytes([n]) * 16, T0 + timedelta(seconds=n), T0 + timedelta(seconds=n)) is None
    assert len(guard) == 2
    # The key signed at T0 was dropped: a different message signed at T0 is refused by the watermark.
    assert subcode(guard, b"x" * 16, T0, T0 + timedelta(seconds=3)) == "stale_signature"
    assert subcode(guard, b"y" * 16, T0 + timedelta(seconds=700), T0 + timedelta(seconds=700)) is None
    assert len(guard) == 1
