"""Fetch and cache OCSP responses for the security server's own certificates.

A security server fetches OCSP only for its own certificates, never with a nonce, and staples the responses to
what it sends (XROAD-REFERENCE.md §4.1, §4.4). This client POSTs a request per certificate to its responder,
checks the answer with :func:`security_server.core.trust.read_ocsp_response`, and keeps the newest authentic
answer in memory (and, optionally, in a cache directory, so a restart does not wait for the responder). It
refreshes every half freshness window by default (X-Road fetches every 1200 s of a 3600 s window), retries
sooner after a failure, and when the responder is down keeps serving the cached response until the freshness
limit; after that :meth:`OcspClient.current` raises :class:`IncorrectValidationInfo` (SECURITY-CASES.md, "OCSP
responder down"). That error is ours, not the caller's: it carries the ``server`` origin, so the client proxy
answers ``server.clientproxy.incorrect_validation_info`` (HTTP 500 over REST), as X-Road prefixes its own
signer's failures with ``Server.ClientProxy`` (``AbstractClientProxyHandler``).

The freshness window is the global configuration's (``ocspFreshnessSeconds``) and may change while the server
runs: it is read again at every decision (a callable), and :meth:`OcspClient.recheck`, called when a new
configuration is applied, brings a scheduled refresh forward when the refresh period has shrunk.

An authentic "revoked" answer replaces a cached "good" one (a revocation must take effect at once), and an
answer older than the cached one is ignored (so a replayed old "good" cannot undo a revocation).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Callable, Sequence

import structlog
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp
from twisted.internet.defer import Deferred
from twisted.python.failure import Failure
from twisted.web.client import Agent

from security_server.core.errors import BusError, IncorrectValidationInfo, NetworkError, Origin
from security_server.core.trust import (
    DEFAULT_CLOCK_SKEW_SECONDS,
    DEFAULT_OCSP_FRESHNESS_SECONDS,
    OcspStatus,
    read_ocsp_response,
    require_good,
)
from security_server.edge.atomic_file import write_atomically
from security_server.edge.http_fetch import fetch

MAX_RESPONSE_BYTES = 64 * 1024
"""An OCSP response for one certificate is a few kilobytes at most."""

log = structlog.get_logger(__name__)

Fetch = Callable[["OwnCertificate", bytes], "Deferred[bytes]"]
"""Send one DER OCSP request for a certificate and deliver the DER response (the HTTP POST by default)."""

Seconds = Callable[[], float]
"""A value read when it is needed (the global configuration's current OCSP freshness); it must not raise."""


@dataclass(frozen=True, slots=True)
class OwnCertificate:
    """One of our certificates, the CA certificate that issued it, and the responder that speaks for it."""

    cert: x509.Certificate
    issuer: x509.Certificate
    responder_url: str

    def __post_init__(self) -> None:
        if not self.responder_url.startswith(("http://", "https://")):
            raise ValueError("the OCSP responder URL must be http:// or https://")

    @property
    def key(self) -> str:
        """SHA-256 of the certificate, hex: how the cache names it."""
        return cert_key(self.cert)


@functools.lru_cache(maxsize=64)
def cert_key(cert: x509.Certificate) -> str:
    """SHA-256 of the certificate's DER, hex (remembered: asked for every message)."""
    return cert.fingerprint(hashes.SHA256()).hex()


def ocsp_request(target: OwnCertificate) -> bytes:
    """The DER OCSP request for ``target`` (SHA-1 CertID, as X-Road and OpenSSL send; no nonce, §4.4)."""
    builder = ocsp.OCSPRequestBuilder().add_certificate(target.cert, target.issuer, hashes.SHA1())
    return builder.build().public_bytes(serialization.Encoding.DER)


@dataclass(frozen=True, slots=True)
class _Cached:
    der: bytes
    status: OcspStatus


class OcspClient:
    """Keeps a fresh OCSP response for each of our certificates; takes the reactor in its constructor."""

    def __init__(
        self,
        reactor: Any,
        certificates: Sequence[OwnCertificate],
        *,
        agent: Any = None,
        fetch: Fetch | None = None,
        freshness_seconds: float | Seconds = DEFAULT_OCSP_FRESHNESS_SECONDS,
        skew_seconds: float = DEFAULT_CLOCK_SKEW_SECONDS,
        refresh_seconds: float | None = None,
        retry_seconds: float = 60.0,
        timeout_seconds: float = 30.0,
        cache_dir: Path | None = None,
    ) -> None:
        """``freshness_seconds`` is a number or a callable giving the current window (read at every decision);
        ``refresh_seconds`` None refreshes every half window, a number at most every that many seconds."""
        self._reactor = reactor
        self._targets = {target.key: target for target in certificates}
        self._agent: Any = agent if agent is not None else Agent(reactor)  # type: ignore[no-untyped-call]
        self._fetch: Fetch = fetch if fetch is not None else self._post
        if callable(freshness_seconds):
            self._freshness: Seconds = freshness_seconds
        else:
            fixed = float(freshness_seconds)
            self._freshness = lambda: fixed
        self._skew = skew_seconds
        self._refresh_setting = refresh_seconds
        self._retry = retry_seconds
        self._timeout = timeout_seconds
        self._cache_dir = cache_dir
        self._cache: dict[str, _Cached] = {}
        self._calls: dict[str, Any] = {}
        self._fetched_at: dict[str, float] = {}
        """Reactor seconds of the last successful fetch per certificate (what the refresh period counts from)."""
        self._running = False
        if cache_dir is not None:
            self._load_cache(cache_dir)

    # --- time, cache ----------------------------------------------------------------------------------

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._reactor.seconds(), tz=UTC)

    def freshness_seconds(self) -> float:
        """The freshness window in force now (the global configuration's, when built with a callable)."""
        return float(self._freshness())

    def refresh_seconds(self) -> float:
        """Seconds between fetches now: half the current freshness window, or the configured period if shorter
        (X-Road fetches at its own interval but never lets the kept response age past the freshness)."""
        half = self.freshness_seconds() / 2
        return half if self._refresh_setting is None else min(self._refresh_setting, half)

    def _read(self, target: OwnCertificate, der: bytes) -> OcspStatus:
        return read_ocsp_response(
            der, target.cert, target.issuer, self._now(), freshness_seconds=self.freshness_seconds(),
            skew_seconds=self._skew,
        )

    def _load_cache(self, cache_dir: Path) -> None:
        """Read cached responses at start-up, keeping only those still authentic and fresh."""
        for key, target in self._targets.items():
            path = cache_dir / f"{key}.der"
            try:
                der = path.read_bytes()
            except FileNotFoundError:
                continue
            except OSError as err:  # an unreadable cache is no cache: the first fetch fills the memory one
                log.warning("ocsp_cache_unreadable", cert=key[:16], reason=repr(err))
                continue
            try:
                self._cache[key] = _Cached(der, self._read(target, der))
            except BusError as err:
                log.info("ocsp_cache_discarded", cert=key[:16], reason=err.reason)

    def _store(self, key: str, der: bytes, status: OcspStatus) -> bool:
        """Keep ``der`` unless the cached answer is newer; return whether it was kept."""
        cached = self._cache.get(key)
        if cached is not None and status.this_update < cached.status.this_update:
            return False
        self._cache[key] = _Cached(der, status)
        if self._cache_dir is not None:
            # A few kilobytes, written every refresh interval: small enough for the reactor thread. Written whole
            # and synced, so a crash never leaves a torn response that the next start would refuse.
            # A full or read-only disk costs only the copy for the next start: the response in memory serves.
            try:
                self._cache_dir.mkdir(parents=True, exist_ok=True)
                write_atomically(self._cache_dir / f"{key}.der", der)
            except OSError as err:
                log.warning("ocsp_cache_write_failed", cert=key[:16], reason=repr(err))
        return True

    # --- answers ----------------------------------------------------------------------------------------

    def _target(self, cert: x509.Certificate) -> OwnCertificate:
        target = self._targets.get(cert_key(cert))
        if target is None:
            raise IncorrectValidationInfo("no OCSP responses are kept for this certificate", origin=Origin.SERVER)
        return target

    def _cached(self, cert: x509.Certificate) -> tuple[OwnCertificate, _Cached]:
        target = self._target(cert)
        cached = self._cache.get(target.key)
        if cached is None:
            raise IncorrectValidationInfo(
                "no OCSP response has been fetched for this certificate yet", origin=Origin.SERVER
            )
        return target, cached

    def status(self, cert: x509.Certificate) -> OcspStatus:
        """The cached status of ``cert`` if it is still fresh now (any of good, revoked, unknown)."""
        target, cached = self._cached(cert)
        try:
            return self._read(target, cached.der)
        except BusError as err:
            raise err.at(Origin.SERVER)

    def current(self, cert: x509.Certificate) -> bytes:
        """The cached DER response for ``cert``, if fresh and good now; else the error that forbids its use.

        The error has the ``server`` origin: our own evidence is missing, stale or bad, which is never the fault
        of the caller whose message we were about to sign.
        """
        target, cached = self._cached(cert)
        try:
            require_good(self._read(target, cached.der))
        except BusError as err:
            raise err.at(Origin.SERVER)
        return cached.der

    # --- fetching ---------------------------------------------------------------------------------------

    def _post(self, target: OwnCertificate, request_der: bytes) -> Deferred[bytes]:
        """POST the request (RFC 6960 A.1) and deliver the body of a 200 answer, at most 64 KiB."""
        answer = fetch(
            self._agent,
            self._reactor,
            target.responder_url,
            what="OCSP responder",
            max_bytes=MAX_RESPONSE_BYTES,
            body=request_der,
            content_type="application/ocsp-request",
            headers={"accept": "application/ocsp-response"},
        )  # the timeout is _refresh_target's: it covers an injected fetch too
        return answer.addCallback(lambda got: got.body)

    def refresh(self, cert: x509.Certificate) -> Deferred[OcspStatus]:
        """Fetch a response for ``cert`` now; fires with what it says, or fails with a :class:`BusError`."""
        return self._refresh_target(self._target(cert))

    def _refresh_target(self, target: OwnCertificate) -> Deferred[OcspStatus]:
        started = self._reactor.seconds()
        deferred = self._fetch(target, ocsp_request(target))
        deferred.addTimeout(self._timeout, self._reactor)

        def got(der: bytes) -> OcspStatus:
            status = self._read(target, der)
            kept = self._store(target.key, der, status)
            self._fetched_at[target.key] = self._reactor.seconds()
            log.info(
                "ocsp_response_fetched",
                cert=target.key[:16],
                status=str(status.status),
                kept=kept,
                seconds=round(self._reactor.seconds() - started, 3),
            )
            return status

        def failed(failure: Failure) -> Failure:
            if isinstance(failure.value, BusError):
                log.warning("ocsp_fetch_failed", cert=target.key[:16], reason=failure.value.reason)
                return failure
            log.warning("ocsp_fetch_failed", cert=target.key[:16], reason=failure.getErrorMessage())
            raise NetworkError("OCSP responder could not be reached", reason=failure.getErrorMessage())

        return deferred.addCallback(got).addErrback(failed)

    # --- schedule -----------------------------------------------------------------------------------

    def start(self) -> None:
        """Fetch for every certificate now, then keep refreshing on schedule until :meth:`stop`."""
        self._running = True
        for key in self._targets:
            self._schedule(key, 0)

    def stop(self) -> None:
        """Cancel every scheduled refresh."""
        self._running = False
        for call in self._calls.values():
            if call.active():
                call.cancel()
        self._calls.clear()

    def _schedule(self, key: str, delay: float) -> None:
        if self._running:
            self._calls[key] = self._reactor.callLater(delay, self._scheduled_refresh, key)

    def _scheduled_refresh(self, key: str) -> None:
        deferred = self._refresh_target(self._targets[key])
        deferred.addCallbacks(
            lambda _: self._schedule(key, self.refresh_seconds()),
            lambda _: self._schedule(key, self._retry),
        )

    def recheck(self) -> None:
        """Bring each scheduled refresh forward to the last fetch plus the current refresh period, when that is
        sooner (a new global configuration lowered the freshness); at once when the kept response is already due.

        A refresh in progress or a retry after a failure is left as it is.
        """
        if not self._running:
            return
        now = self._reactor.seconds()
        period = self.refresh_seconds()
        for key, call in list(self._calls.items()):
            fetched = self._fetched_at.get(key)
            if fetched is None or not call.active():
                continue
            due = fetched + period
            if due < call.getTime():
                log.info("ocsp_refresh_rescheduled", cert=key[:16], seconds=round(max(0.0, due - now), 3))
                call.reset(max(0.0, due - now))

    def next_refresh_in(self, cert: x509.Certificate) -> float | None:
        """Seconds until the next scheduled fetch for ``cert`` (None if none is scheduled)."""
        call = self._calls.get(self._target(cert).key)
        if call is None or not call.active():
            return None
        return float(call.getTime() - self._reactor.seconds())

