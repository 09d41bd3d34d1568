"""Signing times for outgoing requests: whole milliseconds that do not go back (but for a clock stepped back by more
than :data:`MAX_HELD`) and differ for identical messages.

A pure object: the caller passes ``now`` (the client proxy its reactor's time).
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta, timezone

_ONE_MILLISECOND = timedelta(milliseconds=1)

MAX_HELD = timedelta(seconds=60)
"""How far signing times are held ahead of a clock stepped back; well within the clock skew peers tolerate
(``core.trust.DEFAULT_CLOCK_SKEW_SECONDS``, 300 s). A larger step back is followed."""


class SigningClock:
    """Signing times (whole milliseconds, as XAdES ``SigningTime`` carries them) that never go back, and that
    differ for identical messages.

    X-Road's default RSA PKCS#1 v1.5 signatures are deterministic: the same message signed in the same
    millisecond would give the same signature, which the provider's replay check refuses. So when a message is
    signed again within the millisecond of an identical one, its signing time moves on by a millisecond. Other
    messages keep the clock's time; the time only runs ahead of the clock while identical messages arrive more
    than once per millisecond.
    """

    def __init__(self) -> None:
        self._last: datetime | None = None
        self._digests: set[bytes] = set()

    def time_for(self, message: bytes, now: datetime) -> datetime:
        """The signing time for ``message`` at ``now``."""
        digest = hashlib.sha256(message).digest()
        moment = now.astimezone(timezone.utc)
        moment = moment.replace(microsecond=moment.microsecond // 1000 * 1000)
        if self._last is not None and moment < self._last:
            if self._last - moment <= MAX_HELD:
                moment = self._last  # never back: a stepped clock must not reuse an earlier millisecond
            else:
                # A clock corrected after running ahead (issue 22): follow it, or every request would carry a
                # signing time from the future, refused by the provider until the clock caught up again.
                self._last, self._digests = None, set()
        if moment == self._last and digest in self._digests:
            moment = moment + _ONE_MILLISECOND
        if moment != self._last:
            self._last = moment
            self._digests = set()
        self._digests.add(digest)
        return moment
