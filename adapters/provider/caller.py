"""Who asked: the X-Road identity of the consumer behind a request, as its security server vouches for it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from security_server.core.errors import BusError
from security_server.core.identifiers import ClientId, ServiceId
from security_server.core.soap import SoapHeader


@dataclass(frozen=True, slots=True)
class Caller:
    """The consumer of one request: client, service, message id, user id (pr-mess §2.2, pr-rest §4.3).

    The provider's security server has checked the client's signature and access right before the provider
    sees the request; the user id is what the consumer's system asserts about its end user (X-Road's
    two-level authentication: the organisation by the bus, the person by the consumer).
    """

    client: ClientId | None
    service: ServiceId | None
    message_id: str | None
    user_id: str | None = None
    issue: str | None = None
    request_id: str | None = None
    """``X-Road-Request-Id`` (REST): the id both security servers log the exchange under."""
    protocol_version: str | None = None

    @classmethod
    def from_soap(cls, header: SoapHeader) -> Caller:
        """The caller named by a SOAP request's X-Road header."""
        return cls(header.client, header.service, header.id, header.user_id, header.issue, None, header.protocol_version)

    @classmethod
    def from_rest_headers(cls, headers: Mapping[str, str]) -> Caller:
        """The caller named by the ``X-Road-*`` headers the provider's security server sets (names lower-cased).

        A header that does not parse is left out (None) rather than guessed at.
        """
        client: ClientId | None = None
        service: ServiceId | None = None
        try:
            client = ClientId.parse_path(headers["x-road-client"]) if "x-road-client" in headers else None
        except BusError:
            client = None
        try:
            service = ServiceId.parse_path(headers["x-road-service"]) if "x-road-service" in headers else None
        except BusError:
            service = None
        return cls(
            client=client,
            service=service,
            message_id=headers.get("x-road-id"),
            user_id=headers.get("x-road-userid"),
            issue=headers.get("x-road-issue"),
            request_id=headers.get("x-road-request-id"),
        )
