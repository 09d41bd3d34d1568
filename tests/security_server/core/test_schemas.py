"""Tests for compiling our XSDs from bytes (security_server/core/schemas.py)."""

from __future__ import annotations

import pytest

from security_server.core.errors import ConfigurationError, InvalidXml
from security_server.core.safexml import parse_xml
from security_server.core.schemas import compile_schema, validate, validation_errors

MAIN = b"""<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:p="urn:parts" targetNamespace="urn:main">
  <xs:import namespace="urn:parts" schemaLocation="parts.xsd"/>
  <xs:element name="root" type="p:Code"/>
</xs:schema>"""
PARTS = b"""<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" targetNamespace="urn:parts">
  <xs:simpleType name="Code"><xs:restriction base="xs:string"><xs:pattern value="[a-z]+"/></xs:restriction></xs:simpleType>
</xs:schema>"""


def test_imports_are_served_from_the_mapping() -> None:
    """An xs:import is resolved from the given documents, and the compiled schema validates."""
    schema = compile_schema("main.xsd", {"main.xsd": MAIN, "parts.xsd": PARTS})
    assert validation_errors(schema, parse_xml(b'<root xmlns="urn:main">abc</root>')) == ()
    errors = validation_errors(schema, parse_xml(b'<root xmlns="urn:main">ABC</root>'))
    assert errors and errors[0].startswith("line 1:")
    with pytest.raises(InvalidXml):
        validate(schema, parse_xml(b'<root xmlns="urn:main">1</root>'), "sample")


def test_unknown_import_is_not_fetched() -> None:
    """A schemaLocation that is not in the mapping makes compilation fail instead of reading a file."""
    with pytest.raises(ConfigurationError):
        compile_schema("main.xsd", {"main.xsd": MAIN})


def test_missing_or_broken_schema_is_a_configuration_error() -> None:
    """Asking for an absent schema, or one that is not XML, raises ConfigurationError."""
    with pytest.raises(ConfigurationError):
        compile_schema("absent.xsd", {})
    with pytest.raises(ConfigurationError):
        compile_schema("bad.xsd", {"bad.xsd": b"<xs:schema"})
