"""Checking a peer security server's TLS certificate at the edge: OCSP on demand, and the client proxy's verifier.

The rules live in the pure core (security_server/core/peerauth.py, XROAD-REFERENCE.md §4.3). What this module
adds is I/O and memory:

* :class:`PeerOcspCache` fetches the OCSP response for a *peer's* authentication certificate from the
  responder that the global configuration names for the peer's CA, keeps it until half the freshness window
  has passed (and, while the responder is down, until the whole window has), and lets concurrent requests for
  one certificate share one fetch. (X-Road asks the peer itself,
  ``GET http://peer:5577/?cert=...``; fedbus asks the CA's responder, so the evidence never comes from the
  party it is about, and a peer need not run a second listener.) The provider side needs no fetching: the
  consumer staples its OCSP response to the transport message (§4.1).
* :class:`PeerAuthVerifier` is the client proxy's ``verify_peer`` for :class:`~security_server.proxy.mtls.
  MtlsPeerLink`: checks 1-4 at once, then OCSP from the cache (a Deferred only when it must fetch). A
  positive verdict is remembered per certificate and server for as long as the global configuration object,
  the OCSP response and the certificate all stay valid, so re-verifying a pooled connection costs one lookup.

:func:`own_auth_ocsp` is the other direction: the response we staple for our own auth certificate.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Callable, Sequence

import structlog
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp
from twisted.internet.defer import Deferred, succeed
from twisted.web.client import Agent

from security_server.core.errors import BusError, IncorrectValidationInfo, Origin
from security_server.core.globalconf import GlobalConf
from security_server.core.identifiers import ClientId, SecurityServerId
from security_server.core.peerauth import (
    AuthenticatedPeer,
    check_peer_ocsp,
    identify_peer,
    peer_ocsp_responders,
    read_peer_ocsp,
)
from security_server.core.trust import DEFAULT_CLOCK_SKEW_SECONDS, OcspStatus
from security_server.edge.http_fetch import fetch
from security_server.proxy.context import ProxyContext
from security_server.proxy.peerlink import PeerAddress

MAX_OCSP_RESPONSE_BYTES = 64 * 1024
"""An OCSP response for one certificate is a few kilobytes at most."""

log = structlog.get_logger(__name__)

OcspFetch = Callable[[str, bytes], "Deferred[bytes]"]
"""POST one DER OCSP request to a responder URL and deliver the DER response."""


def own_auth_ocsp(context: ProxyContext) -> bytes:
    """The fresh, good OCSP response (DER) for our own authentication certificate, to staple to a request."""
    _, cert = context.token.auth_key(now=context.now())
    return context.own_ocsp(cert)


def cert_key(cert_der: bytes) -> bytes:
    """How caches name a certificate: the SHA-256 of its DER."""
    return hashlib.sha256(cert_der).digest()


@dataclass(frozen=True, slots=True)
class _CachedOcsp:
    der: bytes
    status: OcspStatus
    fetched_at: float
    """Reactor seconds when the response arrived."""
    freshness_seconds: float


class PeerOcspCache:
    """OCSP responses for peers' authentication certificates, fetched on demand and kept for a while."""

    def __init__(
        self,
        reactor: Any,
        *,
        fetch: OcspFetch | None = None,
        timeout_seconds: float = 10.0,
        skew_seconds: float = DEFAULT_CLOCK_SKEW_SECONDS,
        max_entries: int = 4096,
    ) -> None:
        self._reactor = reactor
        self._agent: Any = None
        self._fetch: OcspFetch = fetch if fetch is not None else self._post
        self._timeout = timeout_seconds
        self._skew = skew_seconds
        self._max_entries = max_entries
        self._entries: dict[bytes, _CachedOcsp] = {}
        self._waiting: dict[bytes, list[Deferred[bytes]]] = {}

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._reactor.seconds(), tz=UTC)

    def cached(self, peer: AuthenticatedPeer, conf: GlobalConf) -> bytes | None:
        """The kept response for the peer's certificate while it is younger than half the freshness window."""
        entry = self._entries.get(cert_key(peer.cert_der))
        if entry is None:
            return None
        seconds = self._reactor.seconds()
        freshness = min(entry.freshness_seconds, conf.ocsp_freshness_seconds)
        # §4.4: refetch after half the window (as X-Road's own OCSP refresh does), and never serve a stale one.
        if seconds >= entry.fetched_at + freshness / 2:
            return None
        if entry.status.this_update.timestamp() + freshness <= seconds:
            return None
        return entry.der

    def get(self, peer: AuthenticatedPeer, conf: GlobalConf) -> Deferred[bytes]:
        """The response for the peer's certificate: kept, or fetched now (one fetch per certificate at a time).

        The response is authentic and fresh but may say revoked or unknown (the caller judges the status).
        Fails with :class:`IncorrectValidationInfo` when no listed responder gives a usable answer.
        """
        kept = self.cached(peer, conf)
        if kept is not None:
            return succeed(kept)
        key = cert_key(peer.cert_der)

        def forget(waiter: Deferred[bytes]) -> None:
            pending = self._waiting.get(key)
            if pending is not None and waiter in pending:
                pending.remove(waiter)

        waiter: Deferred[bytes] = Deferred(forget)
        waiters = self._waiting.get(key)
        if waiters is not None:
            waiters.append(waiter)
            return waiter
        self._waiting[key] = [waiter]  # before the fetch starts: it may finish at once
        Deferred.fromCoroutine(self._fetch_for(key, peer, conf))
        return waiter

    def _still_fresh(self, key: bytes, conf: GlobalConf) -> bytes | None:
        """The kept response while it is within the freshness window (past the half-window refetch time): what
        serves through a responder outage, as our own kept response does (SECURITY-CASES.md, "OCSP responder
        down")."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        freshness = min(entry.freshness_seconds, conf.ocsp_freshness_seconds)
        if entry.status.this_update.timestamp() + freshness <= self._reactor.seconds():
            return None
        return entry.der

    async def _fetch_for(self, key: bytes, peer: AuthenticatedPeer, conf: GlobalConf) -> None:
        outcome: bytes | BusError
        try:
            outcome = await self._fetch_from_responders(peer, conf)
        except BusError as err:
            outcome = err
        except Exception as err:  # fail closed with the evidence error, never let a bug escape the reactor
            outcome = IncorrectValidationInfo("OCSP response could not be fetched", reason=repr(err))
        if isinstance(outcome, BusError):
            kept = self._still_fresh(key, conf)
            if kept is not None:
                log.info("peer_ocsp_kept_through_outage", server=str(peer.server), reason=outcome.reason)
                outcome = kept
        for waiter in self._waiting.pop(key, []):
            if isinstance(outcome, BusError):
                waiter.errback(outcome)
            else:
                waiter.callback(outcome)

    async def _fetch_from_responders(self, peer: AuthenticatedPeer, conf: GlobalConf) -> bytes:
        responders = peer_ocsp_responders(peer, conf)
        if not responders:
            raise IncorrectValidationInfo(
                "no OCSP responder is configured for the peer certificate's CA",
                reason=f"global configuration lists no responder for {peer.issuer.subject.rfc4514_string()}",
            )
        request = (
            ocsp.OCSPRequestBuilder()
            .add_certificate(peer.cert, peer.issuer, hashes.SHA1())  # SHA-1 CertID, no nonce (§4.4)
            .build()
            .public_bytes(serialization.Encoding.DER)
        )
        reasons: list[str] = []
        for responder in responders:
            started = self._reactor.seconds()
            try:
                fetching = self._fetch(responder.url, request)
                fetching.addTimeout(self._timeout, self._reactor)
                der = await fetching
                status = read_peer_ocsp(peer, der, conf, self._now(), skew_seconds=self._skew)
            except BusError as err:
                reasons.append(f"{responder.url}: {err.reason}")
                continue
            except Exception as err:  # connection refused, timeout, TLS or HTTP errors from the agent
                reasons.append(f"{responder.url}: {err!r}")
                continue
            self._store(cert_key(peer.cert_der), der, status, conf)
            log.info(
                "peer_ocsp_fetched",
                server=str(peer.server),
                status=str(status.status),
                seconds=round(self._reactor.seconds() - started, 3),
            )
            return der
        log.warning("peer_ocsp_fetch_failed", server=str(peer.server), reasons="; ".join(reasons))
        raise IncorrectValidationInfo(
            "OCSP status of the peer's authentication certificate could not be obtained",
            reason="; ".join(reasons),
        )

    def _store(self, key: bytes, der: bytes, status: OcspStatus, conf: GlobalConf) -> None:
        self._entries.pop(key, None)
        self._entries[key] = _CachedOcsp(der, status, self._reactor.seconds(), conf.ocsp_freshness_seconds)
        while len(self._entries) > self._max_entries:
            del self._entries[next(iter(self._entries))]

    def _post(self, url: str, request_der: bytes) -> Deferred[bytes]:
        """RFC 6960 A.1: POST the DER request; deliver the body of a 200 answer, at most 64 KiB."""
        if not url.startswith(("http://", "https://")):
            raise IncorrectValidationInfo("OCSP responder URL is not http(s)", reason=url)
        if self._agent is None:
            self._agent = Agent(self._reactor)  # type: ignore[no-untyped-call]  # Twisted leaves it unannotated
        answer = fetch(
            self._agent,
            self._reactor,
            url,
            what="OCSP responder",
            max_bytes=MAX_OCSP_RESPONSE_BYTES,
            body=request_der,
            content_type="application/ocsp-request",
            headers={"accept": "application/ocsp-response"},
        )  # the timeout is _fetch_from_responders': it covers an injected fetch too
        return answer.addCallback(lambda got: got.body)


@dataclass(frozen=True, slots=True)
class _Verdict:
    conf: GlobalConf
    until: float
    """Reactor seconds until which the positive verdict stands."""


class PeerAuthVerifier:
    """The client proxy's ``verify_peer``: the provider's server must present its registered, valid auth cert."""

    def __init__(
        self,
        reactor: Any,
        global_conf: Callable[[], GlobalConf],
        ocsp_cache: PeerOcspCache,
        *,
        skew_seconds: float = DEFAULT_CLOCK_SKEW_SECONDS,
        max_verdicts: int = 4096,
    ) -> None:
        self._reactor = reactor
        self._global_conf = global_conf
        self._ocsp = ocsp_cache
        self._skew = skew_seconds
        self._max_verdicts = max_verdicts
        self._verdicts: dict[tuple[bytes, PeerAddress], _Verdict] = {}

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._reactor.seconds(), tz=UTC)

    def __call__(self, address: PeerAddress, cert_der: bytes) -> Deferred[None] | None:
        """Accept (None), refuse (raise a BusError) or decide later (a Deferred, while OCSP is fetched)."""
        conf = self._global_conf()
        key = (cert_key(cert_der), address)
        verdict = self._verdicts.get(key)
        if verdict is not None and verdict.conf is conf and self._reactor.seconds() < verdict.until:
            return None
        self._verdicts.pop(key, None)
        try:
            peer = identify_peer(cert_der, conf, self._now(), expected_server=address.server)
        except BusError as err:
            raise err.at(Origin.CLIENT_PROXY)
        kept = self._ocsp.cached(peer, conf)
        if kept is not None:
            self._judge(key, peer, kept, conf)
            return None
        fetched = self._ocsp.get(peer, conf)
        return fetched.addCallback(lambda der: self._judge(key, peer, der, conf))

    def _judge(self, key: tuple[bytes, PeerAddress], peer: AuthenticatedPeer, ocsp_der: bytes, conf: GlobalConf) -> None:
        now = self._now()
        try:
            status = check_peer_ocsp(peer, ocsp_der, conf, now, skew_seconds=self._skew)
        except BusError as err:
            raise err.at(Origin.CLIENT_PROXY)
        until = min(
            status.this_update.timestamp() + conf.ocsp_freshness_seconds,
            peer.cert.not_valid_after_utc.timestamp(),
            conf.expires_at.timestamp(),
        )
        self._verdicts[key] = _Verdict(conf, until)
        while len(self._verdicts) > self._max_verdicts:
            del self._verdicts[next(iter(self._verdicts))]



@dataclass(frozen=True, slots=True)
class _KeptPeer:
    conf: GlobalConf
    checked_at: float
    until: float
    peer: AuthenticatedPeer


class RememberedPeerCheck:
    """The server proxy's check of a peer's TLS certificate (:func:`~security_server.core.peerauth.
    check_peer_auth_cert`) with checks 1-4 remembered.

    Which registered server a certificate authenticates, and whether that server hosts the client, depend only on
    the certificate, the global configuration and the time; the verdict is kept per (certificate, client, expected
    server) while the configuration object in force is the same one, and only from the time it was reached until
    the first certificate of its path or the configuration expires (a clock that goes back checks afresh).
    Check 5, the OCSP response the peer stapled, runs on every request. A refusal is never kept.
    """

    def __init__(self, max_peers: int = 1024) -> None:
        self._kept: dict[tuple[bytes, ClientId | None, SecurityServerId | None], _KeptPeer] = {}
        self._max_peers = max_peers

    def __call__(
        self,
        cert_der: bytes,
        conf: GlobalConf,
        now: datetime,
        *,
        expected_server: SecurityServerId | None = None,
        hosted_client: ClientId | None = None,
        ocsp_der: bytes | Sequence[bytes] | None,
    ) -> AuthenticatedPeer:
        """All five checks; raises the BusError of the first that fails."""
        key = (cert_der, hosted_client, expected_server)
        at = now.timestamp()
        kept = self._kept.get(key)
        if kept is not None and kept.conf is conf and kept.checked_at <= at < kept.until:
            peer = kept.peer
        else:
            peer = identify_peer(cert_der, conf, now, expected_server=expected_server, hosted_client=hosted_client)
            ends = [conf.expires_at.timestamp()]
            if peer.path_not_after is not None:
                ends.append(peer.path_not_after.timestamp())
            self._kept.pop(key, None)
            self._kept[key] = _KeptPeer(conf, at, min(ends), peer)
            while len(self._kept) > self._max_peers:
                del self._kept[next(iter(self._kept))]
        check_peer_ocsp(peer, ocsp_der, conf, now)
        return peer
