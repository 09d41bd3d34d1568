"""A compact stored form of signature and hash-chain documents, from which their exact bytes are rebuilt.

A message-log record holds its XAdES signature (``signatures.xml``) and, for batch and multi-part signatures, its
``sig-hashchain.xml`` and ``sig-hashchainresult.xml`` (XROAD-REFERENCE.md §4.2, §4.5). Most of those bytes repeat
from record to record: the XML around the values, the signer's certificate (about 1 kB) and its OCSP response
(about 1.5 kB, both base64 in the document) change only when the signer's key or OCSP response does. Issue 23
stores each record's document as:

* a **skeleton**: the document with its per-message values cut out, shared by every document of the same shape
  (one signer, one algorithm, one reference) and stored once, by its SHA-256;
* the **values** cut out, in document order: reference digests and signature values as raw bytes (their base64
  is rebuilt), the signing time as milliseconds, and certificates, OCSP responses and timestamp tokens as the
  SHA-256 of their DER, each DER stored once.

What is cut out is decided by element name only (``SigningTime``, ``SignatureValue``, a ``DigestValue`` that is not
a certificate's or the signature policy's, ``X509Certificate``, ``EncapsulatedX509Certificate``,
``EncapsulatedOCSPValue``, ``EncapsulatedTimeStamp``), and only when the text is the canonical form that is
rebuilt. :func:`pack` then rebuilds the document from what it produced and returns None unless every byte comes
back: a document from another producer, or of an older or odd form, is stored as it is, so the stored form can
never lose a byte. Nothing here parses XML for meaning; the tokenizer only has to find element texts, and any
document it misreads is caught by that round trip.

Pure: bytes in, bytes out; the shared values are handed back to the caller to store (:class:`SharedValue`) and
looked up by the caller's function when unpacking.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Callable

FORMAT_VERSION = 1
"""The first byte of a compact document and of a skeleton."""

HASH_SIZE = 32
"""Bytes of a shared value's address: SHA-256 of the value."""

KIND_SKELETON = "skeleton"
KIND_CERTIFICATE = "certificate"
KIND_OCSP = "ocsp"
KIND_TIMESTAMP = "timestamp"

_END = 0
_INLINE = 1  # base64 text of a per-message value: stored as its bytes
_SHARED = 2  # base64 text of a certificate, OCSP response or token: stored as the SHA-256 of its bytes
_TIME = 3  # xsd:dateTime to the millisecond in UTC: stored as 8-byte signed milliseconds since the epoch

_SHARED_ELEMENTS = {
    b"X509Certificate": KIND_CERTIFICATE,
    b"EncapsulatedX509Certificate": KIND_CERTIFICATE,
    b"EncapsulatedOCSPValue": KIND_OCSP,
    b"EncapsulatedTimeStamp": KIND_TIMESTAMP,
}
# A DigestValue under these is the same in every document of one signer: it stays in the skeleton.
_CONSTANT_DIGEST_PARENTS = frozenset({b"CertDigest", b"SigPolicyHash"})

_TOKEN = re.compile(rb"<[^>]*>|[^<]+")
_NAME = re.compile(rb"<([^\s/>]+)")
_BASE64 = re.compile(rb"[A-Za-z0-9+/]+={0,2}")
_TIME_TEXT = re.compile(rb"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z")
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_ONE_MILLISECOND = timedelta(milliseconds=1)


class CompactFormError(ValueError):
    """A compact document or skeleton that is not in the form :func:`pack` writes (damaged or altered)."""


@dataclass(frozen=True, slots=True)
class SharedValue:
    """A value stored once and referenced by address: a skeleton, certificate, OCSP response or token."""

    address: bytes
    kind: str
    value: bytes = field(repr=False)

    @classmethod
    def of(cls, kind: str, value: bytes) -> SharedValue:
        """``value`` with its address (SHA-256)."""
        return cls(hashlib.sha256(value).digest(), kind, value)


@dataclass(frozen=True, slots=True)
class Packed:
    """A document's compact form and the shared values it references (its skeleton first)."""

    compact: bytes
    shared: tuple[SharedValue, ...]


Lookup = Callable[[bytes], bytes]
"""Gives the value stored at an address (raising KeyError when there is none)."""


def _varint(number: int) -> bytes:
    out = bytearray()
    while True:
        low = number & 0x7F
        number >>= 7
        if number:
            out.append(low | 0x80)
        else:
            out.append(low)
            return bytes(out)


def _read_varint(data: bytes, at: int) -> tuple[int, int]:
    number = 0
    shift = 0
    while True:
        if at >= len(data) or shift > 63:
            raise CompactFormError("truncated or overlong length")
        byte = data[at]
        at += 1
        number |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return number, at


def _local_name(tag: bytes) -> bytes | None:
    match = _NAME.match(tag)
    if match is None:
        return None
    return match[1].rpartition(b":")[2]


def _canonical_base64(text: bytes) -> bytes | None:
    """The bytes ``text`` encodes when it is base64 in exactly the form ``b64encode`` writes, else None."""
    if _BASE64.fullmatch(text) is None or len(text) % 4:
        return None
    try:
        decoded = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
    return decoded if base64.b64encode(decoded) == text else None


def _format_time(millis: int) -> bytes:
    moment = _EPOCH + millis * _ONE_MILLISECOND
    return (
        f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}T{moment.hour:02d}:{moment.minute:02d}:"
        f"{moment.second:02d}.{moment.microsecond // 1000:03d}Z"
    ).encode("ascii")


def _parse_time(text: bytes) -> int | None:
    if _TIME_TEXT.fullmatch(text) is None:
        return None
    try:
        moment = datetime.strptime(text.decode("ascii"), "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)
    except ValueError:
        return None
    return (moment - _EPOCH) // _ONE_MILLISECOND


def _slot(name: bytes, parent: bytes | None, text: bytes) -> tuple[int, bytes, SharedValue | None] | None:
    """How an element's text is stored: (slot kind, its bytes in the compact form, a shared value), or None."""
    if name == b"SigningTime":
        millis = _parse_time(text)
        if millis is None or not -(2**63) <= millis < 2**63:
            return None
        return _TIME, millis.to_bytes(8, "big", signed=True), None
    kind = _SHARED_ELEMENTS.get(name)
    inline = name == b"SignatureValue" or (name == b"DigestValue" and parent not in _CONSTANT_DIGEST_PARENTS)
    if kind is None and not inline:
        return None
    value = _canonical_base64(text)
    if value is None:
        return None
    if kind is not None:
        shared = SharedValue.of(kind, value)
        return _SHARED, shared.address, shared
    return _INLINE, _varint(len(value)) + value, None


@dataclass(frozen=True, slots=True)
class _Plan:
    """What :func:`pack` learnt from one document, reused for every document of the same shape: its texts between
    tags with the slot texts left out (None), each slot's place among them, element and parent, and the skeleton
    they share."""

    texts: tuple[bytes | None, ...]
    slots: tuple[tuple[int, bytes, bytes | None], ...]
    skeleton: SharedValue


_MAX_SHAPES = 256
"""Shapes remembered (a server writes a few dozen: request and response, alone or at each place of a batch)."""
_PLANS_PER_SHAPE = 8
"""Plans kept per shape: documents of one shape by different signers differ in literal texts (their certificate's
digest and serial number are skeleton, not slots), and a server logs its own signer's and its peers'."""
_plans: dict[bytes, list[_Plan]] = {}
_TAG_SPLIT = re.compile(rb"(<[^>]*>)")
"""Splits a document into texts (even places, possibly empty) and tags (odd places)."""


def pack(document: bytes) -> Packed | None:
    """The compact form of ``document``, or None when it would not rebuild to exactly the same bytes.

    A document of a shape seen before (the same tags and literal texts; only the slot values differ, as from one
    message to the next) is packed by that shape's plan, without walking its elements again; the result is the
    same bytes either way and is checked by the same round trip."""
    if not document:
        return None
    parts = _TAG_SPLIT.split(document)
    shape = b"".join(parts[1::2])
    plans = _plans.get(shape)
    if plans:
        texts = parts[0::2]
        for plan in tuple(plans):  # a copy: another thread may be adding one
            planned = _pack_by_plan(document, texts, plan)
            if planned is not None:
                return planned
    packed, learnt = _pack_by_walking(document, _TOKEN.findall(document))
    if learnt is not None:
        if plans is None:
            if len(_plans) >= _MAX_SHAPES:
                _plans.clear()
            plans = _plans.setdefault(shape, [])
        plans.insert(0, learnt)
        del plans[_PLANS_PER_SHAPE:]
    return packed


def _pack_by_plan(document: bytes, texts: list[bytes], plan: _Plan) -> Packed | None:
    """``document`` (whose texts between tags are ``texts``) packed by ``plan``, or None when it is not of the
    plan's shape after all."""
    if len(texts) != len(plan.texts):
        return None
    literal: list[bytes | None] = list(texts)
    for place, _, _ in plan.slots:
        literal[place] = None
    if tuple(literal) != plan.texts:
        return None
    compact = bytearray([FORMAT_VERSION])
    compact += plan.skeleton.address
    shared: dict[bytes, SharedValue] = {}
    for place, name, parent in plan.slots:
        slot = _slot(name, parent, texts[place])
        if slot is None:
            return None
        _, data, value = slot
        compact += data
        if value is not None:
            shared.setdefault(value.address, value)
    return _checked(document, Packed(bytes(compact), (plan.skeleton, *shared.values())))


def _pack_by_walking(document: bytes, tokens: list[bytes]) -> tuple[Packed | None, _Plan | None]:
    """``document`` packed element by element, with the plan that packs documents of its shape."""
    skeleton = bytearray([FORMAT_VERSION])
    compact = bytearray()
    shared: dict[bytes, SharedValue] = {}
    literal = bytearray()
    stack: list[bytes] = []
    texts: list[bytes | None] = []  # the texts before, between and after tags, as _TAG_SPLIT gives them
    pending_text = False
    slots: list[tuple[int, bytes, bytes | None]] = []
    for index, token in enumerate(tokens):
        if token[:1] != b"<":
            pending_text = True
            following = tokens[index + 1] if index + 1 < len(tokens) else b""
            opened = index > 0 and tokens[index - 1][:1] == b"<" and tokens[index - 1][1:2] not in (b"/", b"?", b"!")
            slot = None
            if opened and stack and following[:2] == b"</":
                name, parent = stack[-1], stack[-2] if len(stack) > 1 else None
                slot = _slot(name, parent, token)
            if slot is None:
                texts.append(token)
                literal += token
                continue
            kind, data, value = slot
            skeleton += _varint(len(literal)) + literal + bytes([kind])
            literal.clear()
            compact += data
            if value is not None:
                shared.setdefault(value.address, value)
            slots.append((len(texts), name, parent))
            texts.append(None)
            continue
        if not pending_text:
            texts.append(b"")  # no text before this tag
        pending_text = False
        literal += token
        if token[1:2] == b"/":
            if stack:
                stack.pop()
        elif token[1:2] not in (b"?", b"!") and not token.endswith(b"/>"):
            local = _local_name(token)
            stack.append(local if local is not None else b"")
    if not pending_text:
        texts.append(b"")
    if not compact:
        return None, None  # nothing per-message to cut out: not one of ours
    skeleton += _varint(len(literal)) + literal + bytes([_END])
    skeleton_value = SharedValue.of(KIND_SKELETON, bytes(skeleton))
    packed = _checked(document, Packed(
        bytes([FORMAT_VERSION]) + skeleton_value.address + bytes(compact),
        (skeleton_value, *shared.values()),
    ))
    if packed is None:
        return None, None
    return packed, _Plan(tuple(texts), tuple(slots), skeleton_value)


def _checked(document: bytes, packed: Packed) -> Packed | None:
    """``packed`` when it rebuilds to exactly ``document``, else None."""
    values = {value.address: value.value for value in packed.shared}
    try:
        rebuilt = unpack(packed.compact, values.__getitem__)
    except CompactFormError:
        return None
    return packed if rebuilt == document else None


@functools.lru_cache(maxsize=256)
def _skeleton_pieces(skeleton: bytes) -> tuple[tuple[bytes, int], ...]:
    """The skeleton's literal pieces, each with the slot kind that follows it (remembered: few skeletons exist)."""
    if not skeleton or skeleton[0] != FORMAT_VERSION:
        raise CompactFormError("not a skeleton of a known version")
    pieces = []
    at = 1
    while True:
        length, at = _read_varint(skeleton, at)
        if at + length + 1 > len(skeleton):
            raise CompactFormError("skeleton is truncated")
        literal = skeleton[at : at + length]
        kind = skeleton[at + length]
        at += length + 1
        if kind not in (_END, _INLINE, _SHARED, _TIME):
            raise CompactFormError(f"skeleton has an unknown slot kind {kind}")
        pieces.append((literal, kind))
        if kind == _END:
            break
    if at != len(skeleton):
        raise CompactFormError("skeleton has trailing bytes")
    return tuple(pieces)


_b64encode = binascii.b2a_base64


@functools.lru_cache(maxsize=256)
def _time_text(millis: int) -> bytes:
    """:func:`_format_time`, remembered: the records of one signing batch share their signing time."""
    return _format_time(millis)


@functools.lru_cache(maxsize=1024)
def _shared_text(value: bytes) -> bytes:
    """The base64 text of a shared value (remembered: the same few certificates and responses come back)."""
    return base64.b64encode(value)


def unpack(compact: bytes, lookup: Lookup) -> bytes:
    """The document that :func:`pack` made ``compact`` from; ``lookup`` gives shared values by address.

    Raises :class:`CompactFormError` when ``compact`` or its skeleton is damaged; whatever ``lookup`` raises for
    an address it does not hold passes through.
    """
    if len(compact) < 1 + HASH_SIZE or compact[0] != FORMAT_VERSION:
        raise CompactFormError("not a compact document of a known version")
    pieces = _skeleton_pieces(lookup(compact[1 : 1 + HASH_SIZE]))
    out: list[bytes] = []
    append = out.append
    size = len(compact)
    at = 1 + HASH_SIZE
    for literal, kind in pieces:
        append(literal)
        if kind == _INLINE:
            if at < size and compact[at] < 0x80:  # a one-byte length (digests); longer ones are read in full
                length = compact[at]
                at += 1
            else:
                length, at = _read_varint(compact, at)
            end = at + length
            if end > size:
                raise CompactFormError("compact document is truncated")
            append(_b64encode(compact[at:end], newline=False))  # exactly what base64.b64encode writes
            at = end
        elif kind == _SHARED:
            end = at + HASH_SIZE
            if end > size:
                raise CompactFormError("compact document is truncated")
            append(_shared_text(lookup(compact[at:end])))
            at = end
        elif kind == _TIME:
            if at + 8 > size:
                raise CompactFormError("compact document is truncated")
            try:
                append(_time_text(int.from_bytes(compact[at : at + 8], "big", signed=True)))
            except OverflowError as err:
                raise CompactFormError("signing time out of range") from err
            at += 8
    if at != size:
        raise CompactFormError("compact document has trailing bytes")
    return b"".join(out)
