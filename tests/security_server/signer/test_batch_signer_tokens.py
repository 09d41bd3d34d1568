"""Batch signing with keys in a token: the signature is made on the token's worker thread, with a bounded wait;
a soft key still signs inline."""

from __future__ import annotations

import threading
from datetime import datetime
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from twisted.internet import reactor as global_reactor
from twisted.internet.defer import Deferred, gatherResults
from twisted.python.failure import Failure
from twisted.trial import unittest

from central_registry.trust.ca import CertKind
from security_server.core.certprofile import signing_subject
from security_server.core.hashchain import MESSAGE, SIG_HASH_CHAIN, SIG_HASH_CHAIN_RESULT
from security_server.core.identifiers import ClientId
from security_server.core.signature import SignatureData, verify_signature
from security_server.core.soapattachments import expected_uris
from security_server.signer.batch_signer import LOOKUP, BatchSigner
from security_server.signer.pkcs11_config import Pkcs11TokenConfig, SignMechanism
from security_server.signer.pkcs11_key import Pkcs11RsaKey
from security_server.signer.pkcs11_token import Pkcs11Token
from security_server.signer.signing_keys import SigningKeys
from security_server.signer.softtoken import PrivateKey
from security_server.signer.token import KeyAlgorithm, KeyKind, TokenTimedOut, key_id_of
from security_server.signer.token_set import TokenSet
from security_server.signer.token_workers import TokenWorkers
from tests.federation.world import C, OwnOcsp, pki, signing_keys
from tests.loopback import now
from tests.security_server.signer.softhsm import shared_softhsm
from tests.security_server.signer.threaded_clock import SAFETY_SECONDS, ThreadedClock

REACTOR: Any = global_reactor
HSM_MEMBER = ClientId("EE", "GOV", "70000999")


class _SlowToken:
    """A token that signs with a real RSA key, on whatever thread calls it, after ``release`` when ``block``."""

    name = "slowhsm"

    def __init__(self, real: rsa.RSAPrivateKey) -> None:
        self.real = real
        self.block = False
        self.release = threading.Event()
        self.threads: list[str] = []

    def sign_digest(
        self, key_id: str, digest: bytes, hash_algorithm: hashes.HashAlgorithm, mechanism: SignMechanism, salt: int
    ) -> bytes:
        self.threads.append(threading.current_thread().name)
        if self.block:
            self.release.wait(SAFETY_SECONDS)
        return self.real.sign(digest, padding.PKCS1v15(), Prehashed(hash_algorithm))


class _Fixed:
    """A key source with one key and certificate for everyone."""

    def __init__(self, key: PrivateKey, cert: x509.Certificate) -> None:
        self.pair = (key, cert)

    def get(self, member: ClientId, at: datetime) -> tuple[PrivateKey, x509.Certificate]:
        return self.pair


def _outcome(deferred: Deferred[SignatureData]) -> list[object]:
    got: list[object] = []
    deferred.addBoth(got.append)
    return got


class TokenKeyOnFakeClockTest(unittest.TestCase):
    """A token key whose token is a fake around member C's real soft key, on a clock the test drives."""

    def setUp(self) -> None:
        material = pki()
        soft_key, self.cert = signing_keys(material.consumer_token).get(C, now())
        assert isinstance(soft_key, rsa.RSAPrivateKey)
        self.soft_key = soft_key
        self.token = _SlowToken(soft_key)
        self.token_key = Pkcs11RsaKey(self.token, key_id_of(soft_key.public_key()), soft_key.public_key(), SignMechanism.RSA_PKCS)
        self.ocsp = OwnOcsp(material.ca)
        self.clock = ThreadedClock()
        self.workers = TokenWorkers(self.clock, timeout_seconds=10)
        self.addCleanup(self.workers.stop)

    def _signer(self, key: PrivateKey, **options: Any) -> BatchSigner:
        return BatchSigner(self.clock, _Fixed(key, self.cert), self.ocsp, workers=self.workers, **options)

    def test_a_token_key_signs_on_the_tokens_thread_with_the_soft_keys_bytes(self) -> None:
        """The same key through the token path and inline gives byte-identical signatures; only the token path
        leaves the test thread, and the caller is answered once the worker's answer is delivered."""
        at = now()
        inline = _outcome(self._signer(self.soft_key).sign(C, b"<m/>", at))
        self.clock.advance(0)
        assert len(inline) == 1 and not self.clock.pending()  # a soft key: signed in the reactor turn itself
        through_token = _outcome(self._signer(self.token_key).sign(C, b"<m/>", at))
        self.clock.advance(0)
        assert through_token == []
        self.clock.deliver()
        assert self.token.threads == ["fedbus-token-slowhsm"]
        first, second = inline[0], through_token[0]
        assert isinstance(first, SignatureData) and isinstance(second, SignatureData)
        assert first.signature_xml == second.signature_xml

    def test_a_hung_token_fails_the_batch_with_signer_cannot_sign_after_the_bounded_wait(self) -> None:
        """Every message of a batch waiting on a hung token fails with signer.cannot_sign (each its own fault
        detail) when the wait runs out; the next message fails at once; after the token answers, signing works."""
        self.token.block = True
        signer = self._signer(self.token_key)
        waits = [_outcome(signer.sign(C, message, now())) for message in (b"<a/>", b"<b/>")]
        self.clock.advance(0)
        self.clock.advance(9)
        assert waits == [[], []]
        self.clock.advance(1)
        errors = [got[0].value for got in waits if isinstance(got[0], Failure) and isinstance(got[0].value, TokenTimedOut)]
        assert len(errors) == 2
        assert {e.fault_code for e in errors} == {"signer.cannot_sign"}
        assert errors[0].detail_id != errors[1].detail_id
        at_once = _outcome(signer.sign(C, b"<c/>", now()))
        self.clock.advance(0)
        assert isinstance(at_once[0], Failure) and isinstance(at_once[0].value, TokenTimedOut)
        self.token.release.set()
        self.clock.deliver()  # the late answer: dropped
        self.token.block = False
        later = _outcome(signer.sign(C, b"<d/>", now()))
        self.clock.advance(0)
        self.clock.deliver()
        assert isinstance(later[0], SignatureData)
        assert signer.signatures_made == 1 and signer.messages_signed == 1


class TokenKeyInSoftHsmTest(unittest.TestCase):
    """A member's signing key in SoftHSM2 beside C's soft key, one token set, the real reactor and threads."""

    def setUp(self) -> None:
        material = pki()
        hsm = shared_softhsm().init_token()
        config = Pkcs11TokenConfig(name="hsm", library=hsm.module, token_label=hsm.label, pin_env="PIN")
        self.token = Pkcs11Token(config, environ={"PIN": hsm.pin})
        key_id = self.token.generate(KeyKind.SIGN, HSM_MEMBER, KeyAlgorithm.RSA2048)
        csr = self.token.csr(key_id, signing_subject(HSM_MEMBER, "Ministry of Tokens"))
        cert = material.ca.issue(csr, CertKind.SIGN, now())
        self.token.import_cert(cert.public_bytes(serialization.Encoding.PEM), now=now())
        self.keys = SigningKeys(TokenSet([material.consumer_token, self.token]), ttl_seconds=3600)
        self.workers = TokenWorkers(REACTOR, timeout_seconds=SAFETY_SECONDS)
        self.signer = BatchSigner(REACTOR, self.keys, OwnOcsp(material.ca), workers=self.workers)
        self.addCleanup(self.workers.stop)

    async def test_token_key_signs_off_the_reactor_thread_and_verifies(self) -> None:
        """The HSM member's batch is looked up and signed on worker threads (the token's own for the signature),
        C's soft key in the same set signs on the reactor thread, and every signature verifies."""
        threads: list[str] = []
        original = self.token.sign_digest

        def recording(*args: Any) -> bytes:
            threads.append(threading.current_thread().name)
            return original(*args)

        self.token.sign_digest = recording  # type: ignore[method-assign, assignment]
        assert self.keys.may_block
        messages = [b"<h>1</h>", b"<h>2</h>"]
        signed = await gatherResults([self.signer.sign(HSM_MEMBER, m, now()) for m in messages])
        soft = await self.signer.sign(C, b"<soft/>", now())
        assert threads == ["fedbus-token-hsm"]  # one signature for the batch, on the token's thread
        assert self.signer.signatures_made == 2 and self.signer.messages_signed == 3
        assert set(self.workers._workers) == {LOOKUP, "hsm"}
        for message, signature in zip(messages, signed):
            assert MESSAGE in _covered(signature, message)
        assert _covered(soft, b"<soft/>") == frozenset({MESSAGE})
        # cached now: the next HSM message goes straight to the token's thread
        again = await self.signer.sign(HSM_MEMBER, b"<h>3</h>", now())
        assert MESSAGE in _covered(again, b"<h>3</h>") and threads[-1] == "fedbus-token-hsm"


def _covered(signature: SignatureData, message: bytes) -> frozenset[str]:
    parts: dict[str, bytes] = {MESSAGE: message}
    if signature.hash_chain is not None:
        assert signature.hash_chain_result is not None
        parts[SIG_HASH_CHAIN] = signature.hash_chain
        parts[SIG_HASH_CHAIN_RESULT] = signature.hash_chain_result
    return verify_signature(signature.signature_xml, parts.get, expected_parts=expected_uris(0)).covered_parts
