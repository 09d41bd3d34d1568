"""Verifying a message-log shard at speed: ranges of records checked by several processes, joined in chain order.

What ``fedbus audit verify log`` runs for each shard (issue 23). The records ``first..last`` are cut into id ranges
(:data:`RANGES_PER_JOB` per process, at least ``min_chunk`` records each); this process and ``jobs - 1`` worker
processes (``concurrent.futures`` with the ``spawn`` context: never ``fork`` a process that may run Twisted) take
them as they get to them, this one from the front and the workers from the back (:func:`_take`, a shared claim),
so a worker that starts late takes fewer. Each process opens the SQLite file itself, reads its ranges' rows
straight from it (:class:`~security_server.messagelog.raw_records.RawReader`: one statement per range, no record
objects) and keeps one :class:`RangeVerifier` across its ranges; only verdicts come back. For each range it checks:

* the chain inside its range: ids follow, each ``prev_link`` is the previous record's link, each signature hash and
  link is what the record's fields call for (``core.logchain``, as :func:`~security_server.core.logchain.verify_chain`);
* every timestamped record's timestamp, and with a verification configuration its signature
  (:class:`~security_server.core.log_audit.LogAuditor`: each token, batch, signature, certificate and OCSP response
  verified once).

A range cannot know the link before it, so :func:`verify_shard` checks the joints: range *k*'s first record must
follow range *k-1*'s last one (id + 1) and carry its link as ``prev_link`` (the first range: the anchor's). Walking
the ranges in order, the first failure found is the lowest failing record, exactly the one a sequential run names
(a range whose first row cannot be a record fails there).

Timestamps come with the rows: a chain stored derived from its batch's leaves is checked through its leaf, the
batch's result built once from them (:class:`_Stamps`); any other ``ts-hashchain.xml`` is turned back by
:meth:`MessageLogStore.ts_hashchain_from_row` (as :meth:`~MessageLogStore.timestamp_of` does) and compared with the
batch's chains built once from the leaves read straight from the file. With ``jobs`` = 1, or a log too small to
share, everything runs in this process.
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import sqlite3
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Mapping, Sequence

from security_server.core import digests
from security_server.core.errors import BusError, LogChainBroken
from security_server.core.evidence import VerificationConf, read_verification_conf
from security_server.core.hashchain import TS_HASH_CHAIN, batch_hash_chain_result
from security_server.core.log_audit import LogAuditor, Stamp, expected_ts_chains
from security_server.core.logchain import signature_hash
from security_server.messagelog.raw_records import RawReader, RawRecord
from security_server.messagelog.store import FORM_TS_HASHCHAIN, MessageLogStore, derived_ts_hashchain

MIN_CHUNK = 5000
"""Fewest records in a range of their own (below twice this a run stays in one process: a spawned worker costs
about as much CPU to start, import and read the configuration as verifying a few thousand records)."""
RANGES_PER_JOB = 4
"""Ranges per process: taken as each process gets to them, so that none idles while another has work left."""
BLOCK = 512
"""Records read and prepared together (their batch signatures' chains built once)."""
MAX_LISTED = 20
"""Failures of each kind kept per run (the first ones, by record id); the rest are counted."""


@dataclass(frozen=True, slots=True)
class Problem:
    """A record that failed a check, and why."""

    record_id: int
    text: str


@dataclass(frozen=True, slots=True)
class ChunkResult:
    """What one range of records showed; the joints between ranges are checked by :func:`verify_shard`."""

    first: tuple[int, bytes] | None
    """The first record's id and ``prev_link`` (None: no record in the range)."""
    last: tuple[int, bytes] | None
    """The last record's id and link."""
    count: int
    chain: Problem | None
    """The first chain failure inside the range (its first record's joint aside)."""
    stamps: int = 0
    stamp_problems: tuple[Problem, ...] = ()
    stamp_problem_count: int = 0
    signatures: int = 0
    signature_problems: tuple[Problem, ...] = ()
    signature_problem_count: int = 0
    distinct_signatures: int = 0
    without_body: int = 0
    unverifiable: int = 0
    first_waiting: int | None = None
    """The lowest id of a signed record without a timestamp yet."""
    settled: tuple[int, bytes] | None = None
    """The id and link of the record just before ``first_waiting`` (None: the range starts with it)."""


@dataclass(frozen=True, slots=True)
class ShardResult:
    """One shard's verdict: its chain, timestamps and signatures, and how far everything is verified."""

    first_id: int
    count: int
    chain: Problem | None
    stamps: int
    stamp_problems: tuple[Problem, ...]
    stamp_problem_count: int
    signatures: int
    signature_problems: tuple[Problem, ...]
    signature_problem_count: int
    distinct_signatures: int
    without_body: int = 0
    """Signed records logged without their body whose body digest was taken as signed (REST)."""
    unverifiable: int = 0
    """SOAP records logged with an emptied body: the signed message digest cannot be checked."""
    verified_to: tuple[int, bytes] | None = field(default=None)
    """The last record up to which everything verified and no record waits for a timestamp, and its link."""

    @property
    def failure(self) -> str | None:
        """The first failure of any kind, in words (None: the shard verified)."""
        for problem in (self.chain, *self.stamp_problems[:1], *self.signature_problems[:1]):
            if problem is not None:
                return f"record {problem.record_id}: {problem.text}"
        return None


def _conf(conf: VerificationConf | Mapping[str, bytes] | None) -> VerificationConf | None:
    if conf is None or isinstance(conf, VerificationConf):
        return conf
    return read_verification_conf(conf)


class _Stamps:
    """The records' timestamps (their columns read with the rows), and each batch's chains as the timestamper writes
    them, checked once per batch.

    A record whose ``ts-hashchain.xml`` is stored derived (the timestamper's chain over its batch's leaves, at its
    index: :data:`~security_server.messagelog.store.FORM_TS_HASHCHAIN`) is not rebuilt: the batch's leaves
    (:meth:`MessageLogStore.ts_leaves`) are read once and their result built once
    (:func:`~security_server.core.hashchain.batch_hash_chain_result`); when it is the stored result, the record's
    chain holds exactly when its leaf is the record's signature hash (:attr:`Stamp.leaf`). Otherwise (another form,
    a changed value, a leaf that is not the record's) the chain is turned back by the store
    (:meth:`MessageLogStore.ts_hashchain_from_row`) and checked as before: against the batch's chains built once
    from the leaves read straight from the file, else in full (:meth:`LogAuditor.stamp_failure`). Tokens are read
    once per timestamp. Once a batch's leaves gave its result, :meth:`quick_leaf` gives the leaf of each further
    record of the batch without building its stamp.
    """

    def __init__(self, store: MessageLogStore) -> None:
        self._store = store
        self._db = store.database
        self._tokens: dict[int, tuple[bytes, bytes | None] | None] = {}
        self._built: dict[int, dict[int, tuple[bytes, bytes]]] = {}
        self._batch: tuple[bytes, bytes, tuple[bytes, ...] | None] | None = None
        self._quick: tuple[int, bytes, tuple[bytes, ...]] | None = None
        """(timestamp id, leaves' address, leaves) of the current batch, once its leaves gave its stored result."""

    def quick_leaf(self, record: RawRecord) -> bytes | None:
        """The leaf at a record's place when its chain is derived from the current batch's leaves, already found to
        give the result its timestamp states (None: :meth:`of` says what the record's stamp is)."""
        quick = self._quick
        chain, form = record.ts_hashchain, record.stored_form
        if quick is None or record.timestamp_id != quick[0] or type(form) is not int or not form & FORM_TS_HASHCHAIN:
            return None
        try:
            address, index = derived_ts_hashchain(chain)  # type: ignore[arg-type]
        except ValueError:
            return None
        leaves = quick[2]
        return leaves[index] if address == quick[1] and index < len(leaves) else None

    def of(self, record: RawRecord) -> Stamp | str | None:
        """The record's stamp, or why it cannot be read (None: not timestamped)."""
        stamp_id, chain, form = record.timestamp_id, record.ts_hashchain, record.stored_form
        if type(stamp_id) is not int or stamp_id <= 0:
            return None  # not timestamped yet, or nothing to timestamp (no signature)
        token = self._token(stamp_id)
        if token is None:
            return None  # a record pointing to no stored timestamp is not timestamped (as timestamp_of says)
        leaf = self._leaf(stamp_id, token[1], chain, form)
        if leaf is not None:
            return Stamp(stamp_id, token[0], token[1], None, leaf)
        try:
            return Stamp(stamp_id, token[0], token[1], self._store.ts_hashchain_from_row(record.id, chain, form))
        except BusError as err:
            return err.reason

    def _leaf(self, stamp_id: int, result: bytes | None, chain: object, form: object) -> bytes | None:
        """The leaf at a derived chain's place when its batch's leaves give ``result`` exactly (None: check the chain)."""
        if result is None or type(chain) is not bytes or type(form) is not int or not form & FORM_TS_HASHCHAIN:
            return None
        try:
            address, index = derived_ts_hashchain(chain)
        except ValueError:
            return None
        batch = self._batch
        if batch is None or batch[0] != address or batch[1] != result:
            leaves: tuple[bytes, ...] | None
            try:
                leaves = self._store.ts_leaves(address)
                if batch_hash_chain_result(leaves, chain_uri=TS_HASH_CHAIN, algorithm=digests.SHA512) != result:
                    leaves = None
            except (KeyError, ValueError):
                leaves = None
            batch = self._batch = (address, result, leaves)  # batches come in id order: keep the current one
        leaves = batch[2]
        self._quick = None if leaves is None else (stamp_id, address, leaves)
        return None if leaves is None or index >= len(leaves) else leaves[index]

    def with_chain(self, record: RawRecord, stamp: Stamp) -> Stamp | str:
        """``stamp`` with the record's ``ts-hashchain.xml`` turned back (for the exact verdict when its leaf is not
        the record's), or why it cannot be read."""
        try:
            chain = self._store.ts_hashchain_from_row(record.id, record.ts_hashchain, record.stored_form)
            return Stamp(stamp.id, stamp.token, stamp.hash_chain_result, chain)
        except BusError as err:
            return err.reason

    def _token(self, stamp_id: int) -> tuple[bytes, bytes | None] | None:
        if stamp_id not in self._tokens:
            row = self._db.execute("SELECT token, hash_chain_result FROM timestamp WHERE id = ?", [stamp_id]).fetchone()
            self._tokens = {stamp_id: None if row is None else (bytes(row[0]), None if row[1] is None else bytes(row[1]))}
        return self._tokens[stamp_id]

    def expected(self, stamp: Stamp) -> dict[int, tuple[bytes, bytes]]:
        """``{record id: (leaf, ts-hashchain.xml)}`` of the batch of ``stamp`` (empty: not in the timestamper's form)."""
        if stamp.leaf is not None:
            return {}  # checked through its leaf
        built = self._built.get(stamp.id)
        if built is None:
            built = {}
            if stamp.hash_chain_result is not None:
                try:
                    leaves = self._db.execute(
                        "SELECT id, signature_hash FROM logrecord WHERE timestamp_id = ? ORDER BY id", [stamp.id]
                    ).fetchall()
                    built = expected_ts_chains([(int(i), bytes(h)) for i, h in leaves], stamp.hash_chain_result)
                except (sqlite3.Error, TypeError, ValueError):
                    built = {}
            self._built = {stamp.id: built}  # batches come in id order: keep the current one
        return built


class RangeVerifier:
    """Verifies ranges of one log in this process (chain inside each range, timestamps, signatures), keeping what
    the ranges share from one to the next: the open file, the shared values and documents read, and the auditor's
    verified tokens, signatures, certificate paths and OCSP responses."""

    def __init__(self, path: str | Path, conf: VerificationConf | Mapping[str, bytes] | None, now: datetime) -> None:
        self._auditor = LogAuditor(_conf(conf), now)
        self._store = MessageLogStore(path)
        self._reader = RawReader(self._store)
        self._stamps = _Stamps(self._store)

    def close(self) -> None:
        """Close the file."""
        self._store.close()

    def __enter__(self) -> RangeVerifier:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def verify(self, lo: int, hi: int) -> ChunkResult:
        """Verify records ``lo..hi`` (the joint with the record before ``lo`` is :func:`join_chunks`' to check)."""
        auditor = self._auditor
        distinct, without_body, unverifiable = auditor.signatures_verified, auditor.without_body, auditor.unverifiable
        first: tuple[int, bytes] | None = None
        last: tuple[int, bytes] | None = None
        chain: Problem | None = None
        count = stamped = signed = 0
        stamp_problems: list[Problem] = []
        signature_problems: list[Problem] = []
        first_waiting: int | None = None
        previous: tuple[int, bytes] | None = None
        settled: tuple[int, bytes] | None = None
        try:
            for block in self._reader.blocks(lo, hi, BLOCK):
                auditor.prepare(block)
                hashed: dict[bytes, bytes] = {}
                for record in block:
                    count += 1
                    if last is None:
                        first = (record.id, record.prev_link)
                    elif chain is None:
                        if record.id != last[0] + 1:
                            chain = Problem(record.id, f"message log record {record.id} does not follow record {last[0]}")
                        elif record.prev_link != last[1]:
                            chain = Problem(record.id, f"message log record {record.id} does not link to record {last[0]}")
                    # A batch's records carry the same signature: hashed once, then compared byte for byte.
                    if hashed.get(record.signature_hash) == record.signature:
                        sig_hash = record.signature_hash
                    else:
                        sig_hash = signature_hash(record.signature)
                        hashed[sig_hash] = record.signature
                    if chain is None:
                        if record.signature_hash != sig_hash:
                            chain = Problem(
                                record.id, f"message log record {record.id}: signature hash does not match the signature"
                            )
                        elif record.expected_link != record.link:
                            chain = Problem(record.id, f"message log record {record.id} was changed after it was written")
                    previous = last
                    last = (record.id, record.link)
                    leaf = self._stamps.quick_leaf(record)
                    if leaf is not None and leaf == sig_hash and auditor.stamp_holds(record.timestamp_id):  # type: ignore[arg-type]
                        # Its batch's token and result verified, its leaf its signature hash: what stamp_failure finds.
                        stamped += 1
                        at = auditor.stamp_time(record.timestamp_id)  # type: ignore[arg-type]
                    else:
                        stamp = self._stamps.of(record)
                        if stamp is not None:
                            stamped += 1
                            if isinstance(stamp, Stamp) and stamp.leaf is not None and stamp.leaf != sig_hash:
                                stamp = self._stamps.with_chain(record, stamp)  # not the record's leaf: its chain says why
                            if isinstance(stamp, str):
                                failed: str | None = stamp
                            else:
                                failed = auditor.stamp_failure(record.id, record.signature, sig_hash, stamp, self._stamps.expected(stamp))
                            if failed is not None:
                                stamp_problems.append(Problem(record.id, failed))
                        elif record.signature and first_waiting is None:
                            first_waiting, settled = record.id, previous
                        at = auditor.stamp_time(stamp.id) if isinstance(stamp, Stamp) else None
                    if auditor.conf is not None and record.signature:
                        signed += 1
                        failed = auditor.signature_failure(record, sig_hash, at)
                        if failed is not None:
                            signature_problems.append(Problem(record.id, failed))
        except LogChainBroken as err:  # a row that cannot be a record: the chain breaks there
            where = err.record_id if err.record_id is not None else (last[0] + 1 if last else lo)
            if chain is None:
                chain = Problem(where, err.reason)
            last = None if last is None else (last[0], b"")
        return ChunkResult(
            first=first,
            last=last,
            count=count,
            chain=chain,
            stamps=stamped,
            stamp_problems=tuple(stamp_problems[:MAX_LISTED]),
            stamp_problem_count=len(stamp_problems),
            signatures=signed,
            signature_problems=tuple(signature_problems[:MAX_LISTED]),
            signature_problem_count=len(signature_problems),
            distinct_signatures=auditor.signatures_verified - distinct,
            without_body=auditor.without_body - without_body,
            unverifiable=auditor.unverifiable - unverifiable,
            first_waiting=first_waiting,
            settled=settled,
        )


def verify_chunk(
    path: str | Path, lo: int, hi: int, conf: VerificationConf | Mapping[str, bytes] | None, now: datetime
) -> ChunkResult:
    """Verify records ``lo..hi`` of the log at ``path`` (chain inside the range, timestamps, signatures)."""
    with RangeVerifier(path, conf, now) as verifier:
        return verifier.verify(lo, hi)


def _ranges(lo: int, hi: int, parts: int, min_chunk: int) -> list[tuple[int, int]]:
    """``lo..hi`` cut into at most ``parts`` ranges of at least ``min_chunk`` records (one when too few)."""
    if hi < lo:
        return []
    parts = max(1, min(parts, (hi - lo + 1) // min_chunk))
    size = -(-(hi - lo + 1) // parts)
    return [(start, min(hi, start + size - 1)) for start in range(lo, hi + 1, size)]


# The ranges not yet taken, shared by this process and its workers: [next from the front, next from the back].
_Claim = Any
_WORKER_CLAIM: _Claim = None


def _take(claim: _Claim, *, from_back: bool) -> int | None:
    """The index of a range nobody has taken yet (this process takes from the front, workers from the back)."""
    with claim.get_lock():
        front, back = claim[0], claim[1]
        if front > back:
            return None
        if from_back:
            claim[1] = back - 1
            return int(back)
        claim[0] = front + 1
        return int(front)


def _keep_claim(claim: _Claim) -> None:
    """A worker's initializer: the shared claim comes with the process (as shared memory must)."""
    global _WORKER_CLAIM
    _WORKER_CLAIM = claim


def _work(path: str, conf_files: Mapping[str, bytes] | None, now: datetime, ranges: Sequence[tuple[int, int]]) -> list[tuple[int, ChunkResult]]:
    """A worker: verify ranges taken from the back until none is left; their results by index."""
    done: list[tuple[int, ChunkResult]] = []
    index = _take(_WORKER_CLAIM, from_back=True)
    if index is None:
        return done
    with RangeVerifier(path, conf_files, now) as verifier:
        while index is not None:
            done.append((index, verifier.verify(*ranges[index])))
            index = _take(_WORKER_CLAIM, from_back=True)
    return done


def _run(path: Path, ranges: Sequence[tuple[int, int]], conf: VerificationConf | None, conf_files: Mapping[str, bytes] | None, now: datetime, jobs: int) -> list[ChunkResult]:
    if len(ranges) <= 1 or jobs <= 1:
        with RangeVerifier(path, conf, now) as verifier:
            return [verifier.verify(lo, hi) for lo, hi in ranges]
    # Workers (one fewer than jobs: this process verifies too) are spawned, get the configuration's files
    # (certificate objects do not pickle) and read the file themselves; only verdicts come back. The ranges are
    # taken as each process gets to them (this one from the front, the workers from the back), so a worker that
    # starts late (a spawned process imports and reads the configuration first) takes fewer, and no process idles
    # while another has several ranges left.
    context = multiprocessing.get_context("spawn")
    claim = context.Array("q", [0, len(ranges) - 1])
    results: dict[int, ChunkResult] = {}
    workers = min(jobs, len(ranges)) - 1
    pool = concurrent.futures.ProcessPoolExecutor(
        max_workers=workers, mp_context=context, initializer=_keep_claim, initargs=(claim,)
    )
    try:
        futures = [pool.submit(_work, str(path), conf_files, now, ranges) for _ in range(workers)]
        with RangeVerifier(path, conf if conf is not None else conf_files, now) as verifier:
            while (index := _take(claim, from_back=False)) is not None:
                results[index] = verifier.verify(*ranges[index])
        if len(results) < len(ranges):
            for future in futures:
                results.update(future.result())
    except BaseException:
        with claim.get_lock():  # a failed run: the workers take no further range
            claim[0] = claim[1] + 1
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)  # a worker still starting finds nothing left to take
    return [results[index] for index in range(len(ranges))]


def verify_shard(
    path: Path,
    conf: VerificationConf | None,
    now: datetime,
    *,
    jobs: int = 1,
    conf_files: Mapping[str, bytes] | None = None,
    since: tuple[int, bytes] | None = None,
    min_chunk: int = MIN_CHUNK,
) -> ShardResult:
    """Verify the shard at ``path`` from its anchor (or after record ``since`` = (id, link)) with ``jobs`` processes.

    ``conf_files`` are the verification configuration's files (what ``conf`` was read from), for the workers; without
    them a run with a configuration stays in this process. Each worker gets at least ``min_chunk`` records.
    """
    with MessageLogStore(path) as store:
        first_id, start_link = store.anchor()
        last_id, _ = store.head()
    if since is not None:
        first_id, start_link = since[0] + 1, since[1]
    if conf is not None and conf_files is None:
        jobs = 1
    parts = jobs * RANGES_PER_JOB if jobs > 1 else 1
    chunks = _run(path, _ranges(first_id, last_id, parts, min_chunk), conf, conf_files, now, jobs)
    return join_chunks(chunks, first_id, start_link)


def join_chunks(chunks: Sequence[ChunkResult], first_id: int, start_link: bytes) -> ShardResult:
    """One shard's verdict from its ranges' results, in order: the joints checked, the first failure kept."""
    previous: tuple[int, bytes] | None = None
    chain: Problem | None = None
    count = 0
    for chunk in chunks:
        count += chunk.count
        if chain is not None:
            continue
        if chunk.first is None or chunk.last is None:
            chain = chunk.chain  # no record read: none at all (None), or its first row cannot be a record
            continue
        record_id, prev_link = chunk.first
        if previous is not None and record_id != previous[0] + 1:
            chain = Problem(record_id, f"message log record {record_id} does not follow record {previous[0]}")
        elif prev_link != (start_link if previous is None else previous[1]):
            after = "the start of the chain" if previous is None else f"record {previous[0]}"
            chain = Problem(record_id, f"message log record {record_id} does not link to {after}")
        else:
            chain = chunk.chain
        previous = chunk.last

    def problems(name: str) -> tuple[tuple[Problem, ...], int]:
        found = sorted((p for chunk in chunks for p in getattr(chunk, name)), key=lambda p: p.record_id)
        return tuple(found[:MAX_LISTED]), sum(getattr(chunk, f"{name[:-1]}_count") for chunk in chunks)

    stamp_problems, stamp_count = problems("stamp_problems")
    signature_problems, signature_count = problems("signature_problems")
    verified_to: tuple[int, bytes] | None = None
    if chain is None and not stamp_count and not signature_count:
        verified_to = (first_id - 1, start_link)
        for chunk in chunks:
            if chunk.first_waiting is not None:
                verified_to = chunk.settled or verified_to
                break
            verified_to = chunk.last or verified_to
    return ShardResult(
        first_id=first_id,
        count=count,
        chain=chain,
        stamps=sum(chunk.stamps for chunk in chunks),
        stamp_problems=stamp_problems,
        stamp_problem_count=stamp_count,
        signatures=sum(chunk.signatures for chunk in chunks),
        signature_problems=signature_problems,
        signature_problem_count=signature_count,
        distinct_signatures=sum(chunk.distinct_signatures for chunk in chunks),
        without_body=sum(chunk.without_body for chunk in chunks),
        unverifiable=sum(chunk.unverifiable for chunk in chunks),
        verified_to=verified_to,
    )

