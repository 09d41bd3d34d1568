"""Run one security server as ``fedbus server run`` does, with the evidence services and the benchmark's levers.

``python bench/ss_launcher.py --dir DIR --config INI [--synchronous FULL|NORMAL] [--max-idle N] [--no-evidence]
[--cache-ocsp] [--cprofile FILE] [--tracemalloc FILE]``

* The service is built exactly as ``fedbus server run`` builds it (``security_server.service.make_service``
  with the layered INI configuration and structlog set up the same way).
* Batch timestamping, the archiver and ``/asic`` (issue 7, ``messagelog.evidence_services``) run with the
  ``[messagelog]`` settings of the INI files: as ``make_service`` wires them, or added here after the message-log
  writer by a build whose ``make_service`` does not yet; ``--no-evidence`` takes them out of the service tree
  before it starts (nothing is timestamped or archived, the writer gets no admission check).
* Levers the service has no setting for yet, for before/after measurements only: ``--synchronous`` sets the
  message log's SQLite ``synchronous`` (the service's default is FULL), ``--max-idle`` the number of idle
  mutual-TLS connections the client side keeps per peer (the default is 8; 0 opens a new connection for every
  exchange). Both are applied before the service starts, so nothing has been opened with the defaults.
  ``--cache-ocsp`` keeps the result of checking an OCSP response (decoding, the responder's signature, the
  certificate's issuer) for up to a second and redoes only the time checks (fresh, not from the future, before
  nextUpdate) on every use: a stand-in for caching verified OCSP responses, to measure what that would buy.

* For diagnosis: ``--cprofile FILE`` profiles the whole run with cProfile (stats written at exit);
  ``--tracemalloc FILE`` writes the 30 allocation sites that grew most between start and exit.

It prints one JSON line ``{"event": "bench_server_ready", ...}`` saying what was on, then runs until SIGTERM.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cryptography import x509  # noqa: E402

from security_server.configfile import load_config  # noqa: E402
from security_server.core.config import LoggingConfig  # noqa: E402
from security_server.core.trust import DEFAULT_CLOCK_SKEW_SECONDS, DEFAULT_OCSP_FRESHNESS_SECONDS, OcspStatus  # noqa: E402
from security_server.logconfig import configure_logging  # noqa: E402
from security_server.messagelog.evidence_services import (  # noqa: E402
    EvidenceServices,
    EvidenceSettings,
    make_evidence_services,
)
from security_server.messagelog.store import Synchronous  # noqa: E402
from security_server.service import SecurityServerService, ServerSettings, make_service  # noqa: E402


class CachedOcspReads:
    """``read_ocsp_response`` with its time-independent work remembered for ``ttl`` seconds (see ``--cache-ocsp``)."""

    def __init__(self, read: Callable[..., OcspStatus], ttl: float = 1.0) -> None:
        self._read = read
        self._ttl = ttl
        self._known: dict[tuple[Any, ...], tuple[OcspStatus, datetime]] = {}

    def __call__(self, ocsp_der: bytes, cert: x509.Certificate, issuer: x509.Certificate, now: datetime,
                 **options: Any) -> OcspStatus:
        """The cached status when it was checked under a second ago and its times still hold at ``now``."""
        trusted = tuple(t.signature for t in options.get("trusted_responders", ()))
        key = (ocsp_der, cert.signature, issuer.signature, options.get("freshness_seconds"),
               options.get("skew_seconds"), options.get("check_next_update", True), trusted)
        known = self._known.get(key)
        if known is not None and timedelta(0) <= now - known[1] < timedelta(seconds=self._ttl):
            status = known[0]
            skew = timedelta(seconds=options.get("skew_seconds", DEFAULT_CLOCK_SKEW_SECONDS))
            freshness = timedelta(seconds=options.get("freshness_seconds", DEFAULT_OCSP_FRESHNESS_SECONDS))
            next_ok = (not options.get("check_next_update", True) or status.next_update is None
                       or status.next_update >= now - skew)
            if now - freshness <= status.this_update <= now + skew and next_ok:
                return status
        status = self._read(ocsp_der, cert, issuer, now, **options)
        if len(self._known) > 1000:
            self._known.clear()
        self._known[key] = (status, now)
        return status


def cache_ocsp_reads() -> None:
    """Route every OCSP check of the security server through one :class:`CachedOcspReads`."""
    from security_server.core import peerauth, trust
    from security_server.signer import ocsp_client

    cached = CachedOcspReads(trust.read_ocsp_response)
    for module in (trust, peerauth, ocsp_client):  # check_ocsp_response finds trust.read_ocsp_response at call time
        setattr(module, "read_ocsp_response", cached)


def _has_evidence(service: SecurityServerService) -> bool:
    """Whether ``make_service`` already put the evidence services into the tree."""
    return any(isinstance(child, EvidenceServices) for child in service)


def build(reactor: Any, directory: Path, config_file: Path, *, synchronous: Synchronous | None,
          max_idle: int | None, evidence: bool, cache_ocsp: bool = False) -> tuple[SecurityServerService, dict[str, Any]]:
    """The service for ``directory`` with the levers applied, and a description of what is on."""
    if cache_ocsp:
        cache_ocsp_reads()
    config = load_config("security-server", extra=config_file)
    configure_logging(LoggingConfig.from_config(config))
    settings = ServerSettings.from_config(directory, config)
    service = make_service(reactor, settings)
    wired_by_service = _has_evidence(service)
    timestamper = None
    if wired_by_service:
        evidence_services = next(child for child in service if isinstance(child, EvidenceServices))
        if evidence:
            timestamper = evidence_services.timestamper
        else:  # not started, so the writer gets no admission check and nothing is timestamped or archived
            service.removeService(evidence_services)  # type: ignore[no-untyped-call]
    elif evidence:
        services = make_evidence_services(
            reactor, service.message_log, service.conf_client.current, service.context.server_conf,
            EvidenceSettings.from_config(directory, config),
        )
        services.setServiceParent(service)  # type: ignore[no-untyped-call]  # after the writer: starts after it
        timestamper = services.timestamper
    if synchronous is not None:
        service.message_log._synchronous = synchronous  # bench lever: no setting for it yet
    if max_idle is not None:
        service.link._max_idle = max_idle  # bench lever: no setting for it yet
    described = {
        "event": "bench_server_ready",
        "evidence": "off" if timestamper is None else ("service" if wired_by_service else "launcher"),
        "timestamp_interval_seconds": timestamper.interval_seconds() if timestamper is not None else None,
        "synchronous": str(service.message_log._synchronous),
        "max_idle_per_peer": service.link._max_idle,
        "cache_ocsp": cache_ocsp,
    }
    return service, described


def main() -> None:
    """Parse the command line, start the service, run the reactor until SIGTERM."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", type=Path, required=True)
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--synchronous", choices=[s.value for s in Synchronous])
    parser.add_argument("--max-idle", type=int)
    parser.add_argument("--no-evidence", action="store_true")
    parser.add_argument("--cache-ocsp", action="store_true")
    parser.add_argument("--cprofile", type=Path, help="profile the whole run with cProfile; stats written here at exit")
    parser.add_argument("--tracemalloc", type=Path,
                        help="trace allocations; the 30 biggest sites still allocated are written here at exit")
    args = parser.parse_args()
    from twisted.internet import reactor as global_reactor

    reactor: Any = global_reactor
    service, described = build(
        reactor, args.dir, args.config,
        synchronous=Synchronous(args.synchronous) if args.synchronous else None,
        max_idle=args.max_idle, evidence=not args.no_evidence, cache_ocsp=args.cache_ocsp,
    )
    if args.tracemalloc is not None:
        import tracemalloc

        tracemalloc.start(8)
        started = tracemalloc.take_snapshot()

        def write_allocations() -> None:
            grown = tracemalloc.take_snapshot().compare_to(started, "traceback")[:30]
            args.tracemalloc.write_text("\n\n".join(
                f"{stat.size_diff / 1024:.1f} KiB in {stat.count_diff} blocks\n" + "\n".join(stat.traceback.format())
                for stat in grown
            ), encoding="utf-8")

        reactor.addSystemEventTrigger("before", "shutdown", write_allocations)
    if args.cprofile is not None:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
        def write_profile() -> None:
            profiler.disable()
            profiler.dump_stats(args.cprofile)

        reactor.addSystemEventTrigger("after", "shutdown", write_profile)
    service.startService()
    print(json.dumps(described), flush=True)
    reactor.addSystemEventTrigger("before", "shutdown", service.stopService)
    reactor.run()


if __name__ == "__main__":
    main()
