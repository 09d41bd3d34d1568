"""The OCSP client: fetch, cache, refresh schedule, outage behaviour, and a real fetch over loopback HTTP.

Schedule tests run on a MemoryReactorClock with the responder's real answer builder wired in memory (the fetch
function); the loopback tests run the responder Resource (or a hostile one that streams without end) on
127.0.0.1 under trial's real reactor.
"""

from __future__ import annotations

import tracemalloc
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.testing import MemoryReactorClock
from twisted.python.failure import Failure
from twisted.trial import unittest
from twisted.web.pages import notFound

from central_registry.trust.ca import CertKind, DevelopmentCA
from central_registry.trust.ocsp_responder import OcspResource, build_ocsp_response
from security_server.core.certprofile import signing_subject
from security_server.core.errors import CertValidation, IncorrectValidationInfo, NetworkError
from security_server.core.identifiers import ClientId
from security_server.core.trust import CertStatus, read_ocsp_response
from security_server.signer.ocsp_client import MAX_RESPONSE_BYTES, OcspClient, OwnCertificate
from tests.loopback import REACTOR, serve
from tests.federation.pki import make_csr, ocsp_request
from tests.security_server.edge.hostile_servers import EndlessResource, HangingAgent

T0 = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
MEMBER = ClientId("EE", "GOV", "70000310")


@dataclass(frozen=True)
class Setup:
    """A CA directory (made at T0) and one signing certificate from it."""

    directory: Path
    cert: x509.Certificate
    issuer: x509.Certificate


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> Setup:
    """The CA and certificate, made once; tests that revoke copy nothing and use their own CA."""
    directory = tmp_path_factory.mktemp("ocspclient") / "ca"
    ca = DevelopmentCA.init(directory, "Client CA", T0, key_size=2048)
    cert = ca.issue(make_csr(signing_subject(MEMBER, "Gov")), CertKind.SIGN, T0)
    return Setup(directory, cert, ca.certificate)


class InMemoryResponder:
    """The real responder logic behind a fetch function, answering at the clock's time; can be switched off."""

    def __init__(self, clock: MemoryReactorClock, directory: Path) -> None:
        self.clock = clock
        self.ca = DevelopmentCA.open(directory)
        self.up = True
        self.hang = False
        self.calls = 0

    def fetch(self, target: OwnCertificate, request: bytes) -> Deferred[bytes]:
        """Answer ``request`` as the responder would, or fail as a down responder does."""
        self.calls += 1
        if self.hang:
            return Deferred()
        if not self.up:
            return fail(ConnectionRefusedError("responder down"))
        now = datetime.fromtimestamp(self.clock.seconds(), tz=UTC)
        return succeed(build_ocsp_response(request, self.ca.state(), now))


def fake_clock() -> MemoryReactorClock:
    """A fake reactor clock, set to T0."""
    clock = MemoryReactorClock()  # type: ignore[no-untyped-call]
    clock.advance(T0.timestamp())
    return clock


def failure_of(deferred: Deferred[Any]) -> BaseException:
    """The exception a (synchronously) failed Deferred carries."""
    caught: list[BaseException] = []

    def keep(failure: Failure) -> None:
        caught.append(failure.value or Exception("failure without value"))

    deferred.addErrback(keep)
    assert caught, "the Deferred did not fail"
    return caught[0]


def make_client(made: Setup, **options: object) -> tuple[MemoryReactorClock, InMemoryResponder, OcspClient]:
    """A client on a fake clock set to T0, fetching from an in-memory responder."""
    clock = fake_clock()
    responder = InMemoryResponder(clock, made.directory)
    target = OwnCertificate(made.cert, made.issuer, "http://127.0.0.1:1/")
    client = OcspClient(clock, [target], fetch=responder.fetch, **options)  # type: ignore[arg-type]
    return clock, responder, client


def test_nothing_is_served_before_the_first_fetch(made: Setup) -> None:
    """Until a response has been fetched, current() refuses with incorrect_validation_info."""
    _, _, client = make_client(made)
    with pytest.raises(IncorrectValidationInfo, match="no OCSP response"):
        client.current(made.cert)


def test_start_fetches_at_once_and_refreshes_at_half_the_freshness(made: Setup) -> None:
    """start() fetches immediately; the next fetch is scheduled half a freshness window later."""
    clock, responder, client = make_client(made)
    client.start()
    clock.advance(0)
    assert responder.calls == 1
    der = client.current(made.cert)
    status = read_ocsp_response(der, made.cert, made.issuer, datetime.fromtimestamp(clock.seconds(), tz=UTC))
    assert status.status is CertStatus.GOOD
    assert client.next_refresh_in(made.cert) == 1800
    clock.advance(1800)
    assert responder.calls == 2
    client.stop()
    assert client.next_refresh_in(made.cert) is None


def test_failed_fetch_is_retried_sooner(made: Setup) -> None:
    """When the responder is down the client retries after the retry interval, not the refresh interval."""
    clock, responder, client = make_client(made, retry_seconds=60)
    responder.up = False
    client.start()
    clock.advance(0)
    assert client.next_refresh_in(made.cert) == 60
    responder.up = True
    clock.advance(60)
    assert responder.calls == 2
    assert client.current(made.cert)
    client.stop()


def test_cached_response_serves_through_an_outage_until_the_freshness_limit(made: Setup) -> None:
    """With the responder down, the last good response serves until it is 3600 s old, then use is refused."""
    clock, responder, client = make_client(made)
    client.start()
    clock.advance(0)
    responder.up = False
    clock.advance(3599)
    assert client.current(made.cert)
    clock.advance(2)
    with pytest.raises(IncorrectValidationInfo, match="stale"):
        client.current(made.cert)
    client.stop()


def test_hanging_responder_times_out_and_retries(made: Setup) -> None:
    """A fetch that never answers fails after the timeout with network_error, then a retry is scheduled."""
    clock, responder, client = make_client(made, timeout_seconds=10, retry_seconds=60)
    responder.hang = True
    pending = client.refresh(made.cert)
    clock.advance(10)
    assert isinstance(failure_of(pending), NetworkError)


def test_hanging_http_request_times_out_and_is_cancelled(made: Setup) -> None:
    """Through the real HTTP fetch: a responder that never answers fails after the timeout and the request is dropped."""
    clock = fake_clock()
    agent = HangingAgent()
    target = OwnCertificate(made.cert, made.issuer, "http://127.0.0.1:1/")
    client = OcspClient(clock, [target], agent=agent, timeout_seconds=10)
    pending = client.refresh(made.cert)
    clock.advance(9)
    assert agent.cancelled == 0
    clock.advance(1)
    assert isinstance(failure_of(pending), NetworkError)
    assert agent.cancelled == 1


def test_revocation_replaces_a_good_response(tmp_path: Path) -> None:
    """An authentic revoked answer replaces the cached good one: current() then refuses with cert_validation."""
    ca = DevelopmentCA.init(tmp_path / "ca", "Revoking CA", T0, key_size=2048)
    cert = ca.issue(make_csr(signing_subject(MEMBER, "Gov")), CertKind.SIGN, T0)
    clock, responder, client = make_client(Setup(tmp_path / "ca", cert, ca.certificate))
    client.start()
    clock.advance(0)
    assert client.current(cert)
    ca.revoke(cert.serial_number, x509.ReasonFlags.key_compromise, T0)
    clock.advance(1800)
    with pytest.raises(CertValidation, match="revoked"):
        client.current(cert)
    client.stop()


def test_older_answer_does_not_replace_a_newer_one(made: Setup) -> None:
    """A replayed older response is not kept over a newer one."""
    clock = fake_clock()
    state = DevelopmentCA.open(made.directory).state()
    request = ocsp_request(made.cert, made.issuer)
    answers = [build_ocsp_response(request, state, T0), build_ocsp_response(request, state, T0 - timedelta(minutes=5))]
    target = OwnCertificate(made.cert, made.issuer, "http://127.0.0.1:1/")
    client = OcspClient(clock, [target], fetch=lambda t, r: succeed(answers.pop(0)))
    client.refresh(made.cert)
    newest = client.current(made.cert)
    client.refresh(made.cert)  # a responder (or an attacker in the path) replays an older answer
    assert not answers
    assert client.current(made.cert) == newest


def test_answer_for_another_certificate_is_refused(made: Setup, tmp_path: Path) -> None:
    """A fetched response that is not about our certificate fails the refresh and is not cached."""
    other_ca = DevelopmentCA.init(tmp_path / "other", "Other", T0, key_size=2048)
    other = other_ca.issue(make_csr(signing_subject(MEMBER, "Gov")), CertKind.SIGN, T0)
    wrong = build_ocsp_response(ocsp_request(other, other_ca.certificate), other_ca.state(), T0)
    clock = fake_clock()
    target = OwnCertificate(made.cert, made.issuer, "http://127.0.0.1:1/")
    client = OcspClient(clock, [target], fetch=lambda t, r: succeed(wrong))
    assert isinstance(failure_of(client.refresh(made.cert)), IncorrectValidationInfo)
    with pytest.raises(IncorrectValidationInfo, match="no OCSP response"):
        client.current(made.cert)


def test_cache_directory_survives_a_restart(made: Setup, tmp_path: Path) -> None:
    """Responses are written to the cache directory and served by a new client before any fetch."""
    cache = tmp_path / "cache"
    clock, _, client = make_client(made, cache_dir=cache)
    client.refresh(made.cert)
    der = client.current(made.cert)
    assert [p.suffix for p in cache.iterdir()] == [".der"]
    clock2 = fake_clock()
    clock2.advance(600)
    target = OwnCertificate(made.cert, made.issuer, "http://127.0.0.1:1/")
    restarted = OcspClient(clock2, [target], fetch=lambda t, r: Deferred(), cache_dir=cache)
    assert restarted.current(made.cert) == der


def test_unwritable_cache_directory_does_not_fail_the_refresh(made: Setup, tmp_path: Path) -> None:
    """A cache write that fails (disk full, read-only) is logged; the fetched response still serves."""
    blocked = tmp_path / "not-a-directory"
    blocked.write_bytes(b"")
    clock, _, client = make_client(made, cache_dir=blocked / "ocsp")
    client.start()
    clock.advance(0)
    assert client.current(made.cert)
    assert client.next_refresh_in(made.cert) == 1800  # a success: the next fetch is a refresh, not a retry
    client.stop()


def test_stale_cache_is_discarded_at_start(made: Setup, tmp_path: Path) -> None:
    """A cached response already past the freshness limit is not served after a restart."""
    cache = tmp_path / "cache"
    _, _, client = make_client(made, cache_dir=cache)
    client.refresh(made.cert)
    clock2 = fake_clock()
    clock2.advance(7200)
    target = OwnCertificate(made.cert, made.issuer, "http://127.0.0.1:1/")
    restarted = OcspClient(clock2, [target], fetch=lambda t, r: Deferred(), cache_dir=cache)
    with pytest.raises(IncorrectValidationInfo, match="no OCSP response"):
        restarted.current(made.cert)


def test_certificate_not_managed_is_refused(made: Setup, tmp_path: Path) -> None:
    """Asking for a certificate the client does not manage is refused clearly."""
    _, _, client = make_client(made)
    other_ca = DevelopmentCA.init(tmp_path / "o", "O", T0, key_size=2048)
    with pytest.raises(IncorrectValidationInfo, match="no OCSP responses are kept"):
        client.current(other_ca.certificate)


# --- the global configuration's freshness, read at every decision (issue 22 item 1) -----------------------------


class Window:
    """The global configuration's ``ocspFreshnessSeconds`` as the running server reads it: changeable."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def __call__(self) -> float:
        return self.seconds


def test_lowered_freshness_governs_the_next_check(made: Setup) -> None:
    """With the window lowered 3600 -> 60 s under a running client, the next current() judges by 60 s."""
    window = Window(3600)
    clock, responder, client = make_client(made, freshness_seconds=window)
    client.start()
    clock.advance(0)
    responder.up = False
    clock.advance(100)
    assert client.current(made.cert)
    window.seconds = 60
    with pytest.raises(IncorrectValidationInfo, match="stale"):
        client.current(made.cert)
    client.stop()


def test_lowered_freshness_refetches_at_once_on_recheck(made: Setup) -> None:
    """A response already older than half the new window is refetched as soon as recheck() runs, not in 1,800 s."""
    window = Window(3600)
    clock, responder, client = make_client(made, freshness_seconds=window)
    client.start()
    clock.advance(0)
    clock.advance(100)
    assert client.next_refresh_in(made.cert) == 1700
    window.seconds = 60
    client.recheck()
    assert client.next_refresh_in(made.cert) == 0
    clock.advance(0)
    assert responder.calls == 2
    assert client.current(made.cert)
    assert client.next_refresh_in(made.cert) == 30
    client.stop()


def test_lowered_freshness_brings_the_refresh_forward(made: Setup) -> None:
    """A response younger than half the new window is refetched half a new window after it was fetched."""
    window = Window(3600)
    clock, responder, client = make_client(made, freshness_seconds=window)
    client.start()
    clock.advance(0)
    clock.advance(10)
    window.seconds = 60
    client.recheck()
    assert client.next_refresh_in(made.cert) == 20
    clock.advance(20)
    assert responder.calls == 2
    client.stop()


def test_raised_freshness_keeps_the_schedule_and_applies_next_time(made: Setup) -> None:
    """A raised window delays nothing already scheduled; the refresh after it uses half the new window."""
    window = Window(3600)
    clock, responder, client = make_client(made, freshness_seconds=window)
    client.start()
    clock.advance(0)
    window.seconds = 7200
    client.recheck()
    assert client.next_refresh_in(made.cert) == 1800
    clock.advance(1800)
    assert responder.calls == 2
    assert client.next_refresh_in(made.cert) == 3600
    client.stop()


def test_configured_refresh_period_never_outlasts_half_the_window(made: Setup) -> None:
    """A configured period of 1,200 s gives way to half the window when the window drops to 60 s."""
    window = Window(3600)
    clock, _, client = make_client(made, freshness_seconds=window, refresh_seconds=1200)
    client.start()
    clock.advance(0)
    assert client.next_refresh_in(made.cert) == 1200
    window.seconds = 60
    client.recheck()
    assert client.next_refresh_in(made.cert) == 30
    client.stop()


def test_retry_after_a_failure_is_left_to_run(made: Setup) -> None:
    """recheck() does not move a retry scheduled after a failed fetch."""
    window = Window(3600)
    clock, responder, client = make_client(made, freshness_seconds=window, retry_seconds=60)
    responder.up = False
    client.start()
    clock.advance(0)
    window.seconds = 60
    client.recheck()
    assert client.next_refresh_in(made.cert) == 60
    client.stop()


def test_own_evidence_errors_are_server_faults(made: Setup) -> None:
    """Missing or stale own responses are refused with the server origin (not the caller's fault, issue 22 item 2)."""
    clock, responder, client = make_client(made)
    with pytest.raises(IncorrectValidationInfo) as missing:
        client.current(made.cert)
    assert missing.value.fault_code == "server.incorrect_validation_info"
    client.start()
    clock.advance(0)
    responder.up = False
    clock.advance(3601)
    with pytest.raises(IncorrectValidationInfo) as stale:
        client.current(made.cert)
    assert stale.value.fault_code == "server.incorrect_validation_info"
    with pytest.raises(IncorrectValidationInfo) as status:
        client.status(made.cert)
    assert status.value.fault_code == "server.incorrect_validation_info"
    client.stop()


class OcspClientOverHttpTests(unittest.TestCase):
    """The client against the real responder Resource on 127.0.0.1, port 0 (trial's real reactor)."""

    timeout = 30

    def setUp(self) -> None:
        now = datetime.now(UTC)
        self.directory = Path(self.mktemp())  # type: ignore[no-untyped-call]
        self.ca = DevelopmentCA.init(self.directory, "Loopback CA", now, key_size=2048)
        self.ca.issue_ocsp_cert(now)
        self.cert = self.ca.issue(make_csr(signing_subject(MEMBER, "Gov")), CertKind.SIGN, now)
        self.served = serve(OcspResource(REACTOR, self.ca.state))
        self.addCleanup(self.served.port.stopListening)

    def client(self, url: str | None = None) -> OcspClient:
        """A client for our certificate against ``url`` (the responder by default)."""
        target = OwnCertificate(self.cert, self.ca.certificate, url or self.served.url)
        return OcspClient(REACTOR, [target], timeout_seconds=10)

    async def test_fetches_a_good_response_over_http(self) -> None:
        """A POST to the loopback responder yields a good, delegated-signed response that current() serves."""
        client = self.client()
        status = await client.refresh(self.cert)
        assert status.status is CertStatus.GOOD
        responder = self.ca.state().responder_cert
        assert responder is not None and status.responder == responder.subject.rfc4514_string()
        assert client.current(self.cert)

    async def test_revocation_reaches_the_client(self) -> None:
        """After the CA revokes, the next fetch makes current() refuse with cert_validation."""
        client = self.client()
        await client.refresh(self.cert)
        DevelopmentCA.open(self.directory).revoke(self.cert.serial_number, x509.ReasonFlags.superseded, datetime.now(UTC))
        status = await client.refresh(self.cert)
        assert status.status is CertStatus.REVOKED
        with pytest.raises(CertValidation):
            client.current(self.cert)

    async def test_responder_down_is_a_network_error(self) -> None:
        """A responder that refuses connections fails the fetch with network_error."""
        url = self.served.url
        await self.served.port.stopListening()
        with pytest.raises(NetworkError):
            await self.client(url).refresh(self.cert)

    async def test_http_error_is_a_network_error(self) -> None:
        """An HTTP error answer (a real twisted.web 404 page) is not taken as a response."""
        missing = serve(notFound())
        self.addCleanup(missing.port.stopListening)
        with pytest.raises(NetworkError):
            await self.client(missing.url).refresh(self.cert)

    async def test_endless_response_is_cut_off_at_the_cap(self) -> None:
        """A responder that streams without end: the fetch fails with network_error past 64 KiB, memory stays small."""
        endless = EndlessResource(b"application/ocsp-response")
        served = serve(endless)
        self.addCleanup(served.port.stopListening)
        tracemalloc.start()
        try:
            with pytest.raises(NetworkError, match=f"more than {MAX_RESPONSE_BYTES} bytes"):
                await self.client(served.url).refresh(self.cert)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert peak < 8 * 1024 * 1024, f"{peak} bytes held while reading a capped answer"
        assert await endless.ended, "the client hung up before the stream ran out"
        assert endless.sent < endless.limit
