"""Evidence at scale (issue 23): build a realistic message log, then time ``fedbus audit verify log`` on it.

``python bench/evidence.py [--records 50000] [--sign-batch 4] [--ts-batch 2000] [--jobs 1,2] [--repeat 3] [--db FILE]
[--only] [--no-conf] [--profile]``

The log holds SOAP 1 KiB exchanges (a request signed by the consumer, a response signed by the provider) as a
security server writes them: messages signed in batches as the batch signer does (``core.signature.sign_batch``:
one XAdES signature over a hash chain, each message its own ``sig-hashchain.xml``), each signer's real OCSP response
embedded, every record hash-linked by the store, and the records timestamped in batches of ``--ts-batch`` by a real
RFC 3161 token over the ``ts-hashchainresult.xml`` of their signature hashes, as the timestamper does. Nothing is
replicated: each record has its own id, message, link and hash chains, so the verifier does all its work. The log is
kept in ``--db`` (default: a file under the temporary folder named after the parameters) and reused when present.

Then the verifier (``security_server.messagelog.log_verifier``, what ``verify log`` runs) checks the whole log with
``--conf`` (chains, timestamps and tokens, signatures, certificates and OCSP) with ``--jobs 1`` and ``--jobs 2``
``--repeat`` times each (interleaved), printing per run and as medians the records per second (wall clock), the CPU
time per record of this process and its workers (``getrusage``, the workers reaped) as records per CPU-second, and
the load average; ``--profile`` adds a cProfile (CPU time) of one ``--jobs 1`` run, ``--no-conf`` times it without a
configuration (chain and timestamps only), and ``--only`` skips the other benchmarks.
(The verifier before issue 23 checked about 170 records/s on one core: each record's timestamp token decoded anew.)

The other evidence benchmarks of issue 23 (``bench/evidence_size.py``, ``bench/evidence_search.py``,
``bench/evidence_archive.py``) are run after this one when present. The PKI is the test federation's, made in a
temporary folder. This is not a test and never fails on a slow machine.
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import importlib
import io
import os
import pstats
import resource
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

if TYPE_CHECKING:
    from security_server.core.logchain import LogEntry
    from security_server.messagelog.store import MessageLogStore

# What building the log needs (the test federation's PKI, the signer, the store) is imported where it is used: a
# spawned --jobs worker imports this module as its main module, and should pay only for the verifier's imports.

MESSAGE_SIZE = 1024
EXCHANGES_PER_SECOND = 200


def _sized(query_id: str, *, response: bool, request_hash: bytes | None = None) -> bytes:
    """A SOAP request or response of the test federation's service, padded to :data:`MESSAGE_SIZE` bytes."""
    from tests.federation.evidence import soap_message
    bare = soap_message(query_id, response=response, request_hash=request_hash, payload="")
    return soap_message(
        query_id, response=response, request_hash=request_hash, payload="7" * max(0, MESSAGE_SIZE - len(bare))
    )


def build_log(path: Path, records: int, *, sign_batch_size: int = 4, ts_batch: int = 2000) -> Path:
    """Write a message log of ``records`` signed, linked and batch-timestamped SOAP records to ``path``."""
    from security_server.core.logchain import Direction, LogEntry
    from security_server.core.signature import MessagePart, sign_batch
    from security_server.messagelog.store import MessageLogStore, Synchronous
    from tests.federation.ca import ocsp_for  # the test federation's PKI
    from tests.federation.departments import CONSUMER, SERVICE
    from tests.federation.evidence import federation

    fed = federation()
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=30)
    ocsp = {id(fed.consumer): ocsp_for(fed.ca, fed.consumer.cert, start - timedelta(seconds=5)),
            id(fed.provider): ocsp_for(fed.ca, fed.provider.cert, start - timedelta(seconds=5))}
    exchanges = records // 2
    with MessageLogStore(path, synchronous=Synchronous.NORMAL) as store:
        pending: list[LogEntry] = []
        for first in range(0, exchanges, sign_batch_size):
            numbers = range(first, min(first + sign_batch_size, exchanges))
            moment = start + timedelta(seconds=first / EXCHANGES_PER_SECOND)
            requests = [_sized(f"bench-{n}", response=False) for n in numbers]
            responses = [
                _sized(f"bench-{n}", response=True, request_hash=hashlib.sha512(request).digest())
                for n, request in zip(numbers, requests)
            ]
            signed: list[tuple[Direction, bytes, object]] = []
            for who, direction, messages in ((fed.consumer, Direction.REQUEST, requests),
                                             (fed.provider, Direction.RESPONSE, responses)):
                datas = sign_batch([[MessagePart.of("/message.xml", m)] for m in messages], who.cert, who.key,
                                   ocsp[id(who)], moment)
                signed += [(direction, m, d) for m, d in zip(messages, datas)]
            # Each exchange's request then its response, as a consumer's server logs them.
            order = [signed[i] for pair in zip(range(len(numbers)), range(len(numbers), 2 * len(numbers))) for i in pair]
            for (direction, message, data), n in zip(order, [n for n in numbers for _ in (0, 1)]):
                pending.append(LogEntry(
                    query_id=f"bench-{n}", direction=direction, client=str(CONSUMER), service=str(SERVICE),
                    time=moment, message=message, signature=data.signature_xml,  # type: ignore[attr-defined]
                    hashchain=data.hash_chain, hashchainresult=data.hash_chain_result,  # type: ignore[attr-defined]
                ))
            while len(pending) >= ts_batch:
                _append_stamped(store, pending[:ts_batch], moment)
                del pending[:ts_batch]
        if pending:
            _append_stamped(store, pending, start + timedelta(seconds=exchanges / EXCHANGES_PER_SECOND))
        return path


def _append_stamped(store: MessageLogStore, entries: list[LogEntry], when: datetime) -> None:
    """Append ``entries`` and timestamp them as one batch (or one lone record), as the timestamper does."""
    from security_server.core.hashchain import SIGNATURE, TS_HASH_CHAIN, build_hash_chain
    from security_server.core.logchain import signature_hash
    from security_server.messagelog.store import TimestampAssignment
    from tests.federation.evidence import token_over

    records = [(r.id, r.signature) for r in store.append_entries(entries)]
    if len(records) == 1:
        from security_server.core.signature import signature_value

        token = token_over(signature_value(records[0][1]), when)
        store.add_timestamp(token, None, [TimestampAssignment(records[0][0], None)], time=when)
        return
    chains = build_hash_chain([[signature_hash(sig)] for _, sig in records], chain_uri=TS_HASH_CHAIN, data_uri=SIGNATURE)
    token = token_over(chains.result, when)
    store.add_timestamp(
        token, chains.result, [TimestampAssignment(rid, chain) for (rid, _), chain in zip(records, chains.chains)],
        time=when,
    )


def _default_db(records: int, sign_batch_size: int, ts_batch: int) -> Path:
    return Path(tempfile.gettempdir()) / f"fedbus-evidence-{records}-s{sign_batch_size}-t{ts_batch}" / "messagelog.db"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=50_000)
    parser.add_argument("--sign-batch", type=int, default=4, help="messages per batch signature")
    parser.add_argument("--ts-batch", type=int, default=2000, help="records per batch timestamp")
    parser.add_argument("--jobs", default="1,2", help="worker counts to time, comma-separated")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each worker count (medians printed)")
    parser.add_argument("--db", type=Path, help="the message log to build or reuse")
    parser.add_argument("--profile", action="store_true", help="print a cProfile of one --jobs 1 run")
    parser.add_argument("--only", action="store_true", help="do not run the other evidence benchmarks")
    parser.add_argument("--no-conf", action="store_true", help="time verify log without --conf (chain, timestamps)")
    args = parser.parse_args(argv)
    db = args.db or _default_db(args.records, args.sign_batch, args.ts_batch)
    conf_dir = db.parent / "verificationconf"
    if not db.exists() or not conf_dir.is_dir():
        db.parent.mkdir(parents=True, exist_ok=True)
        began = time.perf_counter()
        build_log(db, args.records, sign_batch_size=args.sign_batch, ts_batch=args.ts_batch)
        # The PKI is made per process: the log's verification configuration is kept next to it.
        from tests.federation.evidence import federation

        federation().write_verificationconf(conf_dir)
        print(f"built {args.records} records in {time.perf_counter() - began:.1f} s: {db}")
    else:
        print(f"reusing {db}")
    print(f"log: {db.stat().st_size / args.records:.0f} bytes per record on disk")
    _time_verifier(
        db, conf_dir, [int(j) for j in args.jobs.split(",") if j], profile=args.profile, with_conf=not args.no_conf,
        repeat=args.repeat,
    )
    if not args.only:
        for name in ("evidence_size", "evidence_search", "evidence_archive"):
            if (Path(__file__).parent / f"{name}.py").exists():
                print(f"--- bench/{name}.py")
                importlib.import_module(f"bench.{name}").main([])


def _cpu_seconds() -> float:
    """CPU seconds used by this process and its finished (reaped) child processes."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _load() -> str:
    """The load averages (1, 5 and 15 minutes), as /proc/loadavg gives them."""
    return " ".join(f"{value:.1f}" for value in os.getloadavg())


def _time_verifier(
    db: Path, conf_dir: Path, jobs_list: list[int], *, profile: bool, with_conf: bool = True, repeat: int = 3
) -> None:
    import multiprocessing
    import statistics

    from security_server.core.evidence import read_verification_conf
    from security_server.messagelog.log_verifier import verify_shard

    files = {p.relative_to(conf_dir).as_posix(): p.read_bytes() for p in conf_dir.rglob("*") if p.is_file()}
    conf = read_verification_conf(files) if with_conf else None
    runs: dict[int, list[tuple[float, float]]] = {jobs: [] for jobs in jobs_list}
    flag = " --conf" if with_conf else ""
    for _ in range(repeat):
        for jobs in jobs_list:  # interleaved, so that a change in the machine's load weighs on every figure alike
            began, cpu = time.perf_counter(), _cpu_seconds()
            result = verify_shard(db, conf, datetime.now(UTC), jobs=jobs, conf_files=files if with_conf else None)
            seconds = time.perf_counter() - began
            for child in multiprocessing.active_children():
                child.join()  # the workers' CPU time counts once they are reaped
            cpu = _cpu_seconds() - cpu
            state = "verified" if result.failure is None else f"FAILED: {result.failure}"
            runs[jobs].append((result.count / seconds, cpu / result.count))
            # CPU time (this process and its workers) says what each core does when the machine is shared.
            print(f"verify log{flag} --jobs {jobs}: {result.count} records in {seconds:.2f} s = "
                  f"{result.count / seconds:,.0f} records/s ({state}); CPU {cpu / result.count * 1e6:.1f} us per "
                  f"record = {result.count / cpu:,.0f} records per CPU-second; load average {_load()}")
    for jobs, measured in runs.items():
        rate = statistics.median(r for r, _ in measured)
        per_record = statistics.median(c for _, c in measured)
        print(f"median of {len(measured)}, verify log{flag} --jobs {jobs}: {rate:,.0f} records/s (wall); "
              f"CPU {per_record * 1e6:.1f} us per record = {1 / per_record:,.0f} records per CPU-second")
    if profile:
        profiler = cProfile.Profile(time.process_time)  # CPU time: on a shared machine wall time is mostly waiting
        profiler.enable()
        verify_shard(db, conf, datetime.now(UTC), jobs=1)
        profiler.disable()
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(15)
        print(out.getvalue())


if __name__ == "__main__":
    main()
