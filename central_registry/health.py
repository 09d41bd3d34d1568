"""The registry's health check and metrics: the security server's endpoint (ig-xlb §3.4) over the registry's parts.

The checks, in the order the 500 answer names the first failure:

* **Registry store**: the database answers a small read (in the store's worker thread);
* **Configuration signing key**: the key and its certificate load, and the certificate is valid now;
* **Configuration publishing**: a generation was published and it has not expired (a failed attempt since the
  last success is named);
* **CA, OCSP and TSA**: when the registry runs the development CA, its certificate and the TSA's load and are
  valid now (nothing to check when trust services are external).

``/metrics`` beside it: registration requests by status (read from the store every :data:`COUNT_INTERVAL`
seconds, off the reactor), configuration generations published, OCSP and TSA requests answered by result. The
resources are the security server's (security_server/edge/health_resource.py); ``central_registry`` may import
only ``security_server.edge`` and ``security_server.core`` (tests/test_layering.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Callable

import structlog
from cryptography import x509
from twisted.internet.defer import Deferred
from twisted.web.resource import Resource
from twisted.web.server import Request

from central_registry.conf_signing_key import ConfSigningSettings, load_conf_signing_key
from central_registry.metrics import RegistryMetrics
from central_registry.store import RegistryStore
from central_registry.trust.ca import DevelopmentCA
from security_server.core.config import LayeredConfig
from security_server.edge.health_checker import CheckFailed, HealthCheck, HealthChecker

log = structlog.get_logger("fedbus.registry.health")

COUNT_INTERVAL = 15.0
"""Seconds between the reads of registration requests by status."""


@dataclass(frozen=True, slots=True)
class RegistryHealthSettings:
    """``[healthcheck]`` of conf/central-registry.ini."""

    port: int = 0
    """The plain-HTTP health check and ``/metrics`` port; 0 = off."""
    interface: str = "127.0.0.1"

    @classmethod
    def from_config(cls, config: LayeredConfig) -> RegistryHealthSettings:
        """Read ``[healthcheck]``."""
        return cls(
            port=config.get_int("healthcheck", "port", 0, minimum=0, maximum=65535),
            interface=config.get_str("healthcheck", "interface", "127.0.0.1"),
        )


@dataclass(slots=True)
class PublishingState:
    """What the publishing loop last did (the service keeps it up to date)."""

    expires_at: datetime | None = None
    """When the last published generation expires; None before the first."""
    last_error: str | None = None
    """Why the last attempt failed, or None when it succeeded."""


def _valid_now(cert: x509.Certificate, now: datetime, what: str) -> None:
    if now < cert.not_valid_before_utc:
        raise CheckFailed(f"{what} is not valid before {cert.not_valid_before_utc.isoformat()}")
    if now > cert.not_valid_after_utc:
        raise CheckFailed(f"{what} expired at {cert.not_valid_after_utc.isoformat()}")


def registry_checks(
    *,
    run: Callable[..., Deferred[Any]],
    store: Callable[[], RegistryStore | None],
    conf_signing: Path,
    ca: Path,
    publishing: PublishingState,
    now: Callable[[], datetime],
    conf_signing_settings: ConfSigningSettings = ConfSigningSettings(),
) -> list[HealthCheck]:
    """The registry's checks; ``run`` calls a function in the store's worker thread."""

    async def store_readable() -> None:
        current = store()
        if current is None:
            raise CheckFailed("the registry store is not open")
        await run(current.settings)

    async def signing_key() -> None:
        key = await run(load_conf_signing_key, conf_signing, conf_signing_settings)
        _valid_now(key.cert, now(), "the configuration signing certificate")

    async def published() -> None:
        if publishing.last_error is not None:
            raise CheckFailed(f"the last publication failed: {publishing.last_error}")
        if publishing.expires_at is None:
            raise CheckFailed("no global configuration has been published yet")
        if publishing.expires_at <= now():
            raise CheckFailed(f"the published global configuration expired at {publishing.expires_at.isoformat()}")

    async def trust_services() -> None:
        if not ca.is_dir():
            return

        def load() -> tuple[x509.Certificate, x509.Certificate | None]:
            development_ca = DevelopmentCA.open(ca)
            try:
                _, tsa_cert = development_ca.tsa_credentials()
            except Exception:  # noqa: BLE001 - a CA without a TSA has only its own certificate to check
                tsa_cert = None
            return development_ca.certificate, tsa_cert

        ca_cert, tsa_cert = await run(load)
        moment = now()
        _valid_now(ca_cert, moment, "the CA certificate (and its OCSP responder)")
        if tsa_cert is not None:
            _valid_now(tsa_cert, moment, "the TSA certificate")

    return [
        HealthCheck("Registry store", store_readable),
        HealthCheck("Configuration signing key", signing_key),
        HealthCheck("Configuration publishing", published),
        HealthCheck("CA, OCSP and TSA", trust_services),
    ]


class CountedResource(Resource):
    """Counts each answer of the wrapped resource (OCSP, TSA) by result: ``ok`` for 2xx, else the HTTP status."""

    def __init__(self, inner: Resource, count: Callable[[str], None]) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # Twisted leaves it unannotated
        self._inner = inner
        self._count = count
        self.isLeaf = True

    def render(self, request: Request) -> Any:
        reply: Any = request  # Twisted leaves Request unannotated

        def finished(_: object) -> None:
            code = int(getattr(reply, "code", 200))
            self._count("ok" if 200 <= code < 300 else str(code))

        reply.notifyFinish().addBoth(finished)
        return self._inner.render(request)  # type: ignore[no-untyped-call]  # Twisted leaves it unannotated


class RegistryHealth:
    """The registry's checker, metrics and the read of registration requests by status."""

    def __init__(
        self,
        reactor: Any,
        *,
        run: Callable[..., Deferred[Any]],
        store: Callable[[], RegistryStore | None],
        conf_signing: Path,
        ca: Path,
        conf_signing_settings: ConfSigningSettings = ConfSigningSettings(),
    ) -> None:
        self._reactor = reactor
        self._run = run
        self._store = store
        self.publishing = PublishingState()
        self._requests: dict[str, int] | None = None
        self.metrics = RegistryMetrics(registration_requests=self._requests_by_status)
        self.checker = HealthChecker(
            registry_checks(run=run, store=store, conf_signing=conf_signing, ca=ca, publishing=self.publishing,
                            now=self.now, conf_signing_settings=conf_signing_settings),
            reactor,
        )

    def now(self) -> datetime:
        """The reactor's time as an aware UTC datetime."""
        return datetime.fromtimestamp(self._reactor.seconds(), tz=UTC)

    def _requests_by_status(self) -> dict[str, int]:
        if self._requests is None:
            raise LookupError("not read yet")
        return self._requests

    def read_counts(self) -> Deferred[None]:
        """Read registration requests by status in the store's thread (failures are logged, never raised)."""
        store = self._store()
        if store is None:
            return Deferred.fromCoroutine(self._nothing())

        def count() -> dict[str, int]:
            rows = store.db.query("SELECT status, count(*) AS n FROM requests GROUP BY status")
            return {str(row["status"]): int(row["n"]) for row in rows}

        def keep(counts: dict[str, int]) -> None:
            self._requests = counts

        def failed(failure: Any) -> None:
            log.warning("registry_request_count_failed", error=failure.getErrorMessage())

        return self._run(count).addCallbacks(keep, failed)

    @staticmethod
    async def _nothing() -> None:
        return None

    def published(self, expires_at: datetime) -> None:
        """A generation was published: counted, and the publishing check passes until it expires."""
        self.publishing.expires_at, self.publishing.last_error = expires_at, None
        self.metrics.generation_published()

    def publishing_failed(self, reason: str) -> None:
        """An attempt to publish failed: the publishing check fails until the next success."""
        self.publishing.last_error = reason
