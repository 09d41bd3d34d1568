"""Tests for finding and loading our XSD files (security_server/schemafiles.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from security_server.core.safexml import parse_xml
from security_server.core.schemas import validation_errors
from security_server.schemafiles import load_schema, read_schemas, schema_dir

GLOBALCONF_SCHEMAS = ["identifiers.xsd", "configuration-anchor.xsd", "private-parameters.xsd", "shared-parameters.xsd"]


def test_schema_dir_is_the_checkout_schemas_folder() -> None:
    """From a source checkout the schemas are the repository's schemas/ folder."""
    assert schema_dir() == Path(__file__).resolve().parents[2] / "schemas"
    assert set(GLOBALCONF_SCHEMAS) <= set(read_schemas(schema_dir()))


@pytest.mark.parametrize("name", GLOBALCONF_SCHEMAS)
def test_global_configuration_schemas_compile_and_are_cached(name: str) -> None:
    """Each global-configuration XSD compiles with its imports, once per process."""
    assert load_schema(name) is load_schema(name)


def test_x_road_files_validate_against_our_schemas(xroad_vectors: Path) -> None:
    """X-Road's DEV shared-params.xml (v3) and configuration-anchor1.xml are valid under our XSDs."""
    shared = parse_xml((xroad_vectors / "globalconf_good2_v3" / "DEV" / "shared-params.xml").read_bytes())
    anchor = parse_xml((xroad_vectors / "configuration-anchor1.xml").read_bytes())
    assert validation_errors(load_schema("shared-parameters.xsd"), shared) == ()
    assert validation_errors(load_schema("configuration-anchor.xsd"), anchor) == ()


def test_identifier_parts_are_restricted_by_the_schema() -> None:
    """The identifiers schema refuses characters outside X-Road's set, as the Python identifiers do."""
    schema = load_schema("private-parameters.xsd")
    template = (
        '<tns:conf xmlns:tns="http://x-road.eu/xsd/xroad.xsd" xmlns:id="http://x-road.eu/xsd/identifiers">'
        "<instanceIdentifier>EE</instanceIdentifier><managementService>"
        "<authCertRegServiceAddress>https://cs</authCertRegServiceAddress>"
        '<managementRequestServiceProviderId id:objectType="SUBSYSTEM"><id:xRoadInstance>EE</id:xRoadInstance>'
        "<id:memberClass>GOV</id:memberClass><id:memberCode>{code}</id:memberCode>"
        "<id:subsystemCode>mgmt</id:subsystemCode></managementRequestServiceProviderId></managementService>"
        "<timeStampingIntervalSeconds>60</timeStampingIntervalSeconds></tns:conf>"
    )
    assert validation_errors(schema, parse_xml(template.format(code="123").encode())) == ()
    assert validation_errors(schema, parse_xml(template.format(code="1/2").encode())) != ()
