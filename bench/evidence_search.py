"""``fedbus audit find`` on a message log of 10 million records: how long each search shape takes (issue 23, item 3).

``python bench/evidence_search.py [--records 10000000] [--runs 5] [--dir DIR]`` builds a log synthetically: the real
schema (``MessageLogStore`` opens the file and applies every migration), then rows written directly with
``executemany`` (indexes dropped while loading and built after, as a bulk load does). The rows are realistic in
what searches read (exchanges of 500 clients, 2,000 services and 200,000 end users, 70 % naming one, a request and a
response each, evenly over 30 days) but **their links, signatures and messages are not real**: a 1-byte stand-in,
so the chain does not verify and the file is small. Then each search shape runs through the real
``MessageLogStore.search`` (what ``audit find`` calls), ``--runs`` times; the figures are the median and the worst
in milliseconds to read every row (at most ``--limit``, default 1000 as in ``audit find``), and the first run, plus
the ``audit find`` command itself (in-process, JSON output) for two shapes. No ``ANALYZE`` is run: the query planner
sees what it sees on a production log.
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Callable, Iterator

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from click.testing import CliRunner  # noqa: E402

from security_server.audit_cli import audit  # noqa: E402
from security_server.core.logchain import time_to_micros  # noqa: E402
from security_server.messagelog.store import MessageLogStore  # noqa: E402

START = datetime(2026, 1, 1, tzinfo=UTC)
SPAN = timedelta(days=30)
CLIENTS = 500
SERVICES = 2_000
USERS = 200_000
NAMED = 0.7
STAND_IN = b"x"
"""The message, signature, signature hash and links of every synthetic row: not real evidence."""


def client_name(n: int) -> str:
    return f"SUBSYSTEM:EE/GOV/7{n // 10:07d}/system{n % 10}"


def service_name(n: int) -> str:
    provider = n % 300
    return f"SERVICE:EE/GOV/8{provider:07d}/provider/service{n}/v1"


def user_name(n: int) -> str:
    return f"EE{38000000000 + n * 7919:011d}"


def rows(count: int, seed: int = 23) -> Iterator[tuple[Any, ...]]:
    """``count`` rows, request and response per exchange, in id and time order."""
    rng = random.Random(seed)
    start_us = time_to_micros(START)
    step = int(SPAN.total_seconds() * 1_000_000) // max(count // 2, 1)
    for exchange in range((count + 1) // 2):
        client = client_name(rng.randrange(CLIENTS))
        service = service_name(int(rng.paretovariate(1.2)) % SERVICES)
        user = user_name(rng.randrange(USERS)) if rng.random() < NAMED else None
        at = start_us + exchange * step + rng.randrange(step)
        query_id = f"q-{exchange:010d}"
        failed = rng.random() < 0.01
        for direction in ("request", "response"):
            record_id = 2 * exchange + (1 if direction == "request" else 2)
            if record_id > count:
                return
            ok = not (failed and direction == "response")
            yield (
                record_id, query_id, direction, client, service, at, STAND_IN, STAND_IN if ok else b"", STAND_IN,
                1 if ok else 0, None if ok else "server.serverproxy.service_failed.timeout", STAND_IN, STAND_IN, user,
                f"req-{exchange}",
            )


INSERT = (
    "INSERT INTO logrecord (id, query_id, direction, client, service, time_us, message, signature, signature_hash,"
    " succeeded, fault_code, prev_link, link, user_id, x_request_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def build(path: Path, count: int) -> dict[str, float]:
    """Create the log at ``path`` with ``count`` synthetic rows; seconds spent loading and indexing."""
    MessageLogStore(path).close()  # the real schema, every migration applied
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=DELETE")
    conn.execute("PRAGMA journal_mode=OFF")
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("PRAGMA cache_size=-1000000")
    indexes = conn.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'logrecord' AND sql IS NOT NULL"
    ).fetchall()
    for name, _ in indexes:
        conn.execute(f'DROP INDEX "{name}"')
    started = time.perf_counter()
    conn.execute("BEGIN")
    source = rows(count)
    while True:
        chunk = [row for _, row in zip(range(200_000), source)]
        if not chunk:
            break
        conn.executemany(INSERT, chunk)
    conn.execute("UPDATE logrecord SET timestamp_id = 1 WHERE id <= ?", [count - 1000])
    conn.execute("COMMIT")
    loaded = time.perf_counter()
    for _, sql in indexes:
        conn.execute(sql)
    indexed = time.perf_counter()
    conn.execute("PRAGMA journal_mode=WAL")
    conn.close()
    return {"load_s": loaded - started, "index_s": indexed - loaded}


def shapes(count: int) -> dict[str, dict[str, Any]]:
    """The search shapes, with values that exist in the synthetic log."""
    rng = random.Random(99)
    middle = START + SPAN / 2
    sample = list(rows(min(count, 2_000), seed=23))
    named = next(row for row in sample if row[13] is not None)
    return {
        "query id": dict(query_id=f"q-{(count // 4):010d}"),
        "client": dict(client=client_name(rng.randrange(CLIENTS))),
        "client prefix (member)": dict(client=client_name(rng.randrange(CLIENTS))[:-1].rsplit("/", 1)[0] + "/"),
        "service": dict(service=service_name(3)),
        "user id": dict(user_id=named[13]),
        "time range (1 hour)": dict(since=middle, until=middle + timedelta(hours=1)),
        "client in one day": dict(client=client_name(7), since=middle, until=middle + timedelta(days=1)),
        "service in one day": dict(service=service_name(3), since=middle, until=middle + timedelta(days=1)),
        "user id in 30 days": dict(user_id=named[13], since=START, until=START + SPAN),
        "failed, in one hour": dict(succeeded=False, since=middle, until=middle + timedelta(hours=1)),
    }


def timed(function: Callable[[], int], runs: int) -> tuple[float, float, float, int]:
    """First run, median and worst of ``runs`` runs after it, in ms; and the rows the last run read."""
    times = []
    found = 0
    for _ in range(runs + 1):
        started = time.perf_counter()
        found = function()
        times.append((time.perf_counter() - started) * 1000)
    return times[0], statistics.median(times[1:]), max(times[1:]), found


def main(argv: list[str] | None = None) -> None:
    """Build (or reuse) the log and print the figures; ``argv`` as on the command line (None: ``sys.argv``)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=10_000_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--limit", type=int, default=1000)
    parser.add_argument("--dir", type=Path, help="Build (or reuse) the log here instead of a temporary folder.")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="fedbus-search-") as scratch:
        folder = args.dir or Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "messagelog.db"
        if path.exists():
            print(f"reusing {path}")
        else:
            print(f"building {args.records:,} synthetic records (links, signatures and messages are NOT real) ...")
            figures = build(path, args.records)
            print(f"  loaded in {figures['load_s']:.1f} s, indexes built in {figures['index_s']:.1f} s,"
                  f" file {path.stat().st_size / 2**30:.2f} GiB")
        with MessageLogStore(path) as store:
            total = store.count()
            print(f"\n{total:,} records; each shape through MessageLogStore.search, limit {args.limit}, "
                  f"{args.runs} runs after a first\n")
            print(f"{'shape':28} {'rows':>6} {'first ms':>9} {'median ms':>10} {'worst ms':>9}")
            for name, criteria in shapes(total).items():
                first, median, worst, found = timed(
                    lambda: sum(1 for _ in store.search(**criteria, limit=args.limit)), args.runs
                )
                print(f"{name:28} {found:>6} {first:>9.1f} {median:>10.1f} {worst:>9.1f}")
        print(f"\n`fedbus audit find --json` in-process (click), limit {args.limit}:\n")
        runner = CliRunner()
        for name, extra in (
            ("by user id", ["--user-id", shapes(total)["user id"]["user_id"]]),
            ("by client", ["--client", client_name(11)]),
        ):
            def command() -> int:
                result = runner.invoke(audit, ["find", "--dir", str(folder), "--json", "--limit", str(args.limit), *extra])
                assert result.exit_code == 0, result.output
                return result.output.count('"record"')

            first, median, worst, found = timed(command, args.runs)
            print(f"{name:28} {found:>6} {first:>9.1f} {median:>10.1f} {worst:>9.1f}")


if __name__ == "__main__":
    main()
