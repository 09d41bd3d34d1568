"""Prometheus metrics of one security server, on its own registry, served at ``/metrics`` (issue 15, part 4).

Two kinds of metric live here:

* **Events** the proxies report as they happen: :meth:`ServerMetrics.exchange_finished` counts an exchange by
  direction, service, client and result (``ok`` or the X-Road fault code) and observes the seconds each phase
  took (signing, peer exchange, provider call, log commit, ...). Both never raise: monitoring must never fail an
  exchange (issue 15, "nothing in the monitoring path can make an exchange fail").
* **Gauges read on scrape** from callables the service injects (:class:`GaugeSources`): message-log queue depth,
  records awaiting a timestamp and the age of the oldest, archive backlog, seconds until each certificate
  expires, the age of each OCSP response, the global configuration's age, peer-pool connections, the replay
  guard's size, the operational-monitoring buffer (depth and drops). A source that fails is left out of that
  scrape and counted (``fedbus_metrics_source_errors_total``); it never breaks the scrape.

Label values come from our own identifiers and fault codes, so their number stays bounded by the federation's
services and clients. The registry is per server (never the global one), so several servers in one process (the
demo, the tests) keep their figures apart.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, Mapping

import structlog
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import Collector

_log = structlog.get_logger("fedbus.metrics")

PHASES = ("signing", "peer_exchange", "provider_call", "log_commit", "verification", "total")
"""The phases an exchange reports durations for; others are refused (their label set would grow unbounded)."""

DIRECTIONS = ("client", "server")
"""``client``: the client proxy (consumer's side); ``server``: the server proxy (provider's side)."""

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

CONTENT_TYPE = CONTENT_TYPE_LATEST
"""The ``Content-Type`` of the text exposition format."""


@dataclass(frozen=True, slots=True)
class GaugeSources:
    """Where the scrape-time gauges come from; each callable is optional (a missing one is not exported)."""

    messagelog_queue_depth: Callable[[], int] | None = None
    awaiting_timestamp: Callable[[], int] | None = None
    oldest_awaiting_timestamp_at: Callable[[], float | None] | None = None
    """POSIX time of the oldest record still waiting for a timestamp, or None when none waits."""
    archive_backlog: Callable[[], int] | None = None
    certificates: Callable[[], Iterable[tuple[str, str, float]]] | None = None
    """``(use, certificate id, notAfter as POSIX time)`` for each of our certificates (use: auth, sign, tls)."""
    ocsp_responses: Callable[[], Iterable[tuple[str, float]]] | None = None
    """``(certificate id, producedAt as POSIX time)`` of each cached OCSP response."""
    globalconf_generated_at: Callable[[], float | None] | None = None
    peer_pool_connections: Callable[[], Mapping[str, int]] | None = None
    """Connections of the peer pool by state (e.g. ``idle``, ``active``)."""
    replay_guard_size: Callable[[], int] | None = None
    replay_guard_unchecked: Callable[[], int | None] | None = None
    """Requests a clustered node accepted on its own replay guard alone, the shared database being down."""
    opmon_buffer_depth: Callable[[], int] | None = None
    opmon_records_dropped: Callable[[], int] | None = None
    heap_upkeep: Callable[[], tuple[int, float] | None] | None = None
    """Full collections the heap upkeep made and how long the last held the reactor, s (security_server/heap_trim.py);
    None when it is off."""
    proxy_connections: Callable[[], Mapping[str, Any]] | None = None
    """Each proxy port's connections by proxy (``client``, ``server``): objects with ``open`` (a sized collection),
    ``refused`` and ``timed_out`` (by reason) — proxy/connection_limits.py's ``PortConnections``."""


_MISSING = object()


class _ScrapeCollector(Collector):
    """Reads the injected sources on each scrape."""

    def __init__(self, sources: GaugeSources, clock: Callable[[], float]) -> None:
        self._sources = sources
        self._clock = clock
        self.source_errors: dict[str, int] = {}

    def _read(self, name: str) -> Any:
        """The value of source ``name``; :data:`_MISSING` when there is no such source or it failed (counted
        and logged)."""
        source: Callable[[], Any] | None = getattr(self._sources, name)
        if source is None:
            return _MISSING
        try:
            return source()
        except Exception as err:
            self.source_errors[name] = self.source_errors.get(name, 0) + 1
            _log.warning("metrics_source_failed", source=name, error=f"{type(err).__name__}: {err}")
            return _MISSING

    def _simple(self, name: str, help_text: str, field: str) -> Iterator[Metric]:
        value = self._read(field)
        if value is not _MISSING and value is not None:
            yield GaugeMetricFamily(name, help_text, value=float(value))

    def describe(self) -> Iterable[Metric]:
        """Nothing up front: registering must not call the sources before the server has started."""
        return []

    def collect(self) -> Iterator[Metric]:
        now = self._clock()
        yield from self._simple("fedbus_messagelog_queue_depth", "Message-log entries waiting for the writer.",
                                "messagelog_queue_depth")
        yield from self._simple("fedbus_messagelog_awaiting_timestamp_records",
                                "Message-log records waiting for a batch timestamp.", "awaiting_timestamp")
        oldest = self._read("oldest_awaiting_timestamp_at")
        if oldest is not _MISSING:
            age = 0.0 if oldest is None else max(0.0, now - float(oldest))
            yield GaugeMetricFamily("fedbus_messagelog_oldest_awaiting_timestamp_age_seconds",
                                    "Age of the oldest record waiting for a timestamp (0 when none waits).", value=age)
        yield from self._simple("fedbus_messagelog_archive_backlog_records",
                                "Timestamped message-log records not yet archived.", "archive_backlog")
        certificates = self._read("certificates")
        if certificates is not _MISSING:
            family = GaugeMetricFamily("fedbus_certificate_expiry_seconds",
                                       "Seconds until the certificate expires (negative once expired).",
                                       labels=["use", "certificate"])
            for use, ident, not_after in certificates:
                family.add_metric([use, ident], float(not_after) - now)
            yield family
        responses = self._read("ocsp_responses")
        if responses is not _MISSING:
            family = GaugeMetricFamily("fedbus_ocsp_response_age_seconds",
                                       "Seconds since the cached OCSP response was produced.", labels=["certificate"])
            for ident, produced_at in responses:
                family.add_metric([ident], max(0.0, now - float(produced_at)))
            yield family
        generated = self._read("globalconf_generated_at")
        if generated is not _MISSING and generated is not None:
            yield GaugeMetricFamily("fedbus_globalconf_age_seconds", "Seconds since the global configuration in use was generated.",
                                    value=max(0.0, now - float(generated)))
        pool = self._read("peer_pool_connections")
        if pool is not _MISSING:
            family = GaugeMetricFamily("fedbus_peer_pool_connections", "Connections of the peer pool, by state.", labels=["state"])
            for state, count in sorted(pool.items()):
                family.add_metric([state], float(count))
            yield family
        yield from self._simple("fedbus_replay_guard_entries", "Message ids the replay guard remembers.", "replay_guard_size")
        unchecked = self._read("replay_guard_unchecked")
        if unchecked is not _MISSING and unchecked is not None:
            yield CounterMetricFamily(
                "fedbus_replay_guard_unchecked",
                "Requests accepted on the node-local replay guard alone: the cluster's shared database was down.",
                value=float(unchecked),
            )
        yield from self._simple("fedbus_opmon_buffer_records", "Operational records waiting in the buffer.", "opmon_buffer_depth")
        dropped = self._read("opmon_records_dropped")
        if dropped is not _MISSING:
            yield CounterMetricFamily("fedbus_opmon_records_dropped", "Operational records dropped because the buffer was full.",
                                      value=float(dropped))
        upkeep = self._read("heap_upkeep")
        if upkeep is not _MISSING and upkeep is not None:
            collections, last_seconds = upkeep
            yield CounterMetricFamily("fedbus_heap_full_collections", "Full garbage collections made by the heap upkeep.",
                                      value=float(collections))
            yield GaugeMetricFamily("fedbus_heap_last_collection_seconds",
                                    "How long the heap upkeep's last full collection held the reactor thread.",
                                    value=last_seconds)
        ports = self._read("proxy_connections")
        if ports is not _MISSING:
            yield from _proxy_connection_metrics(ports)
        errors = CounterMetricFamily("fedbus_metrics_source_errors", "Scrape-time sources that failed, by source.",
                                     labels=["source"])
        for name, count in sorted(self.source_errors.items()):
            errors.add_metric([name], float(count))
        yield errors


def _proxy_connection_metrics(ports: Mapping[str, Any]) -> Iterator[Metric]:
    """``fedbus_proxy_connections_open``, ``..._refused_total`` and ``..._timed_out_total`` by proxy (issue 22)."""
    opened = GaugeMetricFamily("fedbus_proxy_connections_open", "Open connections on each proxy port.", labels=["proxy"])
    refused = CounterMetricFamily("fedbus_proxy_connections_refused",
                                  "Connections refused with 503 because the proxy port was at its cap.", labels=["proxy"])
    timed_out = CounterMetricFamily("fedbus_proxy_connections_timed_out",
                                    "Connections closed for a slow head or body, or for idling.", labels=["proxy", "reason"])
    for proxy, port in sorted(ports.items()):
        opened.add_metric([proxy], float(len(port.open)))
        refused.add_metric([proxy], float(port.refused))
        for reason, count in sorted(port.timed_out.items()):
            timed_out.add_metric([proxy, reason], float(count))
    yield from (opened, refused, timed_out)


class ServerMetrics:
    """The metrics of one security server on its own :class:`CollectorRegistry`."""

    def __init__(self, sources: GaugeSources = GaugeSources(), *, clock: Callable[[], float] = time.time) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.exchanges = Counter(
            "fedbus_exchanges", "Exchanges finished, by proxy direction, service, client and result (ok or fault code).",
            ["direction", "service", "client", "result"], registry=self.registry,
        )
        self.phase_seconds = Histogram(
            "fedbus_exchange_phase_seconds", "Seconds an exchange spent in each phase.", ["direction", "phase"],
            buckets=LATENCY_BUCKETS, registry=self.registry,
        )
        self.dropped_events = 0
        """Events that could not be counted (a bad label); logged, never raised."""
        self._scrape = _ScrapeCollector(sources, clock)
        self.registry.register(self._scrape)

    def exchange_finished(
        self,
        direction: str,
        service: str,
        client: str,
        fault_code: str | None,
        phases: Mapping[str, float] = {},
    ) -> None:
        """Count one finished exchange and its phase durations (seconds). Never raises."""
        try:
            if direction not in DIRECTIONS:
                raise ValueError(f"unknown direction {direction!r}")
            self.exchanges.labels(direction, service, client, fault_code or "ok").inc()
            for phase, seconds in phases.items():
                if phase not in PHASES:
                    raise ValueError(f"unknown phase {phase!r}")
                self.phase_seconds.labels(direction, phase).observe(max(0.0, float(seconds)))
        except Exception as err:
            self.dropped_events += 1
            _log.warning("metrics_event_dropped", error=f"{type(err).__name__}: {err}")

    def render(self) -> bytes:
        """The text exposition of every metric (what ``/metrics`` answers)."""
        return generate_latest(self.registry)
