"""Peer trust at the edge: OCSP for peers' auth certs from the real development responder, and the client verifier."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Callable, cast

from twisted.internet import defer, task
from twisted.internet import reactor as _reactor
from twisted.internet.defer import Deferred, succeed
from twisted.python.failure import Failure
from twisted.trial import unittest
from twisted.web.server import Request, Site

from central_registry.trust.ocsp_responder import OcspResource
from security_server.core.errors import CertValidation, IncorrectValidationInfo, SslAuthenticationFailed
from security_server.core.globalconf import GlobalConf
from security_server.core.peerauth import AuthenticatedPeer, check_peer_auth_cert, check_peer_ocsp, identify_peer
from security_server.proxy.mtls import MtlsPeerLink, server_context_factory
from security_server.proxy.context import ProxyContext
from security_server.proxy.peer_trust import PeerAuthVerifier, PeerOcspCache, own_auth_ocsp
from security_server.proxy.peerlink import PeerAddress, PeerRequest, PeerResponse
from security_server.proxy.server_proxy_site import ServerProxyResource, server_proxy_site
from tests.federation.ca import ocsp_for
from tests.federation.peers import CONSUMER, SS1, SS2, SS3, make_conf, peer_world
from tests.loopback import ConnectionWatch, free_port

reactor: Any = _reactor


def failure_of(deferred: Deferred[Any]) -> Deferred[BaseException]:
    """A Deferred firing with the exception ``deferred`` failed with (an AssertionError if it succeeded)."""

    def succeeded(result: object) -> BaseException:
        raise AssertionError(f"expected a failure, got {result!r}")

    def failed(failure: Failure) -> BaseException:
        assert failure.value is not None
        return failure.value

    return deferred.addCallbacks(succeeded, failed)


class CountingOcspResource(OcspResource):
    """The development CA's OCSP responder, counting the requests it answers."""

    requests = 0

    def render_POST(self, request: Request) -> bytes | int:
        """Count, then answer."""
        CountingOcspResource.requests += 1
        return super().render_POST(request)


class PeerOcspCacheTest(unittest.TestCase):
    """PeerOcspCache and PeerAuthVerifier against the real responder on loopback."""

    timeout = 30

    def setUp(self) -> None:
        self.world = peer_world()
        CountingOcspResource.requests = 0
        site = Site(CountingOcspResource(reactor, self.world.ca.state))  # type: ignore[no-untyped-call]
        self.port = reactor.listenTCP(0, site, interface="127.0.0.1")
        self.addCleanup(self.port.stopListening)
        self.conf = make_conf(self.world, ocsp_url=f"http://127.0.0.1:{self.port.getHost().port}/")
        self.cache = PeerOcspCache(reactor, timeout_seconds=5)

    def peer(self, server: Any = SS2, conf: GlobalConf | None = None) -> AuthenticatedPeer:
        """The authenticated identity of ``server``'s auth cert under the test configuration."""
        now = self.world.now + timedelta(seconds=reactor.seconds() - self.world.now.timestamp())
        return identify_peer(self.world.auth_der(server), conf or self.conf, now)

    @defer.inlineCallbacks
    def test_fetches_good_response_from_configured_responder(self) -> Any:
        """A peer's auth-cert OCSP response comes from the responder the configuration names, and is good."""
        peer = self.peer()
        der = yield self.cache.get(peer, self.conf)
        status = check_peer_ocsp(peer, der, self.conf, self.world.now + timedelta(seconds=1))
        assert str(status.status) == "good"
        assert CountingOcspResource.requests == 1

    @defer.inlineCallbacks
    def test_second_request_is_a_cache_hit(self) -> Any:
        """A second request for the same certificate is answered from the cache without asking the responder."""
        peer = self.peer()
        first = yield self.cache.get(peer, self.conf)
        second = yield self.cache.get(peer, self.conf)
        assert first == second
        assert self.cache.cached(peer, self.conf) == first
        assert CountingOcspResource.requests == 1

    @defer.inlineCallbacks
    def test_concurrent_requests_share_one_fetch(self) -> Any:
        """Requests for one certificate made while a fetch is under way wait for that fetch."""
        peer = self.peer()
        answers = yield defer.gatherResults([self.cache.get(peer, self.conf) for _ in range(5)])
        assert len(set(answers)) == 1
        assert CountingOcspResource.requests == 1

    @defer.inlineCallbacks
    def test_responder_down_is_incorrect_validation_info(self) -> Any:
        """No responder listening at the configured URL: incorrect_validation_info, nothing cached."""
        conf = make_conf(self.world, ocsp_url=f"http://127.0.0.1:{free_port()}/")
        peer = self.peer(conf=conf)
        error = yield failure_of(self.cache.get(peer, conf))
        assert isinstance(error, IncorrectValidationInfo), repr(error)
        assert self.cache.cached(peer, conf) is None

    @defer.inlineCallbacks
    def test_verifier_accepts_registered_peer_then_remembers(self) -> Any:
        """The client verifier accepts the expected server's cert after an OCSP fetch; the next call is immediate."""
        verifier = PeerAuthVerifier(reactor, lambda: self.conf, self.cache)
        address = PeerAddress(SS2, "127.0.0.1", 1)
        first = verifier(address, self.world.auth_der(SS2))
        assert isinstance(first, Deferred)
        yield first
        assert verifier(address, self.world.auth_der(SS2)) is None
        assert CountingOcspResource.requests == 1

    def test_verifier_refuses_other_servers_cert_before_fetching(self) -> None:
        """SS3's cert where SS2 was expected is refused at once, with no OCSP request."""
        verifier = PeerAuthVerifier(reactor, lambda: self.conf, self.cache)
        try:
            verifier(PeerAddress(SS2, "127.0.0.1", 1), self.world.auth_der(SS3))
        except SslAuthenticationFailed as err:
            assert err.fault_code == "server.clientproxy.ssl_authentication_failed"
        else:
            raise AssertionError("SS3's certificate was accepted for SS2")
        assert CountingOcspResource.requests == 0

    @defer.inlineCallbacks
    def test_verifier_refuses_revoked_peer(self) -> Any:
        """A registered cert that the responder reports revoked: server.clientproxy.cert_validation."""
        verifier = PeerAuthVerifier(reactor, lambda: self.conf, self.cache)
        verdict = verifier(PeerAddress(SS2, "127.0.0.1", 1), self.world.revoked.cert_der)
        assert isinstance(verdict, Deferred)
        error = yield failure_of(verdict)
        assert isinstance(error, CertValidation), repr(error)
        assert error.fault_code == "server.clientproxy.cert_validation"

    @defer.inlineCallbacks
    def test_verifier_follows_configuration_changes(self) -> Any:
        """A remembered verdict does not survive a new configuration in which the cert is no longer registered."""
        current = [self.conf]
        verifier = PeerAuthVerifier(reactor, lambda: current[0], self.cache)
        address = PeerAddress(SS2, "127.0.0.1", 1)
        yield verifier(address, self.world.auth_der(SS2))
        shared = self.conf.shared
        servers = tuple(s for s in shared.security_servers if s.id != SS2)
        current[0] = GlobalConf(
            type(shared)(
                instance=shared.instance,
                global_settings=shared.global_settings,
                sources=shared.sources,
                approved_cas=shared.approved_cas,
                approved_tsas=shared.approved_tsas,
                members=shared.members,
                security_servers=servers,
                global_groups=shared.global_groups,
            ),
            self.conf.private,
            self.conf.expires_at,
        )
        try:
            verifier(address, self.world.auth_der(SS2))
        except SslAuthenticationFailed:
            pass
        else:
            raise AssertionError("a de-registered certificate was still accepted")


def test_own_auth_ocsp_is_the_context_response_for_our_auth_cert() -> None:
    """own_auth_ocsp asks the proxy context for the OCSP response of the token's auth certificate."""
    world = peer_world()
    asked: list[Any] = []

    def own_ocsp(cert: Any) -> bytes:
        asked.append(cert)
        return b"ocsp-der"

    context = ProxyContext(
        reactor=task.Clock(),
        server_id=SS1,
        global_conf=lambda: make_conf(world),
        server_conf=cast(Any, None),
        token=world.tokens[SS1],
        own_ocsp=own_ocsp,
        message_log=cast(Any, None),
    )
    cast(task.Clock, context.reactor).advance(world.now.timestamp())
    assert own_auth_ocsp(context) == b"ocsp-der"
    assert asked == [world.auth_cert(SS1)]


class CacheClockTest(unittest.TestCase):
    """The cache's lifetime rule, with a fake clock and real OCSP responses."""

    def test_refetches_after_half_the_freshness_window(self) -> None:
        """A kept response is served until half the freshness window has passed, then fetched again."""
        world = peer_world()
        clock = task.Clock()
        clock.advance(world.now.timestamp())
        fetched: list[str] = []

        def fetch(url: str, request_der: bytes) -> Deferred[bytes]:
            fetched.append(url)
            at = world.now + timedelta(seconds=clock.seconds() - world.now.timestamp())
            return succeed(ocsp_for(world.ca, world.auth_cert(SS2), at))

        conf = make_conf(world, freshness_seconds=600)
        cache = PeerOcspCache(clock, fetch=fetch)
        peer = identify_peer(world.auth_der(SS2), conf, world.now)
        answers: list[bytes] = []
        cache.get(peer, conf).addCallback(answers.append)
        clock.advance(299)
        cache.get(peer, conf).addCallback(answers.append)
        assert len(fetched) == 1
        clock.advance(2)
        cache.get(peer, conf).addCallback(answers.append)
        assert len(fetched) == 2
        assert len(answers) == 3

    def test_failed_fetch_fails_every_waiter(self) -> None:
        """A responder that answers garbage fails all coalesced waiters with incorrect_validation_info."""
        world = peer_world()
        clock = task.Clock()
        clock.advance(world.now.timestamp())
        pending: list[Deferred[bytes]] = []

        def fetch(url: str, request_der: bytes) -> Deferred[bytes]:
            answer: Deferred[bytes] = Deferred()
            pending.append(answer)
            return answer

        conf = make_conf(world)
        cache = PeerOcspCache(clock, fetch=fetch)
        peer = identify_peer(world.auth_der(SS2), conf, world.now)
        errors: list[BaseException | None] = []

        def record(failure: Failure) -> None:
            errors.append(failure.value)

        for _ in range(3):
            cache.get(peer, conf).addErrback(record)
        assert len(pending) == 1
        pending[0].callback(b"not an OCSP response")
        assert len(errors) == 3
        assert all(isinstance(e, IncorrectValidationInfo) for e in errors)


class CheckingHandler:
    """A server proxy handler that checks the client's cert as the provider does (with a stapled OCSP)."""

    def __init__(self, conf: Callable[[], GlobalConf]) -> None:
        self.conf = conf
        self.verdicts: list[Any] = []

    def handle(self, peer_cert_der: bytes | None, request: PeerRequest) -> Deferred[PeerResponse]:
        """Check the consumer server's cert for the consumer client; answer with the server it belongs to."""
        world = peer_world()
        now = world.now + timedelta(seconds=reactor.seconds() - world.now.timestamp())
        assert peer_cert_der is not None
        stapled = ocsp_for(world.ca, world.auth_cert(SS1), world.now)
        peer = check_peer_auth_cert(peer_cert_der, self.conf(), now, hosted_client=CONSUMER, ocsp_der=stapled)
        self.verdicts.append(peer.server)
        return succeed(PeerResponse(200, "text/plain", str(peer.server).encode()))


class EndToEndTrustTest(unittest.TestCase):
    """Both directions of the §4.3 check over real mutual TLS, with OCSP from the real responder."""

    timeout = 30

    @defer.inlineCallbacks
    def test_both_sides_authenticate_each_other(self) -> Any:
        """The consumer verifies the provider's cert via the configuration and OCSP; the provider checks the consumer's."""
        world = peer_world()
        ocsp_site = Site(OcspResource(reactor, world.ca.state))  # type: ignore[no-untyped-call]
        ocsp_port = reactor.listenTCP(0, ocsp_site, interface="127.0.0.1")
        self.addCleanup(ocsp_port.stopListening)
        conf = make_conf(world, ocsp_url=f"http://127.0.0.1:{ocsp_port.getHost().port}/")
        handler = CheckingHandler(lambda: conf)
        server_site = server_proxy_site(ServerProxyResource(handler))
        tracked = ConnectionWatch()
        server_port = reactor.listenSSL(
            0, tracked.factory(server_site), server_context_factory(world.tokens[SS2]), interface="127.0.0.1"
        )
        self.addCleanup(server_port.stopListening)
        verifier = PeerAuthVerifier(reactor, lambda: conf, PeerOcspCache(reactor, timeout_seconds=5))
        link = MtlsPeerLink(reactor, world.tokens[SS1], verify_peer=verifier, connect_timeout=5)
        self.addCleanup(link.close)
        address = PeerAddress(SS2, "127.0.0.1", server_port.getHost().port)
        response = yield link.send([address], PeerRequest({}, "text/xml", b"<x/>"), 5.0)
        assert response.status == 200, response.body
        assert response.body == str(SS1).encode()
        assert handler.verdicts == [SS1]
        wrong = PeerAddress(SS3, "127.0.0.1", server_port.getHost().port)
        error = yield failure_of(link.send([wrong], PeerRequest({}, "text/xml", b"<x/>"), 5.0))
        assert isinstance(error, SslAuthenticationFailed), repr(error)
        assert len(handler.verdicts) == 1
        yield link.close()
        yield tracked.closed()  # the server sees the link's close_notify


class CacheOutageTest(unittest.TestCase):
    """A responder outage: the kept response serves to the end of its freshness window, not only half of it."""

    def test_kept_response_serves_through_an_outage_until_the_freshness_limit(self) -> None:
        """Past half the window the refetch fails; the kept response serves until the window ends, then not."""
        world = peer_world()
        clock = task.Clock()
        clock.advance(world.now.timestamp())
        up = [True]

        def fetch(url: str, request_der: bytes) -> Deferred[bytes]:
            if not up[0]:
                return defer.fail(ConnectionRefusedError("responder down"))
            at = world.now + timedelta(seconds=clock.seconds() - world.now.timestamp())
            return succeed(ocsp_for(world.ca, world.auth_cert(SS2), at))

        conf = make_conf(world, freshness_seconds=600)
        cache = PeerOcspCache(clock, fetch=fetch)
        peer = identify_peer(world.auth_der(SS2), conf, world.now)
        answers: list[bytes] = []
        errors: list[BaseException | None] = []
        cache.get(peer, conf).addCallback(answers.append)
        up[0] = False
        clock.advance(599)
        cache.get(peer, conf).addCallbacks(answers.append, lambda failure: errors.append(failure.value))
        assert len(answers) == 2 and answers[0] == answers[1] and errors == []
        clock.advance(2)
        cache.get(peer, conf).addCallbacks(answers.append, lambda failure: errors.append(failure.value))
        assert len(answers) == 2
        assert len(errors) == 1 and isinstance(errors[0], IncorrectValidationInfo)
