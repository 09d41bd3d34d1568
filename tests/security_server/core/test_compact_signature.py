"""The compact form of signature and hash-chain documents: exact bytes back, or no compact form at all."""

from __future__ import annotations

import base64
import functools
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from security_server.core import compact_signature
from security_server.core.compact_signature import (
    KIND_CERTIFICATE,
    KIND_OCSP,
    KIND_SKELETON,
    CompactFormError,
    Packed,
    pack,
    unpack,
)
from security_server.core.signature import ECDSA_SHA512, RSA_SHA512, MessagePart, SignatureData, sign_batch
from tests.federation.ca import issue_signing, ocsp_for
from tests.federation.departments import CONSUMER_MEMBER
from tests.federation.evidence import federation
from tests.federation.pki import ec_key

NOW = datetime(2026, 12, 7, 12, 30, 15, 123456, tzinfo=UTC)


def rebuilt(packed: Packed) -> bytes:
    """The document rebuilt from ``packed`` and its own shared values."""
    values = {value.address: value.value for value in packed.shared}
    return unpack(packed.compact, values.__getitem__)


def signed(count: int, *, attachments: int = 0, ec: bool = False, intermediates: bool = False) -> tuple[SignatureData, ...]:
    """``count`` messages signed in one batch by the consumer (or a new EC key), with real OCSP responses."""
    fed = federation()
    who = fed.consumer
    if ec:
        who = issue_signing(fed.ca, CONSUMER_MEMBER, fed.created, "EC signer", key=ec_key())
    messages = [
        [MessagePart.of("/message.xml", b"<m>%d</m>" % n)]
        + [MessagePart.of(f"/attachment{a}", b"a%d" % a) for a in range(1, attachments + 1)]
        for n in range(count)
    ]
    return sign_batch(
        messages, who.cert, who.key, ocsp_for(fed.ca, who.cert, NOW - timedelta(seconds=5)), NOW,
        algorithm=ECDSA_SHA512 if ec else RSA_SHA512,
        intermediates=(fed.tsa_cert,) if intermediates else (),
    )


@functools.cache
def documents() -> tuple[bytes, ...]:
    """Every kind of document fedbus signs and logs: single, batch, attachments, EC, intermediates."""
    out: list[bytes] = []
    for data in (*signed(1), *signed(3), *signed(1, attachments=2), *signed(1, ec=True), *signed(2, intermediates=True)):
        out.append(data.signature_xml)
        if data.hash_chain is not None and data.hash_chain_result is not None:
            out += [data.hash_chain, data.hash_chain_result]
    return tuple(out)


def test_every_document_we_write_packs_and_rebuilds_exactly() -> None:
    """Signatures (single, batch, attachments, EC, intermediates) and hash chains all pack, and rebuild byte for byte."""
    for document in documents():
        packed = pack(document)
        assert packed is not None
        assert rebuilt(packed) == document


def test_a_signature_keeps_only_its_per_message_values() -> None:
    """A single RSA signature of ~6 kB packs to under 600 bytes; its certificate, OCSP and skeleton are shared."""
    document = signed(1)[0].signature_xml
    packed = pack(document)
    assert packed is not None
    assert len(document) > 5000 and len(packed.compact) < 600
    assert [value.kind for value in packed.shared] == [KIND_SKELETON, KIND_CERTIFICATE, KIND_OCSP]


def test_signatures_of_one_signer_share_their_skeleton_and_values() -> None:
    """Two signatures by one signer at different times reference the same skeleton, certificate and OCSP response."""
    first, second = pack(signed(1)[0].signature_xml), pack(signed(1, attachments=1)[0].signature_xml)
    batch = pack(signed(2)[0].signature_xml)
    assert first is not None and second is not None and batch is not None
    assert second.shared == batch.shared  # both reference the hash-chain result
    assert first.shared[1:] == second.shared[1:]


def test_xroad_signatures_and_chains_pack_exactly_or_stay_as_they_are(xroad_vectors: Path) -> None:
    """Documents from X-Road's containers either rebuild to exactly their bytes or get no compact form."""
    seen = 0
    for container in sorted((xroad_vectors / "asic").glob("*.asice")):
        with zipfile.ZipFile(container) as archive:
            for name in archive.namelist():
                if name.endswith(".xml") and ("signature" in name or "hashchain" in name):
                    document = archive.read(name)
                    packed = pack(document)
                    assert packed is None or rebuilt(packed) == document, f"{container.name}: {name}"
                    seen += 1
    assert seen >= 10


def test_a_document_without_per_message_values_has_no_compact_form() -> None:
    """Bytes with nothing to cut out (not one of our documents) are not packed; neither is an empty document."""
    assert pack(b"") is None
    assert pack(b"<sig n='1'/>") is None
    assert pack(b"not xml at all") is None


@pytest.mark.parametrize(
    "edit",
    [
        lambda d: d.replace(b"<ds:SignatureValue Id=\"signature-value\">", b"<ds:SignatureValue Id=\"signature-value\">\n"),
        lambda d: d.replace(b".123Z</xades:SigningTime>", b".123+00:00</xades:SigningTime>"),
        lambda d: d.replace(b"</ds:DigestValue>", b"=</ds:DigestValue>", 1),
        lambda d: d[:-1],
    ],
    ids=["wrapped-base64", "other-time-zone", "non-canonical-base64", "truncated"],
)
def test_odd_forms_of_a_signature_still_come_back_exactly(edit: object) -> None:
    """Whitespace in base64, another time form, non-canonical base64, a cut document: packed exactly or not at all."""
    document = edit(signed(1)[0].signature_xml)  # type: ignore[operator]
    packed = pack(document)
    assert packed is None or rebuilt(packed) == document


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_pack_never_loses_a_byte(data: st.DataObject) -> None:
    """For any of our documents with bytes changed, inserted or removed anywhere, unpack(pack(x)) == x or pack is None."""
    document = bytearray(data.draw(st.sampled_from(documents()), label="document"))
    for _ in range(data.draw(st.integers(1, 3), label="edits")):
        at = data.draw(st.integers(0, len(document)), label="at")
        action = data.draw(st.sampled_from(["change", "insert", "delete"]), label="action")
        byte = data.draw(st.sampled_from([b"<", b">", b"/", b"=", b"A", b" ", b"\n", b"\xff", b"0"]), label="byte")
        if action == "insert":
            document[at:at] = byte
        elif at < len(document):
            document[at : at + 1] = byte if action == "change" else b""
    packed = pack(bytes(document))
    assert packed is None or rebuilt(packed) == bytes(document)


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_a_remembered_shape_packs_exactly_as_walking_the_document(data: st.DataObject) -> None:
    """Once a shape is known, a document of it (or one edited anywhere) packs to the very result of walking its
    elements afresh: the plan is a shortcut, never another verdict."""
    original = data.draw(st.sampled_from(documents()), label="document")
    assert pack(original) is not None  # its shape is now remembered
    document = bytearray(original)
    for _ in range(data.draw(st.integers(0, 2), label="edits")):
        at = data.draw(st.integers(0, len(document)), label="at")
        byte = data.draw(st.sampled_from([b"<", b">", b"/", b"=", b"A", b"0", b" "]), label="byte")
        document[at:at] = byte
    walked, _ = compact_signature._pack_by_walking(bytes(document), compact_signature._TOKEN.findall(bytes(document)))
    assert pack(bytes(document)) == walked


def test_the_next_message_of_a_batch_packs_by_its_shape() -> None:
    """Chains of the same place in two batches differ only in their digests: the second is packed by the first
    one's plan, to the bytes walking it gives."""
    first = signed(2)[0].hash_chain
    assert first is not None and pack(first) is not None
    digest = first.split(b"<DigestValue>")[1].split(b"</DigestValue>")[0]
    other = base64.b64encode(bytes(b ^ 0x5A for b in base64.b64decode(digest)))
    second = first.replace(digest, other)
    parts = compact_signature._TAG_SPLIT.split(second)
    plan = compact_signature._plans[b"".join(parts[1::2])][0]
    by_plan = compact_signature._pack_by_plan(second, parts[0::2], plan)
    assert by_plan is not None and rebuilt(by_plan) == second
    assert by_plan == compact_signature._pack_by_walking(second, compact_signature._TOKEN.findall(second))[0]
    assert pack(second) == by_plan


def test_two_signers_of_one_shape_each_keep_their_plan(monkeypatch: pytest.MonkeyPatch) -> None:
    """A server logs its own member's signatures and its peer's: same tags, different skeleton texts (certificate
    digest, serial number). Alternating between them, each is packed by its own plan after the first, never walked."""
    fed = federation()
    lone: dict[str, list[bytes]] = {}
    for name, who in (("consumer", fed.consumer), ("provider", fed.provider)):
        ocsp = ocsp_for(fed.ca, who.cert, NOW - timedelta(seconds=5))
        lone[name] = [
            sign_batch([[MessagePart.of("/message.xml", b"<m>%d</m>" % n)]], who.cert, who.key, ocsp, NOW)[0].signature_xml
            for n in range(3)
        ]
    shapes = {b"".join(compact_signature._TAG_SPLIT.split(docs[0])[1::2]) for docs in lone.values()}
    assert len(shapes) == 1  # the same shape: the case the plans per shape are for
    walked: list[bytes] = []
    walk = compact_signature._pack_by_walking

    def counted(document: bytes, tokens: list[bytes]) -> Any:
        walked.append(document)
        return walk(document, tokens)

    monkeypatch.setattr(compact_signature, "_plans", {})
    monkeypatch.setattr(compact_signature, "_pack_by_walking", counted)
    consumer, provider = lone.values()
    for ours, theirs in zip(consumer, provider):
        for document in (ours, theirs):
            packed = pack(document)
            assert packed is not None and rebuilt(packed) == document
    assert walked == [consumer[0], provider[0]]


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400) | st.text(alphabet="<>/ab=:+ \nDigestValueSigningTime0123456789", max_size=300).map(str.encode))
def test_pack_of_any_bytes_rebuilds_exactly_or_is_none(document: bytes) -> None:
    """Arbitrary bytes (and XML-ish text) never pack to something that rebuilds differently."""
    packed = pack(document)
    assert packed is None or rebuilt(packed) == document


def test_a_damaged_compact_form_is_refused() -> None:
    """Truncated, extended or unknown-version compact forms raise CompactFormError; a missing value, the lookup's KeyError."""
    packed = pack(signed(1)[0].signature_xml)
    assert packed is not None
    values = {value.address: value.value for value in packed.shared}
    for damaged in (packed.compact[:-1], packed.compact + b"\x00", b"\x02" + packed.compact[1:], b"\x01"):
        with pytest.raises(CompactFormError):
            unpack(damaged, values.__getitem__)
    nothing: dict[bytes, bytes] = {}
    with pytest.raises(KeyError):
        unpack(packed.compact, nothing.__getitem__)
    skeleton = packed.shared[0]
    with pytest.raises(CompactFormError):
        unpack(packed.compact, {**values, skeleton.address: skeleton.value[:-1]}.__getitem__)
