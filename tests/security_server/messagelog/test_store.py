"""The message-log store: one transaction per batch, a verifiable chain, and only our own errors."""

from __future__ import annotations

import dataclasses
import sqlite3
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from security_server.core.errors import DatabaseError, LogChainBroken
from security_server.core.logchain import GENESIS_LINK, Direction, LogEntry, make_record, time_to_micros
from security_server.messagelog.store import (
    SCHEMA,
    ArchiveState,
    MessageLogStore,
    PendingArchive,
    Synchronous,
    TimestampAssignment,
    decode_attachments,
    encode_attachments,
)
from security_server.store.errors import SchemaTooNew
from tests.security_server.store.legacy_schemas import write_messagelog

T0 = datetime(2026, 11, 29, 12, 0, tzinfo=timezone.utc)


def entry(n: int, *, size: int = 16, succeeded: bool = True) -> LogEntry:
    """The n-th test entry; odd ones are responses, failed ones carry a fault code."""
    return LogEntry(
        query_id=f"query-{n // 2}",
        direction=Direction.RESPONSE if n % 2 else Direction.REQUEST,
        client="SUBSYSTEM:EE/GOV/1234/consumer",
        service="SERVICE:EE/GOV/5678/provider/getPerson",
        time=T0 + timedelta(milliseconds=n),
        message=f"<m n='{n}'>".encode() + b"x" * size,
        signature=f"<sig n='{n}'/>".encode(),
        x_request_id=f"xr-{n}" if n % 3 else None,
        hashchain=b"<hashchain/>" if n % 4 == 0 else None,
        hashchainresult=b"<hashchainresult/>" if n % 4 == 0 else None,
        succeeded=succeeded,
        fault_code=None if succeeded else "server.serverproxy.service_failed.timeout",
        attachments=(b"{\"body\": %d}" % n,) * (n % 3) if n % 2 == 0 else (),
    )


def raw(path: Path) -> sqlite3.Connection:
    """An independent connection, outside the store, in autocommit mode."""
    return sqlite3.connect(path, isolation_level=None)


def test_appended_records_read_back_equal_and_verify(tmp_path: Path) -> None:
    """append_entries links entries in order and commits them; every reader returns the same records."""
    with MessageLogStore(tmp_path / "log.db") as store:
        written = store.append_entries([entry(n) for n in range(6)] + [entry(6, succeeded=False)])
        assert [record.id for record in written] == list(range(1, 8))
        assert written[0].prev_link == GENESIS_LINK
        assert all(a.link == b.prev_link for a, b in zip(written, written[1:]))
        assert list(store.records()) == written
        assert list(store.records(since=2, limit=3)) == written[2:5]
        assert store.find("query-1") == written[2:4]
        assert store.find("nothing") == []
        assert store.get(7) == written[6] and store.get(8) is None
        assert store.head() == (7, written[-1].link)
        assert store.last_link() == written[-1].link
        assert store.count() == 7
        assert store.verify() == 7
        assert [record.to_entry() for record in written] == [entry(n) for n in range(6)] + [entry(6, succeeded=False)]


def test_an_empty_log_verifies_and_starts_at_the_genesis_link(tmp_path: Path) -> None:
    """A new log has no records, head (0, GENESIS_LINK), and verifies; appending nothing writes nothing."""
    with MessageLogStore(tmp_path / "log.db") as store:
        assert store.head() == (0, GENESIS_LINK)
        assert store.append_entries([]) == []
        store.append_batch([])
        assert store.verify() == 0


def test_reopening_continues_the_chain(tmp_path: Path) -> None:
    """After close and reopen the next record follows the last committed one; migrations run once."""
    path = tmp_path / "log.db"
    with MessageLogStore(path) as store:
        first = store.append_entries([entry(0), entry(1)])
    with MessageLogStore(path) as store:
        second = store.append_entries([entry(2)])
        assert second[0].id == 3 and second[0].prev_link == first[-1].link
        assert store.verify() == 3
    rows = raw(path).execute("SELECT version, name FROM schema_migrations WHERE store = 'messagelog'").fetchall()
    assert rows == [(m.version, m.name) for m in SCHEMA.migrations]
    assert rows[:2] == [(1, "logrecord"), (2, "attachments")]


@pytest.mark.parametrize("mode, pragma_value", [(None, 2), (Synchronous.FULL, 2), (Synchronous.NORMAL, 1)])
def test_the_log_uses_wal_and_the_chosen_synchronous_mode(
    tmp_path: Path, mode: Synchronous | None, pragma_value: int
) -> None:
    """The file is in WAL mode; the store's connection uses synchronous FULL by default, NORMAL on request."""
    path = tmp_path / "log.db"
    with MessageLogStore(path) if mode is None else MessageLogStore(path, synchronous=mode) as store:
        assert store.database.execute("PRAGMA synchronous").fetchone()[0] == pragma_value
        assert raw(tmp_path / "log.db").execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_append_batch_takes_records_that_continue_the_chain(tmp_path: Path) -> None:
    """Records linked from the current head are committed as they are."""
    with MessageLogStore(tmp_path / "log.db") as store:
        store.append_entries([entry(0)])
        record = make_record(entry(1), record_id=2, prev_link=store.last_link())
        store.append_batch([record])
        assert list(store.records(since=1)) == [record]
        assert store.verify() == 2


def test_append_batch_refuses_a_fork_and_writes_nothing(tmp_path: Path) -> None:
    """Records that do not start at the head (a fork) are refused with DatabaseError; nothing is written."""
    with MessageLogStore(tmp_path / "log.db") as store:
        store.append_entries([entry(0), entry(1)])
        fork = make_record(entry(2), record_id=2, prev_link=store.get(1).link)  # type: ignore[union-attr]
        with pytest.raises(DatabaseError, match="do not continue"):
            store.append_batch([fork])
        stale = make_record(entry(2), record_id=3, prev_link=GENESIS_LINK)
        with pytest.raises(DatabaseError):
            store.append_batch([stale])
        assert store.count() == 2


def test_append_batch_refuses_records_that_do_not_verify(tmp_path: Path) -> None:
    """A batch whose second record does not link to its first is refused whole with LogChainBroken."""
    with MessageLogStore(tmp_path / "log.db") as store:
        first = make_record(entry(0), record_id=1, prev_link=GENESIS_LINK)
        second = make_record(entry(1), record_id=2, prev_link=GENESIS_LINK)
        with pytest.raises(LogChainBroken) as caught:
            store.append_batch([first, second])
        assert caught.value.record_id == 2
        assert store.count() == 0


def _single_byte_change(value: Any, data: st.DataObject) -> Any:
    """``value`` (bytes or an int column) with one byte changed, or one step for integers."""
    if isinstance(value, int):
        return value + data.draw(st.sampled_from([-1, 1]), label="step")
    at = data.draw(st.integers(0, len(value) - 1), label="at")
    mask = data.draw(st.integers(1, 255), label="mask")
    return value[:at] + bytes([value[at] ^ mask]) + value[at + 1 :]


STORED_COLUMNS = [
    "query_id",
    "x_request_id",
    "direction",
    "client",
    "service",
    "time_us",
    "message",
    "signature",
    "hashchain",
    "hashchainresult",
    "signature_hash",
    "succeeded",
    "fault_code",
    "prev_link",
    "link",
    "attachments",
]
TEXT_COLUMNS = {"query_id", "x_request_id", "direction", "client", "service", "fault_code"}


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_any_single_byte_change_in_the_database_is_named(data: st.DataObject) -> None:
    """Changing one byte of any stored field of any row (from outside the store) fails verify() at that record."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "log.db"
        with MessageLogStore(path, synchronous=Synchronous.NORMAL) as store:
            store.append_entries([entry(0), entry(1, succeeded=False), entry(2), entry(3)])
        record_id = data.draw(st.integers(1, 4), label="record")
        conn = raw(path)
        values = dict(
            zip(
                STORED_COLUMNS,
                conn.execute(
                    "SELECT "
                    + ", ".join(f"CAST({c} AS BLOB)" if c in TEXT_COLUMNS else c for c in STORED_COLUMNS)
                    + " FROM logrecord WHERE id = ?",
                    [record_id],
                ).fetchone(),
            )
        )
        column = data.draw(st.sampled_from([c for c, v in values.items() if v]), label="column")
        changed = _single_byte_change(values[column], data)
        cast = "CAST(? AS TEXT)" if column in TEXT_COLUMNS else "?"
        conn.execute(f"UPDATE logrecord SET {column} = {cast} WHERE id = ?", [changed, record_id])
        conn.close()
        with MessageLogStore(path) as store:
            with pytest.raises(LogChainBroken) as caught:
                store.verify()
        assert caught.value.record_id == record_id


def test_attachments_round_trip_through_the_database(tmp_path: Path) -> None:
    """Records with none, one and several attachments (empty ones too) read back equal and verify after reopening."""
    path = tmp_path / "log.db"
    shapes: list[tuple[bytes, ...]] = [(), (b'{"rest": "body"}',), (b"att1", b"", b"\x00" * 300), (b"",)]
    written_entries = [dataclasses.replace(entry(2 * n), attachments=shape) for n, shape in enumerate(shapes)]
    with MessageLogStore(path) as store:
        written = store.append_entries(written_entries)
    with MessageLogStore(path) as store:
        assert list(store.records()) == written
        assert [record.attachments for record in store.records()] == shapes
        assert store.verify() == len(shapes)
    stored = raw(path).execute("SELECT attachments FROM logrecord ORDER BY id").fetchall()
    assert stored[0] == (None,) and all(type(row[0]) is bytes for row in stored[1:])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.binary(max_size=40), max_size=5))
def test_attachment_encoding_round_trips(attachments: list[bytes]) -> None:
    """decode_attachments(encode_attachments(a)) == a for any attachments; none is stored as NULL."""
    encoded = encode_attachments(tuple(attachments))
    assert (encoded is None) == (not attachments)
    assert decode_attachments(encoded) == tuple(attachments)


@pytest.mark.parametrize(
    "stored",
    [
        b"",
        b"\x00\x00\x00\x00",
        b"\x00\x00\x00\x01",
        b"\x00\x00\x00\x01" + (5).to_bytes(8, "big") + b"abc",
        b"\x00\x00\x00\x01" + (1).to_bytes(8, "big") + b"ab",
        "text",
    ],
    ids=["empty", "zero-count", "no-length", "short", "trailing", "text"],
)
def test_malformed_stored_attachments_are_refused(stored: object) -> None:
    """A stored attachment list that is truncated, padded, empty or not bytes is a ValueError, never a crash."""
    with pytest.raises(ValueError):
        decode_attachments(stored)


def test_a_log_written_before_attachments_opens_migrates_and_verifies(tmp_path: Path) -> None:
    """A database with only the first migration (no attachments column) is migrated and its chain still verifies."""
    path = tmp_path / "old.db"
    old_entries = [dataclasses.replace(entry(n), attachments=()) for n in range(4)]
    records = []
    link = GENESIS_LINK
    for n, old in enumerate(old_entries, start=1):
        records.append(make_record(old, record_id=n, prev_link=link))
        link = records[-1].link
    conn = write_messagelog(path, upto=1)
    assert "attachments" not in [row[1] for row in conn.execute("PRAGMA table_info(logrecord)")]
    for record in records:
        conn.execute(
            "INSERT INTO logrecord (id, query_id, x_request_id, direction, client, service, time_us, message,"
            " signature, hashchain, hashchainresult, signature_hash, succeeded, fault_code, prev_link, link)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                record.id, record.query_id, record.x_request_id, record.direction.value, record.client,
                record.service, time_to_micros(record.time), record.message, record.signature, record.hashchain,
                record.hashchainresult, record.signature_hash, int(record.succeeded), record.fault_code,
                record.prev_link, record.link,
            ],
        )
    conn.close()
    with MessageLogStore(path) as store:
        assert list(store.records()) == records
        assert store.verify() == 4
        more = store.append_entries([entry(4)])
        assert more[0].attachments and more[0].prev_link == records[-1].link
        assert store.verify() == 5


def test_a_deleted_row_is_named_by_the_next_record(tmp_path: Path) -> None:
    """Deleting a middle row from outside fails verify() at the record after it."""
    path = tmp_path / "log.db"
    with MessageLogStore(path) as store:
        store.append_entries([entry(n) for n in range(5)])
    raw(path).execute("DELETE FROM logrecord WHERE id = 3")
    with MessageLogStore(path) as store, pytest.raises(LogChainBroken) as caught:
        store.verify()
    assert caught.value.record_id == 4


def test_a_deleted_first_row_is_caught_by_the_anchor(tmp_path: Path) -> None:
    """Deleting the first row fails verify() at record 2, which no longer links to the chain's start."""
    path = tmp_path / "log.db"
    with MessageLogStore(path) as store:
        store.append_entries([entry(n) for n in range(3)])
    raw(path).execute("DELETE FROM logrecord WHERE id = 1")
    with MessageLogStore(path) as store, pytest.raises(LogChainBroken, match="start of the chain") as caught:
        store.verify()
    assert caught.value.record_id == 2


def test_swapped_rows_are_detected(tmp_path: Path) -> None:
    """Swapping two rows' contents (ids kept) fails verify() at the first of them."""
    path = tmp_path / "log.db"
    with MessageLogStore(path) as store:
        store.append_entries([entry(n) for n in range(4)])
    conn = raw(path)
    conn.execute("UPDATE logrecord SET id = -2 WHERE id = 2")
    conn.execute("UPDATE logrecord SET id = 2 WHERE id = 3")
    conn.execute("UPDATE logrecord SET id = 3 WHERE id = -2")
    with MessageLogStore(path) as store, pytest.raises(LogChainBroken) as caught:
        store.verify()
    assert caught.value.record_id == 2


def test_invalid_utf8_in_a_text_column_is_a_malformed_record(tmp_path: Path) -> None:
    """Text that is not UTF-8 is reported as a malformed record, not as a sqlite3 decoding error."""
    path = tmp_path / "log.db"
    with MessageLogStore(path) as store:
        store.append_entries([entry(0), entry(1)])
    raw(path).execute("UPDATE logrecord SET client = CAST(X'C328' AS TEXT) WHERE id = 2")
    with MessageLogStore(path) as store:
        with pytest.raises(LogChainBroken, match="malformed") as caught:
            store.verify()
        assert caught.value.record_id == 2
        with pytest.raises(LogChainBroken):
            store.find("query-0")


def test_a_file_that_is_not_a_database_is_a_database_error(tmp_path: Path) -> None:
    """Opening a file that is not SQLite raises DatabaseError (from sqlite3's error) and leaves it unchanged."""
    path = tmp_path / "log.db"
    path.write_bytes(b"not a database " * 400)
    with pytest.raises(DatabaseError) as caught:
        MessageLogStore(path)
    assert isinstance(caught.value.__cause__, sqlite3.DatabaseError)
    assert caught.value.fault_code == "server.database_error"
    assert path.read_bytes() == b"not a database " * 400


def test_a_path_that_cannot_be_created_is_a_database_error(tmp_path: Path) -> None:
    """A log path under a regular file (so no file can be created there) raises DatabaseError."""
    (tmp_path / "plain-file").write_bytes(b"")
    with pytest.raises(DatabaseError):
        MessageLogStore(tmp_path / "plain-file" / "log.db")


def test_a_corrupted_file_fails_closed(tmp_path: Path) -> None:
    """Garbage over the middle of the file makes opening or verifying fail with one of our errors."""
    path = tmp_path / "log.db"
    # Bodies stored as they are, so that the file is mostly record pages (compressed, 3000 x's take a few bytes and
    # the middle of the file is indexes, which verify does not read).
    with MessageLogStore(path, compress_bodies=False) as store:
        store.append_entries([entry(n, size=3000) for n in range(40)])
    size = path.stat().st_size
    with path.open("r+b") as handle:
        handle.seek(size // 3)
        handle.write(b"\xa5" * (size // 3))
    with pytest.raises((DatabaseError, LogChainBroken)):
        with MessageLogStore(path) as store:
            store.verify()


def test_a_locked_database_fails_the_batch_and_keeps_nothing(tmp_path: Path) -> None:
    """While another connection holds the write lock, append fails after the busy timeout; nothing is half-written."""
    path = tmp_path / "log.db"
    with MessageLogStore(path, busy_timeout=0.05) as store:
        store.append_entries([entry(0)])
        other = raw(path)
        other.execute("BEGIN IMMEDIATE")
        with pytest.raises(DatabaseError) as caught:
            store.append_entries([entry(1), entry(2)])
        assert "locked" in caught.value.reason
        other.execute("ROLLBACK")
        assert store.count() == 1
        assert [record.id for record in store.append_entries([entry(1)])] == [2]
        assert store.verify() == 2


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    """A database with a migration this version does not know is refused (SchemaTooNew) rather than written."""
    path = tmp_path / "log.db"
    MessageLogStore(path).close()
    raw(path).execute(
        "INSERT INTO schema_migrations (store, version, name, applied_at) VALUES ('messagelog', ?, 'later', 'x')",
        [SCHEMA.latest + 1],
    )
    before = list(raw(path).iterdump())
    with pytest.raises(SchemaTooNew, match="newer fedbus") as caught:
        MessageLogStore(path)
    assert isinstance(caught.value, DatabaseError) and str(path) in caught.value.reason
    assert list(raw(path).iterdump()) == before


def test_a_closed_store_raises_database_error(tmp_path: Path) -> None:
    """Every call on a closed store raises DatabaseError; closing twice is fine."""
    store = MessageLogStore(tmp_path / "log.db")
    store.close()
    store.close()
    with pytest.raises(DatabaseError):
        store.append_entries([entry(0)])
    with pytest.raises(DatabaseError):
        list(store.records())
    with pytest.raises(DatabaseError):
        store.verify()
    with pytest.raises(DatabaseError):
        _ = store.database


def test_a_timestamp_is_stored_once_per_record_and_checked_for_shape(tmp_path: Path) -> None:
    """add_timestamp points records at the token; a record keeps its first timestamp; bad shapes are refused."""
    with MessageLogStore(tmp_path / "log.db") as store:
        store.append_entries([entry(n) for n in range(3)])
        assert store.untimestamped(10) == [(r.id, r.signature_hash) for r in store.records()]
        first = store.add_timestamp(b"token-1", b"<result/>", [TimestampAssignment(1, b"<c1/>"), TimestampAssignment(2, b"<c2/>")], time=T0)
        second = store.add_timestamp(b"token-2", None, [TimestampAssignment(2, None)], time=T0)
        stamp = store.timestamp_of(2)
        assert stamp is not None and stamp.timestamp.id == first != second and stamp.hash_chain == b"<c2/>"
        assert store.timestamp_of(3) is None and store.untimestamped_count() == 1
        for token, result, assignments in (
            (b"t", b"<r/>", [TimestampAssignment(3, None)]),
            (b"t", None, [TimestampAssignment(3, b"<c/>")]),
            (b"t", None, [TimestampAssignment(3, None), TimestampAssignment(1, None)]),
            (b"t", None, []),
        ):
            with pytest.raises(ValueError):
                store.add_timestamp(token, result, assignments, time=T0)


def test_begin_archive_refuses_a_second_pending_archive_and_a_fork(tmp_path: Path) -> None:
    """Only one archive may be pending, and only one that continues the recorded archive chain."""
    with MessageLogStore(tmp_path / "log.db") as store:
        store.append_entries([entry(0)])
        store.add_timestamp(b"t", None, [TimestampAssignment(1, None)], time=T0)
        fork = PendingArchive("mlog-b.zip", 1, 1, "not-the-last-digest", "", "d2")
        with pytest.raises(DatabaseError, match="continue"):
            store.begin_archive(fork)
        pending = PendingArchive("mlog-a.zip", 1, 1, "", "", "d1")
        store.begin_archive(pending)
        with pytest.raises(DatabaseError, match="pending"):
            store.begin_archive(pending)
        with pytest.raises(DatabaseError):
            store.finish_archive(fork, time=T0)
        assert store.finish_archive(pending, time=T0) == 1
        assert store.archive_state() == ArchiveState("d1", "mlog-a.zip") and store.pending_archive() is None
