"""The message log's append through the store layer (plain ``sqlite3``) against the same append through sqlite-utils.

``python bench/store_layer.py [--records 2000]`` appends 1 KiB SOAP records with a 1.5 KiB signature, as the
ordered writer does (read the chain head, link and hash the records, insert them, commit: one ``BEGIN IMMEDIATE``
transaction per batch), into fresh WAL files in a temporary directory, in batches of 1, 10 and 100 records, with
``synchronous=FULL`` and ``NORMAL``. Two ways, in one run, alternating so that a busy machine slows both alike:

- ``sqlite3``: :meth:`MessageLogStore.append_entries`, i.e. the store layer's ``executemany`` of prepared tuples;
- ``sqlite-utils``: the same transaction and linking, with the rows handed to ``Table.insert_all`` as dicts
  (the library's way to insert, which checks the table's columns and builds its SQL per call).

It prints records/s and the CPU time per record (``time.process_time``, which a busy machine disturbs less than
the wall clock) for each way, and their ratios. The figures decide the store layer's choice
(``security_server/store/__init__.py`` quotes them); this is not a test and never fails on a slow machine.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Callable, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import sqlite_utils  # noqa: E402

from bench.workload import soap_body  # noqa: E402
from security_server.core.logchain import Direction, LogEntry, LogRecord, make_record  # noqa: E402
from security_server.messagelog.store import (  # noqa: E402
    MessageLogStore,
    Synchronous,
    encode_attachments,
)
from security_server.core.logchain import time_to_micros  # noqa: E402

_COLUMNS = (
    "id", "query_id", "x_request_id", "direction", "client", "service", "time_us", "message", "signature",
    "hashchain", "hashchainresult", "signature_hash", "succeeded", "fault_code", "prev_link", "link", "attachments",
)


def entries(count: int) -> list[LogEntry]:
    """``count`` request entries shaped like the proxies' (1 KiB body, 1.5 KiB signature)."""
    message, signature = soap_body(1024), b"<ds:Signature>" + b"s" * 1500 + b"</ds:Signature>"
    now = datetime.now(UTC)
    return [
        LogEntry(query_id=f"bench-{n}", direction=Direction.REQUEST, client="SUBSYSTEM:DEMO/GOV/1/a",
                 service="SERVICE:DEMO/GOV/2/b/benchEcho/v1", time=now, message=message, signature=signature)
        for n in range(count)
    ]


def _row(record: LogRecord) -> dict[str, object]:
    values = (
        record.id, record.query_id, record.x_request_id, record.direction.value, record.client, record.service,
        time_to_micros(record.time), record.message, record.signature, record.hashchain, record.hashchainresult,
        record.signature_hash, 1 if record.succeeded else 0, record.fault_code, record.prev_link, record.link,
        encode_attachments(record.attachments),
    )
    return dict(zip(_COLUMNS, values))


def with_store_layer(path: Path, synchronous: Synchronous) -> tuple[Callable[[Sequence[LogEntry]], None], Callable[[], None]]:
    """Append through the store (plain sqlite3 behind the store layer)."""
    store = MessageLogStore(path, synchronous=synchronous)

    def append(batch: Sequence[LogEntry]) -> None:
        store.append_entries(batch)

    return append, store.close


def with_sqlite_utils(path: Path, synchronous: Synchronous) -> tuple[Callable[[Sequence[LogEntry]], None], Callable[[], None]]:
    """Append through sqlite-utils' ``insert_all`` in the same kind of transaction, on the same schema."""
    MessageLogStore(path, synchronous=synchronous).close()  # the same schema, made by the store
    db = sqlite_utils.Database(path)
    db.conn.isolation_level = None
    db.execute(f"PRAGMA synchronous={synchronous.value}")
    table = db.table("logrecord")

    def append(batch: Sequence[LogEntry]) -> None:
        db.execute("BEGIN IMMEDIATE")
        try:
            head = db.execute("SELECT id, link FROM logrecord ORDER BY id DESC LIMIT 1").fetchone()
            if head is None:
                anchor = db.execute("SELECT first_id, prev_link FROM chain_anchor WHERE id = 1").fetchone()
                last_id, link = anchor[0] - 1, anchor[1]
            else:
                last_id, link = head
            rows = []
            for offset, entry in enumerate(batch, start=1):
                record = make_record(entry, record_id=last_id + offset, prev_link=link)
                link = record.link
                rows.append(_row(record))
            table.insert_all(rows)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    return append, db.close


def measure(make: Callable[[Path, Synchronous], tuple[Callable[[Sequence[LogEntry]], None], Callable[[], None]]],
            path: Path, synchronous: Synchronous, batch: int, work: list[LogEntry]) -> tuple[float, float]:
    """Records per second and CPU microseconds per record, appending ``work`` in batches of ``batch``."""
    append, close = make(path, synchronous)
    try:
        started, cpu = time.perf_counter(), time.process_time()
        for at in range(0, len(work), batch):
            append(work[at : at + batch])
        used = time.process_time() - cpu
        return len(work) / (time.perf_counter() - started), used * 1e6 / len(work)
    finally:
        close()


def main() -> None:
    """Both ways at batches of 1, 10 and 100 records, FULL and NORMAL; one line each."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=2000, help="records per measurement (default 2000)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds; the median is shown")
    args = parser.parse_args()
    ways = {"sqlite3": with_store_layer, "sqlite-utils": with_sqlite_utils}
    print(f"{args.records} records per measurement (FULL at batch 1: a fifth), median of {args.rounds} rounds")
    with tempfile.TemporaryDirectory(prefix="fedbus-storebench-") as folder:
        for synchronous in (Synchronous.FULL, Synchronous.NORMAL):
            for batch in (1, 10, 100):
                count = args.records if batch > 1 or synchronous is Synchronous.NORMAL else max(200, args.records // 5)
                work = entries(count)
                rates: dict[str, list[float]] = {name: [] for name in ways}
                cpus: dict[str, list[float]] = {name: [] for name in ways}
                for round_ in range(args.rounds):
                    for name, make in ways.items():
                        path = Path(folder) / f"{name}-{synchronous.value}-{batch}-{round_}.db"
                        rate, cpu = measure(make, path, synchronous, batch, work)
                        rates[name].append(rate)
                        cpus[name].append(cpu)
                plain, library = (statistics.median(rates[name]) for name in ways)
                plain_cpu, library_cpu = (statistics.median(cpus[name]) for name in ways)
                print(f"synchronous={synchronous.value:<6} batch={batch:<4} records/s: sqlite3 {plain:>7,.0f}"
                      f"  sqlite-utils {library:>7,.0f} ({plain / library:4.2f}x)   CPU µs/record: sqlite3"
                      f" {plain_cpu:5.0f}  sqlite-utils {library_cpu:5.0f} ({library_cpu / plain_cpu:4.2f}x)", flush=True)


if __name__ == "__main__":
    main()
