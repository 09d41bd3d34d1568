"""The X-Road SOAP headers as zeep header arguments, for a WSDL that declares them (adapters/provider/xroadheaders)."""

from __future__ import annotations

from typing import Any

from security_server.core.identifiers import ClientId, ServiceId


def _identifier(client: ClientId) -> dict[str, Any]:
    parts: dict[str, Any] = {
        "xRoadInstance": client.instance, "memberClass": client.member_class, "memberCode": client.member_code,
    }
    if client.subsystem_code is not None:
        parts["subsystemCode"] = client.subsystem_code
    return parts


def zeep_headers(client: ClientId, service: ServiceId, message_id: str, *, user_id: str | None = None,
                 issue: str | None = None) -> dict[str, Any]:
    """``_soapheaders`` for zeep: one entry per declared header part (pr-mess §2.2), optional ones only if given."""
    service_parts = {**_identifier(service.client), "serviceCode": service.service_code}
    if service.service_version is not None:
        service_parts["serviceVersion"] = service.service_version
    headers: dict[str, Any] = {
        "client": {"objectType": "SUBSYSTEM" if client.subsystem_code is not None else "MEMBER", **_identifier(client)},
        "service": {"objectType": "SERVICE", **service_parts},
        "id": message_id,
        "protocolVersion": "4.0",
    }
    if user_id is not None:
        headers["userId"] = user_id
    if issue is not None:
        headers["issue"] = issue
    return headers
