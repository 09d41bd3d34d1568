"""Login attempts limited per user name and per peer address, so that passwords cannot be guessed fast.

After ``max_failures`` failed logins within ``window_seconds`` for the same name (or from the same address),
further attempts are refused without checking the password until the window has passed. Time is the reactor's.
"""

from __future__ import annotations

from collections import deque
from typing import Any

DEFAULT_MAX_FAILURES = 5
DEFAULT_WINDOW_SECONDS = 300.0
MAX_TRACKED = 10_000


class LoginThrottle:
    """Counts recent failed logins per key (a user name or an address)."""

    def __init__(
        self,
        clock: Any,  # an IReactorTime
        *,
        max_failures: int = DEFAULT_MAX_FAILURES,
        window_seconds: float = DEFAULT_WINDOW_SECONDS,
    ) -> None:
        self._clock = clock
        self._max = max_failures
        self._window = window_seconds
        self._failures: dict[str, deque[float]] = {}

    def _recent(self, key: str) -> deque[float]:
        times = self._failures.get(key)
        if times is None:
            return deque()
        limit = self._clock.seconds() - self._window
        while times and times[0] <= limit:
            times.popleft()
        if not times:
            del self._failures[key]
        return times

    def allowed(self, *keys: str) -> bool:
        """Whether an attempt for all of ``keys`` may be checked now."""
        return all(len(self._recent(key)) < self._max for key in keys)

    def failed(self, *keys: str) -> None:
        """Record a failed attempt."""
        if len(self._failures) >= MAX_TRACKED:
            self._failures.pop(next(iter(self._failures)))
        now = self._clock.seconds()
        for key in keys:
            self._failures.setdefault(key, deque()).append(now)

    def succeeded(self, username_key: str) -> None:
        """A good login clears the name's failures (not the address's)."""
        self._failures.pop(username_key, None)
