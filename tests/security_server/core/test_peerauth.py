"""The application-level check of a peer security server's auth certificate (XROAD-REFERENCE.md §4.3), one defect per test."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from central_registry.trust.ocsp_responder import build_ocsp_response
from security_server.core.errors import (
    CertValidation,
    GlobalConfOutdated,
    IncorrectValidationInfo,
    Origin,
    SslAuthenticationFailed,
)
from security_server.core.peerauth import check_peer_auth_cert, identify_peer
from tests.federation.ca import ocsp_for
from tests.federation.peers import (
    CONSUMER,
    ONLY_ON_SS2,
    PROVIDER,
    SS1,
    SS2,
    SS3,
    make_conf,
    peer_world,
)


def test_registered_cert_with_good_ocsp_is_accepted() -> None:
    """The provider's own registered auth cert with a good, fresh OCSP response passes and names its server."""
    world = peer_world()
    cert = world.auth_cert(SS2)
    peer = check_peer_auth_cert(
        world.auth_der(SS2),
        make_conf(world),
        world.now + timedelta(minutes=1),
        expected_server=SS2,
        hosted_client=PROVIDER,
        ocsp_der=ocsp_for(world.ca, cert, world.now),
    )
    assert peer.server == SS2
    assert peer.issuer == world.ca.certificate


def test_consumer_cert_checked_against_hosted_client() -> None:
    """The provider side accepts the consumer's cert when the client is registered on the consumer's server."""
    world = peer_world()
    peer = check_peer_auth_cert(
        world.auth_der(SS1),
        make_conf(world),
        world.now + timedelta(minutes=1),
        hosted_client=CONSUMER,
        ocsp_der=ocsp_for(world.ca, world.auth_cert(SS1), world.now),
    )
    assert peer.server == SS1


def test_unregistered_cert_is_refused() -> None:
    """A valid auth cert whose hash no server registered: ssl_authentication_failed."""
    world = peer_world()
    with pytest.raises(SslAuthenticationFailed) as caught:
        identify_peer(world.unregistered.cert_der, make_conf(world), world.now + timedelta(minutes=1))
    assert caught.value.at(Origin.CLIENT_PROXY).fault_code == "server.clientproxy.ssl_authentication_failed"


def test_cert_from_unapproved_ca_is_refused() -> None:
    """A registered auth cert issued by a CA the configuration does not approve: cert_validation."""
    world = peer_world()
    with pytest.raises(CertValidation) as caught:
        identify_peer(world.rogue.cert_der, make_conf(world), world.now + timedelta(minutes=1), expected_server=SS2)
    assert caught.value.code == "cert_validation"
    assert "approved" in caught.value.message


def test_expired_cert_is_refused() -> None:
    """A registered auth cert past its notAfter: cert_validation."""
    world = peer_world()
    with pytest.raises(CertValidation) as caught:
        identify_peer(world.expired.cert_der, make_conf(world), world.now + timedelta(minutes=1))
    assert "expired" in caught.value.message


def test_revoked_cert_is_refused() -> None:
    """A registered auth cert whose OCSP response says revoked: cert_validation."""
    world = peer_world()
    with pytest.raises(CertValidation) as caught:
        check_peer_auth_cert(
            world.revoked.cert_der,
            make_conf(world),
            world.now + timedelta(minutes=1),
            expected_server=SS2,
            ocsp_der=ocsp_for(world.ca, world.revoked.cert, world.now),
        )
    assert "revoked" in caught.value.message


def test_unknown_ocsp_status_is_refused() -> None:
    """An OCSP response saying unknown (the responder never issued the serial): cert_validation."""
    world = peer_world()
    cert = world.auth_cert(SS2)
    request = (
        ocsp.OCSPRequestBuilder()
        .add_certificate(cert, world.ca.certificate, hashes.SHA1())
        .build()
        .public_bytes(serialization.Encoding.DER)
    )
    forgetful = dataclasses.replace(world.ca.state(), issued={})
    unknown = build_ocsp_response(request, forgetful, world.now)
    with pytest.raises(CertValidation) as caught:
        check_peer_auth_cert(
            world.auth_der(SS2), make_conf(world), world.now + timedelta(minutes=1), expected_server=SS2, ocsp_der=unknown
        )
    assert "unknown" in caught.value.message


def test_stale_ocsp_is_refused() -> None:
    """An OCSP response older than ocspFreshnessSeconds: incorrect_validation_info."""
    world = peer_world()
    old = ocsp_for(world.ca, world.auth_cert(SS2), world.now)
    with pytest.raises(IncorrectValidationInfo) as caught:
        check_peer_auth_cert(
            world.auth_der(SS2),
            make_conf(world, freshness_seconds=600),
            world.now + timedelta(minutes=11),
            expected_server=SS2,
            ocsp_der=old,
        )
    assert "stale" in caught.value.message


def test_missing_ocsp_is_refused() -> None:
    """No OCSP response at all: incorrect_validation_info."""
    world = peer_world()
    with pytest.raises(IncorrectValidationInfo):
        check_peer_auth_cert(
            world.auth_der(SS2), make_conf(world), world.now + timedelta(minutes=1), expected_server=SS2, ocsp_der=None
        )


def test_ocsp_for_another_cert_is_refused() -> None:
    """A good OCSP response about a different certificate: incorrect_validation_info."""
    world = peer_world()
    other = ocsp_for(world.ca, world.auth_cert(SS3), world.now)
    with pytest.raises(IncorrectValidationInfo):
        check_peer_auth_cert(
            world.auth_der(SS2), make_conf(world), world.now + timedelta(minutes=1), expected_server=SS2, ocsp_der=other
        )


def test_ocsp_parts_yield_the_response_for_the_cert() -> None:
    """Among several OCSP parts (transport message), the one about the peer's cert is used."""
    world = peer_world()
    parts = [ocsp_for(world.ca, world.auth_cert(SS3), world.now), ocsp_for(world.ca, world.auth_cert(SS2), world.now)]
    peer = check_peer_auth_cert(
        world.auth_der(SS2), make_conf(world), world.now + timedelta(minutes=1), expected_server=SS2, ocsp_der=parts
    )
    assert peer.server == SS2


def test_stale_part_beats_foreign_part_in_the_error() -> None:
    """When no part is acceptable, the error about the peer's own certificate (stale) is the one raised."""
    world = peer_world()
    parts = [ocsp_for(world.ca, world.auth_cert(SS3), world.now), ocsp_for(world.ca, world.auth_cert(SS2), world.now)]
    with pytest.raises(IncorrectValidationInfo) as caught:
        check_peer_auth_cert(
            world.auth_der(SS2),
            make_conf(world, freshness_seconds=600),
            world.now + timedelta(minutes=11),
            expected_server=SS2,
            ocsp_der=parts,
        )
    assert "stale" in caught.value.message


def test_cert_of_another_server_is_refused() -> None:
    """SS3's registered cert presented where SS2 was expected: ssl_authentication_failed."""
    world = peer_world()
    with pytest.raises(SslAuthenticationFailed) as caught:
        identify_peer(world.auth_der(SS3), make_conf(world), world.now + timedelta(minutes=1), expected_server=SS2)
    assert "another security server" in caught.value.message


def test_server_not_hosting_the_client_is_refused() -> None:
    """A valid server cert whose server does not host the client in the message: ssl_authentication_failed."""
    world = peer_world()
    with pytest.raises(SslAuthenticationFailed) as caught:
        identify_peer(world.auth_der(SS3), make_conf(world), world.now + timedelta(minutes=1), hosted_client=ONLY_ON_SS2)
    assert "does not host" in caught.value.message


def test_signing_cert_used_as_auth_cert_is_refused() -> None:
    """A member's signing certificate (registered hash and all) is not an auth cert: ssl_authentication_failed."""
    world = peer_world()
    with pytest.raises(SslAuthenticationFailed) as caught:
        identify_peer(world.signing.cert_der, make_conf(world), world.now + timedelta(minutes=1))
    assert "not an authentication certificate" in caught.value.message


def test_garbage_cert_is_refused() -> None:
    """Bytes that are not a certificate: ssl_authentication_failed, never a bare parser exception."""
    world = peer_world()
    with pytest.raises(SslAuthenticationFailed):
        identify_peer(b"\x30\x03\x02\x01\x00", make_conf(world), world.now)


def test_expired_configuration_is_refused() -> None:
    """A check against an expired global configuration: global_conf_outdated."""
    world = peer_world()
    conf = make_conf(world, expires_at=world.now + timedelta(minutes=1))
    with pytest.raises(GlobalConfOutdated):
        identify_peer(world.auth_der(SS2), conf, world.now + timedelta(minutes=2))
