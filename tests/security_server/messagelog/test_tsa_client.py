"""The TSA client: a token over loopback HTTP from the real TSA Resource, verified; refusals of bad answers,
of a TSA that streams without end, and of one that never answers (on a fake clock)."""

from __future__ import annotations

import hashlib
import tracemalloc
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from twisted.internet.task import Clock
from twisted.trial import unittest
from twisted.web.pages import notFound

from central_registry.trust.ca import DevelopmentCA
from central_registry.trust.tsa import SerialCounter, TsaResource
from security_server.core.errors import IncorrectValidationInfo, InternalError, NetworkError
from security_server.core.timestamp import verify_timestamp_token
from security_server.messagelog.tsa_client import MAX_REPLY_BYTES, TsaClient
from tests.loopback import REACTOR, Served, serve
from tests.federation.pki import make_ca, make_cert, name
from tests.security_server.edge.hostile_servers import EndlessResource, HangingAgent

IMPRINT = hashlib.sha512(b"ts-hashchainresult.xml").digest()


class ShiftedClock:
    """The real reactor, but with ``seconds()`` moved by ``offset``: a TSA whose clock is wrong."""

    def __init__(self, offset: float) -> None:
        self.offset = offset

    def seconds(self) -> float:
        """The reactor's time plus the offset."""
        return float(REACTOR.seconds()) + self.offset

    def __getattr__(self, name: str) -> Any:
        return getattr(REACTOR, name)


class TsaClientTests(unittest.TestCase):
    """Client and TSA Resource on 127.0.0.1, port 0, on trial's real reactor."""

    timeout = 30

    def setUp(self) -> None:
        now = datetime.now(UTC)
        self.directory = Path(self.mktemp())  # type: ignore[no-untyped-call]
        self.ca = DevelopmentCA.init(self.directory, "TSA client CA", now, key_size=2048)
        self.ca.issue_tsa_cert(now)
        self.key, self.tsa_cert = self.ca.tsa_credentials()

    def tsa(self, clock_offset: float = 0.0) -> Served:
        """Serve the TSA (its clock moved by ``clock_offset`` seconds); stopped at cleanup."""
        counter = SerialCounter(self.directory / "tsa-serial.json")
        resource = TsaResource(ShiftedClock(clock_offset), self.key, self.tsa_cert, counter)
        served = serve(resource)
        self.addCleanup(served.port.stopListening)
        return served

    async def test_gets_and_verifies_a_token(self) -> None:
        """A token is fetched over HTTP, checked, and verifies again offline for the same imprint."""
        client = TsaClient(REACTOR, self.tsa().url, [self.tsa_cert], nonce_source=lambda: 4242)
        result = await client.timestamp(IMPRINT)
        assert (result.info.serial, result.info.nonce, result.info.hash_algorithm) == (1, 4242, "sha512")
        again = verify_timestamp_token(result.token_der, IMPRINT, [self.ca.certificate], datetime.now(UTC))
        assert again == result.info

    async def test_sha256_imprints_work_too(self) -> None:
        """The client can ask for SHA-256 imprints."""
        client = TsaClient(REACTOR, self.tsa().url, [self.tsa_cert], hash_algorithm="sha256")
        result = await client.timestamp(hashlib.sha256(b"x").digest())
        assert result.info.hash_algorithm == "sha256"

    async def test_untrusted_tsa_is_refused(self) -> None:
        """A token from a TSA that is not approved is refused with incorrect_validation_info."""
        other = make_cert(make_ca("Other CA", datetime.now(UTC)), name("Other TSA"), datetime.now(UTC), kind="tsa")
        client = TsaClient(REACTOR, self.tsa().url, [other.cert])
        with pytest.raises(IncorrectValidationInfo, match="approved TSA"):
            await client.timestamp(IMPRINT)

    async def test_tsa_clock_far_ahead_is_refused(self) -> None:
        """A TSA whose clock runs ten minutes ahead gives tokens from the future: refused."""
        client = TsaClient(REACTOR, self.tsa(clock_offset=600).url, [self.tsa_cert])
        with pytest.raises(IncorrectValidationInfo, match="future"):
            await client.timestamp(IMPRINT)

    async def test_tsa_clock_far_behind_is_refused(self) -> None:
        """A TSA whose clock runs behind by more than the tolerance gives tokens older than the request: refused."""
        # 200 s behind with a 60 s tolerance (the TSA certificate itself is backdated only 300 s)
        client = TsaClient(REACTOR, self.tsa(clock_offset=-200).url, [self.tsa_cert], skew_seconds=60)
        with pytest.raises(IncorrectValidationInfo, match="older"):
            await client.timestamp(IMPRINT)

    async def test_small_clock_difference_is_tolerated(self) -> None:
        """A TSA a minute off either way is within the skew tolerance."""
        for offset in (60.0, -60.0):
            client = TsaClient(REACTOR, self.tsa(clock_offset=offset).url, [self.tsa_cert])
            assert (await client.timestamp(IMPRINT)).info.imprint == IMPRINT

    async def test_http_error_is_a_network_error(self) -> None:
        """A server that answers 404 is not a TSA: network_error."""
        missing = serve(notFound())
        self.addCleanup(missing.port.stopListening)
        with pytest.raises(NetworkError):
            await TsaClient(REACTOR, missing.url, [self.tsa_cert]).timestamp(IMPRINT)

    async def test_tsa_down_is_a_network_error(self) -> None:
        """A TSA that refuses connections fails with network_error."""
        served = self.tsa()
        await served.port.stopListening()
        with pytest.raises(NetworkError):
            await TsaClient(REACTOR, served.url, [self.tsa_cert]).timestamp(IMPRINT)

    def test_wrong_imprint_length_is_our_bug(self) -> None:
        """Asking for a SHA-512 stamp over a 32-byte digest is refused before anything is sent."""
        with pytest.raises(InternalError):
            TsaClient(REACTOR, "http://127.0.0.1:1/", [self.tsa_cert]).timestamp(b"\x00" * 32)

    async def test_endless_reply_is_cut_off_at_the_cap(self) -> None:
        """A TSA that streams without end: the request fails with network_error past the cap, memory stays small."""
        endless = EndlessResource(b"application/timestamp-reply")
        served = serve(endless)
        self.addCleanup(served.port.stopListening)
        tracemalloc.start()
        try:
            with pytest.raises(NetworkError, match=f"more than {MAX_REPLY_BYTES} bytes"):
                await TsaClient(REACTOR, served.url, [self.tsa_cert]).timestamp(IMPRINT)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert peak < 8 * 1024 * 1024, f"{peak} bytes held while reading a capped reply"
        assert await endless.ended, "the client hung up before the stream ran out"
        assert endless.sent < endless.limit

    def test_tsa_that_never_answers_times_out(self) -> None:
        """On a fake clock: no answer within the timeout is network_error, and the request is cancelled."""
        clock, agent = Clock(), HangingAgent()
        client = TsaClient(clock, "http://127.0.0.1:1/", [self.tsa_cert], agent=agent, timeout_seconds=30)
        outcome: list[Any] = []
        client.timestamp(IMPRINT).addErrback(lambda failure: outcome.append(failure.value))
        clock.advance(29)
        assert not outcome and agent.cancelled == 0
        clock.advance(1)
        assert isinstance(outcome[0], NetworkError) and "did not answer within 30 s" in outcome[0].message
        assert agent.cancelled == 1
