"""What the cross-node replay guard of a clustered security server costs: exchanges/s and CPU per exchange, on vs off.

``python bench/cluster_replay.py [--exchanges 300] [--rounds 3] [--concurrency 8]`` starts a throwaway PostgreSQL
(tests/postgres.py: Debian's ``postgresql``, ``initdb``/``pg_ctl`` in a temporary directory, no fsync, on
loopback) and the test federation of tests/federation/world.py in this process: the consumer's client proxy, the
in-memory peer link (with the peer's certificate check), the provider's server proxy (the node measured), the
provider's service on a loopback port, both servers' message logs. Each round sends ``--exchanges`` SOAP requests,
``--concurrency`` at a time, first with the provider's node-local replay guard (``off``), then with
:class:`~security_server.replay_store.ClusterReplayGuard` on the PostgreSQL database (``on``: the node's memory,
then one ``INSERT ... ON CONFLICT`` per request on the guard's thread pool). The rounds alternate, so a busy spell
of the machine slows both alike; the medians are printed with the ratio on/off.

CPU per exchange is this process's CPU time (both servers, the provider, the guard's threads) plus the PostgreSQL
server's (its postmaster and backends), over the exchanges of the round. This is not a test and never fails on a
slow machine.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import structlog  # noqa: E402
from twisted.internet import defer, task  # noqa: E402

from bench.measure import cpu_seconds  # noqa: E402
from security_server.core.replay import ReplayGuard  # noqa: E402
from security_server.replay_store import ClusterReplayGuard  # noqa: E402
from tests.federation.world import ExchangeBed, is_request  # noqa: E402
from tests.postgres import postgres_bin_dir, start_postgres  # noqa: E402


class _Bed(ExchangeBed):
    """The test federation, set up outside a test run."""

    def runTest(self) -> None:
        """Nothing: the bench drives the bed itself."""


def _postmaster_pid(data: Path) -> int:
    return int((data / "postmaster.pid").read_text().split()[0])


async def _round(bed: _Bed, count: int, concurrency: int, postgres_pid: int) -> tuple[float, float]:
    """Send ``count`` requests; exchanges/s and CPU ms per exchange (this process and PostgreSQL)."""
    left = iter(range(count))
    failed: list[int] = []

    async def sender() -> None:
        for _ in left:
            status, _type, _body = await bed.send(is_request())
            if status != 200:
                failed.append(status)

    cpu0, pg0, wall0 = time.process_time(), cpu_seconds(postgres_pid), time.perf_counter()
    await defer.gatherResults([defer.Deferred.fromCoroutine(sender()) for _ in range(concurrency)])
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0 + cpu_seconds(postgres_pid) - pg0
    if failed:
        raise SystemExit(f"{len(failed)} exchanges failed (HTTP {sorted(set(failed))})")
    return count / wall, cpu / count * 1000


async def _run(reactor: Any, args: argparse.Namespace) -> None:
    bin_dir = postgres_bin_dir()
    if bin_dir is None:
        raise SystemExit("PostgreSQL is not installed (the Debian package postgresql)")
    postgres = start_postgres(bin_dir)
    bed = _Bed("runTest")  # type: ignore[no-untyped-call]  # trial leaves it unannotated
    guard: ClusterReplayGuard | None = None
    try:
        with postgres.admin() as admin:
            admin.execute('CREATE DATABASE "bench"')
        pg_pid = _postmaster_pid(postgres.data)
        bed.setUp()
        guard = ClusterReplayGuard(postgres.url("bench"), clock=reactor.seconds, reactor=reactor)
        await _round(bed, min(50, args.exchanges), args.concurrency, pg_pid)  # warm-up: caches, connections
        figures: dict[str, list[tuple[float, float]]] = {"off": [], "on": []}
        for _ in range(args.rounds):
            for mode in ("off", "on"):
                bed.server_proxy.replay_guard = guard if mode == "on" else ReplayGuard()
                figures[mode].append(await _round(bed, args.exchanges, args.concurrency, pg_pid))
        assert guard.unchecked == 0, "the shared database was not reached"
        medians = {
            mode: (statistics.median(r for r, _ in rows), statistics.median(c for _, c in rows))
            for mode, rows in figures.items()
        }
        print(f"cross-node replay guard, {args.exchanges} SOAP exchanges x {args.rounds} rounds, "
              f"{args.concurrency} in flight, medians")
        print(f"{'guard':<28}{'exchanges/s':>14}{'CPU ms/exchange':>18}")
        print(f"{'off (node memory)':<28}{medians['off'][0]:>14.1f}{medians['off'][1]:>18.2f}")
        print(f"{'on (memory + PostgreSQL)':<28}{medians['on'][0]:>14.1f}{medians['on'][1]:>18.2f}")
        print(f"{'ratio on/off':<28}{medians['on'][0] / medians['off'][0]:>14.3f}"
              f"{medians['on'][1] / medians['off'][1]:>18.3f}")
    finally:
        if guard is not None:
            guard.close()
        await bed._tear_down()
        postgres.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--exchanges", type=int, default=300, help="exchanges per round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per mode (the median is printed)")
    parser.add_argument("--concurrency", type=int, default=8, help="requests in flight")
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))  # one line per exchange
    task.react(lambda reactor: defer.Deferred.fromCoroutine(_run(reactor, args)))


if __name__ == "__main__":
    main()
