"""The operational record: what one exchange through a proxy leaves behind (pr-opmon §2, Annex B).

Each exchange produces one record on each security server it crosses: ``Client`` on the consumer's side,
``Producer`` on the provider's. Its fields are exactly X-Road's (the JSON schema of pr-opmon Annex B, kept in
``schemas/opmon-records.schema.json``), in snake_case here and in X-Road's camelCase in :meth:`to_json`.

* Timestamps are Unix milliseconds, except ``monitoring_data_ts`` (seconds), which the store sets when it takes
  the record (X-Road: when the monitoring daemon received it); a proxy never sets it.
* ``request_size`` / ``response_size`` are the SOAP part's size, or the REST body's size for a REST call
  (X-Road folded ``requestRestSize`` into ``requestSize`` in protocol version 1.0); the MIME sizes and
  attachment counts are set when the message travelled as ``multipart/related``.
* Text longer than the schema allows (255 characters; 2048 for ``faultString``) is cut, so nothing an exchange
  carries can make its record invalid: monitoring must never fail an exchange.
* Absent values are ``None`` and are left out of the JSON form, as X-Road leaves out its nulls.
"""

from __future__ import annotations

import enum
import ipaddress
from dataclasses import dataclass, fields, replace
from typing import Any, Mapping

from security_server.core.identifiers import ClientId, ServiceId

MAX_TEXT = 255
MAX_FAULT_STRING = 2048


class SecurityServerType(enum.StrEnum):
    """Which side of the exchange the record was made on (pr-opmon Annex B ``securityServerType``)."""

    CLIENT = "Client"
    PRODUCER = "Producer"


class ServiceType(enum.StrEnum):
    """The kind of service called (pr-opmon Annex B ``serviceType``)."""

    WSDL = "WSDL"
    REST = "REST"
    OPENAPI3 = "OPENAPI3"


# JSON name of every flat field, in the order of pr-opmon §2's list of output fields.
OUTPUT_FIELDS: tuple[str, ...] = (
    "monitoringDataTs",
    "securityServerInternalIp",
    "securityServerType",
    "requestInTs",
    "requestOutTs",
    "responseInTs",
    "responseOutTs",
    "clientXRoadInstance",
    "clientMemberClass",
    "clientMemberCode",
    "clientSubsystemCode",
    "serviceXRoadInstance",
    "serviceMemberClass",
    "serviceMemberCode",
    "serviceSubsystemCode",
    "serviceCode",
    "restMethod",
    "restPath",
    "serviceVersion",
    "representedPartyClass",
    "representedPartyCode",
    "messageId",
    "messageUserId",
    "messageIssue",
    "messageProtocolVersion",
    "clientSecurityServerAddress",
    "serviceSecurityServerAddress",
    "requestSize",
    "requestMimeSize",
    "requestAttachmentCount",
    "responseSize",
    "responseMimeSize",
    "responseAttachmentCount",
    "succeeded",
    "serviceType",
    "faultCode",
    "faultString",
    "statusCode",
    "xRoadVersion",
)
"""Every field a ``getSecurityServerOperationalData`` request may name in ``outputSpec`` (pr-opmon §2)."""

PUBLIC_OUTPUT_FIELDS: tuple[str, ...] = tuple(f for f in OUTPUT_FIELDS if f != "securityServerInternalIp")
"""What a client other than the owner and the central monitoring client may see (X-Road: the internal IP is
the owner's business)."""

_TEXT_FIELDS = (
    "security_server_internal_ip",
    "rest_method",
    "rest_path",
    "represented_party_class",
    "represented_party_code",
    "message_id",
    "message_user_id",
    "message_issue",
    "message_protocol_version",
    "client_security_server_address",
    "service_security_server_address",
    "fault_code",
    "fault_string",
    "x_road_version",
)
_COUNT_FIELDS = (
    "monitoring_data_ts",
    "request_in_ts",
    "request_out_ts",
    "response_in_ts",
    "response_out_ts",
    "request_size",
    "request_mime_size",
    "request_attachment_count",
    "response_size",
    "response_mime_size",
    "response_attachment_count",
    "status_code",
)
# snake_case attribute -> camelCase JSON name, for the fields that map one to one.
_JSON_NAMES = {
    "monitoring_data_ts": "monitoringDataTs",
    "security_server_internal_ip": "securityServerInternalIp",
    "security_server_type": "securityServerType",
    "request_in_ts": "requestInTs",
    "request_out_ts": "requestOutTs",
    "response_in_ts": "responseInTs",
    "response_out_ts": "responseOutTs",
    "rest_method": "restMethod",
    "rest_path": "restPath",
    "represented_party_class": "representedPartyClass",
    "represented_party_code": "representedPartyCode",
    "message_id": "messageId",
    "message_user_id": "messageUserId",
    "message_issue": "messageIssue",
    "message_protocol_version": "messageProtocolVersion",
    "client_security_server_address": "clientSecurityServerAddress",
    "service_security_server_address": "serviceSecurityServerAddress",
    "request_size": "requestSize",
    "request_mime_size": "requestMimeSize",
    "request_attachment_count": "requestAttachmentCount",
    "response_size": "responseSize",
    "response_mime_size": "responseMimeSize",
    "response_attachment_count": "responseAttachmentCount",
    "succeeded": "succeeded",
    "service_type": "serviceType",
    "fault_code": "faultCode",
    "fault_string": "faultString",
    "status_code": "statusCode",
    "x_road_version": "xRoadVersion",
}


@dataclass(frozen=True, slots=True)
class OperationalRecord:
    """One exchange as seen by one security server, with X-Road's operational monitoring fields."""

    security_server_type: SecurityServerType
    succeeded: bool
    request_in_ts: int | None = None
    request_out_ts: int | None = None
    response_in_ts: int | None = None
    response_out_ts: int | None = None
    client: ClientId | None = None
    service: ServiceId | None = None
    rest_method: str | None = None
    rest_path: str | None = None
    represented_party_class: str | None = None
    represented_party_code: str | None = None
    message_id: str | None = None
    message_user_id: str | None = None
    message_issue: str | None = None
    message_protocol_version: str | None = None
    client_security_server_address: str | None = None
    service_security_server_address: str | None = None
    request_size: int | None = None
    request_mime_size: int | None = None
    request_attachment_count: int | None = None
    response_size: int | None = None
    response_mime_size: int | None = None
    response_attachment_count: int | None = None
    fault_code: str | None = None
    fault_string: str | None = None
    status_code: int | None = None
    service_type: ServiceType | None = None
    x_road_version: str | None = None
    security_server_internal_ip: str | None = None
    monitoring_data_ts: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "security_server_type", SecurityServerType(self.security_server_type))
        if self.service_type is not None:
            object.__setattr__(self, "service_type", ServiceType(self.service_type))
        if not isinstance(self.succeeded, bool):
            raise ValueError("succeeded must be a bool")
        if self.client is not None and not isinstance(self.client, ClientId):
            raise ValueError("client must be a ClientId")
        if self.service is not None and not isinstance(self.service, ServiceId):
            raise ValueError("service must be a ServiceId")
        for name in _COUNT_FIELDS:
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
                raise ValueError(f"{name} must be a non-negative integer")
        for name in _TEXT_FIELDS:
            value = getattr(self, name)
            if value is None:
                continue
            if not isinstance(value, str):
                raise ValueError(f"{name} must be text")
            limit = MAX_FAULT_STRING if name == "fault_string" else MAX_TEXT
            if len(value) > limit:
                object.__setattr__(self, name, value[:limit])
        if self.security_server_internal_ip is not None:
            try:
                ipaddress.IPv4Address(self.security_server_internal_ip)
            except ValueError as err:
                raise ValueError("security_server_internal_ip must be an IPv4 address (schema format ipv4)") from err

    def stamped(self, monitoring_data_ts: int) -> OperationalRecord:
        """This record as the store keeps it: with the second it was taken in."""
        return replace(self, monitoring_data_ts=monitoring_data_ts)

    @property
    def duration_ms(self) -> int | None:
        """From the request coming in to the response going out (X-Road's health-data request duration)."""
        if self.request_in_ts is None or self.response_out_ts is None:
            return None
        return max(0, self.response_out_ts - self.request_in_ts)

    def to_json(self) -> dict[str, Any]:
        """The record as one item of the ``records`` array of pr-opmon Annex B (``None`` values left out)."""
        out: dict[str, Any] = {}
        for field in fields(self):
            name = field.name
            value = getattr(self, name)
            if value is None or name in ("client", "service"):
                continue
            out[_JSON_NAMES[name]] = str(value) if isinstance(value, enum.Enum) else value
        if self.client is not None:
            out.update(_client_json("client", self.client))
        if self.service is not None:
            out.update(_client_json("service", self.service.client))
            out["serviceCode"] = self.service.service_code
            if self.service.service_version is not None:
                out["serviceVersion"] = self.service.service_version
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> OperationalRecord:
        """Read back what :meth:`to_json` wrote (the store keeps records in this form)."""
        unknown = set(data) - set(OUTPUT_FIELDS)
        if unknown:
            raise ValueError(f"unknown operational record fields: {sorted(unknown)}")
        values: dict[str, Any] = {}
        for attribute, json_name in _JSON_NAMES.items():
            if json_name in data:
                values[attribute] = data[json_name]
        client = _client_from_json("client", data)
        provider = _client_from_json("service", data)
        service = None
        if provider is not None and "serviceCode" in data:
            service = ServiceId(provider, data["serviceCode"], data.get("serviceVersion"))
        if "security_server_type" not in values or "succeeded" not in values:
            raise ValueError("an operational record needs securityServerType and succeeded")
        return cls(client=client, service=service, **values)


def service_label(service: ServiceId) -> str:
    """How the status view and the metrics name ``service``: its display form, or for a member-level service (the
    owner's monitoring services, which have no display form in core/identifiers.py) X-Road's ``toString`` form
    without the subsystem, ``SERVICE:EE/GOV/123/getSecurityServerHealthData``."""
    if service.client.subsystem_code is not None:
        return service.to_display()
    tail = (service.service_code,) if service.service_version is None else (service.service_code, service.service_version)
    return "SERVICE:" + "/".join((*service.client.parts(), *tail))


def _client_json(prefix: str, client: ClientId) -> dict[str, str]:
    out = {
        f"{prefix}XRoadInstance": client.instance,
        f"{prefix}MemberClass": client.member_class,
        f"{prefix}MemberCode": client.member_code,
    }
    if client.subsystem_code is not None:
        out[f"{prefix}SubsystemCode"] = client.subsystem_code
    return out


def _client_from_json(prefix: str, data: Mapping[str, Any]) -> ClientId | None:
    names = (f"{prefix}XRoadInstance", f"{prefix}MemberClass", f"{prefix}MemberCode")
    if not all(n in data for n in names):
        return None
    return ClientId(data[names[0]], data[names[1]], data[names[2]], data.get(f"{prefix}SubsystemCode"))


def project(record: Mapping[str, Any], output_fields: frozenset[str], *, public_only: bool) -> dict[str, Any]:
    """The JSON of one record as a query answers it: only ``output_fields`` (all when empty), and without the
    owner-only fields for any other client (X-Road ``OperationalDataRecordQuery``; ``monitoringDataTs`` is
    left out when a non-empty ``outputSpec`` does not name it, as X-Road does)."""
    allowed = PUBLIC_OUTPUT_FIELDS if public_only else OUTPUT_FIELDS
    wanted = set(allowed) if not output_fields else set(output_fields) & set(allowed)
    return {k: v for k, v in record.items() if k in wanted}
