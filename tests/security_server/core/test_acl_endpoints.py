"""Endpoint-level access rights for REST (issue 6): they cover their method and path pattern, nothing more."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from security_server.core.acl import AccessRight, Endpoint, check_access, client_rights, is_allowed
from security_server.core.errors import AccessDenied, BadRequest, InvalidRequest
from security_server.core.identifiers import ClientId, GlobalGroupId, ServiceId
from security_server.core.restpath import normalise_service_path

PROPERTY = settings(max_examples=150, deadline=None)
PROVIDER = ClientId("EE", "GOV", "70000002", "service")
CLIENT = ClientId("EE", "GOV", "70000001", "client")
OTHER = ClientId("EE", "GOV", "70000001", "other")
FILES = ServiceId(PROVIDER, "files")
PUBLIC = AccessRight(CLIENT, FILES, Endpoint("GET", "/public/*"))


def _nobody(client: ClientId, group: GlobalGroupId) -> bool:
    return False


def _allowed(rights: list[AccessRight], method: str | None, path: str | None, client: ClientId = CLIENT) -> bool:
    return is_allowed(client, FILES, rights, in_global_group=_nobody, local_groups={}, method=method, path=path)


def test_an_endpoint_right_covers_its_method_and_pattern_only() -> None:
    """GET /public/* allows GET /public/a; not /public/a/b, /public/, /secret, POST, nor another client."""
    assert _allowed([PUBLIC], "GET", "/public/a")
    assert not _allowed([PUBLIC], "GET", "/public/a/b")
    assert not _allowed([PUBLIC], "GET", "/public/")
    assert not _allowed([PUBLIC], "GET", "/secret")
    assert not _allowed([PUBLIC], "POST", "/public/a")
    assert not _allowed([PUBLIC], "GET", "/public/a", client=OTHER)


def test_an_endpoint_right_never_counts_without_a_call() -> None:
    """Asked about the whole service (SOAP, or no method and path), an endpoint right allows nothing."""
    assert not _allowed([PUBLIC], None, None)
    assert not _allowed([PUBLIC], "GET", None)


def test_a_service_level_right_covers_every_endpoint() -> None:
    """A right without endpoint is X-Road's '* **': any method on any path."""
    whole = AccessRight(CLIENT, FILES)
    assert _allowed([whole], "DELETE", "/anything/at/all") and _allowed([whole], None, None)


def test_a_star_method_covers_every_method() -> None:
    """An endpoint '* /public/**' covers every method under /public/."""
    right = AccessRight(CLIENT, FILES, Endpoint("*", "/public/**"))
    assert _allowed([right], "PATCH", "/public/a/b") and not _allowed([right], "PATCH", "/private/a")


def test_denial_names_the_call_in_the_private_reason() -> None:
    """AccessDenied for a REST call keeps the category in the message and the call in the reason."""
    with pytest.raises(AccessDenied) as caught:
        check_access(CLIENT, FILES, [PUBLIC], in_global_group=_nobody, local_groups={}, method="GET", path="/secret")
    assert caught.value.message == "Request not allowed: access denied"
    assert "GET /secret" in caught.value.reason


def test_client_rights_are_those_whose_subject_covers_the_client() -> None:
    """client_rights keeps the rights of the client (for allowedMethods), endpoint rights included."""
    mine = [PUBLIC, AccessRight(CLIENT, FILES)]
    assert client_rights(CLIENT, [*mine, AccessRight(OTHER, FILES)], in_global_group=_nobody, local_groups={}) == tuple(mine)


def test_endpoints_are_written_and_read_as_method_and_path() -> None:
    """Endpoint.parse reads 'METHOD PATH' as str() writes it; the method is upper-cased."""
    assert Endpoint.parse("get /pets/*") == Endpoint("GET", "/pets/*")
    assert Endpoint.parse(str(Endpoint("*", "**"))) == Endpoint("*", "**")
    for text in ("GET", "GET ", "FETCH /x", "GET /a/../b", "GET /a%2Fb"):
        with pytest.raises(InvalidRequest):
            Endpoint.parse(text)


tricky = st.lists(
    st.sampled_from(["a", "/", ".", "%2e", "%2E", "%2F", "%2f", "%5C", "%25", ";", "%3B", "public", "secret"]), max_size=12
).map("".join)


@PROPERTY
@given(tricky)
def test_no_encoded_path_reaches_beyond_an_endpoint_right(raw: str) -> None:
    """Whatever encoding a caller tries, GET /public/* allows only one plain segment under /public (PR #3140)."""
    try:
        normal = normalise_service_path("/" + raw)
    except BadRequest:
        return  # refused before any access decision
    if _allowed([PUBLIC], "GET", normal):
        segments = normal.split("/")
        assert len(segments) == 3 and segments[1] == "public"
        assert segments[2] not in ("", ".", "..") and not set(segments[2]) & set("/\\%;")
        assert ("/" + raw).count("/") == 2  # the provider sees exactly the two segments that were checked
