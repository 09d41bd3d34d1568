"""The evidence side of a running security server in one call: timestamper, archiver and ``/asic``.

``make_evidence_services`` wires what issue 7 adds to the message log around the service's existing
:class:`MessageLogWriter`: the batch :class:`Timestamper` (TSAs and interval from the global configuration),
the :class:`Archiver` (archives into ``<root>/archive`` by default), and the :class:`AsicResource` for the
client proxy's ``/asic`` path, restricted to the server's own clients. The returned
:class:`EvidenceServices` is a ``MultiService``: add it to the server's service tree *after* the writer, so
it starts after and stops before the writer (Twisted stops children in reverse order).

Settings come from the ``[messagelog]`` section of the INI files (X-Road's property names)::

    timestamp-interval-seconds          unset: from the global configuration (X-Road default 60)
    timestamp-records-limit             10000
    acceptable-timestamp-failure-period 14400   (0 disables the check)
    timestamp-immediately               false
    archive-dir                         <root>/archive
    archive-interval-seconds            21600
    clean-interval-seconds              43200
    keep-records-for-days               30
    archive-max-filesize                33554432
    archive-in-separate-process         true    (fedbus: read and build archives in a child process, off the
                                                 proxies' interpreter lock; false: in the thread pool)
    asic-allow-remote                   false
    message-body-logging                true    (false: bodies are not logged, core/body_logging.py)
    enabled-body-logging-local-producer-subsystems     (exceptions when false; INSTANCE/CLASS/MEMBER/SUBSYSTEM, ...)
    enabled-body-logging-remote-producer-subsystems
    disabled-body-logging-local-producer-subsystems    (exceptions when true)
    disabled-body-logging-remote-producer-subsystems

The body-logging choice is handed to the writer (``MessageLogWriter.body_logging``), which the proxies consult when
they build a record: "local producer" subsystems are ours (the server proxy's side), "remote" ones other members'.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from twisted.application.service import MultiService

from security_server.core.body_logging import LOG_EVERY_BODY, BodyLogging, parse_subsystems
from security_server.core.config import LayeredConfig
from security_server.core.errors import BusError
from security_server.core.globalconf import GlobalConf
from security_server.core.identifiers import ClientId
from security_server.messagelog.archiver import Archiver, ArchiverSettings
from security_server.messagelog.asic_resource import AsicResource
from security_server.messagelog.timestamper import Timestamper, TimestamperSettings, timestamper_for_global_conf
from security_server.messagelog.writer import MessageLogWriter
from security_server.serverconf.store import ServerConfSnapshot

SECTION = "messagelog"


@dataclass(frozen=True, slots=True)
class EvidenceSettings:
    """Settings of the timestamper, the archiver and ``/asic``."""

    timestamper: TimestamperSettings
    archiver: ArchiverSettings
    allow_remote_asic: bool = False
    body_logging: BodyLogging = LOG_EVERY_BODY

    @classmethod
    def defaults(cls, root: Path) -> EvidenceSettings:
        """X-Road's defaults, archives under ``root/archive`` built in a child process."""
        return cls(TimestamperSettings(), ArchiverSettings(archive_dir=root / "archive", separate_process=True))

    @classmethod
    def from_config(cls, root: Path, config: LayeredConfig) -> EvidenceSettings:
        """Read the ``[messagelog]`` section (see the module docstring)."""
        interval = config.get_int(SECTION, "timestamp-interval-seconds", 0, minimum=0, maximum=86400)
        timestamper = TimestamperSettings(
            interval_seconds=float(interval) if interval else None,
            max_records=config.get_int(SECTION, "timestamp-records-limit", 10_000, minimum=1, maximum=1_000_000),
            grace_period_seconds=float(
                config.get_int(SECTION, "acceptable-timestamp-failure-period", 14_400, minimum=0, maximum=10**9)
            ),
            immediate=config.get_bool(SECTION, "timestamp-immediately", False),
        )
        archive_dir = config.get_str(SECTION, "archive-dir", "")
        archiver = ArchiverSettings(
            archive_dir=Path(archive_dir) if archive_dir else root / "archive",
            archive_interval_seconds=float(
                config.get_int(SECTION, "archive-interval-seconds", 21_600, minimum=1, maximum=10**9)
            ),
            clean_interval_seconds=float(config.get_int(SECTION, "clean-interval-seconds", 43_200, minimum=1, maximum=10**9)),
            keep_records_seconds=86_400.0 * config.get_int(SECTION, "keep-records-for-days", 30, minimum=0, maximum=100_000),
            max_archive_bytes=config.get_int(SECTION, "archive-max-filesize", 32 * 1024 * 1024, minimum=1024, maximum=2**34),
            # A running server archives in a child process: in the thread pool, building containers (zip, deflate and
            # XML in Python) holds the interpreter lock and the proxies ran at 30 % (docs/evidence.md, issue 23).
            separate_process=config.get_bool(SECTION, "archive-in-separate-process", True),
        )

        def listed(kind: str, side: str) -> frozenset[ClientId]:
            name = f"{kind}-body-logging-{side}-producer-subsystems"
            return parse_subsystems(config.get_str(SECTION, name, ""), f"[{SECTION}] {name}")

        body_logging = BodyLogging(
            enabled=config.get_bool(SECTION, "message-body-logging", True),
            enabled_local=listed("enabled", "local"),
            enabled_remote=listed("enabled", "remote"),
            disabled_local=listed("disabled", "local"),
            disabled_remote=listed("disabled", "remote"),
        )
        return cls(timestamper, archiver, config.get_bool(SECTION, "asic-allow-remote", False), body_logging)


class EvidenceServices(MultiService):
    """Timestamper and archiver as one service, and the ``/asic`` resource to mount on the client proxy."""

    def __init__(self, timestamper: Timestamper, archiver: Archiver, asic: AsicResource) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # Twisted leaves it unannotated
        self.timestamper = timestamper
        self.archiver = archiver
        self.asic = asic
        timestamper.setServiceParent(self)  # type: ignore[no-untyped-call]
        archiver.setServiceParent(self)  # type: ignore[no-untyped-call]


def make_evidence_services(
    reactor: Any,
    writer: MessageLogWriter,
    global_conf: Callable[[], GlobalConf],
    server_conf: Callable[[], ServerConfSnapshot],
    settings: EvidenceSettings,
    *,
    stamping_here: bool = True,
) -> EvidenceServices:
    """Build the evidence services around ``writer`` (see the module docstring). ``stamping_here=False`` (a worker
    other than 0, whose shard worker 0 timestamps): ``/asic`` does not ask this process's timestamper to stamp."""
    timestamper = timestamper_for_global_conf(
        reactor, writer, global_conf, settings.timestamper,
        chosen=lambda: [tsp.url for tsp in server_conf().timestamping_services],
    )
    archiver = Archiver(reactor, writer, settings.archiver)
    writer.body_logging = settings.body_logging

    def is_own_client(client: ClientId) -> bool:
        try:
            return server_conf().client(client) is not None
        except BusError:
            return False

    asic = AsicResource(
        reactor, writer, is_own_client, timestamper=timestamper if stamping_here else None,
        allow_remote=settings.allow_remote_asic,
    )
    return EvidenceServices(timestamper, archiver, asic)
