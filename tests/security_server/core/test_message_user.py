"""The user id a logged message names (core/message_user.py): SOAP ``userId``, REST ``X-Road-UserId``, else None."""

from __future__ import annotations

from hypothesis import given, strategies as st

from security_server.core.message_user import message_user_id
from security_server.core.rest import RestRequest
from tests.federation.evidence import soap_message

_USER = "<xroad:userId>EE30101010007</xroad:userId>"


def _with_user(message: bytes, element: str = _USER) -> bytes:
    return message.replace(b"<xroad:protocolVersion>", element.encode() + b"<xroad:protocolVersion>", 1)


def _rest(*headers: tuple[str, str]) -> bytes:
    return RestRequest.from_client(
        "GET", "/r1/EE/GOV/70000311/provider/getRandom?x=1",
        [("X-Road-Client", "EE/GOV/70000310/consumer"), *headers], request_id="r-1", new_query_id="q-1",
    ).to_bytes()


def test_a_soap_header_user_id_is_read() -> None:
    """The X-Road ``userId`` header element names the user, in a request and in the response echoing it."""
    assert message_user_id(_with_user(soap_message("q", response=False))) == "EE30101010007"
    assert message_user_id(_with_user(soap_message("q", response=True))) == "EE30101010007"


def test_a_soap_message_without_user_id_names_none() -> None:
    """No ``userId`` header: None (and a ``userId`` in the body or in another namespace does not count)."""
    assert message_user_id(soap_message("q", response=False)) is None
    in_body = soap_message("q", response=False, payload="<userId>EE1</userId>")
    assert message_user_id(in_body) is None
    other = _with_user(soap_message("q", response=False), '<x:userId xmlns:x="urn:other">EE2</x:userId>')
    assert message_user_id(other) is None


def test_a_rest_request_header_names_the_user() -> None:
    """``X-Road-UserId`` (any case) names the user of a REST request; without it, None."""
    assert message_user_id(_rest(("x-road-userid", "EE30101010007"))) == "EE30101010007"
    assert message_user_id(_rest()) is None


@given(st.binary(max_size=200))
def test_any_bytes_give_a_string_or_none(data: bytes) -> None:
    """Unreadable bytes (a fault body, garbage) never raise: they name no user, or one string."""
    found = message_user_id(data)
    assert found is None or isinstance(found, str)
