"""The monitoring metaservices end to end over a real store: request in, answer (or X-Road fault) out."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any, Callable

import pytest
from twisted.internet.defer import Deferred, succeed
from twisted.internet.task import Clock

from security_server.core.envmon import GET_SECURITY_SERVER_METRICS, MONITORING_NS
from security_server.core.errors import AccessDenied, BusError, InvalidRequest
from security_server.core.identifiers import SecurityServerId
from security_server.core.opmon.query import GET_HEALTH_DATA, GET_OPERATIONAL_DATA, OPMON_NS
from security_server.core.safexml import parse_xml
from security_server.core.soap import parse_soap
from security_server.core.soapattachments import parse_related
from security_server.envmon.sensors import SystemSampler
from security_server.metrics import ServerMetrics
from security_server.opmon.buffer import OpmonBuffer
from security_server.opmon.recorder import ExchangeRecorder
from security_server.opmon.services import EnvmonService, OpmonServices
from security_server.opmon.store import OpmonStore
from tests.security_server.core.opmon.opmon_fixture import (
    CONSUMER,
    MONITORING,
    OWNER,
    REQUEST_HASH,
    REQUEST_TEMPLATE,
    T0,
    faulted_soap,
    rest_call,
    schema_problems,
    soap_request,
    succeeded_soap,
    with_attachments,
)

NOW = T0 // 1000 + 3600


def run_now(function: Callable[[], Any]) -> Deferred[Any]:
    return succeed(function())


def result_of(deferred: Deferred[Any]) -> Any:
    box: list[Any] = []
    deferred.addBoth(box.append)
    assert box
    return box[0]


@pytest.fixture
def services(tmp_path: Path) -> OpmonServices:
    store = OpmonStore(tmp_path / "opmon.db")
    store.store([succeeded_soap(), faulted_soap(), with_attachments(), rest_call()], NOW - 600)
    clock = Clock()
    clock.advance(NOW)
    return OpmonServices(store, run_now, owner=lambda: OWNER, monitoring_client=lambda: MONITORING, clock=clock,
                         startup_ms=T0 - 1000)


def test_operational_data_end_to_end(services: OpmonServices) -> None:
    """A consumer's query answers its own three records as gzipped JSON, cut at now - 60 s."""
    body = (f"<om:getSecurityServerOperationalData><om:searchCriteria><om:recordsFrom>0</om:recordsFrom>"
            f"<om:recordsTo>{NOW}</om:recordsTo></om:searchCriteria></om:getSecurityServerOperationalData>")
    content_type, answer = result_of(services.answer(soap_request(GET_OPERATIONAL_DATA, body), REQUEST_HASH))
    message = parse_related(content_type, answer)
    wrapper = parse_xml(message.soap.body).find(f".//{{{OPMON_NS}}}getSecurityServerOperationalDataResponse")
    assert wrapper is not None and wrapper.findtext(f"{{{OPMON_NS}}}recordsCount") == "3"
    assert wrapper.findtext(f"{{{OPMON_NS}}}nextRecordsFrom") == str(NOW - 60)
    payload = json.loads(gzip.decompress(message.attachments[0].body))
    assert schema_problems(payload) == []
    assert all("securityServerInternalIp" not in r for r in payload["records"])  # the requester is not the owner


def test_bad_query_fails_with_invalid_request(services: OpmonServices) -> None:
    """recordsFrom after recordsTo fails the answer with client.invalid_request."""
    body = ("<om:getSecurityServerOperationalData><om:searchCriteria><om:recordsFrom>10</om:recordsFrom>"
            "<om:recordsTo>5</om:recordsTo></om:searchCriteria></om:getSecurityServerOperationalData>")
    failure = result_of(services.answer(soap_request(GET_OPERATIONAL_DATA, body), REQUEST_HASH))
    assert isinstance(failure.value, InvalidRequest) and failure.value.fault_code == "client.invalid_request"


def test_health_data_end_to_end(services: OpmonServices) -> None:
    """Health data answers the producer's services; the consumer-side record is not counted."""
    content_type, answer = result_of(services.answer(soap_request(GET_HEALTH_DATA, "<om:getSecurityServerHealthData/>"),
                                                     REQUEST_HASH))
    assert content_type.startswith("text/xml")
    wrapper = parse_xml(answer).find(f".//{{{OPMON_NS}}}getSecurityServerHealthDataResponse")
    assert wrapper is not None and len(wrapper.findall(f".//{{{OPMON_NS}}}serviceEvents")) == 2
    assert wrapper.findtext(f"{{{OPMON_NS}}}monitoringStartupTimestamp") == str(T0 - 1000)


def test_a_store_failure_is_a_database_error(tmp_path: Path) -> None:
    """When the store cannot be read the answer fails with server.database_error."""
    path = tmp_path / "opmon.db"
    path.write_bytes(b"garbage" * 1000)
    clock = Clock()
    clock.advance(NOW)
    broken = OpmonServices(OpmonStore(path), run_now, owner=lambda: OWNER, monitoring_client=lambda: None, clock=clock,
                           startup_ms=0)
    failure = result_of(broken.answer(soap_request(GET_HEALTH_DATA, "<om:getSecurityServerHealthData/>"), REQUEST_HASH))
    assert isinstance(failure.value, BusError) and failure.value.fault_code == "server.database_error"


def metrics_request() -> Any:
    text = REQUEST_TEMPLATE.format(service=GET_SECURITY_SERVER_METRICS, body=f'<m:getSecurityServerMetrics xmlns:m="{MONITORING_NS}"/>')
    return parse_soap(text.encode(), "text/xml", max_bytes=100_000)


def test_envmon_refuses_a_client_that_is_not_owner_or_monitoring(tmp_path: Path) -> None:
    """The requester (a subsystem of another member) is neither owner nor monitoring client: access_denied."""
    service = EnvmonService(SystemSampler(Clock(), disk_paths=[tmp_path]), run_now,
                            server=lambda: SecurityServerId(OWNER, "ss1"), monitoring_client=lambda: MONITORING,
                            proxy_version="0.1.0")
    failure = result_of(service.answer(metrics_request(), REQUEST_HASH))
    assert isinstance(failure.value, AccessDenied)


def test_envmon_answers_the_monitoring_client(tmp_path: Path) -> None:
    """When the requester is the central monitoring client the metric set is answered."""
    service = EnvmonService(SystemSampler(Clock(), disk_paths=[tmp_path]), run_now,
                            server=lambda: SecurityServerId(OWNER, "ss1"), monitoring_client=lambda: CONSUMER,
                            proxy_version="0.1.0")
    content_type, body = result_of(service.answer(metrics_request(), REQUEST_HASH))
    assert content_type.startswith("text/xml") and b"systemMetrics" in body and b"proxyVersion" in body


def test_recorder_feeds_buffer_and_metrics_and_never_raises() -> None:
    """A finished exchange lands in the buffer and the counters; a broken record is counted, not raised."""
    buffer = OpmonBuffer()
    metrics = ServerMetrics()
    recorder = ExchangeRecorder(buffer, metrics)
    recorder.finished(lambda: faulted_soap(), {"total": 0.04})
    recorder.finished(lambda: succeeded_soap(request_size=-1))
    assert len(buffer) == 1 and buffer.unbuildable == 1
    text = metrics.render().decode()
    assert 'result="server.serverproxy.access_denied"' in text and 'direction="client"' in text
