"""Multipart bodies whose lines end in a bare LF (as X-Road's test requests do), in CRLF, or in a mix of both."""

from __future__ import annotations

from typing import Iterator, Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from security_server.core.errors import BadRequest, InvalidContentType, MimeParsingFailed, MissingSoap
from security_server.core.multipart import Part, build_multipart, parse_multipart, parse_multipart_message
from security_server.core.soapattachments import SoapWithAttachments, parse_related

CRLF, LF = b"\r\n", b"\n"
BOUNDARY = "jetty771207119h3h10dty"
DASH = b"--" + BOUNDARY.encode("ascii")
PROPERTY = settings(max_examples=100, deadline=None)
TOKEN_CHARS = "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

header_names = st.text(alphabet=TOKEN_CHARS, min_size=1, max_size=12)
header_values = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x2FF, exclude_characters="\x7f"), max_size=30
).map(lambda s: s.strip(" \t"))
# Any bytes but the boundary itself (RFC 2046 §5.1.1), with CR and LF made likely. A body that ends in CR is
# left out here: before a bare-LF delimiter its CR would read as the delimiter's CRLF (pinned by a vector below).
pieces = st.sampled_from([b"\r", b"\n", b"\r\n", b"--", b"-", b"x", b"\x00", b"\xff", b" "]) | st.binary(max_size=8)
bodies = (
    st.lists(pieces)
    .map(b"".join)
    .filter(lambda body: DASH not in body and not body.endswith(b"\r"))
)
parts = st.builds(Part, st.lists(st.tuples(header_names, header_values), max_size=4).map(tuple), bodies)


def encode(items: Sequence[Part], line_ends: Iterator[bytes], header_only: bool = True) -> bytes:
    """``items`` as a multipart body whose every line ends in the next of ``line_ends``.

    With ``header_only`` a part without a body ends after its last header line, as X-Road's generator writes it.
    """
    out = bytearray(b"preamble" + next(line_ends))
    for part in items:
        out += DASH + next(line_ends)
        for name, value in part.headers:
            out += f"{name}: {value}".encode("utf-8") + next(line_ends)
        if part.body or not header_only or not part.headers:
            out += next(line_ends) + part.body
        out += next(line_ends)
    out += DASH + b"--" + next(line_ends) + b"epilogue"
    return bytes(out)


def always(line_end: bytes) -> Iterator[bytes]:
    """The same line end for every line."""
    while True:
        yield line_end


@PROPERTY
@given(st.lists(parts, min_size=1, max_size=4), st.booleans())
def test_crlf_and_lf_bodies_parse_to_the_same_parts(items: list[Part], header_only: bool) -> None:
    """The same parts written with CRLF and with bare LF line ends parse to the same headers and exact bodies."""
    crlf = parse_multipart(encode(items, always(CRLF), header_only), BOUNDARY)
    lf = parse_multipart(encode(items, always(LF), header_only), BOUNDARY)
    assert crlf == lf == tuple(items)


@PROPERTY
@given(st.lists(parts, min_size=1, max_size=4), st.lists(st.booleans(), min_size=1), st.booleans())
def test_mixed_line_ends_parse_to_the_same_parts(items: list[Part], choices: list[bool], header_only: bool) -> None:
    """Each line may end in CRLF or LF independently of the others (a lenient MIME reader's rule)."""

    def mixed() -> Iterator[bytes]:
        while True:
            for choice in choices:
                yield CRLF if choice else LF

    assert parse_multipart(encode(items, mixed(), header_only), BOUNDARY) == tuple(items)


@PROPERTY
@given(st.lists(parts, min_size=1, max_size=3))
def test_what_we_build_still_uses_crlf_and_parses_back(items: list[Part]) -> None:
    """The builder's bytes are unchanged (CRLF throughout) and read back exactly."""
    boundary, body = build_multipart(items)
    dash = b"--" + boundary.encode("ascii")
    assert body.endswith(dash + b"--" + CRLF) and body.startswith(dash + CRLF)
    assert parse_multipart(body, boundary) == tuple(items)


@PROPERTY
@given(st.lists(parts, min_size=1, max_size=3), st.booleans())
def test_soap_with_attachments_reads_the_same_in_both_styles(attachments: list[Part], lf: bool) -> None:
    """parse_related reads an LF multipart/related message as it reads the CRLF one."""
    soap = Part((("Content-Type", "text/xml; charset=UTF-8"), ("Content-ID", "<soap>")), b"<Envelope/>\n")
    items = [soap, *(Part((("Content-Type", "application/octet-stream"), *p.headers), p.body) for p in attachments)]
    content_type = f'multipart/related; type="text/xml"; boundary={BOUNDARY}'
    message = parse_related(content_type, encode(items, always(LF if lf else CRLF)))
    assert message == SoapWithAttachments(items[0], tuple(items[1:]))


# --- named vectors -------------------------------------------------------------------------------------------


def test_lf_vector_two_parts() -> None:
    """A bare-LF body as X-Road's attachm2.query is written: each part's headers and body, body line ends kept."""
    body = b"--b\nContent-Type: text/xml\n\n<a/>\n\n--b\nContent-Type: text/plain\n\nline 1\r\nline 2\n--b--\n"
    assert parse_multipart(body, "b") == (
        Part((("Content-Type", "text/xml"),), b"<a/>\n"),
        Part((("Content-Type", "text/plain"),), b"line 1\r\nline 2"),
    )


def test_lf_vector_header_only_and_headerless_parts() -> None:
    """With LF, a part may end after its last header line, and a part may start with its blank line."""
    body = b"--b\nExpire-date: 2026-01-01T00:00:00Z\n\n--b\n\nno headers\n--b--"
    assert parse_multipart(body, "b") == (
        Part((("Expire-date", "2026-01-01T00:00:00Z"),), b""),
        Part((), b"no headers"),
    )


def test_lf_vector_folded_header_and_blanks_after_boundary() -> None:
    """Folded header lines unfold over LF too, and blanks after the boundary are allowed before the LF."""
    body = b'--b \t\nX-Hash: abc;\n    alg="x"\n\n1\n--b--\n'
    assert parse_multipart(body, "b") == (Part((("X-Hash", 'abc;    alg="x"'),), b"1"),)


def test_mixed_vector_crlf_boundaries_lf_headers() -> None:
    """CRLF boundary lines with LF header lines and a CRLF-LF blank line (as hand-edited files have)."""
    body = b"--b\r\nA: 1\nB: 2\r\n\nbody\r\n--b\nC: 3\n\r\n\r\n--b--\r\n"
    assert parse_multipart(body, "b") == (Part((("A", "1"), ("B", "2")), b"body"), Part((("C", "3"),), b""))


def test_cr_before_a_bare_lf_delimiter_belongs_to_the_delimiter() -> None:
    """RFC 2046 §5.1.1: a CR right before ``LF--boundary`` makes a CRLF delimiter, so it is not body."""
    assert parse_multipart(b"--b\n\nends in CR\r\n--b--", "b") == (Part((), b"ends in CR"),)
    assert parse_multipart(b"--b\n\nends in CR\r\r\n--b--", "b") == (Part((), b"ends in CR\r"),)


def test_lf_preamble_and_epilogue_are_ignored() -> None:
    """A preamble ending in LF and any epilogue are not parts."""
    body = b"This is a preamble\n--b\nA: 1\n\nx\n--b--\nepilogue\n--b\nA: 2\n\ny\n"
    assert parse_multipart(body, "b") == (Part((("A", "1"),), b"x"),)


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"--b\nA: 1\n\nx\n", id="lf-no-closing-boundary"),
        pytest.param(b"--b\nA: 1\n\nx\n--b", id="lf-truncated-after-boundary"),
        pytest.param(b"preamble\n-b\nA: 1\n\nx\n-b--", id="lf-no-opening-boundary"),
        pytest.param(b"--b--\n", id="lf-no-parts"),
        pytest.param(b"--bX\nA: 1\n\nx\n--b--", id="lf-boundary-prefix-of-longer-line"),
        pytest.param(b"--b garbage\nA: 1\n\nx\n--b--", id="lf-garbage-after-boundary"),
        pytest.param(b"--b\nA: 1\n\nx\n--b junk\n--b--", id="lf-garbage-on-a-later-boundary-line"),
        pytest.param(b"--b\nA 1\n\nx\n--b--", id="lf-header-without-colon"),
        pytest.param(b"--b\n A: 1\n\nx\n--b--", id="lf-leading-continuation"),
        pytest.param(b"--b\nA: 1\rB: 2\n\nx\n--b--", id="lf-bare-cr-in-headers"),
        pytest.param(b"--b\nA: 1\r\r\n\nx\n--b--", id="lf-cr-cr-lf-in-headers"),
        pytest.param(b"--b\rA: 1\n\nx\n--b--", id="bare-cr-after-boundary"),
        pytest.param(b"--b\nA: \x01\n\nx\n--b--", id="lf-control-character"),
        pytest.param(b"--b\nbody-without-blank-line\n--b--", id="lf-no-blank-line"),
        pytest.param(b"--b\nA: 1\n\nx--b--\n", id="lf-boundary-not-at-line-start"),
    ],
)
def test_malformed_lf_bodies_are_refused(body: bytes) -> None:
    """Accepting bare LF does not accept what is really malformed: each of these is BadRequest."""
    with pytest.raises(BadRequest):
        parse_multipart(body, "b")


def test_lf_body_without_boundary_parameter_is_refused() -> None:
    """A multipart content type without ``boundary`` is refused before the body is read."""
    with pytest.raises(InvalidContentType):
        parse_multipart_message("multipart/related", b"--b\nA: 1\n\nx\n--b--\n", ("multipart/related",))
    with pytest.raises(MimeParsingFailed):
        parse_related('multipart/related; type="text/xml"', b"--b\nContent-Type: text/xml\n\n<a/>\n--b--\n")


def test_lf_related_message_faults_keep_their_codes() -> None:
    """An LF multipart/related body that is truncated is mime_parsing_failed; one without parts is missing_soap."""
    with pytest.raises(MimeParsingFailed):
        parse_related("multipart/related; boundary=b", b"--b\nContent-Type: text/xml\n\n<a/>\n")
    with pytest.raises(MissingSoap):
        parse_related("multipart/related; boundary=b", b"--b--\n")
