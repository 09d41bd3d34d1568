"""XAdES signatures: X-Road's vectors verify, ours round-trip, tampering is caught, xmlsec1 agrees."""

from __future__ import annotations

import base64
import functools
import hashlib
import shutil
import subprocess
import zipfile
from unittest import mock
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.x509.oid import NameOID
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from security_server.core import signature as sig
from security_server.core.errors import BusError, InvalidSignatureValue, MalformedSignature
from security_server.core.hashchain import MESSAGE, SIG_HASH_CHAIN, SIG_HASH_CHAIN_RESULT
from security_server.core.signature import MessagePart, build_signature, sign_batch, verify_signature
from tests.security_server.core import xades_reference
from tests.security_server.core.signing_pki import NOW, pki

DS = "{http://www.w3.org/2000/09/xmldsig#}"
XADES = "{http://uri.etsi.org/01903/v1.3.2#}"
MESSAGE_XML = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/">'
    b"<SOAP-ENV:Body><x>caf\xc3\xa9 &amp; co\r\n</x></SOAP-ENV:Body></SOAP-ENV:Envelope>"
)


def sign_message(message: bytes = MESSAGE_XML, intermediates: tuple[x509.Certificate, ...] = ()) -> bytes:
    p = pki()
    parts = [MessagePart.of(MESSAGE, message)]
    return build_signature(parts, p.cert, p.key, p.ocsp, NOW, intermediates=intermediates).signature_xml


# --- X-Road's own signatures --------------------------------------------------------------------------------


def vector_entries(vectors: Path, name: str) -> dict[str, bytes]:
    with zipfile.ZipFile(vectors / "asic" / name) as archive:
        return {f"/{n}": archive.read(n) for n in archive.namelist() if not n.endswith("/")}


def test_xroad_signed_message_verifies(xroad_vectors: Path) -> None:
    """valid-signed-message: raw-bytes /message.xml reference, SigningCertificate serial 18, OCSP and timestamp."""
    entries = vector_entries(xroad_vectors, "valid-signed-message.asice")
    verified = verify_signature(entries["/META-INF/signatures.xml"], entries.get)
    assert verified.references == (MESSAGE,)
    assert verified.signing_cert.serial_number == 18
    assert verified.signing_time == datetime(2024, 12, 5, 13, 16, 11, 661000, tzinfo=timezone.utc)
    assert len(verified.ocsp_responses) == 1 and len(verified.timestamp_tokens) == 1
    assert verified.algorithm == sig.RSA_SHA512


def test_xroad_non_batch_rest_signature_verifies(xroad_vectors: Path) -> None:
    """valid-non-batch-rest: bare ds:Signature, exclusive C14N, SigningCertificateV2, message and body references."""
    entries = vector_entries(xroad_vectors, "valid-non-batch-rest.asice")
    verified = verify_signature(entries["/META-INF/signatures.xml"], entries.get, expected_parts=[MESSAGE, "/attachment1"])
    assert verified.references == (MESSAGE, "/attachment1")
    assert verified.signing_cert.serial_number == 2


def test_xroad_wrong_message_is_an_invalid_signature_value(xroad_vectors: Path) -> None:
    """wrong-message: the message digest does not match, so invalid_signature_value."""
    entries = vector_entries(xroad_vectors, "wrong-message.asice")
    with pytest.raises(InvalidSignatureValue):
        verify_signature(entries["/META-INF/signatures.xml"], entries.get)


# --- our signatures -----------------------------------------------------------------------------------------


def test_signature_has_xroads_structure() -> None:
    """Our signature carries X-Road's Ids, policy, SHA-512 cert digest, IssuerSerial, MIME type and OCSP."""
    p = pki()
    root = etree.fromstring(sign_message())
    assert root.tag == "{http://uri.etsi.org/02918/v1.2.1#}XAdESSignatures"
    signature = root[0]
    assert signature.get("Id") == "signature"
    refs = signature.findall(f"{DS}SignedInfo/{DS}Reference")
    assert [(r.get("Id"), r.get("URI"), r.get("Type")) for r in refs] == [
        ("signature-reference-0", "/message.xml", None),
        ("signature-reference-1", "#signed-properties", "http://uri.etsi.org/01903#SignedProperties"),
    ]
    assert refs[0].find(f"{DS}Transforms") is None
    assert refs[0].findtext(f"{DS}DigestValue") == base64.b64encode(hashlib.sha512(MESSAGE_XML).digest()).decode()
    props = signature.find(f".//{XADES}SignedProperties")
    assert props is not None and props.get("Id") == "signed-properties"
    assert props.findtext(f".//{XADES}SigningTime") == "2026-03-04T05:06:07.891Z"
    der = p.cert.public_bytes(serialization.Encoding.DER)
    assert props.findtext(f".//{XADES}CertDigest/{DS}DigestValue") == base64.b64encode(hashlib.sha512(der).digest()).decode()
    assert props.findtext(f".//{DS}X509SerialNumber") == "18"
    assert props.findtext(f".//{DS}X509IssuerName") == p.ca.subject.rfc4514_string()
    assert props.findtext(f".//{XADES}Identifier") == "urn:oid:1.3.6.1.4.1.3516.16.2"
    assert props.findtext(f".//{XADES}MimeType") == "text/xml"
    assert base64.b64decode(signature.findtext(f".//{XADES}EncapsulatedOCSPValue") or "") == p.ocsp


def test_signed_info_is_signed_in_lxmls_canonical_form() -> None:
    """The bytes we sign equal lxml's inclusive C14N of SignedInfo as it sits in the document."""
    p = pki()
    root = etree.fromstring(sign_message())
    signed_info = root.find(f".//{DS}SignedInfo")
    assert signed_info is not None
    value = base64.b64decode(root.findtext(f".//{DS}SignatureValue") or "")
    public_key = p.cert.public_key()
    assert isinstance(public_key, rsa.RSAPublicKey)
    public_key.verify(value, etree.tostring(signed_info, method="c14n"), padding.PKCS1v15(), hashes.SHA512())


@settings(max_examples=50, deadline=None)
@given(st.binary(min_size=0, max_size=2000))
def test_round_trip_over_any_message(message: bytes) -> None:
    """Any message bytes sign and verify; the verified result exposes cert, OCSP and signing time."""
    p = pki()
    verified = verify_signature(sign_message(message), {MESSAGE: message}.get)
    assert verified.signing_cert == p.cert
    assert verified.ocsp_responses == (p.ocsp,)
    assert verified.signing_time == NOW.replace(microsecond=891000)
    assert verified.covered_parts == {MESSAGE}


@settings(max_examples=50, deadline=None)
@given(st.binary(min_size=1, max_size=500), st.data())
def test_any_single_byte_change_of_the_message_is_detected(message: bytes, data: st.DataObject) -> None:
    """Changing any one byte of the signed message fails with invalid_signature_value."""
    signature_xml = sign_message(message)
    tampered = bytearray(message)
    tampered[data.draw(st.integers(0, len(message) - 1))] ^= data.draw(st.integers(1, 255))
    with pytest.raises(InvalidSignatureValue):
        verify_signature(signature_xml, {MESSAGE: bytes(tampered)}.get)


def _signed_regions(document: bytes) -> list[tuple[int, int]]:
    """Byte ranges of what the signature protects: SignedInfo, the signature value, the certificate, SignedProperties.

    (The ``Id`` of ``SignatureValue`` and the layout of ``KeyInfo`` are not signed, in X-Road's format as in ours.)
    """
    regions = []
    for start, end, inner in (
        (b"<ds:SignedInfo>", b"</ds:SignedInfo>", False),
        (b'<ds:SignatureValue Id="signature-value">', b"</ds:SignatureValue>", True),
        (b"<ds:X509Certificate>", b"</ds:X509Certificate>", True),
        (b'<xades:SignedProperties Id="signed-properties">', b"</xades:SignedProperties>", False),
    ):
        first = document.index(start)
        last = document.index(end, first)
        regions.append((first + len(start), last) if inner else (first, last + len(end)))
    return regions


def _signed_content(document: bytes) -> tuple[bytes, ...]:
    """What the signature means: canonical SignedInfo and SignedProperties, signature value, certificate."""
    root = etree.fromstring(document)
    signed_info = root.find(f".//{DS}SignedInfo")
    props = root.find(f".//{XADES}SignedProperties")
    assert signed_info is not None and props is not None
    return (
        etree.tostring(signed_info, method="c14n"),
        etree.tostring(props, method="c14n"),
        base64.b64decode(root.findtext(f".//{DS}SignatureValue") or ""),
        base64.b64decode(root.findtext(f".//{DS}X509Certificate") or ""),
    )


@settings(max_examples=100, deadline=None)
@given(st.data())
def test_any_single_byte_change_of_the_signature_is_detected(data: st.DataObject) -> None:
    """Changing one byte of the signed parts is refused, unless the change is one C14N erases (e.g. tab for space
    between attributes), in which case the signed content is provably the same."""
    document = sign_message()
    start, end = data.draw(st.sampled_from(_signed_regions(document)))
    tampered = bytearray(document)
    tampered[data.draw(st.integers(start, end - 1))] ^= data.draw(st.integers(1, 255))
    try:
        verify_signature(bytes(tampered), {MESSAGE: MESSAGE_XML}.get)
    except (MalformedSignature, InvalidSignatureValue):
        return
    assert _signed_content(bytes(tampered)) == _signed_content(document)


def test_ecdsa_and_rsa_pss_signatures_verify() -> None:
    """ECDSA-SHA512 (raw r||s value) and RSA-PSS signatures round-trip."""
    p = pki()
    part = [MessagePart.of(MESSAGE, MESSAGE_XML)]
    ec_sig = build_signature(part, p.ec_cert, p.ec_key, p.ocsp, NOW, algorithm=sig.ECDSA_SHA512).signature_xml
    assert verify_signature(ec_sig, {MESSAGE: MESSAGE_XML}.get).algorithm == sig.ECDSA_SHA512
    value = base64.b64decode(etree.fromstring(ec_sig).findtext(f".//{DS}SignatureValue") or "")
    assert len(value) == 2 * 48
    pss = build_signature(part, p.cert, p.key, p.ocsp, NOW, algorithm=sig.RSA_PSS_SHA512).signature_xml
    assert verify_signature(pss, {MESSAGE: MESSAGE_XML}.get).algorithm == sig.RSA_PSS_SHA512


def test_a_sign_function_stands_in_for_the_key() -> None:
    """A callable that signs the canonical SignedInfo (e.g. a signer service) makes the same kind of signature."""
    p = pki()
    seen: list[bytes] = []

    def remote_sign(data: bytes) -> bytes:
        seen.append(data)
        return p.ec_key.sign(data, ec.ECDSA(hashes.SHA512()))

    signature_xml = build_signature(
        [MessagePart.of(MESSAGE, MESSAGE_XML)], p.ec_cert, remote_sign, p.ocsp, NOW, algorithm=sig.ECDSA_SHA512
    ).signature_xml
    verify_signature(signature_xml, {MESSAGE: MESSAGE_XML}.get)
    assert seen and seen[0].startswith(b"<ds:SignedInfo xmlns:asic=")


def test_message_with_attachments_is_signed_through_a_hash_chain() -> None:
    """A message with attachments references /sig-hashchainresult.xml; every part must be in the chain."""
    p = pki()
    parts = [MessagePart.of(MESSAGE, MESSAGE_XML), MessagePart.of("/attachment1", b"\x00binary"), MessagePart.of("/attachment2", b"")]
    data = build_signature(parts, p.cert, p.key, p.ocsp, NOW)
    assert data.hash_chain_result is not None and data.hash_chain is not None
    files = {MESSAGE: MESSAGE_XML, "/attachment1": b"\x00binary", "/attachment2": b"",
             SIG_HASH_CHAIN_RESULT: data.hash_chain_result, SIG_HASH_CHAIN: data.hash_chain}
    verified = verify_signature(data.signature_xml, files.get, expected_parts=[MESSAGE, "/attachment1", "/attachment2"])
    assert verified.references == (SIG_HASH_CHAIN_RESULT,)
    assert {MESSAGE, "/attachment1", "/attachment2"} <= verified.covered_parts
    assert b"<xades:MimeType>application/hash-chain-result</xades:MimeType>" in data.signature_xml

    files["/attachment1"] = b"\x01binary"
    with pytest.raises(MalformedSignature) as info:
        verify_signature(data.signature_xml, files.get, expected_parts=[MESSAGE, "/attachment1", "/attachment2"])
    assert info.value.subcode == "invalid_hash_chain_ref"


def test_batch_signature_gives_each_message_its_own_chain() -> None:
    """sign_batch makes one signature; each message verifies with its own chain, not with another's."""
    p = pki()
    messages = [b"<m>%d</m>" % n for n in range(5)]
    batch = [[MessagePart.of(MESSAGE, m)] for m in messages]
    batch[2].append(MessagePart.of("/attachment1", b"att"))
    signed = sign_batch(batch, p.cert, p.key, p.ocsp, NOW)
    assert len({s.signature_xml for s in signed}) == 1 and len({s.hash_chain_result for s in signed}) == 1
    for index, (message, data) in enumerate(zip(messages, signed)):
        assert data.hash_chain_result is not None and data.hash_chain is not None
        files = {MESSAGE: message, SIG_HASH_CHAIN_RESULT: data.hash_chain_result, SIG_HASH_CHAIN: data.hash_chain}
        expected = [MESSAGE]
        if index == 2:
            files["/attachment1"] = b"att"
            expected.append("/attachment1")
        verify_signature(data.signature_xml, files.get, expected_parts=expected)
    other = signed[1].hash_chain
    assert other is not None and signed[0].hash_chain_result is not None
    files = {MESSAGE: messages[0], SIG_HASH_CHAIN_RESULT: signed[0].hash_chain_result, SIG_HASH_CHAIN: other}
    with pytest.raises(MalformedSignature) as info:
        verify_signature(signed[0].signature_xml, files.get)
    assert info.value.subcode == "invalid_hash_chain_ref"


def test_intermediate_certificates_travel_and_are_checked() -> None:
    """Intermediates go to CertificateValues with digest refs; the verifier returns them as extra certs."""
    p = pki()
    signature_xml = sign_message(intermediates=(p.ca,))
    verified = verify_signature(signature_xml, {MESSAGE: MESSAGE_XML}.get)
    assert verified.extra_certs == (p.ca,)
    other = base64.b64encode(p.other_cert.public_bytes(serialization.Encoding.DER))
    ca = base64.b64encode(p.ca.public_bytes(serialization.Encoding.DER))
    with pytest.raises(MalformedSignature):
        verify_signature(signature_xml.replace(b">" + ca + b"<", b">" + other + b"<"), {MESSAGE: MESSAGE_XML}.get)


def test_a_swapped_certificate_is_refused() -> None:
    """A signature whose KeyInfo holds another member's certificate no longer matches SigningCertificate."""
    p = pki()
    signature_xml = sign_message()
    mine = base64.b64encode(p.cert.public_bytes(serialization.Encoding.DER))
    other = base64.b64encode(p.other_cert.public_bytes(serialization.Encoding.DER))
    with pytest.raises(MalformedSignature):
        verify_signature(signature_xml.replace(mine, other), {MESSAGE: MESSAGE_XML}.get)


def test_a_signature_by_another_key_is_an_invalid_signature_value() -> None:
    """Signed with another member's key but naming this certificate: invalid_signature_value."""
    p = pki()
    data = build_signature([MessagePart.of(MESSAGE, MESSAGE_XML)], p.cert, p.other_key, p.ocsp, NOW)
    with pytest.raises(InvalidSignatureValue):
        verify_signature(data.signature_xml, {MESSAGE: MESSAGE_XML}.get)


def test_unsigned_parts_and_missing_data_are_malformed() -> None:
    """A part the signature does not cover, or signed data that is absent, is malformed_signature."""
    signature_xml = sign_message()
    with pytest.raises(MalformedSignature):
        verify_signature(signature_xml, {MESSAGE: MESSAGE_XML}.get, expected_parts=[MESSAGE, "/attachment1"])
    with pytest.raises(MalformedSignature) as info:
        verify_signature(signature_xml, lambda uri: None)
    assert info.value.subcode == "invalid_reference"


def test_hostile_signature_documents_are_malformed() -> None:
    """DOCTYPE/XXE, duplicate Ids, SHA-1 and garbage are all refused as malformed_signature."""
    signature_xml = sign_message()
    cases = [
        b'<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>' + signature_xml.split(b"?>", 1)[1],
        signature_xml.replace(b'Id="signature-value"', b'Id="signed-properties"'),
        signature_xml.replace(b"xmldsig-more#rsa-sha512", b"xmldsig#rsa-sha1"),
        b"not xml at all",
        b"<root/>",
    ]
    for document in cases:
        with pytest.raises(MalformedSignature):
            verify_signature(document, {MESSAGE: MESSAGE_XML}.get)


def test_single_timestamp_is_added_without_breaking_the_signature() -> None:
    """add_signature_timestamp puts the token first in UnsignedSignatureProperties; the signature still verifies."""
    signature_xml = sign_message()
    assert sig.signature_timestamp(signature_xml) is None
    stamped = sig.add_signature_timestamp(signature_xml, b"\x30\x03token")
    verified = verify_signature(stamped, {MESSAGE: MESSAGE_XML}.get)
    assert verified.timestamp_tokens == (b"\x30\x03token",)
    assert sig.signature_timestamp(stamped) == b"\x30\x03token"
    assert sig.signature_value(stamped) == verified.signature_value


def test_building_refuses_misuse() -> None:
    """Naive times, misnamed parts, no OCSP and a key that does not fit the algorithm are refused."""
    p = pki()
    part = [MessagePart.of(MESSAGE, MESSAGE_XML)]
    with pytest.raises(ValueError):
        build_signature(part, p.cert, p.key, p.ocsp, NOW.replace(tzinfo=None))
    with pytest.raises(ValueError):
        build_signature([MessagePart.of("/attachment1", b"x")], p.cert, p.key, p.ocsp, NOW)
    with pytest.raises(ValueError):
        build_signature(part, p.cert, p.key, [], NOW)
    with pytest.raises(ValueError):
        build_signature(part, p.cert, p.key, p.ocsp, NOW, algorithm=sig.ECDSA_SHA512)


# --- xmlsec1, the independent oracle (XROAD-REFERENCE.md §9) ------------------------------------------------


def xmlsec1_verify(folder: Path, signature_xml: bytes, uri: str, data: bytes) -> subprocess.CompletedProcess[bytes]:
    """Run xmlsec1 --verify as §9 gives it, mapping the detached URI to a file."""
    xmlsec1 = shutil.which("xmlsec1")
    assert xmlsec1 is not None, "xmlsec1 is not installed (Debian package xmlsec1; `make deps` installs it)"
    (folder / "signatures.xml").write_bytes(signature_xml)
    (folder / "data").write_bytes(data)
    return subprocess.run(
        [xmlsec1, "--verify", "--insecure", f"--url-map:{uri}", str(folder / "data"),
         "--id-attr:Id", "http://uri.etsi.org/01903/v1.3.2#:SignedProperties", str(folder / "signatures.xml")],
        capture_output=True, timeout=60, check=False,
    )


def test_xmlsec1_accepts_xroads_own_signature(xroad_vectors: Path, tmp_path: Path) -> None:
    """The oracle itself: xmlsec1 accepts valid-signed-message as §9 says."""
    entries = vector_entries(xroad_vectors, "valid-signed-message.asice")
    result = xmlsec1_verify(tmp_path, entries["/META-INF/signatures.xml"], MESSAGE, entries[MESSAGE])
    assert result.returncode == 0, result.stderr.decode()


@pytest.mark.parametrize("algorithm", [sig.RSA_SHA512, sig.ECDSA_SHA512])
def test_xmlsec1_accepts_our_signature_and_rejects_a_changed_byte(
    tmp_path: Path, algorithm: sig.SignatureAlgorithm
) -> None:
    """xmlsec1 verifies our signature over the message, and fails once one byte of the message changes."""
    p = pki()
    cert, key = (p.ec_cert, p.ec_key) if algorithm.kind == "ecdsa" else (p.cert, p.key)
    data = build_signature([MessagePart.of(MESSAGE, MESSAGE_XML)], cert, key, p.ocsp, NOW, algorithm=algorithm)
    accepted = xmlsec1_verify(tmp_path, data.signature_xml, MESSAGE, MESSAGE_XML)
    assert accepted.returncode == 0, accepted.stderr.decode()
    assert b"OK" in accepted.stdout + accepted.stderr
    changed = bytearray(MESSAGE_XML)
    changed[len(changed) // 2] ^= 0x01
    rejected = xmlsec1_verify(tmp_path, data.signature_xml, MESSAGE, bytes(changed))
    assert rejected.returncode != 0


def test_xmlsec1_accepts_our_hash_chain_signature(tmp_path: Path) -> None:
    """xmlsec1 verifies a hash-chain signature over /sig-hashchainresult.xml, and rejects a changed result."""
    p = pki()
    data = build_signature(
        [MessagePart.of(MESSAGE, MESSAGE_XML), MessagePart.of("/attachment1", b"att")], p.cert, p.key, p.ocsp, NOW
    )
    assert data.hash_chain_result is not None
    accepted = xmlsec1_verify(tmp_path, data.signature_xml, SIG_HASH_CHAIN_RESULT, data.hash_chain_result)
    assert accepted.returncode == 0, accepted.stderr.decode()
    rejected = xmlsec1_verify(tmp_path, data.signature_xml, SIG_HASH_CHAIN_RESULT, data.hash_chain_result.replace(b"STEP0", b"STEP1"))
    assert rejected.returncode != 0


def test_bus_errors_only_escape_the_verifier() -> None:
    """Random garbage never raises anything but a BusError."""
    for garbage in (b"", b"\x00" * 10, b"<a:b xmlns:a='x'>", MESSAGE_XML):
        with pytest.raises(BusError):
            verify_signature(garbage, lambda uri: None)


# --- the template reader: our own signatures read from their bytes ------------------------------------------


@functools.cache
def _ec_signer() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _cert_issued_by_name(issuer: str, serial: int) -> x509.Certificate:
    """A P-256 certificate whose issuer name is ``issuer`` (what the template writes as X509IssuerName)."""
    key = _ec_signer()
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "member")]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, issuer)]))
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(NOW - timedelta(days=1))
        .not_valid_after(NOW + timedelta(days=365))
        .sign(key, hashes.SHA256())
    )


_ISSUER_TEXT = st.text(
    st.characters(blacklist_categories=("Cs", "Cc", "Cn")) | st.sampled_from("\t\n\r&<>\"'#,+;=\\"), min_size=1, max_size=30
)


def _tree_only(signature_xml: bytes, files: dict[str, bytes], **kwargs: object) -> object:
    """The verdict of the parser's path alone (the template reader switched off)."""
    with mock.patch.object(sig, "_read_template", lambda *args: None):
        return _verdict(signature_xml, files, **kwargs)


def _verdict(signature_xml: bytes, files: dict[str, bytes], **kwargs: object) -> object:
    """What verify_signature says: the verified result, or the error's class, message, reason and subcode."""
    try:
        return verify_signature(signature_xml, files.get, **kwargs)  # type: ignore[arg-type]
    except BusError as err:
        return (type(err), err.message, err.reason, err.subcode)


@settings(max_examples=60, deadline=None)
@given(
    st.binary(max_size=300),
    st.integers(1, 3),
    st.booleans(),
    st.booleans(),
    _ISSUER_TEXT,
    st.integers(1, 2**159 - 1),
    st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(9998, 1, 1), timezones=st.just(timezone.utc)),
)
def test_the_template_reader_reads_what_the_parser_reads(
    message: bytes, ocsp_count: int, batch: bool, use_ec: bool, issuer: str, serial: int, now: datetime
) -> None:
    """For any message, key, batch, OCSP count, issuer name and time, our signature is read from its bytes, and
    every value equals what lxml reads; its SignedInfo and SignedProperties bytes are lxml's inclusive C14N of
    the parsed elements, so the digests and the value computed over the template are those over the tree."""
    p = pki()
    key: sig.PrivateKey
    if use_ec:
        cert, key, algorithm = _cert_issued_by_name(issuer, serial), _ec_signer(), sig.ECDSA_SHA512
    else:
        cert, key, algorithm = p.cert, p.key, sig.RSA_SHA512
    ocsp_values = [p.ocsp + bytes([n]) for n in range(ocsp_count)]
    messages = [[MessagePart.of(MESSAGE, message)]] + ([[MessagePart.of(MESSAGE, message + b"2")]] if batch else [])
    document = sign_batch(messages, cert, key, ocsp_values, now, algorithm=algorithm)[0].signature_xml

    template = sig._read_template(document, sig.MAX_SIGNATURE_BYTES)
    tree = sig._TreeSignature(sig._read(document, sig.MAX_SIGNATURE_BYTES))
    assert template is not None
    assert template.algorithm == tree.algorithm == algorithm
    assert template.references == tree.references
    assert template.value == tree.value
    assert template.key_info_certs == tree.key_info_certs == (cert,)
    assert template.signing_cert_ref() == tree.signing_cert_ref()
    assert template.signing_time() == tree.signing_time()
    assert template.unsigned() == tree.unsigned() == (tuple(ocsp_values), (), ())
    root = etree.fromstring(document)
    signed_info, props = root.find(f".//{DS}SignedInfo"), root.find(f".//{XADES}SignedProperties")
    assert signed_info is not None and props is not None
    assert template.signed_info_octets() == etree.tostring(signed_info, method="c14n") == tree.signed_info_octets()
    assert template.same_document_octets(template.references[1]) == etree.tostring(props, method="c14n")
    assert template.references[1].digest == hashlib.sha512(etree.tostring(props, method="c14n")).digest()


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_a_changed_byte_anywhere_gets_the_parsers_verdict(data: st.DataObject) -> None:
    """Change, insert or delete one byte anywhere in our signature: the verdict (result, or error with its reason
    and subcode) is exactly the parser's path's verdict, whether or not the template reader took the document."""
    p = pki()
    batch = data.draw(st.booleans())
    if batch:
        signed = sign_batch([[MessagePart.of(MESSAGE, MESSAGE_XML)], [MessagePart.of(MESSAGE, b"<b/>")]], p.cert, p.key, p.ocsp, NOW)[0]
        assert signed.hash_chain_result is not None and signed.hash_chain is not None
        files = {MESSAGE: MESSAGE_XML, SIG_HASH_CHAIN_RESULT: signed.hash_chain_result, SIG_HASH_CHAIN: signed.hash_chain}
        document = signed.signature_xml
    else:
        document, files = sign_message(), {MESSAGE: MESSAGE_XML}
    index = data.draw(st.integers(0, len(document) - 1))
    tampered = bytearray(document)
    action = data.draw(st.sampled_from(["flip", "insert", "delete"]))
    if action == "flip":
        tampered[index] ^= data.draw(st.integers(1, 255))
    elif action == "insert":
        tampered.insert(index, data.draw(st.sampled_from(b" \n\t=+/A0&<>\"'#;x\xc3\xff")))
    else:
        del tampered[index]
    fast, slow = _verdict(bytes(tampered), files), _tree_only(bytes(tampered), files)
    assert fast == slow


def test_the_template_reader_declines_what_it_does_not_write() -> None:
    """Intermediates, a timestamp, another producer's layout, non-canonical base64 or an XML-illegal issuer
    character: the reader declines (None) and the parser judges."""
    p = pki()
    plain = sign_message()
    assert sig._read_template(plain, sig.MAX_SIGNATURE_BYTES) is not None
    assert sig._read_template(plain, len(plain) - 1) is None
    declined = [
        sign_message(intermediates=(p.ca,)),
        sig.add_signature_timestamp(plain, b"\x30\x03tok"),
        plain.replace(b"<ds:X509Data>\n", b"<ds:X509Data>"),
        plain.replace(b"==</ds:SignatureValue>", b"=</ds:SignatureValue>"),
        plain.replace(b"Test &amp; ", b"Test \x01 "),
        plain.replace(b"Test &amp; ", b"Test \xff "),
        plain.replace(b"Test &amp; ", b"Test > "),
        plain.replace(b"Test &amp; ", b"Test &#&amp;D; "),  # removing one escape must not make another
        plain.replace(b"Test &amp; ", b"Test &l&amp;t; "),
        plain.replace(b"Test &amp; ", b"Test &quot; "),
        plain.replace(b'Id="ocsp-response-1"', b'Id="ocsp-response-2"'),
    ]
    for document in declined:
        assert document != plain
        assert sig._read_template(document, sig.MAX_SIGNATURE_BYTES) is None
    for document in declined:
        assert _verdict(document, {MESSAGE: MESSAGE_XML}) == _tree_only(document, {MESSAGE: MESSAGE_XML})


# --- the byte templates against the builder they replaced ----------------------------------------------------


@settings(max_examples=80, deadline=None)
@given(
    st.sampled_from([(MESSAGE, sig.MIME_TEXT_XML), (SIG_HASH_CHAIN_RESULT, sig.MIME_HASH_CHAIN_RESULT)]),
    st.binary(min_size=64, max_size=64),
    st.booleans(),
    _ISSUER_TEXT,
    st.integers(1, 2**159 - 1),
    st.lists(st.binary(min_size=1, max_size=300), min_size=1, max_size=3),
    st.integers(0, 2),
    st.datetimes(min_value=datetime(1000, 1, 1), max_value=datetime(9998, 1, 1), timezones=st.just(timezone.utc)),
)
def test_the_byte_template_writes_the_old_builders_bytes(
    reference: tuple[str, str],
    digest: bytes,
    use_ec: bool,
    issuer: str,
    serial: int,
    ocsp_values: list[bytes],
    intermediate_count: int,
    now: datetime,
) -> None:
    """For any reference, digest, signer, issuer name, OCSP responses, intermediates and time, the template gives
    byte for byte what the per-message string builder (kept in tests/.../xades_reference.py) gave."""
    p = pki()
    key: sig.PrivateKey | sig.SignFunction
    if use_ec:
        cert, algorithm = _cert_issued_by_name(issuer, serial), sig.ECDSA_SHA512

        def key(data: bytes) -> bytes:  # ECDSA is randomised: a fixed (r, s) keeps the two builds comparable
            return encode_dss_signature(int.from_bytes(hashlib.sha256(data).digest(), "big"), 12345)
    else:
        cert, key, algorithm = p.cert, p.key, sig.RSA_SHA512  # PKCS#1 v1.5 is deterministic
    intermediates = (p.ca, p.other_cert)[:intermediate_count]
    uri, mime_type = reference
    ours = sig._build(uri, digest, mime_type, cert, key, ocsp_values, now, algorithm, intermediates)
    theirs = xades_reference.build_document(uri, digest, mime_type, cert, key, ocsp_values, now, algorithm, intermediates)
    assert ours == theirs


def test_the_signing_time_is_written_as_strftime_writes_it() -> None:
    """SigningTime keeps strftime's text, milliseconds truncated, for any offset and early years."""
    for moment in (NOW, datetime(1000, 1, 1, tzinfo=timezone.utc), datetime(999, 12, 31, 23, 59, 59, 999999, tzinfo=timezone.utc),
                   datetime(2026, 1, 1, 0, 30, tzinfo=timezone(timedelta(hours=2)))):
        utc = moment.astimezone(timezone.utc)
        assert sig._signing_time(moment) == utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


@settings(max_examples=100, deadline=None)
@given(st.data())
def test_signature_value_and_references_read_from_the_template_are_the_parsers(data: st.DataObject) -> None:
    """signature_value and referenced_uris give the parser's answer (value, or error) for our signatures and
    for any one-byte change of them."""
    document = bytearray(sign_message())
    if data.draw(st.booleans()):
        document[data.draw(st.integers(0, len(document) - 1))] ^= data.draw(st.integers(1, 255))

    def answers() -> tuple[object, object]:
        found: list[object] = []
        for read in (sig.signature_value, sig.referenced_uris):
            try:
                found.append(read(bytes(document)))
            except BusError as err:
                found.append((type(err), err.message, err.reason))
        return found[0], found[1]

    fast = answers()
    with mock.patch.object(sig, "_read_template", lambda *args: None):
        assert fast == answers()
