"""The Overview's traffic figures from operational-monitoring records: per-bucket counts by result, latency
percentiles and the busiest services and clients of a window (the last hour, day or week).

Pure: records and ``now`` in, a :class:`TrafficView` out. An exchange is counted at its ``requestInTs``; latency is
``responseOutTs - requestInTs`` (what the caller waited, X-Road's opmon definition), for records that have both.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from typing import Iterable, Sequence

from security_server.core.opmon.record import OperationalRecord, service_label

TOP = 5


class Window(enum.StrEnum):
    """The chart's time range; each has a fixed number of buckets."""

    HOUR = "hour"
    DAY = "day"
    WEEK = "week"

    @property
    def seconds(self) -> int:
        """The window's length."""
        return {Window.HOUR: 3600, Window.DAY: 86_400, Window.WEEK: 7 * 86_400}[self]

    @property
    def bucket_seconds(self) -> int:
        """One bar's width: a minute, a quarter of an hour, an hour."""
        return {Window.HOUR: 60, Window.DAY: 900, Window.WEEK: 3600}[self]

    @property
    def label(self) -> str:
        """How the page names it."""
        return {Window.HOUR: "last hour", Window.DAY: "last day", Window.WEEK: "last week"}[self]

    @classmethod
    def parse(cls, text: str | None) -> Window:
        """The window named ``text``; the hour for anything else."""
        try:
            return cls(text or "hour")
        except ValueError:
            return cls.HOUR


@dataclass(frozen=True, slots=True)
class Bucket:
    """One bar: its start (ms since the epoch) and how many exchanges succeeded and failed in it."""

    start_ms: int
    succeeded: int
    failed: int


@dataclass(frozen=True, slots=True)
class Latency:
    """Latency percentiles in milliseconds over the window's records that have both times."""

    count: int
    p50: int
    p95: int
    p99: int
    max: int


@dataclass(frozen=True, slots=True)
class Busiest:
    """A service or client and its exchanges in the window."""

    name: str
    succeeded: int
    failed: int

    @property
    def total(self) -> int:
        """Both results together."""
        return self.succeeded + self.failed


@dataclass(frozen=True, slots=True)
class TrafficView:
    """What the Overview shows of one window."""

    window: Window
    start_ms: int
    buckets: tuple[Bucket, ...]
    latency: Latency | None
    services: tuple[Busiest, ...]
    clients: tuple[Busiest, ...]

    @property
    def succeeded(self) -> int:
        """Successful exchanges in the window."""
        return sum(b.succeeded for b in self.buckets)

    @property
    def failed(self) -> int:
        """Failed exchanges in the window."""
        return sum(b.failed for b in self.buckets)


def percentile(sorted_values: Sequence[int], fraction: float) -> int:
    """The nearest-rank percentile of a sorted, non-empty sequence."""
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[rank - 1]


def _busiest(counts: dict[str, list[int]]) -> tuple[Busiest, ...]:
    ranked = sorted(counts.items(), key=lambda item: (-(item[1][0] + item[1][1]), item[0]))
    return tuple(Busiest(name, ok, failed) for name, (ok, failed) in ranked[:TOP])


def traffic_view(records: Iterable[OperationalRecord], window: Window, now_ms: int) -> TrafficView:
    """The window ending at ``now_ms``: its buckets (oldest first), latency and the busiest services and clients."""
    width_ms = window.bucket_seconds * 1000
    count = window.seconds // window.bucket_seconds
    end_ms = (now_ms // width_ms + 1) * width_ms  # the current bucket is the last one
    start_ms = end_ms - count * width_ms
    bars = [[0, 0] for _ in range(count)]
    latencies: list[int] = []
    services: dict[str, list[int]] = {}
    clients: dict[str, list[int]] = {}
    for record in records:
        at = record.request_in_ts
        if at is None or not start_ms <= at < end_ms:
            continue
        result = 0 if record.succeeded else 1
        bars[(at - start_ms) // width_ms][result] += 1
        if record.response_out_ts is not None and record.response_out_ts >= at:
            latencies.append(record.response_out_ts - at)
        service = "unknown" if record.service is None else service_label(record.service)
        services.setdefault(service, [0, 0])[result] += 1
        client = "unknown" if record.client is None else record.client.to_display()
        clients.setdefault(client, [0, 0])[result] += 1
    latency = None
    if latencies:
        latencies.sort()
        latency = Latency(len(latencies), percentile(latencies, 0.50), percentile(latencies, 0.95),
                          percentile(latencies, 0.99), latencies[-1])
    buckets = tuple(Bucket(start_ms + i * width_ms, ok, failed) for i, (ok, failed) in enumerate(bars))
    return TrafficView(window, start_ms, buckets, latency, _busiest(services), _busiest(clients))

