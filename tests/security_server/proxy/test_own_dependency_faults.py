"""An outage of the consumer server's own OCSP responder is the server's fault, never the caller's (issue 22 item 2).

The consumer's server signs with the response its :class:`OcspClient` keeps; once the responder has been down for
longer than the freshness window that response is stale. X-Road answers its own signer's failure with the
``Server.ClientProxy`` prefix (``AbstractClientProxyHandler`` prefixes every error that is not the client's), so
the caller gets ``server.clientproxy.incorrect_validation_info``: a SOAP fault (HTTP 200, as every SOAP fault) or
REST error JSON with HTTP 500, and nothing is sent to the provider. The provider's server, unable to sign its
answer for the same reason, answers ``server.serverproxy.incorrect_validation_info``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from cryptography import x509
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.testing import MemoryReactorClock

from central_registry.trust.ca import DevelopmentCA
from central_registry.trust.ocsp_responder import build_ocsp_response
from security_server.core.errors import IncorrectValidationInfo, Origin
from security_server.core.rest import header_value
from security_server.proxy.locallink import LocalPeerLink
from security_server.proxy.peer_trust import PeerAuthVerifier, PeerOcspCache
from security_server.signer.ocsp_client import OcspClient, OwnCertificate
from tests.federation.pki import der
from tests.federation.world import REST, SS2, ExchangeBed, OwnOcsp, is_request
from tests.loopback import REACTOR, coroutine_test, now

FRESHNESS = 3600
OUTAGE = FRESHNESS + 1
RETRY = 60


class ResponderBehindClient(OwnOcsp):
    """``ProxyContext.own_ocsp`` as a running server has it: an :class:`OcspClient` over the CA's responder logic,
    on a clock of its own so that a test can let the kept responses age while the responder is down. The clock
    starts one outage plus one retry interval in the past, so that the client's clock, after the outage and the
    retry, is the real time the receiving server checks the response at."""

    def __init__(self, ca: DevelopmentCA, certs: list[x509.Certificate]) -> None:
        super().__init__(ca)
        self.clock = MemoryReactorClock()  # type: ignore[no-untyped-call]
        self.clock.advance(now().timestamp() - OUTAGE - RETRY)
        self.up = True
        targets = [OwnCertificate(cert, ca.certificate, "http://127.0.0.1:1/") for cert in certs]
        self.client = OcspClient(self.clock, targets, fetch=self._fetch, freshness_seconds=FRESHNESS)
        self.client.start()
        self.clock.advance(0)

    def _fetch(self, target: OwnCertificate, request: bytes) -> Deferred[bytes]:
        if not self.up:
            return fail(ConnectionRefusedError("responder down"))
        return succeed(build_ocsp_response(request, self.ca.state(), datetime.fromtimestamp(self.clock.seconds(), UTC)))

    def __call__(self, cert: x509.Certificate) -> bytes:
        return self.client.current(cert)

    def outage(self, seconds: float) -> None:
        """The responder goes down for ``seconds`` (the client retries and fails meanwhile)."""
        self.up = False
        self.clock.advance(seconds)


class OwnOcspOutageTest(ExchangeBed):
    """The consumer's own OCSP responder down past the freshness window."""

    def consumer_with_stale_ocsp(self) -> ResponderBehindClient:
        """Swap in a consumer whose OCSP client has served through an outage longer than the freshness window."""
        token = self.pki.consumer_token
        certs = [cert for cert in (entry.cert for entry in token.list()) if cert is not None]
        ocsp = ResponderBehindClient(self.pki.ca, certs)
        self.consumer = self.make_consumer(own_ocsp=ocsp)
        self.client_proxy = self.make_client_proxy(self.link, self.consumer)
        ocsp.outage(OUTAGE)
        self.addCleanup(ocsp.client.stop)
        return ocsp

    def test_stale_own_response_is_a_server_side_error(self) -> None:
        """OcspClient.current refuses a stale own response with a server-origin incorrect_validation_info."""
        ocsp = self.consumer_with_stale_ocsp()
        cert = next(entry.cert for entry in self.pki.consumer_token.list() if entry.cert is not None)
        try:
            ocsp(cert)
        except IncorrectValidationInfo as err:
            assert err.origin is Origin.SERVER
            assert err.fault_code == "server.incorrect_validation_info"
        else:
            raise AssertionError("a stale response was served")

    @coroutine_test
    async def test_soap_caller_gets_server_clientproxy_fault(self) -> None:
        """A SOAP caller gets server.clientproxy.incorrect_validation_info, and nothing reaches the provider."""
        self.consumer_with_stale_ocsp()
        await self.assert_fault(is_request(), "server.clientproxy.incorrect_validation_info", status=200)
        self.assert_nothing_sent()

    @coroutine_test
    async def test_rest_caller_gets_http_500(self) -> None:
        """A REST caller gets HTTP 500 with X-Road-Error server.clientproxy.incorrect_validation_info, not 400."""
        self.consumer_with_stale_ocsp()
        target = f"/r1/EE/GOV/70000002/service/{REST.service_code}/pets"
        answer = await self.client_proxy.handle_rest("GET", target, [("X-Road-Client", "EE/GOV/70000001/client")], b"")
        assert answer.status == 500
        assert header_value(answer.headers, "X-Road-Error") == "server.clientproxy.incorrect_validation_info"
        assert json.loads(answer.body)["type"] == "server.clientproxy.incorrect_validation_info"
        self.assert_nothing_sent()


    @coroutine_test
    async def test_exchanges_resume_when_the_responder_returns(self) -> None:
        """When the responder is back, the client's next retry fetches a fresh response and exchanges succeed."""
        ocsp = self.consumer_with_stale_ocsp()
        ocsp.up = True
        ocsp.clock.advance(RETRY)
        status, _, answer = await self.send(is_request())
        assert status == 200
        assert b"Fault" not in answer

    @coroutine_test
    async def test_provider_outage_reaches_the_caller_as_server_serverproxy(self) -> None:
        """The provider's responder down past the window: its server cannot sign the answer, and the caller gets
        server.serverproxy.incorrect_validation_info (REST: HTTP 500), never a client.* code."""
        token = self.pki.provider_token
        certs = [cert for cert in (entry.cert for entry in token.list()) if cert is not None]
        ocsp = ResponderBehindClient(self.pki.ca, certs)
        self.addCleanup(ocsp.client.stop)
        base = f"http://127.0.0.1:{self.port.getHost().port}"
        self.provider = self.make_provider(base, own_ocsp=ocsp)
        self.link = self.make_link(self.make_server_proxy(self.provider))
        self.client_proxy = self.make_client_proxy(self.link)
        ocsp.outage(OUTAGE)
        await self.assert_fault(is_request(), "server.serverproxy.incorrect_validation_info", status=200)
        target = f"/r1/EE/GOV/70000002/service/{REST.service_code}/pets"
        answer = await self.client_proxy.handle_rest("GET", target, [("X-Road-Client", "EE/GOV/70000001/client")], b"")
        assert answer.status == 500
        assert header_value(answer.headers, "X-Road-Error") == "server.serverproxy.incorrect_validation_info"

    @coroutine_test
    async def test_peer_ocsp_responder_down_is_server_clientproxy(self) -> None:
        """The responder for the provider's auth certificate down: server.clientproxy.incorrect_validation_info."""

        def down(url: str, request: bytes) -> Deferred[bytes]:
            return fail(ConnectionRefusedError("responder down"))

        self.link = LocalPeerLink(
            {SS2: self.server_proxy},
            {SS2: der(self.pki.auth_cert(self.pki.provider_token))},
            client_cert_der=der(self.pki.auth_cert(self.pki.consumer_token)),
            verify_peer=PeerAuthVerifier(REACTOR, lambda: self.conf_box[0], PeerOcspCache(REACTOR, fetch=down)),
        )
        self.client_proxy = self.make_client_proxy(self.link)
        await self.assert_fault(is_request(), "server.clientproxy.incorrect_validation_info", status=200)
        self.assert_nothing_sent()
