"""Verifying a message-log shard in ranges (worker processes): same verdicts as one pass, first failure exact."""

from __future__ import annotations

import dataclasses
import hashlib
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from security_server.core.body_logging import entry_without_body
from security_server.core.errors import BusError, LogChainBroken
from security_server.core.evidence import verification_conf_files
from security_server.core.log_audit import LogAuditor, Stamp
from security_server.core.logchain import Direction, LogEntry
from security_server.core.rest import RestRequest
from security_server.core.timestamp import verify_timestamp_token
from security_server.messagelog.log_verifier import ShardResult, join_chunks, verify_chunk, verify_shard
from security_server.messagelog.store import MessageLogStore, TimestampAssignment
from tests.federation.departments import CONSUMER, INSTANCE, SERVICE
from tests.federation.evidence import batch_signed, exchange, federation, signed_entry, soap_message, stamp_batch
from tests.security_server.messagelog.stamping import write_log

T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10)


def stamp_all_at(store: MessageLogStore, when: datetime) -> None:
    """Timestamp every record of ``store`` in one batch whose token says ``when``."""
    records = list(store.records())
    stamped = stamp_batch(records, when)
    token = stamped[0][1].timestamp
    store.add_timestamp(
        token.token, token.hash_chain_result,
        [TimestampAssignment(record.id, stamp.hash_chain) for record, stamp in stamped], time=when,
    )


def twelve() -> list[LogEntry]:
    """Two exchanges (direct signatures) and eight batch-signed requests: twelve records."""
    return [*exchange("v-1", T0), *batch_signed("batch", 0, 4, T0), *exchange("v-2", T0), *batch_signed("batch", 4, 4, T0)]


@pytest.fixture()
def log(tmp_path: Path) -> Path:
    """A twelve-record log, timestamped."""
    return write_log(tmp_path / "messagelog.db", twelve())


def conf_files() -> dict[str, bytes]:
    """The federation's verification configuration as files."""
    return verification_conf_files(federation().shared_parameters_xml(), INSTANCE)


def ranges(path: Path, bounds: list[tuple[int, int]], *, conf: bool = True) -> ShardResult:
    """Verify ``path`` range by range in this process, then join the ranges as verify_shard does."""
    now = datetime.now(UTC)
    chunks = [verify_chunk(path, lo, hi, conf_files() if conf else None, now) for lo, hi in bounds]
    with MessageLogStore(path) as store:
        first_id, link = store.anchor()
    return join_chunks(chunks, first_id, link)


def test_an_intact_log_verifies_in_one_range_or_in_several(log: Path) -> None:
    """Chain, timestamps and signatures verify, and ranges give the same counts as one pass."""
    whole = verify_shard(log, federation().conf(), datetime.now(UTC))
    split = ranges(log, [(1, 5), (6, 9), (10, 12)])
    for result in (whole, split):
        assert result.failure is None and result.count == 12 and result.stamps == 12 and result.signatures == 12
    # Two batches of four share one signature each: 2 + 2 direct + 2 batch = 6 signatures verified in full.
    assert whole.distinct_signatures == 6
    assert whole.verified_to is not None and whole.verified_to[0] == 12


def test_worker_processes_give_the_verdict_of_one_process(log: Path) -> None:
    """With --jobs 2 (spawned workers, each opening the file) the result is the one-process result."""
    one = verify_shard(log, federation().conf(), datetime.now(UTC))
    two = verify_shard(log, federation().conf(), datetime.now(UTC), jobs=2, conf_files=conf_files(), min_chunk=3)
    assert dataclasses.replace(two, distinct_signatures=0) == dataclasses.replace(one, distinct_signatures=0)


def test_an_edit_at_the_first_record_of_a_range_is_named(log: Path) -> None:
    """A record changed where a range starts: the range cannot see it, the joint and the record's link can."""
    with sqlite3.connect(log) as conn:
        conn.execute("UPDATE logrecord SET query_id = 'edited' WHERE id = 6")
    result = ranges(log, [(1, 5), (6, 9), (10, 12)])
    assert result.chain is not None and result.chain.record_id == 6 and "changed after it was written" in result.chain.text


def test_a_record_removed_at_a_joint_is_named_by_the_next(log: Path) -> None:
    """The first record of a range deleted: the next record does not follow the previous range's last."""
    with sqlite3.connect(log) as conn:
        conn.execute("DELETE FROM logrecord WHERE id = 6")
    result = ranges(log, [(1, 5), (6, 9), (10, 12)])
    assert result.chain is not None and result.chain.record_id == 7 and "does not follow record 5" in result.chain.text


def test_the_lowest_failure_wins_across_ranges(log: Path) -> None:
    """Edits in two ranges: the one in the earlier range is the first failure, as in one pass."""
    with sqlite3.connect(log) as conn:
        conn.execute("UPDATE logrecord SET query_id = 'edited' WHERE id IN (4, 11)")
    assert ranges(log, [(1, 5), (6, 9), (10, 12)]).chain.record_id == 4  # type: ignore[union-attr]
    assert verify_shard(log, None, datetime.now(UTC)).chain.record_id == 4  # type: ignore[union-attr]


def test_a_message_relinked_after_an_edit_fails_its_signature(tmp_path: Path) -> None:
    """An edited message with every link rebuilt passes the chain and timestamps; its signature check names it."""
    entries = twelve()
    entries[3] = dataclasses.replace(entries[3], message=entries[3].message.replace(b"<seed>1<", b"<seed>9<"))
    path = write_log(tmp_path / "messagelog.db", entries)
    without = verify_shard(path, None, datetime.now(UTC))
    assert without.failure is None
    result = verify_shard(path, federation().conf(), datetime.now(UTC))
    assert result.chain is None and [p.record_id for p in result.signature_problems] == [4]
    assert "hash chain" in result.signature_problems[0].text or "digest" in result.signature_problems[0].text


def test_a_record_naming_another_member_fails_its_signature(tmp_path: Path) -> None:
    """A request whose record names a client of another member than the signing certificate's: refused."""
    entries = twelve()
    entries[0] = dataclasses.replace(entries[0], client="SUBSYSTEM:EE/GOV/99999999/other")
    result = verify_shard(write_log(tmp_path / "messagelog.db", entries), federation().conf(), datetime.now(UTC))
    assert [p.record_id for p in result.signature_problems] == [1]
    assert "does not belong to the member" in result.signature_problems[0].text


def test_a_ts_chain_in_another_form_is_verified_in_full(log: Path) -> None:
    """A valid ts chain not byte-equal to the timestamper's form (whitespace added) still verifies; a wrong one fails."""
    with sqlite3.connect(log) as conn:
        chain = conn.execute("SELECT ts_hashchain FROM logrecord WHERE id = 2").fetchone()[0]
        conn.execute("UPDATE logrecord SET ts_hashchain = ? WHERE id = 2", [chain.replace(b"</ns2:HashChain>", b" </ns2:HashChain>")])
        other = conn.execute("SELECT ts_hashchain FROM logrecord WHERE id = 9").fetchone()[0]
        conn.execute("UPDATE logrecord SET ts_hashchain = ? WHERE id = 8", [other])
    result = verify_shard(log, None, datetime.now(UTC))
    assert [p.record_id for p in result.stamp_problems] == [8]


def test_verified_to_stops_before_the_first_record_waiting_for_a_timestamp(log: Path) -> None:
    """Records appended after the stamp are verified but the checkpoint mark stays before the first unstamped one."""
    with MessageLogStore(log) as store:
        store.append_entries([*exchange("late", T0 + timedelta(minutes=1))])
        link = store.get(12).link  # type: ignore[union-attr]
    result = verify_shard(log, None, datetime.now(UTC))
    assert result.failure is None and result.count == 14 and result.verified_to == (12, link)


def test_since_verifies_only_the_records_after(log: Path) -> None:
    """From a mark (id, link): only the later records are read, linked from that link."""
    with MessageLogStore(log) as store:
        mark = store.get(8)
    assert mark is not None
    result = verify_shard(log, None, datetime.now(UTC), since=(8, mark.link))
    assert result.failure is None and result.count == 4 and result.first_id == 9
    wrong = verify_shard(log, None, datetime.now(UTC), since=(8, hashlib.sha512(b"x").digest()))
    assert wrong.chain is not None and wrong.chain.record_id == 9


def test_records_logged_without_body_are_counted_not_failed(tmp_path: Path) -> None:
    """Body logging off: a REST record's body digest is taken as signed, a SOAP record's emptied message is counted
    as not checkable (as X-Road's verifier has it); neither fails the log, and the chain still covers both."""
    head = RestRequest.from_client(
        "POST", "/r1/EE/GOV/70000311/provider/getRandom",
        [("X-Road-Client", "EE/GOV/70000310/consumer"), ("Content-Type", "application/json")],
        request_id="r-1", new_query_id="rest-off",
    ).to_bytes()
    rest = signed_entry(federation().consumer, head, query_id="rest-off", direction=Direction.REQUEST, time=T0,
                        attachments=(b'{"person": "secret"}',))
    soap, _ = exchange("soap-off", T0)
    entries = [entry_without_body(rest, rest=True), entry_without_body(soap, rest=False), *exchange("with-body", T0)]
    result = verify_shard(write_log(tmp_path / "messagelog.db", entries), federation().conf(), datetime.now(UTC))
    assert result.failure is None and result.signatures == 4
    assert (result.without_body, result.unverifiable) == (1, 1)


def test_a_timestamp_older_than_the_signature_fails_it(tmp_path: Path) -> None:
    """Records signed after the time their timestamp says (beyond the clock skew) fail the signature check."""
    late = T0 + timedelta(hours=1)
    path = tmp_path / "messagelog.db"
    with MessageLogStore(path) as store:
        store.append_entries([*exchange("late-sig", late)])
        stamp_all_at(store, T0)
    result = verify_shard(path, federation().conf(), datetime.now(UTC) + timedelta(hours=2))
    assert [p.record_id for p in result.signature_problems] == [1, 2]
    assert "timestamp is older than the signature" in result.signature_problems[0].text


def reference_stamp_failure(path: Path, record_id: int) -> str | None:
    """The stamp verdict for one record from the store's own rebuilt ts chain, checked in full (no shared work)."""
    with MessageLogStore(path) as store:
        record = store.get(record_id)
        assert record is not None
        try:
            found = store.timestamp_of(record_id)
        except LogChainBroken as err:
            return err.reason
        assert found is not None
        stamp = Stamp(found.timestamp.id, found.timestamp.token, found.timestamp.hash_chain_result, found.hash_chain)
        return LogAuditor(None, datetime.now(UTC)).stamp_failure(
            record_id, record.signature, hashlib.sha512(record.signature).digest(), stamp, {}
        )


@pytest.mark.parametrize(
    "sql, record_id",
    [
        ("UPDATE logrecord SET ts_hashchain = (SELECT ts_hashchain FROM logrecord WHERE id = 9) WHERE id = 8", 8),
        ("UPDATE logrecord SET ts_hashchain = CAST(substr(ts_hashchain, 1, 33) || X'000000FF' AS BLOB) WHERE id = 3", 3),
        ("UPDATE evidence_value SET value = CAST(X'00' || substr(value, 2) AS BLOB) WHERE kind = 'ts-leaves'", 1),
        ("UPDATE timestamp SET hash_chain_result = CAST(replace(hash_chain_result, 'DigestValue>', 'DigestValue> ')"
         " AS BLOB)", 1),
        ("DELETE FROM evidence_value WHERE kind = 'ts-leaves'", 1),
    ],
    ids=["other-index", "index-outside", "leaves-changed", "result-changed", "leaves-missing"],
)
def test_a_derived_ts_chain_checked_through_its_leaf_gets_the_full_verdict(log: Path, sql: str, record_id: int) -> None:
    """A damaged derived ts chain (checked once per batch through its leaves) fails with the full check's words."""
    with sqlite3.connect(log) as conn:
        conn.execute(sql)
    result = verify_shard(log, None, datetime.now(UTC))
    assert result.stamp_problems and result.stamp_problems[0].record_id == record_id
    assert result.stamp_problems[0].text == reference_stamp_failure(log, record_id)


def test_a_batch_token_from_an_unapproved_tsa_fails_every_record_it_stamps(log: Path) -> None:
    """A batch token verified at once is remembered only when it holds: an unapproved TSA fails each record in the
    words of the token check."""
    conf = dataclasses.replace(federation().conf(), tsa_certs=())
    now = datetime.now(UTC)
    result = verify_shard(log, conf, now)
    with MessageLogStore(log) as store:
        found = store.timestamp_of(1)
    assert found is not None and found.timestamp.hash_chain_result is not None
    with pytest.raises(BusError) as caught:
        verify_timestamp_token(
            found.timestamp.token, hashlib.sha512(found.timestamp.hash_chain_result).digest(), (), now
        )
    assert result.stamp_problem_count == 12
    assert {p.text for p in result.stamp_problems} == {f"token {found.timestamp.id}: {caught.value.reason}"}


def test_workers_name_the_first_broken_record_as_one_process_does(log: Path) -> None:
    """Edits in several ranges verified by a worker and this process: the lowest edited record is named, and the
    verdict is the one-process verdict."""
    with sqlite3.connect(log) as conn:
        conn.execute("UPDATE logrecord SET query_id = 'edited' WHERE id IN (5, 10)")
        conn.execute("UPDATE logrecord SET message = CAST('x' AS BLOB), stored_form = NULL WHERE id = 8")
    one = verify_shard(log, federation().conf(), datetime.now(UTC))
    two = verify_shard(log, federation().conf(), datetime.now(UTC), jobs=2, conf_files=conf_files(), min_chunk=2)
    assert one.chain is not None and one.chain.record_id == 5 and "changed after it was written" in one.chain.text
    assert dataclasses.replace(two, distinct_signatures=0) == dataclasses.replace(one, distinct_signatures=0)


def test_ranges_are_taken_once_each_from_both_ends() -> None:
    """This process takes ranges from the front and workers from the back: each range exactly once, then none."""
    import multiprocessing

    from security_server.messagelog.log_verifier import _take

    claim = multiprocessing.get_context("spawn").Array("q", [0, 6])
    taken = [_take(claim, from_back=n % 3 == 0) for n in range(9)]
    assert taken == [6, 0, 1, 5, 2, 3, 4, None, None]


@pytest.mark.parametrize("record_id", [1, 6])
def test_a_malformed_first_record_of_a_range_fails_the_log(log: Path, record_id: int) -> None:
    """A row that cannot be a record where a range starts (the log's first, or a later range's): the log fails there;
    it is not read as an empty range."""
    with sqlite3.connect(log) as conn:
        conn.execute("UPDATE logrecord SET succeeded = 7 WHERE id = ?", [record_id])
    for result in (verify_shard(log, None, datetime.now(UTC)), ranges(log, [(1, 5), (6, 9), (10, 12)], conf=False)):
        assert result.chain is not None and result.chain.record_id == record_id and "malformed" in result.chain.text
        assert result.verified_to is None


def test_a_signature_past_its_certificates_end_fails_in_a_fresh_checks_words(tmp_path: Path) -> None:
    """A signer's certificate path, verified once, is re-checked in time for each signature: a later signature past
    the certificate's end fails with the words a first check of that signature gives."""
    late = datetime.now(UTC) + timedelta(days=4000)
    both = verify_shard(write_log(tmp_path / "both.db", [*exchange("in-time", T0), *exchange("late", late)]),
                        federation().conf(), datetime.now(UTC) + timedelta(days=4001))
    alone = verify_shard(write_log(tmp_path / "alone.db", [*exchange("late", late)]),
                         federation().conf(), datetime.now(UTC) + timedelta(days=4001))
    assert [p.record_id for p in both.signature_problems] == [3, 4]
    assert [p.text for p in both.signature_problems] == [p.text for p in alone.signature_problems]
    assert "expired" in both.signature_problems[0].text
