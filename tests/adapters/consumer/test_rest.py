"""The REST consumer builds r1 URLs segment by segment and sends the X-Road headers (pr-rest §4.1, §4.3)."""

from __future__ import annotations

from urllib.parse import unquote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.consumer.rest import RestAnswer, RestConsumer, encode_path
from adapters.consumer.faults import UnexpectedAnswer
from security_server.core.identifiers import ClientId, SecurityServerId, ServiceId

CLIENT = ClientId("EE", "GOV", "70000001", "tax-app")
SERVICE = ServiceId(ClientId("EE", "GOV", "70000002", "population"), "persons")


def test_urls_name_the_service_then_the_path() -> None:
    """``/r1/INSTANCE/CLASS/MEMBER/SUB/SERVICE`` then the path, with a trailing slash on the base tolerated."""
    consumer = RestConsumer("http://127.0.0.1:8080/", CLIENT)
    assert consumer.url_for(SERVICE) == "http://127.0.0.1:8080/r1/EE/GOV/70000002/population/persons"
    assert consumer.url_for(SERVICE, "/38001010014") == "http://127.0.0.1:8080/r1/EE/GOV/70000002/population/persons/38001010014"
    assert consumer.url_for(SERVICE, ["a/b", "c d"]).endswith("/persons/a%2Fb/c%20d")
    odd = ServiceId(ClientId("EE", "GOV", "70000002", "sub"), "get(x)=y?")
    assert consumer.url_for(odd).endswith("/r1/EE/GOV/70000002/sub/get(x)=y%3F")


@pytest.mark.parametrize("path", ["/a/../b", "..", "/./x", "a//b", ["a", ".."], ["", "b"]])
def test_paths_that_would_be_normalised_are_refused(path: str | list[str]) -> None:
    """Dot segments and empty segments are refused: no path can turn into another one on the way."""
    with pytest.raises(ValueError):
        encode_path(path)


def test_a_trailing_slash_is_kept() -> None:
    """``/persons/`` is not ``/persons``; the trailing empty segment stays."""
    assert encode_path("/x/") == "/x/" and encode_path("") == "" and encode_path([]) == ""


@settings(max_examples=100, deadline=None)
@given(st.lists(st.text(min_size=1, max_size=12).filter(lambda s: s not in (".", "..")), min_size=1, max_size=4))
def test_each_segment_decodes_back_to_itself(segments: list[str]) -> None:
    """Splitting the encoded path at / and decoding each segment gives the segments back (pr-rest §4.1)."""
    encoded = encode_path(segments)
    assert [unquote(s, errors="strict") for s in encoded.split("/")[1:]] == segments


def test_headers_carry_client_id_user_issue_and_security_server() -> None:
    """X-Road-Client always; a fresh X-Road-Id unless given; the optional headers when set."""
    target = SecurityServerId(ClientId("EE", "GOV", "70000002"), "ss2")
    consumer = RestConsumer("http://x", CLIENT, user_id="EE1", issue="case", security_server=target)
    headers = consumer.headers_for()
    assert headers["X-Road-Client"] == "EE/GOV/70000001/tax-app" and len(headers["X-Road-Id"]) == 36
    assert (headers["X-Road-UserId"], headers["X-Road-Issue"], headers["X-Road-Security-Server"]) == (
        "EE1", "case", "EE/GOV/70000002/ss2")
    assert consumer.headers_for(message_id="m", user_id="EE2")["X-Road-UserId"] == "EE2"
    assert "X-Road-UserId" not in RestConsumer("http://x", CLIENT).headers_for()
    assert consumer.headers_for()["X-Road-Id"] != headers["X-Road-Id"]


def test_an_answer_that_is_not_json_says_so() -> None:
    """RestAnswer.json() raises UnexpectedAnswer with the status for a body that is not JSON."""
    answer = RestAnswer(502, {"content-type": "text/html"}, b"<html>")
    assert not answer.ok and answer.text == "<html>"
    with pytest.raises(UnexpectedAnswer) as raised:
        answer.json()
    assert raised.value.http_status == 502
