"""getSecurityServerOperationalData and getSecurityServerHealthData: requests, verdicts and answers (pr-opmon)."""

from __future__ import annotations

import gzip
import json
from typing import Any

import pytest
from lxml import etree

from security_server.core.errors import InvalidRequest
from security_server.core.identifiers import ServiceId
from security_server.core.multipart import parse_header_value
from security_server.core.opmon.query import (
    GET_HEALTH_DATA,
    GET_OPERATIONAL_DATA,
    RECORDS_CONTENT_ID,
    OperationalDataRequest,
    OpmonSettings,
    RecordQuery,
    TrafficLine,
    answer_records,
    health_data_response,
    operational_data_response,
    parse_health_data_request,
    parse_operational_data_request,
    plan_query,
    records_payload,
    service_health,
    traffic_summary,
)
from security_server.core.opmon.record import SecurityServerType
from security_server.core.safexml import parse_xml
from security_server.core.soapattachments import parse_related
from security_server.schemafiles import load_schema
from tests.security_server.core.opmon.opmon_fixture import (
    CONSUMER,
    MONITORING,
    OTHER,
    OWNER,
    PROVIDER,
    REQUEST_HASH,
    SERVICE,
    T0,
    faulted_soap,
    four_records,
    rest_call,
    schema_problems,
    soap_request,
    succeeded_soap,
    with_attachments,
)

NOW = 1_700_000_000
OM = "http://x-road.eu/xsd/op-monitoring.xsd"
CLIENT_XML = """<om:client id:objectType="SUBSYSTEM"><id:xRoadInstance>EE</id:xRoadInstance>
<id:memberClass>GOV</id:memberClass><id:memberCode>00000001</id:memberCode><id:subsystemCode>System2</id:subsystemCode>
</om:client>"""


def criteria(records_from: Any, records_to: Any, extra: str = "", spec: str | None = None) -> str:
    spec_xml = "" if spec is None else f"<om:outputSpec>{spec}</om:outputSpec>"
    return (f"<om:getSecurityServerOperationalData><om:searchCriteria><om:recordsFrom>{records_from}</om:recordsFrom>"
            f"<om:recordsTo>{records_to}</om:recordsTo>{extra}</om:searchCriteria>{spec_xml}"
            "</om:getSecurityServerOperationalData>")


def opdata(body: str) -> OperationalDataRequest:
    return parse_operational_data_request(soap_request(GET_OPERATIONAL_DATA, body))


def validate(element: etree._Element) -> None:
    schema = load_schema("op-monitoring.xsd")
    assert schema.validate(element), schema.error_log


# --- parsing --------------------------------------------------------------------------------------------------


def test_annex_c1_request_is_read() -> None:
    """The example request of pr-opmon Annex C.1 reads as its two timestamps, no filter, all fields."""
    assert opdata(criteria(1480512828, 1480512832)) == OperationalDataRequest(1480512828, 1480512832)


def test_client_filter_and_output_spec_are_read() -> None:
    """searchCriteria/client and outputSpec/outputField are read, outputField values trimmed."""
    request = opdata(criteria(1, 2, CLIENT_XML, "<om:outputField> messageId </om:outputField><om:outputField>succeeded</om:outputField>"))
    assert request.client == PROVIDER and request.output_fields == {"messageId", "succeeded"}


@pytest.mark.parametrize(
    "body",
    [
        "<om:getSecurityServerOperationalData/>",
        criteria("yesterday", 2),
        criteria(1, "2.5"),
        criteria(1, ""),
        criteria(1, 2**64),
        criteria(1, 2, "<om:unexpected/>"),
        criteria(1, 2, '<om:client id:objectType="SERVICE"><id:xRoadInstance>EE</id:xRoadInstance></om:client>'),
        criteria(1, 2, spec="<om:other>x</om:other>"),
        "<om:getSecurityServerOperationalData><om:searchCriteria><om:recordsTo>2</om:recordsTo>"
        "<om:recordsFrom>1</om:recordsFrom></om:searchCriteria></om:getSecurityServerOperationalData>",
    ],
    ids=["no-criteria", "from-text", "to-decimal", "to-empty", "to-overflow", "extra-element", "bad-client",
         "bad-spec", "wrong-order"],
)
def test_malformed_criteria_are_invalid_request(body: str) -> None:
    """Malformed search criteria are refused with client.invalid_request, as X-Road's schema check does."""
    with pytest.raises(InvalidRequest) as caught:
        opdata(body)
    assert caught.value.fault_code == "client.invalid_request"


def test_a_body_of_another_service_is_invalid_request() -> None:
    """A body element that is not the service's own wrapper is refused."""
    with pytest.raises(InvalidRequest):
        parse_operational_data_request(etree.Element(f"{{{OM}}}getSecurityServerHealthData"))
    with pytest.raises(InvalidRequest):
        parse_health_data_request(etree.Element("{urn:other}getSecurityServerHealthData"))


def test_health_request_filter_is_read() -> None:
    """getSecurityServerHealthData with filterCriteria/client (Annex C.3) names the provider; without, None."""
    body = f"<om:getSecurityServerHealthData><om:filterCriteria>{CLIENT_XML}</om:filterCriteria></om:getSecurityServerHealthData>"
    assert parse_health_data_request(soap_request(GET_HEALTH_DATA, body)) == PROVIDER
    assert parse_health_data_request(soap_request(GET_HEALTH_DATA, "<om:getSecurityServerHealthData/>")) is None
    with pytest.raises(InvalidRequest):
        parse_health_data_request(soap_request(GET_HEALTH_DATA, "<om:getSecurityServerHealthData><om:x/></om:getSecurityServerHealthData>"))


# --- verdicts -------------------------------------------------------------------------------------------------


def plan(request: OperationalDataRequest, requester: Any = OWNER, **settings: Any) -> RecordQuery:
    return plan_query(request, requester=requester, owner=OWNER, monitoring_client=MONITORING, now_seconds=NOW,
                      settings=OpmonSettings(**settings))


@pytest.mark.parametrize(
    "records_from,records_to,message",
    [
        (-1, 5, "Records from timestamp is a negative number"),
        (5, -1, "Records to timestamp is a negative number"),
        (10, 9, "Records to timestamp is earlier than records from timestamp"),
        (NOW - 60, NOW, f"Records not available from {NOW - 60} yet"),
    ],
)
def test_bad_time_ranges_are_invalid_request(records_from: int, records_to: int, message: str) -> None:
    """Negative times, recordsFrom after recordsTo and a start within the offset each get X-Road's message."""
    with pytest.raises(InvalidRequest) as caught:
        plan(OperationalDataRequest(records_from, records_to))
    assert caught.value.message == message and caught.value.fault_code == "client.invalid_request"


def test_unknown_output_field_is_invalid_request() -> None:
    """An outputField that names no record field is refused (X-Road checkOutputFields)."""
    with pytest.raises(InvalidRequest, match="Unknown output field in search criteria: password"):
        plan(OperationalDataRequest(1, 2, output_fields=frozenset({"messageId", "password"})))


def test_records_to_is_clamped_to_the_offset() -> None:
    """recordsTo at or after now - 60 s is moved to now - 61 s and nextRecordsFrom is now - 60 s."""
    query = plan(OperationalDataRequest(0, NOW + 3600))
    assert (query.records_to, query.next_records_from) == (NOW - 61, NOW - 60)
    early = plan(OperationalDataRequest(0, NOW - 61))
    assert (early.records_to, early.next_records_from) == (NOW - 61, None)
    assert plan(OperationalDataRequest(0, NOW), records_available_offset_seconds=10).records_to == NOW - 11


def test_huge_range_is_served_within_the_record_limit() -> None:
    """A range from 0 to far in the future is accepted; the record limit, not the range, bounds the answer."""
    query = plan(OperationalDataRequest(0, 2**62), max_records_in_payload=2)
    assert query.limit == 2 and query.records_to == NOW - 61


def test_owner_and_monitoring_client_see_all_others_only_their_own() -> None:
    """Owner and central monitoring client: no participant filter, all fields; anyone else: itself, public fields."""
    for requester in (OWNER, MONITORING):
        query = plan(OperationalDataRequest(1, 2), requester)
        assert query.participant is None and not query.public_only
    other = plan(OperationalDataRequest(1, 2), CONSUMER)
    assert other.participant == CONSUMER and other.public_only
    assert plan_query(OperationalDataRequest(1, 2), requester=MONITORING, owner=OWNER, monitoring_client=None,
                      now_seconds=NOW).participant == MONITORING


def test_access_rule_on_records() -> None:
    """A client sees records where it is the client or the service provider, never others' records."""
    records = four_records()  # three with CONSUMER as client, one REST call from OTHER to PROVIDER
    def visible(requester: Any, provider: Any = None) -> list[str | None]:
        query = plan(OperationalDataRequest(0, NOW - 100, provider), requester)
        return [r.message_id for r in records if query.matches(r)]
    assert visible(OWNER) == ["1TzYPstxXyYPtNsos4TNEAPykJh50aJz", "fault-1", "mime-1", "rest-1"]
    assert visible(CONSUMER) == ["1TzYPstxXyYPtNsos4TNEAPykJh50aJz", "fault-1", "mime-1"]
    assert visible(OTHER) == ["rest-1"]
    assert visible(PROVIDER) == ["1TzYPstxXyYPtNsos4TNEAPykJh50aJz", "fault-1", "mime-1", "rest-1"]


def test_client_filter_naming_another_member_never_widens_a_non_owners_view() -> None:
    """A non-owner's client filter naming another member narrows its own records; it reveals nothing else."""
    records = four_records()
    query = plan(OperationalDataRequest(0, NOW - 100, OTHER), CONSUMER)
    assert [r for r in records if query.matches(r)] == []
    query = plan(OperationalDataRequest(0, NOW - 100, PROVIDER), OTHER)
    assert [r.message_id for r in records if query.matches(r)] == ["rest-1"]
    owner_view = plan(OperationalDataRequest(0, NOW - 100, OTHER), OWNER)
    assert [r for r in records if owner_view.matches(r)] == []  # OTHER provides nothing


def test_time_range_is_inclusive_on_monitoring_seconds() -> None:
    """Records whose monitoringDataTs lies in [recordsFrom, recordsTo] match; unstamped records never do."""
    query = plan(OperationalDataRequest(1_600_000_002, 1_600_000_003))
    stamped = [succeeded_soap().stamped(t) for t in (1_600_000_001, 1_600_000_002, 1_600_000_003, 1_600_000_004)]
    assert [r.monitoring_data_ts for r in stamped if query.matches(r)] == [1_600_000_002, 1_600_000_003]
    assert not query.matches(succeeded_soap())


def test_limit_keeps_the_whole_last_second_and_sets_next_records_from() -> None:
    """Cut at the limit, every record of the last answered second stays and nextRecordsFrom is that second + 1."""
    query = plan(OperationalDataRequest(0, NOW - 100), max_records_in_payload=2)
    records = [succeeded_soap(message_id=str(i)).stamped(ts) for i, ts in enumerate((10, 11, 11, 12))]
    answered, next_from = answer_records(query, records)
    assert [r["messageId"] for r in answered] == ["0", "1", "2"] and next_from == 12
    all_fit, next_from = answer_records(query, records[:2])
    assert len(all_fit) == 2 and next_from is None
    same_second, next_from = answer_records(query, records[1:3] + [succeeded_soap().stamped(11)])
    assert len(same_second) == 3 and next_from is None  # nothing left after the last second


def test_clamp_gives_next_records_from_when_nothing_is_cut() -> None:
    """When recordsTo was moved back, nextRecordsFrom is the first second not yet served."""
    query = plan(OperationalDataRequest(0, NOW))
    assert answer_records(query, four_records())[1] == NOW - 60


# --- the answers ----------------------------------------------------------------------------------------------


def test_operational_data_response_is_multipart_with_a_gzipped_swaref_attachment() -> None:
    """The answer: multipart/related, SOAP part valid against the schema, records as gzipped JSON by cid."""
    request = soap_request(GET_OPERATIONAL_DATA, criteria(0, NOW))
    query = plan(opdata(criteria(0, NOW)))
    records, next_from = answer_records(query, four_records())
    content_type, body = operational_data_response(request, REQUEST_HASH, records, next_from)
    assert parse_header_value(content_type).media_type == "multipart/related"
    message = parse_related(content_type, body)
    envelope = parse_xml(message.soap.body)
    wrapper = envelope.find(f".//{{{OM}}}getSecurityServerOperationalDataResponse")
    assert wrapper is not None
    validate(wrapper)
    assert wrapper.findtext(f"{{{OM}}}recordsCount") == "4"
    assert wrapper.findtext(f"{{{OM}}}records") == f"cid:{RECORDS_CONTENT_ID}"
    assert wrapper.findtext(f"{{{OM}}}nextRecordsFrom") == str(NOW - 60)
    assert envelope.find(".//{http://x-road.eu/xsd/xroad.xsd}requestHash") is not None
    (attachment,) = message.attachments
    assert attachment.header("Content-Type") == "application/gzip"
    assert attachment.header("Content-ID") == f"<{RECORDS_CONTENT_ID}>"
    payload = json.loads(gzip.decompress(attachment.body))
    assert schema_problems(payload) == [] and len(payload["records"]) == 4


def test_response_without_next_records_from_when_not_cut() -> None:
    """nextRecordsFrom is left out when the whole range was answered."""
    request = soap_request(GET_OPERATIONAL_DATA, criteria(0, 5))
    content_type, body = operational_data_response(request, REQUEST_HASH, [], None)
    wrapper = parse_xml(parse_related(content_type, body).soap.body).find(f".//{{{OM}}}getSecurityServerOperationalDataResponse")
    assert wrapper is not None
    validate(wrapper)
    assert wrapper.find(f"{{{OM}}}nextRecordsFrom") is None and wrapper.findtext(f"{{{OM}}}recordsCount") == "0"


def test_payload_is_deterministic() -> None:
    """The same records always give the same gzip bytes (gzip's time field is zero)."""
    records = [r.to_json() for r in four_records()]
    assert records_payload(records) == records_payload(records)


# --- health data ----------------------------------------------------------------------------------------------


def producer(ok: bool, at: int, duration: int, size: int, **extra: Any) -> Any:
    return succeeded_soap(succeeded=ok, request_in_ts=at - duration, response_out_ts=at, request_size=size,
                          response_size=size + 1, **extra)


def test_health_statistics_over_the_period() -> None:
    """Counts over the period; min/avg/max/sample stddev of durations and sizes of the successful requests only."""
    now = T0 + 1_000_000
    records = [
        producer(True, now - 10_000, 40, 100),
        producer(True, now - 5_000, 60, 300),
        producer(False, now - 1_000, 500, 9999),
        producer(True, now - 700_000, 1, 1),  # before the 600 s period: only its time counts
        faulted_soap(response_out_ts=now - 100),  # Client role: not health data
    ]
    (health,) = service_health(records, now_ms=now, period_seconds=600)
    assert health.service == SERVICE and health.service_type == "WSDL"
    assert (health.last_successful_ms, health.last_unsuccessful_ms) == (now - 5_000, now - 1_000)
    stats = health.statistics
    assert (stats.successful, stats.unsuccessful) == (2, 1)
    assert stats.duration is not None and stats.request_size is not None
    assert (stats.duration.minimum, stats.duration.mean, stats.duration.maximum) == (40, 50.0, 60)
    assert stats.duration.std_dev == pytest.approx(14.142135623730951)
    assert (stats.request_size.minimum, stats.request_size.mean, stats.request_size.maximum) == (100, 200.0, 300)
    assert stats.request_size.std_dev == pytest.approx(141.4213562373095)
    assert stats.response_size is not None and stats.response_size.minimum == 101


def test_health_of_a_service_with_only_failures_has_no_summaries() -> None:
    """Without a successful request in the period the durations and sizes are left out (X-Road)."""
    now = T0 + 10_000
    (health,) = service_health([producer(False, now - 10, 5, 5)], now_ms=now, period_seconds=600)
    assert health.statistics.duration is None and health.statistics.unsuccessful == 1
    assert health.last_successful_ms is None


def test_health_filter_by_provider() -> None:
    """filterCriteria/client keeps only the services of that provider."""
    other_service = ServiceId(OTHER, "x")
    records = [producer(True, T0, 1, 1), producer(True, T0, 1, 1, service=other_service)]
    assert [h.service for h in service_health(records, now_ms=T0, period_seconds=600)] == [other_service, SERVICE]
    assert [h.service for h in service_health(records, now_ms=T0, period_seconds=600, provider=PROVIDER)] == [SERVICE]


def test_health_data_response_matches_the_schema_and_annex_c4() -> None:
    """The health answer validates against the schema and carries the figures as Annex C.4 shows them."""
    now = T0 + 10_000
    services = service_health([producer(True, now - 100, 42, 1629), rest_call(response_out_ts=now - 5, succeeded=False),
                               with_attachments()], now_ms=now, period_seconds=600)
    request = soap_request(GET_HEALTH_DATA, "<om:getSecurityServerHealthData/>")
    envelope = parse_xml(health_data_response(request, REQUEST_HASH, startup_ms=T0, period_seconds=600, services=services))
    wrapper = envelope.find(f".//{{{OM}}}getSecurityServerHealthDataResponse")
    assert wrapper is not None
    validate(wrapper)
    assert wrapper.findtext(f"{{{OM}}}monitoringStartupTimestamp") == str(T0)
    assert wrapper.findtext(f"{{{OM}}}statisticsPeriodSeconds") == "600"
    events = wrapper.findall(f".//{{{OM}}}serviceEvents")
    assert len(events) == 2
    assert events[1].findtext(f".//{{{OM}}}requestMinDuration") == "42"
    assert events[1].findtext(f".//{{{OM}}}requestMaxDuration") == "110"
    assert events[1].findtext(f".//{{{OM}}}requestAverageDuration") == "76.0"
    assert events[0].find(f".//{{{OM}}}requestMinDuration") is None  # the REST service only failed


def test_settings_are_checked() -> None:
    """A record limit below 1 or a negative period is refused."""
    with pytest.raises(ValueError):
        OpmonSettings(max_records_in_payload=0)
    with pytest.raises(ValueError):
        OpmonSettings(health_statistics_period_seconds=-1)


def test_traffic_summary_counts_per_role_and_service() -> None:
    """The status view's traffic: successes and failures per role and service since a time; old ones left out."""
    lines = traffic_summary(four_records() + [succeeded_soap(request_in_ts=T0 - 10), succeeded_soap(service=None)],
                            since_ms=T0)
    assert lines == (
        TrafficLine(SecurityServerType.CLIENT, str(SERVICE), 0, 1),
        TrafficLine(SecurityServerType.PRODUCER, "SERVICE:EE/GOV/00000001/System2/pets", 1, 0),
        TrafficLine(SecurityServerType.PRODUCER, str(SERVICE), 2, 0),
        TrafficLine(SecurityServerType.PRODUCER, "unknown", 1, 0),
    )
