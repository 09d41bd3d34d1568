"""Compile our XSDs from bytes, and validate documents against them, without touching files or the network.

The core never reads files (CONVENTIONS.md habit 1): the edge reads ``schemas/*.xsd`` (see
``security_server.schemafiles``) and hands the bytes here. ``xs:import``/``xs:include`` are served only from the
mapping of sibling schemas given by the caller; any other location fails to compile instead of being fetched.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping, cast

from lxml import etree

from security_server.core.errors import ConfigurationError, InvalidXml

# A base URL with a scheme of our own, so that relative schemaLocations resolve to names we recognise and
# can never be mistaken for a file path or a URL that libxml2 would open itself.
_BASE = "fedbus-schema:/"


class _MappingResolver(etree.Resolver):
    """Serves ``xs:import``/``xs:include`` targets from an in-memory mapping of file name to XSD bytes."""

    def __init__(self, documents: Mapping[str, bytes]) -> None:
        super().__init__()
        self._documents = dict(documents)

    # lxml-stubs omit the ``context`` argument that lxml passes (and resolve_string needs).
    def resolve(  # type: ignore[override]
        self, system_url: str | None, public_id: str | None, context: object
    ) -> object:
        name = (system_url or "").rsplit("/", 1)[-1]
        data = self._documents.get(name)
        if data is None:
            # Raising keeps libxml2 from falling back to its own loader; lxml reports a schema parse error.
            raise LookupError(f"schema {system_url!r} is not one of ours")
        return self.resolve_string(data, context, base_url=_BASE + name)


def compile_schema(name: str, documents: Mapping[str, bytes]) -> etree.XMLSchema:
    """Compile the schema ``documents[name]``, resolving its imports and includes from ``documents`` only.

    The XSDs are our own files, not untrusted input; they are still parsed with entities, DTDs and the
    network switched off. Raises :class:`ConfigurationError` when the schema is missing or does not compile.
    """
    if name not in documents:
        raise ConfigurationError(f"schema {name} is not available")
    parser = etree.XMLParser(resolve_entities=False, load_dtd=False, no_network=True, huge_tree=False)
    parser.resolvers.add(_MappingResolver(documents))
    try:
        root = etree.fromstring(documents[name], parser=parser, base_url=_BASE + name)
        return etree.XMLSchema(root)
    except (etree.XMLSyntaxError, etree.XMLSchemaParseError) as err:
        raise ConfigurationError(f"schema {name} does not compile", reason=f"schema {name}: {err}") from err


def validation_errors(schema: etree.XMLSchema, element: etree._Element) -> tuple[str, ...]:
    """Return the schema violations of ``element`` (empty when it is valid), each as ``line N: message``."""
    if schema.validate(element):
        return ()
    entries = cast(Iterable[Any], schema.error_log)  # lxml-stubs do not declare _ErrorLog iterable
    return tuple(f"line {entry.line}: {entry.message}" for entry in entries)


def validate(schema: etree.XMLSchema, element: etree._Element, what: str) -> None:
    """Raise :class:`InvalidXml` naming the first violation when ``element`` does not satisfy ``schema``."""
    errors = validation_errors(schema, element)
    if errors:
        raise InvalidXml(f"{what} does not match its schema", reason=f"{what} does not match its schema: {errors[0]}")
