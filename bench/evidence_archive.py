"""Archiving and cleaning a backlog of 1 million records: peak memory, and whether the proxies stall (issue 23, item 4).

``python bench/evidence_archive.py [--records 1000000] [--seconds 5] [--concurrency 8] [--dir DIR]``

1. A child process builds the backlog: one real exchange of the test federation (SOAP, signed, batch-timestamped
   by the test TSA) is logged through the store, then its request and response rows are copied ``--records``
   times with ``executemany`` (own ids, query ids and times; the same message, signature and timestamp). **These
   copies are synthetic: their links and ts hash chains are not real**, so the archives they make are not
   evidence; the archiver does all its real work on them (reads, ASiC-E containers, linkinginfo, zip files, marks,
   deletes). Built in a child so that the measuring process's peak RSS is the archiver's alone.
2. In this process, on the real reactor: a :class:`MessageLogWriter` on that log and an in-process "exchange loop"
   (``--concurrency`` callers, each appending a 1 KiB signed record and waiting until it is durable, as an
   exchange does) run for ``--seconds`` without archiving: records per second and the reactor's worst tick
   lateness (a 10 ms ``LoopingCall``). Then the same loop runs while the :class:`Archiver` archives the whole
   backlog and the cleaner deletes it (retention 0 days): the rate and worst lateness during that run, its
   duration, and the peak RSS (sampled every 100 ms from ``/proc/self/status``, and ``ru_maxrss``).

Not a test: it never fails because a machine is slow; it prints figures.
"""

from __future__ import annotations

import argparse
import logging
import os
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import structlog  # noqa: E402
from twisted.internet import defer, task  # noqa: E402

from security_server.core.logchain import Direction, LogEntry, time_to_micros  # noqa: E402
from security_server.messagelog.archiver import (  # noqa: E402
    DEFAULT_CLEAN_BATCH,
    DEFAULT_CLEAN_PAUSE_FACTOR,
    Archiver,
    ArchiverSettings,
)
from security_server.messagelog.store import MessageLogStore, Synchronous  # noqa: E402
from security_server.messagelog.writer import MessageLogWriter  # noqa: E402

COPIED = (
    "query_id, x_request_id, direction, client, service, time_us, message, signature, hashchain, hashchainresult,"
    " signature_hash, succeeded, fault_code, prev_link, link, timestamp_id, ts_hashchain"
)


def build(path: Path, records: int) -> None:
    """The backlog at ``path``: one real stamped exchange, its two rows copied to ``records`` rows (see above)."""
    from tests.federation.evidence import exchange
    from tests.security_server.messagelog.stamping import stamp_all

    start = datetime.now(UTC) - timedelta(days=60)
    with MessageLogStore(path, synchronous=Synchronous.NORMAL) as store:
        store.append_entries(list(exchange("backlog-0", start)))
        stamp_all(store)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA synchronous=OFF")
    template = conn.execute(f"SELECT {COPIED} FROM logrecord ORDER BY id").fetchall()
    columns = COPIED.split(", ")
    at = columns.index("time_us")
    query = columns.index("query_id")
    start_us = time_to_micros(start)
    conn.execute("BEGIN")
    chunk: list[tuple[Any, ...]] = []
    for n in range(2, records):  # rows 1 and 2 are the real exchange
        row = list(template[n % 2])
        row[query] = f"backlog-{n // 2}"
        row[at] = start_us + n * 1000
        chunk.append(tuple(row))
        if len(chunk) == 50_000:
            conn.executemany(f"INSERT INTO logrecord ({COPIED}) VALUES ({', '.join('?' * len(columns))})", chunk)
            chunk = []
    if chunk:
        conn.executemany(f"INSERT INTO logrecord ({COPIED}) VALUES ({', '.join('?' * len(columns))})", chunk)
    conn.execute("COMMIT")
    conn.close()


def rss_mib(pid: int | str = "self") -> float:
    """The resident set size of process ``pid`` (this one by default) now, in MiB (0 when it is gone)."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return 0.0
    for line in lines:
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def children() -> list[int]:
    """This process's child processes (the archiver's worker, with ``--separate-process``)."""
    me = str(os.getpid())
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[1] == me:
            found.append(int(stat.parent.name))
    return found


class Load:
    """The exchange loop: ``concurrency`` callers appending 1 KiB signed records, each waiting for durability."""

    def __init__(self, reactor: Any, writer: MessageLogWriter, template: LogEntry, concurrency: int) -> None:
        self.reactor, self.writer, self.template, self.concurrency = reactor, writer, template, concurrency
        self.done = 0
        self.running = False
        self.lateness: list[float] = []
        self.peak_rss = 0.0
        self.peak_child_rss = 0.0

    async def _caller(self, n: int) -> None:
        count = 0
        while self.running:
            count += 1
            entry = LogEntry(
                query_id=f"load-{n}-{count}-{self.reactor.seconds()}", direction=Direction.REQUEST,
                client=self.template.client, service=self.template.service, time=datetime.now(UTC),
                message=self.template.message, signature=self.template.signature,
            )
            await self.writer.log(entry)
            self.done += 1

    def start(self) -> list[defer.Deferred[None]]:
        self.running = True
        self.done = 0
        self.lateness = []
        expected = [time.monotonic()]

        def tick() -> None:
            now = time.monotonic()
            self.lateness.append(max(0.0, now - expected[0] - 0.01))
            expected[0] = now
            if len(self.lateness) % 10 == 0:
                self.peak_rss = max(self.peak_rss, rss_mib())
                self.peak_child_rss = max([self.peak_child_rss, *(rss_mib(pid) for pid in children())])

        self.ticker = task.LoopingCall(tick)
        self.ticker.start(0.01, now=False)
        return [defer.ensureDeferred(self._caller(n)) for n in range(self.concurrency)]

    async def stop(self, callers: list[defer.Deferred[None]]) -> None:
        self.running = False
        self.ticker.stop()
        await defer.gatherResults(callers)


async def measure(reactor: Any, path: Path, args: argparse.Namespace) -> None:
    with MessageLogStore(path) as store:
        backlog = store.count()
        real = store.get(1)
    assert real is not None
    print(f"backlog: {backlog:,} records ({path.stat().st_size / 2**30:.2f} GiB); RSS before: {rss_mib():.0f} MiB")
    writer = MessageLogWriter(reactor, path)
    writer.start()
    load = Load(reactor, writer, real.to_entry(), args.concurrency)

    callers = load.start()
    started = time.monotonic()
    await task.deferLater(reactor, args.seconds, lambda: None)
    baseline_s = time.monotonic() - started
    baseline_done = load.done
    baseline_late = sorted(load.lateness)
    await load.stop(callers)
    rate = baseline_done / baseline_s
    print(f"\nexchange loop alone ({args.concurrency} callers, {baseline_s:.1f} s): {rate:.0f} records/s;"
          f" reactor lateness p50 {1000 * statistics.median(baseline_late):.1f} ms,"
          f" p99 {1000 * baseline_late[int(0.99 * (len(baseline_late) - 1))]:.1f} ms, max {1000 * baseline_late[-1]:.1f} ms")

    archive_dir = path.parent / "archive"
    settings = ArchiverSettings(
        archive_dir=archive_dir, keep_records_seconds=0, separate_process=args.separate_process,
        clean_batch=args.clean_batch, clean_pause_factor=args.clean_pause_factor,
    )
    archiver = Archiver(reactor, writer, settings)
    load.peak_rss = rss_mib()
    callers = load.start()
    started = time.monotonic()
    paths = await archiver.archive_now()
    archived_s = time.monotonic() - started
    archived_done = load.done
    cleaned = await archiver.clean_now()
    total_s = time.monotonic() - started
    total_done = load.done
    late = sorted(load.lateness)
    await load.stop(callers)
    archive_bytes = sum(p.stat().st_size for p in paths)
    mode = "in a separate process" if args.separate_process else "in the thread pool"
    print(f"\narchives built {mode}")
    print(f"archiving {backlog:,} records: {len(paths):,} archives ({archive_bytes / 2**30:.2f} GiB) in {archived_s:.1f} s"
          f" ({backlog / archived_s:.0f} records/s); cleaning {cleaned:,} records in {total_s - archived_s:.1f} s")
    print(f"exchange loop meanwhile: {archived_done / archived_s:.0f} records/s while archiving,"
          f" {(total_done - archived_done) / max(total_s - archived_s, 1e-9):.0f} records/s while cleaning"
          f" ({100 * (total_done / total_s) / rate:.0f} % of the rate alone over the whole run);"
          f" reactor lateness p50 {1000 * statistics.median(late):.1f} ms, p99 {1000 * late[int(0.99 * (len(late) - 1))]:.1f} ms,"
          f" max {1000 * late[-1]:.1f} ms")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS during the run (sampled): {load.peak_rss:.0f} MiB; ru_maxrss of the process: {peak:.0f} MiB;"
          f" archiver child process: {load.peak_child_rss:.0f} MiB")
    await writer.stop()
    shutil.rmtree(archive_dir, ignore_errors=True)


def main(argv: list[str] | None = None) -> None:
    """Build the backlog in a child, then measure here; ``argv`` as on the command line (None: ``sys.argv``)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--separate-process", action="store_true",
                        help="Archive with archive-in-separate-process (reading and building in a child process).")
    parser.add_argument("--clean-batch", type=int, default=DEFAULT_CLEAN_BATCH,
                        help="Records the cleaner deletes per transaction (was 500 before issue 23's re-measure).")
    parser.add_argument("--clean-pause-factor", type=float, default=DEFAULT_CLEAN_PAUSE_FACTOR,
                        help="The cleaner's pause after a batch, in multiples of the batch's time (was 1).")
    parser.add_argument("--dir", type=Path, help="Work here instead of a temporary folder (the backlog is rebuilt).")
    parser.add_argument("--build-only", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.build_only is not None:
        build(args.build_only, args.records)
        return
    with tempfile.TemporaryDirectory(prefix="fedbus-archive-") as scratch:
        folder = args.dir or Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "messagelog.db"
        for leftover in folder.glob("messagelog.db*"):
            leftover.unlink()
        print(f"building a backlog of {args.records:,} records in a child process (copies of one real exchange:"
              " links and ts hash chains NOT real) ...")
        began = time.perf_counter()
        subprocess.run(
            [sys.executable, __file__, "--records", str(args.records), "--build-only", str(path)], check=True
        )
        print(f"  built in {time.perf_counter() - began:.1f} s")
        structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
        task.react(lambda reactor: defer.ensureDeferred(measure(reactor, path, args)))


if __name__ == "__main__":
    main()
