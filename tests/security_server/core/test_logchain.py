"""The message-log hash link: chains verify, and any change, removal or reordering is named."""

from __future__ import annotations

import dataclasses
import hashlib
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from security_server.core.errors import LogChainBroken, ServerFault
from security_server.core.logchain import (
    GENESIS_LINK,
    Direction,
    LogEntry,
    LogRecord,
    compute_link,
    make_record,
    micros_to_time,
    signature_hash,
    time_to_micros,
    verify_chain,
)

NOW = datetime(2026, 11, 29, 12, 0, 0, 123456, tzinfo=timezone.utc)
TEXT = st.text(st.characters(codec="utf-8"), min_size=1, max_size=12)


@st.composite
def entries(draw: st.DrawFn) -> LogEntry:
    """Any valid LogEntry."""
    succeeded = draw(st.booleans())
    with_chain = draw(st.booleans())
    return LogEntry(
        query_id=draw(TEXT),
        direction=draw(st.sampled_from(Direction)),
        client=draw(TEXT),
        service=draw(TEXT),
        time=draw(st.datetimes(timezones=st.just(timezone.utc))),
        message=draw(st.binary(min_size=1, max_size=40)),
        signature=draw(st.binary(min_size=1 if succeeded else 0, max_size=40)),
        x_request_id=draw(st.none() | TEXT),
        hashchain=draw(st.binary(max_size=20)) if with_chain else None,
        hashchainresult=draw(st.binary(max_size=20)) if with_chain else None,
        succeeded=succeeded,
        fault_code=None if succeeded else draw(st.none() | TEXT),
        attachments=tuple(draw(st.lists(st.binary(max_size=12), max_size=3))),
    )


def chain_of(items: list[LogEntry], start: bytes = GENESIS_LINK, first_id: int = 1) -> list[LogRecord]:
    """Link ``items`` in order, the way the store does."""
    records: list[LogRecord] = []
    link = start
    for offset, entry in enumerate(items):
        record = make_record(entry, record_id=first_id + offset, prev_link=link)
        records.append(record)
        link = record.link
    return records


def simple_entry(**changes: object) -> LogEntry:
    """A fixed, valid entry with some fields changed."""
    fields: dict[str, object] = dict(
        query_id="q-1",
        direction=Direction.REQUEST,
        client="SUBSYSTEM:EE/GOV/1234/consumer",
        service="SERVICE:EE/GOV/5678/provider/getPerson/v1",
        time=NOW,
        message=b"<soap/>",
        signature=b"<signature/>",
    )
    fields.update(changes)
    return LogEntry(**fields)  # type: ignore[arg-type]


@settings(max_examples=60, deadline=None)
@given(st.lists(entries(), max_size=8), st.binary(min_size=64, max_size=64), st.integers(1, 2**40))
def test_generated_chains_verify(items: list[LogEntry], start: bytes, first_id: int) -> None:
    """A chain built by make_record from any entries, start link and first id verifies and returns its last link."""
    records = chain_of(items, start, first_id)
    assert verify_chain(records, start) == (records[-1].link if records else start)
    assert all(record.to_entry() == entry for record, entry in zip(records, items))


def _tampered(record: LogRecord, data: st.DataObject) -> LogRecord:
    """``record`` with exactly one field changed by one byte (or one character, one step, one flip)."""
    byte_fields = [
        name
        for name in ("message", "signature", "hashchain", "hashchainresult", "signature_hash", "prev_link", "link")
        if getattr(record, name)
    ]
    text_names = ("query_id", "x_request_id", "client", "service", "fault_code")
    text_fields = [name for name in text_names if getattr(record, name)]
    other = ["direction", "time", "id", "attachments"]
    if record.succeeded or record.signature:
        other.append("succeeded")
    name = data.draw(st.sampled_from(byte_fields + text_fields + other), label="field")
    value = getattr(record, name)
    new: Any
    if name == "attachments":
        changes = [value + (b"",), value[:-1]] if value else [(b"",), (b"x",)]
        if any(value):
            index = data.draw(st.sampled_from([i for i, a in enumerate(value) if a]), label="attachment")
            at = data.draw(st.integers(0, len(value[index]) - 1), label="at")
            one = value[index]
            changes.append(value[:index] + (one[:at] + bytes([one[at] ^ 1]) + one[at + 1 :],) + value[index + 1 :])
        if len(value) > 1 and len(set(value)) > 1:
            changes.append(value[::-1] if value[::-1] != value else value[1:] + value[:1])
        if len(value) > 1 and value[0]:
            changes.append((value[0][:-1], value[0][-1:] + value[1]) + value[2:])
        new = data.draw(st.sampled_from([c for c in changes if c != value]), label="attachments")
    elif name in byte_fields:
        at = data.draw(st.integers(0, len(value) - 1), label="at")
        mask = data.draw(st.integers(1, 255), label="mask")
        new = value[:at] + bytes([value[at] ^ mask]) + value[at + 1 :]
    elif name in text_fields:
        at = data.draw(st.integers(0, len(value) - 1), label="at")
        char = data.draw(st.characters(codec="utf-8").filter(lambda c: c != value[at]), label="char")
        new = value[:at] + char + value[at + 1 :]
    elif name == "direction":
        new = Direction.RESPONSE if value is Direction.REQUEST else Direction.REQUEST
    elif name == "time":
        new = value + timedelta(microseconds=data.draw(st.sampled_from([-1, 1]), label="step"))
    elif name == "id":
        new = value + 1
    else:
        new = not value
        if new and record.fault_code is not None:
            return dataclasses.replace(record, succeeded=True, fault_code=None)
    return dataclasses.replace(record, **{name: new})


@settings(max_examples=100, deadline=None)
@given(st.lists(entries(), min_size=1, max_size=6), st.data())
def test_any_single_change_names_the_changed_record(items: list[LogEntry], data: st.DataObject) -> None:
    """Changing one byte, character, flag or step of any field of any record fails verification at that record."""
    records = chain_of(items)
    index = data.draw(st.integers(0, len(records) - 1), label="index")
    tampered = _tampered(records[index], data)
    records[index] = tampered
    with pytest.raises(LogChainBroken) as caught:
        verify_chain(records, GENESIS_LINK)
    assert caught.value.record_id == tampered.id


@settings(max_examples=50, deadline=None)
@given(st.lists(entries(), min_size=2, max_size=6), st.data())
def test_a_removed_record_is_named_by_its_successor(items: list[LogEntry], data: st.DataObject) -> None:
    """Removing any record but the last fails verification at the record that followed it."""
    records = chain_of(items)
    index = data.draw(st.integers(0, len(records) - 2), label="index")
    successor = records[index + 1]
    del records[index]
    with pytest.raises(LogChainBroken) as caught:
        verify_chain(records, GENESIS_LINK)
    assert caught.value.record_id == successor.id


@settings(max_examples=50, deadline=None)
@given(st.lists(entries(), min_size=2, max_size=6), st.data())
def test_swapped_records_are_detected(items: list[LogEntry], data: st.DataObject) -> None:
    """Swapping two neighbouring records fails verification at the one moved forward."""
    records = chain_of(items)
    index = data.draw(st.integers(0, len(records) - 2), label="index")
    records[index], records[index + 1] = records[index + 1], records[index]
    with pytest.raises(LogChainBroken) as caught:
        verify_chain(records, GENESIS_LINK)
    assert caught.value.record_id == records[index].id


def test_a_wrong_start_link_names_the_first_record() -> None:
    """A chain checked against another start link fails at its first record."""
    records = chain_of([simple_entry(), simple_entry(query_id="q-2")])
    with pytest.raises(LogChainBroken, match="start of the chain") as caught:
        verify_chain(records, b"\x01" * 64)
    assert caught.value.record_id == 1


def test_cutting_the_tail_is_not_visible_in_the_chain_alone() -> None:
    """Dropping the last records leaves a valid shorter chain: its end must be anchored elsewhere (issue 7)."""
    records = chain_of([simple_entry(), simple_entry(query_id="q-2")])
    assert verify_chain(records[:1], GENESIS_LINK) == records[0].link


def test_empty_chain_returns_the_start_link() -> None:
    """Verifying no records returns the start link unchanged."""
    assert verify_chain([], GENESIS_LINK) == GENESIS_LINK


def test_link_is_sha512_over_the_documented_length_prefixed_encoding() -> None:
    """The link is SHA-512 over the domain tag and each field as presence byte, 8-byte length, bytes (pinned)."""
    entry = simple_entry(x_request_id="req-7", hashchain=b"<hc/>", hashchainresult=b"<hcr/>")
    record = make_record(entry, record_id=5, prev_link=b"\x07" * 64)

    def field(value: bytes | None) -> bytes:
        return b"\x00" if value is None else b"\x01" + len(value).to_bytes(8, "big") + value

    expected = hashlib.sha512(
        field(b"fedbus/messagelog/record/v1")
        + field((5).to_bytes(8, "big"))
        + field(b"q-1")
        + field(b"req-7")
        + field(b"request")
        + field(b"SUBSYSTEM:EE/GOV/1234/consumer")
        + field(b"SERVICE:EE/GOV/5678/provider/getPerson/v1")
        + field(time_to_micros(NOW).to_bytes(8, "big", signed=True))
        + field(b"<soap/>")
        + field(b"<signature/>")
        + field(b"<hc/>")
        + field(b"<hcr/>")
        + field(hashlib.sha512(b"<signature/>").digest())
        + field(b"\x01")
        + field(None)
        + field(b"\x07" * 64)
    ).digest()
    assert record.link == expected == compute_link(record)


def test_moving_bytes_between_fields_changes_the_link() -> None:
    """Length prefixes keep adjacent fields apart: 'ab'+'c' and 'a'+'bc' link differently, as do None and empty."""
    one = make_record(simple_entry(message=b"ab", signature=b"c"), record_id=1, prev_link=GENESIS_LINK)
    two = make_record(simple_entry(message=b"a", signature=b"bc"), record_id=1, prev_link=GENESIS_LINK)
    absent = make_record(simple_entry(), record_id=1, prev_link=GENESIS_LINK)
    empty = make_record(simple_entry(hashchain=b"", hashchainresult=b""), record_id=1, prev_link=GENESIS_LINK)
    assert len({one.link, two.link, absent.link, empty.link}) == 4


def test_attachments_use_the_v2_encoding_and_keep_their_boundaries() -> None:
    """A record with attachments links with the v2 tag, their count and each attachment before prev_link (pinned)."""
    entry = simple_entry(attachments=(b"body", b""))
    record = make_record(entry, record_id=2, prev_link=GENESIS_LINK)

    def field(value: bytes | None) -> bytes:
        return b"\x00" if value is None else b"\x01" + len(value).to_bytes(8, "big") + value

    expected = hashlib.sha512(
        field(b"fedbus/messagelog/record/v2")
        + field((2).to_bytes(8, "big"))
        + field(b"q-1")
        + field(None)
        + field(b"request")
        + field(b"SUBSYSTEM:EE/GOV/1234/consumer")
        + field(b"SERVICE:EE/GOV/5678/provider/getPerson/v1")
        + field(time_to_micros(NOW).to_bytes(8, "big", signed=True))
        + field(b"<soap/>")
        + field(b"<signature/>")
        + field(None)
        + field(None)
        + field(hashlib.sha512(b"<signature/>").digest())
        + field(b"\x01")
        + field(None)
        + field((2).to_bytes(8, "big"))
        + field(b"body")
        + field(b"")
        + field(GENESIS_LINK)
    ).digest()
    assert record.link == expected == compute_link(record)
    assert record.to_entry() == entry
    variants = [(), (b"body",), (b"bod", b"y"), (b"body", b"", b""), (b"", b"body")]
    links = {make_record(simple_entry(attachments=a), record_id=2, prev_link=GENESIS_LINK).link for a in variants}
    assert len(links | {record.link}) == len(variants) + 1


def test_signature_hash_is_sha512_of_the_signature_xml() -> None:
    """signature_hash is SHA-512 of the signature bytes, the leaf batch timestamping covers (XROAD-REFERENCE §4.5)."""
    record = make_record(simple_entry(), record_id=1, prev_link=GENESIS_LINK)
    assert record.signature_hash == signature_hash(b"<signature/>") == hashlib.sha512(b"<signature/>").digest()


def test_a_stale_signature_hash_is_named() -> None:
    """A record whose signature hash does not match its signature fails, even with a recomputed link."""
    record = make_record(simple_entry(), record_id=1, prev_link=GENESIS_LINK)
    forged = dataclasses.replace(record, signature=b"<other/>")
    forged = dataclasses.replace(forged, link=compute_link(forged))
    with pytest.raises(LogChainBroken, match="signature hash") as caught:
        verify_chain([forged], GENESIS_LINK)
    assert caught.value.record_id == 1


def test_log_chain_broken_is_a_server_fault() -> None:
    """A broken log chain is our side's fault, with the invalid_hash_chain code."""
    error = LogChainBroken("broken", record_id=3)
    assert isinstance(error, ServerFault)
    assert error.fault_code == "server.invalid_hash_chain"
    assert error.record_id == 3


@settings(max_examples=100, deadline=None)
@given(st.datetimes(timezones=st.just(timezone.utc)))
def test_time_round_trips_through_microseconds(moment: datetime) -> None:
    """Any aware UTC datetime survives the integer-microsecond form exactly."""
    assert micros_to_time(time_to_micros(moment)) == moment


@pytest.mark.parametrize(
    "changes",
    [
        {"time": datetime(2026, 1, 1)},
        {"time": datetime(2026, 1, 1, tzinfo=timezone(timedelta(hours=2)))},
        {"query_id": ""},
        {"client": b"bytes"},
        {"message": b""},
        {"message": bytearray(b"x")},
        {"direction": "request"},
        {"hashchain": b"<hc/>"},
        {"fault_code": "server.x"},
        {"signature": b""},
        {"succeeded": 1},
        {"x_request_id": "\ud800"},
        {"attachments": [b"x"]},
        {"attachments": (b"x", "y")},
        {"attachments": (bytearray(b"x"),)},
    ],
    ids=lambda changes: ",".join(changes),
)
def test_invalid_entries_are_refused(changes: dict[str, object]) -> None:
    """A LogEntry with a naive or non-UTC time, empty or mistyped field, or inconsistent flags cannot be built."""
    with pytest.raises(ValueError):
        simple_entry(**changes)


def test_failed_records_may_lack_a_signature_and_carry_a_fault() -> None:
    """A failed exchange's record may have no signature and an X-Road fault code."""
    entry = simple_entry(signature=b"", succeeded=False, fault_code="server.serverproxy.service_failed.timeout")
    record = make_record(entry, record_id=1, prev_link=GENESIS_LINK)
    assert verify_chain([record], GENESIS_LINK) == record.link


@pytest.mark.parametrize("record_id", [0, -1, 2**63, True])
def test_record_ids_are_positive_64_bit_ints(record_id: int) -> None:
    """make_record refuses ids SQLite cannot hold as a rowid, and bools."""
    with pytest.raises(ValueError):
        make_record(simple_entry(), record_id=record_id, prev_link=GENESIS_LINK)


def test_prev_link_must_be_64_bytes() -> None:
    """make_record refuses a prev_link that is not a SHA-512 digest."""
    with pytest.raises(ValueError):
        make_record(simple_entry(), record_id=1, prev_link=b"short")


def test_repr_leaves_out_message_and_signature() -> None:
    """A record's repr never shows the message or signature bytes (they must not reach logs)."""
    record = make_record(simple_entry(message=b"SECRET-BODY"), record_id=1, prev_link=GENESIS_LINK)
    assert "SECRET-BODY" not in repr(record)
    assert "SECRET-BODY" not in repr(record.to_entry())


@pytest.mark.parametrize(
    ("direction", "x_request_id", "attachments", "record_id", "prev_link", "link_hex"),
    [
        (
            Direction.REQUEST, None, (), 1, bytes(64),
            "d48c176c0cde59e9d8912c578a11c014d8c4654bce5369c69dcf2490ce5a8422"
            "091e765fc94e119d452ab1f8c1d0a126dd1d16de62972e1fc4fa2d2e98782aea",
        ),
        (
            Direction.RESPONSE, "r-1", (b"one", b"two"), 7, bytes(range(64)),
            "9d786e0c637876df3ed67aa179c6a6c9a0c8dcb975f6657f8e9914beb3cbbb12"
            "4c1782f702b06b8c5fb9f7c4fe5ac79e14e6a25636f9891c9abed594992f7dc0",
        ),
    ],
    ids=["v1-without-attachments", "v2-with-attachments"],
)
def test_link_encoding_is_fixed(
    direction: Direction, x_request_id: str | None, attachments: tuple[bytes, ...], record_id: int,
    prev_link: bytes, link_hex: str,
) -> None:
    """The link of a known record is a known value: logs already written must keep verifying, so the encoding
    (field order, presence bytes, lengths, domain tags) may never change by accident."""
    entry = LogEntry(
        query_id="q-1",
        direction=direction,
        client="SUBSYSTEM:EE/GOV/70000001/client",
        service="SERVICE:EE/GOV/70000002/service/getPerson/v1",
        time=datetime(2026, 11, 29, 12, 0, 0, 123456, tzinfo=timezone.utc),
        message=b"<m/>",
        signature=b"<sig/>",
        x_request_id=x_request_id,
        hashchain=None,
        hashchainresult=None,
        attachments=attachments,
    )
    assert make_record(entry, record_id=record_id, prev_link=prev_link).link.hex() == link_hex
