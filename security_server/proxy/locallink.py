"""The in-memory :class:`PeerLink`: delivers a request straight to a server proxy handler, no sockets.

Tests wire a client proxy to one or more server proxies with it, as h11's tests wire a client to a server in
memory. It keeps the semantics of the mutual-TLS link (security_server/proxy/mtls.py) that the exchange logic
relies on:

* peers are tried in the order given; an address with no handler is unreachable and the next one is tried;
* ``verify_peer(address, peer_cert_der)`` runs *before* the handler sees anything, and a refusal skips that
  peer, just as the TLS link drops the connection before writing a request byte;
* when every peer fails, the first verification error is raised if there was one (its code, e.g.
  ``ssl_authentication_failed``, is what the consumer must see), else :class:`NetworkError`
  (``server.clientproxy.network_error``) with each peer's reason.
"""

from __future__ import annotations

from typing import Callable, Mapping, Sequence

from twisted.internet.defer import Deferred, maybeDeferred

from security_server.core.errors import BusError, InternalError, NetworkError, Origin
from security_server.core.identifiers import SecurityServerId
from security_server.proxy.peerlink import PeerAddress, PeerRequest, PeerResponse, ServerProxyHandler

PeerVerifier = Callable[[PeerAddress, bytes], "Deferred[None] | None"]
"""Checks a peer's TLS certificate (DER) before anything is sent to it: raises a BusError to refuse it, or
returns a Deferred that fails with one (when it must first fetch OCSP evidence); None or a fired Deferred accepts."""


async def run_verifier(verify_peer: PeerVerifier, address: PeerAddress, cert_der: bytes) -> None:
    """Call ``verify_peer`` and wait for its verdict; anything but a BusError is an internal error (fail closed)."""
    try:
        verdict = verify_peer(address, cert_der)
        if verdict is not None:
            await verdict
    except BusError:
        raise
    except Exception as err:  # a bug in the verifier must refuse the peer, never let traffic through
        raise InternalError("peer certificate could not be checked", reason=repr(err)) from err


def all_peers_failed(failures: Sequence[tuple[PeerAddress, str]], verify_errors: Sequence[BusError]) -> BusError:
    """The error for a send where no peer could be used: the first refusal of a peer's certificate, else a
    network error listing why each peer failed (shared by the in-memory and the mutual-TLS link)."""
    reasons = "; ".join(f"{address.server} at {address.host}:{address.port}: {why}" for address, why in failures)
    if verify_errors:
        error = verify_errors[0]
        error.reason = f"{error.reason} (all peers failed: {reasons})"
        return error.at(Origin.CLIENT_PROXY)
    if not failures:
        return NetworkError("no security server of the provider is known", origin=Origin.CLIENT_PROXY)
    return NetworkError(
        "could not connect to any security server of the provider",
        reason=f"all peers failed: {reasons}",
        origin=Origin.CLIENT_PROXY,
    )


class LocalPeerLink:
    """A :class:`PeerLink` that calls :class:`ServerProxyHandler` objects directly (for tests)."""

    def __init__(
        self,
        handlers: Mapping[SecurityServerId, ServerProxyHandler],
        peer_certs: Mapping[SecurityServerId, bytes] | None = None,
        *,
        client_cert_der: bytes | None = None,
        verify_peer: PeerVerifier | None = None,
    ) -> None:
        """``handlers`` are the reachable servers; ``peer_certs`` the auth certificate (DER) each presents;
        ``client_cert_der`` what the handlers see as our TLS client certificate; ``verify_peer`` as in
        :class:`~security_server.proxy.mtls.MtlsPeerLink` (not called for a server without a certificate)."""
        self.handlers = dict(handlers)
        self.peer_certs = dict(peer_certs or {})
        self.client_cert_der = client_cert_der
        self.verify_peer = verify_peer
        self.delivered: list[tuple[PeerAddress, PeerRequest]] = []
        """Every request handed to a handler, in order (tests assert on it)."""

    def send(self, peers: Sequence[PeerAddress], request: PeerRequest, timeout_seconds: float) -> Deferred[PeerResponse]:
        """Deliver ``request`` to the first usable peer; ``timeout_seconds`` is not enforced in memory."""
        return Deferred.fromCoroutine(self._send(peers, request))

    async def _send(self, peers: Sequence[PeerAddress], request: PeerRequest) -> PeerResponse:
        failures: list[tuple[PeerAddress, str]] = []
        verify_errors: list[BusError] = []
        for address in peers:
            handler = self.handlers.get(address.server)
            if handler is None:
                failures.append((address, "connection refused (no handler)"))
                continue
            cert = self.peer_certs.get(address.server)
            if self.verify_peer is not None and cert is not None:
                try:
                    await run_verifier(self.verify_peer, address, cert)
                except BusError as err:
                    failures.append((address, f"{err.fault_code}: {err.reason}"))
                    verify_errors.append(err)
                    continue
            self.delivered.append((address, request))
            return await self._deliver(handler, address, cert, request)
        raise all_peers_failed(failures, verify_errors)

    def _deliver(
        self, handler: ServerProxyHandler, address: PeerAddress, cert: bytes | None, request: PeerRequest
    ) -> Deferred[PeerResponse]:
        def stamp(response: PeerResponse) -> PeerResponse:
            return PeerResponse(
                status=response.status,
                content_type=response.content_type,
                body=response.body,
                headers=dict(response.headers),
                server=address.server,
                peer_cert_der=cert,
            )

        answered: Deferred[PeerResponse] = maybeDeferred(handler.handle, self.client_cert_der, request)
        answered.addCallback(stamp)
        return answered
