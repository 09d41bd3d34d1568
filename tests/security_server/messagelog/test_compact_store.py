"""Compact message-log rows (migration m005): the same records, the same exports, and tampering still named."""

from __future__ import annotations

import dataclasses
import random
import sqlite3
import tempfile
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.internet.defer import Deferred, gatherResults

from security_server.core.errors import DatabaseError, LogChainBroken
from security_server.core.hashchain import MESSAGE
from security_server.core.logchain import Direction, LogEntry, LogRecord
from security_server.messagelog.asic_export import exchange_zip, record_container
from security_server.messagelog.store import (
    FORM_HASHCHAIN,
    FORM_HASHCHAINRESULT,
    FORM_HASHCHAINRESULT_SHARED,
    FORM_MESSAGE_ZLIB,
    FORM_SIGNATURE,
    FORM_SIGNATURE_SHARED,
    FORM_TS_HASHCHAIN,
    MessageLogStore,
    PendingArchive,
    Synchronous,
    TimestampAssignment,
    derived_ts_hashchain,
    ts_batch,
)
from tests.federation.evidence import exchange, failed_entry, signed_entry, soap_message, stamp_batch, federation
from tests.federation.world import ExchangeBed, is_request
from tests.security_server.messagelog.stamping import stamp_all
from tests.loopback import coroutine_test

T0 = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


def raw(path: Path) -> sqlite3.Connection:
    """An independent connection, outside the store, in autocommit mode."""
    return sqlite3.connect(path, isolation_level=None)


def batch_signed(query_id: str, count: int, time: datetime) -> list[LogEntry]:
    """``count`` requests signed in one batch signature (each with its own hash chain), as the batch signer logs them."""
    from security_server.core.signature import MessagePart, sign_batch
    from tests.federation.ca import ocsp_for
    from tests.federation.departments import CONSUMER, SERVICE

    fed = federation()
    messages = [soap_message(f"{query_id}-{n}", response=False) for n in range(count)]
    signed = sign_batch(
        [[MessagePart.of(MESSAGE, message)] for message in messages],
        fed.consumer.cert, fed.consumer.key, ocsp_for(fed.ca, fed.consumer.cert, time - timedelta(seconds=5)), time,
    )
    return [
        LogEntry(query_id=f"{query_id}-{n}", direction=Direction.REQUEST, client=str(CONSUMER), service=str(SERVICE),
                 time=time, message=message, signature=data.signature_xml, hashchain=data.hash_chain,
                 hashchainresult=data.hash_chain_result)
        for n, (message, data) in enumerate(zip(messages, signed))
    ]


def recorded_run() -> list[LogEntry]:
    """A run's records: single signatures, attachments, a REST-like body, a batch signature, a failure."""
    entries: list[LogEntry] = []
    for n in range(3):
        entries += exchange(f"run-{n}", T0 + timedelta(seconds=n))
    entries += exchange("run-att", T0 + timedelta(seconds=5), attachments=(b"attachment one", b"\x00" * 500))
    entries += batch_signed("run-batch", 4, T0 + timedelta(seconds=6))
    entries.append(failed_entry("run-fail", T0 + timedelta(seconds=7)))
    entries.append(
        signed_entry(federation().provider, soap_message("run-big", response=True, payload="y" * 3000),
                     query_id="run-big", direction=Direction.RESPONSE, time=T0 + timedelta(seconds=8))
    )
    return entries


def stamp_both(compact: MessageLogStore, plain: MessageLogStore) -> None:
    """One batch timestamp (one token) over every waiting record, given to both stores alike."""
    records = [record for record in plain.records() if record.signature]
    stamped = stamp_batch(records)
    stored = stamped[0][1].timestamp
    for store in (compact, plain):
        store.add_timestamp(
            stored.token, stored.hash_chain_result,
            [TimestampAssignment(record.id, stamp.hash_chain) for record, stamp in stamped], time=stored.time,
        )


def assert_exports_identical(compact: MessageLogStore, plain: MessageLogStore) -> int:
    """Every record reads back equal from both stores and exports to the same container bytes; returns how many."""
    compact_records = list(compact.records())
    assert compact_records == list(plain.records())
    exported = 0
    for record in compact_records:
        assert compact.signature_of(record.id) == plain.signature_of(record.id) == record.signature
        if record.signature:
            ours = record_container(record, compact.timestamp_of(record.id))
            assert ours == record_container(record, plain.timestamp_of(record.id))
            exported += 1
    query_ids = {record.query_id for record in compact_records}
    for query_id in query_ids:
        pairs = [(r, compact.timestamp_of(r.id)) for r in compact.find(query_id)]
        assert exchange_zip(pairs) == exchange_zip([(r, plain.timestamp_of(r.id)) for r in plain.find(query_id)])
    return exported


def stored_bytes(path: Path) -> int:
    """Bytes of record rows and shared values (the sum of their fields)."""
    conn = raw(path)
    fields = "length(message) + length(signature) + coalesce(length(hashchain), 0) + coalesce(length(hashchainresult), 0)"
    rows = conn.execute(f"SELECT sum({fields}) FROM logrecord").fetchone()[0]
    shared = conn.execute("SELECT coalesce(sum(length(value)), 0) FROM evidence_value").fetchone()[0]
    return int(rows) + int(shared)


def test_a_recorded_run_exports_the_same_containers_from_compact_and_plain_rows(tmp_path: Path) -> None:
    """Every record of a run, stored compact and stored as it is, reads back equal and exports bit for bit alike."""
    entries = recorded_run()
    with MessageLogStore(tmp_path / "compact.db") as compact, MessageLogStore(
        tmp_path / "plain.db", compact=False, compress_bodies=False
    ) as plain:
        written = compact.append_entries(entries)
        assert plain.append_entries(entries) == written
        stamp_both(compact, plain)
        assert assert_exports_identical(compact, plain) == len(entries) - 1
        assert compact.verify() == plain.verify() == len(entries)
    forms = dict(raw(tmp_path / "compact.db").execute("SELECT id, stored_form FROM logrecord").fetchall())
    chained = [record.id for record in written if record.hashchain is not None]
    assert chained and all(forms[i] & (FORM_SIGNATURE | FORM_HASHCHAIN | FORM_HASHCHAINRESULT) == 7 for i in chained)
    assert all(forms[record.id] & FORM_SIGNATURE for record in written if record.signature)
    shared = FORM_SIGNATURE_SHARED | FORM_HASHCHAINRESULT_SHARED
    assert all(forms[i] & shared == shared for i in chained)  # a batch's records share its signature and result
    assert all(not (forms[r.id] or 0) & shared for r in written if r.hashchain is None)
    assert set(raw(tmp_path / "plain.db").execute("SELECT DISTINCT stored_form FROM logrecord").fetchall()) == {(None,)}
    assert stored_bytes(tmp_path / "compact.db") * 2 < stored_bytes(tmp_path / "plain.db")


def test_records_of_one_signer_share_one_certificate_and_ocsp_value(tmp_path: Path) -> None:
    """Ten records signed alone by one signer with its (cached) OCSP response store one certificate, response and
    skeleton."""
    from security_server.core.signature import MessagePart, build_signature
    from tests.federation.ca import ocsp_for

    fed = federation()
    ocsp = ocsp_for(fed.ca, fed.consumer.cert, T0 - timedelta(seconds=5))
    entries = []
    for n in range(10):
        message = soap_message(f"share-{n}", response=False)
        data = build_signature([MessagePart.of(MESSAGE, message)], fed.consumer.cert, fed.consumer.key, ocsp,
                               T0 + timedelta(seconds=n))
        entries.append(dataclasses.replace(exchange("share", T0)[0], query_id=f"share-{n}", message=message,
                                           signature=data.signature_xml))
    with MessageLogStore(tmp_path / "log.db") as store:
        store.append_entries(entries)
        assert [r.to_entry() for r in store.records()] == entries
    kinds = dict(raw(tmp_path / "log.db").execute("SELECT kind, count(*) FROM evidence_value GROUP BY kind").fetchall())
    assert kinds == {"certificate": 1, "ocsp": 1, "skeleton": 1}


def test_bodies_are_stored_compressed_only_when_asked_and_smaller(tmp_path: Path) -> None:
    """compress_bodies stores a compressible message zlib-compressed, not a message that would not shrink."""
    incompressible = dataclasses.replace(exchange("z-1", T0)[0], message=random.Random(1).randbytes(512))
    with MessageLogStore(tmp_path / "log.db") as store:
        written = store.append_entries([exchange("z-0", T0)[0], incompressible])
        assert list(store.records()) == written
    with MessageLogStore(tmp_path / "plain-bodies.db", compress_bodies=False) as store:
        store.append_entries([exchange("z-0", T0)[0]])
    forms = [row[0] for row in raw(tmp_path / "log.db").execute("SELECT stored_form FROM logrecord ORDER BY id")]
    assert forms[0] & FORM_MESSAGE_ZLIB and not forms[1] & FORM_MESSAGE_ZLIB
    (form,) = raw(tmp_path / "plain-bodies.db").execute("SELECT stored_form FROM logrecord").fetchone()
    assert form == FORM_SIGNATURE


def test_rows_written_before_compaction_stay_readable_beside_compact_ones(tmp_path: Path) -> None:
    """A log whose first rows are stored as they are (stored_form NULL) and later rows compact reads and verifies."""
    path = tmp_path / "log.db"
    first, second = exchange("old", T0), exchange("new", T0 + timedelta(seconds=1))
    with MessageLogStore(path, compact=False, compress_bodies=False) as store:
        old = store.append_entries(list(first))
    with MessageLogStore(path) as store:
        new = store.append_entries(list(second))
        assert list(store.records()) == old + new
        assert store.verify() == 4
    forms = [row[0] for row in raw(path).execute("SELECT stored_form FROM logrecord ORDER BY id")]
    assert forms[:2] == [None, None] and all(forms[2:])


def test_a_changed_shared_certificate_breaks_the_first_record_that_uses_it(tmp_path: Path) -> None:
    """Editing a certificate stored once for many records: verify fails at the first record that uses it."""
    path = tmp_path / "log.db"
    with MessageLogStore(path) as store:
        store.append_entries([failed_entry("f-0", T0), *exchange("c-1", T0), *exchange("c-2", T0)])
    conn = raw(path)
    address, value = conn.execute("SELECT hash, value FROM evidence_value WHERE kind = 'certificate'").fetchone()
    with MessageLogStore(path) as store:
        users = [r.id for r in store.records() if r.signature and bytes(value) in _der_values(store, r)]
    conn.execute("UPDATE evidence_value SET value = ? WHERE hash = ?", [bytes(value[:-1]) + b"\x00", address])
    with MessageLogStore(path) as store, pytest.raises(LogChainBroken) as caught:
        store.verify()
    assert caught.value.record_id == users[0] == 2
    assert "does not match its address" in str(caught.value.reason)


def _der_values(store: MessageLogStore, record: LogRecord) -> list[bytes]:
    """The DER values a record's signature embeds (certificates and OCSP responses), read from its signature."""
    import base64
    import re

    found = re.findall(rb">([A-Za-z0-9+/=]{200,})<", record.signature)
    return [base64.b64decode(text) for text in found]


@pytest.mark.parametrize("kind", ["skeleton", "ocsp", "certificate"])
def test_a_missing_shared_value_breaks_the_first_record_that_uses_it(tmp_path: Path, kind: str) -> None:
    """Deleting a shared value: verify fails, naming the first record that references it."""
    path = tmp_path / "log.db"
    with MessageLogStore(path) as store:
        store.append_entries([failed_entry("f-0", T0), *exchange("m-1", T0)])
    raw(path).execute("DELETE FROM evidence_value WHERE kind = ?", [kind])
    with MessageLogStore(path) as store, pytest.raises(LogChainBroken) as caught:
        store.verify()
    assert caught.value.record_id == 2 and "is missing" in str(caught.value.reason)


def test_a_changed_stored_form_is_named(tmp_path: Path) -> None:
    """Clearing or setting stored_form bits from outside breaks the record: its fields no longer rebuild."""
    path = tmp_path / "log.db"
    with MessageLogStore(path) as store:
        store.append_entries(list(exchange("s-1", T0)) + list(exchange("s-2", T0)))
    for form in (None, 0, 1, 64, -1, FORM_MESSAGE_ZLIB | FORM_HASHCHAIN):
        conn = raw(path)
        (before,) = conn.execute("SELECT stored_form FROM logrecord WHERE id = 3").fetchone()
        conn.execute("UPDATE logrecord SET stored_form = ? WHERE id = 3", [form])
        with MessageLogStore(path) as store, pytest.raises(LogChainBroken) as caught:
            store.verify()
        assert caught.value.record_id == 3, form
        conn.execute("UPDATE logrecord SET stored_form = ? WHERE id = 3", [before])


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_any_single_byte_change_of_a_compact_row_or_shared_value_is_named(data: st.DataObject) -> None:
    """One byte changed in a compact field of any row, or in any shared value, fails verify() at a record using it."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "log.db"
        entries = _tamper_entries()
        with MessageLogStore(path, synchronous=Synchronous.NORMAL) as store:
            store.append_entries(entries)
            by_record = {r.id: set(_der_values(store, r)) for r in store.records()}
        conn = raw(path)
        if data.draw(st.booleans(), label="shared"):
            rows = conn.execute("SELECT hash, kind, value FROM evidence_value ORDER BY hash").fetchall()
            address, kind, value = data.draw(st.sampled_from(rows), label="value")
            at = data.draw(st.integers(0, len(value) - 1), label="at")
            changed = value[:at] + bytes([value[at] ^ data.draw(st.integers(1, 255), label="mask")]) + value[at + 1 :]
            conn.execute("UPDATE evidence_value SET value = ? WHERE hash = ?", [changed, address])
            users = sorted(i for i, ders in by_record.items() if bytes(value) in ders) if kind in ("certificate", "ocsp") else None
        else:
            record_id = data.draw(st.integers(1, len(entries)), label="record")
            column = data.draw(st.sampled_from(["message", "signature", "hashchain", "hashchainresult"]), label="column")
            (value,) = conn.execute(f"SELECT {column} FROM logrecord WHERE id = ?", [record_id]).fetchone()
            if not value:
                return
            at = data.draw(st.integers(0, len(value) - 1), label="at")
            changed = value[:at] + bytes([value[at] ^ data.draw(st.integers(1, 255), label="mask")]) + value[at + 1 :]
            conn.execute(f"UPDATE logrecord SET {column} = ? WHERE id = ?", [changed, record_id])
            users = [record_id]
        conn.close()
        with MessageLogStore(path) as store, pytest.raises(LogChainBroken) as caught:
            store.verify()
        if users is not None:
            assert caught.value.record_id == users[0]
        else:
            assert caught.value.record_id is not None


_ENTRIES: list[LogEntry] = []


def _tamper_entries() -> list[LogEntry]:
    """A small run for tampering (made once): singles, a batch with hash chains, a failure."""
    if not _ENTRIES:
        _ENTRIES.extend([*exchange("t-1", T0), failed_entry("t-2", T0), *batch_signed("t-3", 2, T0)])
    return _ENTRIES


def test_cleaning_removes_shared_values_with_the_last_record_using_them(tmp_path: Path) -> None:
    """delete_archived drops the shared values only cleaned records used, and keeps those still in use."""
    path = tmp_path / "log.db"
    other_signer = dataclasses.replace(
        signed_entry(federation().provider, soap_message("old-2", response=True), query_id="old-2",
                     direction=Direction.RESPONSE, time=T0 + timedelta(seconds=30)),
    )
    with MessageLogStore(path) as store:
        store.append_entries([*exchange("old-1", T0), other_signer])
        stamp_all(store)
        store.append_entries([exchange("new-1", T0 + timedelta(days=1))[0]])
        before = shared_addresses(path)
        state = store.archive_state()
        pending = PendingArchive("a.zip", 1, 3, state.last_digest, state.last_file, "digest")
        store.begin_archive(pending)
        store.finish_archive(pending, time=T0 + timedelta(days=1))
        assert store.delete_archived(before=T0 + timedelta(hours=1)) == 3
        after = shared_addresses(path)
        assert after < before  # the provider's certificate, OCSP and skeleton went with its records
        assert [r.query_id for r in store.records()] == ["new-1"]
        assert store.verify() == 1


def shared_addresses(path: Path) -> set[bytes]:
    """The addresses of the shared values stored in the log at ``path``."""
    return {bytes(row[0]) for row in raw(path).execute("SELECT hash FROM evidence_value")}


class RecordedExchangeTest(ExchangeBed):
    """A real run of batch-signed and lone exchanges through both proxies, logged by the real writers."""

    @coroutine_test
    async def test_every_logged_record_exports_the_same_container_as_a_plain_copy(self) -> None:
        """Each record the proxies logged (compact) and its plain copy give the same record and container bytes."""
        bodies = [is_request(query_id=f"recorded-{n}") for n in range(4)]
        answers = await gatherResults([Deferred.fromCoroutine(self.send(body)) for body in bodies])
        answers.append(await self.send(is_request(query_id="recorded-lone")))
        assert [status for status, _, _ in answers] == [200] * 5
        for path in (self.provider.log_path, self.consumer.log_path):
            with MessageLogStore(path) as compact:
                records = list(compact.records())
                assert len(records) == 10
                copy = path.with_name(path.stem + "-plain.db")
                with MessageLogStore(copy, compact=False, compress_bodies=False) as plain:
                    plain.append_batch(records)
                    stamp_both(compact, plain)
                    assert assert_exports_identical(compact, plain) == 10
            forms = [row[0] for row in raw(path).execute("SELECT stored_form FROM logrecord")]
            assert all(form and form & FORM_SIGNATURE for form in forms)
            assert any(record.hashchain is not None for record in records)  # the batch was signed through a chain


def test_batch_timestamp_chains_are_derived_from_the_batch_leaves(tmp_path: Path) -> None:
    """A batch's ts hash chains are stored as (leaves, index) and come back byte for byte; a single stamp as it is."""
    entries = recorded_run()
    with MessageLogStore(tmp_path / "compact.db") as compact, MessageLogStore(
        tmp_path / "plain.db", compact=False, compress_bodies=False
    ) as plain:
        compact.append_entries(entries)
        plain.append_entries(entries)
        stamp_both(compact, plain)
        for record in plain.records():
            ours, theirs = compact.timestamp_of(record.id), plain.timestamp_of(record.id)
            assert ours == theirs
    rows = raw(tmp_path / "compact.db").execute(
        "SELECT stored_form, length(ts_hashchain) FROM logrecord WHERE timestamp_id > 0"
    ).fetchall()
    assert rows and all(form & FORM_TS_HASHCHAIN and length == 37 for form, length in rows)
    (leaves,) = raw(tmp_path / "compact.db").execute("SELECT count(*) FROM evidence_value WHERE kind = 'ts-leaves'").fetchone()
    assert leaves == 1


def test_ts_leaves_are_the_batch_signature_hashes_and_refuse_a_changed_value(tmp_path: Path) -> None:
    """ts_leaves gives a derived chain's batch leaves in order (each record's at its index); a changed value fails."""
    path = tmp_path / "log.db"
    with MessageLogStore(path) as store:
        store.append_entries([*exchange("l-1", T0), *exchange("l-2", T0)])
        stamp_all(store)
        rows = store.database.execute("SELECT signature_hash, ts_hashchain FROM logrecord ORDER BY id").fetchall()
        for signature_hash, stored in rows:
            address, index = derived_ts_hashchain(stored)
            assert store.ts_leaves(address)[index] == signature_hash
        assert list(store.ts_leaves(address)) == [row[0] for row in rows]
    raw(path).execute("UPDATE evidence_value SET value = CAST(X'00' || substr(value, 2) AS BLOB) WHERE kind = 'ts-leaves'")
    with MessageLogStore(path) as store, pytest.raises(ValueError):
        store.ts_leaves(address)


def test_a_batch_timestamp_from_its_leaves_is_stored_as_one_with_every_chain_given(tmp_path: Path) -> None:
    """add_batch_timestamp (the result over the leaves, no chain built) stores exactly the rows that add_timestamp
    stores when handed every record's chain: each chain derived from the batch's leaves."""
    entries = recorded_run()
    stored_rows = []
    for name in ("chains", "leaves"):
        with MessageLogStore(tmp_path / f"{name}.db") as store:
            records = [record for record in store.append_entries(entries) if record.signature]
            hashes = dict(raw(tmp_path / f"{name}.db").execute("SELECT id, signature_hash FROM logrecord").fetchall())
            batch = ts_batch([hashes[r.id] for r in records])
            if name == "chains":
                store.add_timestamp(
                    b"token", batch.result, [TimestampAssignment(r.id, c) for r, c in zip(records, batch.chains())],
                    time=T0,
                )
            else:
                store.add_batch_timestamp(b"token", batch, [r.id for r in records], time=T0)
            assert [store.timestamp_of(r.id).hash_chain for r in records] == list(batch.chains())  # type: ignore[union-attr]
        stored_rows.append(raw(tmp_path / f"{name}.db").execute(
            "SELECT id, timestamp_id, ts_hashchain, stored_form FROM logrecord ORDER BY id").fetchall())
    assert stored_rows[0] == stored_rows[1]
    assert any(form and form & FORM_TS_HASHCHAIN for *_, form in stored_rows[1])


def test_a_batch_pointed_in_parts_is_stored_as_one_pointed_at_once(tmp_path: Path) -> None:
    """add_batch_timestamp pointing the first records, then point_to_batch_timestamp for the rest: the same rows as
    one transaction; between the parts the rest still wait for a timestamp."""
    stored_rows = []
    for name in ("whole", "parts"):
        with MessageLogStore(tmp_path / f"{name}.db") as store:
            records = [record for record in store.append_entries(recorded_run()) if record.signature]
            hashes = dict(raw(tmp_path / f"{name}.db").execute("SELECT id, signature_hash FROM logrecord").fetchall())
            ids = [r.id for r in records]
            batch = ts_batch([hashes[i] for i in ids])
            store.untimestamped(100)  # marks the records without a signature, as a round does
            if name == "whole":
                store.add_batch_timestamp(b"token", batch, ids, time=T0)
            else:
                stamp = store.add_batch_timestamp(b"token", batch, ids, time=T0, pointing=1)
                assert [i for i, _ in store.untimestamped(100)] == ids[1:]
                store.point_to_batch_timestamp(stamp, batch, ids, 1, len(ids) - 2)
                store.point_to_batch_timestamp(stamp, batch, ids, len(ids) - 1, 1)
                assert store.untimestamped(100) == []
            assert [store.timestamp_of(i).hash_chain for i in ids] == list(batch.chains())  # type: ignore[union-attr]
        stored_rows.append(raw(tmp_path / f"{name}.db").execute(
            "SELECT id, timestamp_id, ts_hashchain, stored_form FROM logrecord ORDER BY id").fetchall())
    assert stored_rows[0] == stored_rows[1]


def test_a_later_part_must_name_its_batch_s_timestamp_and_a_real_part(tmp_path: Path) -> None:
    """A part for a timestamp that does not exist or covers another batch is refused (nothing changed); a part
    outside the batch, or the first part again, is refused as a mistake."""
    with MessageLogStore(tmp_path / "log.db") as store:
        records = [record for record in store.append_entries(recorded_run()) if record.signature]
        hashes = dict(raw(tmp_path / "log.db").execute("SELECT id, signature_hash FROM logrecord").fetchall())
        ids = [r.id for r in records]
        batch = ts_batch([hashes[i] for i in ids])
        other = ts_batch(list(reversed([hashes[i] for i in ids])))
        stamp = store.add_batch_timestamp(b"token", batch, ids, time=T0, pointing=1)
        for wrong_id, wrong_batch in ((stamp + 1, batch), (stamp, other)):
            with pytest.raises(DatabaseError, match="no such batch timestamp"):
                store.point_to_batch_timestamp(wrong_id, wrong_batch, ids, 1, 1)
        for start, count in ((0, 1), (1, 0), (1, len(ids))):
            with pytest.raises(ValueError, match="later part"):
                store.point_to_batch_timestamp(stamp, batch, ids, start, count)
        assert [i for i, _ in store.untimestamped(100)] == ids[1:]
        for pointing in (0, len(ids) + 1):
            with pytest.raises(ValueError, match="at least one"):
                store.add_batch_timestamp(b"token", batch, ids, time=T0, pointing=pointing)


def test_a_batch_over_other_leaves_is_stored_whole_not_derived(tmp_path: Path) -> None:
    """Leaves that are not the records' own signature hashes (in order) are not taken on trust: every record gets
    the chain the batch gives it, stored whole, and nothing is derived."""
    with MessageLogStore(tmp_path / "log.db") as store:
        records = [record for record in store.append_entries(recorded_run()) if record.signature]
        hashes = dict(raw(tmp_path / "log.db").execute("SELECT id, signature_hash FROM logrecord").fetchall())
        batch = ts_batch(list(reversed([hashes[r.id] for r in records])))
        store.add_batch_timestamp(b"token", batch, [r.id for r in records], time=T0)
        assert [store.timestamp_of(r.id).hash_chain for r in records] == list(batch.chains())  # type: ignore[union-attr]
    forms = [row[0] for row in raw(tmp_path / "log.db").execute("SELECT stored_form FROM logrecord")]
    assert not any(form and form & FORM_TS_HASHCHAIN for form in forms)


@pytest.mark.parametrize("count", [0, 1])
def test_a_batch_timestamp_needs_two_records_one_leaf_each(tmp_path: Path, count: int) -> None:
    leaves = [bytes(64), bytes([1]) * 64]
    with MessageLogStore(tmp_path / "log.db") as store, pytest.raises(ValueError, match="two or more"):
        store.add_batch_timestamp(b"token", ts_batch(leaves), list(range(1, count + 1)), time=T0)


def test_a_ts_chain_in_another_form_is_stored_as_it_is(tmp_path: Path) -> None:
    """Chains that are not exactly what the batch's leaves rebuild to are kept byte for byte, not derived."""
    with MessageLogStore(tmp_path / "log.db") as store:
        records = store.append_entries(list(exchange("other", T0)))
        stamped = stamp_batch(records)
        stored = stamped[0][1].timestamp
        odd = [TimestampAssignment(r.id, s.hash_chain.replace(b"</ns2:HashChain>", b" </ns2:HashChain>"))  # type: ignore[union-attr]
               for r, s in stamped]
        store.add_timestamp(stored.token, stored.hash_chain_result, odd, time=stored.time)
        assert [store.timestamp_of(r.id).hash_chain for r in records] == [a.hash_chain for a in odd]  # type: ignore[union-attr]
    forms = [row[0] for row in raw(tmp_path / "log.db").execute("SELECT stored_form FROM logrecord")]
    assert not any(form & FORM_TS_HASHCHAIN for form in forms)


@pytest.mark.parametrize(
    "sql, record_id",
    [
        ("UPDATE logrecord SET ts_hashchain = X'01' WHERE id = 2", 2),
        ("UPDATE logrecord SET ts_hashchain = CAST(substr(ts_hashchain, 1, 33) || X'000000FF' AS BLOB) WHERE id = 3", 3),
        ("UPDATE evidence_value SET value = CAST(X'00' || substr(value, 2) AS BLOB) WHERE kind = 'ts-leaves'", 1),
        ("DELETE FROM evidence_value WHERE kind = 'ts-leaves'", 1),
    ],
    ids=["marker", "index", "leaves-changed", "leaves-missing"],
)
def test_a_damaged_derived_ts_chain_is_named(tmp_path: Path, sql: str, record_id: int) -> None:
    """A derived ts chain whose marker or leaves were changed: reading its timestamp names the record."""
    path = tmp_path / "log.db"
    with MessageLogStore(path) as store:
        store.append_entries([*exchange("d-1", T0), *exchange("d-2", T0)])
        stamp_all(store)
    raw(path).execute(sql)
    with MessageLogStore(path) as store, pytest.raises(LogChainBroken) as caught:
        for record in store.records():
            store.timestamp_of(record.id)
    assert caught.value.record_id == record_id


def test_body_compression_is_on_by_default_and_can_be_turned_off(tmp_path: Path) -> None:
    """``[messagelog] compress-bodies`` is true unless the configuration says false."""
    from security_server.configfile import load_config
    from security_server.service import ServerSettings

    def settings(text: str) -> ServerSettings:
        extra = tmp_path / "extra.ini"
        extra.write_text(text, encoding="utf-8")
        return ServerSettings.from_config(tmp_path, load_config("security-server", local_dir=tmp_path, extra=extra))

    assert settings("").messagelog_compress_bodies is True
    assert settings("[messagelog]\ncompress-bodies = false\n").messagelog_compress_bodies is False


def test_xroad_containers_logged_compact_export_the_same_bytes_and_verdicts(tmp_path: Path, xroad_vectors: Path) -> None:
    """X-Road's own containers, logged (with their timestamps) compact and plain: the same records, the same
    container bytes, hence the same verifier verdicts."""
    from security_server.core.asic import verify_container

    logged: list[tuple[LogEntry, tuple[bytes, bytes, bytes] | None]] = []
    vectors: list[str] = []
    originals: dict[str, str] = {}  # X-Road's verdict on its own container, for those a record holds whole
    holdable = {"mimetype", "message.xml", "META-INF/", "META-INF/signatures.xml", "META-INF/manifest.xml",
                "META-INF/ASiCManifest.xml", "META-INF/timestamp.tst", "sig-hashchain.xml", "sig-hashchainresult.xml",
                "ts-hashchain.xml", "ts-hashchainresult.xml", "attachment1", "attachment2"}
    for number, vector in enumerate(sorted((xroad_vectors / "asic").glob("*.asice"))):
        with zipfile.ZipFile(vector) as container:
            names = set(container.namelist())
            if "message.xml" not in names:
                continue

            def read(name: str) -> bytes | None:
                return container.read(name) if name in names else None

            chain, result = read("sig-hashchain.xml"), read("sig-hashchainresult.xml")
            token, ts_result, ts_chain = read("META-INF/timestamp.tst"), read("ts-hashchainresult.xml"), read("ts-hashchain.xml")
            attachments = tuple(container.read(f"attachment{n}") for n in range(1, 10) if f"attachment{n}" in names)
            entry = LogEntry(
                query_id=f"xroad-{number}", direction=Direction.REQUEST, client="SUBSYSTEM:EE/GOV/1/a",
                service="SERVICE:EE/GOV/2/b/c", time=T0, message=container.read("message.xml"),
                signature=container.read("META-INF/signatures.xml"), hashchain=chain if result else None,
                hashchainresult=result if chain else None, attachments=attachments,
            )
            stamp = (token, ts_result, ts_chain) if token and ts_result and ts_chain else None
            logged.append((entry, stamp))
            vectors.append(vector.name)
            if names <= holdable:
                originals[vector.name] = verify_container(vector.read_bytes(), require_timestamp=stamp is not None).code
    verdicts: dict[str, list[str]] = {}
    containers: dict[str, list[bytes]] = {}
    for name, compact_rows in (("compact", True), ("plain", False)):
        with MessageLogStore(tmp_path / f"{name}.db", compact=compact_rows, compress_bodies=compact_rows) as store:
            records = store.append_entries([entry for entry, _ in logged])
            for record, (_, stamp) in zip(records, logged):
                if stamp is not None:
                    store.add_timestamp(stamp[0], stamp[1], [TimestampAssignment(record.id, stamp[2])], time=T0)
            containers[name] = [record_container(r, store.timestamp_of(r.id)) for r in store.records()]
            verdicts[name] = [
                verify_container(data, require_timestamp=stamp is not None).code
                for data, (_, stamp) in zip(containers[name], logged)
            ]
            assert store.verify() == len(logged)
    assert containers["compact"] == containers["plain"]
    assert verdicts["compact"] == verdicts["plain"]
    found = dict(zip(vectors, verdicts["compact"]))
    assert len(originals) >= 8 and {name: found[name] for name in originals} == originals
    assert {code == "valid" for code in originals.values()} == {True, False}
    compacted = raw(tmp_path / "compact.db").execute("SELECT count(*) FROM logrecord WHERE stored_form & 1").fetchone()[0]
    assert compacted == len(logged)  # X-Road's signatures pack exactly too
