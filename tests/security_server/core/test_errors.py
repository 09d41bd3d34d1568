"""The BusError tree: fault codes in X-Road 7.8 form and both renderings."""

from __future__ import annotations

import inspect
import json
import re
import uuid

import pytest

from security_server.core import errors
from security_server.core.errors import (
    AccessDenied,
    BadRequest,
    BusError,
    ClientFault,
    InvalidSignatureValue,
    Origin,
    ServerFault,
    ServiceFailed,
    UnknownMember,
)
from security_server.core.safexml import parse_xml

LEAVES = [
    cls
    for _, cls in inspect.getmembers(errors, inspect.isclass)
    if issubclass(cls, BusError) and cls not in (BusError, ClientFault, ServerFault)
]


@pytest.mark.parametrize("cls", LEAVES, ids=lambda c: c.__name__)
def test_every_leaf_is_a_client_or_server_fault_with_a_snake_case_code(cls: type[BusError]) -> None:
    """Each leaf sits under ClientFault or ServerFault and has a 7.8-style snake_case fault code."""
    assert issubclass(cls, (ClientFault, ServerFault))
    error = cls("something")
    assert re.fullmatch(r"(client|server|server\.clientproxy|server\.serverproxy|signer)\.[a-z_]+", error.fault_code)
    assert 400 <= error.http_status <= 599
    uuid.UUID(error.detail_id)


def test_reference_codes() -> None:
    """The codes named in XROAD-REFERENCE §3.4 come out exactly."""
    assert AccessDenied("no").fault_code == "server.serverproxy.access_denied"
    assert UnknownMember("no").fault_code == "server.clientproxy.unknown_member"
    assert BadRequest("no").fault_code == "client.bad_request"
    assert ServiceFailed("x", subcode="ssl_authentication_failed").fault_code == (
        "server.serverproxy.service_failed.ssl_authentication_failed"
    )
    assert InvalidSignatureValue("x").at(Origin.CLIENT_PROXY).fault_code == "server.clientproxy.invalid_signature_value"


def test_soap_fault_shape() -> None:
    """The SOAP rendering is X-Road's technical fault: faultcode, faultstring, faultactor, detail/faultDetail."""
    error = AccessDenied("Request is not allowed", reason="no ACL entry for SUBSYSTEM:EE/GOV/1/a")
    root = parse_xml(error.to_soap_fault())
    ns = {"s": "http://schemas.xmlsoap.org/soap/envelope/"}
    fault = root.find("s:Body/s:Fault", ns)
    assert fault is not None
    assert [child.tag for child in fault] == ["faultcode", "faultstring", "faultactor", "detail"]
    assert fault.findtext("faultcode") == "server.serverproxy.access_denied"
    assert fault.findtext("faultstring") == "Request is not allowed"
    detail = fault.find("detail/faultDetail")
    assert detail is not None and detail.text == error.detail_id
    assert b"no ACL entry" not in error.to_soap_fault()  # the private reason stays in our log


def test_rest_error_shape() -> None:
    """The REST rendering is {type, message, detail} with X-Road-Error, 400 for client faults and 500 for server faults."""
    status, headers, body = BadRequest("bad").to_rest_error()
    document = json.loads(body)
    assert status == 400
    assert headers["X-Road-Error"] == document["type"] == "client.bad_request"
    assert set(document) == {"type", "message", "detail"}
    assert ServiceFailed("down", subcode="network_error").to_rest_error()[0] == 500


def test_log_fields_carry_the_reason_and_detail() -> None:
    """log_fields gives our log the private reason under the same detail id the peer sees."""
    error = AccessDenied("denied", reason="specific")
    assert error.log_fields() == {
        "fault_code": "server.serverproxy.access_denied",
        "fault_detail": error.detail_id,
        "reason": "specific",
    }


def test_soap_fault_with_control_characters_in_the_message_still_renders() -> None:
    """A message quoting hostile input (control characters) renders as a well-formed fault."""
    error = BadRequest("bad header value 'a\x00b\x1bc'")
    root = parse_xml(error.to_soap_fault())
    assert root.findtext(".//faultstring") == "bad header value 'a\ufffdb\ufffdc'"
