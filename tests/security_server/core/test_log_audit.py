"""The auditor's shared checks: the fast chain builder writes the builder's bytes; batch chains are found or not."""

from __future__ import annotations

import hashlib

from hypothesis import given, settings
from hypothesis import strategies as st

from security_server.core import digests
from security_server.core.hashchain import MESSAGE, SIG_HASH_CHAIN, SIGNATURE, TS_HASH_CHAIN, build_hash_chain
from security_server.core.log_audit import canonical_chains, expected_ts_chains


@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=2, max_value=300), st.sampled_from([(TS_HASH_CHAIN, SIGNATURE), (SIG_HASH_CHAIN, MESSAGE)]))
def test_canonical_chains_are_the_builders_bytes(count: int, uris: tuple[str, str]) -> None:
    """For any batch size, the result and every chain equal build_hash_chain's, byte for byte."""
    leaves = [hashlib.sha512(str(n).encode()).digest() for n in range(count)]
    built = build_hash_chain([[leaf] for leaf in leaves], chain_uri=uris[0], data_uri=uris[1])
    result, chains = canonical_chains(leaves, chain_uri=uris[0], data_uri=uris[1], algorithm=digests.SHA512)
    assert result == built.result and tuple(chains) == built.chains


def test_expected_ts_chains_only_for_the_batch_that_was_stamped() -> None:
    """The chains come back per record when the leaves give the stored result; a missing leaf gives none."""
    leaves = [(n, hashlib.sha512(bytes([n])).digest()) for n in range(1, 6)]
    built = build_hash_chain([[leaf] for _, leaf in leaves], chain_uri=TS_HASH_CHAIN, data_uri=SIGNATURE)
    expected = expected_ts_chains(leaves, built.result)
    assert [expected[n] for n in range(1, 6)] == [(leaf, chain) for (_, leaf), chain in zip(leaves, built.chains)]
    assert expected_ts_chains(leaves[1:], built.result) == {} and expected_ts_chains(leaves, None) == {}
