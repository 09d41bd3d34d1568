"""What stalls a lone request: one keep-alive client through the bus, each latency set against the servers' events.

Issue 18 asks for the p99 at c=1 to stay within 3x the p50 and, where it does not, for what stalls a lone request
(timestamper, archiver, collector, fsync, configuration reloads). wrk gives the percentiles but not *when* the
slow requests were. This tool sets up the bench's federation (``bench/fedbus_pair.py``, as ``bench/run.py``),
measures each process's CPU while idle, then sends ``--requests`` SOAP 1 KiB requests one after another on one
keep-alive connection, recording when each started and how long it took. A request slower than ``--slow`` times
the p50 is slow; for each, the events the security servers and the registry logged between 0.3 s before it and
its end are counted (a timestamp stored, a configuration applied, an OCSP refresh...). It also reports each
thread's CPU per exchange (user and system, from ``/proc/PID/task``): which thread of a server does the work.

    .venv/bin/python bench/stalls.py                          # X-Road's 60 s timestamping, 12,000 requests
    .venv/bin/python bench/stalls.py --timestamp-interval 5 --requests 3000

No timing is asserted anywhere: it prints figures (and writes them as JSON with ``--out``).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from adapters.demo.federation import POPULATION, TAX_BOARD  # noqa: E402
from bench.fedbus_pair import BenchProcesses, Levers, free_ports  # noqa: E402
from bench.measure import cpu_seconds  # noqa: E402
from bench.workload import request_for  # noqa: E402

SERVERS = ("ss-tax", "ss-pop")
QUIET = {"soap_request_answered", "peer_request_answered", "rest_request_answered"}
"""Per-request events: not causes."""
WINDOW_BEFORE = 0.3
"""Seconds before a slow request's start in which an event may have caused it."""


def thread_cpu(pid: int) -> dict[str, tuple[int, int]]:
    """Each thread's (user, system) clock ticks, by "tid name"."""
    found: dict[str, tuple[int, int]] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
            name = (task / "comm").read_text().strip()
        except OSError:
            continue
        found[f"{task.name} {name}"] = (int(fields[11]), int(fields[12]))
    return found


def logged_events(log: Path, source: str) -> list[tuple[float, str, str]]:
    """(time, source, event) of every structured line of ``log`` but the per-request ones."""
    events = []
    for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if not isinstance(event, dict) or event.get("event") in QUIET or "timestamp" not in event:
            continue
        at = datetime.fromisoformat(str(event["timestamp"]).replace("Z", "+00:00")).timestamp()
        events.append((at, source, str(event.get("event"))))
    return events


def heap_collection_ms(health_port: int) -> float | None:
    """``fedbus_heap_last_collection_seconds`` from a server's /metrics, in ms (None when it cannot be read)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{health_port}/metrics", timeout=10) as answer:
            text = answer.read().decode("utf-8")
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("fedbus_heap_last_collection_seconds "):
            return round(float(line.split()[1]) * 1000, 2)
    return None


def percentile(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, int(q * (len(ordered) - 1) + 0.5))]


def attribute(latencies: list[tuple[float, float]], events: list[tuple[float, str, str]], slow: float) -> dict[str, Any]:
    """Percentiles of ``latencies`` ((start time, ms) per request) and, for the requests slower than ``slow`` times
    the p50, the ``events`` ((time, source, name)) logged from :data:`WINDOW_BEFORE` s before each to its end."""
    ordered = sorted(ms for _, ms in latencies)
    p50 = percentile(ordered, 0.5)
    found: dict[str, Any] = {
        "p50_ms": round(p50, 2), "p90_ms": round(percentile(ordered, 0.9), 2),
        "p99_ms": round(percentile(ordered, 0.99), 2), "p999_ms": round(percentile(ordered, 0.999), 2),
        "max_ms": round(ordered[-1], 2),
    }
    found["p99_over_p50"] = round(found["p99_ms"] / p50, 2) if p50 else None
    first, last = latencies[0][0], latencies[-1][0]
    during = [event for event in events if first - 1 <= event[0] <= last + 1]
    found["events_during_run"] = Counter(f"{source} {name}" for _, source, name in during).most_common()
    slow_ones = [(at, ms) for at, ms in latencies if ms > slow * p50]
    near: Counter[str] = Counter()
    unexplained = 0
    for at, ms in slow_ones:
        causes = {f"{source} {name}" for when, source, name in during if at - WINDOW_BEFORE <= when <= at + ms / 1000}
        near.update(causes)
        unexplained += not causes
    found["slow"] = {
        "threshold_ms": round(slow * p50, 2), "count": len(slow_ones), "with_no_event_near": unexplained,
        "events_near": near.most_common(),
        "slowest_ms": sorted((round(ms, 1) for _, ms in slow_ones), reverse=True)[:20],
    }
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=12_000, help="requests, one after another (default 12,000)")
    parser.add_argument("--timestamp-interval", type=float, default=60.0,
                        help="batch timestamping interval, s (default 60: X-Road's)")
    parser.add_argument("--slow", type=float, default=3.0, help="slow = more than this many times the p50 (default 3)")
    parser.add_argument("--base-port", type=int, default=19900)
    parser.add_argument("--out", type=Path, help="also write the figures here as JSON")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="fedbus-stalls-"))
    ports = free_ports(args.base_port)
    figures: dict[str, Any] = {"requests": args.requests, "timestamp_interval": args.timestamp_interval}
    with BenchProcesses(root, ports, sys.stdout, timestamp_interval=args.timestamp_interval) as procs:
        procs.start_references()
        procs.set_up_federation()
        procs.restart_servers(Levers())
        pids = procs.pids(*SERVERS, "registry", "echo")
        time.sleep(5)
        idle_from = {name: cpu_seconds(pid) for name, pid in pids.items()}
        time.sleep(20)
        figures["idle_cpu_ms_per_s"] = {name: round((cpu_seconds(pid) - idle_from[name]) / 20 * 1000, 1)
                                        for name, pid in pids.items()}
        request = request_for("soap", "fedbus", 1024)
        connection = http.client.HTTPConnection("127.0.0.1", ports.demo.client_proxy(TAX_BOARD), timeout=60)

        def call() -> None:
            connection.request("POST", "/", body=request.body, headers=request.headers)
            answer = connection.getresponse()
            answer.read()
            if answer.status != 200:
                raise SystemExit(f"stalls: the bus answered {answer.status}")

        for _ in range(200):  # warm-up
            call()
        threads_from = {code: thread_cpu(pids[code]) for code in SERVERS}
        cpu_from = {name: cpu_seconds(pid) for name, pid in pids.items()}
        latencies: list[tuple[float, float]] = []
        started = time.time()
        for _ in range(args.requests):
            at = time.time()
            call()
            latencies.append((at, (time.time() - at) * 1000))
        wall = time.time() - started
        figures["rate"] = round(args.requests / wall, 1)
        figures["cpu_us_per_exchange"] = {name: round((cpu_seconds(pid) - cpu_from[name]) / args.requests * 1e6)
                                          for name, pid in pids.items()}
        ticks = os.sysconf("SC_CLK_TCK")
        per_thread: dict[str, list[tuple[str, int, int]]] = {}
        for code in SERVERS:
            rows = []
            for thread, (user, system) in thread_cpu(pids[code]).items():
                user0, system0 = threads_from[code].get(thread, (0, 0))
                if user - user0 + system - system0 > 0:
                    rows.append((thread, round((user - user0) / ticks / args.requests * 1e6),
                                 round((system - system0) / ticks / args.requests * 1e6)))
            per_thread[code] = sorted(rows, key=lambda row: -(row[1] + row[2]))
        figures["thread_cpu_us_per_exchange_user_system"] = per_thread
        figures["heap_last_collection_ms"] = {
            code: heap_collection_ms(ports.demo.healthcheck(department))
            for code, department in zip(SERVERS, (TAX_BOARD, POPULATION))
        }
        time.sleep(1)  # the last events reach the logs
        events = sorted(event for code in (*SERVERS, "registry")
                        for event in logged_events(procs.layout.log(code), code))
    shutil.rmtree(root, ignore_errors=True)
    figures.update(attribute(latencies, events, args.slow))
    print(json.dumps(figures, indent=1))
    if args.out:
        args.out.write_text(json.dumps(figures, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
