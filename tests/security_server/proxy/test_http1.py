"""The shared HTTP/1.1 response parser (security_server/proxy/http1.py): framing, limits and refusals."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from security_server.core.errors import IoError, Origin, RequestTooLarge
from security_server.proxy.http1 import (
    FIELD_VALUE,
    HOP_BY_HOP,
    MAX_RESPONSE_HEAD_BYTES,
    MAX_RESPONSE_HEADERS,
    TOKEN,
    FieldError,
    RawResponse,
    ResponseParser,
    encode_post,
)

LIMIT = 1000


def parse(data: bytes, *, limit: int = LIMIT, close: bool = False) -> RawResponse | None:
    """Feed ``data`` in one go; with ``close``, then tell the parser the connection closed."""
    parser = ResponseParser(limit)
    done = parser.feed(data)
    if done is None and close:
        return parser.finish_on_close()
    return done


def parse_in_pieces(pieces: list[bytes], *, close: bool = False) -> RawResponse | None:
    """Feed ``pieces`` one by one, as separate reads; the response must not complete before the last."""
    parser = ResponseParser(LIMIT)
    for index, piece in enumerate(pieces):
        done = parser.feed(piece)
        if done is not None:
            assert index == len(pieces) - 1, "response completed before its last byte"
            return done
    return parser.finish_on_close() if close else None


CONTENT_LENGTH = b"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: 5\r\n\r\nhello"
CHUNKED = (
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: text/plain\r\n\r\n"
    b"5;name=value\r\nhello\r\n1\r\n \r\n5\r\nworld\r\n0\r\nX-Checksum: abc\r\nX-Other: d\r\n\r\n"
)
CLOSE_DELIMITED = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end"


def test_content_length_body_is_read_and_connection_kept() -> None:
    """A Content-Length response: status, lower-cased headers, exactly that many body bytes, keep-alive."""
    done = parse(CONTENT_LENGTH)
    assert done == RawResponse(200, {"content-type": "text/xml", "content-length": "5"}, b"hello", True)


def test_chunked_body_is_assembled_and_trailers_dropped() -> None:
    """A chunked body (with a chunk extension) is joined; the trailer section is read and not kept."""
    done = parse(CHUNKED)
    assert done is not None
    assert done.body == b"hello world"
    assert done.keep_alive
    assert "x-checksum" not in done.headers


def test_close_delimited_body_completes_on_close() -> None:
    """A response without framing runs to the end of the connection, which is then not reusable."""
    parser = ResponseParser(LIMIT)
    assert parser.feed(CLOSE_DELIMITED) is None
    done = parser.finish_on_close()
    assert done.body == b"until the end"
    assert not done.keep_alive


@pytest.mark.parametrize("status", [204, 304])
def test_no_body_statuses_complete_at_the_head(status: int) -> None:
    """204 and 304 have no body whatever their headers say."""
    done = parse(b"HTTP/1.1 %d Nothing\r\nContent-Length: 10\r\n\r\n" % status)
    assert done is not None
    assert (done.status, done.body, done.keep_alive) == (status, b"", True)


def test_interim_100_is_skipped_for_the_final_response() -> None:
    """A 100 Continue before the answer is read past; the final response is what is delivered."""
    done = parse(b"HTTP/1.1 100 Continue\r\n\r\n" + CONTENT_LENGTH)
    assert done is not None
    assert (done.status, done.body) == (200, b"hello")


def test_switching_protocols_is_refused() -> None:
    """A 101 answer to a request that asked for no upgrade is malformed."""
    with pytest.raises(IoError):
        parse(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n")


@pytest.mark.parametrize(
    ("head", "keep_alive"),
    [
        (b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", False),
        (b"HTTP/1.1 200 OK\r\nConnection: Keep-Alive, Close\r\nContent-Length: 0\r\n\r\n", False),
        (b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", False),
        (b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n", True),
    ],
)
def test_persistence_follows_connection_header_and_version(head: bytes, keep_alive: bool) -> None:
    """Connection: close (any case, in a list) ends persistence; HTTP/1.0 persists only with keep-alive."""
    done = parse(head)
    assert done is not None
    assert done.keep_alive is keep_alive


def test_bytes_after_the_response_make_the_connection_unusable() -> None:
    """Extra bytes after a complete response: delivered, but the connection is not reused."""
    done = parse(CONTENT_LENGTH + b"HTTP/1.1 200 OK\r\n")
    assert done is not None
    assert done.body == b"hello"
    assert not done.keep_alive


def test_repeated_header_fields_are_joined() -> None:
    """A field sent twice becomes one comma-separated value."""
    done = parse(b"HTTP/1.1 200 OK\r\nX-A: 1\r\nx-a: 2\r\nContent-Length: 0\r\n\r\n")
    assert done is not None
    assert done.headers["x-a"] == "1, 2"


@pytest.mark.parametrize(
    "response",
    [
        pytest.param(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n", id="te-and-cl"),
        pytest.param(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", id="other-coding"),
        pytest.param(b"HTTP/2 200 OK\r\nContent-Length: 0\r\n\r\n", id="http2-status-line"),
        pytest.param(b"HTTP/1.1 20 OK\r\nContent-Length: 0\r\n\r\n", id="short-status"),
        pytest.param(b"garbage\r\n\r\n", id="garbage"),
        pytest.param(b"HTTP/1.1 200 OK\r\nno colon here\r\nContent-Length: 0\r\n\r\n", id="no-colon"),
        pytest.param(b"HTTP/1.1 200 OK\r\nX-A: 1\r\n folded\r\nContent-Length: 0\r\n\r\n", id="obs-fold"),
        pytest.param(b"HTTP/1.1 200 OK\r\nBad Name: 1\r\nContent-Length: 0\r\n\r\n", id="space-in-name"),
        pytest.param(b"HTTP/1.1 200 OK\r\nX-A: a\x00b\r\nContent-Length: 0\r\n\r\n", id="nul-in-value"),
        pytest.param(b"HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\nhello", id="two-lengths"),
        pytest.param(b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", id="negative-length"),
        pytest.param(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", id="bad-chunk-size"),
        pytest.param(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n", id="chunk-without-crlf"),
    ],
)
def test_malformed_framing_is_refused(response: bytes) -> None:
    """Framing the parser cannot be sure of is refused as io_error, never guessed."""
    with pytest.raises(IoError) as caught:
        parse(response)
    assert caught.value.fault_code == "server.clientproxy.io_error"
    assert caught.value.message == "peer sent a malformed HTTP response"


def test_who_and_origin_shape_the_errors() -> None:
    """A parser made for a service says "service" and carries the server proxy origin."""
    parser = ResponseParser(LIMIT, origin=Origin.SERVER_PROXY, who="service")
    with pytest.raises(IoError) as caught:
        parser.feed(b"garbage\r\n\r\n")
    assert caught.value.message == "service sent a malformed HTTP response"
    assert caught.value.fault_code == "server.serverproxy.io_error"


def test_equal_repeated_content_lengths_are_accepted() -> None:
    """Content-Length repeated with one value is that value (RFC 9110 §8.6)."""
    done = parse(b"HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n\r\nhello")
    assert done is not None
    assert done.body == b"hello"


def test_over_long_head_is_refused_before_it_ends() -> None:
    """A head that grows past the limit without ending is refused as soon as it is too long."""
    parser = ResponseParser(LIMIT)
    assert parser.feed(b"HTTP/1.1 200 OK\r\n") is None
    with pytest.raises(IoError):
        parser.feed(b"X-Long: " + b"a" * MAX_RESPONSE_HEAD_BYTES)


def test_too_many_header_lines_are_refused() -> None:
    """More header lines than MAX_RESPONSE_HEADERS is malformed."""
    lines = b"".join(b"X-%d: v\r\n" % index for index in range(MAX_RESPONSE_HEADERS + 1))
    with pytest.raises(IoError):
        parse(b"HTTP/1.1 200 OK\r\n" + lines + b"Content-Length: 0\r\n\r\n")


def test_over_long_trailer_section_is_refused() -> None:
    """Trailers are bounded like the head."""
    parser = ResponseParser(LIMIT)
    assert parser.feed(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n") is None
    with pytest.raises(IoError):
        for _ in range(MAX_RESPONSE_HEAD_BYTES // 1000 + 2):
            parser.feed(b"X-T: " + b"t" * 1000 + b"\r\n")


@pytest.mark.parametrize(
    "response",
    [
        pytest.param(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % (LIMIT + 1), id="declared-length"),
        pytest.param(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n" % (LIMIT + 1), id="one-chunk"),
        pytest.param(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            + (b"%x\r\n" % 600) + b"a" * 600 + b"\r\n" + (b"%x\r\n" % 600),
            id="chunks-together",
        ),
    ],
)
def test_body_over_the_limit_is_refused_before_it_is_read(response: bytes) -> None:
    """A body announced (whole or by chunks) past the limit is refused without reading it."""
    with pytest.raises(RequestTooLarge):
        parse(response)


def test_close_delimited_body_over_the_limit_is_refused() -> None:
    """A close-delimited body is refused once it grows past the limit."""
    parser = ResponseParser(LIMIT)
    parser.feed(b"HTTP/1.1 200 OK\r\n\r\n")
    with pytest.raises(RequestTooLarge):
        parser.feed(b"x" * (LIMIT + 1))


@pytest.mark.parametrize(
    "cut",
    [
        pytest.param(b"HTTP/1.1 200 OK\r\nContent-Len", id="in-head"),
        pytest.param(CONTENT_LENGTH[:-2], id="in-length-body"),
        pytest.param(CHUNKED[:-10], id="in-chunks"),
    ],
)
def test_close_before_the_end_is_a_cut_short_response(cut: bytes) -> None:
    """The connection closing before a framed response is complete is an io_error, not a short body."""
    parser = ResponseParser(LIMIT)
    assert parser.feed(cut) is None
    with pytest.raises(IoError) as caught:
        parser.finish_on_close()
    assert caught.value.message == "peer closed the connection before its response was complete"


def test_field_grammar_refuses_cr_lf_and_separators() -> None:
    """TOKEN and FIELD_VALUE accept ordinary names and values and refuse header injection."""
    assert TOKEN.fullmatch(b"SOAPAction")
    assert not TOKEN.fullmatch(b"Bad Name")
    assert not TOKEN.fullmatch(b"a:b")
    assert FIELD_VALUE.fullmatch(b'"urn:get" \tx')
    assert not FIELD_VALUE.fullmatch(b"a\r\nX-Injected: 1")
    assert not FIELD_VALUE.fullmatch(b"a\nb")


@pytest.mark.parametrize(
    ("response", "close"),
    [
        pytest.param(b"HTTP/1.1 100 Continue\r\n\r\n" + CONTENT_LENGTH, False, id="content-length"),
        pytest.param(CHUNKED, False, id="chunked"),
        pytest.param(CLOSE_DELIMITED, True, id="close-delimited"),
    ],
)
@given(data=st.data())
def test_any_split_of_the_bytes_gives_the_same_response(response: bytes, close: bool, data: st.DataObject) -> None:
    """However the bytes are cut into reads, the parser delivers the same response, and only at the end."""
    whole = parse(response, close=close)
    cuts = sorted(data.draw(st.sets(st.integers(min_value=1, max_value=len(response) - 1), max_size=12)))
    bounds = [0, *cuts, len(response)]
    pieces = [response[start:end] for start, end in zip(bounds, bounds[1:])]
    assert parse_in_pieces(pieces, close=close) == whole


@pytest.mark.parametrize("response", [CONTENT_LENGTH, CHUNKED, CLOSE_DELIMITED])
def test_every_single_split_point_gives_the_same_response(response: bytes) -> None:
    """Each way of cutting the bytes in two (exhaustively) gives the one-read result."""
    close = response is CLOSE_DELIMITED
    whole = parse(response, close=close)
    for point in range(1, len(response)):
        assert parse_in_pieces([response[:point], response[point:]], close=close) == whole, point


# --- the request both clients write ---------------------------------------------------------------------------


def test_a_post_is_its_request_line_fields_in_order_and_body() -> None:
    """encode_post writes the request line, the fields in the given order, an empty line and the body."""
    data = encode_post(b"/p?q", [("Host", "h:1"), ("Content-Length", "2"), ("X-A", "v")], b"hi")
    assert data == b"POST /p?q HTTP/1.1\r\nHost: h:1\r\nContent-Length: 2\r\nX-A: v\r\n\r\nhi"


@pytest.mark.parametrize(
    ("name", "value", "problem"),
    [("X", "\u0101", "is not Latin-1"), ("a b", "v", "has a bad name or value"), ("X", "a\r\nb", "has a bad name or value")],
)
def test_a_field_that_cannot_be_sent_is_refused(name: str, value: str, problem: str) -> None:
    """A field that is not Latin-1, or not a token name with a field value (no CR or LF: no smuggling), is refused."""
    with pytest.raises(FieldError) as caught:
        encode_post(b"/", [(name, value)], b"")
    assert caught.value.problem == problem


def test_the_hop_by_hop_set_names_one_connections_headers() -> None:
    """The framing and connection headers are never forwarded; end-to-end ones such as Content-Type are."""
    assert {"connection", "keep-alive", "transfer-encoding", "host", "content-length"} <= HOP_BY_HOP
    assert "content-type" not in HOP_BY_HOP
