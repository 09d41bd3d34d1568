"""The seam between the exchange logic and the network between security servers.

The client proxy hands a signed transport message to a :class:`PeerLink`, which delivers it to one of the
provider's security servers (over pooled mutual TLS in production) and returns the answer. The server proxy
receives through :class:`ServerProxyHandler`, which the TLS listener calls with the peer's certificate. Two
implementations of the link exist: the mutual-TLS one, and an in-memory one for tests that calls a handler
directly (no sockets, as h11's tests wire a client to a server in memory).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Protocol, Sequence

from twisted.internet.defer import Deferred

from security_server.core.identifiers import SecurityServerId
from security_server.core.server_address import PeerAddress

__all__ = ["PeerAddress", "PeerLink", "PeerRequest", "PeerResponse", "ServerProxyHandler"]


@dataclass(frozen=True, slots=True)
class PeerRequest:
    """An HTTP request from our client proxy to a peer's server proxy."""

    headers: Mapping[str, str]
    content_type: str
    body: bytes
    path: str = "/"


@dataclass(frozen=True, slots=True)
class PeerResponse:
    """The peer's HTTP answer, and which peer gave it."""

    status: int
    content_type: str
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)
    server: SecurityServerId | None = None
    peer_cert_der: bytes | None = None
    """The peer's TLS certificate, which the client proxy checks against the global configuration."""


class PeerLink(Protocol):
    """Delivers a request to the first of ``peers`` that can be reached (fastest to connect, then failover)."""

    def send(self, peers: Sequence[PeerAddress], request: PeerRequest, timeout_seconds: float) -> Deferred[PeerResponse]:
        """Fails with :class:`NetworkError` when no peer can be reached."""
        ...


class ServerProxyHandler(Protocol):
    """The server proxy's entry point, called once per request with the peer's TLS certificate (DER)."""

    def handle(self, peer_cert_der: bytes | None, request: PeerRequest) -> Deferred[PeerResponse]:
        """Answers every request, with a fault response when something is wrong; never fails."""
        ...
