"""The operational record: X-Road's fields and their JSON form (pr-opmon Annex B)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from security_server.core.opmon.record import (
    OUTPUT_FIELDS,
    PUBLIC_OUTPUT_FIELDS,
    OperationalRecord,
    SecurityServerType,
    project,
)

from tests.security_server.core.opmon.opmon_fixture import four_records, load_schema, rest_call, schema_problems, succeeded_soap, with_attachments


def test_output_fields_are_exactly_the_schema_properties() -> None:
    """The outputSpec field list of pr-opmon §2 and the record properties of Annex B name the same 39 fields."""
    properties = set(load_schema()["properties"]["records"]["items"]["properties"])
    assert set(OUTPUT_FIELDS) == properties
    assert len(OUTPUT_FIELDS) == 39


@pytest.mark.parametrize("record", four_records(), ids=["succeeded", "fault", "attachments", "rest"])
def test_each_case_conforms_to_the_annex_schema(record: OperationalRecord) -> None:
    """A succeeding, a faulting, a multipart and a REST exchange each give a record that Annex B accepts."""
    assert schema_problems({"records": [record.to_json()]}) == []


def test_every_field_appears_in_some_case_with_its_schema_type() -> None:
    """Between them the four cases fill every field of Annex B, so each field's type is checked above."""
    filled: set[str] = set()
    for record in four_records():
        filled |= set(record.to_json())
    assert filled == set(OUTPUT_FIELDS)


def test_json_names_and_values_of_a_successful_exchange() -> None:
    """camelCase names, ids split into their parts, enums as their X-Road text, nulls left out."""
    data = succeeded_soap().stamped(1477633845).to_json()
    assert data["securityServerType"] == "Producer"
    assert data["clientSubsystemCode"] == "System1" and data["serviceSubsystemCode"] == "System2"
    assert data["serviceCode"] == "xroadGetRandom" and data["serviceVersion"] == "v1"
    assert data["serviceType"] == "WSDL" and data["monitoringDataTs"] == 1477633845
    assert "faultCode" not in data and "restMethod" not in data


def test_rest_and_attachment_fields() -> None:
    """A REST record carries method, path and status; a multipart one its MIME sizes and counts."""
    rest = rest_call().to_json()
    assert (rest["restMethod"], rest["restPath"], rest["statusCode"], rest["serviceType"]) == ("GET", "/pets/1", 200, "REST")
    mime = with_attachments().to_json()
    assert (mime["requestMimeSize"], mime["requestAttachmentCount"], mime["responseAttachmentCount"]) == (9000, 2, 1)


def test_json_round_trip() -> None:
    """from_json reads back exactly what to_json wrote, for every case."""
    for record in four_records():
        assert OperationalRecord.from_json(record.to_json()) == record


def test_overlong_text_is_cut_to_the_schema_limits() -> None:
    """A provider's long fault string or a long message id never makes the record invalid: it is cut."""
    record = succeeded_soap(fault_string="x" * 5000, message_id="y" * 300, succeeded=False)
    assert len(record.fault_string or "") == 2048 and len(record.message_id or "") == 255
    assert schema_problems({"records": [record.to_json()]}) == []


@pytest.mark.parametrize(
    "overrides",
    [{"request_size": -1}, {"request_in_ts": "1"}, {"succeeded": 1}, {"security_server_internal_ip": "::1"},
     {"security_server_type": "Consumer"}, {"status_code": True}],
)
def test_invalid_values_are_refused(overrides: dict[str, Any]) -> None:
    """Negative or non-integer counts, a non-bool result, a non-IPv4 internal address, an unknown type: refused."""
    with pytest.raises(ValueError):
        succeeded_soap(**overrides)


def test_duration_is_request_in_to_response_out() -> None:
    """X-Road's request duration: responseOutTs - requestInTs; unknown when either is missing."""
    assert succeeded_soap().duration_ms == 270
    assert succeeded_soap(response_out_ts=None).duration_ms is None


def test_projection_honours_output_spec_and_hides_the_internal_ip() -> None:
    """outputSpec keeps only the named fields; a non-owner never sees securityServerInternalIp."""
    data = succeeded_soap().stamped(5).to_json()
    assert project(data, frozenset({"messageId", "securityServerInternalIp"}), public_only=False) == {
        "messageId": data["messageId"], "securityServerInternalIp": "192.168.1.1"}
    assert project(data, frozenset({"messageId", "securityServerInternalIp"}), public_only=True) == {
        "messageId": data["messageId"]}
    assert set(project(data, frozenset(), public_only=True)) == set(data) - {"securityServerInternalIp"}
    assert "securityServerInternalIp" not in PUBLIC_OUTPUT_FIELDS


@given(
    st.builds(
        OperationalRecord,
        security_server_type=st.sampled_from(SecurityServerType),
        succeeded=st.booleans(),
        request_in_ts=st.none() | st.integers(min_value=0, max_value=2**53),
        response_size=st.none() | st.integers(min_value=0, max_value=2**40),
        fault_string=st.none() | st.text(max_size=3000),
        message_id=st.none() | st.text(max_size=400),
        rest_path=st.none() | st.text(max_size=400),
    )
)
def test_any_record_conforms_and_round_trips(record: OperationalRecord) -> None:
    """Whatever text and sizes an exchange carries, its record fits Annex B and survives the JSON round trip."""
    assert schema_problems({"records": [record.to_json()]}) == []
    assert OperationalRecord.from_json(record.to_json()) == record
