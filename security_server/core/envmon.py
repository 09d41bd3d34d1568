"""X-Road's environmental monitoring service ``getSecurityServerMetrics`` (envmon-messages §2): read the request,
decide who may ask, and build the ``metricSet`` answer.

The answer is one ``metricSet`` named after the security server (``SERVER:instance/class/code/server``) holding
the ``proxyVersion`` string metric and the ``systemMetrics`` set; ``outputSpec`` names the metrics of
``systemMetrics`` wanted (none or empty: all), as envmon-messages §2.1 says. The metric names are X-Road's
(``SystemMetricNames``): ``OperatingSystem``, ``TotalPhysicalMemory``, ``SystemCpuLoad`` ...; X-Road's monitor
keeps the fluctuating figures (CPU load, free memory and swap, open files, committed memory) as histograms over
its samples, and so do we.

Only the owner of the security server and the central monitoring client named in the global configuration may
ask; anyone else gets ``access_denied`` ("Request is not allowed"), as X-Road's proxy answers.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Sequence, Union

from lxml import etree

from security_server.core.errors import AccessDenied, InvalidRequest
from security_server.core.identifiers import ClientId, SecurityServerId
from security_server.core.metadata import response_header
from security_server.core.soap import SoapMessage, build_envelope

MONITORING_NS = "http://x-road.eu/xsd/monitoring"
GET_SECURITY_SERVER_METRICS = "getSecurityServerMetrics"
SYSTEM_METRICS = "systemMetrics"
PROXY_VERSION = "proxyVersion"

# X-Road's names (ee.ria.xroad.monitor.common.SystemMetricNames).
OPERATING_SYSTEM = "OperatingSystem"
TOTAL_PHYSICAL_MEMORY = "TotalPhysicalMemory"
FREE_PHYSICAL_MEMORY = "FreePhysicalMemory"
TOTAL_SWAP_SPACE = "TotalSwapSpace"
FREE_SWAP_SPACE = "FreeSwapSpace"
SYSTEM_CPU_LOAD = "SystemCpuLoad"
OPEN_FILE_DESCRIPTOR_COUNT = "OpenFileDescriptorCount"
MAX_FILE_DESCRIPTOR_COUNT = "MaxFileDescriptorCount"
COMMITTED_VIRTUAL_MEMORY = "CommittedVirtualMemory"
DISK_SPACE_TOTAL = "DiskSpaceTotal"
DISK_SPACE_FREE = "DiskSpaceFree"
PROCESSES = "Processes"
CERTIFICATES = "Certificates"


@dataclass(frozen=True, slots=True)
class NumericMetric:
    """A ``numericMetric``: a name and a decimal value."""

    name: str
    value: int | float


@dataclass(frozen=True, slots=True)
class StringMetric:
    """A ``stringMetric``: a name and a text value."""

    name: str
    value: str


@dataclass(frozen=True, slots=True)
class HistogramMetric:
    """A ``histogramMetric``: min, max, mean, median and standard deviation of samples, and when last updated."""

    name: str
    updated: datetime
    minimum: float
    maximum: float
    mean: float
    median: float
    std_dev: float

    @classmethod
    def of(cls, name: str, samples: Sequence[float], updated: datetime) -> HistogramMetric:
        """The histogram of ``samples`` (at least one); the standard deviation is the sample one (n - 1)."""
        if not samples:
            raise ValueError("a histogram needs at least one sample")
        deviation = statistics.stdev(samples) if len(samples) > 1 else 0.0
        return cls(name, updated, min(samples), max(samples), statistics.fmean(samples), statistics.median(samples), deviation)


@dataclass(frozen=True, slots=True)
class MetricSet:
    """A ``metricSet``: a name and its metrics, in order."""

    name: str
    metrics: tuple[Metric, ...] = ()


Metric = Union[NumericMetric, StringMetric, HistogramMetric, MetricSet]


# --- the request ------------------------------------------------------------------------------------------


def _children(parent: etree._Element) -> list[etree._Element]:
    return [c for c in parent if not isinstance(c, (etree._Comment, etree._ProcessingInstruction))]


def parse_metrics_request(request: SoapMessage | etree._Element) -> frozenset[str]:
    """The metric names the request's ``outputSpec`` asks for (empty: all); anything else is ``invalid_request``."""
    element = request if isinstance(request, etree._Element) else next(iter(_children(request.body)), None)
    if element is None or element.tag != f"{{{MONITORING_NS}}}{GET_SECURITY_SERVER_METRICS}":
        raise InvalidRequest(f"Request body must be {GET_SECURITY_SERVER_METRICS} in namespace {MONITORING_NS}")
    children = _children(element)
    if not children:
        return frozenset()
    if len(children) > 1 or children[0].tag != f"{{{MONITORING_NS}}}outputSpec":
        raise InvalidRequest(f"{GET_SECURITY_SERVER_METRICS}: unexpected element {etree.QName(children[-1]).localname}")
    names: set[str] = set()
    for field in _children(children[0]):
        if field.tag != f"{{{MONITORING_NS}}}outputField" or len(field):
            raise InvalidRequest(f"outputSpec: unexpected element {etree.QName(field).localname}")
        names.add((field.text or "").strip())
    return frozenset(names)


def check_access(requester: ClientId, *, owner: ClientId, monitoring_client: ClientId | None) -> None:
    """Only the server's owner and the central monitoring client may read its metrics."""
    if requester == owner or (monitoring_client is not None and requester == monitoring_client):
        return
    raise AccessDenied("Request is not allowed", reason=f"{requester} is neither the owner nor the monitoring client")


def select(metrics: Sequence[Metric], wanted: frozenset[str]) -> tuple[Metric, ...]:
    """The metrics named in ``wanted`` (all when it is empty), in their order; unknown names are ignored (X-Road)."""
    return tuple(metrics) if not wanted else tuple(m for m in metrics if m.name in wanted)


# --- the answer -------------------------------------------------------------------------------------------


def _decimal(value: float) -> str:
    """``value`` as xs:decimal (no exponent, no NaN)."""
    number = Decimal(repr(float(value))) if value == value and abs(value) != float("inf") else Decimal(0)
    text = format(number, "f")
    return text


def _add(parent: etree._Element, metric: Metric) -> None:
    def child(tag: str) -> etree._Element:
        element = etree.SubElement(parent, etree.QName(MONITORING_NS, tag))
        etree.SubElement(element, etree.QName(MONITORING_NS, "name")).text = metric.name
        return element

    if isinstance(metric, MetricSet):
        element = child("metricSet")
        for inner in metric.metrics:
            _add(element, inner)
    elif isinstance(metric, StringMetric):
        etree.SubElement(child("stringMetric"), etree.QName(MONITORING_NS, "value")).text = metric.value
    elif isinstance(metric, NumericMetric):
        etree.SubElement(child("numericMetric"), etree.QName(MONITORING_NS, "value")).text = (
            str(metric.value) if isinstance(metric.value, int) else _decimal(metric.value)
        )
    else:
        element = child("histogramMetric")
        values = (
            ("updated", metric.updated.isoformat()),
            ("min", _decimal(metric.minimum)),
            ("max", _decimal(metric.maximum)),
            ("mean", _decimal(metric.mean)),
            ("median", _decimal(metric.median)),
            ("stddev", _decimal(metric.std_dev)),
        )
        for tag, text in values:
            etree.SubElement(element, etree.QName(MONITORING_NS, tag)).text = text


def metric_set_element(server: SecurityServerId, proxy_version: str, system_metrics: Sequence[Metric]) -> etree._Element:
    """The ``getSecurityServerMetricsResponse`` element of envmon-messages §2.2.

    A ``systemMetrics`` set with nothing in it (an ``outputSpec`` naming no known metric) is left out: the
    schema's ``MetricSetType`` needs at least one metric, and X-Road's answer would not validate there."""
    response = etree.Element(etree.QName(MONITORING_NS, "getSecurityServerMetricsResponse"), nsmap={"m": MONITORING_NS})
    contents: list[Metric] = [StringMetric(PROXY_VERSION, proxy_version)]
    if system_metrics:
        contents.append(MetricSet(SYSTEM_METRICS, tuple(system_metrics)))
    _add(response, MetricSet(server.to_display(), tuple(contents)))
    return response


def metrics_response(
    request: SoapMessage,
    request_hash: tuple[str, str],
    *,
    server: SecurityServerId,
    proxy_version: str,
    system_metrics: Sequence[Metric],
) -> bytes:
    """The whole SOAP answer: the request's header with ``requestHash``, and the metric set."""
    return build_envelope(response_header(request, request_hash), metric_set_element(server, proxy_version, system_metrics))
