"""Fault codes as received become the typed exception of their family, with code, string and detail UUID."""

from __future__ import annotations

import inspect
import json
import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.consumer import faults
from adapters.consumer.faults import (
    AccessDeniedFault,
    GlobalConfOutdatedFault,
    InvalidHttpMethodFault,
    ProviderFault,
    ServiceFailedFault,
    UnknownServiceFault,
    XRoadClientFault,
    XRoadFault,
    XRoadServerFault,
    fault_class,
    fault_from_code,
    fault_from_rest_error,
    parse_fault_code,
)
from adapters.consumer.soap import raise_for_soap_fault
from security_server.core import errors

CORE_CLASSES = sorted(
    {
        value
        for value in vars(errors).values()
        if inspect.isclass(value) and issubclass(value, errors.BusError)
        and value not in (errors.BusError, errors.ClientFault, errors.ServerFault)
    },
    key=lambda cls: cls.__name__,
)


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("server.serverproxy.access_denied", ("server.serverproxy", "access_denied", None)),
        ("server.serverproxy.service_failed.http_error", ("server.serverproxy", "service_failed", "http_error")),
        ("client.bad_request", ("client", "bad_request", None)),
        ("server.clientproxy.global_conf_outdated", ("server.clientproxy", "global_conf_outdated", None)),
        ("Server.ServerProxy.AccessDenied", ("server.serverproxy", "access_denied", None)),
        ("Server.ServerProxy.ServiceFailed.HttpError", ("server.serverproxy", "service_failed", "http_error")),
        ("Server.ClientProxy.OutdatedGlobalConf", ("server.clientproxy", "global_conf_outdated", None)),
        ("Client.BadRequest", ("client", "bad_request", None)),
        ("SOAP-ENV:Server", (None, None, None)),
        ("Server", (None, None, None)),
        ("", (None, None, None)),
        ("something else", (None, None, None)),
    ],
)
def test_fault_codes_split_into_origin_family_and_subcode(code: str, expected: tuple[str | None, ...]) -> None:
    """7.8 codes and the CamelCase codes of X-Road up to 7.7 split alike; other codes are not X-Road's."""
    assert parse_fault_code(code) == expected


@pytest.mark.parametrize("core", CORE_CLASSES, ids=lambda cls: cls.__name__)
def test_every_core_family_has_a_typed_exception_of_the_right_side(core: type[errors.BusError]) -> None:
    """Each fault family of security_server.core.errors maps to one class, a client or server fault as in the core."""
    cls = fault_class(core.code)
    assert cls is not None and cls.family == core.code
    assert cls.core_error is not None and cls.core_error.code == core.code
    primary = faults._core_classes()[core.code]  # the first class that defines the code decides the side
    side = XRoadClientFault if issubclass(primary, errors.ClientFault) else XRoadServerFault
    assert issubclass(cls, side)


def test_a_family_added_to_the_core_later_gets_a_class_on_first_use(monkeypatch: pytest.MonkeyPatch) -> None:
    """A new core code becomes a typed exception without a change here, once, of the core's side."""

    class BrandNew(errors.ServerFault):
        """A family this module was not written for."""

        code = "brand_new_family"

    monkeypatch.setattr(errors, "BrandNew", BrandNew, raising=False)
    first = fault_class("brand_new_family")
    assert first is not None and issubclass(first, XRoadServerFault) and first.__name__ == "BrandNewFault"
    assert fault_class("brand_new_family") is first
    fault = fault_from_code("server.brand_new_family", "new")
    assert isinstance(fault, first)
    faults._FAMILIES.pop("brand_new_family")


def test_a_fault_carries_code_string_detail_and_status() -> None:
    """The exception keeps the code as received, the fault string, the detail UUID and the HTTP status."""
    fault = fault_from_code("server.serverproxy.service_failed.timeout", "Service timed out", detail_id="d-1",
                            http_status=500)
    assert isinstance(fault, ServiceFailedFault) and isinstance(fault, XRoadServerFault)
    assert (fault.fault_code, fault.fault_string, fault.detail_id, fault.http_status) == (
        "server.serverproxy.service_failed.timeout", "Service timed out", "d-1", 500)
    assert (fault.origin, fault.subcode) == ("server.serverproxy", "timeout")
    assert "d-1" in str(fault) and "ServiceFailedFault" in repr(fault)


def test_unknown_families_and_provider_faults() -> None:
    """An X-Road code of no known family is a client or server fault by origin; a provider's own code is ProviderFault."""
    assert type(fault_from_code("client.some_future_code", "x")) is XRoadClientFault
    assert type(fault_from_code("server.clientproxy.some_future_code", "x")) is XRoadServerFault
    provider = fault_from_code("SOAP-ENV:Server", "Internal error in the service", detail_id="abc")
    assert type(provider) is ProviderFault and isinstance(provider, XRoadFault) and provider.detail_id == "abc"
    assert isinstance(fault_from_code("Server.ClientProxy.OutdatedGlobalConf", "old"), GlobalConfOutdatedFault)


@settings(max_examples=80, deadline=None)
@given(core=st.sampled_from(CORE_CLASSES), origin=st.sampled_from(list(errors.Origin)),
       subcode=st.none() | st.from_regex(r"[a-z][a-z_]{0,15}", fullmatch=True), message=st.text(st.characters(min_codepoint=32, max_codepoint=0xD7FF), max_size=40))
def test_a_soap_fault_of_the_bus_round_trips_to_its_family(
    core: type[errors.BusError], origin: errors.Origin, subcode: str | None, message: str
) -> None:
    """Any core error rendered as X-Road's SOAP fault is raised as its family with the same code and detail UUID."""
    error = core(message or "m", origin=origin, subcode=subcode)
    with pytest.raises(XRoadFault) as raised:
        raise_for_soap_fault(error.http_status, "text/xml; charset=UTF-8", error.to_soap_fault())
    assert raised.value.fault_code == error.fault_code
    assert raised.value.detail_id == error.detail_id
    assert type(raised.value).family == core.code


@settings(max_examples=60, deadline=None)
@given(core=st.sampled_from(CORE_CLASSES), origin=st.sampled_from(list(errors.Origin)))
def test_a_rest_error_of_the_bus_round_trips_to_its_family(core: type[errors.BusError], origin: errors.Origin) -> None:
    """Any core error rendered as REST error JSON with X-Road-Error is raised as its family (pr-rest §4.6)."""
    error = core("refused", origin=origin)
    status, headers, body = error.to_rest_error()
    fault = fault_from_rest_error(body, headers["X-Road-Error"], status)
    assert type(fault).family == core.code
    assert (fault.fault_code, fault.detail_id, fault.http_status, fault.fault_string) == (
        error.fault_code, error.detail_id, status, "refused")


def test_a_rest_error_without_a_json_body_still_has_its_code() -> None:
    """X-Road-Error alone names the family; a body that is not JSON adds nothing."""
    fault = fault_from_rest_error(b"<html>oops</html>", "server.serverproxy.access_denied", 403)
    assert isinstance(fault, AccessDeniedFault) and fault.detail_id is None and fault.http_status == 403
    detail = str(uuid.uuid4())
    body = json.dumps({"type": "server.serverproxy.unknown_service", "message": "no", "detail": detail}).encode()
    fault = fault_from_rest_error(body, "", 500)
    assert isinstance(fault, UnknownServiceFault) and fault.detail_id == detail


def test_a_body_that_is_not_a_fault_raises_nothing() -> None:
    """raise_for_soap_fault leaves answers, non-XML bodies and malformed XML alone."""
    raise_for_soap_fault(200, "application/json", b'{"Fault": 1}')
    raise_for_soap_fault(500, "text/xml", b"<not-closed Fault")
    raise_for_soap_fault(200, "text/xml", b"<?xml version='1.0'?><a>Fault</a>")
    with pytest.raises(InvalidHttpMethodFault):
        raise_for_soap_fault(405, "text/xml", errors.InvalidHttpMethod("Invalid HTTP method: GET").to_soap_fault())
