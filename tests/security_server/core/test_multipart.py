"""Tests for the strict multipart parser and builder (security_server/core/multipart.py)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from security_server.core import multipart
from security_server.core.errors import BadRequest, BusError, InvalidContentType, RequestTooLarge
from security_server.core.multipart import (
    HeaderValue,
    Limits,
    Part,
    build_encoded_multipart,
    build_multipart,
    encode_head,
    format_header_value,
    parse_header_value,
    parse_multipart,
    parse_multipart_message,
)
from tests.security_server.core import multipart_reference

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


# --- issue 18: pre-encoded parts and the fast path for our own content types ----------------------------------


@settings(max_examples=150, deadline=None)
@given(st.lists(parts, min_size=1, max_size=5), st.sampled_from([None, "b", "fedbus-x", "a b"]))
def test_build_writes_what_the_reference_builder_writes(items: list[Part], boundary: str | None) -> None:
    """build_multipart, now over pre-encoded parts, gives the bytes and boundary (or the refusal) of the builder
    it replaced (tests/security_server/core/multipart_reference.py)."""
    try:
        expected: tuple[str, bytes] | str = multipart_reference.build_multipart(items, boundary)
    except BadRequest as err:
        expected = err.message
    try:
        got: tuple[str, bytes] | str = build_multipart(items, boundary)
    except BadRequest as err:
        got = err.message
    assert got == expected


@settings(max_examples=100, deadline=None)
@given(st.lists(parts, min_size=1, max_size=5))
def test_encoded_parts_with_their_own_heads_build_the_same_body(items: list[Part]) -> None:
    """Parts given as (encode_head bytes, body) build the same body as the parts themselves, and parse back."""
    pieces = [(encode_head(p.headers, blank_line=bool(p.body)), p.body) for p in items]
    boundary, body = build_encoded_multipart(pieces)
    assert (boundary, body) == build_multipart(items)
    assert parse_multipart(body, boundary) == tuple(items)


def test_encoded_parts_keep_a_blank_line_before_an_empty_body() -> None:
    """A head that ends in its blank line is written as given, also before an empty body (X-Road's encoder
    always writes the blank line), and parses back to an empty body."""
    head = encode_head((("Content-Type", "text/plain"),))
    _, body = build_encoded_multipart([(head, b"")], "b")
    assert body == b"--b\r\nContent-Type: text/plain\r\n\r\n\r\n--b--\r\n"
    assert parse_multipart(body, "b") == (Part((("Content-Type", "text/plain"),), b""),)


@pytest.mark.parametrize(
    "pieces",
    [[], [(b"Content-Type: a", b"x")], [("Content-Type: a\r\n", b"x")], [(b"", "x")]],
)
def test_malformed_encoded_parts_are_refused(pieces: list[tuple[object, object]]) -> None:
    """No parts, a head without its line end, or text where bytes belong is a BadRequest."""
    with pytest.raises(BadRequest):
        build_encoded_multipart(pieces)  # type: ignore[arg-type]


def test_encode_head_checks_every_header() -> None:
    """encode_head refuses a header Part would refuse (a line break smuggled into a value)."""
    with pytest.raises(BadRequest):
        encode_head((("Content-Type", "text/xml\r\nX-Evil: 1"),))


HEX = "0123456789abcdef"
own_boundaries = st.text(alphabet=HEX, min_size=40, max_size=40).map(lambda h: "fedbus-" + h)
OWN_FORMS = [
    "text/xml; charset=UTF-8",
    "text/xml;charset=utf-8",
    "text/xml",
    "application/ocsp-response",
    "application/x-road-rest-request",
    "application/x-road-rest-response",
    "application/x-road-rest-body",
    "application/hash-chain-result",
    "application/hash-chain",
    "signature/bdoc-1.0/ts",
]


def _full(text: str) -> HeaderValue | str:
    try:
        return multipart._parse_header_value(text)
    except BadRequest as err:
        return err.message


def _fast(text: str) -> HeaderValue | str:
    try:
        return parse_header_value(text)
    except BadRequest as err:
        return err.message


@settings(max_examples=200, deadline=None)
@given(own_boundaries)
def test_fast_path_reads_our_transport_content_type_as_the_parser_does(boundary: str) -> None:
    """The transport content type fedbus writes, with any derived boundary, reads as the full parser reads it."""
    text = format_header_value("multipart/mixed", [("charset", "UTF-8"), ("boundary", boundary)])
    assert _fast(text) == _full(text)
    value = parse_header_value(text)
    assert value.media_type == "multipart/mixed" and value.param("boundary") == boundary


@settings(max_examples=400, deadline=None)
@given(
    st.one_of(own_boundaries, st.text(alphabet=HEX + "G-x\"' ;", min_size=38, max_size=42)),
    st.integers(min_value=0),
    st.sampled_from(["", "\"", "X", ";", " ", "\\", "A", "é"]),
    st.sampled_from(["replace", "insert", "delete", "none"]),
    st.sampled_from(['multipart/mixed; charset="UTF-8"; boundary="', *OWN_FORMS]),
)
def test_fast_path_and_full_parser_agree_on_near_misses(
    tail: str, position: int, char: str, change: str, prefix: str
) -> None:
    """Our own forms, and texts one edit away from them, read the same (value or refusal) on both paths."""
    text = prefix + (tail + '"' if prefix.endswith('"') else "")
    if text:
        at = position % (len(text) + 1)
        if change == "replace" and at < len(text):
            text = text[:at] + char + text[at + 1 :]
        elif change == "insert":
            text = text[:at] + char + text[at:]
        elif change == "delete" and at < len(text):
            text = text[:at] + text[at + 1 :]
    assert _fast(text) == _full(text)


@pytest.mark.parametrize("text", OWN_FORMS)
def test_fast_path_constants_are_the_parsers_values(text: str) -> None:
    """Each constant content type fedbus writes reads as the full parser reads it."""
    assert parse_header_value(text) == multipart._parse_header_value(text)
