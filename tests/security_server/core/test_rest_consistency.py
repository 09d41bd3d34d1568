"""The consumer's check that a REST response answers its request (pr-rest §4.3)."""

from __future__ import annotations

import pytest

from security_server.core.errors import InconsistentResponse
from security_server.core.rest import RestRequest, RestResponse, request_hash
from security_server.core.rest_consistency import check_rest_response_consistency

REQUEST = RestRequest.from_client(
    "POST",
    "/r1/EE/GOV/70000002/provider/pets/1?x=1",
    [("X-Road-Client", "EE/GOV/70000001/consumer"), ("Content-Type", "application/json")],
    request_id="req-1",
    new_query_id="EE-query-1",
)
MESSAGE = REQUEST.to_bytes()
BODY = b'{"name": "Rex"}'


def answer(*, request: RestRequest = REQUEST, request_id: str | None = "req-1", digest: bytes | None = None) -> RestResponse:
    """The provider side's response to ``request``, with the hash over ``MESSAGE`` and ``BODY`` unless told."""
    return RestResponse.answering(
        request, 200, "OK", (), request_hash(MESSAGE, BODY) if digest is None else digest, request_id
    )


def test_a_response_that_echoes_the_request_passes() -> None:
    """Same client, X-Road-Id, service, request id and the hash over message and body: consistent."""
    check_rest_response_consistency(REQUEST, answer(), "req-1", MESSAGE, BODY)


def test_another_request_id_is_inconsistent() -> None:
    """A response naming another x-road-request-id is inconsistent_response."""
    with pytest.raises(InconsistentResponse) as caught:
        check_rest_response_consistency(REQUEST, answer(request_id="req-2"), "req-1", MESSAGE, BODY)
    assert "x-road-request-id" in caught.value.reason


def test_another_service_is_inconsistent() -> None:
    """A response for another service of the provider is inconsistent_response."""
    other = RestRequest.from_client(
        "POST",
        "/r1/EE/GOV/70000002/provider/owners",
        [("X-Road-Client", "EE/GOV/70000001/consumer"), ("X-Road-Id", REQUEST.query_id)],
        request_id="req-1",
        new_query_id="unused",
    )
    with pytest.raises(InconsistentResponse) as caught:
        check_rest_response_consistency(REQUEST, answer(request=other), "req-1", MESSAGE, BODY)
    assert "service" in caught.value.reason


def test_a_hash_over_another_body_is_inconsistent() -> None:
    """A request hash over a body we did not send fails with its own message."""
    with pytest.raises(InconsistentResponse) as caught:
        check_rest_response_consistency(REQUEST, answer(digest=request_hash(MESSAGE, b"{}")), "req-1", MESSAGE, BODY)
    assert caught.value.message == "Response message hash does not match request message"
