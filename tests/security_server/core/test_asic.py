"""ASiC-E containers: X-Road's verdicts on its containers, our containers verify, hostile zips are refused."""

from __future__ import annotations

import functools
import hashlib
import io
import shutil
import stat
import subprocess
import zipfile
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from asn1crypto import algos, cms, core, tsp
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from hypothesis import given, settings
from hypothesis import strategies as st

from security_server.core import asic
from security_server.core.asic import BatchTimestamp, CheckStatus, ZipLimits, build_container, verify_container
from security_server.core.errors import BadRequest, IncorrectValidationInfo, RequestTooLarge
from security_server.core.hashchain import SIGNATURE, TS_HASH_CHAIN, build_hash_chain
from security_server.core.signature import (
    MessagePart,
    SignatureData,
    add_signature_timestamp,
    build_signature,
    sign_batch,
    signature_value,
)

NOW = datetime(2026, 5, 6, 7, 8, 9, tzinfo=timezone.utc)
MESSAGE_XML = b'<?xml version="1.0" encoding="utf-8"?>\n<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/"><SOAP-ENV:Body/></SOAP-ENV:Envelope>\n'


# --- X-Road's containers and its verdicts (vectors README) --------------------------------------------------


XROAD_VERDICTS = {
    "valid-signed-message.asice": "valid",
    "valid-non-batch-rest.asice": "valid",
    "valid-non-batch-soap-attachments.asice": "valid",
    "valid-signed-hashchain.asice": "valid",
    "valid-batch-ts.asice": "valid",
    "wrong-message.asice": "invalid_signature_value",
    "invalid-digest.asice": "invalid_signature_value",
    "invalid-signed-hashchain.asice": "malformed_signature.invalid_hash_chain_ref",
    "invalid-hashchain-modified-message.asice": "malformed_signature.hashchain_unused_inputs",
    # Its hash chain is not covered by the signature, which itself is fine: X-Road accepts it.
    "invalid-not-signed-hashchain.asice": "valid",
    "invalid-incorrect-references.asice": "malformed_signature",
    "invalid-ts-hashchainresult.asice": "malformed_signature",
    # Not in X-Road's table: an X-Road 5 layout without message.xml, which X-Road's reader reports as
    # asic_message_not_found.
    "attachments.asice": "malformed_signature.asic_message_not_found",
}


@pytest.mark.parametrize(("vector", "expected"), sorted(XROAD_VERDICTS.items()))
def test_xroad_container_gets_xroads_verdict(xroad_vectors: Path, vector: str, expected: str) -> None:
    """Each container in shared/vectors/xroad/asic gets the verdict X-Road's verifier gives it."""
    verdict = verify_container((xroad_vectors / "asic" / vector).read_bytes())
    assert verdict.code == expected, verdict.checks
    assert verdict.ok == (expected == "valid")


def test_every_vector_container_is_covered(xroad_vectors: Path) -> None:
    """The verdict table names every container in the vectors folder."""
    assert {path.name for path in (xroad_vectors / "asic").glob("*.asice")} == set(XROAD_VERDICTS)


def test_batch_timestamp_vector_reports_what_was_checked(xroad_vectors: Path) -> None:
    """valid-batch-ts: ts hash chain and imprint pass, the token check is reported as skipped without a verifier."""
    verdict = verify_container((xroad_vectors / "asic" / "valid-batch-ts.asice").read_bytes())
    assert verdict.timestamp is not None and verdict.timestamp.batch
    assert verdict.timestamp.gen_time == datetime(2024, 12, 5, 7, 34, 14, tzinfo=timezone.utc)
    statuses = {check.name: check.status for check in verdict.checks}
    assert statuses["timestamp hash chain"] is CheckStatus.PASSED
    assert statuses["timestamp imprint"] is CheckStatus.PASSED
    assert statuses["timestamp token"] is CheckStatus.SKIPPED


def test_hashchain_vector_lists_the_attachment_it_could_not_check(xroad_vectors: Path) -> None:
    """valid-signed-hashchain leaves out attachment1; the verdict names it as taken on its signed digest."""
    verdict = verify_container((xroad_vectors / "asic" / "valid-signed-hashchain.asice").read_bytes())
    assert [ref.uri for ref in verdict.unverified_refs] == ["/attachment1"]
    assert verdict.timestamp is not None and not verdict.timestamp.batch


def test_strict_mode_refuses_entries_nothing_covers(xroad_vectors: Path) -> None:
    """invalid-not-signed-hashchain carries unsigned extra files: listed by default, refused in strict mode."""
    data = (xroad_vectors / "asic" / "invalid-not-signed-hashchain.asice").read_bytes()
    assert verify_container(data).extra_entries == ("hashchain.xml", "hashchainresult.xml")
    assert verify_container(data, allow_extra_entries=False).code == "malformed_signature.asic_unexpected_entry"


def test_timestamp_check_receives_token_and_stamped_data(xroad_vectors: Path) -> None:
    """The token verifier gets the DER token and ts-hashchainresult.xml; its refusal is the verdict."""
    data = (xroad_vectors / "asic" / "valid-batch-ts.asice").read_bytes()
    calls: list[tuple[bytes, bytes]] = []
    assert verify_container(data, verify_timestamp=lambda token, stamped: calls.append((token, stamped))).ok
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert calls == [(archive.read("META-INF/timestamp.tst"), archive.read("ts-hashchainresult.xml"))]

    def refuse(token: bytes, stamped: bytes) -> None:
        raise IncorrectValidationInfo("timestamp signed by an untrusted TSA")

    verdict = verify_container(data, verify_timestamp=refuse)
    assert verdict.code == "incorrect_validation_info"


# --- test PKI and a timestamp authority, generated at run time ----------------------------------------------


@dataclass(frozen=True)
class Pki:
    key: rsa.RSAPrivateKey
    cert: x509.Certificate
    tsa_key: rsa.RSAPrivateKey
    tsa_cert: x509.Certificate
    ocsp: bytes


def _cert(cn: str, key: rsa.RSAPrivateKey, ca_key: rsa.RSAPrivateKey, serial: int, tsa: bool = False) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    builder = (
        x509.CertificateBuilder().subject_name(name).issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test CA")]))
        .public_key(key.public_key()).serial_number(serial)
        .not_valid_before(NOW - timedelta(days=1)).not_valid_after(NOW + timedelta(days=365))
    )
    if tsa:
        builder = builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True)
    return builder.sign(ca_key, hashes.SHA256())


@functools.cache
def pki() -> Pki:
    """A signing certificate and a TSA certificate under one test CA."""
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    tsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return Pki(key, _cert("1234", key, ca_key, 7), tsa_key, _cert("Test TSA", tsa_key, ca_key, 8, tsa=True), b"\x30\x03ocs")


def timestamp_token(data: bytes, gen_time: datetime = NOW) -> bytes:
    """An RFC 3161 token over SHA-512(data), signed by the test TSA (CMS SignedData with TSTInfo)."""
    p = pki()
    info = tsp.TSTInfo({
        "version": "v1",
        "policy": "1.2.3.4.1",
        "message_imprint": {"hash_algorithm": {"algorithm": "sha512"}, "hashed_message": hashlib.sha512(data).digest()},
        "serial_number": 1,
        "gen_time": gen_time,
    })
    content = info.dump()
    attributes = cms.CMSAttributes([
        {"type": "content_type", "values": ["tst_info"]},
        {"type": "message_digest", "values": [hashlib.sha256(content).digest()]},
    ])
    signed = p.tsa_key.sign(attributes.dump(), padding.PKCS1v15(), hashes.SHA256())
    tsa_cert = cms.CertificateChoices.load(p.tsa_cert.public_bytes(serialization.Encoding.DER))
    signer = cms.SignerInfo({
        "version": "v1",
        "sid": {"issuer_and_serial_number": {"issuer": tsa_cert.chosen["tbs_certificate"]["issuer"], "serial_number": 8}},
        "digest_algorithm": algos.DigestAlgorithm({"algorithm": "sha256"}),
        "signed_attrs": attributes,
        "signature_algorithm": {"algorithm": "rsassa_pkcs1v15"},
        "signature": signed,
    })
    signed_data = cms.SignedData({
        "version": "v3",
        "digest_algorithms": [algos.DigestAlgorithm({"algorithm": "sha256"})],
        "encap_content_info": {"content_type": "tst_info", "content": core.ParsableOctetString(content)},
        "certificates": [tsa_cert],
        "signer_infos": [signer],
    })
    return bytes(cms.ContentInfo({"content_type": "signed_data", "content": signed_data}).dump())


def signed(message: bytes = MESSAGE_XML, attachments: tuple[bytes, ...] = ()) -> SignatureData:
    p = pki()
    parts = [MessagePart.of("/message.xml", message)] + [
        MessagePart.of(f"/attachment{n}", data) for n, data in enumerate(attachments, start=1)
    ]
    return build_signature(parts, p.cert, p.key, p.ocsp, NOW)


def single_timestamped() -> tuple[bytes, SignatureData]:
    """A container of one message whose signature holds a single timestamp over its signature value."""
    data = signed()
    stamped = add_signature_timestamp(data.signature_xml, timestamp_token(signature_value(data.signature_xml)))
    data = SignatureData(stamped)
    return build_container(MESSAGE_XML, data, created=NOW), data


def batch_timestamped() -> tuple[bytes, list[bytes], SignatureData]:
    """A container from a batch signature over three messages, the second with two attachments, batch-timestamped."""
    p = pki()
    messages = [b"<m>0</m>", MESSAGE_XML, b"<m>2</m>"]
    attachments = [b"first attachment", b"\x00\x01second"]
    batch = [[MessagePart.of("/message.xml", m)] for m in messages]
    batch[1] += [MessagePart.of(f"/attachment{n}", a) for n, a in enumerate(attachments, start=1)]
    data = sign_batch(batch, p.cert, p.key, p.ocsp, NOW)[1]
    # The batch timestamp covers this signature and two other logged ones.
    hashes_ = [hashlib.sha512(x).digest() for x in (b"other signature", data.signature_xml, b"third signature")]
    chains = build_hash_chain([[h] for h in hashes_], chain_uri=TS_HASH_CHAIN, data_uri=SIGNATURE)
    timestamp = BatchTimestamp(timestamp_token(chains.result), chains.result, chains.chains[1])
    container = build_container(MESSAGE_XML, data, created=NOW, attachments=attachments, timestamp=timestamp)
    return container, attachments, data


# --- our containers -----------------------------------------------------------------------------------------


def test_mimetype_is_first_and_stored() -> None:
    """The first local header is 'mimetype', stored, its content at offset 38 (ASiC); then X-Road's layout."""
    container, _, _ = batch_timestamped()
    assert container[30:38] == b"mimetype"
    assert container[38 : 38 + len(asic.MIMETYPE)] == asic.MIMETYPE.encode()
    with zipfile.ZipFile(io.BytesIO(container)) as archive:
        infos = archive.infolist()
        assert infos[0].compress_type == zipfile.ZIP_STORED
        assert [info.filename for info in infos] == [
            "mimetype", "message.xml", "attachment1", "attachment2", "META-INF/signatures.xml",
            "sig-hashchainresult.xml", "sig-hashchain.xml", "ts-hashchainresult.xml", "ts-hashchain.xml",
            "META-INF/timestamp.tst", "META-INF/ASiCManifest.xml", "META-INF/manifest.xml",
        ]
        manifest = archive.read("META-INF/manifest.xml")
        assert b'manifest:media-type="application/octet-stream" manifest:full-path="attachment2"' in manifest
        assert b'URI="ts-hashchainresult.xml"' in archive.read("META-INF/ASiCManifest.xml")


def test_same_inputs_give_the_same_container() -> None:
    """Containers are deterministic: entries carry the given creation time."""
    data = signed()
    assert build_container(MESSAGE_XML, data, created=NOW) == build_container(MESSAGE_XML, data, created=NOW)


def test_single_timestamped_container_verifies() -> None:
    """A container whose signature holds its own timestamp verifies; the imprint is over the signature value."""
    container, data = single_timestamped()
    verdict = verify_container(container)
    assert verdict.code == "valid", verdict.checks
    assert verdict.timestamp is not None and not verdict.timestamp.batch
    assert verdict.signature is not None and verdict.signature.signing_cert == pki().cert


def test_batch_signed_batch_timestamped_container_verifies() -> None:
    """A batch-signed message with attachments and a batch timestamp verifies, attachments checked."""
    container, attachments, _ = batch_timestamped()
    verdict = verify_container(container)
    assert verdict.code == "valid", verdict.checks
    assert verdict.attachments == ("attachment1", "attachment2")
    assert verdict.unverified_refs == ()
    assert verdict.timestamp is not None and verdict.timestamp.batch


def test_container_without_timestamp_needs_the_flag() -> None:
    """An untimestamped container is refused unless the caller accepts it (fresh records)."""
    container = build_container(MESSAGE_XML, signed(), created=NOW)
    assert verify_container(container).code == "malformed_signature.asic_timestamp_not_found"
    assert verify_container(container, require_timestamp=False).code == "valid"


def rezip(container: bytes, change: dict[str, bytes | None], extra: dict[str, bytes] | None = None) -> bytes:
    """The container with entries replaced (bytes) or removed (None), and extra entries appended."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(container)) as source, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            replacement = change.get(info.filename, source.read(info.filename))
            if info.filename in change and change[info.filename] is None:
                continue
            assert replacement is not None
            target.writestr(info, replacement)
        for name, data in (extra or {}).items():
            target.writestr(name, data)
    return out.getvalue()


BYTE_EXACT_ENTRIES = [
    "message.xml", "attachment1", "attachment2", "META-INF/signatures.xml", "sig-hashchainresult.xml", "ts-hashchainresult.xml",
]


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(BYTE_EXACT_ENTRIES), st.data())
def test_a_changed_byte_in_a_signed_entry_is_detected(entry: str, data: st.DataObject) -> None:
    """Any one byte changed in an entry covered as bytes (by a digest, the signature or the imprint) fails."""
    container, _, _ = batch_timestamped()
    with zipfile.ZipFile(io.BytesIO(container)) as archive:
        content = bytearray(archive.read(entry))
    content[data.draw(st.integers(0, len(content) - 1))] ^= data.draw(st.integers(1, 255))
    assert not verify_container(rezip(container, {entry: bytes(content)})).ok


@pytest.mark.parametrize("entry", ["sig-hashchain.xml", "ts-hashchain.xml"])
def test_a_changed_digest_in_a_hash_chain_is_detected(entry: str) -> None:
    """Hash chains are checked by content: any changed digest value in them makes the container fail."""
    container, _, _ = batch_timestamped()
    with zipfile.ZipFile(io.BytesIO(container)) as archive:
        chain = archive.read(entry)
    start = chain.index(b"<DigestValue>") + len(b"<DigestValue>")
    for position in range(start, chain.index(b"</DigestValue>", start) - 2):
        changed = bytearray(chain)
        changed[position] = ord("A") if changed[position] != ord("A") else ord("B")
        assert not verify_container(rezip(container, {entry: bytes(changed)})).ok


def test_missing_entries_are_named() -> None:
    """A container without its signature, message, mimetype or half a hash chain says which is missing."""
    container, _, _ = batch_timestamped()
    cases = {
        "META-INF/signatures.xml": "malformed_signature.asic_signature_not_found",
        "message.xml": "malformed_signature.asic_message_not_found",
        "mimetype": "malformed_signature.asic_mime_type_not_found",
        "sig-hashchain.xml": "malformed_signature.asic_hash_chain_not_found",
        "ts-hashchainresult.xml": "malformed_signature.asic_hash_chain_result_not_found",
        "META-INF/timestamp.tst": "malformed_signature.asic_timestamp_not_found",
    }
    for entry, code in cases.items():
        assert verify_container(rezip(container, {entry: None})).code == code, entry
    assert verify_container(rezip(container, {"mimetype": b"application/zip"})).code == "malformed_signature.asic_invalid_mime_type"


def test_an_extra_attachment_that_nothing_signs_is_refused() -> None:
    """An attachment added to a container is not covered by the signature: malformed_signature."""
    container, _ = single_timestamped()
    verdict = verify_container(rezip(container, {}, {"attachment1": b"smuggled"}))
    assert verdict.code == "malformed_signature"


def test_timestamp_over_another_imprint_is_refused() -> None:
    """A batch token over some other data than ts-hashchainresult.xml: malformed_signature (hashes differ)."""
    container, _, _ = batch_timestamped()
    verdict = verify_container(rezip(container, {"META-INF/timestamp.tst": timestamp_token(b"something else")}))
    assert verdict.code == "malformed_signature"
    assert any(check.name == "timestamp" and "imprint" in check.detail for check in verdict.checks)
    signature_xml = signed().signature_xml
    other = signed(b"<another message/>").signature_xml
    wrong = add_signature_timestamp(signature_xml, timestamp_token(signature_value(other)))
    assert verify_container(build_container(MESSAGE_XML, SignatureData(wrong), created=NOW)).code == "malformed_signature"


def test_xmlsec1_accepts_the_signature_in_our_container(tmp_path: Path) -> None:
    """xmlsec1 (§9) verifies META-INF/signatures.xml of our containers against message.xml or the chain result."""
    xmlsec1 = shutil.which("xmlsec1")
    assert xmlsec1 is not None, "xmlsec1 is not installed (Debian package xmlsec1; `make deps` installs it)"
    single, _ = single_timestamped()
    batch, _, _ = batch_timestamped()
    for container, uri, entry in ((single, "/message.xml", "message.xml"), (batch, "/sig-hashchainresult.xml", "sig-hashchainresult.xml")):
        with zipfile.ZipFile(io.BytesIO(container)) as archive:
            archive.extractall(tmp_path)
        result = subprocess.run(
            [xmlsec1, "--verify", "--insecure", f"--url-map:{uri}", str(tmp_path / entry),
             "--id-attr:Id", "http://uri.etsi.org/01903/v1.3.2#:SignedProperties", str(tmp_path / "META-INF" / "signatures.xml")],
            capture_output=True, timeout=60, check=False,
        )
        assert result.returncode == 0, result.stderr.decode()


# --- hostile zips -------------------------------------------------------------------------------------------


def raw_zip(entries: list[tuple[zipfile.ZipInfo | str, bytes]]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for info, data in entries:
            archive.writestr(info, data)
    return out.getvalue()


@pytest.mark.parametrize("name", ["../evil.xml", "/etc/passwd", "META-INF/../../x", "a\\..\\b", "C:/x", "a//b", "x\x01y"])
def test_path_traversal_names_are_refused(name: str) -> None:
    """Entry names that could leave an extraction folder are refused with bad_request before reading."""
    verdict = verify_container(raw_zip([("mimetype", asic.MIMETYPE.encode()), (name, b"x")]))
    assert isinstance(verdict.error, BadRequest)
    assert verdict.checks[0].name == "zip" and "unsafe zip entry name" in verdict.checks[0].detail


def test_zip_bomb_is_refused_by_declared_and_by_real_size() -> None:
    """An entry that inflates past the limit is refused, whether its header says so or lies about it."""
    bomb = raw_zip([("mimetype", asic.MIMETYPE.encode()), ("message.xml", bytes(129 * 1024 * 1024))])
    assert len(bomb) < 1024 * 1024
    verdict = verify_container(bomb)
    assert isinstance(verdict.error, RequestTooLarge)
    # A header that understates the size: zipfile stops at the declared size, and the CRC then fails.
    small = raw_zip([("message.xml", bytes(4096))])
    lying = small.replace((4096).to_bytes(4, "little"), (16).to_bytes(4, "little"))
    assert isinstance(verify_container(lying).error, BadRequest)
    limited = verify_container(raw_zip([("message.xml", bytes(5000))]), limits=ZipLimits(max_entry_bytes=4096))
    assert isinstance(limited.error, RequestTooLarge)


def test_too_many_entries_duplicates_links_and_garbage_are_refused() -> None:
    """Too many entries, duplicate names, symbolic links and non-zip bytes are all refused."""
    many = raw_zip([(f"attachment{n}", b"x") for n in range(1, 40)])
    assert isinstance(verify_container(many, limits=ZipLimits(max_entries=10)).error, RequestTooLarge)
    with pytest.warns(UserWarning):
        duplicate = raw_zip([("message.xml", b"a"), ("message.xml", b"b")])
    assert isinstance(verify_container(duplicate).error, BadRequest)
    link = zipfile.ZipInfo("message.xml")
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    assert isinstance(verify_container(raw_zip([(link, b"/etc/passwd")])).error, BadRequest)
    assert isinstance(verify_container(b"PK\x03\x04 not really a zip").error, BadRequest)
    assert verify_container(b"").code == "bad_request"
