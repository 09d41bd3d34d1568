"""Received-message trust, pure: a member's signature over every part, chained to an approved CA with fresh OCSP."""

from __future__ import annotations

from datetime import timedelta

import pytest

from security_server.core.errors import IncorrectCertificate, IncorrectValidationInfo
from security_server.core.message_trust import TrustCache, verify_message
from security_server.core.signature import ECDSA_SHA512, sign_batch
from security_server.core.soapattachments import signed_parts
from tests.federation.ca import ocsp_for
from tests.federation.peers import CONSUMER, GOV2, PROVIDER, make_conf, peer_world

MESSAGE = b"<message/>"


def signed(attachments: tuple[bytes, ...] = (), *, ocsp: bool = True) -> tuple[bytes, bytes | None, bytes | None]:
    """GOV2's signature over ``MESSAGE`` and ``attachments``: (signature, hash-chain result, hash chain)."""
    world = peer_world()
    cert = world.signing.cert
    ocsp_der = ocsp_for(world.ca, cert, world.now) if ocsp else b""
    data = sign_batch(
        [signed_parts(MESSAGE, attachments)], cert, world.signing.key, ocsp_der, world.now, algorithm=ECDSA_SHA512
    )[0]
    return data.signature_xml, data.hash_chain_result, data.hash_chain


def test_the_members_signature_over_every_part_is_accepted() -> None:
    """A provider subsystem's message signed by its member, with an attachment through a hash chain, verifies."""
    world = peer_world()
    conf = make_conf(world)
    signature, result, chain = signed((b"attachment",))
    verified = verify_message(
        signature, MESSAGE, (b"attachment",), result, chain, PROVIDER, conf, TrustCache().get(conf), world.now
    )
    assert verified.signing_cert == world.signing.cert


def test_another_members_client_is_incorrect_certificate() -> None:
    """A message signed by GOV2 but claimed for the consumer (GOV1) is incorrect_certificate."""
    world = peer_world()
    conf = make_conf(world)
    signature, result, chain = signed()
    with pytest.raises(IncorrectCertificate):
        verify_message(signature, MESSAGE, (), result, chain, CONSUMER, conf, TrustCache().get(conf), world.now)


def test_a_stale_ocsp_response_is_incorrect_validation_info() -> None:
    """An embedded OCSP response older than the configuration's freshness is incorrect_validation_info."""
    world = peer_world()
    conf = make_conf(world, freshness_seconds=60)
    signature, result, chain = signed()
    later = world.now + timedelta(minutes=5)
    with pytest.raises(IncorrectValidationInfo):
        verify_message(signature, MESSAGE, (), result, chain, GOV2, conf, TrustCache().get(conf), later)


def test_the_trust_cache_parses_a_configuration_once() -> None:
    """The same configuration object gives the same anchors; a new object gives new ones."""
    world = peer_world()
    cache = TrustCache()
    conf = make_conf(world)
    assert cache.get(conf) is cache.get(conf)
    assert cache.get(make_conf(world)) is not cache.get(conf)
