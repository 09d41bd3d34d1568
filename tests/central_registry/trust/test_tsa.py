"""The TSA: granted tokens that openssl and rfc3161-client accept, rejections with failInfo, serials, HTTP."""

from __future__ import annotations

import hashlib
import subprocess
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
import rfc3161_client
from asn1crypto import tsp as asn1_tsp
from cryptography import x509
from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial import unittest

from central_registry.trust.ca import DevelopmentCA
from central_registry.trust.tsa import (
    SerialCounter,
    TsaResource,
    build_timestamp_response,
)
from security_server.core.errors import ConfigurationError
from security_server.core.timestamp import (
    build_timestamp_query,
    parse_timestamp_response,
    verify_timestamp_token,
)
from tests.loopback import REACTOR, Reply, http, serve
from tests.federation.pki import PrivateKey, make_ca, make_cert, name, write_pem

DATA = b"the message log's hash-chain result"
QUERY = b"application/timestamp-query"


@dataclass(frozen=True)
class Tsa:
    """The development CA with its TSA certificate, at the real current time (openssl checks validity)."""

    ca: DevelopmentCA
    key: PrivateKey
    cert: x509.Certificate
    now: datetime


@pytest.fixture(scope="module")
def tsa(tmp_path_factory: pytest.TempPathFactory) -> Tsa:
    """A CA and TSA made once for this module."""
    now = datetime.now(UTC)
    ca = DevelopmentCA.init(tmp_path_factory.mktemp("tsa") / "ca", "TSA Test CA", now, key_size=2048)
    ca.issue_tsa_cert(now)
    key, cert = ca.tsa_credentials()
    assert isinstance(key, PrivateKey)
    return Tsa(ca, key, cert, now)


def respond(tsa: Tsa, query: bytes, serial: int = 1) -> bytes:
    """The TSA's answer to ``query`` at the fixture's time."""
    return build_timestamp_response(query, tsa.now, serial, tsa.key, tsa.cert)


def rejection(response: bytes) -> tuple[int, tuple[str, ...]]:
    """(status, failInfo) of a response."""
    reply = parse_timestamp_response(response)
    return reply.status, reply.fail_info


@pytest.mark.parametrize("alg", ["sha256", "sha512"])
def test_grants_sha256_and_sha512(tsa: Tsa, alg: str) -> None:
    """A query with a SHA-256 or SHA-512 imprint gets a token our verifier accepts."""
    imprint = hashlib.new(alg, DATA).digest()
    reply = parse_timestamp_response(respond(tsa, build_timestamp_query(imprint, alg, 99), serial=5))
    assert reply.granted and reply.token_der is not None
    info = verify_timestamp_token(reply.token_der, imprint, [tsa.ca.certificate], tsa.now, expected_nonce=99)
    assert (info.serial, info.hash_algorithm, info.nonce) == (5, alg, 99)


def test_rfc3161_client_verifies_our_token(tsa: Tsa) -> None:
    """The independent rfc3161-client library verifies our token and its chain to the CA."""
    response = respond(tsa, build_timestamp_query(hashlib.sha512(DATA).digest(), "sha512", 1))
    verifier = rfc3161_client.VerifierBuilder().add_root_certificate(tsa.ca.certificate).build()
    assert verifier.verify_message(rfc3161_client.decode_timestamp_response(response), DATA)


def openssl_ts_verify(tmp_path: Path, tsa: Tsa, reply: bytes, data: bytes) -> subprocess.CompletedProcess[str]:
    """Run ``openssl ts -verify -data`` on ``reply`` for ``data``, trusting the CA and given the TSA cert."""
    (tmp_path / "reply.tsr").write_bytes(reply)
    (tmp_path / "data.bin").write_bytes(data)
    command = ["openssl", "ts", "-verify", "-data", str(tmp_path / "data.bin"), "-in", str(tmp_path / "reply.tsr")]
    command += ["-CAfile", str(write_pem(tmp_path / "ca.pem", tsa.ca.certificate))]
    command += ["-untrusted", str(write_pem(tmp_path / "tsa.pem", tsa.cert))]
    return subprocess.run(command, capture_output=True, text=True)


@pytest.mark.parametrize("alg", ["sha256", "sha512"])
def test_openssl_accepts_our_token(tmp_path: Path, tsa: Tsa, alg: str) -> None:
    """openssl ts -verify accepts our token for the data it covers."""
    reply = respond(tsa, build_timestamp_query(hashlib.new(alg, DATA).digest(), alg, 1234))
    result = openssl_ts_verify(tmp_path, tsa, reply, DATA)
    assert result.returncode == 0, result.stderr
    assert "Verification: OK" in result.stdout


def test_openssl_rejects_a_token_for_other_data(tmp_path: Path, tsa: Tsa) -> None:
    """openssl ts -verify refuses the same token over a different imprint."""
    reply = respond(tsa, build_timestamp_query(hashlib.sha512(DATA).digest(), "sha512", 1234))
    result = openssl_ts_verify(tmp_path, tsa, reply, DATA + b"!")
    assert result.returncode != 0
    assert "Verification: FAILED" in result.stdout
    assert "message imprint mismatch" in result.stderr


def test_openssl_reads_a_rejection(tmp_path: Path, tsa: Tsa) -> None:
    """openssl reads our rejection of garbage as status rejection with failInfo badRequest."""
    (tmp_path / "reject.tsr").write_bytes(respond(tsa, b"garbage"))
    command = ["openssl", "ts", "-reply", "-in", str(tmp_path / "reject.tsr"), "-text"]
    text = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    assert "Status: Rejected." in text
    assert "Failure info: transaction not permitted or supported" in text  # openssl's words for badRequest


@pytest.mark.parametrize(
    "query",
    [b"", b"garbage", b"\x30\x00", b"\x30\x82\x01\x00\x02\x01\x01", b"\x00" * 64],
    ids=["empty", "text", "empty-sequence", "truncated", "zeros"],
)
def test_garbage_query_is_rejected_with_bad_request(tsa: Tsa, query: bytes) -> None:
    """Bytes that are not a TimeStampReq get status rejection with failInfo badRequest."""
    assert rejection(respond(tsa, query)) == (2, ("bad_request",))


def test_other_hash_is_rejected_with_bad_alg(tsa: Tsa) -> None:
    """A SHA-1 (or SHA-384) imprint is refused with badAlg."""
    for alg in ("sha1", "sha384"):
        digest = hashlib.new(alg, DATA).digest()
        query = asn1_tsp.TimeStampReq(
            {"version": "v1", "message_imprint": {"hash_algorithm": {"algorithm": alg}, "hashed_message": digest}}
        ).dump()
        assert rejection(respond(tsa, query)) == (2, ("bad_alg",))


def test_wrong_imprint_length_is_rejected(tsa: Tsa) -> None:
    """A SHA-512-labelled imprint of 32 bytes is refused with badDataFormat."""
    query = asn1_tsp.TimeStampReq(
        {"version": "v1", "message_imprint": {"hash_algorithm": {"algorithm": "sha512"}, "hashed_message": b"x" * 32}}
    ).dump()
    assert rejection(respond(tsa, query)) == (2, ("bad_data_format",))


def test_other_version_is_rejected(tsa: Tsa) -> None:
    """A TimeStampReq version other than 1 is a bad request."""
    query = asn1_tsp.TimeStampReq(
        {"version": 2, "message_imprint": {"hash_algorithm": {"algorithm": "sha256"}, "hashed_message": b"x" * 32}}
    ).dump()
    assert rejection(respond(tsa, query)) == (2, ("bad_request",))


def test_unknown_policy_is_rejected(tsa: Tsa) -> None:
    """A policy this TSA does not offer is refused with unacceptedPolicy."""
    query = build_timestamp_query(hashlib.sha256(DATA).digest(), "sha256", None, policy="1.2.3.4")
    assert rejection(respond(tsa, query)) == (2, ("unaccepted_policy",))


def test_request_extensions_are_rejected(tsa: Tsa) -> None:
    """A query with extensions is refused with unacceptedExtension (we support none)."""
    query = asn1_tsp.TimeStampReq(
        {
            "version": "v1",
            "message_imprint": {"hash_algorithm": {"algorithm": "sha256"}, "hashed_message": b"x" * 32},
            "extensions": [{"extn_id": "1.2.3.4", "critical": False, "extn_value": b"\x05\x00"}],
        }
    ).dump()
    assert rejection(respond(tsa, query)) == (2, ("unaccepted_extensions",))


def test_tsa_certificate_without_critical_eku_is_refused(tsa: Tsa) -> None:
    """The TSA will not sign with a certificate lacking the critical timeStamping use."""
    other = make_cert(make_ca("CA", tsa.now), name("TSA"), tsa.now, kind="tsa-noncritical")
    with pytest.raises(ConfigurationError):
        build_timestamp_response(build_timestamp_query(b"x" * 32, "sha256"), tsa.now, 1, other.key, other.cert)


@settings(max_examples=50, deadline=None)
@given(alg=st.sampled_from(["sha256", "sha512"]), data=st.binary(max_size=100), nonce=st.none() | st.integers(0, 2**63))
def test_every_granted_token_verifies_for_its_imprint(tsa: Tsa, alg: str, data: bytes, nonce: int | None) -> None:
    """For any imprint and nonce, the token verifies for that imprint and nonce."""
    imprint = hashlib.new(alg, data).digest()
    reply = parse_timestamp_response(respond(tsa, build_timestamp_query(imprint, alg, nonce)))
    assert reply.token_der is not None
    info = verify_timestamp_token(reply.token_der, imprint, [tsa.cert], tsa.now, expected_nonce=nonce)
    assert info.imprint == imprint and info.nonce == nonce


def test_serial_counter_is_persistent_and_monotonic(tmp_path: Path) -> None:
    """Serials count up from 1, continue after reopening the file, and never repeat across threads."""
    path = tmp_path / "tsa-serial.json"
    counter = SerialCounter(path)
    assert [counter.next(), counter.next()] == [1, 2]
    reopened = SerialCounter(path)
    seen: list[int] = []
    lock = threading.Lock()

    def take() -> None:
        for _ in range(10):
            value = reopened.next()
            with lock:
                seen.append(value)

    threads = [threading.Thread(target=take) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(seen) == list(range(3, 43))


def test_corrupt_serial_file_is_reported(tmp_path: Path) -> None:
    """An unreadable serial file stops the TSA rather than restarting serials at 1."""
    path = tmp_path / "tsa-serial.json"
    path.write_text("{broken")
    with pytest.raises(ConfigurationError):
        SerialCounter(path).next()


class TsaHttpTests(unittest.TestCase):
    """The TSA served by twisted.web on 127.0.0.1, port 0, on trial's real reactor."""

    timeout = 30

    def setUp(self) -> None:
        now = datetime.now(UTC)
        directory = Path(self.mktemp())  # type: ignore[no-untyped-call]
        self.ca = DevelopmentCA.init(directory, "HTTP TSA CA", now, key_size=2048)
        self.ca.issue_tsa_cert(now)
        key, self.tsa_cert = self.ca.tsa_credentials()
        resource = TsaResource(REACTOR, key, self.tsa_cert, SerialCounter(directory / "tsa-serial.json"))
        self.served = serve(resource)
        self.addCleanup(self.served.port.stopListening)

    def verify(self, reply: Reply, imprint: bytes, nonce: int | None = None) -> int:
        """The serial of the verified token in ``reply``."""
        token = parse_timestamp_response(reply.body).token_der
        assert token is not None
        return verify_timestamp_token(token, imprint, [self.tsa_cert], datetime.now(UTC), expected_nonce=nonce).serial

    async def test_query_gets_a_token(self) -> None:
        """POST application/timestamp-query gets application/timestamp-reply with a token for our imprint."""
        imprint = hashlib.sha512(DATA).digest()
        reply = await http(b"POST", self.served.url, build_timestamp_query(imprint, "sha512", 5), QUERY)
        assert (reply.code, reply.content_type) == (200, b"application/timestamp-reply")
        assert self.verify(reply, imprint, 5) == 1

    async def test_serials_are_unique_and_refusals_spend_none(self) -> None:
        """Consecutive tokens get consecutive serials; a refused query spends no serial."""
        imprint = hashlib.sha256(DATA).digest()
        query = build_timestamp_query(imprint, "sha256", None)
        first = await http(b"POST", self.served.url, query, QUERY)
        refused = await http(b"POST", self.served.url, b"garbage", QUERY)
        second = await http(b"POST", self.served.url, query, QUERY)
        assert not parse_timestamp_response(refused.body).granted
        assert [self.verify(first, imprint), self.verify(second, imprint)] == [1, 2]

    async def test_garbage_gets_rejection_bad_request(self) -> None:
        """A body that is not a query is answered with a rejection carrying badRequest."""
        reply = await http(b"POST", self.served.url, b"\x30\x03garbage", QUERY)
        assert (reply.code, reply.content_type) == (200, b"application/timestamp-reply")
        assert parse_timestamp_response(reply.body).fail_info == ("bad_request",)

    async def test_wrong_content_type_is_http_400(self) -> None:
        """A POST that is not application/timestamp-query is refused with HTTP 400."""
        reply = await http(b"POST", self.served.url, b"x", b"application/octet-stream")
        assert reply.code == 400

    async def test_other_methods_are_http_405(self) -> None:
        """GET and PUT are refused with HTTP 405."""
        for method in (b"GET", b"PUT"):
            reply = await http(method, self.served.url)
            assert reply.code == 405
