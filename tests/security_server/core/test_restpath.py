"""REST service paths: the one normal form access rights see, every encoding trick refused, and path patterns."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from security_server.core.errors import BadRequest
from security_server.core.restpath import method_matches, normalise_service_path, pattern_matches

PROPERTY = settings(max_examples=100, deadline=None)

# Decoded segments that servers all read the same way: no separators, escapes, ';', controls, '.' or '..'.
plain_segments = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="/\\%;\x7f"), min_size=1, max_size=12
).filter(lambda s: s not in (".", "..") and not any(0x80 <= ord(c) <= 0x9F for c in s))


@pytest.mark.parametrize(
    ("raw", "normal"),
    [
        ("", "/"),
        ("/", "/"),
        ("/pets", "/pets"),
        ("/pets/", "/pets/"),
        ("/v2/pets/1124", "/v2/pets/1124"),
        ("/a%20b/c", "/a b/c"),
        ("/%C3%A4iti", "/äiti"),
        ("/a-b_c.d~e!$&'()*+,=:@", "/a-b_c.d~e!$&'()*+,=:@"),
        ("/...", "/..."),
    ],
)
def test_good_paths_have_their_decoded_normal_form(raw: str, normal: str) -> None:
    """Each segment is percent-decoded on its own; an empty service path is /; a trailing / is kept."""
    assert normalise_service_path(raw) == normal


@pytest.mark.parametrize(
    "raw",
    [
        "/public/..%2Fsecret",  # an encoded separator
        "/public/..%2fsecret",
        "/public%5Csecret",  # an encoded backslash
        "/public/%2e%2e/secret",  # encoded dot segments
        "/public/%2E./secret",
        "/public/.%2e",
        "/public/../secret",  # plain dot segments
        "/public/./a",
        "/public/a/..",
        "/..",
        "/public/%252e%252e/secret",  # double encoding
        "/public/a%252Fb",
        "/public/%25",
        "/public/..;/secret",  # servlet path parameters
        "/public/a;x=1",
        "/public/a%3B/secret",
        "/public//a",  # an empty segment
        "//public",
        "/public/a%00b",  # control characters
        "/public/a%0Ab",
        "/public/%C2%85",  # a C1 control (NEL)
        "/public/%",  # broken escapes
        "/public/%2",
        "/public/%zz",
        "/public/%C3",  # not UTF-8
        "/public/%FF",
        "/public/a b",  # characters that must be encoded
        "/public/a\\b",
        "/public/{id}",
        "/public/a|b",
        "public",  # not a path
        "/" + "a" * 2001,
    ],
)
def test_paths_servers_read_differently_are_refused(raw: str) -> None:
    """Separators, dots, escapes, ';', empty segments and controls, encoded or not, are client.bad_request."""
    with pytest.raises(BadRequest) as caught:
        normalise_service_path(raw)
    assert caught.value.fault_code == "client.bad_request"


@PROPERTY
@given(st.lists(plain_segments, min_size=1, max_size=6))
def test_encoded_segments_decode_to_themselves(segments: list[str]) -> None:
    """Segments percent-encoded one by one normalise to themselves joined with /."""
    raw = "/" + "/".join(quote(segment, safe="") for segment in segments)
    assert normalise_service_path(raw) == "/" + "/".join(segments)


@PROPERTY
@given(st.lists(plain_segments, min_size=1, max_size=6))
def test_any_accepted_path_keeps_its_segments(segments: list[str]) -> None:
    """Whatever is accepted has exactly the raw path's segments: an escape never adds or removes a separator."""
    raw = "/" + "/".join(quote(segment, safe="") for segment in segments)
    normal = normalise_service_path(raw)
    assert normal.count("/") == raw.count("/")
    assert all(part not in (".", "..") for part in normal.split("/"))


@PROPERTY
@given(st.text(alphabet="/.%2eEfF5cC;a", max_size=20))
def test_no_encoding_of_a_dot_segment_or_separator_gets_through(raw: str) -> None:
    """Any mix of dots, escapes of '.', '/', '\\\\' and ';' is refused or normalises without a dot segment."""
    try:
        normal = normalise_service_path("/" + raw)
    except BadRequest:
        return
    assert ".." not in normal.split("/") and "." not in normal.split("/")
    assert ";" not in normal and "\\" not in normal and "%" not in normal


@pytest.mark.parametrize(
    ("pattern", "path", "matches"),
    [
        ("**", "/", True),
        ("**", "/anything/at/all", True),
        ("/pets", "/pets", True),
        ("/pets", "/pets/", False),
        ("/pets", "/petsX", False),
        ("/pets/*", "/pets/1", True),
        ("/pets/*", "/pets/", False),  # * is one segment, never an empty one
        ("/pets/*", "/pets/1/2", False),
        ("/pets/{petId}", "/pets/1", True),
        ("/pets/{petId}/images", "/pets/1/images", True),
        ("/pets/*/images", "/pets/1/2/images", False),
        ("/files/**", "/files/a/b/c", True),
        ("/files/**", "/files", False),
        ("/a.b", "/aXb", False),  # regex characters are literal
        ("/a+b", "/a+b", True),
        ("/Pets", "/pets", False),  # case-sensitive
    ],
)
def test_patterns_match_like_x_road_path_globs(pattern: str, path: str, matches: bool) -> None:
    """** is any characters, * (and {name}) one non-empty segment, the rest literal."""
    assert pattern_matches(pattern, path) is matches


def test_methods_match_exactly_or_by_star() -> None:
    """An endpoint method * covers every method; otherwise the method itself (case-insensitive)."""
    assert method_matches("*", "DELETE")
    assert method_matches("GET", "get")
    assert not method_matches("GET", "HEAD")
