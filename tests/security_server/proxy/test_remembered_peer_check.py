"""The server proxy's peer check with checks 1-4 remembered (proxy/peer_trust.RememberedPeerCheck)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from security_server.core import peerauth
from security_server.core.errors import BusError, SslAuthenticationFailed
from security_server.core.peerauth import check_peer_auth_cert
from security_server.proxy import peer_trust
from security_server.proxy.peer_trust import RememberedPeerCheck
from tests.federation.ca import ocsp_for
from tests.federation.peers import CONSUMER, PROVIDER, SS1, make_conf, peer_world


@pytest.fixture
def identifications(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every run of checks 1-4 (core.peerauth.identify_peer) the remembering check makes."""
    calls: list[Any] = []

    def counting(*args: Any, **kwargs: Any) -> peerauth.AuthenticatedPeer:
        calls.append(args)
        return peerauth.identify_peer(*args, **kwargs)

    monkeypatch.setattr(peer_trust, "identify_peer", counting)
    return calls


def stapled(at: datetime) -> bytes:
    """The consumer server's OCSP response produced at ``at``."""
    world = peer_world()
    return ocsp_for(world.ca, world.auth_cert(SS1), at)


def test_the_verdict_is_the_full_checks_and_checks_1_to_4_run_once(identifications: list[Any]) -> None:
    """Two requests on one configuration: the same authenticated server as the full check, identified once."""
    world = peer_world()
    conf = make_conf(world)
    check = RememberedPeerCheck()
    now = world.now + timedelta(seconds=5)
    expected = check_peer_auth_cert(world.auth_der(SS1), conf, now, hosted_client=CONSUMER, ocsp_der=stapled(world.now))
    for later in (now, now + timedelta(seconds=60)):
        peer = check(world.auth_der(SS1), conf, later, hosted_client=CONSUMER, ocsp_der=stapled(world.now))
        assert peer.server == expected.server == SS1
    assert len(identifications) == 1


def test_the_stapled_ocsp_response_is_checked_on_every_request(identifications: list[Any]) -> None:
    """A remembered peer with a stale OCSP response is refused: check 5 is never skipped."""
    world = peer_world()
    conf = make_conf(world, freshness_seconds=60)
    check = RememberedPeerCheck()
    check(world.auth_der(SS1), conf, world.now + timedelta(seconds=5), hosted_client=CONSUMER, ocsp_der=stapled(world.now))
    with pytest.raises(BusError):
        check(world.auth_der(SS1), conf, world.now + timedelta(seconds=600), hosted_client=CONSUMER,
              ocsp_der=stapled(world.now))
    assert len(identifications) == 1


def test_another_client_or_configuration_is_checked_afresh(identifications: list[Any]) -> None:
    """The verdict is per hosted client and per configuration object: a client the peer does not host is refused
    even after its server was accepted for another, and a new configuration is checked again."""
    world = peer_world()
    conf = make_conf(world)
    check = RememberedPeerCheck()
    now = world.now + timedelta(seconds=5)
    check(world.auth_der(SS1), conf, now, hosted_client=CONSUMER, ocsp_der=stapled(world.now))
    with pytest.raises(SslAuthenticationFailed, match="does not host"):
        check(world.auth_der(SS1), conf, now, hosted_client=PROVIDER, ocsp_der=stapled(world.now))
    check(world.auth_der(SS1), make_conf(world), now, hosted_client=CONSUMER, ocsp_der=stapled(world.now))
    assert len(identifications) == 3


def test_expiry_and_a_clock_going_back_end_the_verdict(identifications: list[Any]) -> None:
    """Past the configuration's expiry the check runs again (and refuses); so does a time before the verdict."""
    world = peer_world()
    conf = make_conf(world, expires_at=world.now + timedelta(seconds=30))
    check = RememberedPeerCheck()
    now = world.now + timedelta(seconds=10)
    check(world.auth_der(SS1), conf, now, hosted_client=CONSUMER, ocsp_der=stapled(world.now))
    check(world.auth_der(SS1), conf, now - timedelta(seconds=5), hosted_client=CONSUMER, ocsp_der=stapled(world.now))
    assert len(identifications) == 2
    with pytest.raises(BusError):
        check(world.auth_der(SS1), conf, world.now + timedelta(seconds=31), hosted_client=CONSUMER,
              ocsp_der=stapled(world.now))
    assert len(identifications) == 3


def test_a_refusal_is_not_remembered(identifications: list[Any]) -> None:
    """An unregistered certificate is refused each time, by running the checks each time."""
    world = peer_world()
    conf = make_conf(world)
    check = RememberedPeerCheck()
    for _ in range(2):
        with pytest.raises(SslAuthenticationFailed):
            check(world.unregistered.cert_der, conf, world.now + timedelta(seconds=5), hosted_client=PROVIDER,
                  ocsp_der=stapled(world.now))
    assert len(identifications) == 2


def test_the_path_end_is_the_first_certificate_to_expire() -> None:
    """identify_peer records when the checked path stops being valid: the leaf or its CA, whichever ends first."""
    world = peer_world()
    peer = peerauth.identify_peer(world.auth_der(SS1), make_conf(world), world.now + timedelta(seconds=5))
    assert peer.path_not_after == min(peer.cert.not_valid_after_utc, peer.issuer.not_valid_after_utc)
