"""X-Road's operational monitoring services: read the requests, decide what to answer, build the answers.

``getSecurityServerOperationalData`` (pr-opmon §2): the records of a time range, as a gzipped JSON attachment
referenced by swaRef from the SOAP body, with ``recordsCount`` and, when the answer was cut, ``nextRecordsFrom``.
``getSecurityServerHealthData`` (pr-opmon §3): per service, the last successful and unsuccessful request and the
statistics of the last period.

The verdicts follow X-Road's op-monitor daemon (``OperationalDataRequestHandler``, ``OperationalDataRecordQuery``,
``HealthDataMetrics``):

* ``recordsFrom``/``recordsTo`` must be non-negative, ``recordsTo`` not before ``recordsFrom``, and
  ``recordsFrom`` before *now - offset* (the records of the last ``offset`` seconds may not be committed yet);
  each breach is ``client.invalid_request``. A ``recordsTo`` at or after *now - offset* is moved to
  *now - offset - 1* and ``nextRecordsFrom`` says where the next query starts (§2, "records-available-timestamp-
  offset", 60 s by default).
* An ``outputField`` that is not one of the record fields is ``client.invalid_request``.
* The owner of the server and the central monitoring client of the global configuration see every record; any
  other client sees only records in which it is the client or the service provider, and never the server's
  internal IP. The optional ``client`` search criterion filters by service provider, for everyone: for a client
  that is not the owner it narrows its own records further (its exchanges with that provider), so it can never
  reveal another member's traffic and X-Road refuses nothing there; we do the same.
* At most ``max_records`` records are answered; records sharing the last answered second are all included (so
  that the next query, from that second + 1, neither repeats nor loses one), and ``nextRecordsFrom`` is that
  second + 1 when more records of the range remain.
* Health data counts only the records made in the ``Producer`` role; counts are of the last statistics period,
  durations and sizes over its successful requests only; the standard deviation is the sample one (n - 1), as
  X-Road's reservoir snapshot computes it.
"""

from __future__ import annotations

import gzip
import json
import math
import re
import statistics
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

from lxml import etree

from security_server.core.errors import BusError, InvalidRequest
from security_server.core.identifiers import ClientId, ServiceId
from security_server.core.metadata import response_header
from security_server.core.multipart import Part
from security_server.core.opmon.record import OUTPUT_FIELDS, OperationalRecord, SecurityServerType, project, service_label
from security_server.core.soap import SOAP_CONTENT_TYPE, SoapMessage, build_envelope
from security_server.core.soapattachments import SoapWithAttachments, build_related

OPMON_NS = "http://x-road.eu/xsd/op-monitoring.xsd"
GET_OPERATIONAL_DATA = "getSecurityServerOperationalData"
GET_HEALTH_DATA = "getSecurityServerHealthData"
OPMON_SERVICES = frozenset({GET_OPERATIONAL_DATA, GET_HEALTH_DATA})

RECORDS_CONTENT_ID = "operational-monitoring-data.json.gz"
"""The Content-ID of the records attachment (X-Road's ``CID``)."""

_LONG_MIN, _LONG_MAX = -(2**63), 2**63 - 1
_INTEGER = re.compile(r"[+-]?[0-9]+")


@dataclass(frozen=True, slots=True)
class OpmonSettings:
    """The operational monitoring parameters, with X-Road's defaults (``[op-monitor]`` of ug-opmon)."""

    records_available_offset_seconds: int = 60
    max_records_in_payload: int = 10000
    health_statistics_period_seconds: int = 600
    keep_records_for_days: int = 7

    def __post_init__(self) -> None:
        for name in ("records_available_offset_seconds", "health_statistics_period_seconds", "keep_records_for_days"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be a non-negative integer")
        if isinstance(self.max_records_in_payload, bool) or not isinstance(self.max_records_in_payload, int):
            raise ValueError("max_records_in_payload must be an integer")
        if self.max_records_in_payload < 1:
            raise ValueError("max_records_in_payload must be at least 1")


# --- reading the requests -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OperationalDataRequest:
    """The body of a ``getSecurityServerOperationalData`` request (pr-opmon §2)."""

    records_from: int
    records_to: int
    client: ClientId | None = None
    output_fields: frozenset[str] = frozenset()


def _children(parent: etree._Element) -> list[etree._Element]:
    return [c for c in parent if not isinstance(c, (etree._Comment, etree._ProcessingInstruction))]


def _named(element: etree._Element, localname: str) -> bool:
    name = etree.QName(element)
    return name.namespace == OPMON_NS and name.localname == localname


def _wrapper(request: SoapMessage | etree._Element, localname: str) -> etree._Element:
    element = request if isinstance(request, etree._Element) else next(iter(_children(request.body)), None)
    if element is None or not _named(element, localname):
        raise InvalidRequest(f"Request body must be {localname} in namespace {OPMON_NS}")
    return element


def _sequence(parent: etree._Element, names: Sequence[tuple[str, bool]], what: str) -> dict[str, etree._Element]:
    """Read ``parent``'s children as an XSD sequence of ``(name, required)``; anything else is invalid."""
    children = _children(parent)
    found: dict[str, etree._Element] = {}
    index = 0
    for name, required in names:
        if index < len(children) and _named(children[index], name):
            found[name] = children[index]
            index += 1
        elif required:
            raise InvalidRequest(f"{what}: missing element {name}")
    if index != len(children):
        raise InvalidRequest(f"{what}: unexpected element {etree.QName(children[index]).localname}")
    return found


def _long(element: etree._Element, name: str) -> int:
    text = (element.text or "").strip()
    if len(element) or not _INTEGER.fullmatch(text):
        raise InvalidRequest(f"{name} is not an integer", reason=f"{name} is not an xs:long: {text[:40]!r}")
    value = int(text)
    if not _LONG_MIN <= value <= _LONG_MAX:
        raise InvalidRequest(f"{name} is out of range")
    return value


def _client(element: etree._Element, name: str) -> ClientId:
    try:
        return ClientId.from_xml(element)
    except BusError as err:
        raise InvalidRequest(f"{name} is not a client identifier: {err.message}") from err


def parse_operational_data_request(request: SoapMessage | etree._Element) -> OperationalDataRequest:
    """Read the ``getSecurityServerOperationalData`` body; any deviation from its schema is ``invalid_request``."""
    wrapper = _wrapper(request, GET_OPERATIONAL_DATA)
    parts = _sequence(wrapper, (("searchCriteria", True), ("outputSpec", False)), GET_OPERATIONAL_DATA)
    criteria = _sequence(
        parts["searchCriteria"], (("recordsFrom", True), ("recordsTo", True), ("client", False)), "searchCriteria"
    )
    fields: set[str] = set()
    spec = parts.get("outputSpec")
    if spec is not None:
        for child in _children(spec):
            if not _named(child, "outputField") or len(child):
                raise InvalidRequest(f"outputSpec: unexpected element {etree.QName(child).localname}")
            fields.add((child.text or "").strip())
    client = _client(criteria["client"], "searchCriteria/client") if "client" in criteria else None
    return OperationalDataRequest(
        _long(criteria["recordsFrom"], "recordsFrom"), _long(criteria["recordsTo"], "recordsTo"), client, frozenset(fields)
    )


def parse_health_data_request(request: SoapMessage | etree._Element) -> ClientId | None:
    """Read the ``getSecurityServerHealthData`` body: the optional service provider to filter by (pr-opmon §3)."""
    wrapper = _wrapper(request, GET_HEALTH_DATA)
    parts = _sequence(wrapper, (("filterCriteria", False),), GET_HEALTH_DATA)
    if "filterCriteria" not in parts:
        return None
    criteria = _sequence(parts["filterCriteria"], (("client", False),), "filterCriteria")
    return _client(criteria["client"], "filterCriteria/client") if "client" in criteria else None


# --- deciding what to answer --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RecordQuery:
    """What the store is asked for, after the checks and the access rule.

    ``participant``: only records where this client is the client or the service provider (None: all);
    ``provider``: only records of this service provider (None: all); ``next_records_from``: set when
    ``records_to`` was moved back to the last committed second.
    """

    records_from: int
    records_to: int
    participant: ClientId | None
    provider: ClientId | None
    output_fields: frozenset[str]
    public_only: bool
    limit: int
    next_records_from: int | None = None

    def matches(self, record: OperationalRecord) -> bool:
        """Whether ``record`` (as stored, with its ``monitoring_data_ts``) belongs in this query's answer."""
        ts = record.monitoring_data_ts
        if ts is None or not self.records_from <= ts <= self.records_to:
            return False
        provider = None if record.service is None else record.service.client
        if self.participant is not None and self.participant not in (record.client, provider):
            return False
        return self.provider is None or self.provider == provider


def sees_everything(requester: ClientId, *, owner: ClientId, monitoring_client: ClientId | None) -> bool:
    """The owner of the server and the central monitoring client see every record (X-Road ``getClientForFilter``)."""
    return requester == owner or (monitoring_client is not None and requester == monitoring_client)


def plan_query(
    request: OperationalDataRequest,
    *,
    requester: ClientId,
    owner: ClientId,
    monitoring_client: ClientId | None,
    now_seconds: int,
    settings: OpmonSettings = OpmonSettings(),
) -> RecordQuery:
    """Check the request (module docstring) and decide what the store must return for ``requester``."""
    available_before = now_seconds - settings.records_available_offset_seconds
    if request.records_from < 0:
        raise InvalidRequest("Records from timestamp is a negative number")
    if request.records_to < 0:
        raise InvalidRequest("Records to timestamp is a negative number")
    if request.records_to < request.records_from:
        raise InvalidRequest("Records to timestamp is earlier than records from timestamp")
    if request.records_from >= available_before:
        raise InvalidRequest(f"Records not available from {request.records_from} yet")
    unknown = sorted(request.output_fields - set(OUTPUT_FIELDS))
    if unknown:
        raise InvalidRequest(f"Unknown output field in search criteria: {unknown[0]}")
    records_to, next_from = request.records_to, None
    if records_to >= available_before:
        records_to, next_from = available_before - 1, available_before
    everything = sees_everything(requester, owner=owner, monitoring_client=monitoring_client)
    return RecordQuery(
        records_from=request.records_from,
        records_to=records_to,
        participant=None if everything else requester,
        provider=request.client,
        output_fields=request.output_fields,
        public_only=not everything,
        limit=settings.max_records_in_payload,
        next_records_from=next_from,
    )


def cut_to_limit(query: RecordQuery, records: Sequence[OperationalRecord]) -> tuple[list[OperationalRecord], int | None]:
    """The records to answer from ``records`` (the matching records in ``monitoring_data_ts`` order, at least
    ``limit + 1`` of them or all there are) and the ``nextRecordsFrom`` to answer with (module docstring)."""
    if len(records) <= query.limit:
        return list(records), query.next_records_from
    last_ts = records[query.limit - 1].monitoring_data_ts
    kept = [r for r in records if r.monitoring_data_ts is not None and last_ts is not None and r.monitoring_data_ts <= last_ts]
    if len(kept) == len(records) or last_ts is None:
        return kept, query.next_records_from
    return kept, last_ts + 1


# --- building the answers -----------------------------------------------------------------------------------


def records_payload(records: Iterable[Mapping[str, Any]]) -> bytes:
    """The gzipped JSON of pr-opmon Annex B (``{"records": [...]}``); gzip's time field is zero, so the same
    records always give the same bytes."""
    text = json.dumps({"records": list(records)}, separators=(",", ":"), sort_keys=True)
    return gzip.compress(text.encode("utf-8"), mtime=0)


def answer_records(query: RecordQuery, records: Sequence[OperationalRecord]) -> tuple[list[dict[str, Any]], int | None]:
    """The JSON of the records to answer (cut at the limit, projected by ``outputSpec`` and the access rule)
    and the ``nextRecordsFrom``."""
    kept, next_from = cut_to_limit(query, records)
    return [project(r.to_json(), query.output_fields, public_only=query.public_only) for r in kept], next_from


def operational_data_response(
    request: SoapMessage,
    request_hash: tuple[str, str],
    records: Sequence[Mapping[str, Any]],
    next_records_from: int | None,
) -> tuple[str, bytes]:
    """The ``multipart/related`` answer of pr-opmon §2 and Annex C.2: ``(Content-Type, body)``."""
    wrapper = etree.Element(etree.QName(OPMON_NS, "getSecurityServerOperationalDataResponse"), nsmap={"om": OPMON_NS})
    etree.SubElement(wrapper, etree.QName(OPMON_NS, "recordsCount")).text = str(len(records))
    etree.SubElement(wrapper, etree.QName(OPMON_NS, "records")).text = f"cid:{RECORDS_CONTENT_ID}"
    if next_records_from is not None:
        etree.SubElement(wrapper, etree.QName(OPMON_NS, "nextRecordsFrom")).text = str(next_records_from)
    envelope = build_envelope(response_header(request, request_hash), wrapper)
    soap = Part((("Content-Type", SOAP_CONTENT_TYPE),), envelope)
    attachment = Part(
        (
            ("Content-Type", "application/gzip"),
            ("Content-Transfer-Encoding", "binary"),
            ("Content-ID", f"<{RECORDS_CONTENT_ID}>"),
        ),
        records_payload(records),
    )
    return build_related(SoapWithAttachments(soap, (attachment,)))


# --- health data --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Summary:
    """Minimum, mean, maximum and sample standard deviation of some values."""

    minimum: int
    mean: float
    maximum: int
    std_dev: float

    @classmethod
    def of(cls, values: Sequence[int]) -> Summary | None:
        """The summary of ``values``, or None when there are none."""
        if not values:
            return None
        deviation = statistics.stdev(values) if len(values) > 1 else 0.0
        return cls(min(values), float(statistics.fmean(values)), max(values), float(deviation))


@dataclass(frozen=True, slots=True)
class PeriodStatistics:
    """``lastPeriodStatistics`` of one service (pr-opmon §3)."""

    successful: int
    unsuccessful: int
    duration: Summary | None = None
    request_size: Summary | None = None
    response_size: Summary | None = None


@dataclass(frozen=True, slots=True)
class ServiceHealth:
    """One ``serviceEvents`` item (pr-opmon §3)."""

    service: ServiceId
    last_successful_ms: int | None
    last_unsuccessful_ms: int | None
    service_type: str | None
    statistics: PeriodStatistics


def service_health(
    records: Iterable[OperationalRecord],
    *,
    now_ms: int,
    period_seconds: int,
    provider: ClientId | None = None,
) -> tuple[ServiceHealth, ...]:
    """Health data per service over ``records`` (the producer's records of the period, and older ones for the
    last-request times), optionally of one service provider only; services in identifier order."""
    window_start = now_ms - period_seconds * 1000
    last: dict[ServiceId, dict[bool, int]] = {}
    types: dict[ServiceId, tuple[int, str]] = {}
    counts: dict[ServiceId, list[int]] = {}
    durations: dict[ServiceId, list[int]] = {}
    request_sizes: dict[ServiceId, list[int]] = {}
    response_sizes: dict[ServiceId, list[int]] = {}
    for record in records:
        service = record.service
        if record.security_server_type is not SecurityServerType.PRODUCER or service is None:
            continue
        if provider is not None and service.client != provider:
            continue
        at = record.response_out_ts
        if at is None or at > now_ms:
            continue
        seen = last.setdefault(service, {})
        seen[record.succeeded] = max(seen.get(record.succeeded, at), at)
        if record.service_type is not None and at >= types.get(service, (-1, ""))[0]:
            types[service] = (at, str(record.service_type))
        if at <= window_start:
            continue
        count = counts.setdefault(service, [0, 0])
        count[0 if record.succeeded else 1] += 1
        if record.succeeded:
            if record.duration_ms is not None:
                durations.setdefault(service, []).append(record.duration_ms)
            if record.request_size is not None:
                request_sizes.setdefault(service, []).append(record.request_size)
            if record.response_size is not None:
                response_sizes.setdefault(service, []).append(record.response_size)
    out = []
    for service in sorted(last, key=_service_key):
        ok, failed = counts.get(service, [0, 0])
        stats = PeriodStatistics(ok, failed)
        if ok:
            stats = PeriodStatistics(
                ok,
                failed,
                Summary.of(durations.get(service, [])),
                Summary.of(request_sizes.get(service, [])),
                Summary.of(response_sizes.get(service, [])),
            )
        seen = last[service]
        service_type = types.get(service)
        out.append(ServiceHealth(service, seen.get(True), seen.get(False), None if service_type is None else service_type[1], stats))
    return tuple(out)


def _service_key(service: ServiceId) -> tuple[str, ...]:
    client = service.client
    return (client.instance, client.member_class, client.member_code, client.subsystem_code or "",
            service.service_code, service.service_version or "")


def _number(value: float) -> str:
    return repr(float(value)) if math.isfinite(value) else "0.0"


def _summary(parent: etree._Element, summary: Summary | None, names: tuple[str, str, str, str]) -> None:
    if summary is None:
        return
    for name, text in zip(names, (str(summary.minimum), _number(summary.mean), str(summary.maximum), _number(summary.std_dev))):
        etree.SubElement(parent, etree.QName(OPMON_NS, name)).text = text


def health_data_response(
    request: SoapMessage,
    request_hash: tuple[str, str],
    *,
    startup_ms: int,
    period_seconds: int,
    services: Sequence[ServiceHealth],
) -> bytes:
    """The ``getSecurityServerHealthDataResponse`` envelope of pr-opmon §3 and Annex C.4."""
    wrapper = etree.Element(etree.QName(OPMON_NS, "getSecurityServerHealthDataResponse"), nsmap={"om": OPMON_NS})
    etree.SubElement(wrapper, etree.QName(OPMON_NS, "monitoringStartupTimestamp")).text = str(startup_ms)
    etree.SubElement(wrapper, etree.QName(OPMON_NS, "statisticsPeriodSeconds")).text = str(period_seconds)
    events = etree.SubElement(wrapper, etree.QName(OPMON_NS, "servicesEvents"))
    for health in services:
        item = etree.SubElement(events, etree.QName(OPMON_NS, "serviceEvents"))
        item.append(health.service.to_xml(etree.QName(OPMON_NS, "service")))
        if health.last_successful_ms is not None:
            etree.SubElement(item, etree.QName(OPMON_NS, "lastSuccessfulRequestTimestamp")).text = str(health.last_successful_ms)
        if health.last_unsuccessful_ms is not None:
            etree.SubElement(item, etree.QName(OPMON_NS, "lastUnsuccessfulRequestTimestamp")).text = str(
                health.last_unsuccessful_ms
            )
        if health.service_type is not None:
            etree.SubElement(item, etree.QName(OPMON_NS, "serviceType")).text = health.service_type
        stats = etree.SubElement(item, etree.QName(OPMON_NS, "lastPeriodStatistics"))
        etree.SubElement(stats, etree.QName(OPMON_NS, "successfulRequestCount")).text = str(health.statistics.successful)
        etree.SubElement(stats, etree.QName(OPMON_NS, "unsuccessfulRequestCount")).text = str(health.statistics.unsuccessful)
        _summary(stats, health.statistics.duration,
                 ("requestMinDuration", "requestAverageDuration", "requestMaxDuration", "requestDurationStdDev"))
        _summary(stats, health.statistics.request_size,
                 ("requestMinSize", "requestAverageSize", "requestMaxSize", "requestSizeStdDev"))
        _summary(stats, health.statistics.response_size,
                 ("responseMinSize", "responseAverageSize", "responseMaxSize", "responseSizeStdDev"))
    return build_envelope(response_header(request, request_hash), wrapper)


# --- traffic summary (``fedbus server status``) ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TrafficLine:
    """Exchanges of one service in one role over a period: how many succeeded and how many failed."""

    role: SecurityServerType
    service: str
    succeeded: int
    failed: int


def traffic_summary(records: Iterable[OperationalRecord], *, since_ms: int) -> tuple[TrafficLine, ...]:
    """Count the exchanges whose request came in at or after ``since_ms``, per role and service (a record without
    a service, e.g. a malformed request, counts under ``unknown``); ordered by role, then service."""
    counts: dict[tuple[SecurityServerType, str], list[int]] = {}
    for record in records:
        if record.request_in_ts is None or record.request_in_ts < since_ms:
            continue
        service = "unknown" if record.service is None else service_label(record.service)
        count = counts.setdefault((record.security_server_type, service), [0, 0])
        count[0 if record.succeeded else 1] += 1
    return tuple(TrafficLine(role, service, ok, failed) for (role, service), (ok, failed) in
                 sorted(counts.items(), key=lambda item: (str(item[0][0]), item[0][1])))
