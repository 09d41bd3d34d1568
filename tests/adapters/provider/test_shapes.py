"""Python annotations become XML Schema, JSON Schema and element trees, and values survive the trip."""

from __future__ import annotations

import datetime as dt
import decimal
from typing import Any, NotRequired, TypedDict

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from adapters.provider.shapes import (
    ShapeError,
    ValueProblem,
    field_of,
    json_schema,
    parse_simple,
    read_record,
    record_fields,
    to_json,
    write_record,
)


class Address(TypedDict):
    """A nested record."""

    street: str
    zip: NotRequired[str]


class Citizen(TypedDict):
    """Every supported shape at once."""

    code: str
    age: int
    height: float
    alive: bool
    balance: decimal.Decimal
    born: dt.date
    seen: dt.datetime
    nickname: str | None
    phones: list[str]
    address: Address
    homes: list[Address]


_TEXT = st.text(st.characters(min_codepoint=33, max_codepoint=0xD7FF, blacklist_characters="\x7f"), max_size=12)
_ADDRESS = st.builds(lambda street, zip_code: {"street": street, **({"zip": zip_code} if zip_code else {})},
                     _TEXT, st.none() | _TEXT)
_CITIZEN = st.fixed_dictionaries({
    "code": _TEXT,
    "age": st.integers(min_value=-(2**62), max_value=2**62),
    "height": st.floats(allow_nan=False, allow_infinity=False),
    "alive": st.booleans(),
    "balance": st.decimals(allow_nan=False, allow_infinity=False, places=2, min_value=-10**9, max_value=10**9),
    "born": st.dates(),
    "seen": st.datetimes(timezones=st.just(dt.timezone.utc)),
    "nickname": st.none() | _TEXT,
    "phones": st.lists(_TEXT, max_size=3),
    "address": _ADDRESS,
    "homes": st.lists(_ADDRESS, max_size=2),
})


@settings(max_examples=60, deadline=None)
@given(citizen=_CITIZEN)
def test_a_record_written_as_xml_reads_back_equal(citizen: dict[str, Any]) -> None:
    """write_record then read_record gives the same values (absent optionals stay absent)."""
    fields = record_fields(Citizen)
    element = etree.Element("{urn:test}wrapper")
    write_record(element, fields, citizen, "citizen")
    parsed = etree.fromstring(etree.tostring(element))
    back = read_record(parsed, fields, "citizen")
    expected = {k: v for k, v in citizen.items() if v is not None}
    assert back == expected


def test_record_fields_know_optional_and_repeated() -> None:
    """T | None and NotRequired are optional; list[T] is repeated; a TypedDict is a record."""
    fields = {f.name: f for f in record_fields(Citizen)}
    assert fields["nickname"].optional and not fields["code"].optional
    assert fields["phones"].repeated and fields["homes"].repeated and fields["homes"].is_record
    assert {f.name: f.optional for f in record_fields(Address)} == {"street": False, "zip": True}


@pytest.mark.parametrize("annotation", [dict[str, str], set[int], int | str, bytes, object])
def test_unsupported_types_are_refused_when_declared(annotation: Any) -> None:
    """A type the kit cannot describe is refused up front, not when first called."""
    with pytest.raises(ShapeError):
        field_of("x", annotation)


@pytest.mark.parametrize(
    ("kind", "text"),
    [(int, "twelve"), (bool, "yes"), (dt.date, "2020-13-01"), (decimal.Decimal, "NaN"), (float, "")],
)
def test_values_that_do_not_fit_are_a_client_problem(kind: Any, text: str) -> None:
    """Text that is not a valid value of its type raises ValueProblem naming the field."""
    with pytest.raises(ValueProblem, match="where"):
        parse_simple(kind, text, "where")


def test_missing_unknown_and_repeated_elements_are_refused() -> None:
    """A required element missing, an element not declared, or a single element twice is a ValueProblem."""
    fields = record_fields(Address)
    for xml, problem in (
        (b"<w><zip>1</zip></w>", "street is missing"),
        (b"<w><street>a</street><floor>2</floor></w>", "unexpected element floor"),
        (b"<w><street>a</street><street>b</street></w>", "more than once"),
        (b"<w><street><b>bold</b></street></w>", "expected text"),
    ):
        with pytest.raises(ValueProblem, match=problem):
            read_record(etree.fromstring(xml), fields, "w")


def test_json_schema_and_json_values() -> None:
    """OpenAPI schemas follow the annotations; dates and decimals become strings in JSON."""
    schema = json_schema(list[Citizen])
    assert schema["type"] == "array"
    item = schema["items"]
    assert item["properties"]["born"] == {"type": "string", "format": "date"}
    assert item["properties"]["phones"]["type"] == "array"
    assert "nickname" not in item["required"] and "code" in item["required"]
    assert json_schema(int | None) == {"type": "integer", "format": "int64", "nullable": True}
    assert to_json({"d": dt.date(2020, 1, 2), "n": decimal.Decimal("1.50"), "l": [dt.datetime(2020, 1, 1)]}) == {
        "d": "2020-01-02", "n": "1.50", "l": ["2020-01-01T00:00:00"]}
