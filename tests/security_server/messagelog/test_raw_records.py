"""The bulk verifier's row reader: the store's records and links exactly, and a malformed row refused in its words."""

from __future__ import annotations

import dataclasses
import sqlite3
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from security_server.core.errors import LogChainBroken
from security_server.core.logchain import LogEntry, compute_link
from security_server.messagelog.raw_records import HANDLED_FORMS, RawReader, RawRecord
from security_server.messagelog.store import _KNOWN_FORMS, MessageLogStore, Synchronous
from tests.federation.evidence import batch_signed, exchange, failed_entry

T0 = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
_FIELDS = ("id", "direction", "client", "service", "message", "signature", "hashchain", "hashchainresult",
           "attachments", "signature_hash", "prev_link", "link")

_ENTRIES: list[LogEntry] = []


def entries() -> list[LogEntry]:
    """Every kind of record (made once): direct and batch signatures, a REST-like attachment, an X-Request-Id, a
    failure with its fault code."""
    if not _ENTRIES:
        first, second = exchange("r-1", T0, attachments=(b'{"a": 1}', b"\x00\xff"))
        _ENTRIES.extend([
            dataclasses.replace(first, x_request_id="req-\u00e9"), second, failed_entry("r-2", T0),
            *batch_signed("r-3", 0, 3, T0), *exchange("r-4", T0),
        ])
    return _ENTRIES


def write(path: Path, *, compact: bool = True) -> Path:
    """A log of :func:`entries`, stored compact (the default) or as plain rows."""
    with MessageLogStore(path, synchronous=Synchronous.NORMAL, compact=compact, compress_bodies=compact) as store:
        store.append_entries(entries())
    return path


def read_raw(path: Path, size: int = 4) -> list[RawRecord]:
    """Every record as the bulk reader reads it, ``size`` a block."""
    with MessageLogStore(path) as store:
        return [record for block in RawReader(store).blocks(1, 10**6, size) for record in block]


def test_the_reader_gives_the_stores_fields_and_links(tmp_path: Path) -> None:
    """Compact or plain rows: every field is the store's record's, and the link computed is compute_link's."""
    for compact in (True, False):
        path = write(tmp_path / f"{compact}.db", compact=compact)
        with MessageLogStore(path) as store:
            records = list(store.records())
        raws = read_raw(path)
        assert len(raws) == len(records) == len(entries())
        for record, raw in zip(records, raws):
            assert [getattr(raw, name) for name in _FIELDS] == [getattr(record, name) for name in _FIELDS]
            assert raw.expected_link == compute_link(record) == record.link


def test_a_range_reads_only_its_records_in_blocks(tmp_path: Path) -> None:
    """``blocks(lo, hi, size)`` gives the records lo..hi in id order, at most ``size`` a block."""
    path = write(tmp_path / "log.db")
    with MessageLogStore(path) as store:
        blocks = list(RawReader(store).blocks(2, 8, 3))
    assert [[r.id for r in block] for block in blocks] == [[2, 3, 4], [5, 6, 7], [8]]


_ODD_VALUES = st.one_of(
    st.none(), st.integers(-(2**63), 2**63 - 1), st.binary(max_size=70), st.text(max_size=12),
    st.sampled_from([b"", b"\xff\xfe", b"request", "response", 0, 1, 2, 255, 64 | 1, 8, b"\x01" + bytes(36)]),
)
_COLUMNS = ["query_id", "x_request_id", "direction", "client", "service", "time_us", "message", "signature",
            "hashchain", "hashchainresult", "signature_hash", "succeeded", "fault_code", "prev_link", "link",
            "attachments", "stored_form"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_a_malformed_row_gets_the_stores_verdict(data: st.DataObject) -> None:
    """Any column of any row set to an odd value, or one byte of it flipped: the reader refuses the row exactly as
    the store's reader does (same record, same words), or reads the same record and link when the store does."""
    with tempfile.TemporaryDirectory() as folder:
        path = write(Path(folder) / "log.db", compact=data.draw(st.booleans(), label="compact"))
        record_id = data.draw(st.integers(1, len(entries())), label="record")
        column = data.draw(st.sampled_from(_COLUMNS), label="column")
        conn = sqlite3.connect(path, isolation_level=None)
        if data.draw(st.booleans(), label="flip"):
            (value,) = conn.execute(f"SELECT {column} FROM logrecord WHERE id = ?", [record_id]).fetchone()
            assume(isinstance(value, bytes) and value)
            at = data.draw(st.integers(0, len(value) - 1), label="at")
            value = value[:at] + bytes([value[at] ^ data.draw(st.integers(1, 255), label="mask")]) + value[at + 1:]
        else:
            value = data.draw(_ODD_VALUES, label="value")
        try:
            conn.execute(f"UPDATE logrecord SET {column} = ? WHERE id = ?", [value, record_id])
        except sqlite3.Error:
            assume(False)  # a value the column's type refuses
        finally:
            conn.close()
        expected: LogChainBroken | None = None
        with MessageLogStore(path) as store:
            try:
                records = list(store.records())
            except LogChainBroken as err:
                expected = err
        try:
            raws = read_raw(path, data.draw(st.integers(1, 5), label="block"))
        except LogChainBroken as err:
            assert expected is not None, err.reason
            assert (err.record_id, err.reason, str(err)) == (expected.record_id, expected.reason, str(expected))
            event("refused")
            return
        assert expected is None, expected.reason
        event("read")
        for record, raw in zip(records, raws, strict=True):
            assert [getattr(raw, name) for name in _FIELDS] == [getattr(record, name) for name in _FIELDS]
            assert raw.expected_link == compute_link(record)


def test_the_records_before_a_malformed_row_are_read_first(tmp_path: Path) -> None:
    """A malformed row in the middle of a block: the records before it come out, then its verdict."""
    path = write(tmp_path / "log.db")
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE logrecord SET succeeded = 7 WHERE id = 6")
    seen: list[int] = []
    with MessageLogStore(path) as store:
        try:
            for block in RawReader(store).blocks(1, 100, 4):
                seen += [record.id for record in block]
        except LogChainBroken as err:
            assert err.record_id == 6 and "malformed" in err.reason
    assert seen == [1, 2, 3, 4, 5]


def test_the_reader_rebuilds_every_stored_form_the_store_knows() -> None:
    """A stored form added to the store must be taught to the reader too (until then its rows take the slow path)."""
    assert HANDLED_FORMS == _KNOWN_FORMS


def test_every_kind_of_row_the_store_writes_takes_the_fast_path(tmp_path: Path) -> None:
    """Compact and plain rows of every kind are read without falling back to the store's reader (the speed)."""
    from security_server.messagelog.raw_records import SELECT_RANGE

    for compact in (True, False):
        with MessageLogStore(write(tmp_path / f"{compact}.db", compact=compact)) as store:
            reader = RawReader(store)
            rows = store.database.execute(SELECT_RANGE, (1, 100)).fetchall()
            assert len(rows) == len(entries())
            for row in rows:
                reader._fast(row)  # raises when the row would go to the store's reader


def test_a_changed_or_missing_shared_value_gets_the_stores_verdict(tmp_path: Path) -> None:
    """Each shared value (a batch's documents, skeletons, certificates, OCSP responses) changed or removed: the
    reader names the first record using it in the store's words."""
    path = write(tmp_path / "log.db")
    with sqlite3.connect(path) as conn:
        shared = conn.execute("SELECT hash, value FROM evidence_value ORDER BY hash").fetchall()
    assert len(shared) > 4
    for n, (address, value) in enumerate(shared):
        for change in ("UPDATE evidence_value SET value = ? WHERE hash = ?", "DELETE FROM evidence_value WHERE hash = ?"):
            copy = tmp_path / f"copy-{n}-{change[:6]}.db"
            copy.write_bytes(path.read_bytes())
            with sqlite3.connect(copy) as conn:
                conn.execute(change, [value[:-1] + bytes([value[-1] ^ 1]), address] if "UPDATE" in change else [address])
            with MessageLogStore(copy) as store:
                try:
                    list(store.records())
                    expected = None
                except LogChainBroken as err:
                    expected = (err.record_id, err.reason)
            try:
                read_raw(copy, 3)
                found = None
            except LogChainBroken as err:
                found = (err.record_id, err.reason)
            assert found == expected and found is not None
