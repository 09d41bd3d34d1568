"""verify_signature_over_chain: verify_signature with a hash chain the caller has already verified."""

from __future__ import annotations

import dataclasses

import pytest

from security_server.core import hashchain
from security_server.core.errors import InvalidSignatureValue
from security_server.core.hashchain import MESSAGE, SIG_HASH_CHAIN, SIG_HASH_CHAIN_RESULT
from security_server.core.signature import MessagePart, sign_batch, verify_signature, verify_signature_over_chain
from tests.security_server.core.signing_pki import NOW, pki


def _batch() -> tuple[list[bytes], list[dict[str, bytes]], bytes]:
    p = pki()
    messages = [b"<m>%d</m>" % n for n in range(3)]
    signed = sign_batch([[MessagePart.of(MESSAGE, m)] for m in messages], p.cert, p.key, p.ocsp, NOW)
    files = []
    for message, data in zip(messages, signed):
        assert data.hash_chain_result is not None and data.hash_chain is not None
        files.append({MESSAGE: message, SIG_HASH_CHAIN_RESULT: data.hash_chain_result, SIG_HASH_CHAIN: data.hash_chain})
    return messages, files, signed[0].signature_xml


def test_over_a_proven_chain_it_finds_what_verify_signature_finds() -> None:
    """Given the chain's own verification, the result is verify_signature's, field for field."""
    _, files, signature = _batch()
    for parts in files:
        proven = hashchain.verify_hash_chain(parts[SIG_HASH_CHAIN_RESULT], parts[SIG_HASH_CHAIN], parts.get, [MESSAGE])
        assert verify_signature_over_chain(signature, parts.get, proven) == verify_signature(signature, parts.get)


def test_other_checks_still_give_their_verdict() -> None:
    """A proven chain does not excuse the rest: a changed signature value gets verify_signature's verdict."""
    _, files, signature = _batch()
    parts = files[0]
    proven = hashchain.verify_hash_chain(parts[SIG_HASH_CHAIN_RESULT], parts[SIG_HASH_CHAIN], parts.get, [MESSAGE])
    tampered = signature.replace(
        b"<ds:SignatureValue Id=\"signature-value\">", b"<ds:SignatureValue Id=\"signature-value\">AAAA"
    )
    assert tampered != signature
    with pytest.raises(InvalidSignatureValue) as over:
        verify_signature_over_chain(tampered, parts.get, proven)
    with pytest.raises(InvalidSignatureValue) as plain:
        verify_signature(tampered, parts.get)
    assert (over.value.message, over.value.reason) == (plain.value.message, plain.value.reason)


def test_a_proven_chain_for_other_inputs_is_not_taken() -> None:
    """When the proven chain's inputs are not the parts to cover, the chain is verified as verify_signature does."""
    _, files, signature = _batch()
    parts = files[1]
    proven = hashchain.verify_hash_chain(parts[SIG_HASH_CHAIN_RESULT], parts[SIG_HASH_CHAIN], parts.get, [])
    assert proven.used_inputs == frozenset()
    wrong = dataclasses.replace(proven, top=b"\x00" * len(proven.top))
    assert verify_signature_over_chain(signature, parts.get, wrong) == verify_signature(signature, parts.get)
