"""The central registry as a Twisted service: configuration, OCSP and TSA over HTTP, registrations over HTTPS.

Layout of the registry's working directory (made by ``fedbus registry init``)::

    registry.db        members, servers, trust services, requests, audit trail
    ca/                the development CA (with its OCSP responder and TSA keys), if one was made
    conf-signing/      the key that signs the global configuration, with its self-signed certificate
    tls/               the key and certificate of the HTTPS management endpoint
    published/         the published configuration: internalconf and V3/<generation>/*.xml

The HTTP site serves ``/internalconf`` and the files it lists (pr-gconf), ``/ocsp`` (RFC 6960) and ``/tsa``
(RFC 3161). The HTTPS site serves ``/managementservice``, where security servers POST management requests;
its certificate is published in the private parameters so servers can pin it. The store is only touched
from one worker thread, never from the reactor thread. With ``[healthcheck] port`` set, a plain-HTTP port
answers a load balancer's health check over the registry's parts and Prometheus ``/metrics``
(central_registry/health.py).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, TypeVar

import structlog
from cryptography.hazmat.primitives import serialization
from twisted.application import service
from twisted.internet import defer, ssl
from twisted.internet.task import LoopingCall
from twisted.internet.threads import deferToThreadPool
from twisted.python.failure import Failure
from twisted.python.threadpool import ThreadPool
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request, Site

from central_registry.conf_signing_key import ConfSigningSettings, open_conf_signing_key
from central_registry.management.config import management_config
from central_registry.health import COUNT_INTERVAL, CountedResource, RegistryHealth, RegistryHealthSettings
from central_registry.publisher import DIRECTORY_NAME, Publisher, SelfSignedKey
from central_registry.requests import RegistrationDesk
from central_registry.store import RegistryStore
from central_registry.trust.ca import DevelopmentCA
from central_registry.trust.http_reply import finish, plain_reply, set_header
from central_registry.trust.ocsp_responder import OcspResource
from security_server.core.config import DatabaseConfig, LayeredConfig
from central_registry.trust.serials import TSA_SEQUENCE, SerialSource, SharedSerials
from central_registry.trust.tsa import SerialCounter, TsaResource
from security_server.core.errors import BusError, InternalError, InvalidHttpMethod, RequestTooLarge
from security_server.edge.health_resource import health_site_root
from security_server.management.config import ManagementConfig

log = structlog.get_logger()
T = TypeVar("T")

MAX_MANAGEMENT_REQUEST_BYTES = 1024 * 1024
_CONF_PATH = re.compile(r"V[0-9]+/[0-9]{20}/[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")
"""A generation's file: its own parts and uploaded optional ones (one path segment, central_registry/admin/
configuration_parts.py)."""


@dataclass(frozen=True, slots=True)
class RegistryPaths:
    """Where each part of a registry's state lives under its working directory."""

    root: Path

    @property
    def database(self) -> Path:
        """The registry database."""
        return self.root / "registry.db"

    @property
    def ca(self) -> Path:
        """The development CA."""
        return self.root / "ca"

    @property
    def conf_signing(self) -> Path:
        """The configuration-signing key."""
        return self.root / "conf-signing"

    @property
    def tls(self) -> Path:
        """The HTTPS key."""
        return self.root / "tls"

    @property
    def published(self) -> Path:
        """The published configuration."""
        return self.root / "published"


@dataclass(frozen=True, slots=True)
class RegistrySettings:
    """Where the registry listens and the URL it publishes (``[registry]`` in conf/central-registry.ini)."""

    root: Path
    host: str = "127.0.0.1"
    http_port: int = 8090
    https_port: int = 8443
    public_host: str = "127.0.0.1"
    health: RegistryHealthSettings = RegistryHealthSettings()
    """The health check and ``/metrics`` port (``[healthcheck]``; 0 = off)."""
    database: DatabaseConfig = DatabaseConfig()
    """Where the registry's store is (``[database] url``): a PostgreSQL database the registry's nodes share."""
    management: ManagementConfig = ManagementConfig(port=4100)
    """Where the management REST API listens (``[management]``, central_registry/management/config.py)."""
    conf_signing: ConfSigningSettings = ConfSigningSettings()
    """Where the configuration-signing key lives (``[conf-signing]``: a file, or a PKCS#11 token; docs/hsm.md)."""

    @classmethod
    def from_config(cls, root: Path, config: LayeredConfig) -> RegistrySettings:
        """Read ``[registry]`` and ``[healthcheck]``."""
        return cls(
            root=root,
            host=config.get_str("registry", "host", "127.0.0.1"),
            http_port=config.get_int("registry", "http-port", 8090, minimum=1, maximum=65535),
            https_port=config.get_int("registry", "https-port", 8443, minimum=1, maximum=65535),
            public_host=config.get_str("registry", "public-host", "127.0.0.1"),
            health=RegistryHealthSettings.from_config(config),
            database=DatabaseConfig.from_config(config),
            management=management_config(config),
            conf_signing=ConfSigningSettings.from_config(config),
        )

    @property
    def public_url(self) -> str:
        """The base URL of the HTTP site as security servers reach it."""
        return f"http://{self.public_host}:{self.http_port}"

    @property
    def management_url(self) -> str:
        """The URL of the HTTPS management endpoint as security servers reach it."""
        return f"https://{self.public_host}:{self.https_port}/managementservice"


class ConfigurationResource(Resource):
    """Serves the signed directory and the files of the generations it may list; nothing else."""

    isLeaf = True

    def __init__(self, folder: Path) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.folder = folder

    def render_GET(self, request: Request) -> bytes:
        """GET /internalconf or /V3/<generation>/<file>; any other path is 404."""
        path = b"/".join((request.prepath or []) + (request.postpath or [])).decode("ascii", "replace")
        if path == DIRECTORY_NAME:
            try:
                body = (self.folder / DIRECTORY_NAME).read_bytes()
            except FileNotFoundError:
                return plain_reply(request, 503, b"no configuration has been published yet\n")
            boundary = body.split(b"\r\n", 1)[0][2:]
            set_header(request, b"content-type", b'multipart/related; charset="UTF-8"; boundary="' + boundary + b'"')
            return body
        if _CONF_PATH.fullmatch(path):
            try:
                body = (self.folder / path).read_bytes()
            except FileNotFoundError:
                return plain_reply(request, 404, b"no such configuration file\n")
            set_header(request, b"content-type", b"application/octet-stream")
            return body
        return plain_reply(request, 404, b"not found\n")


class ManagementResource(Resource):
    """Takes management requests (pr-mserv) over HTTPS and answers with the request's id and status as JSON."""

    isLeaf = True

    def __init__(self, run: Callable[..., defer.Deferred[Any]], desk: RegistrationDesk, clock: Callable[[], datetime]) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self._run = run
        self._desk = desk
        self._clock = clock

    def render_GET(self, request: Request) -> bytes:
        """Management requests are POSTed; GET gets X-Road's invalid_http_method."""
        return self._error(request, InvalidHttpMethod("management requests must be POSTed"))

    def render_POST(self, request: Request) -> bytes | int:
        """Check and queue one request in the worker thread; answer when it is recorded."""
        body = request.content.read(MAX_MANAGEMENT_REQUEST_BYTES + 1) if request.content is not None else b""
        if len(body) > MAX_MANAGEMENT_REQUEST_BYTES:
            return self._error(request, RequestTooLarge("management request is too large"))
        content_type = (request.getHeader(b"content-type") or b"").decode("latin-1")
        now = self._clock()

        def done(record: Any) -> None:
            log.info("management_request_accepted", request_id=record.id, type=str(record.type), status=str(record.status))
            set_header(request, b"content-type", b"application/json")
            finish(request, json.dumps({"id": record.id, "type": str(record.type), "status": str(record.status)}).encode())

        def failed(failure: Failure) -> None:
            error = failure.value if isinstance(failure.value, BusError) else InternalError("internal error")
            log.warning("management_request_refused", **error.log_fields())
            finish(request, self._error(request, error))

        self._run(self._desk.submit, content_type, body, now).addCallbacks(done, failed)
        return NOT_DONE_YET

    @staticmethod
    def _error(request: Request, error: BusError) -> bytes:
        status, headers, body = error.to_rest_error()
        request.setResponseCode(status)
        for name, value in headers.items():
            set_header(request, name.encode("ascii"), value.encode("ascii"))
        return body


class RegistryService(service.Service):
    """Runs the registry's sites and publishes a new configuration every generation interval."""

    def __init__(
        self,
        reactor: Any,
        root: Path,
        *,
        host: str = "127.0.0.1",
        http_port: int = 0,
        https_port: int = 0,
        public_url: str | None = None,
        health: RegistryHealthSettings = RegistryHealthSettings(),
        database_url: str | None = None,
        management: ManagementConfig | None = None,
        conf_signing: ConfSigningSettings = ConfSigningSettings(),
    ) -> None:
        self.reactor = reactor
        self.health_settings = health
        self.database_url = database_url
        self.management = management
        """Where the management REST API listens; None: not served (the tests that do not need it)."""
        self._management: Any = None
        self.conf_signing = conf_signing
        self._public_url = public_url
        self.paths = RegistryPaths(root)
        self.host = host
        self.http_port = http_port
        self.https_port = https_port
        self._pool = ThreadPool(minthreads=1, maxthreads=1, name="registry-store")
        self._ports: list[Any] = []  # IListeningPort; zope interfaces are opaque to mypy
        self._loop: LoopingCall | None = None
        self.store: RegistryStore | None = None
        self.publisher: Publisher | None = None
        self.health = RegistryHealth(
            reactor, run=self.run, store=lambda: self.store, conf_signing=self.paths.conf_signing, ca=self.paths.ca,
            conf_signing_settings=conf_signing,
        )
        self._count_loop = LoopingCall(self.health.read_counts)
        self._count_loop.clock = reactor
        self._health_port: Any = None

    def now(self) -> datetime:
        """The reactor's time as an aware UTC datetime."""
        return datetime.fromtimestamp(self.reactor.seconds(), tz=timezone.utc)

    def run(self, function: Callable[..., T], *args: Any) -> defer.Deferred[T]:
        """Run ``function`` in the store's worker thread."""
        return deferToThreadPool(self.reactor, self._pool, function, *args)

    @property
    def public_url(self) -> str:
        """The base URL of the HTTP site (configuration, OCSP, TSA): as configured, else where it listens."""
        if self._public_url is not None:
            return self._public_url
        return f"http://{self.host}:{self._ports[0].getHost().port}"

    @property
    def management_url(self) -> str:
        """The URL security servers POST management requests to."""
        return f"https://{self.host}:{self._ports[1].getHost().port}/managementservice"

    def startService(self) -> None:
        """Open the store, listen on both sites, publish once and start the generation loop. A directory that
        holds no registry yet, with ``[management]``, serves the management API alone, for X-Road's
        initialisation through it (``POST /api/v1/initialization``); the registry runs at its next start."""
        service.Service.startService(self)  # type: ignore[no-untyped-call]
        self._pool.start()
        if self.management is not None and self.database_url is None and not self.paths.conf_signing.exists():
            self._serve_management(self.management, initialised=False)
            log.info("registry_waiting_for_initialisation", management_port=self.management_port)
            return
        self.store = RegistryStore(self.paths.database, database_url=self.database_url)
        desk = RegistrationDesk(self.store)
        tls_key = SelfSignedKey.load(self.paths.tls)
        conf_key = open_conf_signing_key(self.paths.conf_signing, self.conf_signing)  # a certificate: logged out

        http_root = Resource()  # type: ignore[no-untyped-call]
        conf = ConfigurationResource(self.paths.published)
        _mount(http_root, DIRECTORY_NAME.encode(), conf)
        _mount(http_root, b"V3", conf)
        if self.paths.ca.is_dir():
            self._add_trust_services(http_root)
        https_root = Resource()  # type: ignore[no-untyped-call]
        _mount(https_root, b"managementservice", ManagementResource(self.run, desk, self.now))

        self._ports.append(self.reactor.listenTCP(self.http_port, _site(http_root), interface=self.host))
        context = ssl.CertificateOptions(
            # pyOpenSSL takes cryptography objects directly (its own PKey/X509 are deprecated); Twisted's
            # annotations still name the old types.
            privateKey=tls_key.key,  # type: ignore[arg-type]
            certificate=tls_key.cert,  # type: ignore[arg-type]
            raiseMinimumTo=ssl.TLSVersion.TLSv1_2,
        )
        self._ports.append(self.reactor.listenSSL(self.https_port, _site(https_root), context, interface=self.host))
        tls_der = tls_key.cert_der
        self.publisher = Publisher(
            self.store,
            self.paths.published,
            conf_key,
            public_url=self.public_url,
            management_url=self.management_url,
            management_cert_der=tls_der,
            conf_signing_dir=self.paths.conf_signing,
        )
        if self.database_url:  # a clustered registry: this node is a configuration source of the anchor (issue 19)
            self.store.register_node(f"{self.public_url}/{DIRECTORY_NAME}", self.publisher.signing_cert.public_bytes(
                serialization.Encoding.DER))
        if self.publisher.logged_out:
            log.warning("registry_token_logged_out", hint="log in with its PIN: nothing is signed nor published")
        interval = self.store.settings().generation_interval_seconds
        self._loop = LoopingCall(self.publish_now)
        self._loop.clock = self.reactor
        self._loop.start(interval, now=True).addErrback(lambda f: log.error("publishing_stopped", error=f.getErrorMessage()))
        self._count_loop.start(COUNT_INTERVAL, now=True)
        if self.health_settings.port:
            self.serve_health(self.health_settings.port, self.health_settings.interface)
        if self.management is not None:
            self._serve_management(self.management)
        log.info("registry_started", http=self.public_url, management=self.management_url)

    def serve_health(self, port: int, interface: str = "127.0.0.1") -> int:
        """Listen for the health check and ``/metrics`` on ``port`` (0: any free one); the port listened on."""
        if self._health_port is not None:
            raise RuntimeError("the health endpoint is already listening")
        root = health_site_root(self.health.checker, self.health.metrics.render, maintenance=False)
        self._health_port = self.reactor.listenTCP(port, _site(root), interface=interface)
        return int(self._health_port.getHost().port)

    def _serve_management(self, config: ManagementConfig, *, initialised: bool = True) -> None:
        """Listen for the management REST API (central_registry/management); its operations run in the store's
        worker thread, on the running registry's store (before initialisation: on a store opened per call)."""
        # Imported here: the API's operations use central_registry.admin, which imports this module's RegistryPaths.
        from central_registry.management.context import lending_store, opening_store
        from central_registry.management.server import RegistryManagementService, make_registry_management_site

        def in_store_thread(work: Callable[[], T]) -> defer.Deferred[T]:
            return self.run(work)

        site = make_registry_management_site(
            self.reactor, self.paths.root, config, executor=in_store_thread,
            open_store=lending_store(lambda: self.store) if initialised else opening_store(self.paths.database),
            now=self.now, database_url=self.database_url, publisher=lambda: self.publisher,
        )
        self._management = RegistryManagementService(self.reactor, site, self.paths.root, config)
        self._management.startService()

    @property
    def management_port(self) -> int:
        """The port the management API listens on (useful when configured as 0)."""
        if self._management is None:
            raise RuntimeError("the management API is not served")
        port: int = self._management.port
        return port

    def _add_trust_services(self, root: Resource) -> None:
        try:
            ca = DevelopmentCA.open(self.paths.ca)
        except BusError:
            return
        metrics = self.health.metrics
        _mount(root, b"ocsp", CountedResource(OcspResource(self.reactor, ca.state), metrics.ocsp_answered))
        try:
            tsa_key, tsa_cert = ca.tsa_credentials()
        except BusError:
            return
        on_file = SerialCounter(self.paths.ca / "tsa-serial.json")
        counter: SerialSource = on_file
        if self.database_url:  # clustered: serials from the shared database, above what the file handed out
            counter = SharedSerials(self.database_url, TSA_SEQUENCE, floor=on_file.upcoming())
        _mount(root, b"tsa", CountedResource(TsaResource(self.reactor, tsa_key, tsa_cert, counter), metrics.tsa_answered))

    def publish_now(self) -> defer.Deferred[None]:
        """Generate, sign and publish a configuration in the worker thread."""
        publisher = self.publisher
        assert publisher is not None
        now = self.now()

        def published(publication: Any) -> None:
            log.info("configuration_published", generation=publication.generation, expires=publication.expires_at.isoformat())
            self.health.published(publication.expires_at)

        def failed(failure: Failure) -> None:
            log.error("configuration_publishing_failed", error=failure.getErrorMessage())
            self.health.publishing_failed(failure.getErrorMessage())

        return self.run(publisher.publish, now).addCallbacks(published, failed)

    def stopService(self) -> defer.Deferred[None]:
        """Stop the loops and the sites, let the store thread finish its work, then close the store."""
        service.Service.stopService(self)  # type: ignore[no-untyped-call]
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        if self._count_loop.running:
            self._count_loop.stop()
        ports = self._ports + ([self._health_port] if self._health_port is not None else [])
        stopping: list[defer.Deferred[Any]] = [defer.maybeDeferred(port.stopListening) for port in ports]
        if self._management is not None:
            stopping.append(defer.maybeDeferred(self._management.stopService))
            self._management = None
        self._ports, self._health_port = [], None

        def close(_: object) -> None:
            # The store thread first: stop() lets the work already queued (a publication under way) finish and joins
            # the thread, so the store is never closed under a running statement (that crashed the process once).
            self._pool.stop()
            if self.store is not None:
                self.store.close()

        return defer.gatherResults(stopping).addBoth(close)


def _mount(parent: Resource, name: bytes, child: Resource) -> None:
    """Attach ``child`` under ``name`` (typed wrapper: mypy cannot see that a Resource provides IResource)."""
    parent.putChild(name, child)  # type: ignore[arg-type]


def _site(root: Resource) -> Site:
    """A web site without an access log (requests are logged as structlog events instead)."""
    site = Site(root)  # type: ignore[no-untyped-call]
    site.noisy = False
    return site
