"""Stored bytes per message-log record (issue 23, item 1): records as they are against compact records.

``python bench/evidence_size.py [--records 2000] [--sign-batch 1,4] [--ts-batch 2000] [--payload padded,random]``

Each SOAP 1 KiB exchange (a request signed by the consumer, a response signed by the provider, RSA-2048 keys under
the test federation's CA, each signer's real OCSP response embedded) is signed once, as the proxies sign it
(``core.signature.sign_batch``: a lone message directly, ``--sign-batch`` messages through one hash chain), then the
same records are logged through the real :class:`~security_server.messagelog.writer.MessageLogWriter` (one writer
thread, group commit) into four fresh logs:

- ``plain``: every field stored as it is (how the log stored records before issue 23);
- ``compact``: certificates, OCSP responses and document skeletons stored once, signatures and hash chains packed
  (``core.compact_signature``), the per-record timestamp hash chain derived from its batch;
- ``compact+zlib``: the same, bodies zlib-compressed (``[messagelog] compress-bodies``, on by default): the default;
- ``plain+zlib``: bodies compressed, nothing else compact (to show what each part saves).

Every record is then timestamped in batches of ``--ts-batch`` by a real RFC 3161 token over the batch's
``ts-hashchainresult.xml``, as the timestamper does. After ``VACUUM``, the figure is ``page_count * page_size / N``:
everything the file holds (rows, indexes, shared values, timestamps) per record. ``--payload padded`` is the bench
workload's body (``x`` padding: very compressible), ``random`` the same envelope with random letters in place of the
padding (the worst case for compression). This is not a test and never fails on a slow machine.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import random
import re
import sqlite3
import subprocess
import string
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from twisted.internet import defer, task  # noqa: E402

from bench.workload import soap_body  # noqa: E402
from security_server.core.hashchain import SIGNATURE, TS_HASH_CHAIN, build_hash_chain  # noqa: E402
from security_server.core.logchain import Direction, LogEntry, LogRecord  # noqa: E402
from security_server.core.signature import MessagePart, SignatureData, sign_batch, signature_value  # noqa: E402
from security_server.messagelog.store import MessageLogStore, Synchronous, TimestampAssignment  # noqa: E402
from security_server.messagelog.writer import MessageLogWriter  # noqa: E402
from tests.federation.ca import ocsp_for  # noqa: E402 - the test federation's PKI
from tests.federation.departments import CONSUMER, SERVICE  # noqa: E402
from tests.federation.evidence import federation, token_over  # noqa: E402

MESSAGE_SIZE = 1024
OUTSTANDING = 50

LAYOUTS: dict[str, dict[str, bool]] = {
    "plain": {"compact": False, "compress_bodies": False},
    "plain+zlib": {"compact": False, "compress_bodies": True},
    "compact": {"compact": True, "compress_bodies": False},
    "compact+zlib": {"compact": True, "compress_bodies": True},
}


def message(query_id: str, payload: str, rng: random.Random) -> bytes:
    """A SOAP request of exactly :data:`MESSAGE_SIZE` bytes with id ``query_id``."""
    body = soap_body(MESSAGE_SIZE, message_id=query_id)
    if payload == "random":
        padding = re.search(rb">(x{16,})<", body)
        assert padding is not None
        letters = "".join(rng.choice(string.ascii_letters + string.digits) for _ in range(len(padding[1])))
        body = body[: padding.start(1)] + letters.encode() + body[padding.end(1) :]
    assert len(body) == MESSAGE_SIZE
    return body


def signed_entries(records: int, sign_batch_size: int, payload: str) -> list[LogEntry]:
    """``records`` log entries (request and response of each exchange), signed as the proxies sign them."""
    fed = federation()
    rng = random.Random(23)
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=30)
    ocsp = {who.cert: ocsp_for(fed.ca, who.cert, start - timedelta(seconds=5)) for who in (fed.consumer, fed.provider)}
    entries: list[LogEntry] = []
    exchanges = records // 2
    for first in range(0, exchanges, sign_batch_size):
        numbers = range(first, min(first + sign_batch_size, exchanges))
        moment = start + timedelta(seconds=first / 200)
        for who, direction in ((fed.consumer, Direction.REQUEST), (fed.provider, Direction.RESPONSE)):
            messages = [message(f"size-{n}-{direction.value}", payload, rng) for n in numbers]
            datas: tuple[SignatureData, ...] = sign_batch(
                [[MessagePart.of("/message.xml", m)] for m in messages], who.cert, who.key, ocsp[who.cert], moment
            )
            for n, m, data in zip(numbers, messages, datas):
                entries.append(LogEntry(
                    query_id=f"size-{n}", direction=direction, client=str(CONSUMER), service=str(SERVICE), time=moment,
                    message=m, signature=data.signature_xml, hashchain=data.hash_chain,
                    hashchainresult=data.hash_chain_result,
                ))
    entries.sort(key=lambda e: (e.query_id, e.direction is Direction.RESPONSE))
    return entries


def stamps(records: list[LogRecord], ts_batch: int) -> list[tuple[bytes, bytes | None, list[TimestampAssignment]]]:
    """The timestamps of ``records`` in batches of ``ts_batch``, as the timestamper makes them (real tokens)."""
    out: list[tuple[bytes, bytes | None, list[TimestampAssignment]]] = []
    for first in range(0, len(records), ts_batch):
        batch = records[first : first + ts_batch]
        if len(batch) == 1:
            out.append((token_over(signature_value(batch[0].signature)), None, [TimestampAssignment(batch[0].id, None)]))
            continue
        chains = build_hash_chain([[r.signature_hash] for r in batch], chain_uri=TS_HASH_CHAIN, data_uri=SIGNATURE)
        token = token_over(chains.result)
        out.append((token, chains.result, [TimestampAssignment(r.id, c) for r, c in zip(batch, chains.chains)]))
    return out


def _add_timestamp(store: MessageLogStore, *, token: bytes, result: bytes | None,
                   assignments: list[TimestampAssignment], when: datetime) -> int:
    return store.add_timestamp(token, result, assignments, time=when)


async def write_log(reactor: Any, path: Path, layout: dict[str, bool], entries: list[LogEntry], ts_batch: int,
                    made: dict[str, Any]) -> float:
    """Log ``entries`` through the writer into ``path`` with ``layout``, timestamp them; the writer's seconds."""
    factory: Callable[..., MessageLogStore] = functools.partial(
        MessageLogStore, compact=layout["compact"], compress_bodies=layout["compress_bodies"]
    )
    writer = MessageLogWriter(reactor, path, synchronous=Synchronous.NORMAL, store_factory=factory)
    writer.start()
    began = time.perf_counter()
    queue = iter(entries)
    records: list[LogRecord] = []

    async def client() -> None:
        for entry in queue:
            records.append(await writer.log(entry))

    await defer.gatherResults([defer.Deferred.fromCoroutine(client()) for _ in range(OUTSTANDING)])
    records.sort(key=lambda r: r.id)
    if "stamps" not in made:  # the same tokens for every layout (the records are the same)
        made["stamps"] = stamps(records, ts_batch)
    when = datetime.now(UTC)
    for token, result, assignments in made["stamps"]:
        await writer.run(functools.partial(_add_timestamp, token=token, result=result, assignments=assignments, when=when))
    seconds = time.perf_counter() - began
    await writer.stop()
    return seconds


def measure(path: Path, records: int) -> dict[str, float]:
    """Bytes per record of the file after VACUUM, what the main columns hold per record, and the read rates."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.execute("VACUUM")
    page_count = conn.execute("PRAGMA page_count").fetchone()[0]
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    columns = conn.execute(
        "SELECT avg(length(message)), avg(length(signature)), avg(coalesce(length(hashchain), 0)"
        " + coalesce(length(hashchainresult), 0)), avg(coalesce(length(ts_hashchain), 0)) FROM logrecord"
    ).fetchone()
    shared = conn.execute("SELECT coalesce(sum(length(value)), 0), count(*) FROM evidence_value").fetchone()
    conn.close()
    with MessageLogStore(path) as store:  # reading back: every record whole, then every record's timestamp
        began = time.perf_counter()
        count = sum(1 for _ in store.records())
        read = time.perf_counter() - began
        began = time.perf_counter()
        for record_id in range(1, count + 1):
            store.timestamp_of(record_id)
        stamps = time.perf_counter() - began
    return {
        "read_per_s": count / read, "stamps_per_s": count / stamps,
        "per_record": page_count * page_size / records, "message": columns[0], "signature": columns[1],
        "chains": columns[2], "ts_chain": columns[3], "shared": shared[0] / records, "shared_count": shared[1],
    }


def main(argv: list[str] | None = None) -> None:
    """Every layout, for each signing batch and payload; one line each."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=2000)
    parser.add_argument("--sign-batch", default="1,4", help="messages per batch signature (comma-separated)")
    parser.add_argument("--ts-batch", type=int, default=2000, help="records per batch timestamp")
    parser.add_argument("--payload", default="padded,random", help="padded (x's) and/or random letters")
    args = parser.parse_args(argv)
    if argv is not None:
        # Called by bench/evidence.py: run in a process of its own (a Twisted reactor runs once per process).
        subprocess.run([sys.executable, __file__, *argv], check=True)
        return

    async def run(reactor: Any) -> None:
        with tempfile.TemporaryDirectory(prefix="fedbus-evidence-size-") as work:
            print(f"{args.records} records of SOAP {MESSAGE_SIZE} B messages (request + response), RSA-2048, "
                  f"batch timestamps of {args.ts_batch}; bytes per record = page_count * page_size / N after VACUUM")
            for payload in args.payload.split(","):
                for sign_batch_size in [int(s) for s in args.sign_batch.split(",")]:
                    entries = signed_entries(args.records, sign_batch_size, payload)
                    made: dict[str, Any] = {}
                    for name, layout in LAYOUTS.items():
                        path = Path(work) / f"{payload}-{sign_batch_size}-{name}.db"
                        seconds = await write_log(reactor, path, layout, entries, args.ts_batch, made)
                        found = measure(path, len(entries))
                        over = found["per_record"] - MESSAGE_SIZE
                        print(f"payload={payload:<6} sign-batch={sign_batch_size:<2} {name:<13} "
                              f"{found['per_record']:7.0f} B/record (message + {over:6.0f} B)  columns: "
                              f"message {found['message']:5.0f}  signature {found['signature']:5.0f}  "
                              f"sig chains {found['chains']:5.0f}  ts chain {found['ts_chain']:5.0f}  "
                              f"shared {found['shared']:4.0f} ({found['shared_count']} values)  "
                              f"written in {seconds:5.2f} s; read {found['read_per_s']:6,.0f} records/s, "
                              f"timestamps {found['stamps_per_s']:6,.0f}/s", flush=True)

    task.react(lambda reactor: defer.Deferred.fromCoroutine(run(reactor)))


if __name__ == "__main__":
    main()
