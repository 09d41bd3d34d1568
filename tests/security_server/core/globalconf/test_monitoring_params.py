"""The central monitoring client in the optional MONITORING part of the global configuration (UG-CS §14)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from security_server.core.errors import ConfigurationHashMismatch, InvalidConfiguration
from security_server.core.globalconf import (
    MONITORING_PARAMETERS,
    PRIVATE_PARAMETERS,
    SHARED_PARAMETERS,
    AnchorSource,
    ConfigurationAnchor,
    DirectoryEntry,
    assemble_global_conf,
    build_monitoring_parameters,
    build_private_parameters,
    build_shared_parameters,
    build_signed_directory,
    parse_monitoring_parameters,
    parse_signed_directory,
    verify_signed_directory,
)
from security_server.core.identifiers import ClientId
from security_server.schemafiles import load_schema
from tests.federation.gconf import NOW, sample_private_parameters, sample_shared_parameters, signer

MONITOR = ClientId("DEV", "GOV", "1710128-9", "LIPPIS")
UG_CS_EXAMPLE = b"""<tns:conf xmlns:id="http://x-road.eu/xsd/identifiers" xmlns:tns="http://x-road.eu/xsd/xroad.xsd">
    <monitoringClient>
        <monitoringClientId id:objectType="SUBSYSTEM">
            <id:xRoadInstance>DEV</id:xRoadInstance>
            <id:memberClass>GOV</id:memberClass>
            <id:memberCode>1710128-9</id:memberCode>
            <id:subsystemCode>LIPPIS</id:subsystemCode>
        </monitoringClientId>
    </monitoringClient>
</tns:conf>"""

CODES = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=12)


def test_the_user_guide_example_names_a_subsystem() -> None:
    """UG-CS §14's monitoring-params.xml reads as its subsystem."""
    assert parse_monitoring_parameters(UG_CS_EXAMPLE) == MONITOR


def test_an_empty_monitoring_client_means_none() -> None:
    """An empty monitoringClient (X-Road's way to disable it) and a document without one name no client."""
    empty = UG_CS_EXAMPLE.split(b"<monitoringClient>")[0] + b"<monitoringClient>\n    </monitoringClient>\n</tns:conf>"
    assert parse_monitoring_parameters(empty) is None
    assert parse_monitoring_parameters(build_monitoring_parameters(None)) is None


@given(CODES, CODES, st.one_of(st.none(), CODES))
def test_build_and_parse_round_trip(member_class: str, member_code: str, subsystem: str | None) -> None:
    """Any member or subsystem identifier survives build then parse."""
    client = ClientId("DEV", member_class, member_code, subsystem)
    assert parse_monitoring_parameters(build_monitoring_parameters(client)) == client


@pytest.mark.parametrize("document", [
    b"<conf/>",
    b"not xml",
    UG_CS_EXAMPLE.replace(b'objectType="SUBSYSTEM"', b'objectType="SERVICE"'),
    UG_CS_EXAMPLE.replace(b"<id:memberCode>1710128-9</id:memberCode>", b""),
])
def test_a_malformed_document_is_invalid_configuration(document: bytes) -> None:
    """Another root, broken XML, a non-client identifier or a missing part fail closed."""
    with pytest.raises(InvalidConfiguration):
        parse_monitoring_parameters(document)


def _assembled(monitoring: bytes | None, served: bytes | None = None) -> ClientId | None:
    private = build_private_parameters(sample_private_parameters(), load_schema("private-parameters.xsd"))
    shared = build_shared_parameters(sample_shared_parameters(), load_schema("shared-parameters.xsd"))
    entries = [
        DirectoryEntry.for_content(PRIVATE_PARAMETERS, "DEV", "/p.xml", private),
        DirectoryEntry.for_content(SHARED_PARAMETERS, "DEV", "/s.xml", shared),
    ]
    files = {"/p.xml": private, "/s.xml": shared}
    if monitoring is not None:
        entries.append(DirectoryEntry.for_content(MONITORING_PARAMETERS, "DEV", "/m.xml", monitoring))
        files["/m.xml"] = served if served is not None else monitoring
    content_type, body = build_signed_directory(entries, NOW + timedelta(hours=1), 3, signer().key, signer().der)
    anchor = ConfigurationAnchor("DEV", (AnchorSource("http://registry/conf", (signer().der,)),))
    verified = verify_signed_directory(parse_signed_directory(content_type, body), anchor, NOW)
    return assemble_global_conf(verified, files).monitoring_client


def test_the_global_configuration_carries_the_monitoring_client() -> None:
    """A directory with the MONITORING part names its client; one without names none."""
    assert _assembled(build_monitoring_parameters(MONITOR)) == MONITOR
    assert _assembled(None) is None


def test_a_changed_monitoring_part_is_refused() -> None:
    """The monitoring file must match its digest in the signed directory, like every part."""
    other = build_monitoring_parameters(ClientId("DEV", "GOV", "999", "evil"))
    with pytest.raises(ConfigurationHashMismatch):
        _assembled(build_monitoring_parameters(MONITOR), served=other)
