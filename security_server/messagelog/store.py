"""The message log's SQLite store: hash-linked records, appended one transaction per batch.

One table, ``logrecord``, holds what X-Road's ``logrecord`` holds for a message record (XROAD-REFERENCE.md §4.5:
query id, message, signature, hash chain and result, signature hash, direction, client, X-Request-Id) plus the
hash link of :mod:`security_server.core.logchain`. ``chain_anchor`` holds where the chain in this database
starts (the first record id and the link before it), so that records removed after archiving (issue 7) leave
a verifiable rest. The nullable ``timestamp_id`` and ``ts_hashchain`` columns are left for batch timestamps
(issue 7); they are not part of the link, because a timestamp is added to a record after it was written.
Migration ``m002`` adds ``attachments`` (NULL when a record has none; else the encoding of
:func:`encode_attachments`); a database written before it reads back with no attachments and verifies as it did.

Migration ``m003`` adds the evidence of issue 7 (XROAD-REFERENCE.md §4.5, §4.6), all outside the hash link:
``timestamp`` rows (an RFC 3161 token and, for a batch, its ``ts-hashchainresult.xml``) that records point to
through ``timestamp_id`` with their own ``ts_hashchain``; ``archived_us`` (when a record went into an archive);
``archive_state`` (X-Road's ``last_archive_digest``: the last linkinginfo digest and archive file name); and
``pending_archive`` (an archive being written, so that a crash between writing the file and recording it is
finished on the next run with the same bytes, never forking the archive chain). A record without a signature
(a failed exchange) has nothing to timestamp: it gets :data:`NO_SIGNATURE_TIMESTAMP_ID`.

Migration ``m005`` stores records compactly (issue 23; docs/evidence.md, "What a record holds and how it is stored"):
``evidence_value`` holds each certificate, OCSP response and document skeleton once, by the SHA-256 of its bytes,
and ``stored_form`` says per row which fields are in a compact form (NULL, as in every row written before it: all
as they are). A signature or hash-chain document is stored as :mod:`security_server.core.compact_signature` packs
it (only when it rebuilds to exactly its bytes; else as it is), and the message and attachments zlib-compressed
when that is smaller and the store is asked to. A batch timestamp's per-record ``ts-hashchain.xml`` (a step per
level of a tree over the whole batch: kilobytes each) is stored as the batch's leaves (a shared value) and the
record's index, when the chains are exactly what those leaves rebuild to. A record is rebuilt whole on read, so :class:`LogRecord`, the hash
link and every export are exactly as before; changing a shared value breaks every record that uses it, and
:meth:`MessageLogStore.verify` names the first.

Migration ``m004`` (issue 23) adds ``user_id``, the user id the message names (SOAP ``userId``, ``X-Road-UserId``;
a response that names none takes its request's), outside the hash link: an index derived from the logged message
that a verifier can derive again (:mod:`security_server.core.message_user`); rows written before it hold NULL. It
also adds one index per ``audit find`` shape, each ending in ``time_us`` (:func:`search_query`).

The schema is :data:`SCHEMA`, numbered migrations applied on open by :mod:`security_server.store.migrations`
(a log written before them, with sqlite-utils' ``_sqlite_migrations``, is adopted as it is).

Durability (PERFORMANCE-NOTES.md B.7, C.3.5): WAL journal, ``synchronous=FULL`` by default so that a committed
record survives a power cut, not only a crash (``NORMAL`` is configurable and survives a process crash only);
records arrive in batches and each batch is one transaction. The file is opened through the store layer
(:mod:`security_server.store.sqlite`), so every SQLite failure leaves as
:class:`~security_server.core.errors.DatabaseError` (a locked, damaged or unwritable file as its named leaf), never
as a bare ``sqlite3`` exception.

A store object belongs to the thread that opened it (sqlite3's rule); the ordered writer owns one in its thread.
"""

from __future__ import annotations

import functools
import hashlib
import sqlite3
import zlib
from datetime import datetime
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

from security_server.core import compact_signature, digests
from security_server.core.compact_signature import Packed, SharedValue
from security_server.core.hashchain import SIGNATURE, TS_HASH_CHAIN, batch_hash_chain_result, build_hash_chain
from security_server.core.errors import DatabaseError, LogChainBroken
from security_server.core.message_user import message_user_id
from security_server.core.logchain import (
    GENESIS_LINK,
    Direction,
    LogEntry,
    LogRecord,
    make_record,
    micros_to_time,
    time_to_micros,
    verify_chain,
)
from security_server.store.engine import Connection, Database
from security_server.store.migrations import Migration, Schema, migrate
from security_server.store.sqlite import DEFAULT_BUSY_TIMEOUT as DEFAULT_BUSY_TIMEOUT
from security_server.store.sqlite import Synchronous as Synchronous
from security_server.store.sqlite import open_sqlite


_COLUMNS = (
    "id",
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
    "stored_form",
)
_COLUMN_INDEX = {name: index for index, name in enumerate(_COLUMNS)}
_TEXT_COLUMNS = frozenset({"query_id", "x_request_id", "direction", "client", "service", "fault_code"})
# Text is read as raw bytes and decoded here, so a row holding invalid UTF-8 is reported as a malformed record
# (LogChainBroken naming it) rather than failing inside the sqlite3 module.
_SELECT = "SELECT {} FROM logrecord".format(
    ", ".join(f"CAST({name} AS BLOB)" if name in _TEXT_COLUMNS else name for name in _COLUMNS)
)
# The user id (migration m004) is written with each row but is no field of a record: see _with_user_ids.
_WRITTEN = (*_COLUMNS, "user_id")
_INSERT = f"INSERT INTO logrecord ({', '.join(_WRITTEN)}) VALUES ({', '.join('?' for _ in _WRITTEN)})"


# The schema. The text of each statement is what sqlite-utils wrote before numbered migrations, so that a log
# created now and one created then hold the same schema, byte for byte.


def _create_table(name: str, columns: Sequence[tuple[str, str]]) -> str:
    body = ",\n".join(f'   "{column}" {kind}' for column, kind in columns)
    return f'CREATE TABLE "{name}" (\n{body}\n) STRICT'


def _create_index(table: str, column: str) -> str:
    return f'CREATE INDEX "idx_{table}_{column}"\n    ON "{table}" ("{column}")'


def _m001_logrecord(conn: Connection) -> None:
    """Create the record table and the chain anchor."""
    conn.execute(
        _create_table(
            "logrecord",
            [
                ("id", "INTEGER PRIMARY KEY"),
                ("query_id", "TEXT NOT NULL"),
                ("x_request_id", "TEXT"),
                ("direction", "TEXT NOT NULL"),
                ("client", "TEXT NOT NULL"),
                ("service", "TEXT NOT NULL"),
                ("time_us", "INTEGER NOT NULL"),
                ("message", "BLOB NOT NULL"),
                ("signature", "BLOB NOT NULL"),
                ("hashchain", "BLOB"),
                ("hashchainresult", "BLOB"),
                ("signature_hash", "BLOB NOT NULL"),
                ("succeeded", "INTEGER NOT NULL"),
                ("fault_code", "TEXT"),
                ("prev_link", "BLOB NOT NULL"),
                ("link", "BLOB NOT NULL"),
                # Filled in by batch timestamping (issue 7); outside the hash link.
                ("timestamp_id", "INTEGER"),
                ("ts_hashchain", "BLOB"),
            ],
        )
    )
    conn.execute(_create_index("logrecord", "query_id"))
    conn.execute(_create_index("logrecord", "time_us"))
    conn.execute(
        _create_table(
            "chain_anchor",
            [("id", "INTEGER PRIMARY KEY"), ("first_id", "INTEGER NOT NULL"), ("prev_link", "BLOB NOT NULL")],
        )
    )
    conn.execute("INSERT INTO chain_anchor (id, first_id, prev_link) VALUES (1, 1, ?)", (GENESIS_LINK,))


def _m002_attachments(conn: Connection) -> None:
    """Add the attachments column (REST body or SOAP attachments, part of the hash link); NULL for none."""
    conn.execute("ALTER TABLE logrecord ADD COLUMN attachments BLOB")


def _m003_evidence(conn: Connection) -> None:
    """Add batch timestamps, archive marks, the archive chain state and the pending archive (issue 7)."""
    conn.execute(
        _create_table(
            "timestamp",
            [
                ("id", "INTEGER PRIMARY KEY"),
                ("time_us", "INTEGER NOT NULL"),
                ("token", "BLOB NOT NULL"),
                ("hash_chain_result", "BLOB"),
                ("tsa_url", "TEXT"),
            ],
        )
    )
    conn.execute("ALTER TABLE logrecord ADD COLUMN archived_us INTEGER")
    conn.execute("CREATE INDEX idx_logrecord_untimestamped ON logrecord (id) WHERE timestamp_id IS NULL")
    conn.execute(
        "CREATE INDEX idx_logrecord_unarchived ON logrecord (id) WHERE archived_us IS NULL AND timestamp_id > 0"
    )
    conn.execute("CREATE INDEX idx_logrecord_timestamp ON logrecord (timestamp_id)")
    conn.execute(_create_index("logrecord", "client"))
    conn.execute(_create_index("logrecord", "service"))
    conn.execute(
        _create_table(
            "archive_state",
            [("id", "INTEGER PRIMARY KEY"), ("last_digest", "TEXT NOT NULL"), ("last_file", "TEXT NOT NULL")],
        )
    )
    conn.execute("INSERT INTO archive_state (id, last_digest, last_file) VALUES (1, '', '')")
    conn.execute(
        _create_table(
            "pending_archive",
            [
                ("id", "INTEGER PRIMARY KEY"),
                ("file_name", "TEXT NOT NULL"),
                ("first_id", "INTEGER NOT NULL"),
                ("last_id", "INTEGER NOT NULL"),
                ("prev_digest", "TEXT NOT NULL"),
                ("prev_file", "TEXT NOT NULL"),
                ("last_digest", "TEXT NOT NULL"),
            ],
        )
    )


def _m004_search(conn: Connection) -> None:
    """Add ``user_id`` (an index over the message, outside the hash link) and one index per search shape (issue 23).

    ``audit find`` lists in time order, so each criterion's index ends with ``time_us`` (and, implicitly, the id):
    rows come out of the index already in order and a ``LIMIT`` stops the read early. The single-column client and
    service indexes of m003 are superseded by the composite ones (same leading column) and dropped.
    """
    conn.execute("ALTER TABLE logrecord ADD COLUMN user_id TEXT")
    conn.execute("DROP INDEX idx_logrecord_client")
    conn.execute("DROP INDEX idx_logrecord_service")
    for column in ("client", "service", "user_id"):
        conn.execute(f"CREATE INDEX idx_logrecord_{column}_time ON logrecord ({column}, time_us)")


def _m005_compact(conn: Connection) -> None:
    """Add the shared evidence values and each row's stored form (issue 23: a record stored compactly).

    ``evidence_value`` holds a value (certificate, OCSP response, document skeleton) once, at the SHA-256 of its
    bytes; ``last_record_id`` is the newest record using it, so that cleaning removes a value with its last record.
    ``stored_form`` is NULL for rows stored as they are (every row written before this migration).
    """
    conn.execute("ALTER TABLE logrecord ADD COLUMN stored_form INTEGER")
    conn.execute(
        _create_table(
            "evidence_value",
            [
                ("hash", "BLOB PRIMARY KEY"),
                ("kind", "TEXT NOT NULL"),
                ("value", "BLOB NOT NULL"),
                ("last_record_id", "INTEGER NOT NULL"),
            ],
        )
    )
    conn.execute("CREATE INDEX idx_evidence_value_last_record ON evidence_value (last_record_id)")


SCHEMA = Schema(
    "messagelog",
    (
        Migration(1, "logrecord", _m001_logrecord),
        Migration(2, "attachments", _m002_attachments),
        Migration(3, "evidence", _m003_evidence),
        Migration(4, "search", _m004_search),
        Migration(5, "compact", _m005_compact),
    ),
    legacy_set="fedbus.messagelog",
)
"""The message log's numbered migrations; a later issue appends to them."""


_ATTACHMENT_COUNT_SIZE = 4
_ATTACHMENT_LENGTH_SIZE = 8


def encode_attachments(attachments: tuple[bytes, ...]) -> bytes | None:
    """The stored form of ``attachments``: None for none, else a 4-byte count, then each as 8-byte length + bytes."""
    if not attachments:
        return None
    parts = [len(attachments).to_bytes(_ATTACHMENT_COUNT_SIZE, "big")]
    for attachment in attachments:
        parts.append(len(attachment).to_bytes(_ATTACHMENT_LENGTH_SIZE, "big"))
        parts.append(attachment)
    return b"".join(parts)


def decode_attachments(stored: object) -> tuple[bytes, ...]:
    """The attachments that :func:`encode_attachments` stored; ValueError when ``stored`` is not such an encoding."""
    if stored is None:
        return ()
    if type(stored) is not bytes or len(stored) < _ATTACHMENT_COUNT_SIZE:
        raise ValueError("attachments column is not an attachment list")
    view = memoryview(stored)
    count = int.from_bytes(view[:_ATTACHMENT_COUNT_SIZE], "big")
    if count == 0:
        raise ValueError("attachments column holds an empty list (stored as NULL)")
    at = _ATTACHMENT_COUNT_SIZE
    attachments = []
    for _ in range(count):
        if len(view) - at < _ATTACHMENT_LENGTH_SIZE:
            raise ValueError("attachments column is truncated")
        length = int.from_bytes(view[at : at + _ATTACHMENT_LENGTH_SIZE], "big")
        at += _ATTACHMENT_LENGTH_SIZE
        if len(view) - at < length:
            raise ValueError("attachments column is truncated")
        attachments.append(bytes(view[at : at + length]))
        at += length
    if at != len(view):
        raise ValueError("attachments column has trailing bytes")
    return tuple(attachments)


# Bits of ``stored_form`` (migration m005): which fields of a row are not stored as they are.
FORM_SIGNATURE = 1
"""``signature`` holds :func:`~security_server.core.compact_signature.pack`'s compact form."""
FORM_HASHCHAIN = 2
"""``hashchain`` holds its compact form."""
FORM_HASHCHAINRESULT = 4
"""``hashchainresult`` holds its compact form."""
FORM_MESSAGE_ZLIB = 8
"""``message`` is zlib-compressed."""
FORM_ATTACHMENTS_ZLIB = 16
"""``attachments`` (the encoding of :func:`encode_attachments`) is zlib-compressed."""
FORM_TS_HASHCHAIN = 32
"""``ts_hashchain`` names its batch's leaves and the record's place among them (:func:`derived_ts_hashchain`)."""
FORM_SIGNATURE_SHARED = 64
"""With :data:`FORM_SIGNATURE`: ``signature`` is the address of a shared value holding the compact form (a batch's)."""
FORM_HASHCHAINRESULT_SHARED = 128
"""With :data:`FORM_HASHCHAINRESULT`: ``hashchainresult`` is the address of its shared compact form."""
_KNOWN_FORMS = (
    FORM_SIGNATURE | FORM_HASHCHAIN | FORM_HASHCHAINRESULT | FORM_MESSAGE_ZLIB | FORM_ATTACHMENTS_ZLIB | FORM_TS_HASHCHAIN
    | FORM_SIGNATURE_SHARED | FORM_HASHCHAINRESULT_SHARED
)
KIND_DOCUMENT = "document"
"""Shared value kind: the compact signature or hash-chain result that the records of one signing batch share."""
KIND_TS_LEAVES = "ts-leaves"
"""Shared value kind: a batch timestamp's leaves (the signature hashes, in order), 64 bytes each."""
_DERIVED_TS_VERSION = 1
_ZLIB_LEVEL = 6
_SHARED_CACHE_SIZE = 4096


@functools.lru_cache(maxsize=64)
def _pack(document: bytes) -> Packed | None:
    """The compact form of a document (remembered: a batch's records share their signature and chain result)."""
    return compact_signature.pack(document)


def _deflate(data: bytes) -> bytes | None:
    """``data`` zlib-compressed, or None when that is not smaller."""
    packed = zlib.compress(data, _ZLIB_LEVEL)
    return packed if len(packed) < len(data) else None


def stored_row(record: LogRecord, *, compact: bool, compress_bodies: bool) -> tuple[tuple[Any, ...], list[SharedValue]]:
    """The row that stores ``record`` (in :data:`_COLUMNS` order) and the shared values it references.

    With ``compact``, each signature and hash-chain document that packs exactly is stored packed; a record signed
    through a hash chain (one signature over a batch, or over a message and its attachments) references its
    signature's and its hash-chain result's compact forms as shared values, which the batch's records share. With
    ``compress_bodies``, the message and the attachments are stored zlib-compressed when that is smaller.
    """
    row = list(_row_values(record))
    form = 0
    shared: list[SharedValue] = []
    if compact:
        for bit, name, shared_bit in ((FORM_SIGNATURE, "signature", FORM_SIGNATURE_SHARED),
                                      (FORM_HASHCHAIN, "hashchain", 0),
                                      (FORM_HASHCHAINRESULT, "hashchainresult", FORM_HASHCHAINRESULT_SHARED)):
            index = _COLUMN_INDEX[name]
            document = row[index]
            packed = _pack(document) if document else None
            if packed is None:
                continue
            shared.extend(packed.shared)
            form |= bit
            if shared_bit and record.hashchain is not None:
                holder = SharedValue.of(KIND_DOCUMENT, packed.compact)
                shared.append(holder)
                row[index] = holder.address
                form |= shared_bit
            else:
                row[index] = packed.compact
    if compress_bodies:
        for bit, name in ((FORM_MESSAGE_ZLIB, "message"), (FORM_ATTACHMENTS_ZLIB, "attachments")):
            index = _COLUMN_INDEX[name]
            if row[index] is not None:
                deflated = _deflate(row[index])
                if deflated is not None:
                    row[index] = deflated
                    form |= bit
    row[_COLUMN_INDEX["stored_form"]] = form or None
    return tuple(row), shared


def _inflate(data: object) -> bytes:
    if type(data) is not bytes:
        raise ValueError("a compressed field is not bytes")
    return zlib.decompress(data)


def _stored_fields(
    values: dict[str, Any], lookup: compact_signature.Lookup, documents: dict[bytes, bytes] | None = None
) -> None:
    """Turn the fields of a row's ``values`` that ``stored_form`` marks back into the bytes they stand for.

    ``documents`` remembers the shared documents rebuilt so far (a signing batch's records share one).
    """
    form = values["stored_form"]
    if form is None:
        return
    if type(form) is not int or not 0 < form <= _KNOWN_FORMS or form & ~_KNOWN_FORMS:
        raise ValueError(f"stored_form {form!r} is not a known form")
    for bit, name, shared_bit in ((FORM_SIGNATURE, "signature", FORM_SIGNATURE_SHARED),
                                  (FORM_HASHCHAIN, "hashchain", 0),
                                  (FORM_HASHCHAINRESULT, "hashchainresult", FORM_HASHCHAINRESULT_SHARED)):
        if form & shared_bit and not form & bit:
            raise ValueError(f"stored_form {form} shares a {name} that is not compact")
        if form & bit:
            compact = values[name]
            if type(compact) is not bytes:
                raise ValueError(f"compact {name} is not bytes")
            if not form & shared_bit:
                values[name] = compact_signature.unpack(compact, lookup)
                continue
            if len(compact) != compact_signature.HASH_SIZE:
                raise ValueError(f"shared {name} is not an address")
            document = None if documents is None else documents.get(compact)
            if document is None:
                document = compact_signature.unpack(lookup(compact), lookup)
                if documents is not None:
                    if len(documents) >= _SHARED_CACHE_SIZE:
                        documents.clear()
                    documents[compact] = document
            values[name] = document
    if form & FORM_MESSAGE_ZLIB:
        values["message"] = _inflate(values["message"])
    if form & FORM_ATTACHMENTS_ZLIB:
        values["attachments"] = _inflate(values["attachments"])


def _ts_chains(leaves: Sequence[bytes]) -> tuple[bytes, tuple[bytes, ...]]:
    """The ``ts-hashchainresult.xml`` and each record's ``ts-hashchain.xml`` the timestamper writes for ``leaves``."""
    chains = build_hash_chain(
        [[leaf] for leaf in leaves], chain_uri=TS_HASH_CHAIN, data_uri=SIGNATURE, algorithm=digests.SHA512
    )
    return chains.result, chains.chains


@dataclass(frozen=True, slots=True)
class TsBatch:
    """A batch timestamp over the records' signature hashes (XROAD-REFERENCE.md §4.5), as :func:`ts_batch` made it:
    the leaves, the ``ts-hashchainresult.xml`` the token covers and the leaves as the shared value the compact store
    keeps. Each record's ``ts-hashchain.xml`` follows from the leaves and is built only when asked for
    (:meth:`chains`): the compact store keeps it derived."""

    leaves: tuple[bytes, ...]
    result: bytes
    leaves_value: SharedValue = field(repr=False)

    def chains(self) -> tuple[bytes, ...]:
        """Each record's ``ts-hashchain.xml``, in the leaves' order (about 20 µs a record)."""
        return _ts_chains(self.leaves)[1]


def ts_batch(leaves: Sequence[bytes]) -> TsBatch:
    """The batch timestamp's result over two or more ``leaves`` without building the chains (one tree walk: about
    1 ms per 1,000 records, against 20 ms with every record's chain)."""
    result = batch_hash_chain_result(leaves, chain_uri=TS_HASH_CHAIN, algorithm=digests.SHA512)
    return TsBatch(tuple(leaves), result, SharedValue.of(KIND_TS_LEAVES, b"".join(leaves)))


def derived_ts_hashchain(stored: bytes) -> tuple[bytes, int]:
    """The leaves' address and the record's index that a derived ``ts_hashchain`` holds (ValueError if malformed).

    A record of a batch timestamp keeps, instead of its ``ts-hashchain.xml`` (a few kilobytes: a step per level of
    a tree over the whole batch), a version byte, the address of the batch's leaves (a shared value) and its index
    among them: the chain is exactly the one the timestamper built over those leaves, and is rebuilt from them.
    """
    if type(stored) is not bytes or len(stored) != 5 + compact_signature.HASH_SIZE or stored[0] != _DERIVED_TS_VERSION:
        raise ValueError("not a derived ts hash chain")
    index = int.from_bytes(stored[1 + compact_signature.HASH_SIZE :], "big")
    return stored[1 : 1 + compact_signature.HASH_SIZE], index


NO_SIGNATURE_TIMESTAMP_ID = 0
"""``timestamp_id`` of a record that carries no signature (a failed exchange): there is nothing to timestamp."""


@dataclass(frozen=True, slots=True)
class StoredTimestamp:
    """A timestamp row: the RFC 3161 token and, for a batch timestamp, the ``ts-hashchainresult.xml`` it covers."""

    id: int
    time: datetime
    token: bytes = field(repr=False)
    hash_chain_result: bytes | None = field(repr=False)
    tsa_url: str | None


@dataclass(frozen=True, slots=True)
class RecordTimestamp:
    """A record's share of a timestamp: the timestamp and the record's own ``ts-hashchain.xml`` (batch only)."""

    timestamp: StoredTimestamp
    hash_chain: bytes | None = field(repr=False)


@dataclass(frozen=True, slots=True)
class TimestampAssignment:
    """What a granted timestamp gives each record: its id and its own ts hash chain (None for a single one)."""

    record_id: int
    hash_chain: bytes | None = field(repr=False)


@dataclass(frozen=True, slots=True)
class ArchiveState:
    """Where the archive chain stands: the last linkinginfo digest and the archive file that ended with it."""

    last_digest: str
    last_file: str


@dataclass(frozen=True, slots=True)
class PendingArchive:
    """An archive decided on but not yet recorded as written: records ``first_id``..``last_id``, its name and chain."""

    file_name: str
    first_id: int
    last_id: int
    prev_digest: str
    prev_file: str
    last_digest: str


@dataclass(frozen=True, slots=True)
class RecordSummary:
    """A record without its message and signature bytes: what ``audit find`` lists."""

    id: int
    query_id: str
    direction: Direction
    client: str
    service: str
    time: datetime
    succeeded: bool
    fault_code: str | None
    x_request_id: str | None
    timestamp_id: int | None
    archived: bool
    user_id: str | None = None
    """The user id the exchange names (SOAP ``userId`` / ``X-Road-UserId``); None before migration m004."""


_SUMMARY_COLUMNS = (
    "id, query_id, direction, client, service, time_us, succeeded, fault_code, x_request_id, timestamp_id,"
    " archived_us, user_id"
)


def _prefix_end(prefix: str) -> str:
    """The least string greater than every string starting with ``prefix`` (for an index range)."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


def search_query(
    *,
    query_id: str | None = None,
    client: str | None = None,
    service: str | None = None,
    user_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    succeeded: bool | None = None,
    limit: int = 1000,
) -> tuple[str, list[Any]]:
    """The SQL and parameters of :meth:`MessageLogStore.search` (a test checks each shape's query plan).

    Every criterion is an equality or a range on an indexed column, ordered by ``time_us, id``: the m004 indexes
    ``(client, time_us)``, ``(service, time_us)``, ``(user_id, time_us)`` and ``(time_us)`` yield rows in that order.
    A prefix is a range (``client >= 'X/' AND client < 'X0'``), never a function of the column, so it uses the index.
    """
    if limit < 1:
        raise ValueError("limit must be at least 1")
    where: list[str] = []
    params: list[Any] = []
    if query_id is not None:
        where.append("query_id = ?")
        params.append(query_id)
    for column, value in (("client", client), ("service", service), ("user_id", user_id)):
        if value is None:
            continue
        if column != "user_id" and value.endswith("/"):
            where.append(f"{column} >= ? AND {column} < ?")
            params += [value, _prefix_end(value)]
        else:
            where.append(f"{column} = ?")
            params.append(value)
    if since is not None:
        where.append("time_us >= ?")
        params.append(time_to_micros(since))
    if until is not None:
        where.append("time_us < ?")
        params.append(time_to_micros(until))
    if succeeded is not None:
        where.append("succeeded = ?")
        params.append(1 if succeeded else 0)
    sql = f"SELECT {_SUMMARY_COLUMNS} FROM logrecord"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY time_us, id LIMIT ?"
    params.append(limit)
    return sql, params


def _summary_from_row(row: Sequence[Any]) -> RecordSummary:
    try:
        return RecordSummary(
            id=int(row[0]),
            query_id=str(row[1]),
            direction=Direction(row[2]),
            client=str(row[3]),
            service=str(row[4]),
            time=micros_to_time(int(row[5])),
            succeeded=bool(row[6]),
            fault_code=None if row[7] is None else str(row[7]),
            x_request_id=None if row[8] is None else str(row[8]),
            timestamp_id=None if row[9] is None else int(row[9]),
            archived=row[10] is not None,
            user_id=None if row[11] is None else str(row[11]),
        )
    except (ValueError, TypeError) as err:
        raise LogChainBroken(
            f"message log record {row[0]} is malformed", record_id=row[0] if type(row[0]) is int else None
        ) from err


def _row_values(record: LogRecord) -> tuple[Any, ...]:
    return (
        record.id,
        record.query_id,
        record.x_request_id,
        record.direction.value,
        record.client,
        record.service,
        time_to_micros(record.time),
        record.message,
        record.signature,
        record.hashchain,
        record.hashchainresult,
        record.signature_hash,
        1 if record.succeeded else 0,
        record.fault_code,
        record.prev_link,
        record.link,
        encode_attachments(record.attachments),
        None,  # stored_form: every field as it is
    )


def _with_user_ids(
    conn: Connection, records: Sequence[LogRecord], rows: Sequence[tuple[Any, ...]]
) -> list[tuple[Any, ...]]:
    """Each row with its record's user id appended (column ``user_id``, migration m004; issue 23).

    The user id is what the message names (:func:`~security_server.core.message_user.message_user_id`); a response
    that names none (a REST response, a failure record) takes its request's: the latest request record with the
    same query id, in this batch or already stored. Derived from logged bytes, so a verifier can derive it again.
    """
    requests: dict[str, str | None] = {}
    out = []
    for record, row in zip(records, rows, strict=True):
        user_id = message_user_id(record.message)
        if record.direction is Direction.REQUEST:
            requests[record.query_id] = user_id
        elif user_id is None:
            if record.query_id in requests:
                user_id = requests[record.query_id]
            else:
                found = conn.execute(
                    "SELECT user_id FROM logrecord WHERE query_id = ? AND direction = 'request' ORDER BY id DESC LIMIT 1",
                    [record.query_id],
                ).fetchone()
                user_id = None if found is None or found[0] is None else str(found[0])
        out.append((*row, user_id))
    return out


def _record_from_row(
    row: Sequence[Any], lookup: compact_signature.Lookup, documents: dict[bytes, bytes] | None = None
) -> LogRecord:
    """Rebuild a record from its row; a row that cannot be a record is a broken chain at that record.

    ``lookup`` gives the shared evidence values that a compact row references (KeyError when one is missing,
    ValueError when one does not match its address): either failure is this record's.
    """
    values = dict(zip(_COLUMNS, row))
    record_id = values["id"]
    try:
        _stored_fields(values, lookup, documents)
        for name in _TEXT_COLUMNS:
            if values[name] is not None:
                values[name] = bytes(values[name]).decode("utf-8")
        succeeded = values["succeeded"]
        if succeeded not in (0, 1) or type(succeeded) is not int:
            raise ValueError("succeeded is not 0 or 1")
        if type(values["time_us"]) is not int:
            raise ValueError("time_us is not an integer")
        return LogRecord(
            id=record_id,
            query_id=values["query_id"],
            x_request_id=values["x_request_id"],
            direction=Direction(values["direction"]),
            client=values["client"],
            service=values["service"],
            time=micros_to_time(values["time_us"]),
            message=values["message"],
            signature=values["signature"],
            hashchain=values["hashchain"],
            hashchainresult=values["hashchainresult"],
            signature_hash=values["signature_hash"],
            succeeded=bool(succeeded),
            fault_code=values["fault_code"],
            prev_link=values["prev_link"],
            link=values["link"],
            attachments=decode_attachments(values["attachments"]),
        )
    except (ValueError, TypeError, OverflowError, KeyError, zlib.error) as err:
        raise LogChainBroken(
            f"message log record {record_id} is malformed",
            reason=f"message log record {record_id} is malformed: {err}",
            record_id=record_id if type(record_id) is int else None,
        ) from err


class MessageLogStore:
    """The SQLite file of one security server's message log."""

    def __init__(
        self,
        path: str | Path,
        *,
        synchronous: Synchronous = Synchronous.FULL,
        busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
        compact: bool = True,
        compress_bodies: bool = True,
    ) -> None:
        """``compact`` and ``compress_bodies`` choose how new records are stored (see :func:`stored_row`);
        records are read back whole however they were stored."""
        self.path = Path(path)
        self.synchronous = Synchronous(synchronous)
        self.compact = compact
        self.compress_bodies = compress_bodies
        self._shared: dict[bytes, bytes] = {}
        self._documents: dict[bytes, bytes] = {}  # shared documents rebuilt, by address
        self._ts_chain_cache: tuple[bytes, tuple[bytes, ...]] | None = None  # (leaves address, chains): the last batch
        self._sqlite = open_sqlite(
            self.path, label="message log", synchronous=self.synchronous, busy_timeout=busy_timeout
        )
        self._db: Database = self._sqlite
        try:
            migrate(self._db, SCHEMA)
        except BaseException:
            self._db.close()
            raise

    @property
    def database(self) -> sqlite3.Connection:
        """The SQLite connection itself, for inspecting the file (``PRAGMA integrity_check``) in tests and tools.

        The store's own statements go through the store layer; this is the message log's (SQLite-only) escape hatch.
        """
        return self._sqlite.raw

    def close(self) -> None:
        """Close the connection; further calls fail with :class:`DatabaseError`."""
        self._db.close()

    def __enter__(self) -> MessageLogStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _head(self, conn: Connection) -> tuple[int, bytes]:
        row = conn.execute("SELECT id, link FROM logrecord ORDER BY id DESC LIMIT 1").fetchone()
        if row is None:
            first_id, prev_link = self._anchor(conn)
            return first_id - 1, prev_link
        return int(row[0]), bytes(row[1])

    def _anchor(self, conn: Connection) -> tuple[int, bytes]:
        row = conn.execute("SELECT first_id, prev_link FROM chain_anchor WHERE id = 1").fetchone()
        if row is None or type(row[0]) is not int or type(row[1]) is not bytes:
            raise LogChainBroken("message log: the chain anchor is missing or malformed")
        return row[0], row[1]

    def _stored_rows(self, conn: Connection, records: Sequence[LogRecord]) -> list[tuple[Any, ...]]:
        """The rows that store ``records``, after storing (once) the shared values they reference."""
        rows = []
        newest: dict[bytes, tuple[SharedValue, int]] = {}
        for record in records:
            row, shared = stored_row(record, compact=self.compact, compress_bodies=self.compress_bodies)
            rows.append(row)
            for value in shared:
                newest[value.address] = (value, record.id)
        if newest:
            conn.executemany(
                "INSERT INTO evidence_value (hash, kind, value, last_record_id) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (hash) DO UPDATE SET last_record_id = max(last_record_id, excluded.last_record_id)",
                [(value.address, value.kind, value.value, record_id) for value, record_id in newest.values()],
            )
        return rows

    def _shared_value(self, address: bytes) -> bytes:
        """The evidence value stored at ``address``: KeyError when missing, ValueError when it is not that value."""
        value = self._shared.get(address)
        if value is not None:
            return value
        row = self._db.execute(
            "SELECT value FROM evidence_value WHERE hash = ?", [address], action="reading an evidence value"
        ).fetchone()
        if row is None or type(row[0]) is not bytes:
            raise KeyError(f"evidence value {address.hex()} is missing")
        value = row[0]
        if hashlib.sha256(value).digest() != address:
            raise ValueError(f"evidence value {address.hex()} was changed: it does not match its address")
        if len(self._shared) >= _SHARED_CACHE_SIZE:
            self._shared.clear()
        self._shared[address] = value
        return value

    def head(self) -> tuple[int, bytes]:
        """The last record's id and link (or the anchor's id - 1 and link while the log is empty)."""
        with self._db.read("reading the chain head") as conn:
            return self._head(conn)

    def last_link(self) -> bytes:
        """The link that the next record will carry as its ``prev_link``."""
        return self.head()[1]

    def append_entries(self, entries: Sequence[LogEntry]) -> list[LogRecord]:
        """Chain ``entries`` in order after the last record and commit them in one transaction.

        The head is read inside the write transaction, so the links always continue from what is committed:
        the chain cannot fork, even with another connection appending to the same file.
        """
        if not entries:
            return []
        with self._db.write(f"appending {len(entries)} records") as conn:
            last_id, link = self._head(conn)
            records = []
            for offset, entry in enumerate(entries, start=1):
                record = make_record(entry, record_id=last_id + offset, prev_link=link)
                records.append(record)
                link = record.link
            # executemany in one transaction: PERFORMANCE-NOTES.md C.3.5.
            conn.executemany(_INSERT, _with_user_ids(conn, records, self._stored_rows(conn, records)))
        return records

    def append_batch(self, records: Sequence[LogRecord]) -> None:
        """Commit already-linked ``records`` in one transaction, if they continue the chain exactly.

        Raises :class:`DatabaseError` (nothing written) when they do not start right after the last record,
        or :class:`LogChainBroken` when they do not verify among themselves.
        """
        if not records:
            return
        with self._db.write(f"appending {len(records)} records") as conn:
            last_id, last_link = self._head(conn)
            if records[0].id != last_id + 1 or records[0].prev_link != last_link:
                raise DatabaseError(
                    "message log: records do not continue the chain",
                    reason=f"message log: batch starts at record {records[0].id}, the log ends at record {last_id}",
                )
            verify_chain(records, last_link)
            conn.executemany(_INSERT, _with_user_ids(conn, records, self._stored_rows(conn, records)))

    def records(self, since: int = 0, *, limit: int | None = None) -> Iterator[LogRecord]:
        """The records with an id greater than ``since``, in chain order (lazily, at most ``limit``)."""
        sql = f"{_SELECT} WHERE id > ? ORDER BY id"
        params: list[int] = [since]
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        return self._iterate(sql, params, "reading records")

    def _iterate(self, sql: str, params: Iterable[Any], action: str) -> Iterator[LogRecord]:
        for row in self._db.execute(sql, list(params), action=action):
            yield _record_from_row(row, self._shared_value, self._documents)

    def get(self, record_id: int) -> LogRecord | None:
        """The record with id ``record_id``, if there is one."""
        return next(self._iterate(f"{_SELECT} WHERE id = ?", [record_id], "reading a record"), None)

    def find(self, query_id: str) -> list[LogRecord]:
        """Every record of the exchange with message id ``query_id`` (request and response), in chain order."""
        return list(self._iterate(f"{_SELECT} WHERE query_id = ? ORDER BY id", [query_id], "finding records"))

    def count(self) -> int:
        """How many records the database holds."""
        return self._count("SELECT count(*) FROM logrecord", "counting records")

    def verify(self) -> int:
        """Verify the whole chain from its anchor; return how many records it holds.

        Raises :class:`LogChainBroken` naming the first bad record, or :class:`DatabaseError` when the file
        cannot be read.
        """
        with self._db.read("reading the chain anchor") as conn:
            first_id, start_link = self._anchor(conn)
        counted = 0

        def counting() -> Iterator[LogRecord]:
            nonlocal counted
            for record in self.records(since=first_id - 1):
                counted += 1
                yield record

        verify_chain(counting(), start_link)
        return counted

    # --- batch timestamps (issue 7) -------------------------------------------------------------------------

    def untimestamped(self, limit: int) -> list[tuple[int, bytes]]:
        """Up to ``limit`` records still waiting for a timestamp, oldest first, as ``(id, signature_hash)``.

        Records without a signature (failed exchanges) have nothing to timestamp; they are marked with
        :data:`NO_SIGNATURE_TIMESTAMP_ID` here, in one write transaction, and not returned.
        """
        if limit < 1:
            raise ValueError("limit must be at least 1")
        with self._db.write("marking records without signature") as conn:
            conn.execute(
                "UPDATE logrecord SET timestamp_id = ? WHERE timestamp_id IS NULL AND length(signature) = 0",
                [NO_SIGNATURE_TIMESTAMP_ID],
            )
        rows = self._db.execute(
            "SELECT id, signature_hash FROM logrecord WHERE timestamp_id IS NULL ORDER BY id LIMIT ?", [limit],
            action="reading records to timestamp",
        ).fetchall()
        return [(int(row[0]), bytes(row[1])) for row in rows]

    def untimestamped_count(self) -> int:
        """How many records wait for a timestamp."""
        return self._count(
            "SELECT count(*) FROM logrecord WHERE timestamp_id IS NULL AND length(signature) > 0",
            "counting records to timestamp",
        )

    def oldest_untimestamped_time(self) -> datetime | None:
        """The time of the oldest signed record still waiting for a timestamp (None when none waits)."""
        row = self._db.execute(
            "SELECT time_us FROM logrecord WHERE timestamp_id IS NULL AND length(signature) > 0 ORDER BY id LIMIT 1",
            action="reading the oldest record to timestamp",
        ).fetchone()
        return None if row is None else micros_to_time(int(row[0]))

    def _count(self, sql: str, action: str) -> int:
        (row,) = self._db.execute(sql, action=action).fetchall()
        return int(row[0])

    def signature_of(self, record_id: int) -> bytes | None:
        """The signature XML of record ``record_id`` (what a single timestamp's imprint is taken from)."""
        row = self._db.execute(
            "SELECT signature, stored_form FROM logrecord WHERE id = ?", [record_id], action="reading a signature"
        ).fetchone()
        if row is None:
            return None
        if type(row[1]) is int and row[1] & FORM_SIGNATURE:
            try:
                compact = bytes(row[0])
                if row[1] & FORM_SIGNATURE_SHARED:
                    compact = self._shared_value(compact)
                return compact_signature.unpack(compact, self._shared_value)
            except (ValueError, KeyError) as err:
                raise LogChainBroken(
                    f"message log record {record_id} is malformed",
                    reason=f"message log record {record_id} is malformed: {err}", record_id=record_id,
                ) from err
        return bytes(row[0])

    def add_timestamp(
        self,
        token: bytes,
        hash_chain_result: bytes | None,
        assignments: Sequence[TimestampAssignment],
        *,
        time: datetime,
        tsa_url: str | None = None,
    ) -> int:
        """Store a granted timestamp and point each record in ``assignments`` to it, in one transaction.

        A batch timestamp has a ``hash_chain_result`` and a hash chain per record; a single one has neither.
        Records already timestamped are left as they are (their earlier timestamp stands). Returns the id.
        Chains exactly as :func:`ts_batch` would build them over the records' own signature hashes are kept
        derived (see :meth:`add_batch_timestamp`); any other form is stored as it is.
        """
        if not assignments:
            raise ValueError("a timestamp covers at least one record")
        if (hash_chain_result is None) != all(a.hash_chain is None for a in assignments):
            raise ValueError("a batch timestamp has a hash chain result and a hash chain for every record")
        if hash_chain_result is None and len(assignments) != 1:
            raise ValueError("a single timestamp covers exactly one record")
        with self._db.write("storing a timestamp") as conn:
            timestamp_id = self._insert_timestamp(conn, token, hash_chain_result, time, tsa_url)
            leaves = self._derivable_leaves(conn, hash_chain_result, assignments) if self.compact else None
            if leaves is None:
                self._point_to_chains(conn, timestamp_id, [(a.record_id, a.hash_chain) for a in assignments])
            else:
                self._point_to_leaves(conn, timestamp_id, leaves, [a.record_id for a in assignments])
        return timestamp_id

    def add_batch_timestamp(
        self,
        token: bytes,
        batch: TsBatch,
        record_ids: Sequence[int],
        *,
        time: datetime,
        tsa_url: str | None = None,
        pointing: int | None = None,
    ) -> int:
        """Store a batch timestamp whose token covers ``batch.result``, for the records ``record_ids`` whose
        signature hashes are ``batch.leaves`` (in order), and point the first ``pointing`` of them (default all) to
        it, in one transaction; returns its id. :meth:`point_to_batch_timestamp` points the rest, in transactions
        of their own, so that a batch of 10,000 does not hold the log's writer for 170 ms.

        The compact store points each record to the batch's leaves (a shared value) and its index among them: the
        record's chain is rebuilt from them when read, so none is built here. When a record's signature hash is not
        its leaf (or the store is not compact), the chains are built from the leaves and stored whole. Records
        already timestamped keep their earlier timestamp.
        """
        if len(record_ids) != len(batch.leaves) or len(record_ids) < 2 or len(record_ids) >= 2**32:
            raise ValueError("a batch timestamp covers two or more records, one leaf each")
        count = len(record_ids) if pointing is None else pointing
        if not 1 <= count <= len(record_ids):
            raise ValueError("a batch timestamp points at least one of its records to it at once")
        with self._db.write("storing a timestamp") as conn:
            timestamp_id = self._insert_timestamp(conn, token, batch.result, time, tsa_url)
            self._point_batch(conn, timestamp_id, batch, record_ids, 0, count)
        return timestamp_id

    def point_to_batch_timestamp(
        self, timestamp_id: int, batch: TsBatch, record_ids: Sequence[int], start: int, count: int
    ) -> None:
        """Point ``record_ids[start:start + count]`` to the batch timestamp ``timestamp_id`` that
        :meth:`add_batch_timestamp` stored for ``batch`` over ``record_ids``, in one transaction. A crash between
        two parts leaves the rest untimestamped: the next round stamps them again."""
        if len(record_ids) != len(batch.leaves) or not (0 < start and count >= 1 and start + count <= len(record_ids)):
            raise ValueError("not a later part of the batch's records")
        with self._db.write("pointing records to a timestamp") as conn:
            row = conn.execute("SELECT hash_chain_result FROM timestamp WHERE id = ?", [timestamp_id]).fetchone()
            if row is None or row[0] != batch.result:
                raise DatabaseError(
                    "message log: no such batch timestamp",
                    reason=f"message log: timestamp {timestamp_id} is missing or covers another batch",
                )
            self._point_batch(conn, timestamp_id, batch, record_ids, start, count)

    def _point_batch(
        self, conn: Connection, timestamp_id: int, batch: TsBatch, record_ids: Sequence[int], start: int, count: int
    ) -> None:
        """Point ``record_ids[start:start + count]`` to the timestamp: derived from the leaves when those records'
        own signature hashes are their leaves and the store is compact, else with every chain stored whole. That
        second case (a store opened with ``compact=False``, which the server never does, or leaves that are not the
        records' own) builds the batch's chains again for each part: correct, but not fast."""
        ids = record_ids[start : start + count]
        own = self._record_leaves(conn, ids) if self.compact else None
        if own is not None and tuple(own) == batch.leaves[start : start + count]:
            self._point_to_leaves(conn, timestamp_id, batch.leaves_value, ids, first_index=start,
                                  last_record_id=max(record_ids))
        else:
            self._point_to_chains(conn, timestamp_id, list(zip(ids, batch.chains()[start : start + count])))

    @staticmethod
    def _insert_timestamp(
        conn: Connection, token: bytes, hash_chain_result: bytes | None, time: datetime, tsa_url: str | None
    ) -> int:
        cursor = conn.execute(
            "INSERT INTO timestamp (time_us, token, hash_chain_result, tsa_url) VALUES (?, ?, ?, ?)",
            [time_to_micros(time), token, hash_chain_result, tsa_url],
        )
        return int(cursor.lastrowid or 0)

    @staticmethod
    def _point_to_chains(conn: Connection, timestamp_id: int, chains: Sequence[tuple[int, bytes | None]]) -> None:
        """Each (record, its chain) to the timestamp, the chain stored whole."""
        conn.executemany(
            "UPDATE logrecord SET timestamp_id = ?, ts_hashchain = ? WHERE id = ? AND timestamp_id IS NULL",
            [(timestamp_id, chain, record_id) for record_id, chain in chains],
        )

    @staticmethod
    def _point_to_leaves(
        conn: Connection,
        timestamp_id: int,
        leaves: SharedValue,
        record_ids: Sequence[int],
        *,
        first_index: int = 0,
        last_record_id: int | None = None,
    ) -> None:
        """Each record to the timestamp, its chain derived: the batch's leaves (stored once, kept while
        ``last_record_id`` is) and its index among them (from ``first_index``)."""
        conn.execute(
            "INSERT INTO evidence_value (hash, kind, value, last_record_id) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (hash) DO UPDATE SET last_record_id = max(last_record_id, excluded.last_record_id)",
            [leaves.address, leaves.kind, leaves.value, last_record_id if last_record_id is not None else max(record_ids)],
        )
        head = bytes([_DERIVED_TS_VERSION]) + leaves.address
        conn.executemany(
            "UPDATE logrecord SET timestamp_id = ?, ts_hashchain = ?,"
            f" stored_form = coalesce(stored_form, 0) | {FORM_TS_HASHCHAIN} WHERE id = ? AND timestamp_id IS NULL",
            [(timestamp_id, head + index.to_bytes(4, "big"), record_id)
             for index, record_id in enumerate(record_ids, start=first_index)],
        )

    @staticmethod
    def _record_leaves(conn: Connection, record_ids: Sequence[int]) -> list[bytes] | None:
        """The records' signature hashes in the order of ``record_ids`` (None when one has none)."""
        hashes: dict[object, object] = dict(
            conn.execute(
                "SELECT id, signature_hash FROM logrecord WHERE id BETWEEN ? AND ?", [min(record_ids), max(record_ids)]
            ).fetchall()
        )
        leaves = [leaf for leaf in (hashes.get(record_id) for record_id in record_ids) if isinstance(leaf, bytes)]
        return leaves if len(leaves) == len(record_ids) else None

    def _derivable_leaves(
        self, conn: Connection, hash_chain_result: bytes | None, assignments: Sequence[TimestampAssignment]
    ) -> SharedValue | None:
        """The batch's leaves as a shared value, if its result and every chain are exactly what they rebuild to."""
        if hash_chain_result is None or len(assignments) < 2 or len(assignments) >= 2**32:
            return None
        leaves = self._record_leaves(conn, [a.record_id for a in assignments])
        if leaves is None:
            return None
        result, chains = _ts_chains(leaves)
        if result != hash_chain_result or any(chain != a.hash_chain for chain, a in zip(chains, assignments)):
            return None  # another producer's form: stored as it is
        # Not remembered here: the writer would keep every chain of the batch (4 kB a record) until the next one.
        return SharedValue.of(KIND_TS_LEAVES, b"".join(leaves))

    def _ts_hashchain(self, stored: bytes) -> bytes:
        """The ``ts-hashchain.xml`` a derived ``ts_hashchain`` stands for (KeyError/ValueError when it cannot be)."""
        address, index = derived_ts_hashchain(stored)
        cached = self._ts_chain_cache
        if cached is None or cached[0] != address:
            value = self._shared_value(address)
            size = digests.SHA512.size
            if len(value) % size or len(value) < 2 * size:
                raise ValueError("ts leaves are not a list of SHA-512 digests")
            cached = (address, _ts_chains([value[at : at + size] for at in range(0, len(value), size)])[1])
            self._ts_chain_cache = cached
        if index >= len(cached[1]):
            raise ValueError(f"ts hash chain index {index} is outside its batch")
        return cached[1][index]

    def timestamp_of(self, record_id: int) -> RecordTimestamp | None:
        """The timestamp that covers record ``record_id`` with the record's ts hash chain, or None (not yet)."""
        row = self._db.execute(
            "SELECT t.id, t.time_us, t.token, t.hash_chain_result, CAST(t.tsa_url AS BLOB), r.ts_hashchain,"
            " r.stored_form FROM logrecord r JOIN timestamp t ON t.id = r.timestamp_id WHERE r.id = ?",
            [record_id],
            action="reading a timestamp",
        ).fetchone()
        if row is None:
            return None
        stored = StoredTimestamp(
            id=int(row[0]),
            time=micros_to_time(int(row[1])),
            token=bytes(row[2]),
            hash_chain_result=None if row[3] is None else bytes(row[3]),
            tsa_url=None if row[4] is None else bytes(row[4]).decode("utf-8", "replace"),
        )
        return RecordTimestamp(stored, self.ts_hashchain_from_row(record_id, row[5], row[6]))

    def ts_hashchain_from_row(self, record_id: int, ts_hashchain: object, stored_form: object) -> bytes | None:
        """The ``ts-hashchain.xml`` of a record from its row's ``ts_hashchain`` and ``stored_form`` columns.

        For readers that select those columns themselves (a bulk verifier): a derived chain (migration m005,
        :data:`FORM_TS_HASHCHAIN`) is rebuilt from its batch's leaves (remembered for the last batch, so reading a
        batch's records in order rebuilds it once). Raises :class:`LogChainBroken` naming the record when it cannot.
        """
        if ts_hashchain is None:
            return None
        if type(ts_hashchain) is not bytes:
            raise LogChainBroken(f"message log record {record_id}: its timestamp hash chain is not bytes",
                                 record_id=record_id)
        if type(stored_form) is int and stored_form & FORM_TS_HASHCHAIN:
            try:
                return self._ts_hashchain(ts_hashchain)
            except (ValueError, KeyError, TypeError) as err:
                raise LogChainBroken(
                    f"message log record {record_id}: its timestamp hash chain is malformed",
                    reason=f"message log record {record_id}: its timestamp hash chain is malformed: {err}",
                    record_id=record_id,
                ) from err
        return ts_hashchain

    def ts_leaves(self, address: bytes) -> tuple[bytes, ...]:
        """The leaves (signature hashes, in order) of the batch timestamp whose leaves are stored at ``address``.

        For a bulk verifier (issue 23): a derived ``ts_hashchain`` (:func:`derived_ts_hashchain`) is the chain the
        timestamper builds over these leaves at the record's index, so a reader that checks the batch's result once
        need not rebuild any chain. KeyError when the value is missing, ValueError when changed or malformed.
        """
        value = self._shared_value(address)
        size = digests.SHA512.size
        if len(value) % size or len(value) < 2 * size:
            raise ValueError("ts leaves are not a list of SHA-512 digests")
        return tuple(value[at : at + size] for at in range(0, len(value), size))

    # --- archives (issue 7) ---------------------------------------------------------------------------------

    def archivable(self, limit: int, *, before: datetime | None = None) -> list[LogRecord]:
        """Up to ``limit`` timestamped records not yet archived, in chain order (optionally only older ones).

        Records archive in id order and stop at the first record that is not timestamped yet, so an archive
        never skips a record that a later archive would then have to hold out of order.
        """
        if limit < 1:
            raise ValueError("limit must be at least 1")
        row = self._db.execute(
            "SELECT min(id) FROM logrecord WHERE timestamp_id IS NULL AND length(signature) > 0",
            action="reading records to archive",
        ).fetchone()
        stop = row[0] if row is not None and row[0] is not None else None
        sql = f"{_SELECT} WHERE archived_us IS NULL AND timestamp_id > 0"
        params: list[Any] = []
        if stop is not None:
            sql += " AND id < ?"
            params.append(int(stop))
        if before is not None:
            sql += " AND time_us < ?"
            params.append(time_to_micros(before))
        sql += " ORDER BY id LIMIT ?"
        params.append(limit)
        return list(self._iterate(sql, params, "reading records to archive"))

    def records_between(self, first_id: int, last_id: int) -> list[LogRecord]:
        """The records with ids ``first_id``..``last_id`` that are timestamped, in chain order."""
        return list(
            self._iterate(
                f"{_SELECT} WHERE id BETWEEN ? AND ? AND timestamp_id > 0 ORDER BY id",
                [first_id, last_id],
                "reading records to archive",
            )
        )

    def archive_state(self) -> ArchiveState:
        """The last archive digest and file name (empty strings before the first archive)."""
        row = self._db.execute(
            "SELECT CAST(last_digest AS BLOB), CAST(last_file AS BLOB) FROM archive_state WHERE id = 1",
            action="reading the archive state",
        ).fetchone()
        if row is None:
            raise DatabaseError("message log: the archive state is missing")
        return ArchiveState(bytes(row[0]).decode("utf-8", "replace"), bytes(row[1]).decode("utf-8", "replace"))

    def pending_archive(self) -> PendingArchive | None:
        """The archive that was decided on but not recorded as written, if a run stopped in between."""
        row = self._db.execute(
            "SELECT file_name, first_id, last_id, prev_digest, prev_file, last_digest FROM pending_archive"
            " WHERE id = 1",
            action="reading the pending archive",
        ).fetchone()
        if row is None:
            return None
        return PendingArchive(str(row[0]), int(row[1]), int(row[2]), str(row[3]), str(row[4]), str(row[5]))

    def begin_archive(self, pending: PendingArchive) -> None:
        """Record the archive about to be written (before the file is), refusing a second one or a fork."""
        with self._db.write("recording a pending archive") as conn:
            if conn.execute("SELECT 1 FROM pending_archive WHERE id = 1").fetchone() is not None:
                raise DatabaseError("message log: another archive is pending")
            state = conn.execute("SELECT last_digest, last_file FROM archive_state WHERE id = 1").fetchone()
            if state is None or (state[0], state[1]) != (pending.prev_digest, pending.prev_file):
                raise DatabaseError("message log: the archive does not continue the archive chain")
            conn.execute(
                "INSERT INTO pending_archive (id, file_name, first_id, last_id, prev_digest, prev_file, last_digest)"
                " VALUES (1, ?, ?, ?, ?, ?, ?)",
                [pending.file_name, pending.first_id, pending.last_id, pending.prev_digest, pending.prev_file,
                 pending.last_digest],
            )

    def finish_archive(self, pending: PendingArchive, *, time: datetime) -> int:
        """The archive file is written: mark its records archived and move the archive chain on; returns how many."""
        with self._db.write("recording a written archive") as conn:
            row = conn.execute("SELECT file_name, last_digest FROM pending_archive WHERE id = 1").fetchone()
            if row is None or (row[0], row[1]) != (pending.file_name, pending.last_digest):
                raise DatabaseError("message log: the archive to record is not the pending one")
            cursor = conn.execute(
                "UPDATE logrecord SET archived_us = ? WHERE id BETWEEN ? AND ? AND timestamp_id > 0"
                " AND archived_us IS NULL",
                [time_to_micros(time), pending.first_id, pending.last_id],
            )
            conn.execute(
                "UPDATE archive_state SET last_digest = ?, last_file = ? WHERE id = 1",
                [pending.last_digest, pending.file_name],
            )
            conn.execute("DELETE FROM pending_archive WHERE id = 1")
        return int(cursor.rowcount)

    def delete_archived(self, *, before: datetime, limit: int = 10_000) -> int:
        """Delete the archived records written before ``before`` from the start of the chain; returns how many.

        Only a prefix of the chain goes (up to the first record that is not archived or not old enough), and
        the chain anchor moves to the first remaining record in the same transaction, so what remains still
        verifies from the anchor (UG-SS §11.1.7: archived records are removed after ``keep-records-for``).
        Records without a signature, which are never archived, go with their neighbours.
        """
        cutoff = time_to_micros(before)
        with self._db.write("deleting archived records") as conn:
            first_id, _ = self._anchor(conn)
            rows = conn.execute(
                "SELECT id, archived_us, timestamp_id, time_us, link FROM logrecord WHERE id >= ? ORDER BY id LIMIT ?",
                [first_id, limit],
            ).fetchall()
            last: tuple[int, bytes] | None = None
            expected = first_id
            for record_id, archived_us, timestamp_id, time_us, link in rows:
                done = archived_us is not None or timestamp_id == NO_SIGNATURE_TIMESTAMP_ID
                if record_id != expected or not done or time_us >= cutoff:
                    break
                last = (int(record_id), bytes(link))
                expected += 1
            if last is None:
                return 0
            conn.execute("DELETE FROM logrecord WHERE id >= ? AND id <= ?", [first_id, last[0]])
            # A shared value goes with the last record that used it (migration m005).
            conn.execute("DELETE FROM evidence_value WHERE last_record_id <= ?", [last[0]])
            conn.execute("UPDATE chain_anchor SET first_id = ?, prev_link = ? WHERE id = 1", [last[0] + 1, last[1]])
            conn.execute(
                "DELETE FROM timestamp WHERE NOT EXISTS (SELECT 1 FROM logrecord WHERE timestamp_id = timestamp.id)"
            )
        return last[0] - first_id + 1

    def anchor(self) -> tuple[int, bytes]:
        """Where the chain in this database starts: the first record id and the link before it."""
        with self._db.read("reading the chain anchor") as conn:
            return self._anchor(conn)

    # --- search (audit find) --------------------------------------------------------------------------------

    def search(
        self,
        *,
        query_id: str | None = None,
        client: str | None = None,
        service: str | None = None,
        user_id: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        succeeded: bool | None = None,
        limit: int = 1000,
    ) -> Iterator[RecordSummary]:
        """Records matching every given criterion, in time order (chain order within one time), without their
        message bytes; lazily, as the rows come from the database, at most ``limit``.

        ``client`` and ``service`` match the stored display form exactly, or as a prefix when they end in
        ``/`` (e.g. every subsystem of a member); ``since`` is inclusive, ``until`` exclusive. Each shape reads
        through an index (migration m004; :func:`search_query`), so the first rows come at once on any log size.
        """
        sql, params = search_query(
            query_id=query_id, client=client, service=service, user_id=user_id, since=since, until=until,
            succeeded=succeeded, limit=limit,
        )
        for row in self._db.execute(sql, params, action="searching records"):
            yield _summary_from_row(row)
