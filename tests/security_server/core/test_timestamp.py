"""RFC 3161: queries, responses and token verification, against our TSA, X-Road's own tokens and openssl."""

from __future__ import annotations

import base64
import hashlib
import re
import subprocess
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from asn1crypto import tsp as asn1_tsp
from cryptography import x509
from hypothesis import given, settings
from hypothesis import strategies as st

from central_registry.trust.tsa import TimestampQuery, build_timestamp_response, build_token, parse_timestamp_query
from security_server.core.errors import IncorrectValidationInfo, InternalError
from security_server.core.timestamp import (
    TimeStampResp,
    build_timestamp_query,
    parse_timestamp_response,
    read_timestamp_token,
    verify_timestamp_token,
)
from tests.federation.pki import Issued, make_ca, make_cert, name

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
IMPRINT = hashlib.sha512(b"hash chain result").digest()


@dataclass(frozen=True)
class Tsa:
    """A CA, a TSA under it, and a TSA under a CA nobody approved."""

    ca: Issued
    tsa: Issued
    foreign_tsa: Issued


@pytest.fixture(scope="module")
def tsa() -> Tsa:
    """The TSA PKI for this module."""
    ca = make_ca("TSA CA", NOW)
    foreign = make_ca("Foreign CA", NOW)
    return Tsa(
        ca=ca,
        tsa=make_cert(ca, name("Test TSA"), NOW, kind="tsa"),
        foreign_tsa=make_cert(foreign, name("Test TSA"), NOW, kind="tsa"),
    )


def token(tsa: Issued, imprint: bytes = IMPRINT, at: datetime = NOW, alg: str = "sha512", nonce: int | None = 7) -> bytes:
    """A token over ``imprint`` from ``tsa`` at ``at``, made by our TSA code."""
    response = build_timestamp_response(build_timestamp_query(imprint, alg, nonce), at, 42, tsa.key, tsa.cert)
    der = parse_timestamp_response(response).token_der
    assert der is not None
    return der


@pytest.fixture(scope="module")
def good_token(tsa: Tsa) -> bytes:
    """One token made once (ECDSA signatures vary, so property tests need a fixed one)."""
    return token(tsa.tsa)


# --- queries ------------------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    alg=st.sampled_from(["sha256", "sha512"]),
    data=st.binary(max_size=64),
    nonce=st.none() | st.integers(0, 2**64),
    cert_req=st.booleans(),
)
def test_query_round_trips(alg: str, data: bytes, nonce: int | None, cert_req: bool) -> None:
    """A query we build is read back by the TSA with the same imprint, nonce and certReq."""
    digest = hashlib.new(alg, data).digest()
    query = parse_timestamp_query(build_timestamp_query(digest, alg, nonce, cert_req))
    assert query == TimestampQuery(alg, digest, nonce, cert_req, None)


def test_query_is_read_by_openssl(tmp_path: Path) -> None:
    """openssl ts reads our query: same algorithm, imprint and nonce."""
    path = tmp_path / "q.tsq"
    path.write_bytes(build_timestamp_query(IMPRINT, "sha512", 0x1234))
    text = subprocess.run(
        ["openssl", "ts", "-query", "-in", str(path), "-text"], capture_output=True, text=True, check=True
    ).stdout
    assert "Hash Algorithm: sha512" in text
    assert "Nonce: 0x1234" in text
    assert "Certificate required: yes" in text


def test_query_with_wrong_digest_length_is_a_programming_error() -> None:
    """Asking for a SHA-512 stamp over a 32-byte digest is our bug, reported as internal_error."""
    with pytest.raises(InternalError):
        build_timestamp_query(b"\x00" * 32, "sha512", None)


# --- X-Road's vectors -----------------------------------------------------------------------------------


def openssl_reply_text(path: Path, *flags: str) -> str:
    """What ``openssl ts -reply -text`` prints for a response or token."""
    return subprocess.run(
        ["openssl", "ts", "-reply", *flags, "-in", str(path), "-text"], capture_output=True, text=True, check=True
    ).stdout


def openssl_imprint(text: str) -> bytes:
    """The "Message data" hex dump of ``openssl ts -text`` as bytes."""
    dump = text.split("Message data:", 1)[1].split("Serial number:", 1)[0]
    rows = re.findall(r"^\s+[0-9a-f]{4} - ((?:[0-9a-f]{2}[ -]){0,15}[0-9a-f]{2})", dump, re.M)
    return bytes.fromhex("".join(rows).replace("-", " ").replace(" ", ""))


def test_xroad_tsp_response_parses_as_openssl_reads_it(xroad_vectors: Path) -> None:
    """X-Road's archives/tsp.response parses; genTime, algorithm, serial and imprint agree with openssl."""
    path = xroad_vectors / "archives" / "tsp.response"
    reply = parse_timestamp_response(path.read_bytes())
    assert reply.granted and reply.status_strings == ("Operation Okay",)
    assert reply.token_der is not None
    info = read_timestamp_token(reply.token_der)
    text = openssl_reply_text(path)
    stamped = re.search(r"Time stamp: (.+)", text)
    assert stamped is not None
    assert info.gen_time == datetime.strptime(stamped.group(1).strip(), "%b %d %H:%M:%S %Y GMT").replace(tzinfo=UTC)
    assert f"Hash Algorithm: {info.hash_algorithm}" in text
    assert f"Serial number: 0x{info.serial:X}" in text
    assert f"Nonce: 0x{info.nonce:08X}" in text
    assert info.imprint == openssl_imprint(text)


def test_xroad_tsp_response_from_an_unapproved_tsa_is_refused(xroad_vectors: Path, tsa: Tsa) -> None:
    """X-Road's 2014 token carries no certificate and its TSA is not approved here: refused, not crashed."""
    reply = parse_timestamp_response((xroad_vectors / "archives" / "tsp.response").read_bytes())
    assert reply.token_der is not None
    info = read_timestamp_token(reply.token_der)
    with pytest.raises(IncorrectValidationInfo, match="approved TSA"):
        verify_timestamp_token(reply.token_der, info.imprint, [tsa.tsa.cert], info.gen_time)


def xroad_test_tsa(xroad_vectors: Path) -> x509.Certificate:
    """The approved TSA certificate of X-Road's test global configuration."""
    params = (xroad_vectors / "globalconf_good2_v3" / "DEV" / "shared-params.xml").read_text("utf-8")
    found = re.search(r"<approvedTSA>.*?<cert>(.*?)</cert>", params, re.S)
    assert found is not None
    return x509.load_pem_x509_certificate(base64.b64decode(found.group(1)))


def test_xroad_batch_token_verifies_against_xroad_tsa(xroad_vectors: Path) -> None:
    """X-Road's batch token verifies with its gconf TSA: imprint = SHA-512 of ts-hashchainresult.xml (§4.5)."""
    with zipfile.ZipFile(xroad_vectors / "asic" / "valid-batch-ts.asice") as container:
        token_der = container.read("META-INF/timestamp.tst")
        imprint = hashlib.sha512(container.read("ts-hashchainresult.xml")).digest()
    info = verify_timestamp_token(token_der, imprint, [xroad_test_tsa(xroad_vectors)], datetime(2025, 1, 1, tzinfo=UTC))
    assert info.hash_algorithm == "sha512"
    assert info.gen_time == datetime(2024, 12, 5, 7, 34, 14, tzinfo=UTC)


def test_xroad_batch_token_for_another_imprint_is_refused(xroad_vectors: Path) -> None:
    """The same real token does not cover another digest."""
    with zipfile.ZipFile(xroad_vectors / "asic" / "valid-batch-ts.asice") as container:
        token_der = container.read("META-INF/timestamp.tst")
    with pytest.raises(IncorrectValidationInfo, match="another imprint"):
        verify_timestamp_token(token_der, IMPRINT, [xroad_test_tsa(xroad_vectors)], datetime(2025, 1, 1, tzinfo=UTC))


# --- our tokens ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("alg", ["sha256", "sha512"])
def test_token_verifies(tsa: Tsa, alg: str) -> None:
    """A token from an approved TSA over our imprint verifies and says what was asked."""
    imprint = hashlib.new(alg, b"record").digest()
    info = verify_timestamp_token(token(tsa.tsa, imprint, alg=alg), imprint, [tsa.tsa.cert], NOW, expected_nonce=7)
    assert (info.gen_time, info.serial, info.hash_algorithm, info.imprint, info.nonce) == (NOW, 42, alg, imprint, 7)


def test_token_for_another_imprint_is_refused(tsa: Tsa, good_token: bytes) -> None:
    """A token over another digest is refused."""
    with pytest.raises(IncorrectValidationInfo, match="another imprint"):
        verify_timestamp_token(good_token, hashlib.sha512(b"other").digest(), [tsa.tsa.cert], NOW)


def test_token_from_untrusted_tsa_is_refused(tsa: Tsa) -> None:
    """A TSA that is not approved (nor issued by an approved certificate) is refused."""
    with pytest.raises(IncorrectValidationInfo, match="approved TSA"):
        verify_timestamp_token(token(tsa.foreign_tsa), IMPRINT, [tsa.tsa.cert, tsa.ca.cert], NOW)


def test_token_from_tsa_issued_by_approved_certificate_is_accepted(tsa: Tsa, good_token: bytes) -> None:
    """A TSA certificate issued by an approved certificate is accepted."""
    assert verify_timestamp_token(good_token, IMPRINT, [tsa.ca.cert], NOW).serial == 42


def test_token_signed_without_critical_timestamping_use_is_refused(tsa: Tsa) -> None:
    """A signer whose timeStamping extendedKeyUsage is not critical is not a TSA (RFC 3161 §2.3)."""
    weak = make_cert(tsa.ca, name("Weak TSA"), NOW, kind="tsa-noncritical")
    query = TimestampQuery("sha512", IMPRINT, None, True, None)
    der = build_token(query, NOW, 1, weak.key, weak.cert)
    with pytest.raises(IncorrectValidationInfo, match="not a TSA"):
        verify_timestamp_token(der, IMPRINT, [weak.cert], NOW)


def test_token_with_broken_signature_is_refused(tsa: Tsa, good_token: bytes) -> None:
    """Changing the signature's last byte makes the token fail."""
    broken = bytearray(good_token)
    broken[-1] ^= 0x01
    with pytest.raises(IncorrectValidationInfo):
        verify_timestamp_token(bytes(broken), IMPRINT, [tsa.tsa.cert], NOW)


def test_token_with_changed_time_is_refused(tsa: Tsa, good_token: bytes) -> None:
    """Changing genTime inside the TSTInfo breaks the message-digest attribute."""
    text = NOW.strftime("%Y%m%d%H%M%S").encode()
    position = good_token.index(text)
    forged = good_token[:position] + b"2025" + good_token[position + 4 :]
    with pytest.raises(IncorrectValidationInfo, match="message-digest"):
        verify_timestamp_token(forged, IMPRINT, [tsa.tsa.cert], NOW)


def test_token_without_certificate_verifies_with_the_approved_one(tsa: Tsa) -> None:
    """certReq false: the token carries no certificate and the approved certificate is used."""
    response = build_timestamp_response(
        build_timestamp_query(IMPRINT, "sha512", None, cert_req=False), NOW, 3, tsa.tsa.key, tsa.tsa.cert
    )
    der = parse_timestamp_response(response).token_der
    assert der is not None
    assert verify_timestamp_token(der, IMPRINT, [tsa.tsa.cert], NOW).serial == 3
    with pytest.raises(IncorrectValidationInfo):
        verify_timestamp_token(der, IMPRINT, [tsa.ca.cert], NOW)  # the signer certificate cannot be found


def test_tsa_certificate_not_valid_at_gen_time_is_refused(tsa: Tsa) -> None:
    """A token made after its TSA certificate expired is refused."""
    old = make_cert(tsa.ca, name("Old TSA"), NOW, kind="tsa", not_after=NOW - timedelta(days=1))
    with pytest.raises(IncorrectValidationInfo, match="not valid"):
        verify_timestamp_token(token(old), IMPRINT, [old.cert], NOW)


def test_wrong_nonce_is_refused(tsa: Tsa, good_token: bytes) -> None:
    """A token that does not echo our nonce is not the answer to our request."""
    with pytest.raises(IncorrectValidationInfo, match="nonce"):
        verify_timestamp_token(good_token, IMPRINT, [tsa.tsa.cert], NOW, expected_nonce=8)


def test_clock_skew_tsa_clock_ahead(tsa: Tsa) -> None:
    """genTime in our future is tolerated within the skew and refused beyond it."""
    verify_timestamp_token(token(tsa.tsa, at=NOW + timedelta(seconds=200)), IMPRINT, [tsa.tsa.cert], NOW)
    with pytest.raises(IncorrectValidationInfo, match="future"):
        verify_timestamp_token(token(tsa.tsa, at=NOW + timedelta(minutes=10)), IMPRINT, [tsa.tsa.cert], NOW)


def test_clock_skew_tsa_clock_behind(tsa: Tsa) -> None:
    """For a token just requested, a genTime far before now is refused; for an old archived token it is fine."""
    old = token(tsa.tsa, at=NOW - timedelta(minutes=10))
    verify_timestamp_token(old, IMPRINT, [tsa.tsa.cert], NOW)
    verify_timestamp_token(old, IMPRINT, [tsa.tsa.cert], NOW, max_age_seconds=900)
    with pytest.raises(IncorrectValidationInfo, match="older"):
        verify_timestamp_token(old, IMPRINT, [tsa.tsa.cert], NOW, max_age_seconds=300)


def test_garbage_is_refused_by_both_readers() -> None:
    """Bytes that are not a response or a token are refused with incorrect_validation_info."""
    for garbage in (b"", b"\x30\x00", b"not der at all", b"\x30\x82\xff\xff"):
        with pytest.raises(IncorrectValidationInfo):
            parse_timestamp_response(garbage)
        with pytest.raises(IncorrectValidationInfo):
            read_timestamp_token(garbage)


def test_rejection_is_parsed_with_its_fail_info() -> None:
    """A rejection parses to status 2 with its failInfo and no token."""
    status = {"status": "rejection", "fail_info": asn1_tsp.PKIFailureInfo({"bad_alg"})}
    reply = parse_timestamp_response(TimeStampResp({"status": status}).dump())
    assert (reply.granted, reply.status, reply.fail_info, reply.token_der) == (False, 2, ("bad_alg",), None)


@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_any_single_byte_change_of_a_token_is_refused(tsa: Tsa, good_token: bytes, data: st.DataObject) -> None:
    """Flipping any one byte of a token makes verification fail with incorrect_validation_info."""
    approved = data.draw(st.sampled_from([[tsa.tsa.cert], [tsa.ca.cert]]))
    position = data.draw(st.integers(0, len(good_token) - 1))
    changed = bytearray(good_token)
    changed[position] ^= data.draw(st.integers(1, 255))
    with pytest.raises(IncorrectValidationInfo):
        verify_timestamp_token(bytes(changed), IMPRINT, approved, NOW)
