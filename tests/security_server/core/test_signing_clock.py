"""Signing times: whole milliseconds, never back, distinct for identical messages."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from security_server.core.signing_clock import SigningClock

T0 = datetime(2026, 6, 1, 12, 0, 0, 123456, tzinfo=timezone.utc)


def test_identical_message_in_the_same_millisecond_gets_a_later_signing_time() -> None:
    """Signing one message twice in one millisecond moves the second signing time on by a millisecond."""
    clock = SigningClock()
    first = clock.time_for(b"message", T0)
    second = clock.time_for(b"message", T0)
    assert first == T0.replace(microsecond=123000)
    assert second == first + timedelta(milliseconds=1)


def test_different_messages_share_the_clock_time() -> None:
    """Different messages in the same millisecond keep the clock's time (no drift without duplicates)."""
    clock = SigningClock()
    assert clock.time_for(b"one", T0) == clock.time_for(b"two", T0) == T0.replace(microsecond=123000)


def test_signing_times_never_go_back() -> None:
    """A clock stepped back does not give earlier signing times."""
    clock = SigningClock()
    first = clock.time_for(b"one", T0)
    assert clock.time_for(b"two", T0 - timedelta(seconds=5)) == first


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([b"a", b"b", b"c"]), st.integers(-3, 3)), max_size=60))
def test_no_message_is_signed_twice_at_the_same_time(steps: list[tuple[bytes, int]]) -> None:
    """Whatever the clock does, no (message, signing time) pair repeats, so no signature repeats."""
    clock = SigningClock()
    moment = T0
    seen: set[tuple[bytes, datetime]] = set()
    for message, step_ms in steps:
        moment += timedelta(microseconds=step_ms * 400)
        pair = (message, clock.time_for(message, moment))
        assert pair not in seen
        seen.add(pair)
