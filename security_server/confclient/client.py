"""The configuration client: downloads, verifies and swaps in the global configuration on an interval.

Following X-Road's confclient (pr-gconf §2.6): GET the signed directory from the anchor's download URL,
verify its signature against the anchor, download every file it lists and check each digest and the
instance, then replace the local copy atomically and make the new :class:`GlobalConf` current. A download
that fails anywhere changes nothing: the previous configuration keeps serving until its own expiry, after
which :meth:`ConfClient.current` raises :class:`GlobalConfOutdated` for every request.

Everything a server takes from the global configuration is read from :meth:`ConfClient.current` when it is
needed, so a new configuration governs the next decision without a restart (its own expiry included). A part
that plans ahead from a value (the OCSP refresh schedule, the timestamping interval) also registers with
:meth:`ConfClient.on_applied` to re-plan as soon as a new configuration is made current (issue 22).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urljoin

import structlog
from twisted.application import service
from twisted.internet import defer
from twisted.internet.task import LoopingCall
from twisted.internet.threads import deferToThreadPool
from twisted.web.client import Agent, HTTPConnectionPool

from security_server.confclient import bundle as bundles
from security_server.core.errors import BusError, GlobalConfOutdated, IoError, NetworkError
from security_server.core.globalconf import ConfigurationAnchor, GlobalConf
from security_server.edge.http_fetch import fetch

log = structlog.get_logger()

MAX_DIRECTORY_BYTES = 1024 * 1024
MAX_FILE_BYTES = 16 * 1024 * 1024
DOWNLOAD_TIMEOUT_SECONDS = 30.0
"""One GET (directory or file), whole: a source that stalls must not hold the refresh lock for ever."""


@dataclass(frozen=True, slots=True)
class DownloadResult:
    """What one refresh did."""

    applied: bool
    error: BusError | None = None


class ConfClient(service.Service):
    """Keeps the server's global configuration current; the proxies call :meth:`current` per request."""

    def __init__(
        self,
        reactor: Any,
        anchor: ConfigurationAnchor,
        store_path: Path,
        *,
        interval_seconds: float = 60.0,
        agent: Any | None = None,
        clock: Any | None = None,
    ) -> None:
        self.reactor = reactor
        self._clock = clock if clock is not None else reactor  # IReactorTime; tests step it to reach the expiry
        self.anchor = anchor
        self.store_path = store_path
        self.interval_seconds = interval_seconds
        self._pool = HTTPConnectionPool(reactor, persistent=False)  # type: ignore[no-untyped-call]
        self._agent = agent if agent is not None else Agent(reactor, pool=self._pool, connectTimeout=10)  # type: ignore[no-untyped-call]
        self._conf: GlobalConf | None = None
        self._loop: LoopingCall | None = None
        self._lock = defer.DeferredLock()  # one refresh at a time: the loop and an admin's "refresh now" may meet
        self._listeners: list[Callable[[GlobalConf], None]] = []
        self.last_error: BusError | None = None

    # --- what the proxies ask -------------------------------------------------------------------------------

    def now(self) -> datetime:
        """The reactor's time as an aware UTC datetime."""
        return datetime.fromtimestamp(self._clock.seconds(), tz=timezone.utc)

    def current(self) -> GlobalConf:
        """The configuration in force; :class:`GlobalConfOutdated` if there is none or it has expired."""
        conf = self._conf
        if conf is None:
            raise GlobalConfOutdated("no valid global configuration", reason="nothing downloaded yet")
        conf.check_valid(self.now())
        return conf

    @property
    def healthy(self) -> bool:
        """True while a configuration is in force and unexpired (for the health check)."""
        return self._conf is not None and not self._conf.is_expired(self.now())

    def on_applied(self, listener: Callable[[GlobalConf], None]) -> None:
        """Call ``listener`` with every configuration made current from now on (a download applied, the stored
        copy loaded); a listener that fails is logged and never stops the configuration from applying."""
        self._listeners.append(listener)

    def _make_current(self, conf: GlobalConf) -> None:
        self._conf = conf
        for listener in list(self._listeners):
            try:
                listener(conf)
            except Exception as err:  # noqa: BLE001 - a listener's bug must not undo or stop the swap
                log.error("global_conf_listener_failed", listener=repr(listener), error=repr(err))

    # --- lifecycle ------------------------------------------------------------------------------------------

    def load_stored(self) -> None:
        """Load and re-verify the stored copy, if any; a bad or expired copy is ignored (and logged)."""
        try:
            stored = bundles.load(self.store_path)
            if stored is None:
                return
            conf = bundles.assemble(stored, self.anchor, self.now())
            log.info("global_conf_loaded", expires=conf.expires_at.isoformat())
            self._make_current(conf)
        except BusError as err:
            log.warning("stored_global_conf_refused", **err.log_fields())

    def startService(self) -> None:
        """Load the stored copy and start refreshing every interval."""
        service.Service.startService(self)  # type: ignore[no-untyped-call]
        self.load_stored()
        self._loop = LoopingCall(self.refresh)
        self._loop.clock = self._clock
        self._loop.start(self.interval_seconds, now=True)

    def stopService(self) -> defer.Deferred[None]:
        """Stop refreshing and drop pooled connections."""
        service.Service.stopService(self)  # type: ignore[no-untyped-call]
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        closing: defer.Deferred[None] = self._pool.closeCachedConnections()  # type: ignore[no-untyped-call]
        return closing

    # --- downloading ----------------------------------------------------------------------------------------

    @defer.inlineCallbacks
    def refresh(self) -> Any:
        """Download, verify and apply once; never raises (a failure is logged and kept in ``last_error``)."""
        try:
            yield self._lock.run(self._download_and_apply)
        except BusError as err:
            self.last_error = err
            log.warning("global_conf_download_failed", **err.log_fields())
            return DownloadResult(False, err)
        except Exception as err:  # noqa: BLE001 - any failure must leave the old configuration in force
            wrapped = IoError("global configuration download failed", reason=repr(err))
            self.last_error = wrapped
            log.warning("global_conf_download_failed", **wrapped.log_fields())
            return DownloadResult(False, wrapped)
        self.last_error = None
        return DownloadResult(True)

    @defer.inlineCallbacks
    def _download_and_apply(self) -> Any:
        errors: list[BusError] = []
        for source in self.anchor.sources:
            try:
                content_type, directory = yield self._get(source.download_url, MAX_DIRECTORY_BYTES)
                verified = bundles.verify_directory(content_type, directory, self.anchor, self.now())
                files: dict[str, bytes] = {}
                for entry in verified.entries:
                    url = urljoin(source.download_url, entry.content_location)
                    _, files[entry.content_location] = yield self._get(url, MAX_FILE_BYTES)
                downloaded = bundles.ConfBundle(content_type, directory, files)
                conf = bundles.assemble(downloaded, self.anchor, self.now())
            except BusError as err:
                errors.append(err)
                continue
            yield deferToThreadPool(self.reactor, self.reactor.getThreadPool(), bundles.save, self.store_path, downloaded)
            log.info("global_conf_applied", source=source.download_url, expires=conf.expires_at.isoformat())
            self._make_current(conf)
            return
        raise errors[-1] if errors else NetworkError("the anchor lists no configuration source")

    @defer.inlineCallbacks
    def _get(self, url: str, max_bytes: int) -> Any:
        answer = yield fetch(
            self._agent,
            self.reactor,  # the network's time: a test may hold ``clock`` still to reach an expiry
            url,
            what="configuration source",
            max_bytes=max_bytes,
            headers={"user-agent": "fedbus-confclient"},
            timeout_seconds=DOWNLOAD_TIMEOUT_SECONDS,
        )
        return answer.content_type, answer.body
