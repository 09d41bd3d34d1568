"""Batch signing: the messages of one reactor turn and one member share one signature, each verifiable alone."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from cryptography import x509
from twisted.internet import reactor as global_reactor
from twisted.internet.defer import Deferred, gatherResults
from twisted.trial import unittest

from security_server.core.errors import BusError
from security_server.core.hashchain import MESSAGE, SIG_HASH_CHAIN, SIG_HASH_CHAIN_RESULT
from security_server.core.identifiers import ClientId
from security_server.core.signature import SignatureData, verify_signature
from security_server.core.soapattachments import expected_uris
from security_server.signer.batch_signer import BatchSigner
from security_server.signer.softtoken import KeyNotAvailable, PrivateKey
from tests.federation.world import C, P, OwnOcsp, pki, signing_keys
from tests.loopback import now

REACTOR: Any = global_reactor


def _verify(signature: SignatureData, message: bytes, attachments: tuple[bytes, ...] = ()) -> frozenset[str]:
    """Verify one message's signature on its own; the URIs it covers."""
    parts: dict[str, bytes] = {MESSAGE: message}
    parts.update({f"/attachment{i}": data for i, data in enumerate(attachments, start=1)})
    if signature.hash_chain is not None:
        assert signature.hash_chain_result is not None
        parts[SIG_HASH_CHAIN] = signature.hash_chain
        parts[SIG_HASH_CHAIN_RESULT] = signature.hash_chain_result
    verified = verify_signature(signature.signature_xml, parts.get, expected_parts=expected_uris(len(attachments)))
    return verified.covered_parts


class _NoKey:
    """A key source that has no key for anyone."""

    def get(self, member: ClientId, at: datetime) -> tuple[PrivateKey, x509.Certificate]:
        raise KeyNotAvailable("no signing key", reason=f"none for {member}")


class BatchSignerTest(unittest.TestCase):
    """Against the exchange fixture's real CA, tokens and OCSP responses."""

    def setUp(self) -> None:
        material = pki()
        self.keys = {C: signing_keys(material.consumer_token), P: signing_keys(material.provider_token)}
        self.ocsp = OwnOcsp(material.ca)

    def _signer(self, **options: Any) -> BatchSigner:
        keys = self.keys

        class Both:
            def get(self, member: ClientId, at: datetime) -> tuple[PrivateKey, x509.Certificate]:
                return keys[member.member].get(member, at)

        return BatchSigner(REACTOR, Both(), self.ocsp, **options)

    async def test_messages_of_one_turn_share_one_signature_and_each_verifies_alone(self) -> None:
        """Three messages queued in one turn get one signature value, a hash chain each, and each message's
        evidence verifies by itself (the chain, then the signature), covering its own message."""
        signer = self._signer()
        messages = [b"<m>one</m>", b"<m>two</m>", b"<m>three</m>"]
        signed = await gatherResults([signer.sign(C.subsystem("client"), m, now()) for m in messages])
        assert signer.signatures_made == 1 and signer.messages_signed == 3
        assert len({s.signature_xml for s in signed}) == 1
        assert len({s.hash_chain for s in signed}) == 3
        for message, signature in zip(messages, signed):
            assert MESSAGE in _verify(signature, message)
        # and a message does not verify with another's chain
        with pytest.raises(BusError):
            _verify(SignatureData(signed[0].signature_xml, signed[0].hash_chain_result, signed[1].hash_chain), messages[0])

    async def test_identical_messages_in_one_batch_get_their_own_chains(self) -> None:
        """Two identical messages in one batch share the signature but not the chain (so a replay check keyed
        by signature, message and chain tells them apart)."""
        signer = self._signer()
        first, second = await gatherResults([signer.sign(C, b"<same/>", now()), signer.sign(C, b"<same/>", now())])
        assert first.signature_xml == second.signature_xml
        assert first.hash_chain != second.hash_chain

    async def test_a_lone_message_is_signed_directly(self) -> None:
        """At low load a batch is one message: signed over /message.xml itself, without a hash chain."""
        signer = self._signer()
        signature = await signer.sign(C, b"<alone/>", now())
        assert signature.hash_chain is None and signature.hash_chain_result is None
        assert _verify(signature, b"<alone/>") == frozenset({MESSAGE})

    async def test_each_member_signs_its_own_batch(self) -> None:
        """Messages of two members in one turn are two batches, each signed with its member's key."""
        signer = self._signer()
        signed = await gatherResults([
            signer.sign(C, b"<c1/>", now()), signer.sign(P, b"<p1/>", now()), signer.sign(C, b"<c2/>", now()),
        ])
        assert signer.signatures_made == 2
        assert signed[0].signature_xml == signed[2].signature_xml != signed[1].signature_xml
        assert _verify(signed[1], b"<p1/>") == frozenset({MESSAGE})

    async def test_a_batch_holds_at_most_max_batch_messages(self) -> None:
        """Five messages with max_batch 2 take three signatures."""
        signer = self._signer(max_batch=2)
        await gatherResults([signer.sign(C, f"<m>{i}</m>".encode(), now()) for i in range(5)])
        assert signer.signatures_made == 3 and signer.messages_signed == 5

    async def test_attachments_are_covered_in_a_batch(self) -> None:
        """A message with attachments in a batch: its chain covers the message and each attachment."""
        signer = self._signer()
        with_parts, plain = await gatherResults([
            signer.sign(C, b"<m/>", now(), (b"first", b"second")), signer.sign(C, b"<n/>", now()),
        ])
        assert _verify(with_parts, b"<m/>", (b"first", b"second")) >= {MESSAGE, "/attachment1", "/attachment2"}
        assert MESSAGE in _verify(plain, b"<n/>")

    async def test_the_batch_signing_time_is_the_latest_of_its_messages(self) -> None:
        """One signing time per signature: the latest asked for, so no message is signed before it was sent."""
        signer = self._signer()
        early, late = now() - timedelta(seconds=2), now()
        first, second = await gatherResults([signer.sign(C, b"<a/>", early), signer.sign(C, b"<b/>", late)])
        stamp = late.strftime("%Y-%m-%dT%H:%M:%S")
        assert stamp.encode() in first.signature_xml and first.signature_xml == second.signature_xml

    async def test_disabled_signs_each_message_at_once(self) -> None:
        """With batching off every message is signed alone, before sign() returns."""
        signer = self._signer(enabled=False)
        first = signer.sign(C, b"<a/>", now())
        second = signer.sign(C, b"<b/>", now())
        assert first.called and second.called
        assert signer.signatures_made == 2
        assert (await first).hash_chain is None

    async def test_every_caller_gets_its_own_error(self) -> None:
        """When the batch cannot be signed, each message fails with its own error object (own fault detail)."""
        signer = BatchSigner(REACTOR, _NoKey(), self.ocsp)
        waits: list[Deferred[SignatureData]] = [signer.sign(C, b"<a/>", now()), signer.sign(C, b"<b/>", now())]
        errors = []
        for waiting in waits:
            with pytest.raises(KeyNotAvailable) as caught:
                await waiting
            errors.append(caught.value)
        assert errors[0] is not errors[1]
        assert errors[0].detail_id != errors[1].detail_id
