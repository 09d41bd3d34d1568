"""Tests for private parameters (security_server/core/globalconf/privateparams.py)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from security_server.core.errors import InvalidConfiguration
from security_server.core.globalconf import (
    AnchorSource,
    ConfigurationAnchor,
    ManagementService,
    PrivateParameters,
    build_private_parameters,
    parse_private_parameters,
)
from security_server.core.identifiers import ClientId
from security_server.schemafiles import load_schema
from tests.federation.gconf import NOW, codes, sample_private_parameters, signer
from tests.federation.pki import ec_issued

X_ROAD_STYLE = b"""<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<ns3:conf xmlns:ns2="http://x-road.eu/xsd/identifiers" xmlns:ns3="http://x-road.eu/xsd/xroad.xsd">
    <instanceIdentifier>DEV</instanceIdentifier>
    <managementService>
        <authCertRegServiceAddress>https://cs:4001/managementservice/</authCertRegServiceAddress>
        <managementRequestServiceProviderId ns2:objectType="SUBSYSTEM">
            <ns2:xRoadInstance>DEV</ns2:xRoadInstance>
            <ns2:memberClass>COM</ns2:memberClass>
            <ns2:memberCode>1234</ns2:memberCode>
            <ns2:subsystemCode>MANAGEMENT</ns2:subsystemCode>
        </managementRequestServiceProviderId>
    </managementService>
    <timeStampingIntervalSeconds>60</timeStampingIntervalSeconds>
</ns3:conf>
"""


def schema() -> etree.XMLSchema:
    """Our private-parameters schema."""
    return load_schema("private-parameters.xsd")


def test_x_road_style_private_parameters_are_read() -> None:
    """A private-parameters file as X-Road writes it (no optional cert, ns2/ns3 prefixes) is read and valid."""
    pp = parse_private_parameters(X_ROAD_STYLE, schema())
    assert pp.instance == "DEV"
    assert pp.management_service == ManagementService(
        "https://cs:4001/managementservice/", ClientId("DEV", "COM", "1234", "MANAGEMENT")
    )
    assert pp.time_stamping_interval_seconds == 60 and pp.configuration_anchors == ()


def test_round_trip_with_federated_anchor() -> None:
    """Private parameters with a federated instance's anchor build to valid XML that parses back equal."""
    federated = ConfigurationAnchor("EE", (AnchorSource("https://ee.example/externalconf", (signer().der,)),), NOW)
    pp = PrivateParameters(
        instance="DEV",
        management_service=sample_private_parameters().management_service,
        time_stamping_interval_seconds=300,
        configuration_anchors=(federated,),
    )
    built = build_private_parameters(pp, schema())
    assert parse_private_parameters(built, schema()) == pp
    assert build_private_parameters(pp, schema()) == built


@settings(max_examples=50, deadline=None)
@given(codes, codes, codes, st.integers(1, 10**6), st.booleans())
def test_generated_private_parameters_round_trip(instance: str, code: str, sub: str, interval: int, cert: bool) -> None:
    """Any valid private parameters survive build -> parse unchanged."""
    pp = PrivateParameters(
        instance=instance,
        management_service=ManagementService(
            f"https://{code}/", ClientId(instance, "GOV", code, sub), ec_issued("Pool 0").der if cert else None
        ),
        time_stamping_interval_seconds=interval,
    )
    assert parse_private_parameters(build_private_parameters(pp, schema()), schema()) == pp


@pytest.mark.parametrize(
    ("old", "new"),
    [
        pytest.param(b"<timeStampingIntervalSeconds>60", b"<timeStampingIntervalSeconds>0", id="zero-interval"),
        pytest.param(b"<timeStampingIntervalSeconds>60", b"<timeStampingIntervalSeconds>-5", id="negative-interval"),
        pytest.param(
            b"<ns2:xRoadInstance>DEV</ns2:xRoadInstance>",
            b"<ns2:xRoadInstance>EE</ns2:xRoadInstance>",
            id="provider-of-another-instance",
        ),
        pytest.param(b' ns2:objectType="SUBSYSTEM"', b"", id="provider-without-object-type"),
        pytest.param(
            b"<authCertRegServiceAddress>https://cs:4001/managementservice/</authCertRegServiceAddress>", b"", id="no-address"
        ),
        pytest.param(
            b"</managementService>",
            b"<authCertRegServiceCert>AAAA</authCertRegServiceCert></managementService>",
            id="cert-out-of-order",
        ),
        pytest.param(b"<instanceIdentifier>DEV</instanceIdentifier>", b"", id="no-instance"),
    ],
)
def test_bad_private_parameters_are_refused(old: bytes, new: bytes) -> None:
    """Each malformed or inconsistent variant raises InvalidConfiguration."""
    assert old in X_ROAD_STYLE
    with pytest.raises(InvalidConfiguration):
        parse_private_parameters(X_ROAD_STYLE.replace(old, new))


def test_two_anchors_for_one_instance_are_refused() -> None:
    """Two configuration anchors for the same instance are ambiguous and refused."""
    anchor = ConfigurationAnchor("EE", (AnchorSource("https://ee.example/conf", (signer().der,)),))
    with pytest.raises(InvalidConfiguration):
        PrivateParameters(
            instance="DEV",
            management_service=sample_private_parameters().management_service,
            time_stamping_interval_seconds=60,
            configuration_anchors=(anchor, anchor),
        )
