"""Reading and writing the XML documents of the global configuration (shared and private parameters, anchors)."""

from __future__ import annotations

from lxml import etree

from security_server.core.errors import InvalidConfiguration, InvalidXml, RequestTooLarge
from security_server.core.identifiers import IDENTIFIERS_NS, XROAD_NS
from security_server.core.safexml import parse_xml
from security_server.core.schemas import validation_errors


def parse_document(xml: bytes, schema: etree.XMLSchema | None, max_bytes: int, what: str) -> etree._Element:
    """Parse a configuration document with the hardened parser and, when given, check it against ``schema``."""
    try:
        root = parse_xml(xml, max_bytes=max_bytes)
    except (InvalidXml, RequestTooLarge) as err:
        raise InvalidConfiguration(f"{what} is not acceptable XML", reason=f"{what}: {err.reason}") from err
    if schema is not None:
        errors = validation_errors(schema, root)
        if errors:
            raise InvalidConfiguration(f"{what} does not match its schema", reason=f"{what}: {errors[0]}")
    return root


def serialize_document(root: etree._Element, schema: etree.XMLSchema, what: str) -> bytes:
    """Check a generated document against ``schema`` and serialise it as UTF-8 with an XML declaration.

    Namespace declarations are gathered on the root element (``tns`` and ``id``, X-Road's prefixes), so that
    identifier elements do not each repeat theirs.
    """
    etree.cleanup_namespaces(root, top_nsmap={"tns": XROAD_NS, "id": IDENTIFIERS_NS})
    errors = validation_errors(schema, root)
    if errors:
        raise InvalidConfiguration(f"generated {what} do not match the schema", reason=f"{what}: {errors[0]}")
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True))
