"""The bulk verifier's reading of message-log rows: one SELECT per range, each row's fields as the link covers them.

``fedbus audit verify log`` (issue 23) reads every record of a log once. Read through
:meth:`MessageLogStore.records`, each row became a :class:`~security_server.core.logchain.LogRecord` (its texts
decoded, its time a ``datetime``, every field checked by the value type) and its link was then computed from that
object, encoding the texts and the time back: a third of the verifier's CPU. Here, for the verifier only, a range
of rows is read by one statement (with the timestamp columns that the timestamp checks need), and each row is
checked for exactly what :func:`~security_server.messagelog.store._record_from_row` and ``LogRecord`` would refuse,
its compact fields are rebuilt as the store rebuilds them, and its link is computed from the stored bytes.

The result is a :class:`RawRecord`, a plain named tuple rather than a frozen validated value type (CONVENTIONS.md,
habit 3): it is only ever made here, from a row that passed those checks, and lives for one block of records.
Any row the fast checks do not accept (a malformed value, a missing or changed shared value, an unknown stored form,
or anything unexpected) is read again by the store's own reader, so the verdict is the store's, word for word
(:class:`~security_server.core.errors.LogChainBroken` naming the record); a row that reader accepts after all is
used as it reads it. The link computed here is :func:`~security_server.core.logchain.compute_link`'s encoding,
byte for byte (a test compares them on every kind of record).
"""

from __future__ import annotations

import hashlib
import sqlite3
import struct
import zlib
from datetime import datetime, timezone
from typing import Iterator, NamedTuple

from security_server.core import compact_signature
from security_server.core.errors import LogChainBroken
from security_server.core.logchain import _DOMAIN, _DOMAIN_WITH_ATTACHMENTS, Direction, time_to_micros
from security_server.messagelog.store import (
    _COLUMNS,
    _KNOWN_FORMS,
    FORM_ATTACHMENTS_ZLIB,
    FORM_HASHCHAIN,
    FORM_HASHCHAINRESULT,
    FORM_HASHCHAINRESULT_SHARED,
    FORM_MESSAGE_ZLIB,
    FORM_SIGNATURE,
    FORM_SIGNATURE_SHARED,
    FORM_TS_HASHCHAIN,
    MessageLogStore,
    _record_from_row,
    decode_attachments,
)
from security_server.store.sqlite import map_error

_TEXT_COLUMNS = frozenset({"query_id", "x_request_id", "direction", "client", "service", "fault_code"})
SELECT_RANGE = "SELECT {}, timestamp_id, ts_hashchain FROM logrecord WHERE id BETWEEN ? AND ? ORDER BY id".format(
    ", ".join(f"CAST({name} AS BLOB)" if name in _TEXT_COLUMNS else name for name in _COLUMNS)
)
"""The store's record columns as its reader selects them (texts as bytes), then the timestamp columns, for a range."""

_FIELDS = len(_COLUMNS)
_FORM, _SIGNATURE, _RESULT = (_COLUMNS.index(name) for name in ("stored_form", "signature", "hashchainresult"))
_MAX_ID = 2**63 - 1
_LINK_SIZE = 64
_MIN_MICROS = time_to_micros(datetime.min.replace(tzinfo=timezone.utc))
_MAX_MICROS = time_to_micros(datetime.max.replace(tzinfo=timezone.utc))
_DIRECTIONS: dict[object, Direction] = {b"request": Direction.REQUEST, b"response": Direction.RESPONSE}
HANDLED_FORMS = (
    FORM_SIGNATURE | FORM_HASHCHAIN | FORM_HASHCHAINRESULT | FORM_MESSAGE_ZLIB | FORM_ATTACHMENTS_ZLIB | FORM_TS_HASHCHAIN
    | FORM_SIGNATURE_SHARED | FORM_HASHCHAINRESULT_SHARED
) & _KNOWN_FORMS
"""The ``stored_form`` bits rebuilt here (``FORM_TS_HASHCHAIN`` is the timestamp's, not a field of the record); a row
with any other (a form added to the store later) is read by the store's reader."""
_SHARED_DOCUMENTS = FORM_SIGNATURE_SHARED | FORM_HASHCHAINRESULT_SHARED
_TEXT_CACHE_SIZE = 4096
_DOCUMENT_CACHE_SIZE = 4096

# logchain._link's encoding: a presence byte, an 8-byte big-endian length, the bytes (absent: one zero byte).
_present = struct.Struct(">BQ").pack
_unpack = compact_signature.unpack
_ABSENT = b"\x00"
_EIGHT = _present(1, 8)
_PRESENT_64 = _present(1, _LINK_SIZE)
_DOMAIN_V1 = _present(1, len(_DOMAIN)) + _DOMAIN
_DOMAIN_V2 = _present(1, len(_DOMAIN_WITH_ATTACHMENTS)) + _DOMAIN_WITH_ATTACHMENTS
_SUCCEEDED = (_present(1, 1) + b"\x00", _present(1, 1) + b"\x01")


class RawRecord(NamedTuple):
    """What the verifier reads of one record: the fields its checks use, and the link its fields call for."""

    id: int
    direction: Direction
    client: str
    service: str
    message: bytes
    signature: bytes
    hashchain: bytes | None
    hashchainresult: bytes | None
    attachments: tuple[bytes, ...]
    signature_hash: bytes
    prev_link: bytes
    link: bytes
    expected_link: bytes
    """SHA-512 of the record's fields and ``prev_link`` (:func:`~security_server.core.logchain.compute_link`)."""
    timestamp_id: object
    ts_hashchain: object
    stored_form: object


class _NotFast(Exception):
    """A row the fast checks do not accept: the store's reader decides."""


def raw_link(
    record_id: int, query_id: bytes, x_request_id: bytes | None, parties: bytes, time_us: int, message: bytes,
    signature: bytes, hashchain: bytes | None, result: bytes | None, sig_hash: bytes, succeeded: int,
    fault_code: bytes | None, attachments: tuple[bytes, ...], prev_link: bytes,
) -> bytes:
    """:func:`~security_server.core.logchain.compute_link` from the stored bytes (texts in UTF-8, ``parties`` the
    direction, client and service as :func:`parties_piece` encodes them, the time in microseconds, ``succeeded`` 0 or
    1): the same encoding, fed to one SHA-512 in one piece."""
    pieces = [
        _DOMAIN_V2 if attachments else _DOMAIN_V1,
        _EIGHT, record_id.to_bytes(8, "big"),
        _present(1, len(query_id)), query_id,
        _ABSENT if x_request_id is None else _present(1, len(x_request_id)) + x_request_id,
        parties,
        _EIGHT, time_us.to_bytes(8, "big", signed=True),
        _present(1, len(message)), message,
        _present(1, len(signature)), signature,
        _ABSENT if hashchain is None else _present(1, len(hashchain)) + hashchain,
        _ABSENT if result is None else _present(1, len(result)) + result,
        _PRESENT_64 if len(sig_hash) == _LINK_SIZE else _present(1, len(sig_hash)), sig_hash,
        _SUCCEEDED[succeeded],
        _ABSENT if fault_code is None else _present(1, len(fault_code)) + fault_code,
    ]
    if attachments:
        pieces += (_EIGHT, len(attachments).to_bytes(8, "big"))
        for attachment in attachments:
            pieces += (_present(1, len(attachment)), attachment)
    pieces += (_PRESENT_64 if len(prev_link) == _LINK_SIZE else _present(1, len(prev_link)), prev_link)
    return hashlib.sha512(b"".join(pieces)).digest()


def parties_piece(direction: bytes, client: bytes, service: bytes) -> bytes:
    """The link's encoding of a record's direction, client and service (the same for many records)."""
    return b"".join((_present(1, len(direction)), direction, _present(1, len(client)), client,
                     _present(1, len(service)), service))


class RawReader:
    """Reads ranges of a store's records as :class:`RawRecord` blocks (one statement per range)."""

    def __init__(self, store: MessageLogStore) -> None:
        self._store = store
        self._values: dict[bytes, bytes] = {}  # shared values read, each checked against its address
        self._documents: dict[object, bytes] = {}
        self._texts: dict[tuple[object, object, object], tuple[Direction, str, str, bytes]] = {}

    def blocks(self, lo: int, hi: int, size: int) -> Iterator[list[RawRecord]]:
        """The records ``lo..hi`` in id order, ``size`` at a time.

        A row that cannot be a record ends the reading: the records before it are yielded, then
        :class:`LogChainBroken` naming it (the store's verdict) is raised. A failure of the file itself is the
        store's :class:`~security_server.core.errors.DatabaseError`.
        """
        try:
            cursor = self._store.database.execute(SELECT_RANGE, (lo, hi))
        except sqlite3.Error as err:
            raise self._mapped(err) from err
        fast = self._fast
        while True:
            try:
                rows = cursor.fetchmany(size)
            except sqlite3.Error as err:
                raise self._mapped(err) from err
            if not rows:
                return
            self._prefetch(rows)
            block = []
            for row in rows:
                try:
                    block.append(fast(row))
                except Exception:  # noqa: BLE001 - anything unexpected: the store's reader gives the verdict
                    try:
                        block.append(self._reference(row))
                    except LogChainBroken:
                        if block:
                            yield block
                        raise
            yield block

    def _value(self, address: bytes) -> bytes:
        """The shared value at ``address`` (KeyError: missing, ValueError: not that value; the store's reader then
        gives the verdict in its words)."""
        value = self._values.get(address)
        if value is None:
            row = self._store.database.execute("SELECT value FROM evidence_value WHERE hash = ?", [address]).fetchone()
            if row is None or type(row[0]) is not bytes:
                raise KeyError(address)
            value = self._remember(address, row[0])
        return value

    def _remember(self, address: bytes, value: bytes) -> bytes:
        if hashlib.sha256(value).digest() != address:
            raise ValueError(address)
        if len(self._values) >= _DOCUMENT_CACHE_SIZE:
            self._values.clear()
        self._values[address] = value
        return value

    def _prefetch(self, rows: list[tuple[object, ...]]) -> None:
        """Read in one statement the signing batches' shared documents that ``rows`` refer to and that are not
        rebuilt yet (one statement per block rather than two per signing batch)."""
        wanted: set[object] = set()
        for row in rows:
            form = row[_FORM]
            if type(form) is int and form & _SHARED_DOCUMENTS:
                if form & FORM_SIGNATURE_SHARED:
                    wanted.add(row[_SIGNATURE])
                if form & FORM_HASHCHAINRESULT_SHARED:
                    wanted.add(row[_RESULT])
        wanted.difference_update(self._documents, self._values)
        wanted = {address for address in wanted if type(address) is bytes}
        if not wanted:
            return
        marks = ", ".join("?" * len(wanted))
        try:
            found = self._store.database.execute(
                f"SELECT hash, value FROM evidence_value WHERE hash IN ({marks})", list(wanted)
            ).fetchall()
        except sqlite3.Error as err:
            raise self._mapped(err) from err
        for address, value in found:
            if type(address) is bytes and type(value) is bytes:
                try:
                    self._remember(address, value)
                except ValueError:
                    pass  # read again when needed, and refused then

    def _mapped(self, err: sqlite3.Error) -> Exception:
        return map_error(err, label="message log", location=str(self._store.path), action="reading records")

    def _reference(self, row: tuple[object, ...]) -> RawRecord:
        """The row read by the store's reader (raising its verdict), as a :class:`RawRecord`."""
        # The store's own lookup: a missing or changed shared value reads exactly as the store's reader says it.
        record = _record_from_row(row[:_FIELDS], self._store._shared_value)
        link = raw_link(
            record.id, record.query_id.encode("utf-8"), _utf8(record.x_request_id),
            parties_piece(record.direction.value.encode(), record.client.encode("utf-8"), record.service.encode("utf-8")),
            time_to_micros(record.time), record.message,
            record.signature, record.hashchain, record.hashchainresult, record.signature_hash, int(record.succeeded),
            _utf8(record.fault_code), record.attachments, record.prev_link,
        )
        return RawRecord(
            record.id, record.direction, record.client, record.service, record.message, record.signature,
            record.hashchain, record.hashchainresult, record.attachments, record.signature_hash, record.prev_link,
            record.link, link, row[_FIELDS], row[_FIELDS + 1], row[_FIELDS - 1],
        )

    def _parties(self, key: tuple[object, object, object]) -> tuple[Direction, str, str, bytes]:
        """A record's direction, client and service (few distinct ones): checked and decoded once, with their piece of
        the link's encoding."""
        direction, client, service = key
        kind = _DIRECTIONS.get(direction)
        if kind is None or type(client) is not bytes or not client or type(service) is not bytes or not service:
            raise _NotFast
        known = (kind, client.decode("utf-8"), service.decode("utf-8"), parties_piece(kind.value.encode(), client, service))
        if len(self._texts) >= _TEXT_CACHE_SIZE:
            self._texts.clear()
        self._texts[key] = known
        return known

    def _document(self, address: object) -> bytes:
        """A shared compact document (a signing batch's signature or result), rebuilt once per address."""
        if type(address) is not bytes or len(address) != compact_signature.HASH_SIZE:
            raise _NotFast
        document = compact_signature.unpack(self._value(address), self._value)
        if len(self._documents) >= _DOCUMENT_CACHE_SIZE:
            self._documents.clear()
        self._documents[address] = document
        return document

    def _fast(self, row: tuple[object, ...]) -> RawRecord:
        """The row as a record, when it passes every check the store's reader and ``LogRecord`` make."""
        (record_id, query_id, x_request_id, direction, client, service, time_us, message, signature, hashchain,
         result, sig_hash, succeeded, fault_code, prev_link, link, attachments, form, stamp_id, ts_chain) = row
        if type(record_id) is not int or not 1 <= record_id <= _MAX_ID:
            raise _NotFast
        if form is not None:
            if type(form) is not int or form <= 0 or form & ~HANDLED_FORMS:
                raise _NotFast
            if form & FORM_SIGNATURE:
                if form & FORM_SIGNATURE_SHARED:
                    signature = self._documents.get(signature) or self._document(signature)
                else:
                    signature = _unpack(signature, self._value)  # type: ignore[arg-type]
            elif form & FORM_SIGNATURE_SHARED:
                raise _NotFast
            if form & FORM_HASHCHAIN:
                hashchain = _unpack(hashchain, self._value)  # type: ignore[arg-type]
            if form & FORM_HASHCHAINRESULT:
                if form & FORM_HASHCHAINRESULT_SHARED:
                    result = self._documents.get(result) or self._document(result)
                else:
                    result = _unpack(result, self._value)  # type: ignore[arg-type]
            elif form & FORM_HASHCHAINRESULT_SHARED:
                raise _NotFast
            if form & FORM_MESSAGE_ZLIB:
                message = zlib.decompress(message)  # type: ignore[arg-type]
            if form & FORM_ATTACHMENTS_ZLIB:
                attachments = zlib.decompress(attachments)  # type: ignore[arg-type]
        key = (direction, client, service)
        kind, client_text, service_text, parties = self._texts.get(key) or self._parties(key)
        if type(query_id) is not bytes or not query_id:
            raise _NotFast
        query_id.decode("utf-8")
        if x_request_id is not None:
            if type(x_request_id) is not bytes or not x_request_id:
                raise _NotFast
            x_request_id.decode("utf-8")
        if fault_code is not None:
            if type(fault_code) is not bytes or not fault_code:
                raise _NotFast
            fault_code.decode("utf-8")
        if type(time_us) is not int or not _MIN_MICROS <= time_us <= _MAX_MICROS:
            raise _NotFast
        if type(succeeded) is not int or succeeded not in (0, 1):
            raise _NotFast
        if type(message) is not bytes or not message or type(signature) is not bytes:
            raise _NotFast
        if (hashchain is None) != (result is None):
            raise _NotFast
        if hashchain is not None and (type(hashchain) is not bytes or type(result) is not bytes):
            raise _NotFast
        if succeeded and (fault_code is not None or not signature):
            raise _NotFast
        if (type(sig_hash) is not bytes or len(sig_hash) != _LINK_SIZE or type(prev_link) is not bytes
                or len(prev_link) != _LINK_SIZE or type(link) is not bytes or len(link) != _LINK_SIZE):
            raise _NotFast
        attached = () if attachments is None else decode_attachments(attachments)
        expected = raw_link(
            record_id, query_id, x_request_id, parties, time_us, message, signature,
            hashchain, result, sig_hash, succeeded, fault_code, attached, prev_link,  # type: ignore[arg-type]
        )
        return RawRecord(
            record_id, kind, client_text, service_text, message, signature, hashchain, result,  # type: ignore[arg-type]
            attached, sig_hash, prev_link, link, expected, stamp_id, ts_chain, form,
        )


def _utf8(text: str | None) -> bytes | None:
    return None if text is None else text.encode("utf-8")
