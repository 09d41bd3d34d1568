"""The replay guard: each signed request accepted once, stale and future signing times refused, memory bounded."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from security_server.core.errors import InvalidRequest
from security_server.core.replay import ReplayGuard

T0 = datetime(2026, 6, 1, 12, 0, tzinfo=timezone.utc)


def test_replay_guard_accepts_a_signature_once() -> None:
    """A signed message is accepted the first time and refused as replayed_signature the second time."""
    guard = ReplayGuard(600)
    key = ReplayGuard.key(b"value", b"message")
    guard.check(key, T0, T0)
    with pytest.raises(InvalidRequest) as caught:
        guard.check(key, T0, T0 + timedelta(seconds=1))
    assert caught.value.fault_code == "server.serverproxy.invalid_request.replayed_signature"


def test_replay_guard_keeps_messages_of_one_batch_signature_apart() -> None:
    """Two messages covered by one (batch) signature value have different keys and both pass."""
    guard = ReplayGuard(600)
    guard.check(ReplayGuard.key(b"value", b"first"), T0, T0)
    guard.check(ReplayGuard.key(b"value", b"second"), T0, T0)
    assert len(guard) == 2


def test_replay_guard_refuses_signatures_older_than_the_window() -> None:
    """A signing time before now minus the window is refused as stale_signature (it could be a forgotten replay)."""
    guard = ReplayGuard(600)
    with pytest.raises(InvalidRequest) as caught:
        guard.check(b"k", T0, T0 + timedelta(seconds=601))
    assert caught.value.subcode == "stale_signature"


def test_replay_guard_refuses_signatures_from_the_future() -> None:
    """A signing time beyond the clock skew ahead of now is refused as stale_signature."""
    guard = ReplayGuard(600, skew_seconds=300)
    guard.check(b"a", T0 + timedelta(seconds=299), T0)
    with pytest.raises(InvalidRequest) as caught:
        guard.check(b"b", T0 + timedelta(seconds=301), T0)
    assert caught.value.subcode == "stale_signature"


def test_replay_guard_forgets_keys_after_the_window() -> None:
    """Keys are dropped once their signing time leaves the window, so memory stays bounded by time."""
    guard = ReplayGuard(600)
    for index in range(10):
        guard.check(bytes([index]), T0, T0)
    guard.check(b"later", T0 + timedelta(seconds=700), T0 + timedelta(seconds=700))
    assert len(guard) == 1


def test_full_replay_guard_raises_its_watermark_instead_of_forgetting() -> None:
    """At capacity the earliest key is dropped and nothing signed at or before it is accepted any more."""
    guard = ReplayGuard(600, capacity=2)
    guard.check(b"a", T0, T0)
    guard.check(b"b", T0 + timedelta(seconds=1), T0 + timedelta(seconds=1))
    guard.check(b"c", T0 + timedelta(seconds=2), T0 + timedelta(seconds=2))
    assert len(guard) == 2
    with pytest.raises(InvalidRequest) as caught:
        guard.check(b"a", T0, T0 + timedelta(seconds=3))  # "a" was forgotten: the watermark refuses it
    assert caught.value.subcode == "stale_signature"


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(0, 900), min_size=4, max_size=4),
    st.lists(st.tuples(st.integers(0, 3), st.integers(0, 90)), max_size=40),
    st.integers(1, 5),
)
def test_replay_guard_never_accepts_a_key_twice(
    signing_offsets: list[int], events: list[tuple[int, int]], capacity: int
) -> None:
    """Whatever the order, clock and capacity, each signed message is accepted at most once.

    A key always comes with the same signing time (the signature value covers it), as in real traffic.
    """
    guard = ReplayGuard(300, skew_seconds=60, capacity=capacity)
    accepted: list[int] = []
    clock = 0
    for index, advance in events:
        clock += advance  # the clock only moves forward
        signed = T0 + timedelta(seconds=signing_offsets[index])
        try:
            guard.check(bytes([index]), signed, T0 + timedelta(seconds=clock))
        except InvalidRequest:
            continue
        accepted.append(index)
    assert len(accepted) == len(set(accepted))


def test_replay_guard_keys_are_16_bytes_and_tell_batch_chains_apart() -> None:
    """A key is 128 bits; the same signature and message with another hash chain is another key, with none a third."""
    with_first = ReplayGuard.key(b"value", b"message", b"<chain 1/>")
    with_second = ReplayGuard.key(b"value", b"message", b"<chain 2/>")
    without = ReplayGuard.key(b"value", b"message")
    assert {len(with_first), len(with_second), len(without)} == {16}
    assert len({with_first, with_second, without}) == 3
