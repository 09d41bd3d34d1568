"""Prometheus metrics of the central registry, on its own registry (issue 15, part 4: "the same for the registry").

Events the registry's parts report: a configuration generation published, an OCSP request answered, a
timestamping request answered (each by result). Read on scrape from an injected source: registration requests
by status (the store's counts). Like the security server's (``security_server/metrics.py``), nothing here raises
into the caller and a failing source is left out of the scrape and counted.
"""

from __future__ import annotations

from typing import Callable, Iterable, Iterator, Mapping

import structlog
from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector

_log = structlog.get_logger("fedbus.registry.metrics")


class _RequestsByStatus(Collector):
    """Registration requests by status, read from the store on each scrape."""

    def __init__(self, source: Callable[[], Mapping[str, int]] | None) -> None:
        self._source = source
        self.errors = 0

    def describe(self) -> Iterable[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        if self._source is not None:
            try:
                counts = dict(self._source())
            except Exception as err:
                self.errors += 1
                _log.warning("metrics_source_failed", source="registration_requests", error=f"{type(err).__name__}: {err}")
            else:
                family = GaugeMetricFamily("fedbus_registry_registration_requests",
                                           "Registration requests in the registry, by status.", labels=["status"])
                for status, count in sorted(counts.items()):
                    family.add_metric([status], float(count))
                yield family
        yield CounterMetricFamily("fedbus_registry_metrics_source_errors", "Scrape-time sources that failed.",
                                  value=float(self.errors))


class RegistryMetrics:
    """The central registry's metrics on its own :class:`CollectorRegistry`."""

    def __init__(self, registration_requests: Callable[[], Mapping[str, int]] | None = None) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.generations = Counter("fedbus_registry_configuration_generations_published",
                                   "Global configuration generations published.", registry=self.registry)
        self.ocsp_requests = Counter("fedbus_registry_ocsp_requests", "OCSP requests answered, by result.",
                                     ["result"], registry=self.registry)
        self.tsa_requests = Counter("fedbus_registry_tsa_requests", "Timestamping requests answered, by result.",
                                    ["result"], registry=self.registry)
        self.registry.register(_RequestsByStatus(registration_requests))

    def generation_published(self) -> None:
        """Count one published configuration generation. Never raises."""
        self._safely(self.generations.inc)

    def ocsp_answered(self, result: str) -> None:
        """Count one OCSP request by result (``good``, ``revoked``, ``unknown``, ``malformed``, ...). Never raises."""
        self._safely(lambda: self.ocsp_requests.labels(result).inc())

    def tsa_answered(self, result: str) -> None:
        """Count one timestamping request by result (``granted``, ``rejection``, ...). Never raises."""
        self._safely(lambda: self.tsa_requests.labels(result).inc())

    @staticmethod
    def _safely(action: Callable[[], None]) -> None:
        try:
            action()
        except Exception as err:
            _log.warning("metrics_event_dropped", error=f"{type(err).__name__}: {err}")

    def render(self) -> bytes:
        """The text exposition (what the registry's ``/metrics`` answers)."""
        return generate_latest(self.registry)
