"""A security server's operations surface, assembled: operational and environmental monitoring, Prometheus
metrics and the health check (issue 15).

Observation flows one way (ARCHITECTURE.md): each proxy hands a finished exchange to :attr:`recorder`
(proxy/exchange.py), which puts its record in the bounded :class:`OpmonBuffer` and counts it in the metrics; the
:class:`OpmonWriter` moves records to ``opmon.db`` in batches on one worker thread; the metaservices
(``getSecurityServerOperationalData``, ``...HealthData``, ``...Metrics``) read from the store and the sampler
through the same thread. What ``/metrics`` reports that needs a database or a directory (records awaiting a
timestamp, the archive backlog, our certificates) is read every :data:`BACKLOG_INTERVAL` seconds off the
reactor and kept, so a scrape never waits on a disk.

The health port (``[healthcheck] port``, 0 = off) answers the load balancer's check (ig-xlb §3.4) on every path,
``/metrics``, and for the server's own CLI (loopback only) ``/checks`` and ``/maintenance?targetState=``.
``[opmon] enabled = false`` leaves the proxies' recording out (the benchmark's lever for what monitoring costs);
the metaservices then answer from what the store holds.
"""

from __future__ import annotations

import hashlib
import ipaddress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

import structlog
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from twisted.application.service import MultiService
from twisted.internet.defer import Deferred, maybeDeferred, succeed
from twisted.internet.task import LoopingCall
from twisted.web.server import Site

from security_server.core.config import LayeredConfig
from security_server.core.envmon import GET_SECURITY_SERVER_METRICS
from security_server.core.errors import GlobalConfOutdated
from security_server.core.globalconf import GlobalConf
from security_server.core.identifiers import ClientId
from security_server.core.logchain import micros_to_time
from security_server.core.opmon.query import GET_HEALTH_DATA, GET_OPERATIONAL_DATA
from security_server.core.trust import OcspStatus
from security_server.edge.health_checker import HealthCheck, HealthChecker
from security_server.edge.health_resource import health_site_root
from security_server.envmon.sensors import CertificateInfo, SystemSampler
from security_server.healthcheck import checks
from security_server.messagelog.store import MessageLogStore
from security_server.metrics import GaugeSources, ServerMetrics
from security_server.opmon.buffer import OpmonBuffer
from security_server.opmon.recorder import ExchangeRecorder
from security_server.opmon.services import EnvmonService, OpmonServices
from security_server.opmon.store import OpmonStore
from security_server.opmon.writer import DEFAULT_RETENTION_DAYS, OpmonWriter, SingleThread
from security_server.proxy.exchange_record import FEDBUS_VERSION
from security_server.proxy.server_proxy import MonitoringAnswer
from security_server.signer.token import KeyKind
from security_server.signer.token_health import signing_tokens_problem

if TYPE_CHECKING:
    from security_server.service import SecurityServerService

log = structlog.get_logger("fedbus.monitoring")

BACKLOG_INTERVAL = 15.0
"""Seconds between the reads of what ``/metrics`` needs from the message log and the token."""

OPMON_DATABASE = "opmon.db"
DEFAULT_OCSP_FRESHNESS = 3600
"""Seconds an OCSP response may age before the global configuration says otherwise (X-Road's default)."""


@dataclass(frozen=True, slots=True)
class MonitoringSettings:
    """``[opmon]`` and ``[healthcheck]`` of the security server's INI files."""

    opmon_enabled: bool = True
    """Record every exchange (``[opmon] enabled``); off only to measure what monitoring costs."""
    retention_days: int = DEFAULT_RETENTION_DAYS
    healthcheck_port: int = 0
    """The plain-HTTP health and metrics port; 0 = off (X-Road's default)."""
    healthcheck_interface: str = "127.0.0.1"

    @classmethod
    def from_config(cls, config: LayeredConfig) -> MonitoringSettings:
        """Read ``[opmon]`` and ``[healthcheck]``."""
        return cls(
            opmon_enabled=config.get_bool("opmon", "enabled", True),
            retention_days=config.get_int("opmon", "retention-days", DEFAULT_RETENTION_DAYS, minimum=0, maximum=3650),
            healthcheck_port=config.get_int("healthcheck", "port", 0, minimum=0, maximum=65535),
            healthcheck_interface=config.get_str("healthcheck", "interface", "127.0.0.1"),
        )


@dataclass(slots=True)
class _Backlog:
    """What the last off-reactor read found (None until the first read)."""

    awaiting_timestamp: int | None = None
    oldest_awaiting_at: float | None = None
    archive_backlog: int | None = None
    certificates: tuple[tuple[str, x509.Certificate], ...] = ()
    """``(use, certificate)`` for each certificate on the token."""
    certificate_infos: tuple[CertificateInfo, ...] = ()
    conf_seen: dict[int, float] = field(default_factory=dict)


def _read_log_backlog(store: MessageLogStore) -> tuple[int, float | None, int]:
    """Records awaiting a timestamp, the time of the oldest, and timestamped records not yet archived."""
    conn = store.database
    count, oldest = conn.execute(
        "SELECT count(*), min(time_us) FROM logrecord WHERE timestamp_id IS NULL AND length(signature) > 0"
    ).fetchone()
    (archive,) = conn.execute("SELECT count(*) FROM logrecord WHERE archived_us IS NULL AND timestamp_id > 0").fetchone()
    oldest_at = None if oldest is None else micros_to_time(int(oldest)).timestamp()
    return int(count), oldest_at, int(archive)


def internal_ip(host: str) -> str | None:
    """The ``securityServerInternalIp`` of the records: the server proxy's address when it is one IPv4 address
    (a wildcard or a host name says nothing, and X-Road's field is IPv4 only)."""
    try:
        address = ipaddress.IPv4Address(host)
    except ValueError:
        return None
    return None if address.is_unspecified else str(address)


def _cert_id(cert: x509.Certificate) -> str:
    return hashlib.sha1(cert.public_bytes(serialization.Encoding.DER)).hexdigest()  # noqa: S324 - X-Road's id


class ServerMonitoring(MultiService):
    """The monitoring parts of one security server; see the module docstring."""

    def __init__(
        self, reactor: Any, server: SecurityServerService, settings: MonitoringSettings, *, timestamp_grace_seconds: float
    ) -> None:
        """``server``'s parts are read when they are needed, so this can be made before the proxies."""
        super().__init__()  # type: ignore[no-untyped-call]  # Twisted leaves it unannotated
        self.reactor = reactor
        self.settings = settings
        self._server = server
        root: Path = server.paths.root
        self.thread = SingleThread(reactor)
        self.thread.setServiceParent(self)  # type: ignore[no-untyped-call]
        self.store = OpmonStore(root / OPMON_DATABASE)
        self.buffer = OpmonBuffer()
        self.writer = OpmonWriter(
            self.buffer, self.store, clock=reactor, run=self.thread.run, retention_days=settings.retention_days
        )
        self.writer.setServiceParent(self)  # type: ignore[no-untyped-call]
        self._backlog = _Backlog()
        self.sampler = SystemSampler(reactor, certificates=lambda: self._backlog.certificate_infos, disk_paths=[root])
        self.sampler.setServiceParent(self)  # type: ignore[no-untyped-call]
        self.metrics = ServerMetrics(self._gauge_sources(), clock=reactor.seconds)
        self.recorder: ExchangeRecorder | None = (
            ExchangeRecorder(self.buffer, self.metrics, internal_ip=internal_ip(server.settings.server_proxy_host))
            if settings.opmon_enabled else None
        )
        self.opmon_services = OpmonServices(
            self.store, self.thread.run,
            owner=lambda: server.identity.owner, monitoring_client=self.monitoring_client,
            clock=reactor, startup_ms=int(reactor.seconds() * 1000),
        )
        self.envmon_service = EnvmonService(
            self.sampler, self.thread.run,
            server=lambda: server.identity.server_id, monitoring_client=self.monitoring_client,
            proxy_version=FEDBUS_VERSION,
        )
        self.checker = HealthChecker(self._checks(timestamp_grace_seconds), reactor)
        self._backlog_loop = LoopingCall(self.read_backlog)
        self._backlog_loop.clock = reactor
        self._port: Any = None

    # --- what the server proxy answers ------------------------------------------------------------------------

    def metaservices(self) -> dict[str, MonitoringAnswer]:
        """The owner's monitoring metaservices by service code, for the server proxy (bound late, so a test or a
        reload may replace the handlers)."""
        def opmon(request: Any, request_hash: tuple[str, str]) -> Deferred[tuple[str, bytes]]:
            return self.opmon_services.answer(request, request_hash)

        def envmon(request: Any, request_hash: tuple[str, str]) -> Deferred[tuple[str, bytes]]:
            return self.envmon_service.answer(request, request_hash)

        return {GET_OPERATIONAL_DATA: opmon, GET_HEALTH_DATA: opmon, GET_SECURITY_SERVER_METRICS: envmon}

    def _conf(self) -> GlobalConf | None:
        try:
            return self._server.conf_client.current()
        except GlobalConfOutdated:
            return None

    def monitoring_client(self) -> ClientId | None:
        """The central monitoring client the global configuration names (X-Road ``monitoring-params.xml``)."""
        conf = self._conf()
        return None if conf is None else conf.monitoring_client

    # --- health checks ---------------------------------------------------------------------------------------

    def _auth_cert(self) -> x509.Certificate:
        _, cert = self._server.token.auth_key(now=datetime.fromtimestamp(self.reactor.seconds(), tz=UTC))
        return cert

    def _auth_key_usable(self) -> bool:
        try:
            self._auth_cert()
        except Exception:  # noqa: BLE001 - any reason the key cannot be used is the answer "no"
            return False
        return True

    def _auth_ocsp(self) -> OcspStatus | None:
        ocsp = self._server.ocsp
        if ocsp is None:
            return None
        try:
            return ocsp.status(self._auth_cert())
        except Exception:  # noqa: BLE001 - no response yet: the check reports a missing status
            return None

    def _read_serverconf(self) -> Any:
        if self._server.settings.database.url:
            # A clustered node serves from the snapshot it holds while the shared database is down (issue 19,
            # docs/clustering.md): failing here would have the load balancer drop every node at once.
            return None
        return self._server.serverconf.run(lambda store: store.identity())

    def _globalconf_expiry(self) -> datetime | None:
        conf = self._conf()
        return None if conf is None else conf.expires_at

    def _timestamping_failing_for(self) -> float | None:
        since = self._server.evidence.timestamper.failed_since
        return None if since is None else self.reactor.seconds() - since

    def _checks(self, grace_seconds: float) -> list[HealthCheck]:
        server = self._server
        clock = self.reactor.seconds

        async def auth_ocsp() -> None:
            # The freshness limit is the global configuration's (ocspFreshnessSeconds), read at each check.
            conf = self._conf()
            max_age = conf.ocsp_freshness_seconds if conf is not None else DEFAULT_OCSP_FRESHNESS
            await checks.auth_ocsp(self._auth_ocsp, clock=clock, max_age_seconds=max_age).run()

        return [
            checks.auth_key(self._auth_key_usable),
            HealthCheck(checks.auth_ocsp(self._auth_ocsp, clock=clock, max_age_seconds=1).name, auth_ocsp),
            checks.serverconf(self._read_serverconf),
            checks.globalconf(self._globalconf_expiry, clock=clock),
            checks.messagelog_writer(lambda: server.message_log.healthy),
            checks.timestamper(self._timestamping_failing_for, grace_seconds=grace_seconds),
            checks.signing_tokens(lambda: signing_tokens_problem(server.token.tokens, server.token_workers)),
        ]

    # --- metrics -----------------------------------------------------------------------------------------------

    def _gauge_sources(self) -> GaugeSources:
        server = self._server
        backlog = self._backlog

        def known(value: int | None) -> int:
            if value is None:
                raise LookupError("not read yet")
            return value

        def ocsp_responses() -> Iterable[tuple[str, float]]:
            ocsp = server.ocsp
            if ocsp is None:
                return ()
            found = []
            for _, cert in backlog.certificates:
                try:
                    found.append((_cert_id(cert), ocsp.status(cert).produced_at.timestamp()))
                except Exception:  # noqa: BLE001 - no response for this certificate: nothing to report
                    continue
            return found

        def globalconf_seen_at() -> float | None:
            # The configuration's own generation time is not kept; its age is counted from when it was applied.
            conf = self._conf()
            if conf is None:
                return None
            return backlog.conf_seen.setdefault(id(conf), self.reactor.seconds())

        return GaugeSources(
            messagelog_queue_depth=lambda: server.message_log.queue_depth,
            awaiting_timestamp=lambda: known(backlog.awaiting_timestamp),
            oldest_awaiting_timestamp_at=lambda: backlog.oldest_awaiting_at if known(backlog.awaiting_timestamp) else None,
            archive_backlog=lambda: known(backlog.archive_backlog),
            certificates=lambda: [(use, _cert_id(cert), cert.not_valid_after_utc.timestamp())
                                  for use, cert in backlog.certificates],
            ocsp_responses=ocsp_responses,
            globalconf_generated_at=globalconf_seen_at,
            peer_pool_connections=lambda: server.link.pool_connections(),
            replay_guard_size=lambda: len(server.server_proxy.replay_guard),
            replay_guard_unchecked=lambda: None if server.cluster_replay is None else server.cluster_replay.unchecked,
            opmon_buffer_depth=lambda: len(self.buffer),
            opmon_records_dropped=lambda: self.buffer.dropped,
            proxy_connections=lambda: server.proxy_connections,
            heap_upkeep=lambda: None if server.heap_trimmer is None else (
                server.heap_trimmer.collections, server.heap_trimmer.last_collection_ms / 1000
            ),
        )

    def read_backlog(self) -> Any:
        """Read the message-log backlog (on the writer's thread) and the token's certificates (on ours)."""
        server = self._server
        backlog = self._backlog

        def got_log(found: tuple[int, float | None, int]) -> None:
            backlog.awaiting_timestamp, backlog.oldest_awaiting_at, backlog.archive_backlog = found

        def read_token() -> tuple[tuple[str, x509.Certificate], ...]:
            return tuple(("auth" if k.kind is KeyKind.AUTH else "sign", k.cert)
                         for k in server.token.list() if k.cert is not None)

        def got_token(certificates: tuple[tuple[str, x509.Certificate], ...]) -> None:
            backlog.certificates = certificates
            backlog.certificate_infos = tuple(
                CertificateInfo(_cert_id(cert), cert.not_valid_before_utc, cert.not_valid_after_utc, "AUTH_OR_SIGN", True)
                for _, cert in certificates
            )

        def failed(failure: Any, what: str) -> None:
            log.warning("monitoring_read_failed", part=what, error=failure.getErrorMessage())

        server.message_log.run(_read_log_backlog).addCallbacks(got_log, failed, errbackArgs=("message log",))
        return self.thread.run(read_token).addCallbacks(got_token, failed, errbackArgs=("token",))

    # --- lifecycle -------------------------------------------------------------------------------------------

    def startService(self) -> None:
        """Start the writer, the sampler and the backlog reads, then listen on the health port when it is on."""
        super().startService()  # type: ignore[no-untyped-call]  # Twisted leaves it unannotated
        self._backlog_loop.start(BACKLOG_INTERVAL, now=True)
        if self.settings.healthcheck_port:
            self.serve_health(self.settings.healthcheck_port, self.settings.healthcheck_interface)

    def serve_health(self, port: int, interface: str = "127.0.0.1") -> int:
        """Listen for the health check, ``/metrics``, ``/checks`` and ``/maintenance`` on ``port`` (0: any free
        one); the port listened on."""
        if self._port is not None:
            raise RuntimeError("the health endpoint is already listening")
        site = Site(health_site_root(self.checker, self.metrics.render))  # type: ignore[no-untyped-call]
        self._port = self.reactor.listenTCP(port, site, interface=interface)
        return int(self._port.getHost().port)

    @property
    def healthcheck_port(self) -> int | None:
        """The port the health endpoint listens on (None when it is off)."""
        return None if self._port is None else int(self._port.getHost().port)

    def stopService(self) -> Deferred[None]:
        """Stop listening and reading, then the writer, the sampler and the worker thread; close the store."""
        if self._backlog_loop.running:
            self._backlog_loop.stop()
        port, self._port = self._port, None
        listening: Deferred[Any] = succeed(None) if port is None else maybeDeferred(port.stopListening)

        def stop_parts(_: object) -> Deferred[Any]:
            return maybeDeferred(MultiService.stopService, self)

        def close(result: object) -> None:
            self.store.close()

        return listening.addBoth(stop_parts).addBoth(close)

