"""The bounded in-memory buffer between the proxies and the operational monitoring store.

A proxy hands each finished exchange's record here and forgets it (ARCHITECTURE.md, "Observation flows one
way"). The buffer never blocks and never raises into its caller: when it is full the oldest record is dropped
and counted (a stuck store must never slow or grow the proxy: issue 15, "Cost"), and a record that cannot even
be built is counted and logged, never passed up into the exchange. X-Road's ``op-monitor-buffer.size`` is 20000.
Used from the reactor thread only.
"""

from __future__ import annotations

import collections
from typing import Callable, Iterable

import structlog

from security_server.core.opmon.record import OperationalRecord

DEFAULT_CAPACITY = 20000
"""Records held at most (X-Road ``op-monitor-buffer.size``)."""

_log = structlog.get_logger("fedbus.opmon")


class OpmonBuffer:
    """A bounded first-in first-out buffer of operational records that drops its oldest when full."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 1:
            raise ValueError("the buffer capacity must be a positive integer")
        self.capacity = capacity
        self._records: collections.deque[OperationalRecord] = collections.deque()
        self.dropped = 0
        """Records dropped because the buffer was full (oldest first), since start."""
        self.unbuildable = 0
        """Records that could not be built (a bug in the caller's facts), since start."""

    def __len__(self) -> int:
        return len(self._records)

    def add(self, record: OperationalRecord) -> None:
        """Take ``record``; when full, drop the oldest record first. Never raises."""
        try:
            if len(self._records) >= self.capacity:
                self._records.popleft()
                self.dropped += 1
            self._records.append(record)
        except Exception:  # pragma: no cover - deque operations do not fail; monitoring must not fail an exchange
            self.dropped += 1

    def record(self, build: Callable[[], OperationalRecord]) -> None:
        """Build a record with ``build`` and take it; a failure to build is counted and logged, never raised."""
        try:
            record = build()
        except Exception as err:
            self.unbuildable += 1
            _log.warning("opmon_record_unbuildable", error=f"{type(err).__name__}: {err}")
            return
        self.add(record)

    def drain(self, limit: int) -> list[OperationalRecord]:
        """Take out up to ``limit`` records, oldest first."""
        count = min(limit, len(self._records))
        return [self._records.popleft() for _ in range(count)]

    def put_back(self, records: Iterable[OperationalRecord]) -> None:
        """Return records that could not be stored to the front, as far as there is room; the rest (the oldest)
        are dropped and counted, so a failing store never grows the buffer past its capacity."""
        batch = list(records)
        room = self.capacity - len(self._records)
        keep = batch[len(batch) - room:] if room < len(batch) else batch
        if room <= 0:
            keep = []
        self.dropped += len(batch) - len(keep)
        self._records.extendleft(reversed(keep))
