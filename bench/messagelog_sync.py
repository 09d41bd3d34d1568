"""The message log alone: what ``synchronous=FULL`` costs against ``NORMAL``, per record and in waiting time.

``python bench/messagelog_sync.py [--seconds 5]`` appends 1 KiB SOAP records (with a 1.5 KiB signature) through
the real :class:`MessageLogWriter` (one writer thread, group commit) into a fresh file in a temporary directory,
keeping 1 and then 50 appends outstanding, as the proxies do at concurrency 1 and 50 (each exchange waits for its
record before going on). It prints records/s, the p50/p99 time from ``log()`` to the record being durable, the
CPU per record of the process, and the transactions committed (records per commit = the group-commit batch).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from twisted.internet import defer, task  # noqa: E402

from bench.workload import soap_body  # noqa: E402
from security_server.core.logchain import Direction, LogEntry  # noqa: E402
from security_server.messagelog.store import Synchronous  # noqa: E402
from security_server.messagelog.writer import MessageLogWriter  # noqa: E402


async def measure(reactor: Any, path: Path, synchronous: Synchronous, outstanding: int, seconds: float) -> dict[str, Any]:
    """Append for ``seconds`` with ``outstanding`` appends in flight; the figures."""
    writer = MessageLogWriter(reactor, path, synchronous=synchronous)
    writer.start()
    message, signature = soap_body(1024), b"<ds:Signature>" + b"s" * 1500 + b"</ds:Signature>"
    waits: list[float] = []
    ends = time.monotonic() + seconds
    cpu = os.times()
    started = time.monotonic()

    async def one_client(index: int) -> None:
        count = 0
        while time.monotonic() < ends:
            count += 1
            entry = LogEntry(query_id=f"bench-{index}-{count}", direction=Direction.REQUEST, client="DEMO/GOV/1/a",
                             service="DEMO/GOV/2/b/benchEcho/v1", time=datetime.now(UTC), message=message,
                             signature=signature)
            asked = time.monotonic()
            await writer.log(entry)
            waits.append(time.monotonic() - asked)

    await defer.gatherResults([defer.Deferred.fromCoroutine(one_client(i)) for i in range(outstanding)])
    elapsed = time.monotonic() - started
    used = os.times()
    await writer.stop()
    waits.sort()
    return {
        "synchronous": synchronous.value, "outstanding": outstanding, "records_per_s": len(waits) / elapsed,
        "p50_ms": waits[len(waits) // 2] * 1000, "p99_ms": waits[int(len(waits) * 0.99)] * 1000,
        "cpu_us_per_record": ((used.user + used.system) - (cpu.user + cpu.system)) * 1e6 / len(waits),
        "records_per_commit": writer.records_committed / max(1, writer.batches_committed),
    }


def main() -> None:
    """FULL and NORMAL at 1 and 50 outstanding appends; one line each."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()

    async def run(reactor: Any) -> None:
        with tempfile.TemporaryDirectory(prefix="fedbus-logbench-") as work:
            for outstanding in (1, 50):
                for synchronous in (Synchronous.FULL, Synchronous.NORMAL):
                    path = Path(work) / f"{synchronous.value}-{outstanding}.db"
                    found = await measure(reactor, path, synchronous, outstanding, args.seconds)
                    print(f"synchronous={found['synchronous']:<6} outstanding={outstanding:<3} "
                          f"{found['records_per_s']:>8,.0f} records/s  wait p50 {found['p50_ms']:6.2f} ms "
                          f"p99 {found['p99_ms']:6.2f} ms  CPU {found['cpu_us_per_record']:6.0f} µs/record  "
                          f"{found['records_per_commit']:5.1f} records/commit", flush=True)

    task.react(lambda reactor: defer.Deferred.fromCoroutine(run(reactor)))


if __name__ == "__main__":
    main()
