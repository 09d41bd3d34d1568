"""Assembling a running security server: ``make_service(reactor, settings)`` returns a Twisted MultiService.

Layout of a security server's working directory (made by ``fedbus server init``)::

    serverconf.db      identity, hosted clients, services, access rights (the admin's CLI writes it)
    keys/              the soft token: auth and signing keys with their certificates
    globalconf.bundle  the last verified global configuration
    messagelog.db      the hash-linked message log
    ocsp/              cached OCSP responses for our own certificates
    opmon.db           operational monitoring records (kept for [opmon] retention-days)

Parts and their order: the configuration client (loads the stored copy, then refreshes every interval), the
OCSP client for our own certificates, the message-log writer, the evidence services (batch timestamper, archiver,
``/asic`` on the client proxy port), a poller that re-reads the server
configuration snapshot (so CLI changes apply without a restart), the client proxy (HTTP, for the department's
systems) and the server proxy (mutual TLS, for other security servers), and monitoring (security_server/monitoring.py:
operational records, the monitoring metaservices, ``/metrics`` and the health check on ``[healthcheck] port``).

With ``[server] workers = N`` the parent of security_server/workers.py runs N of these, each built with its
:class:`~security_server.worker_slot.WorkerSlot`: worker n writes message-log shard n, serves the sockets the
parent opened, shares the replay guard's file; worker 0 alone timestamps and archives every shard and listens on
the health port.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog
from cryptography import x509
from cryptography.x509.oid import AuthorityInformationAccessOID
from twisted.application import service
from twisted.internet import defer
from twisted.internet.task import LoopingCall
from twisted.internet.threads import deferToThreadPool

from security_server.admin.server_dir import ServerDirectory
from security_server.confclient.client import ConfClient
from security_server.core.config import ConnectionLimits, DatabaseConfig, LayeredConfig, MessageLimits
from security_server.core.errors import ConfigurationError, GlobalConfOutdated, IncorrectValidationInfo, Origin
from security_server.core.globalconf import GlobalConf, parse_configuration_anchor
from security_server.heap_trim import DEFAULT_TRIM_SECONDS, HeapTrimmer, libc_malloc_trim
from security_server.management.config import ManagementConfig
from security_server.management.diagnostics import ServerDiagnostics
from security_server.management.server import ManagementService
from security_server.messagelog.asic_resource import mount_asic
from security_server.messagelog.evidence_services import EvidenceSettings, make_evidence_services
from security_server.messagelog.shard_admission import ShardAdmission
from security_server.messagelog.shards import shard_path
from security_server.messagelog.store import MessageLogStore, Synchronous
from security_server.messagelog.writer import MessageLogWriter
from security_server.monitoring import MonitoringSettings, ServerMonitoring
from security_server.proxy.client_proxy import ClientProxy
from security_server.proxy.client_proxy_site import client_proxy_site
from security_server.management.tls import InternalIdentity
from security_server.proxy.client_proxy_tls import InternalTlsOptions, listen_client_proxy_https
from security_server.proxy.connection_limits import PortConnections
from security_server.proxy.context import ProxyContext
from security_server.proxy.mtls import (
    DEFAULT_PEER_POOL_SIZE,
    MAX_PEER_POOL_SIZE,
    MtlsPeerLink,
)
from security_server.proxy.peer_admission import PeerAdmission
from security_server.proxy.peer_trust import PeerAuthVerifier, PeerOcspCache
from security_server.proxy.server_proxy import ServerProxy
from security_server.proxy.server_proxy_site import ServerProxyResource, listen_server_proxy, server_proxy_site
from security_server.replay_store import ClusterReplayGuard
from security_server.serverconf.reader import ServerConfReader
from security_server.serverconf.store import ClientState, ServerConfSnapshot, ServerConfStore
from security_server.shared_replay_guard import FILE_NAME as REPLAY_GUARD_FILE
from security_server.shared_replay_guard import SharedReplayGuard
from security_server.signer.batch_signer import BatchSigner
from security_server.core.trust import DEFAULT_OCSP_FRESHNESS_SECONDS
from security_server.signer.ocsp_client import OcspClient, OwnCertificate, cert_key
from security_server.signer.pkcs11_config import Pkcs11TokenConfig, pkcs11_tokens_from_config
from security_server.signer.pkcs11_token import Pkcs11Token
from security_server.signer.signing_keys import SigningKeys
from security_server.signer.softtoken import SoftToken
from security_server.signer.token import Token
from security_server.signer.token_set import TokenSet
from security_server.signer.token_workers import TokenWorkers
from security_server.worker_slot import WorkerSlot
from security_server.workers import adopt_proxy_ports

log = structlog.get_logger()


@dataclass(frozen=True, slots=True)
class ServerPaths:
    """Where each part of a security server's state lives under its working directory."""

    root: Path

    @property
    def serverconf(self) -> Path:
        """The server configuration database."""
        return self.root / "serverconf.db"

    @property
    def keys(self) -> Path:
        """The soft token."""
        return self.root / "keys"

    @property
    def globalconf(self) -> Path:
        """The stored global configuration."""
        return self.root / "globalconf.bundle"

    @property
    def messagelog(self) -> Path:
        """The message log."""
        return self.root / "messagelog.db"

    @property
    def ocsp_cache(self) -> Path:
        """Cached OCSP responses for our own certificates."""
        return self.root / "ocsp"


@dataclass(frozen=True, slots=True)
class ServerSettings:
    """A security server's settings, read once at start-up (``[server]`` and ``[limits]`` in the INI files)."""

    root: Path
    client_proxy_host: str = "127.0.0.1"
    client_proxy_port: int = 8080
    client_proxy_https_port: int = 0
    """The client proxy's HTTPS port, with the internal TLS certificate (X-Road's 8443; 0: no HTTPS port)."""
    server_proxy_host: str = "127.0.0.1"
    server_proxy_port: int = 5500
    conf_refresh_seconds: float = 60.0
    serverconf_poll_seconds: float = 2.0
    peer_pool_size: int = DEFAULT_PEER_POOL_SIZE
    """Idle mutual-TLS connections kept open per peer security server (``[server] peer-pool-size``)."""
    batch_signing: bool = True
    """Sign the messages of one reactor turn and one member with one signature (``[server] batch-signing``)."""
    workers: int = 1
    """Worker processes serving the same ports (``[server] workers``, security_server/workers.py)."""
    heap_trim_seconds: int = DEFAULT_TRIM_SECONDS
    """How often freed heap memory is given back to the system (``[server] heap-trim-seconds``; 0: never)."""
    messagelog_synchronous: Synchronous = Synchronous.FULL
    """SQLite ``synchronous`` of the message log (``[messagelog] synchronous``): FULL survives power loss."""
    messagelog_compress_bodies: bool = True
    """Store logged messages and attachments zlib-compressed when smaller (``[messagelog] compress-bodies``)."""
    limits: MessageLimits = MessageLimits()
    client_connections: ConnectionLimits = ConnectionLimits()
    """The client proxy port's timeouts and connection cap (``[proxy] client-...``)."""
    server_connections: ConnectionLimits = ConnectionLimits()
    """The server proxy port's timeouts and connection cap (``[proxy] server-...``)."""
    evidence: EvidenceSettings | None = None
    """Timestamping, archiving and /asic ([messagelog]); None means the defaults under ``root``."""
    monitoring: MonitoringSettings = MonitoringSettings()
    """Operational monitoring and the health/metrics port (``[opmon]``, ``[healthcheck]``)."""
    pkcs11_tokens: tuple[Pkcs11TokenConfig, ...] = ()
    """The PKCS#11 tokens that may hold signing keys (``[pkcs11:NAME]`` sections, docs/hsm.md)."""
    management: ManagementConfig | None = None
    """The management REST API (``[management]``); None: no API (settings built by hand in tests)."""
    layered: LayeredConfig | None = None
    """The configuration read, for the API's token list (``[pkcs11:NAME]``); None when built by hand."""
    database: DatabaseConfig = DatabaseConfig()
    """Where the configuration store is (``[database] url``): a PostgreSQL database the nodes of a cluster share."""

    @classmethod
    def from_config(cls, root: Path, config: LayeredConfig) -> ServerSettings:
        """Read the settings for the server in ``root``."""
        return cls(
            root=root,
            client_proxy_host=config.get_str("server", "client-proxy-host", "127.0.0.1"),
            client_proxy_port=config.get_int("server", "client-proxy-port", 8080, minimum=0, maximum=65535),
            client_proxy_https_port=config.get_int("server", "client-proxy-https-port", 0, minimum=0, maximum=65535),
            server_proxy_host=config.get_str("server", "server-proxy-host", "127.0.0.1"),
            server_proxy_port=config.get_int("server", "server-proxy-port", 5500, minimum=0, maximum=65535),
            conf_refresh_seconds=config.get_int("server", "conf-refresh-seconds", 60, minimum=1, maximum=3600),
            peer_pool_size=config.get_int(
                "server", "peer-pool-size", DEFAULT_PEER_POOL_SIZE, minimum=0, maximum=MAX_PEER_POOL_SIZE
            ),
            batch_signing=config.get_bool("server", "batch-signing", True),
            workers=config.get_int("server", "workers", 1, minimum=1, maximum=256),
            heap_trim_seconds=config.get_int(
                "server", "heap-trim-seconds", DEFAULT_TRIM_SECONDS, minimum=0, maximum=24 * 3600
            ),
            messagelog_synchronous=Synchronous(
                config.get_choice("messagelog", "synchronous", [s.value.lower() for s in Synchronous], "full").upper()
            ),
            messagelog_compress_bodies=config.get_bool("messagelog", "compress-bodies", True),
            limits=MessageLimits.from_config(config),
            client_connections=ConnectionLimits.from_config(config, "client"),
            server_connections=ConnectionLimits.from_config(config, "server"),
            evidence=EvidenceSettings.from_config(root, config),
            monitoring=MonitoringSettings.from_config(config),
            management=ManagementConfig.from_config(config), layered=config,
            database=DatabaseConfig.from_config(config),
            pkcs11_tokens=pkcs11_tokens_from_config(config),
        )


def own_certificates(token: Token, conf: GlobalConf | None) -> list[OwnCertificate]:
    """Our auth and signing certificates with their issuers and OCSP responders (from the global configuration,
    else from the certificate's authorityInfoAccess)."""
    found: list[OwnCertificate] = []
    for entry in token.list():
        cert = entry.cert
        if cert is None:
            continue
        issuer_der = conf.ca_cert_for(cert.issuer) if conf is not None else None
        if issuer_der is None:
            continue
        issuer = x509.load_der_x509_certificate(issuer_der)
        responders = conf.ocsp_responders(cert.issuer) if conf is not None else ()
        url = responders[0].url if responders else _aia_ocsp_url(cert)
        if url:
            found.append(OwnCertificate(cert, issuer, url))
    return found


def _ocsp_target_keys(targets: list[OwnCertificate]) -> frozenset[tuple[str, str, str]]:
    """What makes the OCSP client's targets differ: each certificate, its responder URL and its issuer."""
    return frozenset((t.key, t.responder_url, cert_key(t.issuer)) for t in targets)


def _aia_ocsp_url(cert: x509.Certificate) -> str | None:
    try:
        access = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    except x509.ExtensionNotFound:
        return None
    for description in access:
        if description.access_method == AuthorityInformationAccessOID.OCSP:
            return str(description.access_location.value)
    return None


class SecurityServerService(service.MultiService):
    """The running security server; see the module docstring."""

    def __init__(self, reactor: Any, settings: ServerSettings, worker: WorkerSlot | None = None) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.reactor = reactor
        self.settings = settings
        self.worker = worker
        """Set in a worker process of a multi-process server (security_server/workers.py)."""
        self.paths = ServerPaths(settings.root)
        with ServerConfStore(self.paths.serverconf, database_url=settings.database.url) as store:
            if not store.is_initialised():
                raise ConfigurationError(
                    f"{settings.root} holds no initialised security server (run `fedbus server init`)"
                )
            self.identity = store.identity()
            anchor = store.anchor()
            snapshot = store.snapshot()
        # One store kept open for the periodic re-read and the health check (not a connection pool per poll).
        self.serverconf = ServerConfReader(reactor, self.paths.serverconf, database_url=settings.database.url)
        self.serverconf.setServiceParent(self)  # type: ignore[no-untyped-call]
        # The soft token and every [pkcs11:NAME] token, seen as one; nothing is loaded or logged in until first used.
        self.token = TokenSet([SoftToken(self.paths.keys), *(Pkcs11Token(t) for t in settings.pkcs11_tokens)])
        # One worker thread per token: token calls (signing, status) never block the reactor.
        self.token_workers = TokenWorkers(reactor)
        self.conf_client = ConfClient(
            reactor, parse_configuration_anchor(anchor), self.paths.globalconf,
            interval_seconds=settings.conf_refresh_seconds,
        )
        self.conf_client.setServiceParent(self)  # type: ignore[no-untyped-call]
        self.conf_client.on_applied(self._global_conf_applied)
        log_path = self.paths.messagelog if worker is None else shard_path(settings.root, worker.index)
        self.message_log = MessageLogWriter(
            reactor, log_path, synchronous=settings.messagelog_synchronous, store_factory=self._log_store_factory()
        )
        self.message_log.setServiceParent(self)  # type: ignore[no-untyped-call]
        self._snapshot: ServerConfSnapshot = snapshot
        evidence = settings.evidence or EvidenceSettings.defaults(settings.root)
        # Monitoring reads the other parts only when asked, so it exists before the proxies that report to it.
        monitoring = settings.monitoring
        if worker is not None and not worker.designated:  # one health port per server: worker 0's
            monitoring = dataclasses.replace(monitoring, healthcheck_port=0)
        self.monitoring = ServerMonitoring(
            reactor, self, monitoring, timestamp_grace_seconds=evidence.timestamper.grace_period_seconds
        )
        # The management REST API (X-Road's /api/v1, docs/management-api.md) on its own HTTPS port; once per
        # server, in worker 0 (whose health checker holds the maintenance switch), like the health port.
        if settings.management is not None and (worker is None or worker.designated):
            self.management = ManagementService(
                reactor, ServerDirectory(settings.root, settings.database.url), settings.management, settings.layered,
                maintenance=self.monitoring.checker, global_conf=self.conf_client.current,
                diagnostics=ServerDiagnostics(self),
            )
            self.management.setServiceParent(self)  # type: ignore[no-untyped-call]
        self.ocsp: OcspClient | None = None
        self._ocsp_targets: frozenset[tuple[str, str, str]] = frozenset()
        self._ocsp_freshness_seconds = float(DEFAULT_OCSP_FRESHNESS_SECONDS)
        self.internal_tls = InternalIdentity(settings.root)
        """The internal TLS certificate: the client proxy's HTTPS port serves it, https services are shown it."""
        self.context = ProxyContext(
            reactor=reactor,
            server_id=self.identity.server_id,
            global_conf=self.conf_client.current,
            server_conf=lambda: self._snapshot,
            token=self.token,
            own_ocsp=self._own_ocsp,
            message_log=self.message_log,
            limits=settings.limits,
            opmon=self.monitoring.recorder,
            internal_tls=self.internal_tls.current,
        )
        # Started after the writer and stopped before it (MultiService order): timestamps, archives, /asic.
        self.evidence = make_evidence_services(
            reactor, self.message_log, self.conf_client.current, self.context.server_conf, evidence,
            stamping_here=worker is None or worker.designated,
        )
        self._timestampers = [self.evidence.timestamper]
        if worker is None or worker.designated:  # once per server: worker 0 stamps and archives every shard
            self.evidence.setServiceParent(self)  # type: ignore[no-untyped-call]
            for index in range(1, worker.count if worker is not None else 1):
                self._evidence_for_shard(index, evidence)
        elif not evidence.timestamper.immediate:  # worker 0 stamps this shard; the door closes as its own would
            admission = ShardAdmission(reactor, self.message_log, evidence.timestamper.grace_period_seconds)
            admission.setServiceParent(self)  # type: ignore[no-untyped-call]
        self.peer_ocsp = PeerOcspCache(reactor)
        self.link = MtlsPeerLink(
            reactor,
            self.token,
            verify_peer=PeerAuthVerifier(reactor, self.conf_client.current, self.peer_ocsp),
            max_idle_per_peer=settings.peer_pool_size,
        )
        # One key cache and one batch signer for both proxies: requests and responses signed in the same turn
        # by the same member share a signature.
        self.signing_keys = SigningKeys(self.token)
        self.signer = BatchSigner(
            reactor, self.signing_keys, self._own_ocsp, enabled=settings.batch_signing, workers=self.token_workers
        )
        self.client_proxy = ClientProxy(
            self.context, self.link, signing_keys=self.signing_keys, signer=self.signer,
        )
        self.server_proxy = ServerProxy(
            self.context, signing_keys=self.signing_keys, signer=self.signer, monitoring=self.monitoring.metaservices(),
            replay_guard=(
                SharedReplayGuard(settings.root / REPLAY_GUARD_FILE) if worker is not None and worker.count > 1 else None
            ),
        )
        self.cluster_replay: ClusterReplayGuard | None = None
        if settings.database.url:  # a cluster's nodes refuse a replay that another node accepted (issue 19)
            self.cluster_replay = ClusterReplayGuard(settings.database.url, clock=reactor.seconds)
            self.server_proxy.replay_guard = self.cluster_replay
        # Started after the proxies' parts and stopped before the message log (MultiService order).
        self.monitoring.setServiceParent(self)  # type: ignore[no-untyped-call]
        self.heap_trimmer: HeapTrimmer | None = None
        if settings.heap_trim_seconds > 0:  # freed heap pages back to the system (security_server/heap_trim.py)
            self.heap_trimmer = HeapTrimmer(
                reactor, settings.heap_trim_seconds, libc_malloc_trim(),
                functools.partial(deferToThreadPool, reactor, reactor.getThreadPool()),
            )
            self.heap_trimmer.setServiceParent(self)  # type: ignore[no-untyped-call]
        self._ports: list[Any] = []
        self.proxy_connections: dict[str, PortConnections] = {}
        """Each proxy port's open, refused and timed-out connections (``client``, ``server``), once listening."""
        self._poll: LoopingCall | None = None

    def _log_store_factory(self) -> functools.partial[MessageLogStore]:
        """How the writers open the message log: with the body compression chosen (docs/evidence.md)."""
        return functools.partial(MessageLogStore, compress_bodies=self.settings.messagelog_compress_bodies)

    def _evidence_for_shard(self, index: int, evidence: EvidenceSettings) -> None:
        """Timestamp and archive another worker's shard from here, through a writer of its own on that file (it
        never appends records; the store reads the chain head inside each write, so the two cannot fork it)."""
        writer = MessageLogWriter(
            self.reactor, shard_path(self.settings.root, index), synchronous=self.settings.messagelog_synchronous,
            store_factory=self._log_store_factory(),
        )
        writer.setServiceParent(self)  # type: ignore[no-untyped-call]
        archiver = dataclasses.replace(evidence.archiver, archive_dir=evidence.archiver.archive_dir / f"shard-{index}")
        services = make_evidence_services(
            self.reactor, writer, self.conf_client.current, self.context.server_conf,
            dataclasses.replace(evidence, archiver=archiver),
        )
        services.setServiceParent(self)  # type: ignore[no-untyped-call]
        self._timestampers.append(services.timestamper)

    def _global_conf_applied(self, conf: GlobalConf) -> None:
        """Re-plan what was planned from the previous configuration's values (issue 22): the OCSP refresh (its
        period is half the freshness window) and the timestamping rounds. Everything else reads the current
        configuration when it decides; a changed OCSP responder URL restarts the OCSP client on the next poll."""
        if self.ocsp is not None:
            self.ocsp.recheck()
        for timestamper in self._timestampers:
            timestamper.interval_changed()

    def _ocsp_freshness(self) -> float:
        """The global configuration's OCSP freshness now; the last one known while there is no valid one."""
        conf = self._current_conf()
        if conf is not None:
            self._ocsp_freshness_seconds = float(conf.ocsp_freshness_seconds)
        return self._ocsp_freshness_seconds

    def _own_ocsp(self, cert: x509.Certificate) -> bytes:
        if self.ocsp is None:
            raise IncorrectValidationInfo(
                "no OCSP response for our certificate yet", reason="OCSP client not started", origin=Origin.SERVER
            )
        return self.ocsp.current(cert)

    def _current_conf(self) -> GlobalConf | None:
        try:
            return self.conf_client.current()
        except GlobalConfOutdated:
            return None

    def _start_ocsp(self, targets: list[OwnCertificate] | None = None) -> None:
        conf = self._current_conf()
        targets = targets if targets is not None else own_certificates(self.token, conf)
        self._ocsp_targets = _ocsp_target_keys(targets)
        if self.ocsp is not None:
            self.ocsp.stop()
        self.ocsp = OcspClient(
            self.reactor, targets, freshness_seconds=self._ocsp_freshness, cache_dir=self.paths.ocsp_cache
        )
        self.ocsp.start()

    def reload_serverconf(self) -> defer.Deferred[None]:
        """Re-read the server configuration, and restart the OCSP client when our certificates changed.

        A hosted client whose registration was sent moves to *registered* once the global configuration lists
        it on this server (UG-SS §4.1: the change appears when the registry's approval is published).
        """
        conf = self._current_conf()
        server_id = self.identity.server_id

        def read(store: ServerConfStore) -> tuple[ServerConfSnapshot, list[OwnCertificate]]:
            if conf is not None:
                for client in store.snapshot().clients:
                    if client.state is ClientState.REGISTRATION_IN_PROGRESS and conf.is_hosted_by(client.id, server_id):
                        store.set_client_state(client.id, ClientState.REGISTERED)
                        log.info("client_registered", client=str(client.id))
            return store.snapshot(), own_certificates(self.token, conf)

        def keep(result: tuple[ServerConfSnapshot, list[OwnCertificate]]) -> None:
            snapshot, targets = result
            self._snapshot = snapshot
            if _ocsp_target_keys(targets) != self._ocsp_targets:  # new certificates, CA or responder URL
                log.info("own_certificates_changed", count=len(targets))
                self._start_ocsp(targets)

        def failed(failure: Any) -> None:
            log.warning("serverconf_reload_failed", error=failure.getErrorMessage())

        return self.serverconf.run(read).addCallbacks(keep, failed)

    def startService(self) -> None:
        """Start the parts, then listen on the client and server proxy ports."""
        service.MultiService.startService(self)  # type: ignore[no-untyped-call]
        self._start_ocsp()
        self._poll = LoopingCall(self.reload_serverconf)
        self._poll.clock = self.reactor
        self._poll.start(self.settings.serverconf_poll_seconds, now=False)
        client_site = client_proxy_site(self.client_proxy, connections=self.settings.client_connections, reactor=self.reactor)
        mount_asic(client_site, self.evidence.asic)
        site = server_proxy_site(
            ServerProxyResource(self.server_proxy, max_body_bytes=self.settings.limits.max_body_bytes + 1024 * 1024),
            connections=self.settings.server_connections, max_head_bytes=self.settings.limits.max_header_bytes,
            reactor=self.reactor,
            admission=PeerAdmission(self.reactor, self.conf_client.current),  # issue 22 item 4: before the body
        )
        self.proxy_connections = {"client": client_site.guard.connections, "server": site.guard.connections}
        https = self._client_proxy_tls()
        if self.worker is not None:  # the sockets the parent opened (security_server/workers.py)
            self._ports += adopt_proxy_ports(self.reactor, self.worker, client_site, site, self.token, https)
        else:
            self._ports.append(
                self.reactor.listenTCP(self.settings.client_proxy_port, client_site, interface=self.settings.client_proxy_host)
            )
            self._ports.append(
                listen_server_proxy(
                    self.reactor, site, self.token, port=self.settings.server_proxy_port, interface=self.settings.server_proxy_host
                )
            )
            if https is not None:
                self._ports.append(listen_client_proxy_https(
                    self.reactor, client_site, https,
                    port=self.settings.client_proxy_https_port, interface=self.settings.client_proxy_host,
                ))
        log.info(
            "security_server_started",
            server=str(self.identity.server_id),
            client_proxy=self.client_proxy_port,
            server_proxy=self.server_proxy_port,
        )

    def _client_proxy_tls(self) -> InternalTlsOptions | None:
        """The client proxy's HTTPS port's TLS (the internal TLS certificate), None when it has no HTTPS port."""
        if not self.settings.client_proxy_https_port:
            return None
        proxy = self.client_proxy
        return InternalTlsOptions(
            self.settings.root, on_change=lambda der: setattr(proxy, "internal_cert", der), identity=self.internal_tls
        )

    @property
    def client_proxy_https_port(self) -> int | None:
        """The port the client proxy's HTTPS side listens on; None without one."""
        if not self.settings.client_proxy_https_port or len(self._ports) < 3:
            return None
        port: int = self._ports[2].getHost().port
        return port

    @property
    def client_proxy_port(self) -> int:
        """The port the client proxy listens on (useful when configured as 0)."""
        port: int = self._ports[0].getHost().port
        return port

    @property
    def server_proxy_port(self) -> int:
        """The port the server proxy listens on."""
        port: int = self._ports[1].getHost().port
        return port

    def restart_ocsp(self) -> None:
        """Pick up new certificates or a new global configuration (after registration, renewal)."""
        self._start_ocsp()

    def stopService(self) -> defer.Deferred[None]:
        """Stop listening, then stop the parts (the message log drains last)."""
        if self._poll is not None and self._poll.running:
            self._poll.stop()
        if self.ocsp is not None:
            self.ocsp.stop()
        self.link.close()
        self.server_proxy.close()
        self.token_workers.stop()
        if self.cluster_replay is not None:
            self.cluster_replay.close()
        stopping: list[defer.Deferred[Any]] = [defer.maybeDeferred(port.stopListening) for port in self._ports]
        self._ports = []

        def stop_parts(_: object) -> defer.Deferred[None]:
            stopped: defer.Deferred[None] = service.MultiService.stopService(self)  # type: ignore[no-untyped-call]
            return stopped

        return defer.gatherResults(stopping).addBoth(stop_parts)


def make_service(reactor: Any, settings: ServerSettings, worker: WorkerSlot | None = None) -> SecurityServerService:
    """The security server in ``settings.root`` as a Twisted service (as worker ``worker`` of several)."""
    return SecurityServerService(reactor, settings, worker)
