"""The hash link that chains message-log records, so an edited, removed or reordered record is found.

Both security servers log every request and response with its signature (ARCHITECTURE.md, "One exchange";
X-Road's ``logrecord`` table, XROAD-REFERENCE.md §4.5). X-Road's database rows are protected only later, by the
batch timestamp over their signature hashes; fedbus also links every record to the one before it:

    link_n = SHA-512( canonical encoding of record n's fields  ||  link_(n-1) )

The encoding is unambiguous: a fixed domain tag, then every field in a fixed order, each as a presence byte
and a 64-bit big-endian length before its bytes, so no two different records encode alike. A record with
attachments uses the ``v2`` tag and adds the attachment count and each attachment just before ``prev_link``;
one without keeps the ``v1`` layout, so logs written before attachments were logged verify unchanged.
The first record links to :data:`GENESIS_LINK`. Because each link covers the previous one, changing any byte of any field of
record *n* breaks the link of record *n*; removing or swapping records breaks the ``prev_link`` of the record
that follows. Cutting records off the *end* of the chain is not visible in the chain itself: that needs an
anchor held elsewhere (the batch timestamps and archive digests that the timestamper adds).

This module is pure: the record time is passed in, hashing is the only work done.
"""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Iterable, Protocol

from security_server.core.errors import LogChainBroken

LINK_SIZE = 64
"""Bytes in a link and in a signature hash (SHA-512)."""

GENESIS_LINK = bytes(LINK_SIZE)
"""The ``prev_link`` of the first record ever written to a log."""

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
"""Record times are encoded and stored as whole microseconds since this instant."""

_DOMAIN = b"fedbus/messagelog/record/v1"
_DOMAIN_WITH_ATTACHMENTS = b"fedbus/messagelog/record/v2"
_MAX_ID = 2**63 - 1  # SQLite's INTEGER PRIMARY KEY range
_ONE_MICROSECOND = timedelta(microseconds=1)


class Direction(enum.StrEnum):
    """Whether a record holds the request or the response of an exchange (X-Road's ``response`` flag)."""

    REQUEST = "request"
    RESPONSE = "response"


def signature_hash(signature: bytes) -> bytes:
    """SHA-512 of the signature XML: the leaf that batch timestamping covers (XROAD-REFERENCE.md §4.5)."""
    return hashlib.sha512(signature).digest()


def time_to_micros(time: datetime) -> int:
    """Whole microseconds since the Unix epoch of an aware UTC ``time`` (the stored and hashed form)."""
    return (time - EPOCH) // _ONE_MICROSECOND


def micros_to_time(micros: int) -> datetime:
    """The aware UTC datetime that :func:`time_to_micros` encoded as ``micros``."""
    return EPOCH + timedelta(microseconds=micros)


@dataclass(frozen=True, slots=True, kw_only=True)
class LogEntry:
    """What a proxy hands the message log: one signed message and its context, not yet in the chain.

    ``message`` and ``signature`` are the bytes exactly as signed and as sent. ``hashchain`` and
    ``hashchainresult`` are present together when the signature covers a hash chain (several parts or a batch).
    ``attachments`` are the other signed parts in order: a REST body is ``attachment1``, SOAP attachments are
    ``attachment1`` .. ``attachmentN`` (the names they get in an ASiC-E container, XROAD-REFERENCE.md §4.6).
    A record that is not ``succeeded`` may carry the X-Road ``fault_code`` and may lack a signature (a failed
    exchange has no signed answer); a succeeded one has a signature and no fault code.
    """

    query_id: str
    direction: Direction
    client: str
    service: str
    time: datetime
    message: bytes = field(repr=False)
    signature: bytes = field(repr=False)
    x_request_id: str | None = None
    hashchain: bytes | None = field(default=None, repr=False)
    hashchainresult: bytes | None = field(default=None, repr=False)
    succeeded: bool = True
    fault_code: str | None = None
    attachments: tuple[bytes, ...] = field(default=(), repr=False)

    def __post_init__(self) -> None:
        _check_content(self)


@dataclass(frozen=True, slots=True, kw_only=True)
class LogRecord:
    """One message-log record: a :class:`LogEntry`'s fields plus its place in the hash-linked chain.

    Construction checks every field's type and shape; whether ``signature_hash`` and ``link`` are *right* is
    what :func:`verify_chain` checks, so a tampered record read back from storage can still be held and named.
    """

    id: int
    query_id: str
    direction: Direction
    client: str
    service: str
    time: datetime
    message: bytes = field(repr=False)
    signature: bytes = field(repr=False)
    x_request_id: str | None
    hashchain: bytes | None = field(repr=False)
    hashchainresult: bytes | None = field(repr=False)
    succeeded: bool
    fault_code: str | None
    signature_hash: bytes = field(repr=False)
    prev_link: bytes = field(repr=False)
    link: bytes = field(repr=False)
    attachments: tuple[bytes, ...] = field(default=(), repr=False)

    def __post_init__(self) -> None:
        _check_id(self.id)
        _check_content(self)
        for name in ("signature_hash", "prev_link", "link"):
            value = getattr(self, name)
            if type(value) is not bytes or len(value) != LINK_SIZE:
                raise ValueError(f"record {self.id}: {name} must be {LINK_SIZE} bytes")

    def to_entry(self) -> LogEntry:
        """The record's content without its place in the chain."""
        return LogEntry(
            query_id=self.query_id,
            direction=self.direction,
            client=self.client,
            service=self.service,
            time=self.time,
            message=self.message,
            signature=self.signature,
            x_request_id=self.x_request_id,
            hashchain=self.hashchain,
            hashchainresult=self.hashchainresult,
            succeeded=self.succeeded,
            fault_code=self.fault_code,
            attachments=self.attachments,
        )


class _Content(Protocol):
    """The fields that :class:`LogEntry` and :class:`LogRecord` share."""

    @property
    def query_id(self) -> str: ...
    @property
    def direction(self) -> Direction: ...
    @property
    def client(self) -> str: ...
    @property
    def service(self) -> str: ...
    @property
    def time(self) -> datetime: ...
    @property
    def message(self) -> bytes: ...
    @property
    def signature(self) -> bytes: ...
    @property
    def x_request_id(self) -> str | None: ...
    @property
    def hashchain(self) -> bytes | None: ...
    @property
    def hashchainresult(self) -> bytes | None: ...
    @property
    def succeeded(self) -> bool: ...
    @property
    def fault_code(self) -> str | None: ...
    @property
    def attachments(self) -> tuple[bytes, ...]: ...


def _check_id(record_id: object) -> None:
    if type(record_id) is not int or not 1 <= record_id <= _MAX_ID:
        raise ValueError(f"record id must be an int in 1..2**63-1, not {record_id!r}")


def _check_text(name: str, value: object, *, optional: bool = False) -> None:
    if value is None and optional:
        return
    if type(value) is not str or not value:
        raise ValueError(f"{name} must be a non-empty str")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as err:
        raise ValueError(f"{name} is not encodable as UTF-8") from err


def _check_bytes(name: str, value: object, *, optional: bool = False) -> None:
    if value is None and optional:
        return
    if type(value) is not bytes:
        raise ValueError(f"{name} must be bytes")


def _check_content(content: _Content) -> None:
    _check_text("query_id", content.query_id)
    _check_text("x_request_id", content.x_request_id, optional=True)
    _check_text("client", content.client)
    _check_text("service", content.service)
    _check_text("fault_code", content.fault_code, optional=True)
    if not isinstance(content.direction, Direction):
        raise ValueError(f"direction must be a Direction, not {content.direction!r}")
    time = content.time
    if not isinstance(time, datetime) or time.tzinfo is None or time.utcoffset() != timedelta(0):
        raise ValueError("time must be an aware datetime in UTC")
    _check_bytes("message", content.message)
    _check_bytes("signature", content.signature)
    _check_bytes("hashchain", content.hashchain, optional=True)
    _check_bytes("hashchainresult", content.hashchainresult, optional=True)
    if type(content.attachments) is not tuple:
        raise ValueError("attachments must be a tuple of bytes")
    for attachment in content.attachments:
        _check_bytes("attachment", attachment)
    if not content.message:
        raise ValueError("message must not be empty")
    if (content.hashchain is None) != (content.hashchainresult is None):
        raise ValueError("hashchain and hashchainresult come together (XROAD-REFERENCE.md §4.2)")
    if type(content.succeeded) is not bool:
        raise ValueError("succeeded must be a bool")
    if content.succeeded and content.fault_code is not None:
        raise ValueError("a succeeded record carries no fault code")
    if content.succeeded and not content.signature:
        raise ValueError("a succeeded record carries its signature")


_ABSENT = b"\x00"
_PRESENT = b"\x01"


def _text(value: str | None) -> bytes | None:
    return None if value is None else value.encode("utf-8")


def _link(record_id: int, content: _Content, sig_hash: bytes, prev_link: bytes) -> bytes:
    # A record without attachments keeps the v1 encoding (so logs written before attachments were logged still
    # verify); one with attachments uses the v2 domain tag and adds their count and each attachment before
    # prev_link. The domain tag tells the two layouts apart, so no v1 and v2 record encode alike. Each field is
    # a presence byte, then (when present) a 64-bit big-endian length and the bytes, fed to one hash in order.
    hasher = hashlib.sha512()
    update = hasher.update

    def put(value: bytes | None) -> None:
        if value is None:
            update(_ABSENT)
        else:
            update(_PRESENT + len(value).to_bytes(8, "big"))
            update(value)

    put(_DOMAIN_WITH_ATTACHMENTS if content.attachments else _DOMAIN)
    put(record_id.to_bytes(8, "big"))
    put(content.query_id.encode("utf-8"))
    put(_text(content.x_request_id))
    put(content.direction.value.encode("ascii"))
    put(content.client.encode("utf-8"))
    put(content.service.encode("utf-8"))
    put(time_to_micros(content.time).to_bytes(8, "big", signed=True))
    put(content.message)
    put(content.signature)
    put(content.hashchain)
    put(content.hashchainresult)
    put(sig_hash)
    put(_PRESENT if content.succeeded else _ABSENT)
    put(_text(content.fault_code))
    if content.attachments:
        put(len(content.attachments).to_bytes(8, "big"))
        for attachment in content.attachments:
            put(attachment)
    put(prev_link)
    return hasher.digest()


def compute_link(record: LogRecord) -> bytes:
    """The link that ``record``'s fields and ``prev_link`` call for (whatever its stored ``link`` says)."""
    return _link(record.id, record, record.signature_hash, record.prev_link)


def make_record(entry: LogEntry, *, record_id: int, prev_link: bytes) -> LogRecord:
    """Place ``entry`` in the chain as record ``record_id`` after the record whose link is ``prev_link``."""
    _check_id(record_id)
    if type(prev_link) is not bytes or len(prev_link) != LINK_SIZE:
        raise ValueError(f"prev_link must be {LINK_SIZE} bytes")
    sig_hash = signature_hash(entry.signature)
    return LogRecord(
        id=record_id,
        query_id=entry.query_id,
        direction=entry.direction,
        client=entry.client,
        service=entry.service,
        time=entry.time,
        message=entry.message,
        signature=entry.signature,
        x_request_id=entry.x_request_id,
        hashchain=entry.hashchain,
        hashchainresult=entry.hashchainresult,
        succeeded=entry.succeeded,
        fault_code=entry.fault_code,
        attachments=entry.attachments,
        signature_hash=sig_hash,
        prev_link=prev_link,
        link=_link(record_id, entry, sig_hash, prev_link),
    )


def verify_chain(records: Iterable[LogRecord], start_link: bytes) -> bytes:
    """Check that ``records``, in order, form an unbroken chain from ``start_link``; return the last link.

    Raises :class:`LogChainBroken` naming the first record that fails: one whose content or link was changed,
    whose signature hash does not match its signature, whose id does not follow the previous record's, or
    whose ``prev_link`` is not the previous record's link (a record before it was removed or moved).
    """
    expected_prev = start_link
    previous_id: int | None = None
    for record in records:
        if previous_id is not None and record.id != previous_id + 1:
            raise LogChainBroken(
                f"message log record {record.id} does not follow record {previous_id}", record_id=record.id
            )
        if record.prev_link != expected_prev:
            after = "the start of the chain" if previous_id is None else f"record {previous_id}"
            raise LogChainBroken(f"message log record {record.id} does not link to {after}", record_id=record.id)
        if record.signature_hash != signature_hash(record.signature):
            raise LogChainBroken(
                f"message log record {record.id}: signature hash does not match the signature", record_id=record.id
            )
        if compute_link(record) != record.link:
            raise LogChainBroken(
                f"message log record {record.id} was changed after it was written", record_id=record.id
            )
        expected_prev = record.link
        previous_id = record.id
    return expected_prev
