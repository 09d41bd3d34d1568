"""The OCSP responder: good / revoked / unknown answers, malformed requests, openssl agreement, HTTP GET and POST."""

from __future__ import annotations

import base64
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp
from twisted.trial import unittest

from central_registry.trust.ca import CaState, CertKind, DevelopmentCA
from central_registry.trust.ocsp_responder import OcspResource, build_ocsp_response, decode_get_path
from security_server.core.certprofile import auth_subject, signing_subject
from security_server.core.identifiers import ClientId, SecurityServerId
from security_server.core.trust import CertStatus, read_ocsp_response
from tests.loopback import REACTOR, http, serve
from tests.federation.pki import make_ca, make_cert, make_csr, name, ocsp_request, write_pem

MEMBER = ClientId("EE", "GOV", "70000310")
SERVER = SecurityServerId(MEMBER, "ss1")


@dataclass(frozen=True)
class Responder:
    """A CA directory with a good and a revoked certificate, and a CA state with and without a delegated responder."""

    directory: Path
    ca: DevelopmentCA
    good: x509.Certificate
    revoked: x509.Certificate
    direct: CaState
    delegated: CaState
    now: datetime


@pytest.fixture(scope="module")
def responder(tmp_path_factory: pytest.TempPathFactory) -> Responder:
    """Built once at the real current time, since openssl checks response times against its own clock."""
    now = datetime.now(UTC)
    directory = tmp_path_factory.mktemp("ocsp") / "ca"
    ca = DevelopmentCA.init(directory, "OCSP Test CA", now, key_size=2048)
    good = ca.issue(make_csr(signing_subject(MEMBER, "Gov")), CertKind.SIGN, now)
    revoked = ca.issue(make_csr(auth_subject(SERVER, "Gov")), CertKind.AUTH, now)
    ca.revoke(revoked.serial_number, x509.ReasonFlags.key_compromise, now - timedelta(minutes=1))
    direct = ca.state()
    ca.issue_ocsp_cert(now)
    return Responder(directory, ca, good, revoked, direct, ca.state(), now)


def answer(responder: Responder, cert: x509.Certificate, state: CaState, **kwargs: float) -> bytes:
    """The responder's answer about ``cert`` at the fixture's time."""
    return build_ocsp_response(ocsp_request(cert, responder.ca.certificate), state, responder.now, **kwargs)


@pytest.mark.parametrize("delegated", [False, True], ids=["ca-signed", "delegated"])
def test_good_and_revoked_answers(responder: Responder, delegated: bool) -> None:
    """Our own reader sees good for the good certificate and revoked with time and reason for the other."""
    state = responder.delegated if delegated else responder.direct
    ca_cert = responder.ca.certificate
    good = read_ocsp_response(answer(responder, responder.good, state), responder.good, ca_cert, responder.now)
    assert good.status is CertStatus.GOOD
    revoked = read_ocsp_response(answer(responder, responder.revoked, state), responder.revoked, ca_cert, responder.now)
    assert revoked.status is CertStatus.REVOKED
    assert revoked.revocation_reason == "keyCompromise"
    assert revoked.revocation_time == (responder.now - timedelta(minutes=1)).replace(microsecond=0)
    expected = state.responder_cert if delegated else ca_cert
    assert expected is not None and good.responder == expected.subject.rfc4514_string()


def test_update_times(responder: Responder) -> None:
    """thisUpdate is now and nextUpdate lies the validity period later."""
    der = answer(responder, responder.good, responder.direct, validity_seconds=1200)
    single = ocsp.load_der_ocsp_response(der)
    assert single.this_update_utc == responder.now.replace(microsecond=0)
    assert single.next_update_utc == single.this_update_utc + timedelta(seconds=1200)


def test_unknown_serial_is_answered_unknown(responder: Responder) -> None:
    """A serial this CA never issued is "unknown"."""
    stranger = make_cert(make_ca("OCSP Test CA", responder.now), name("stranger"), responder.now)
    request = ocsp_request(stranger.cert, responder.ca.certificate)  # right CA key hashes, serial never issued
    response = ocsp.load_der_ocsp_response(build_ocsp_response(request, responder.direct, responder.now))
    assert response.certificate_status is ocsp.OCSPCertStatus.UNKNOWN


def test_other_issuer_is_answered_unknown(responder: Responder) -> None:
    """A request naming another issuer is "unknown" even if the serial exists here (RFC 6960 §2.2)."""
    other = make_ca("Other CA", responder.now)
    request = ocsp_request(responder.good, other.cert)
    response = ocsp.load_der_ocsp_response(build_ocsp_response(request, responder.direct, responder.now))
    assert response.certificate_status is ocsp.OCSPCertStatus.UNKNOWN


def test_sha256_cert_id_is_answered(responder: Responder) -> None:
    """A request with a SHA-256 CertID is answered with the same CertID."""
    request = ocsp_request(responder.good, responder.ca.certificate, hashes.SHA256())
    der = build_ocsp_response(request, responder.direct, responder.now)
    status = read_ocsp_response(der, responder.good, responder.ca.certificate, responder.now)
    assert status.status is CertStatus.GOOD


@pytest.mark.parametrize(
    "request_der",
    [b"", b"garbage", b"\x30\x00", b"\x30\x82\x01\x00\x30", b"\x00" * 100],
    ids=["empty", "text", "empty-sequence", "truncated", "zeros"],
)
def test_malformed_request_gets_malformed_request_status(responder: Responder, request_der: bytes) -> None:
    """Bytes that are not an OCSP request get responseStatus malformedRequest, not a crash."""
    response = ocsp.load_der_ocsp_response(build_ocsp_response(request_der, responder.direct, responder.now))
    assert response.response_status is ocsp.OCSPResponseStatus.MALFORMED_REQUEST


def test_nonce_is_echoed(responder: Responder) -> None:
    """A request's nonce comes back in the response (RFC 8954); none is required."""
    nonce = x509.OCSPNonce(b"0123456789abcdef")
    request = (
        ocsp.OCSPRequestBuilder()
        .add_certificate(responder.good, responder.ca.certificate, hashes.SHA1())
        .add_extension(nonce, critical=False)
        .build()
        .public_bytes(serialization.Encoding.DER)
    )
    response = ocsp.load_der_ocsp_response(build_ocsp_response(request, responder.direct, responder.now))
    assert response.extensions.get_extension_for_class(x509.OCSPNonce).value == nonce


def openssl_ocsp(tmp_path: Path, responder: Responder, cert: x509.Certificate, state: CaState) -> str:
    """What ``openssl ocsp -respin`` says about our answer for ``cert``, verifying against the CA (or -VAfile)."""
    (tmp_path / "resp.der").write_bytes(answer(responder, cert, state))
    ca_pem = write_pem(tmp_path / "ca.pem", responder.ca.certificate)
    cert_pem = write_pem(tmp_path / "cert.pem", cert)
    command = ["openssl", "ocsp", "-respin", str(tmp_path / "resp.der"), "-issuer", str(ca_pem)]
    command += ["-cert", str(cert_pem), "-CAfile", str(ca_pem), "-resp_text"]
    if state.responder_cert is not None:
        command += ["-VAfile", str(write_pem(tmp_path / "va.pem", state.responder_cert))]
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    return result.stdout + result.stderr


@pytest.mark.parametrize("delegated", [False, True], ids=["ca-signed", "delegated"])
def test_openssl_verifies_good_answer(tmp_path: Path, responder: Responder, delegated: bool) -> None:
    """openssl ocsp verifies our good answer and reads status good."""
    output = openssl_ocsp(tmp_path, responder, responder.good, responder.delegated if delegated else responder.direct)
    assert "Response verify OK" in output
    assert "cert.pem: good" in output


@pytest.mark.parametrize("delegated", [False, True], ids=["ca-signed", "delegated"])
def test_openssl_verifies_revoked_answer(tmp_path: Path, responder: Responder, delegated: bool) -> None:
    """openssl ocsp verifies our revoked answer and reads status revoked with its reason."""
    output = openssl_ocsp(tmp_path, responder, responder.revoked, responder.delegated if delegated else responder.direct)
    assert "Response verify OK" in output
    assert "cert.pem: revoked" in output
    assert "Reason: keyCompromise" in output


def test_get_path_decodes_both_alphabets() -> None:
    """The GET form takes standard or URL-safe base64, with or without padding."""
    data = bytes(range(256))
    assert decode_get_path(base64.b64encode(data)) == data
    assert decode_get_path(base64.urlsafe_b64encode(data).rstrip(b"=")) == data
    ends_in_slash = b"\xff\xff\xff"  # base64 "////": a slash at either end is data, not a separator
    assert decode_get_path(base64.b64encode(ends_in_slash)) == ends_in_slash
    assert decode_get_path(b"") is None
    assert decode_get_path(b"!!not base64!!") is None


class OcspHttpTests(unittest.TestCase):
    """The responder served by twisted.web on 127.0.0.1, port 0, on trial's real reactor."""

    timeout = 30

    def setUp(self) -> None:
        now = datetime.now(UTC)
        self.directory = Path(self.mktemp())  # type: ignore[no-untyped-call]
        self.ca = DevelopmentCA.init(self.directory, "HTTP CA", now, key_size=2048)
        self.cert = self.ca.issue(make_csr(signing_subject(MEMBER, "Gov")), CertKind.SIGN, now)
        self.served = serve(OcspResource(REACTOR, self.ca.state))
        self.addCleanup(self.served.port.stopListening)

    def request_der(self) -> bytes:
        """An OCSP request for the test certificate."""
        return ocsp_request(self.cert, self.ca.certificate)

    async def test_post_is_answered(self) -> None:
        """POST application/ocsp-request gets application/ocsp-response saying good."""
        reply = await http(b"POST", self.served.url, self.request_der(), b"application/ocsp-request")
        assert (reply.code, reply.content_type) == (200, b"application/ocsp-response")
        status = read_ocsp_response(reply.body, self.cert, self.ca.certificate, datetime.now(UTC))
        assert status.status is CertStatus.GOOD

    async def test_get_is_answered(self) -> None:
        """GET with the URL-encoded base64 request in the path is answered like POST."""
        path = quote(base64.b64encode(self.request_der()).decode(), safe="")
        reply = await http(b"GET", self.served.url + path)
        assert (reply.code, reply.content_type) == (200, b"application/ocsp-response")
        status = read_ocsp_response(reply.body, self.cert, self.ca.certificate, datetime.now(UTC))
        assert status.status is CertStatus.GOOD

    async def test_revocation_by_the_ca_shows_at_once(self) -> None:
        """A revocation written by the CA (e.g. from the CLI) is answered on the next request."""
        DevelopmentCA.open(self.directory).revoke(self.cert.serial_number, x509.ReasonFlags.superseded, datetime.now(UTC))
        reply = await http(b"POST", self.served.url, self.request_der(), b"application/ocsp-request")
        status = read_ocsp_response(reply.body, self.cert, self.ca.certificate, datetime.now(UTC))
        assert status.status is CertStatus.REVOKED

    async def test_garbage_post_gets_malformed_request(self) -> None:
        """A POST body that is not a request is answered with responseStatus malformedRequest."""
        reply = await http(b"POST", self.served.url, b"nonsense", b"application/ocsp-request")
        assert reply.code == 200
        assert ocsp.load_der_ocsp_response(reply.body).response_status is ocsp.OCSPResponseStatus.MALFORMED_REQUEST

    async def test_garbage_get_gets_malformed_request(self) -> None:
        """A GET path that is not base64 of a request is answered with malformedRequest."""
        reply = await http(b"GET", self.served.url + "%25%25not-base64")
        assert reply.code == 200
        assert ocsp.load_der_ocsp_response(reply.body).response_status is ocsp.OCSPResponseStatus.MALFORMED_REQUEST

    async def test_oversized_post_is_http_413(self) -> None:
        """A body far larger than any OCSP request is refused unread with HTTP 413."""
        reply = await http(b"POST", self.served.url, b"\x30" * 100_000, b"application/ocsp-request")
        assert reply.code == 413

    async def test_wrong_content_type_is_http_400(self) -> None:
        """A POST that is not application/ocsp-request is refused with HTTP 400."""
        reply = await http(b"POST", self.served.url, b"x", b"text/plain")
        assert reply.code == 400

    async def test_other_methods_are_http_405(self) -> None:
        """Methods other than GET and POST are refused with HTTP 405 and an Allow header."""
        for method in (b"PUT", b"DELETE"):
            reply = await http(method, self.served.url, b"x", b"application/ocsp-request")
            assert reply.code == 405


def test_expired_delegate_falls_back_to_the_ca(responder: Responder) -> None:
    """When the delegated responder certificate is not valid now, the CA signs instead (no outage)."""
    later = responder.now + timedelta(days=400)  # the delegate is valid for 365 days, the CA for ten years
    der = build_ocsp_response(ocsp_request(responder.good, responder.ca.certificate), responder.delegated, later)
    status = read_ocsp_response(der, responder.good, responder.ca.certificate, later)
    assert status.responder == responder.ca.certificate.subject.rfc4514_string()
