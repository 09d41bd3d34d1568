"""The in-memory peer link: direct delivery, failover, verify-before-deliver and the all-failed error."""

from __future__ import annotations

from typing import Any

import pytest
from twisted.internet.defer import Deferred, succeed

from security_server.core.errors import BusError, NetworkError, SslAuthenticationFailed
from security_server.core.identifiers import ClientId, SecurityServerId
from security_server.proxy.locallink import LocalPeerLink
from security_server.proxy.peerlink import PeerAddress, PeerRequest, PeerResponse

OWNER = ClientId("EE", "GOV", "70000001")
FIRST = SecurityServerId(OWNER, "ss1")
SECOND = SecurityServerId(OWNER, "ss2")
REQUEST = PeerRequest(headers={"X-Test": "1"}, content_type="text/xml", body=b"<x/>")


class RecordingHandler:
    """A server proxy handler that answers with its name and remembers what it saw."""

    def __init__(self, name: bytes) -> None:
        self.name = name
        self.seen: list[tuple[bytes | None, PeerRequest]] = []

    def handle(self, peer_cert_der: bytes | None, request: PeerRequest) -> Deferred[PeerResponse]:
        """Answer 200 with the handler's name."""
        self.seen.append((peer_cert_der, request))
        return succeed(PeerResponse(status=200, content_type="text/xml", body=self.name))


def result_of(d: Deferred[Any]) -> Any:
    """The result of an already-fired Deferred (raises its failure)."""
    box: list[Any] = []
    d.addBoth(box.append)
    assert box, "deferred has not fired"
    outcome = box[0]
    if hasattr(outcome, "raiseException"):
        outcome.raiseException()
    return outcome


def test_delivers_to_first_peer_with_client_cert() -> None:
    """The first reachable peer's handler gets the request and our client certificate; the answer names it."""
    handler = RecordingHandler(b"one")
    link = LocalPeerLink({FIRST: handler}, {FIRST: b"cert-1"}, client_cert_der=b"client")
    response = result_of(link.send([PeerAddress(FIRST, "h1", 1)], REQUEST, 5.0))
    assert response.body == b"one"
    assert response.server == FIRST
    assert response.peer_cert_der == b"cert-1"
    assert handler.seen == [(b"client", REQUEST)]


def test_fails_over_past_unreachable_peer() -> None:
    """An address with no handler is unreachable and the next peer is used."""
    handler = RecordingHandler(b"two")
    link = LocalPeerLink({SECOND: handler})
    response = result_of(link.send([PeerAddress(FIRST, "h1", 1), PeerAddress(SECOND, "h2", 2)], REQUEST, 5.0))
    assert response.body == b"two"
    assert response.server == SECOND


def test_all_unreachable_is_network_error() -> None:
    """No reachable peer fails with server.clientproxy.network_error naming each peer."""
    link = LocalPeerLink({})
    with pytest.raises(NetworkError) as caught:
        result_of(link.send([PeerAddress(FIRST, "h1", 1), PeerAddress(SECOND, "h2", 2)], REQUEST, 5.0))
    assert caught.value.fault_code == "server.clientproxy.network_error"
    assert "ss1" in caught.value.reason and "ss2" in caught.value.reason


def test_refused_certificate_is_never_delivered_and_surfaces() -> None:
    """A peer whose certificate verify_peer refuses never sees the request; its error reaches the caller."""
    handler = RecordingHandler(b"one")

    def refuse(address: PeerAddress, cert: bytes) -> None:
        raise SslAuthenticationFailed("peer certificate is not registered")

    link = LocalPeerLink({FIRST: handler}, {FIRST: b"cert-1"}, verify_peer=refuse)
    with pytest.raises(BusError) as caught:
        result_of(link.send([PeerAddress(FIRST, "h1", 1)], REQUEST, 5.0))
    assert caught.value.fault_code == "server.clientproxy.ssl_authentication_failed"
    assert handler.seen == []
    assert link.delivered == []


def test_refused_certificate_fails_over_to_next_peer() -> None:
    """A refused first peer is skipped and an accepted second peer answers."""
    first, second = RecordingHandler(b"one"), RecordingHandler(b"two")

    def only_second(address: PeerAddress, cert: bytes) -> None:
        if cert != b"cert-2":
            raise SslAuthenticationFailed("not the expected server")

    link = LocalPeerLink({FIRST: first, SECOND: second}, {FIRST: b"cert-1", SECOND: b"cert-2"}, verify_peer=only_second)
    response = result_of(link.send([PeerAddress(FIRST, "h1", 1), PeerAddress(SECOND, "h2", 2)], REQUEST, 5.0))
    assert response.body == b"two"
    assert first.seen == []


def test_deferred_verdict_is_awaited_before_delivery() -> None:
    """A verifier that decides later holds the request back until it accepts."""
    handler = RecordingHandler(b"one")
    verdict: Deferred[None] = Deferred()
    link = LocalPeerLink({FIRST: handler}, {FIRST: b"cert-1"}, verify_peer=lambda address, cert: verdict)
    sending = link.send([PeerAddress(FIRST, "h1", 1)], REQUEST, 5.0)
    assert handler.seen == []
    verdict.callback(None)
    assert result_of(sending).body == b"one"


def test_verifier_bug_refuses_the_peer() -> None:
    """A verifier that raises something other than a BusError refuses the peer (internal_error), never lets it pass."""
    handler = RecordingHandler(b"one")

    def broken(address: PeerAddress, cert: bytes) -> None:
        raise KeyError("bug")

    link = LocalPeerLink({FIRST: handler}, {FIRST: b"cert-1"}, verify_peer=broken)
    with pytest.raises(BusError) as caught:
        result_of(link.send([PeerAddress(FIRST, "h1", 1)], REQUEST, 5.0))
    assert caught.value.fault_code == "server.clientproxy.internal_error"
    assert handler.seen == []
