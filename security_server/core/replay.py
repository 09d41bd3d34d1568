"""The replay guard: a signed request is accepted once (SECURITY-CASES.md: "the same signed message replayed").

A pure decision over a key, the request's signing time and ``now``; the server proxy holds one guard for the
life of the process (X-Road has no such check).
"""

from __future__ import annotations

import hashlib
import heapq
from datetime import datetime, timedelta

from security_server.core.errors import InvalidRequest, Origin
from security_server.core.trust import DEFAULT_CLOCK_SKEW_SECONDS

DEFAULT_REPLAY_WINDOW_SECONDS = 600.0
"""How old a request signature may be (by its ``SigningTime``) and how long its value is remembered."""

DEFAULT_REPLAY_CAPACITY = 200_000
"""The most signatures the replay guard remembers at once."""

KEY_BYTES = 16
"""The size of a replay guard key (a truncated SHA-512)."""


class ReplayGuard:
    """Refuses a signed request that was accepted before (SECURITY-CASES.md: "the same signed message replayed").

    X-Road has no such check. A request is accepted only if its ``SigningTime`` lies within
    ``[now - window, now + skew]``; the key of an accepted request (the signature value with the digest of the
    message it covers, so the messages of one batch signature stay apart) is remembered until its signing time
    leaves the window, after which the time check alone refuses it. Memory is bounded: when ``capacity`` keys
    are held, the one signed earliest is dropped and nothing signed at or before it is accepted any more (a
    watermark), so a full guard refuses old requests instead of forgetting them.

    A client proxy re-signs every request it sends, a retry included, with a new ``SigningTime`` (the client
    proxy makes signing times of identical messages differ), so a retry through a security server always
    passes; only a byte-identical resend of a signed message is refused.
    """

    def __init__(
        self,
        window_seconds: float = DEFAULT_REPLAY_WINDOW_SECONDS,
        *,
        skew_seconds: float = DEFAULT_CLOCK_SKEW_SECONDS,
        capacity: int = DEFAULT_REPLAY_CAPACITY,
    ) -> None:
        if window_seconds <= 0 or skew_seconds < 0 or capacity < 1:
            raise ValueError("window must be positive, skew non-negative and capacity at least 1")
        self.window = timedelta(seconds=window_seconds)
        self.skew = timedelta(seconds=skew_seconds)
        self.capacity = capacity
        self._seen: set[bytes] = set()
        self._by_time: list[tuple[float, bytes]] = []
        """(signing time as POSIX seconds, key), a heap: a float is half the size of a datetime."""
        self._floor: float | None = None

    def __len__(self) -> int:
        return len(self._seen)

    @staticmethod
    def key(signature_value: bytes, message: bytes, hash_chain: bytes | None = None) -> bytes:
        """What identifies one signed message: its signature value, the digest of the message and, for a batch
        signature, the digest of its own hash chain (two identical messages of one batch share the signature
        and the message bytes but not the chain). 128 bits: a chance collision within a window is negligible,
        and a key of 16 bytes keeps a full guard to about 180 bytes an entry (tracemalloc)."""
        parts = hashlib.sha512(signature_value).digest() + hashlib.sha512(message).digest()
        if hash_chain is not None:
            parts += hashlib.sha512(hash_chain).digest()
        return hashlib.sha512(parts).digest()[:KEY_BYTES]

    def check(self, key: bytes, signing_time: datetime, now: datetime) -> None:
        """Accept ``key`` once, or raise :class:`InvalidRequest` (subcode ``replayed_signature`` or
        ``stale_signature``)."""
        self._expire(now)
        check_signing_time(signing_time, now, self.window, self.skew, floor=self._floor)
        if key in self._seen:
            raise replayed()
        stamp = signing_time.timestamp()
        self._seen.add(key)
        heapq.heappush(self._by_time, (stamp, key))
        while len(self._seen) > self.capacity:
            oldest, dropped = heapq.heappop(self._by_time)
            self._seen.discard(dropped)
            self._floor = oldest if self._floor is None else max(self._floor, oldest)

    async def admit(self, key: bytes, signing_time: datetime, now: datetime) -> None:
        """:meth:`check` as the server proxy awaits it: a guard backed by a shared database
        (security_server/replay_store.py) waits for the database there without blocking the reactor."""
        self.check(key, signing_time, now)

    def _expire(self, now: datetime) -> None:
        limit = (now - self.window).timestamp()
        while self._by_time and self._by_time[0][0] < limit:
            stamp, dropped = heapq.heappop(self._by_time)
            self._seen.discard(dropped)
            # What is forgotten stays refused (issue 22): after a clock stepped forward and back again, a request
            # accepted before the step is inside the window once more and must not pass a second time.
            self._floor = stamp if self._floor is None else max(self._floor, stamp)


def check_signing_time(
    signing_time: datetime, now: datetime, window: timedelta, skew: timedelta, *, floor: float | None = None
) -> None:
    """Raise :class:`InvalidRequest` (``stale_signature``) unless ``signing_time`` lies within
    ``[now - window, now + skew]`` and after ``floor`` (POSIX seconds: what a full guard no longer remembers).

    The time half of the replay decision, shared by :class:`ReplayGuard` and the guard that the worker processes
    of one server share (security_server/shared_replay_guard.py)."""
    if signing_time < now - window or (floor is not None and signing_time.timestamp() <= floor):
        raise InvalidRequest(
            "Request signature is too old",
            subcode="stale_signature",
            origin=Origin.SERVER_PROXY,
            reason=f"signing time {signing_time.isoformat()} is outside the replay window at {now.isoformat()}",
        )
    if signing_time > now + skew:
        raise InvalidRequest(
            "Request signature is from the future",
            subcode="stale_signature",
            origin=Origin.SERVER_PROXY,
            reason=f"signing time {signing_time.isoformat()} is after {now.isoformat()} plus the clock skew",
        )


def replayed() -> InvalidRequest:
    """The refusal of a signature accepted before (``replayed_signature``)."""
    return InvalidRequest(
        "Request has been received before",
        subcode="replayed_signature",
        origin=Origin.SERVER_PROXY,
        reason="this signature was accepted before (replay)",
    )
