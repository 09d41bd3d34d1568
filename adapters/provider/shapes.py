"""How the Python types of a provider's callables map to XML Schema, JSON Schema and element trees.

A provider writes ordinary annotations and the kit derives the service description from them::

    class Person(TypedDict):
        personCode: str
        givenName: str
        birthDate: date
        children: NotRequired[list[str]]

    def getPerson(caller: Caller, personCode: str) -> Person: ...

Supported: the simple types ``str``, ``int``, ``float``, ``bool``, ``Decimal``, ``date`` and ``datetime``; a
``TypedDict`` (a record: a sequence of elements in key order); ``list[T]`` (a repeated element); ``T | None``
and ``NotRequired[T]`` (an optional element). Anything else is refused when the operation is declared, not when
it is first called.
"""

from __future__ import annotations

import datetime as dt
import decimal
import types
import typing
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from lxml import etree

XSD_NS = "http://www.w3.org/2001/XMLSchema"
XML_NS = "http://www.w3.org/XML/1998/namespace"

_SIMPLE: dict[type, tuple[str, dict[str, str]]] = {
    str: ("string", {"type": "string"}),
    bool: ("boolean", {"type": "boolean"}),
    int: ("long", {"type": "integer", "format": "int64"}),
    float: ("double", {"type": "number", "format": "double"}),
    decimal.Decimal: ("decimal", {"type": "string", "format": "decimal"}),
    dt.date: ("date", {"type": "string", "format": "date"}),
    dt.datetime: ("dateTime", {"type": "string", "format": "date-time"}),
}
"""Python type -> (XSD built-in type, JSON Schema)."""


class ShapeError(TypeError):
    """A type the kit cannot describe."""


class ValueProblem(ValueError):
    """A request value that does not fit its declared shape (a client error)."""


@dataclass(frozen=True, slots=True)
class Field:
    """One element of a record: its name, item type, and occurrence."""

    name: str
    type: Any
    """A simple type from the table above or a TypedDict class."""
    optional: bool = False
    repeated: bool = False
    title: str | None = None

    @property
    def is_record(self) -> bool:
        """Whether the item type is a TypedDict (a nested record)."""
        return typing.is_typeddict(self.type)


def _unwrap(annotation: Any, where: str) -> tuple[Any, bool, bool]:
    """(item type, optional, repeated) of an annotation."""
    optional = False
    origin = typing.get_origin(annotation)
    if origin is typing.NotRequired or origin is typing.Required:
        optional = origin is typing.NotRequired
        annotation = typing.get_args(annotation)[0]
        origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) != 1:
            raise ShapeError(f"{where}: only `T | None` unions are supported")
        optional = True
        annotation = args[0]
        origin = typing.get_origin(annotation)
    repeated = False
    if origin in (list, Sequence, typing.Sequence):
        (annotation,) = typing.get_args(annotation) or (None,)
        repeated = True
    if annotation in _SIMPLE or typing.is_typeddict(annotation):
        return annotation, optional, repeated
    raise ShapeError(f"{where}: type {annotation!r} is not supported (use str, int, float, bool, Decimal, date, "
                     "datetime, a TypedDict, list[...] or ... | None)")


def field_of(name: str, annotation: Any, *, has_default: bool = False, title: str | None = None) -> Field:
    """The field for a parameter or record key; a parameter with a default is optional."""
    item, optional, repeated = _unwrap(annotation, name)
    if item is not None and typing.is_typeddict(item):
        record_fields(item)  # check the nested record now
    return Field(name, item, optional or has_default, repeated, title)


def record_fields(record: Any, titles: Mapping[str, str] | None = None) -> list[Field]:
    """The fields of a TypedDict, in declaration order."""
    if not typing.is_typeddict(record):
        raise ShapeError(f"{record!r} is not a TypedDict")
    hints = typing.get_type_hints(record, include_extras=True)
    optional_keys: frozenset[str] = getattr(record, "__optional_keys__", frozenset())
    found = []
    for key, annotation in hints.items():
        item = field_of(key, annotation, title=(titles or {}).get(key))
        if key in optional_keys and not item.optional:
            item = Field(item.name, item.type, True, item.repeated, item.title)
        found.append(item)
    return found


# --- XML Schema --------------------------------------------------------------------------------------------


def _xs(tag: str) -> str:
    return f"{{{XSD_NS}}}{tag}"


def xsd_element(parent: etree._Element, item: Field, xroad_ns: str) -> etree._Element:
    """Append the ``xs:element`` declaring ``item`` (with an ``xrd:title`` annotation when it has a title)."""
    element = etree.SubElement(parent, _xs("element"), name=item.name)
    if item.optional or item.repeated:
        element.set("minOccurs", "0")
    if item.repeated:
        element.set("maxOccurs", "unbounded")
    if item.title:
        appinfo = etree.SubElement(etree.SubElement(element, _xs("annotation")), _xs("appinfo"))
        title = etree.SubElement(appinfo, f"{{{xroad_ns}}}title")
        title.set(f"{{{XML_NS}}}lang", "en")
        title.text = item.title
    if item.is_record:
        xsd_sequence(element, record_fields(item.type), xroad_ns)
    else:
        element.set("type", f"xs:{_SIMPLE[item.type][0]}")
    return element


def xsd_sequence(element: etree._Element, fields: Sequence[Field], xroad_ns: str) -> None:
    """Give ``element`` an anonymous complex type holding ``fields`` in sequence."""
    sequence = etree.SubElement(etree.SubElement(element, _xs("complexType")), _xs("sequence"))
    for item in fields:
        xsd_element(sequence, item, xroad_ns)


# --- JSON Schema (OpenAPI 3.0) -----------------------------------------------------------------------------


def json_schema(annotation: Any) -> dict[str, Any]:
    """The OpenAPI 3.0 schema of an annotation (a simple type, TypedDict, list or optional)."""
    item, optional, repeated = _unwrap(annotation, "schema")
    schema = _json_item(item)
    if repeated:
        schema = {"type": "array", "items": schema}
    if optional:
        schema = {**schema, "nullable": True}
    return schema


def _json_item(item: Any) -> dict[str, Any]:
    if typing.is_typeddict(item):
        fields = record_fields(item)
        properties = {f.name: _json_field(f) for f in fields}
        required = [f.name for f in fields if not f.optional]
        schema: dict[str, Any] = {"type": "object", "properties": properties}
        if required:
            schema["required"] = required
        return schema
    return dict(_SIMPLE[item][1])


def _json_field(item: Field) -> dict[str, Any]:
    schema = _json_item(item.type)
    return {"type": "array", "items": schema} if item.repeated else schema


# --- values: XML text <-> Python -------------------------------------------------------------------------------


def parse_simple(kind: Any, text: str, where: str) -> Any:
    """A simple value from its XML Schema lexical form; :class:`ValueProblem` if it does not fit."""
    value = text.strip() if kind is not str else text
    try:
        if kind is str:
            return value
        if kind is bool:
            if value in ("true", "1"):
                return True
            if value in ("false", "0"):
                return False
            raise ValueError(value)
        if kind is int:
            return int(value)
        if kind is float:
            return float(value)
        if kind is decimal.Decimal:
            number = decimal.Decimal(value)
            if not number.is_finite():
                raise ValueError(value)
            return number
        if kind is dt.date:
            return dt.date.fromisoformat(value)
        if kind is dt.datetime:
            return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except (ValueError, decimal.InvalidOperation) as err:
        raise ValueProblem(f"{where}: {text[:40]!r} is not a valid {_SIMPLE[kind][0]}") from err
    raise ShapeError(f"{where}: unsupported type {kind!r}")


def format_simple(value: Any, where: str, kind: Any = None) -> str:
    """The XML Schema lexical form of a simple value (checked against ``kind``, its declared type, when given)."""
    if kind is not None and not _fits(value, kind):
        raise ShapeError(f"{where}: {type(value).__name__} value where the description says {_SIMPLE[kind][0]}")
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return format(value, "f")  # xs:decimal has no exponent form
    if isinstance(value, (str, int, float)):
        return str(value)
    raise ShapeError(f"{where}: cannot write a {type(value).__name__} as XML")


def read_record(element: etree._Element, fields: Sequence[Field], where: str) -> dict[str, Any]:
    """The values of ``fields`` read from ``element``'s children (matched by local name, in any namespace)."""
    by_name = {f.name: f for f in fields}
    values: dict[str, Any] = {}
    for child in element:
        if isinstance(child, (etree._Comment, etree._ProcessingInstruction)):
            continue
        name = etree.QName(child).localname
        item = by_name.get(name)
        if item is None:
            raise ValueProblem(f"{where}: unexpected element {name}")
        value = _read_value(child, item, f"{where}/{name}")
        if item.repeated:
            values.setdefault(name, []).append(value)
        elif name in values:
            raise ValueProblem(f"{where}: element {name} appears more than once")
        else:
            values[name] = value
    for item in fields:
        if item.name not in values and not item.optional:
            if item.repeated:
                values[item.name] = []
            else:
                raise ValueProblem(f"{where}: element {item.name} is missing")
    return values


def _read_value(element: etree._Element, item: Field, where: str) -> Any:
    if item.is_record:
        return read_record(element, record_fields(item.type), where)
    if len(element):
        raise ValueProblem(f"{where}: expected text, found child elements")
    return parse_simple(item.type, element.text or "", where)


def _fits(value: Any, kind: Any) -> bool:
    if kind is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind is dt.date:
        return isinstance(value, dt.date) and not isinstance(value, dt.datetime)
    return isinstance(value, kind)


def write_record(parent: etree._Element, fields: Sequence[Field], values: Any, where: str) -> None:
    """Append ``values`` to ``parent`` as unqualified child elements in field order; None and absent are left out."""
    if not isinstance(values, Mapping):
        raise ShapeError(f"{where}: expected a mapping, got {type(values).__name__}")
    for item in fields:
        value = values.get(item.name)
        if value is None:
            if not item.optional and not item.repeated:
                raise ShapeError(f"{where}: the answer has no value for {item.name}")
            continue
        for one in (value if item.repeated else [value]):
            child = etree.SubElement(parent, item.name)
            if item.is_record:
                write_record(child, record_fields(item.type), one, f"{where}/{item.name}")
            else:
                child.text = format_simple(one, f"{where}/{item.name}", item.type)


def to_json(value: Any) -> Any:
    """A JSON-ready copy of a value made of the supported types (dates and decimals as strings)."""
    if isinstance(value, Mapping):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json(v) for v in value]
    if isinstance(value, (dt.date, dt.datetime, decimal.Decimal)):
        return value.isoformat() if not isinstance(value, decimal.Decimal) else str(value)
    return value
