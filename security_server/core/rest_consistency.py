"""Whether a REST response answers the request it claims to (pr-rest §4.3; X-Road
``ClientRestMessageProcessor.checkConsistency``). The SOAP rule is :func:`security_server.core.soap.check_response_consistency`."""

from __future__ import annotations

import hmac

from security_server.core.errors import InconsistentResponse
from security_server.core.rest import RestRequest, RestResponse, request_hash


def check_rest_response_consistency(
    request: RestRequest, response: RestResponse, request_id: str, message: bytes, body: bytes
) -> None:
    """Raise :class:`InconsistentResponse` unless ``response`` answers ``request``: same client, X-Road-Id,
    service and request id, and the request hash over what was sent (``message``, the REST message part, and
    ``body``)."""
    generic = "Response from server proxy is not consistent with request"
    for name, mine, theirs in (
        ("client", request.client, response.client),
        ("x-road-id", request.query_id, response.query_id),
        ("service", request.service, response.service),
        ("x-road-request-id", request_id, response.request_id),
    ):
        if mine != theirs:
            raise InconsistentResponse(generic, reason=f"{name} does not match in request and response")
    if not hmac.compare_digest(response.request_hash, request_hash(message, body)):
        raise InconsistentResponse("Response message hash does not match request message")
