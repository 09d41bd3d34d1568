"""A child process for the evidence crash test: a security server's message log under load, with its evidence services.

Usage: ``python evidence_child.py MODE WORK_DIR``.

- ``run``: make a federation (CA, TSA) in ``WORK_DIR/pki``, write the verification configuration to
  ``WORK_DIR/verificationconf``, serve the TSA on 127.0.0.1, and run the writer (``WORK_DIR/log.db``), the
  timestamper (every 0.05 s) and the archiver (every 0.1 s, into ``WORK_DIR/archive``) while keeping signed
  exchanges in flight for ever. Prints ``ACK <record id> <query id>`` when a record's ``log()`` fired (the
  caller's answer), and ``STATUS <tokens> <archives>`` every 0.05 s, until the parent kills it.
- ``finish``: open the same CA, serve its TSA, and run the evidence services over the same files until every
  record is timestamped and archived; print ``DONE <records> <archives>`` and exit.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Sequence

import structlog
from cryptography import x509
from twisted.internet.defer import Deferred, ensureDeferred
from twisted.internet.task import LoopingCall, deferLater, react
from twisted.python.failure import Failure
from twisted.web.server import Site

from central_registry.trust.ca import DevelopmentCA
from central_registry.trust.tsa import SerialCounter, TsaResource
from security_server.core.logchain import LogEntry, LogRecord
from security_server.messagelog.archiver import Archiver, ArchiverSettings
from security_server.messagelog.timestamper import Timestamper, TimestamperSettings, TsaEndpoint
from security_server.messagelog.tsa_client import TsaClient
from security_server.messagelog.writer import MessageLogWriter

WINDOW = 8
"""Records in flight at once."""
EXCHANGES = 24
"""Distinct signed exchanges made up front and logged again and again (each record gets its own id)."""


def services(reactor: Any, work: Path, ca: DevelopmentCA) -> tuple[MessageLogWriter, Timestamper, Archiver, Any]:
    """Writer, timestamper and archiver over ``work``, and the TSA of ``ca`` listening on loopback."""
    key, cert = ca.tsa_credentials()
    site = Site(TsaResource(reactor, key, cert, SerialCounter(work / "tsa-serial.json")))  # type: ignore[no-untyped-call]
    port = reactor.listenTCP(0, site, interface="127.0.0.1")
    url = f"http://127.0.0.1:{port.getHost().port}/"
    writer = MessageLogWriter(reactor, work / "log.db")
    writer.start()

    def tsas() -> Sequence[TsaEndpoint]:
        return [TsaEndpoint("TSA", url, cert)]

    def client(tsa_url: str, approved: Sequence[x509.Certificate]) -> TsaClient:
        return TsaClient(reactor, tsa_url, approved)

    stamper = Timestamper(
        reactor, writer, tsas, settings=TimestamperSettings(interval_seconds=0.05, max_records=50), client_factory=client
    )
    archiver = Archiver(
        reactor, writer, ArchiverSettings(archive_dir=work / "archive", archive_interval_seconds=0.1, clean_interval_seconds=3600)
    )
    stamper.startService()
    archiver.startService()
    return writer, stamper, archiver, port


def run(reactor: Any, work: Path) -> Deferred[None]:
    """Log signed exchanges for ever with the evidence services running (until killed)."""
    from tests.federation.evidence import exchange, make_federation

    fed = make_federation(work / "pki")
    fed.write_verificationconf(work / "verificationconf")
    entries: list[LogEntry] = [entry for n in range(EXCHANGES) for entry in exchange(f"crash-{n}")]
    writer, stamper, archiver, _ = services(reactor, work, fed.ca)
    counter = iter(range(10**9))

    def acked(record: LogRecord) -> None:
        print(f"ACK {record.id} {record.query_id}", flush=True)
        send()

    def failed(failure: Failure) -> None:
        print(f"FAIL {failure.getErrorMessage()}", flush=True)
        send()

    def send() -> None:
        writer.log(entries[next(counter) % len(entries)]).addCallbacks(acked, failed)

    def status() -> None:
        print(f"STATUS {stamper.tokens_received} {len(archiver.archives_written)}", flush=True)

    LoopingCall(status).start(0.05)
    for _ in range(WINDOW):
        send()
    return Deferred()  # never fires: the parent kills the process


async def finish(reactor: Any, work: Path) -> None:
    """Timestamp and archive everything left in the log, then stop."""
    ca = DevelopmentCA.open(work / "pki" / "ca")
    writer, stamper, archiver, port = services(reactor, work, ca)
    for _ in range(1000):
        waiting = await writer.run(lambda store: store.untimestamped_count())
        pending = await writer.run(lambda store: store.pending_archive())
        unarchived = await writer.run(lambda store: len(store.archivable(1)))
        if not waiting and pending is None and not unarchived:
            break
        await stamper.stamp_pending()
        await archiver.archive_now()
        await deferLater(reactor, 0.01, lambda: None)
    records = await writer.run(lambda store: store.count())
    await stamper.stopService()
    await archiver.stopService()
    await writer.stop()
    await port.stopListening()
    print(f"DONE {records} {len(list((work / 'archive').glob('mlog-*.zip')))}", flush=True)


def main(reactor: Any, mode: str, work: str) -> Deferred[None]:
    """Dispatch on the mode."""
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))
    if mode == "run":
        return run(reactor, Path(work))
    return ensureDeferred(finish(reactor, Path(work)))


if __name__ == "__main__":
    print(f"START {datetime.now(UTC).isoformat()}", flush=True)
    react(main, sys.argv[1:3])
