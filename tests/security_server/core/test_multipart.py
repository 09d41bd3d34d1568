"""Tests for the strict multipart parser and builder (security_server/core/multipart.py)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from security_server.core.errors import BadRequest, BusError, InvalidContentType, RequestTooLarge
from security_server.core.multipart import (
    HeaderValue,
    Limits,
    Part,
    build_multipart,
    format_header_value,
    parse_header_value,
    parse_multipart,
    parse_multipart_message,
)

TOKEN_CHARS = "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

header_names = st.text(alphabet=TOKEN_CHARS, min_size=1, max_size=12)
header_values = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x2FF, exclude_characters="\x7f"), max_size=30
).map(lambda s: s.strip(" \t"))
parts = st.builds(
    Part,
    st.lists(st.tuples(header_names, header_values), max_size=4).map(tuple),
    st.binary(max_size=200),
)


def sample_body() -> tuple[str, bytes]:
    """A two-part body built by us."""
    return build_multipart([Part((("Content-Type", "text/plain"),), b"hello\r\n"), Part((("X-A", "1"),), b"\x00\xff")])


@settings(max_examples=100, deadline=None)
@given(st.lists(parts, min_size=1, max_size=5))
def test_build_then_parse_returns_the_same_parts(items: list[Part]) -> None:
    """Any parts with valid headers and arbitrary binary bodies survive build -> parse unchanged."""
    boundary, body = build_multipart(items)
    assert parse_multipart(body, boundary) == tuple(items)


@settings(max_examples=50, deadline=None)
@given(st.lists(parts, min_size=1, max_size=3))
def test_build_is_deterministic(items: list[Part]) -> None:
    """The same parts always build to the same bytes (the derived boundary depends on the content only)."""
    assert build_multipart(items) == build_multipart(list(items))


def test_every_truncation_is_refused() -> None:
    """Cutting the body anywhere before its close delimiter's final '--' raises BadRequest, never a bare error."""
    boundary, body = sample_body()
    assert body.endswith(b"--\r\n")
    for cut in range(len(body) - 2):
        with pytest.raises(BadRequest):
            parse_multipart(body[:cut], boundary)
    assert len(parse_multipart(body[: len(body) - 2], boundary)) == 2


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300), st.sampled_from(["b", "fedbus-x", "a b"]))
def test_garbage_never_raises_a_bare_exception(garbage: bytes, boundary: str) -> None:
    """Arbitrary bytes either parse or raise one of our BusErrors."""
    try:
        parse_multipart(garbage, boundary)
    except BusError:
        pass


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=0), st.integers(min_value=1, max_value=255))
def test_single_byte_changes_never_raise_a_bare_exception(position: int, xor: int) -> None:
    """Flipping any byte of a valid body parses or raises a BusError."""
    boundary, body = sample_body()
    data = bytearray(body)
    data[position % len(data)] ^= xor
    try:
        parse_multipart(bytes(data), boundary)
    except BusError:
        pass


def test_header_only_part_as_x_road_writes_it() -> None:
    """A part that ends after its last header line (X-Road's Expire-date part) has headers and an empty body."""
    body = b"--b\r\nExpire-date: 2026-01-01T00:00:00Z\r\nVersion: 3\r\n\r\n--b\r\nA: 1\r\n\r\nxyz\r\n--b--\r\n"
    first, second = parse_multipart(body, "b")
    assert first == Part((("Expire-date", "2026-01-01T00:00:00Z"), ("Version", "3")), b"")
    assert second == Part((("A", "1"),), b"xyz")


def test_part_without_headers_keeps_its_body() -> None:
    """A part that starts with a blank line has no headers and the rest as its body."""
    assert parse_multipart(b"--b\r\n\r\n\r\nbody\r\n--b--", "b") == (Part((), b"\r\nbody"),)


def test_folded_header_lines_are_unfolded() -> None:
    """A continuation line is joined to its header, keeping its blanks (RFC 5322 unfolding)."""
    body = b'--b\r\nX-Hash: abc;\r\n    alg="x"\r\n\r\n1\r\n--b--\r\n'
    (part,) = parse_multipart(body, "b")
    assert part.header("x-hash") == 'abc;    alg="x"'


def test_preamble_and_epilogue_are_ignored() -> None:
    """Text before the first delimiter and after the close delimiter is not a part (RFC 2046)."""
    body = b"This is a preamble\r\n--b\r\nA: 1\r\n\r\nx\r\n--b--\r\nepilogue"
    assert parse_multipart(body, "b") == (Part((("A", "1"),), b"x"),)


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"no boundary here", id="no-opening-boundary"),
        pytest.param(b"--b--\r\n", id="no-parts"),
        pytest.param(b"--bX\r\nA: 1\r\n\r\nx\r\n--b--", id="boundary-prefix-of-longer-line"),
        pytest.param(b"--b\r\nA: 1\r\n\r\nx\r\n--b", id="truncated-after-boundary"),
        pytest.param(b"--b\r\nA: 1\r\n\r\nx", id="no-closing-boundary"),
        pytest.param(b"--b\r\nA: 1\rB: 2\r\n\r\nx\r\n--b--", id="bare-cr-in-headers"),
        pytest.param(b"--b\rA: 1\r\n\r\nx\r\n--b--", id="bare-cr-after-boundary"),
        pytest.param(b"--b\r\nA 1\r\n\r\nx\r\n--b--", id="header-without-colon"),
        pytest.param(b"--b\r\n A: 1\r\n\r\nx\r\n--b--", id="leading-continuation"),
        pytest.param(b"--b\r\nA: \x01\r\n\r\nx\r\n--b--", id="control-character"),
        pytest.param(b"--b\r\nA: \xff\r\n\r\nx\r\n--b--", id="header-not-utf8"),
        pytest.param(b"--b\r\nbody-without-blank-line\r\n--b--", id="no-blank-line"),
    ],
)
def test_malformed_bodies_are_refused(body: bytes) -> None:
    """Each malformed body is refused with BadRequest."""
    with pytest.raises(BadRequest):
        parse_multipart(body, "b")


def test_limits_are_enforced() -> None:
    """Too many parts, too large a part, too long a header block, too large a body: RequestTooLarge."""
    boundary, body = build_multipart([Part((("A", "1"),), b"x" * 100)] * 3)
    with pytest.raises(RequestTooLarge):
        parse_multipart(body, boundary, Limits(max_parts=2))
    with pytest.raises(RequestTooLarge):
        parse_multipart(body, boundary, Limits(max_part_bytes=50))
    with pytest.raises(RequestTooLarge):
        parse_multipart(body, boundary, Limits(max_body_bytes=100))
    _, long_headers = build_multipart([Part((("A", "v" * 200),), b"x")], "b")
    with pytest.raises(RequestTooLarge):
        parse_multipart(long_headers, "b", Limits(max_header_bytes=100))
    _, many_headers = build_multipart([Part(tuple((f"H{i}", "v") for i in range(10)), b"x")], "b")
    with pytest.raises(RequestTooLarge):
        parse_multipart(many_headers, "b", Limits(max_headers_per_part=5))


def test_repeated_header_is_ambiguous() -> None:
    """Looking up a header that a part repeats is refused rather than guessing which one counts."""
    (part,) = parse_multipart(b"--b\r\nA: 1\r\na: 2\r\n\r\nx\r\n--b--", "b")
    with pytest.raises(BadRequest):
        part.header("A")
    with pytest.raises(BadRequest):
        Part((("A", "1"),)).require_header("B")


def test_boundary_inside_a_part_is_refused_when_given() -> None:
    """A caller-chosen boundary that occurs in a part is refused; a derived one avoids the content."""
    item = Part((), b"\r\n--b\r\n")
    with pytest.raises(BadRequest):
        build_multipart([item], "b")
    boundary, body = build_multipart([item])
    assert parse_multipart(body, boundary) == (item,)


@pytest.mark.parametrize("boundary", ["", "x" * 71, "ends with space ", "bad\r\n", "bad;"])
def test_invalid_boundaries_are_refused(boundary: str) -> None:
    """Boundaries that RFC 2046 does not allow are refused."""
    with pytest.raises(InvalidContentType):
        parse_multipart(b"--x\r\n\r\n--x--", boundary)


def test_invalid_part_headers_cannot_be_built() -> None:
    """Header names and values that could not be parsed back are refused when the part is made."""
    for headers in ((("A:B", "1"),), (("A", "1\r\nB: 2"),), (("A", " padded"),), (("", "x"),)):
        with pytest.raises(BadRequest):
            Part(headers)


def test_message_content_type_must_match() -> None:
    """parse_multipart_message checks the media type and the boundary parameter."""
    boundary, body = sample_body()
    header, items = parse_multipart_message(f'multipart/related; boundary="{boundary}"', body, ("multipart/related",))
    assert header.media_type == "multipart/related" and len(items) == 2
    with pytest.raises(InvalidContentType):
        parse_multipart_message(f"multipart/mixed; boundary={boundary}", body, ("multipart/related",))
    with pytest.raises(InvalidContentType):
        parse_multipart_message("multipart/related", body, ("multipart/related",))


def test_header_values_with_parameters() -> None:
    """Tokens, quoted strings with escapes and X-Road's single-quoted values are read; names lower-cased."""
    value = parse_header_value('Multipart/Related; Charset=UTF-8; boundary="a \\"b\\""; instance=\'EE\';')
    assert value == HeaderValue("Multipart/Related", (("charset", "UTF-8"), ("boundary", 'a "b"'), ("instance", "EE")))
    assert value.media_type == "multipart/related"
    assert value.param("BOUNDARY") == 'a "b"' and value.param("missing") is None


@pytest.mark.parametrize(
    "text",
    ["", "; a=b", "x; a", "x; a=b; a=c", 'x; a="open', "x; a='open", 'x; a="b" c', "x; a=b c", "x; a b=c", "x; a=\\"],
)
def test_malformed_header_values_are_refused(text: str) -> None:
    """Empty values, parameters without '=', duplicates, unterminated quotes and stray text are refused."""
    with pytest.raises(BadRequest):
        parse_header_value(text)


@settings(max_examples=100, deadline=None)
@given(header_names, st.lists(st.tuples(header_names.map(str.lower), header_values), max_size=3, unique_by=lambda p: p[0]))
def test_header_value_format_then_parse(value: str, params: list[tuple[str, str]]) -> None:
    """format_header_value output parses back to the same value and parameters."""
    assert parse_header_value(format_header_value(value, params)) == HeaderValue(value, tuple(params))
