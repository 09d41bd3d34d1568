"""getSecurityServerMetrics (envmon-messages): request, access rule and the metricSet answer, checked against
the schema of envmon-messages §2.3."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from lxml import etree

from security_server.core.envmon import (
    GET_SECURITY_SERVER_METRICS,
    MONITORING_NS,
    HistogramMetric,
    MetricSet,
    NumericMetric,
    StringMetric,
    check_access,
    metric_set_element,
    metrics_response,
    parse_metrics_request,
    select,
)
from security_server.core.errors import AccessDenied, InvalidRequest
from security_server.core.identifiers import SecurityServerId
from security_server.core.safexml import parse_xml
from security_server.schemafiles import load_schema
from security_server.core.soap import SoapMessage, parse_soap
from tests.security_server.core.opmon.opmon_fixture import CONSUMER, MONITORING, OWNER, REQUEST_HASH, REQUEST_TEMPLATE

SERVER = SecurityServerId(OWNER, "ss1")
UPDATED = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
M = f"{{{MONITORING_NS}}}"


def request(body: str) -> SoapMessage:
    text = REQUEST_TEMPLATE.format(service=GET_SECURITY_SERVER_METRICS, body=body).replace(
        'xmlns:id="http://x-road.eu/xsd/identifiers"', f'xmlns:id="http://x-road.eu/xsd/identifiers" xmlns:m="{MONITORING_NS}"')
    return parse_soap(text.encode("utf-8"), "text/xml", max_bytes=100_000)


def sample_metrics() -> list[NumericMetric | StringMetric | HistogramMetric | MetricSet]:
    return [
        StringMetric("OperatingSystem", "Linux version 6.1.0"),
        NumericMetric("TotalPhysicalMemory", 2097684480),
        HistogramMetric.of("SystemCpuLoad", [1.0, 2.0, 6.0], UPDATED),
        HistogramMetric.of("FreePhysicalMemory", [1e-7, 3.5e12], UPDATED),
        NumericMetric("DiskSpaceFree_/", 12.5),
        MetricSet("Certificates", (MetricSet("certificate-ab", (StringMetric("sha1Hash", "ab"),)),)),
    ]


def test_output_spec_is_read() -> None:
    """The outputSpec of envmon-messages §2.1 gives the metric names; without one, everything."""
    spec = "<m:getSecurityServerMetrics><m:outputSpec><m:outputField>OperatingSystem</m:outputField>" \
           "<m:outputField>TotalPhysicalMemory</m:outputField></m:outputSpec></m:getSecurityServerMetrics>"
    assert parse_metrics_request(request(spec)) == {"OperatingSystem", "TotalPhysicalMemory"}
    assert parse_metrics_request(request("<m:getSecurityServerMetrics/>")) == frozenset()
    assert parse_metrics_request(request("<m:getSecurityServerMetrics><m:outputSpec/></m:getSecurityServerMetrics>")) == frozenset()


@pytest.mark.parametrize("inner", ["<m:other/>", "<m:outputSpec><m:bad>x</m:bad></m:outputSpec>",
                                   "<m:outputSpec/><m:outputSpec/>"])
def test_malformed_requests_are_invalid(inner: str) -> None:
    """Elements other than one outputSpec of outputField are refused with invalid_request."""
    with pytest.raises(InvalidRequest):
        parse_metrics_request(request(f"<m:getSecurityServerMetrics>{inner}</m:getSecurityServerMetrics>"))
    with pytest.raises(InvalidRequest):
        parse_metrics_request(etree.Element("{urn:x}getSecurityServerMetrics"))


def test_only_owner_and_monitoring_client_may_ask() -> None:
    """Owner and central monitoring client pass; any other client gets access_denied as X-Road answers."""
    check_access(OWNER, owner=OWNER, monitoring_client=MONITORING)
    check_access(MONITORING, owner=OWNER, monitoring_client=MONITORING)
    with pytest.raises(AccessDenied) as caught:
        check_access(CONSUMER, owner=OWNER, monitoring_client=MONITORING)
    assert caught.value.fault_code == "server.serverproxy.access_denied" and caught.value.message == "Request is not allowed"
    with pytest.raises(AccessDenied):
        check_access(MONITORING, owner=OWNER, monitoring_client=None)


def test_select_honours_output_spec() -> None:
    """outputSpec keeps the named metrics in their order; unknown names are ignored; empty keeps all."""
    metrics = sample_metrics()
    assert [m.name for m in select(metrics, frozenset({"TotalPhysicalMemory", "OperatingSystem", "Nope"}))] == [
        "OperatingSystem", "TotalPhysicalMemory"]
    assert select(metrics, frozenset()) == tuple(metrics)


def test_answer_validates_and_has_the_shape_of_section_2_2() -> None:
    """The answer validates against §2.3's schema: the server's set, proxyVersion, then systemMetrics."""
    element = metric_set_element(SERVER, "7.8.0-fedbus", sample_metrics())
    schema = load_schema("env-monitoring.xsd")
    assert schema.validate(element), schema.error_log
    top = element.find(f"{M}metricSet")
    assert top is not None and top.findtext(f"{M}name") == "SERVER:EE/GOV/00000001/ss1"
    assert top.findtext(f"{M}stringMetric/{M}value") == "7.8.0-fedbus"
    system = top.find(f"{M}metricSet")
    assert system is not None and system.findtext(f"{M}name") == "systemMetrics"
    cpu = system.find(f"{M}histogramMetric")
    assert cpu is not None
    assert [cpu.findtext(f"{M}{t}") for t in ("min", "max", "mean", "median")] == ["1.0", "6.0", "3.0", "2.0"]
    assert cpu.findtext(f"{M}updated") == "2026-12-07T12:00:00+00:00"
    memory = system.findall(f"{M}histogramMetric")[1]
    assert memory.findtext(f"{M}min") == "0.0000001"  # xs:decimal has no exponent


def test_whole_response_carries_the_request_header_and_hash() -> None:
    """The SOAP answer echoes the request's header with requestHash and holds the metric set."""
    asked = request("<m:getSecurityServerMetrics/>")
    envelope = parse_xml(metrics_response(asked, REQUEST_HASH, server=SERVER, proxy_version="1", system_metrics=[]))
    assert envelope.find(".//{http://x-road.eu/xsd/xroad.xsd}requestHash") is not None
    body = envelope.find(f".//{M}getSecurityServerMetricsResponse")
    assert body is not None and load_schema("env-monitoring.xsd").validate(body)
    assert body.find(f"{M}metricSet/{M}metricSet") is None  # no metric asked for: no empty systemMetrics set


def test_request_as_section_2_1_validates_against_our_schema() -> None:
    """The request of envmon-messages §2.1, with outputSpec, validates against env-monitoring.xsd."""
    asked = request("<m:getSecurityServerMetrics><m:outputSpec><m:outputField>OperatingSystem</m:outputField>"
                    "</m:outputSpec></m:getSecurityServerMetrics>")
    wrapper = asked.body[0]
    assert load_schema("env-monitoring.xsd").validate(wrapper)


def test_histogram_needs_samples() -> None:
    """A histogram of nothing is a programming error."""
    with pytest.raises(ValueError):
        HistogramMetric.of("x", [], UPDATED)
