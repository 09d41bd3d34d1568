"""Shared test material for operational monitoring: four exchanges' records and a check against pr-opmon's schema.

The records are the four cases issue 15 names: a SOAP exchange that succeeds, one that faults, one with
attachments, and a REST call. ``schema_problems`` checks a payload against ``schemas/opmon-records.schema.json``
(pr-opmon Annex B) for the keywords that schema uses (jsonschema is not a dependency of fedbus).
"""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path
from typing import Any

from security_server.core.identifiers import ClientId, ServiceId
from security_server.core.opmon.record import OperationalRecord, SecurityServerType, ServiceType
from security_server.core.soap import SoapMessage, parse_soap

REPO = Path(__file__).resolve().parents[4]
SCHEMA_PATH = REPO / "schemas" / "opmon-records.schema.json"

OWNER = ClientId("EE", "GOV", "00000001")
CONSUMER = ClientId("EE", "GOV", "00000002", "System1")
OTHER = ClientId("EE", "COM", "00000003", "Other")
PROVIDER = ClientId("EE", "GOV", "00000001", "System2")
MONITORING = ClientId("EE", "GOV", "00000000", "Center")
SERVICE = ServiceId(PROVIDER, "xroadGetRandom", "v1")
REST_SERVICE = ServiceId(PROVIDER, "pets")

T0 = 1_600_000_000_000  # ms


def succeeded_soap(**overrides: Any) -> OperationalRecord:
    """A SOAP exchange that succeeded, seen on the provider's side, with every field X-Road fills for it."""
    values: dict[str, Any] = dict(
        security_server_type=SecurityServerType.PRODUCER,
        succeeded=True,
        request_in_ts=T0,
        request_out_ts=T0 + 13,
        response_in_ts=T0 + 249,
        response_out_ts=T0 + 270,
        client=CONSUMER,
        service=SERVICE,
        represented_party_class="COM",
        represented_party_code="MEMBER123",
        message_id="1TzYPstxXyYPtNsos4TNEAPykJh50aJz",
        message_user_id="EE37701010101",
        message_issue="453465",
        message_protocol_version="4.0",
        client_security_server_address="ss1.example",
        service_security_server_address="ss0.example",
        request_size=1629,
        response_size=1518,
        request_attachment_count=0,
        response_attachment_count=0,
        service_type=ServiceType.WSDL,
        x_road_version="7.8.0",
        security_server_internal_ip="192.168.1.1",
    )
    values.update(overrides)
    return OperationalRecord(**values)


def faulted_soap(**overrides: Any) -> OperationalRecord:
    """A SOAP exchange that ended in a fault, seen on the consumer's side."""
    values: dict[str, Any] = dict(
        security_server_type=SecurityServerType.CLIENT,
        succeeded=False,
        request_in_ts=T0 + 1000,
        response_out_ts=T0 + 1040,
        client=CONSUMER,
        service=SERVICE,
        message_id="fault-1",
        message_protocol_version="4.0",
        request_size=900,
        fault_code="server.serverproxy.access_denied",
        fault_string="Request is not allowed",
        service_type=ServiceType.WSDL,
        x_road_version="7.8.0",
    )
    values.update(overrides)
    return OperationalRecord(**values)


def with_attachments(**overrides: Any) -> OperationalRecord:
    """A SOAP exchange whose request and response travelled as multipart/related with attachments."""
    values: dict[str, Any] = dict(
        security_server_type=SecurityServerType.PRODUCER,
        succeeded=True,
        request_in_ts=T0 + 2000,
        request_out_ts=T0 + 2005,
        response_in_ts=T0 + 2100,
        response_out_ts=T0 + 2110,
        client=CONSUMER,
        service=SERVICE,
        message_id="mime-1",
        message_protocol_version="4.0",
        request_size=1200,
        request_mime_size=9000,
        request_attachment_count=2,
        response_size=1100,
        response_mime_size=4100,
        response_attachment_count=1,
        service_type=ServiceType.WSDL,
    )
    values.update(overrides)
    return OperationalRecord(**values)


def rest_call(**overrides: Any) -> OperationalRecord:
    """A REST call: method, path and HTTP status instead of SOAP headers."""
    values: dict[str, Any] = dict(
        security_server_type=SecurityServerType.PRODUCER,
        succeeded=True,
        request_in_ts=T0 + 3000,
        request_out_ts=T0 + 3002,
        response_in_ts=T0 + 3050,
        response_out_ts=T0 + 3060,
        client=OTHER,
        service=REST_SERVICE,
        rest_method="GET",
        rest_path="/pets/1",
        message_id="rest-1",
        message_user_id="user-7",
        request_size=0,
        response_size=310,
        status_code=200,
        service_type=ServiceType.REST,
        x_road_version="7.8.0",
    )
    values.update(overrides)
    return OperationalRecord(**values)


def four_records() -> list[OperationalRecord]:
    """The four cases, each stamped with a monitoring second."""
    return [
        succeeded_soap().stamped(1_600_000_001),
        faulted_soap().stamped(1_600_000_002),
        with_attachments().stamped(1_600_000_003),
        rest_call().stamped(1_600_000_004),
    ]


def load_schema() -> dict[str, Any]:
    """pr-opmon Annex B as we keep it."""
    schema: dict[str, Any] = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    return schema


_TYPES = {"object": dict, "array": list, "string": str, "boolean": bool}


def _value_problems(value: Any, rule: dict[str, Any], where: str) -> list[str]:
    kind = rule.get("type")
    if kind == "integer":
        if isinstance(value, bool) or not isinstance(value, int):
            return [f"{where}: not an integer"]
    elif kind is not None and not isinstance(value, _TYPES[kind]):
        return [f"{where}: not a {kind}"]
    problems = []
    if kind == "integer" and "minimum" in rule and value < rule["minimum"]:
        problems.append(f"{where}: below {rule['minimum']}")
    if isinstance(value, str):
        if "maxLength" in rule and len(value) > rule["maxLength"]:
            problems.append(f"{where}: longer than {rule['maxLength']}")
        if rule.get("format") == "ipv4":
            try:
                ipaddress.IPv4Address(value)
            except ValueError:
                problems.append(f"{where}: not ipv4")
    if "enum" in rule and value not in rule["enum"]:
        problems.append(f"{where}: not one of {rule['enum']}")
    if kind == "object":
        for name in rule.get("required", []):
            if name not in value:
                problems.append(f"{where}: {name} missing")
        for name, item in value.items():
            if name in rule.get("properties", {}):
                problems += _value_problems(item, rule["properties"][name], f"{where}.{name}")
    if kind == "array":
        for index, item in enumerate(value):
            problems += _value_problems(item, rule.get("items", {}), f"{where}[{index}]")
    return problems


def schema_problems(payload: Any) -> list[str]:
    """What in ``payload`` breaks pr-opmon Annex B (empty when it conforms)."""
    return _value_problems(payload, load_schema(), "$")


REQUEST_TEMPLATE = """<?xml version="1.0" encoding="utf-8"?>
<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/"
    xmlns:xroad="http://x-road.eu/xsd/xroad.xsd" xmlns:om="http://x-road.eu/xsd/op-monitoring.xsd"
    xmlns:id="http://x-road.eu/xsd/identifiers">
  <SOAP-ENV:Header>
    <xroad:client id:objectType="SUBSYSTEM">
      <id:xRoadInstance>EE</id:xRoadInstance><id:memberClass>GOV</id:memberClass>
      <id:memberCode>00000002</id:memberCode><id:subsystemCode>System1</id:subsystemCode>
    </xroad:client>
    <xroad:service id:objectType="SERVICE">
      <id:xRoadInstance>EE</id:xRoadInstance><id:memberClass>GOV</id:memberClass>
      <id:memberCode>00000001</id:memberCode><id:serviceCode>{service}</id:serviceCode>
    </xroad:service>
    <xroad:securityServer id:objectType="SERVER">
      <id:xRoadInstance>EE</id:xRoadInstance><id:memberClass>GOV</id:memberClass>
      <id:memberCode>00000001</id:memberCode><id:serverCode>00000001-1</id:serverCode>
    </xroad:securityServer>
    <xroad:id>1KNtf07U6qIyOcJnkirRaE0hRe4bM7WF</xroad:id>
    <xroad:protocolVersion>4.0</xroad:protocolVersion>
  </SOAP-ENV:Header>
  <SOAP-ENV:Body>{body}</SOAP-ENV:Body>
</SOAP-ENV:Envelope>
"""


def soap_request(service: str, body: str) -> SoapMessage:
    """A parsed X-Road request for ``service`` with ``body`` as its body's XML."""
    text = REQUEST_TEMPLATE.format(service=service, body=body)
    return parse_soap(text.encode("utf-8"), "text/xml; charset=UTF-8", max_bytes=1_000_000)


REQUEST_HASH = ("http://www.w3.org/2001/04/xmlenc#sha512", "cmVxdWVzdA==")
