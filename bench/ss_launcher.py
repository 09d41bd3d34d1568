"""Run one security server as ``fedbus server run`` does, with the evidence services and the benchmark's levers.

``python bench/ss_launcher.py --dir DIR --config INI [--synchronous FULL|NORMAL] [--max-idle N] [--no-evidence]
[--no-verdict-cache] [--no-batch-signing] [--agent-provider-client] [--cprofile FILE] [--tracemalloc FILE]``

* The service is built exactly as ``fedbus server run`` builds it (``security_server.service.make_service``
  with the layered INI configuration and structlog set up the same way).
* Batch timestamping, the archiver and ``/asic`` (issue 7, ``messagelog.evidence_services``) run with the
  ``[messagelog]`` settings of the INI files: as ``make_service`` wires them, or added here after the message-log
  writer by a build whose ``make_service`` does not yet; ``--no-evidence`` takes them out of the service tree
  before it starts (nothing is timestamped or archived, the writer gets no admission check).
* Levers, for before/after measurements: ``--synchronous`` overrides ``[messagelog] synchronous`` (default FULL),
  ``--max-idle`` overrides ``[server] peer-pool-size``, the idle mutual-TLS connections kept per peer (default
  64; 0 opens a new connection for every exchange). ``--no-verdict-cache`` switches off what the trust checks
  remember between messages (decoded and verified OCSP responses, certificate signatures checked in a path,
  certificates parsed from signatures): the "before" of that lever. ``--no-batch-signing`` overrides
  ``[server] batch-signing`` (default on: the messages of one reactor turn share one signature).
  ``--agent-provider-client`` calls SOAP providers with Twisted's Agent instead of the lean pooled client.
  ``--no-opmon`` overrides ``[opmon] enabled`` (default on: every exchange leaves an operational record and its
  metrics): the "before" of what monitoring costs (issue 15: within the run's noise). ``--no-heap-trim`` sets
  ``[server] heap-trim-seconds = 0`` (freed heap memory is never given back). ``--workers N`` runs the
  server as a parent and N worker processes (issue 18, ``security_server/workers.py``); only the levers held in
  the settings apply to its workers.

* For diagnosis: ``--cprofile FILE`` profiles the whole run with cProfile (stats written at exit);
  ``--census-every SECONDS`` appends a memory census (``bench/memory_census.py``) to ``<dir>/census.jsonl``;
  ``--tracemalloc FILE`` writes the 30 allocation sites that grew most between start and exit.

It prints one JSON line ``{"event": "bench_server_ready", ...}`` saying what was on, then runs until SIGTERM.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from security_server.configfile import load_config  # noqa: E402
from security_server.core.config import LoggingConfig  # noqa: E402
from security_server.gc_tuning import tune_collector  # noqa: E402
from security_server.logconfig import configure_logging  # noqa: E402
from security_server.messagelog.evidence_services import (  # noqa: E402
    EvidenceServices,
    EvidenceSettings,
    make_evidence_services,
)
from security_server.messagelog.store import Synchronous  # noqa: E402
from security_server.proxy.provider_call import AgentProviderClient  # noqa: E402
from security_server.service import SecurityServerService, ServerSettings, make_service  # noqa: E402


def forget_verdicts() -> None:
    """Undo the remembered trust verdicts (the "before" of that lever): every OCSP check decodes the response and
    verifies its signature again, every path check verifies each certificate's signature again."""
    from security_server.core import signature, trust

    for module, name in ((trust, "_ocsp_facts"), (trust, "is_issued_by"), (trust, "_public_key_bits"),
                         (signature, "_parse_cert")):
        setattr(module, name, getattr(module, name).__wrapped__)


def _has_evidence(service: SecurityServerService) -> bool:
    """Whether ``make_service`` already put the evidence services into the tree."""
    return any(isinstance(child, EvidenceServices) for child in service)


def build(reactor: Any, directory: Path, config_file: Path, *, synchronous: Synchronous | None,
          max_idle: int | None, evidence: bool, verdict_cache: bool = True,
          batch_signing: bool | None = None,
          agent_provider_client: bool = False, opmon: bool = True,
          heap_trim: bool = True) -> tuple[SecurityServerService, dict[str, Any]]:
    """The service for ``directory`` with the levers applied, and a description of what is on."""
    if not verdict_cache:
        forget_verdicts()
    config = load_config("security-server", extra=config_file)
    configure_logging(LoggingConfig.from_config(config))
    settings = ServerSettings.from_config(directory, config)
    if synchronous is not None:
        settings = dataclasses.replace(settings, messagelog_synchronous=synchronous)
    if max_idle is not None:
        settings = dataclasses.replace(settings, peer_pool_size=max_idle)
    if batch_signing is not None:
        settings = dataclasses.replace(settings, batch_signing=batch_signing)
    if not opmon:
        settings = dataclasses.replace(settings, monitoring=dataclasses.replace(settings.monitoring, opmon_enabled=False))
    if not heap_trim:
        settings = dataclasses.replace(settings, heap_trim_seconds=0)
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
    if agent_provider_client:  # the "before" of the lean provider client: Twisted's Agent for SOAP providers too
        proxy = service.server_proxy
        proxy.provider_client = AgentProviderClient(reactor, max_response_bytes=settings.limits.max_body_bytes)
    described = {
        "event": "bench_server_ready",
        "evidence": "off" if timestamper is None else ("service" if wired_by_service else "launcher"),
        "timestamp_interval_seconds": timestamper.interval_seconds() if timestamper is not None else None,
        "synchronous": str(settings.messagelog_synchronous),
        "max_idle_per_peer": settings.peer_pool_size,
        "verdict_cache": verdict_cache,
        "batch_signing": settings.batch_signing,
        "provider_client": "agent" if agent_provider_client else "lean",
        "opmon": settings.monitoring.opmon_enabled,
        "heap_trim_seconds": settings.heap_trim_seconds,
        "pkcs11_tokens": [token.name for token in settings.pkcs11_tokens],
    }
    return service, described


def run_workers(reactor: Any, args: argparse.Namespace) -> None:
    """``--workers N``: the parent of N worker processes, with the levers that live in the settings (the in-process
    ones, ``--no-verdict-cache``, ``--agent-provider-client``, ``--no-evidence``, are refused)."""
    if args.no_verdict_cache or args.agent_provider_client or args.no_evidence:
        raise SystemExit("ss_launcher: --workers takes only the settings levers (synchronous, max-idle, batch signing, opmon)")
    from security_server.workers import WorkerSupervisor

    config = load_config("security-server", extra=args.config)
    logging = LoggingConfig.from_config(config)
    configure_logging(logging)
    settings = dataclasses.replace(ServerSettings.from_config(args.dir, config), workers=args.workers)
    if args.synchronous:
        settings = dataclasses.replace(settings, messagelog_synchronous=Synchronous(args.synchronous))
    if args.max_idle is not None:
        settings = dataclasses.replace(settings, peer_pool_size=args.max_idle)
    if args.no_batch_signing:
        settings = dataclasses.replace(settings, batch_signing=False)
    if args.no_opmon:
        settings = dataclasses.replace(settings, monitoring=dataclasses.replace(settings.monitoring, opmon_enabled=False))
    if args.no_heap_trim:
        settings = dataclasses.replace(settings, heap_trim_seconds=0)
    supervisor = WorkerSupervisor(reactor, settings, logging=logging)
    supervisor.startService()
    print(json.dumps({"event": "bench_server_ready", "workers": args.workers, "evidence": "service",
                      "synchronous": str(settings.messagelog_synchronous), "max_idle_per_peer": settings.peer_pool_size,
                      "batch_signing": settings.batch_signing, "opmon": settings.monitoring.opmon_enabled}), flush=True)
    reactor.addSystemEventTrigger("before", "shutdown", supervisor.stopService)
    reactor.run()


def main() -> None:
    """Parse the command line, start the service, run the reactor until SIGTERM."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", type=Path, required=True)
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--synchronous", choices=[s.value for s in Synchronous])
    parser.add_argument("--max-idle", type=int)
    parser.add_argument("--no-evidence", action="store_true")
    parser.add_argument("--no-verdict-cache", action="store_true")
    parser.add_argument("--no-batch-signing", action="store_true")
    parser.add_argument("--agent-provider-client", action="store_true")
    parser.add_argument("--no-opmon", action="store_true")
    parser.add_argument("--no-heap-trim", action="store_true",
                        help="never give freed heap memory back ([server] heap-trim-seconds = 0)")
    parser.add_argument("--no-gc-tuning", action="store_true",
                        help="keep CPython's collector settings (security_server/gc_tuning.py, as `fedbus server run` does)")
    parser.add_argument("--workers", type=int, default=1,
                        help="worker processes ([server] workers, security_server/workers.py); >1: settings levers only")
    parser.add_argument("--cprofile", type=Path, help="profile the whole run with cProfile; stats written here at exit")
    parser.add_argument("--census-every", type=float, default=0.0, metavar="SECONDS",
                        help="write a memory census (bench/memory_census.py) to <dir>/census.jsonl every SECONDS")
    parser.add_argument("--tracemalloc", type=Path,
                        help="trace allocations; the 30 biggest sites still allocated are written here at exit")
    args = parser.parse_args()
    from twisted.internet import reactor as global_reactor

    reactor: Any = global_reactor
    if args.workers > 1:
        run_workers(reactor, args)
        return
    service, described = build(
        reactor, args.dir, args.config,
        synchronous=Synchronous(args.synchronous) if args.synchronous else None,
        max_idle=args.max_idle, evidence=not args.no_evidence,
        verdict_cache=not args.no_verdict_cache,
        batch_signing=False if args.no_batch_signing else None,
        agent_provider_client=args.agent_provider_client,
        opmon=not args.no_opmon,
        heap_trim=not args.no_heap_trim,
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
    if args.census_every > 0:
        from twisted.internet.task import LoopingCall

        from bench.memory_census import write_census

        census_out = (args.dir / "census.jsonl").open("a", encoding="utf-8")
        referrers_of = tuple(name for name in os.environ.get("FEDBUS_CENSUS_REFERRERS", "").split(",") if name)
        def heap_figures() -> dict[str, Any]:
            trimmer = service.heap_trimmer
            if trimmer is None:
                return {}
            return {"heap_collections": trimmer.collections, "heap_last_collection_ms": trimmer.last_collection_ms,
                    "heap_trims": trimmer.trims, "heap_trims_released": trimmer.released}

        LoopingCall(write_census, census_out, referrers_of, heap_figures).start(args.census_every, now=False)
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

    def report_signing() -> None:
        signer = service.signer
        print(json.dumps({"event": "bench_server_stopping", "signatures_made": signer.signatures_made,
                          "messages_signed": signer.messages_signed}), flush=True)

    reactor.addSystemEventTrigger("before", "shutdown", report_signing)
    reactor.addSystemEventTrigger("before", "shutdown", service.stopService)
    if not args.no_gc_tuning:
        reactor.callWhenRunning(tune_collector)  # as `fedbus server run`
    reactor.run()


if __name__ == "__main__":
    main()
