"""Hash chains: X-Road's step rule and tree shape, reproduced on its vectors; build/verify round trips."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import zipfile
from pathlib import Path
from typing import Callable, Sequence
from unittest import mock

import pytest
from asn1crypto import core
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from security_server.core import digests, hashchain
from security_server.core.errors import HashChainUnusedInputs, InvalidHashChain, MalformedSignature
from security_server.core.hashchain import (
    MESSAGE,
    SIG_HASH_CHAIN,
    SIGNATURE,
    TS_HASH_CHAIN,
    batch_hash_chain_result,
    build_hash_chain,
    step_digest,
    verify_hash_chain,
)
from tests.security_server.core import hashchain_reference

HC = "{http://cyber.ee/hashchain}"
DS = "{http://www.w3.org/2000/09/xmldsig#}"
SHA512_URI = "http://www.w3.org/2001/04/xmlenc#sha512"


# An independent DER encoder (asn1crypto, which ships no type hints) for the DigestList of DigestList.java.
class _Transforms(core.Sequence):  # type: ignore[misc]
    _fields: list[tuple[str, type]] = []


class _SingleDigest(core.Sequence):  # type: ignore[misc]
    _fields = [("digest", core.OctetString), ("method", core.UTF8String), ("transforms", _Transforms)]


class _DigestList(core.SequenceOf):  # type: ignore[misc]
    _child_spec = _SingleDigest


def reference_step(children: Sequence[bytes], uri: str = SHA512_URI) -> bytes:
    """SHA-512 of the DER DigestList, encoded by asn1crypto rather than by the module under test."""
    encoded = _DigestList([{"digest": c, "method": uri, "transforms": _Transforms(contents=b"")} for c in children]).dump()
    return hashlib.sha512(encoded).digest()


def reference_top(leaves: Sequence[bytes]) -> bytes:
    """Merkle top with the odd node carried up: split at the largest power of two below n."""
    if len(leaves) == 1:
        return leaves[0]
    split = 1 << ((len(leaves) - 1).bit_length() - 1)
    return reference_step([reference_top(leaves[:split]), reference_top(leaves[split:])])


def b64(text: str) -> bytes:
    return base64.b64decode(text)


def container(vectors: Path, name: str) -> zipfile.ZipFile:
    return zipfile.ZipFile(vectors / "asic" / name)


def zip_resolver(archive: zipfile.ZipFile) -> Callable[[str], bytes | None]:
    names = set(archive.namelist())

    def resolve(uri: str) -> bytes | None:
        name = uri.lstrip("/")
        return archive.read(name) if name in names else None

    return resolve


def chain_steps(chain_xml: bytes) -> list[list[tuple[str, str]]]:
    """A chain as [[(kind, URI or digest b64), ...] per step] for shape assertions."""
    steps = []
    for step in etree.fromstring(chain_xml).iter(f"{HC}HashStep"):
        entries = []
        for child in step:
            kind = etree.QName(child).localname
            value = child.get("URI") if kind != "HashValue" else child.findtext(f"{DS}DigestValue")
            entries.append((kind, value or ""))
        steps.append(entries)
    return steps


# --- the step rule on X-Road's vectors (protocol-examples §11.2, §12) ---------------------------------------


def test_der_digest_list_matches_an_independent_encoder() -> None:
    """encode_digest_list gives the same DER as asn1crypto, for short and long-form lengths."""
    for children in ([b"\x01" * 64], [b"\x02" * 64, b"\x03" * 64], [bytes(range(64))] * 3):
        items = [(child, SHA512_URI) for child in children]
        expected = _DigestList([{"digest": c, "method": SHA512_URI, "transforms": _Transforms(contents=b"")} for c in children]).dump()
        assert hashchain.encode_digest_list(items) == expected


def test_sig_hashchain_step0_reproduces_the_vector(xroad_vectors: Path) -> None:
    """STEP0 of valid-signed-hashchain = H(DER[SHA-512(message.xml), attachment digest]) = the signed result."""
    archive = container(xroad_vectors, "valid-signed-hashchain.asice")
    message_digest = hashlib.sha512(archive.read("message.xml")).digest()
    assert message_digest == b64("mET+G37YrRAMl92j7gxR95W/rAcOBRlWTrbeJMt7L7lMr+1EALnsNRpq4fH6sUMJNWSA1B2kpDL0NDVCjIQnnw==")
    attachment = b64("YoZ26aBCLuGV0W9J7CH6YtOXhkEsleUwu1GwIrQ+ZJw7GBAnTwRZF2s2n/z8h1iOkzLiFmO8p4f2VVz+F1DqYg==")
    expected = b64("RMrOJhh5munNHgv/2wN0WOuxn8xeQ6d5CDOkUjifIlQCoK52NKJyGa8Gf6FpHZlU5VKM4VzOYMTFLJKxeEVNxg==")
    assert step_digest(digests.SHA512, [message_digest, attachment]) == expected
    assert reference_step([message_digest, attachment]) == expected


def test_sig_hashchain_builder_reproduces_the_vector_files(xroad_vectors: Path) -> None:
    """Our builder writes the same result digest and chain shape as X-Road for message + one attachment."""
    archive = container(xroad_vectors, "valid-signed-hashchain.asice")
    message_digest = hashlib.sha512(archive.read("message.xml")).digest()
    attachment = b64("YoZ26aBCLuGV0W9J7CH6YtOXhkEsleUwu1GwIrQ+ZJw7GBAnTwRZF2s2n/z8h1iOkzLiFmO8p4f2VVz+F1DqYg==")
    built = build_hash_chain([[message_digest, attachment]], chain_uri=SIG_HASH_CHAIN, data_uri=MESSAGE)
    assert built.result == archive.read("sig-hashchainresult.xml")
    assert chain_steps(built.chains[0]) == chain_steps(archive.read("sig-hashchain.xml"))


def test_batch_ts_step0_reproduces_the_vector(xroad_vectors: Path) -> None:
    """valid-batch-ts: STEP0 over SHA-512(signatures.xml) and its sibling equals ts-hashchainresult."""
    archive = container(xroad_vectors, "valid-batch-ts.asice")
    signature_digest = hashlib.sha512(archive.read("META-INF/signatures.xml")).digest()
    assert signature_digest == b64("+OjZN7vjd2pNWuImxXIZk07UO75tuC95lQ7WjVUJx1CcVQ+f+PNG8e0lFTSvnghIY+411a55U2GNKnTl/jCYSQ==")
    sibling = b64("FVZJtJM7iQDRGUHvrtSp6/MyRPATYYeaJu7tdbUzwNulDAqBO3t4J9qgsA6YqfrAx+9uP3lwYu4hH4A8wKpBog==")
    expected = b64("Y3Uqw+5REe4oujpRDKZIQd1M7HBKWB7V0QveaF1LT0dijDwBw2Sl80tIAwLzaExES/UfN+y6bmbrgy+aQjTQJA==")
    assert reference_step([signature_digest, sibling]) == expected
    # Two inputs, this record first: our builder writes the same chain and result.
    built = build_hash_chain([[signature_digest], [sibling]], chain_uri=TS_HASH_CHAIN, data_uri=SIGNATURE)
    assert built.result == archive.read("ts-hashchainresult.xml")
    assert chain_steps(built.chains[0]) == chain_steps(archive.read("ts-hashchain.xml"))


def test_rest_ts_hashchain_three_levels_reproduce_the_vector(xroad_vectors: Path) -> None:
    """valid-non-batch-rest: STEP2 -> STEP1 -> STEP0 by StepRef, each level recomputed, ends at the result."""
    archive = container(xroad_vectors, "valid-non-batch-rest.asice")
    step2 = reference_step([
        b64("dyq9/U5w9vqbVcsFtq1XieDgeB62xCUGm7EkwsX014f+Cuv8DgqBw81VXcHKJ8ccZdkvYsvatI3upVm8rkC9Fg=="),
        hashlib.sha512(archive.read("META-INF/signatures.xml")).digest(),
    ])
    step1 = reference_step([
        b64("lbjsXWosAooytL3aXZnpZTrku65R/nJ3DAh4cVWrP4wfF7NEa0sjMo3ryCBo8lLthOK/EpmeHwThrbPp2AOESw=="), step2
    ])
    step0 = reference_step([
        b64("XAyWG7XkO/UoPwjnUbEPm5LAKG1uYtikL53x/mhh3wuD/TiAKmx9AFiZXuY3Tek66KPD+cUSgS+amPTTZwVOuA=="), step1
    ])
    assert step0 == b64("OJeX8QiwfAFqAYFZWh/c0IlOuvo6xj0CpDZk4aXr8Qn3a7yJp7oAI90tslvqhPITPPOmrNhv+N8zEeKBHBX2jg==")
    verified = verify_hash_chain(
        archive.read("ts-hashchainresult.xml"), archive.read("ts-hashchain.xml"), zip_resolver(archive), [SIGNATURE]
    )
    assert verified.top == step0
    assert verified.used_inputs == {SIGNATURE}


# --- X-Road's verdicts on the vectors' hash chains ----------------------------------------------------------


@pytest.mark.parametrize(
    ("vector", "result", "chain", "inputs", "expected"),
    [
        ("valid-signed-hashchain.asice", "sig-hashchainresult.xml", "sig-hashchain.xml", [MESSAGE], "valid"),
        ("valid-batch-ts.asice", "ts-hashchainresult.xml", "ts-hashchain.xml", [SIGNATURE], "valid"),
        ("valid-non-batch-soap-attachments.asice", "ts-hashchainresult.xml", "ts-hashchain.xml", [SIGNATURE], "valid"),
        ("invalid-signed-hashchain.asice", "sig-hashchainresult.xml", "sig-hashchain.xml", [MESSAGE], "invalid_hash_chain_ref"),
        ("invalid-hashchain-modified-message.asice", "sig-hashchainresult.xml", "sig-hashchain.xml", [MESSAGE], "hashchain_unused_inputs"),
        ("invalid-ts-hashchainresult.asice", "ts-hashchainresult.xml", "ts-hashchain.xml", [SIGNATURE], "malformed_hash_chain"),
    ],
)
def test_vector_hash_chains_get_xroads_codes(
    xroad_vectors: Path, vector: str, result: str, chain: str, inputs: list[str], expected: str
) -> None:
    """Each vector's hash chain verifies or fails with the code X-Road gives inside malformed_signature."""
    archive = container(xroad_vectors, vector)
    try:
        verify_hash_chain(archive.read(result), archive.read(chain), zip_resolver(archive), inputs, allow_unresolved=True)
        code = "valid"
    except (InvalidHashChain, HashChainUnusedInputs) as err:
        code = hashchain.xroad_code(err)
    assert code == expected


def test_missing_attachment_is_listed_as_unresolved(xroad_vectors: Path) -> None:
    """valid-signed-hashchain lacks attachment1: accepted on its stated digest only when allowed, and listed."""
    archive = container(xroad_vectors, "valid-signed-hashchain.asice")
    result, chain = archive.read("sig-hashchainresult.xml"), archive.read("sig-hashchain.xml")
    verified = verify_hash_chain(result, chain, zip_resolver(archive), [MESSAGE], allow_unresolved=True)
    assert [ref.uri for ref in verified.unresolved] == ["/attachment1"]
    with pytest.raises(InvalidHashChain) as info:
        verify_hash_chain(result, chain, zip_resolver(archive), [MESSAGE])
    assert info.value.subcode == "invalid_reference"


def test_signature_errors_carry_xroad_codes_as_subcodes() -> None:
    """as_malformed_signature turns hash-chain failures into malformed_signature.<X-Road code>."""
    ref = hashchain.as_malformed_signature(InvalidHashChain("x", subcode="invalid_hash_chain_ref"))
    unused = hashchain.as_malformed_signature(HashChainUnusedInputs("x"))
    result = hashchain.as_malformed_signature(InvalidHashChain("x"))
    assert isinstance(ref, MalformedSignature)
    assert [e.subcode for e in (ref, unused, result)] == ["invalid_hash_chain_ref", "hashchain_unused_inputs", "invalid_hash_chain"]


# --- tree shape (HashChainBuilder) --------------------------------------------------------------------------


def leaf(n: int) -> bytes:
    return hashlib.sha512(b"leaf %d" % n).digest()


def enc(digest: bytes) -> str:
    return base64.b64encode(digest).decode()


def test_two_inputs_each_get_one_step_in_tree_order() -> None:
    """With two inputs the chains are [DataRef, HashValue] and [HashValue, DataRef] over H(a, b)."""
    a, b = leaf(0), leaf(1)
    built = build_hash_chain([[a], [b]], chain_uri=SIG_HASH_CHAIN, data_uri=MESSAGE)
    assert built.top == reference_step([a, b])
    assert chain_steps(built.chains[0]) == [[("DataRef", MESSAGE), ("HashValue", enc(b))]]
    assert chain_steps(built.chains[1]) == [[("HashValue", enc(a)), ("DataRef", MESSAGE)]]


def test_three_inputs_carry_the_odd_leaf_up() -> None:
    """With three inputs the third leaf is paired with H(a, b) at the root, without a step of its own."""
    a, b, c = leaf(0), leaf(1), leaf(2)
    built = build_hash_chain([[a], [b], [c]], chain_uri=SIG_HASH_CHAIN, data_uri=MESSAGE)
    ab = reference_step([a, b])
    assert built.top == reference_step([ab, c])
    assert chain_steps(built.chains[0]) == [
        [("StepRef", "#STEP1"), ("HashValue", enc(c))],
        [("DataRef", MESSAGE), ("HashValue", enc(b))],
    ]
    assert chain_steps(built.chains[2]) == [[("HashValue", enc(ab)), ("DataRef", MESSAGE)]]


def test_five_inputs_last_leaf_is_paired_with_the_left_subtree() -> None:
    """With five inputs the fifth leaf hangs directly under the root, beside the tree of the first four."""
    leaves = [leaf(n) for n in range(5)]
    built = build_hash_chain([[x] for x in leaves], chain_uri=SIG_HASH_CHAIN, data_uri=MESSAGE)
    assert built.top == reference_top(leaves)
    assert chain_steps(built.chains[4]) == [[("HashValue", enc(reference_top(leaves[:4]))), ("DataRef", MESSAGE)]]
    assert len(chain_steps(built.chains[0])) == 3


def test_single_message_with_attachments_has_one_step_of_data_refs() -> None:
    """One message with attachments: one step over all parts, DataRefs /message.xml, /attachment1, /attachment2."""
    parts = [leaf(0), leaf(1), leaf(2)]
    built = build_hash_chain([parts], chain_uri=SIG_HASH_CHAIN, data_uri=MESSAGE)
    assert built.top == reference_step(parts)
    assert chain_steps(built.chains[0]) == [
        [("DataRef", MESSAGE), ("DataRef", "/attachment1"), ("DataRef", "/attachment2")]
    ]


def test_batch_member_with_attachments_ends_with_its_parts_step() -> None:
    """In a batch, a message with attachments is one leaf whose chain ends with a step over its parts."""
    parts = [leaf(0), leaf(1)]
    other = leaf(2)
    built = build_hash_chain([parts, [other]], chain_uri=SIG_HASH_CHAIN, data_uri=MESSAGE)
    assert built.top == reference_step([reference_step(parts), other])
    assert chain_steps(built.chains[0]) == [
        [("StepRef", "#STEP1"), ("HashValue", enc(other))],
        [("DataRef", MESSAGE), ("DataRef", "/attachment1")],
    ]


def test_a_lone_plain_input_has_no_hash_chain() -> None:
    """One input without attachments is signed directly; building a chain for it is refused."""
    with pytest.raises(ValueError):
        build_hash_chain([[leaf(0)]], chain_uri=SIG_HASH_CHAIN, data_uri=MESSAGE)


@pytest.mark.parametrize("count", [2, 3, 4, 5, 7, 8, 9, 33, 100])
def test_batch_result_is_the_builders_result_without_the_chains(count: int) -> None:
    """batch_hash_chain_result gives build_hash_chain's result bytes for a batch of single-part leaves."""
    leaves = [hashlib.sha512(bytes([n]) * 3).digest() for n in range(count)]
    built = build_hash_chain([[x] for x in leaves], chain_uri=TS_HASH_CHAIN, data_uri=SIGNATURE, algorithm=digests.SHA512)
    assert batch_hash_chain_result(leaves, chain_uri=TS_HASH_CHAIN, algorithm=digests.SHA512) == built.result


def test_batch_result_refuses_a_lone_leaf_and_a_wrong_size() -> None:
    """A batch result needs two or more leaves of the algorithm's digest size."""
    with pytest.raises(ValueError):
        batch_hash_chain_result([leaf(0)], chain_uri=TS_HASH_CHAIN)
    with pytest.raises(ValueError):
        batch_hash_chain_result([leaf(0), b"short"], chain_uri=TS_HASH_CHAIN)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.binary(min_size=0, max_size=40), min_size=1, max_size=3), min_size=1, max_size=40))
def test_every_chain_verifies_against_its_own_data(messages: list[list[bytes]]) -> None:
    """For any batch, the top is the reference Merkle top and every message's chain verifies from its data."""
    if len(messages) == 1 and len(messages[0]) == 1:
        messages = messages + [[b"second"]]
    inputs = [[hashlib.sha512(part).digest() for part in parts] for parts in messages]
    built = build_hash_chain(inputs, chain_uri=SIG_HASH_CHAIN, data_uri=MESSAGE)
    leaves = [parts[0] if len(parts) == 1 else reference_step(parts) for parts in inputs]
    assert built.top == reference_top(leaves)
    for parts, chain in zip(messages, built.chains):
        data = {MESSAGE: parts[0], **{f"/attachment{i}": p for i, p in enumerate(parts[1:], start=1)}}
        data[SIG_HASH_CHAIN] = chain
        verified = verify_hash_chain(built.result, chain, data.get, list(data.keys() - {SIG_HASH_CHAIN}))
        assert verified.top == built.top


@settings(max_examples=50, deadline=None)
@given(
    st.integers(min_value=2, max_value=20),
    st.data(),
)
def test_changed_data_or_sibling_is_detected(count: int, data: st.DataObject) -> None:
    """Changing a message byte breaks its DataRef; changing a sibling HashValue breaks the result."""
    messages = [b"message %d" % n for n in range(count)]
    built = build_hash_chain([[hashlib.sha512(m).digest()] for m in messages], chain_uri=SIG_HASH_CHAIN, data_uri=MESSAGE)
    index = data.draw(st.integers(0, count - 1))
    message = bytearray(messages[index])
    position = data.draw(st.integers(0, len(message) - 1))
    message[position] ^= data.draw(st.integers(1, 255))
    with pytest.raises(InvalidHashChain) as info:
        verify_hash_chain(built.result, built.chains[index], {MESSAGE: bytes(message)}.get, [MESSAGE])
    assert info.value.subcode == "invalid_hash_chain_ref"

    root = etree.fromstring(built.chains[index])
    value = root.find(f".//{HC}HashValue/{DS}DigestValue")
    assert value is not None and value.text is not None
    value.text = enc(hashlib.sha512(value.text.encode()).digest())
    with pytest.raises(InvalidHashChain) as info:
        verify_hash_chain(built.result, etree.tostring(root), {MESSAGE: messages[index]}.get, [MESSAGE])
    assert info.value.subcode is None and info.value.code == "invalid_hash_chain"


# --- hostile chains -----------------------------------------------------------------------------------------


def chain_doc(steps: str) -> bytes:
    return (
        f'<ns2:HashChain xmlns="http://www.w3.org/2000/09/xmldsig#" xmlns:ns2="http://cyber.ee/hashchain">'
        f'<ns2:DefaultDigestMethod Algorithm="{SHA512_URI}"/>{steps}</ns2:HashChain>'
    ).encode()


def result_doc(digest: bytes = bytes(64), uri: str = "/sig-hashchain.xml#STEP0") -> bytes:
    return (
        f'<ns2:HashChainResult URI="{uri}" xmlns="http://www.w3.org/2000/09/xmldsig#" xmlns:ns2="http://cyber.ee/hashchain">'
        f'<DigestMethod Algorithm="{SHA512_URI}"/><DigestValue>{enc(digest)}</DigestValue></ns2:HashChainResult>'
    ).encode()


def subcode_of(result: bytes, chain: bytes) -> str | None:
    with pytest.raises(InvalidHashChain) as info:
        verify_hash_chain(result, chain, lambda uri: None, [])
    return info.value.subcode


def test_step_loop_is_refused() -> None:
    """A StepRef cycle (STEP0 -> STEP1 -> STEP0) is malformed, not an endless loop."""
    chain = chain_doc('<ns2:HashStep id="STEP0"><ns2:StepRef URI="#STEP1"/></ns2:HashStep>'
                      '<ns2:HashStep id="STEP1"><ns2:StepRef URI="#STEP0"/></ns2:HashStep>')
    assert subcode_of(result_doc(), chain) == "malformed_hash_chain"


def test_deep_step_nesting_is_refused_without_recursion_error() -> None:
    """A chain of 500 nested StepRefs is refused as malformed instead of exhausting the stack."""
    steps = "".join(f'<ns2:HashStep id="STEP{n}"><ns2:StepRef URI="#STEP{n + 1}"/></ns2:HashStep>' for n in range(500))
    assert subcode_of(result_doc(), chain_doc(steps)) == "malformed_hash_chain"


def test_missing_step_duplicate_id_and_foreign_chain_are_refused() -> None:
    """A result naming no step, duplicate step ids and a step in another file are all refused."""
    one = '<ns2:HashStep id="STEP0"><ns2:HashValue><DigestValue>AA==</DigestValue></ns2:HashValue></ns2:HashStep>'
    assert subcode_of(result_doc(uri="/sig-hashchain.xml#STEP9"), chain_doc(one)) == "malformed_hash_chain"
    assert subcode_of(result_doc(), chain_doc(one + one)) == "malformed_hash_chain"
    foreign = '<ns2:HashStep id="STEP0"><ns2:StepRef URI="/other.xml#STEP0"/></ns2:HashStep>'
    assert subcode_of(result_doc(), chain_doc(foreign)) == "invalid_reference"


def test_doctype_and_unknown_algorithm_are_malformed() -> None:
    """A chain with a DOCTYPE (XXE) or an unknown digest method is malformed_hash_chain."""
    xxe = b'<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>' + chain_doc("")
    assert subcode_of(result_doc(), xxe) == "malformed_hash_chain"
    sha1 = chain_doc("").replace(SHA512_URI.encode(), b"http://www.w3.org/2000/09/xmldsig#sha1")
    assert subcode_of(result_doc(), sha1) == "malformed_hash_chain"


def test_unused_input_is_reported() -> None:
    """An input that no DataRef names fails with hashchain_unused_inputs."""
    built = build_hash_chain([[leaf(0)], [leaf(1)]], chain_uri=SIG_HASH_CHAIN, data_uri=MESSAGE)
    with pytest.raises(HashChainUnusedInputs):
        verify_hash_chain(built.result, built.chains[0], lambda uri: None, [MESSAGE, "/attachment1"], allow_unresolved=True)


# --- our own documents, read from their bytes ------------------------------------------------------------------


def _parsed_steps(chain_xml: bytes) -> dict[str, list[hashchain._Value]]:
    """The steps as the parser reads them (the template reader switched off)."""
    with mock.patch.object(hashchain, "_template_steps", lambda xml: None):
        return dict(hashchain._Chain(chain_xml).steps)


def _verdict(result: bytes, chain: bytes, data: dict[str, bytes], inputs: list[str], *, template: bool) -> object:
    """verify_hash_chain's result, or its error's class, message, reason and subcode."""
    with contextlib.ExitStack() as stack:
        if not template:
            stack.enter_context(mock.patch.object(hashchain, "_template_steps", lambda xml: None))
            stack.enter_context(mock.patch.object(hashchain, "_template_result", lambda xml: None))
        try:
            return verify_hash_chain(result, chain, data.get, inputs)
        except (InvalidHashChain, HashChainUnusedInputs) as err:
            return (type(err), err.message, err.reason, err.subcode)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(min_value=1, max_value=3), min_size=1, max_size=40),
    st.sampled_from([(SIG_HASH_CHAIN, MESSAGE), (TS_HASH_CHAIN, SIGNATURE)]),
    st.sampled_from(digests.ALL),
)
def test_the_template_readers_read_what_the_parser_reads(
    shape: list[int], uris: tuple[str, str], algorithm: digests.DigestAlgorithm
) -> None:
    """For any batch shape, chain name and digest, our chains and results are read from their bytes (no parse),
    into exactly the steps, URI, algorithm and top digest the parser reads."""
    if shape == [1]:
        shape = [1, 1]
    inputs = [[algorithm.digest(b"%d-%d" % (n, p)) for p in range(parts)] for n, parts in enumerate(shape)]
    built = build_hash_chain(inputs, chain_uri=uris[0], data_uri=uris[1], algorithm=algorithm)
    assert hashchain._template_result(built.result) == (f"{uris[0]}#STEP0", algorithm, built.top)
    for chain in built.chains:
        steps = hashchain._template_steps(chain)
        assert steps is not None and steps == _parsed_steps(chain)


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=2, max_value=9), st.booleans(), st.data())
def test_a_changed_byte_of_a_chain_gets_the_parsers_verdict(count: int, in_result: bool, data: st.DataObject) -> None:
    """Change, insert or delete one byte of our chain or result: verify_hash_chain gives exactly the parser's
    verdict (result, or error with reason and subcode), whether or not the template readers took the document."""
    messages = [b"message %d" % n for n in range(count)]
    built = build_hash_chain([[hashlib.sha512(m).digest()] for m in messages], chain_uri=SIG_HASH_CHAIN, data_uri=MESSAGE)
    index = data.draw(st.integers(0, count - 1))
    document = bytearray(built.result if in_result else built.chains[index])
    position = data.draw(st.integers(0, len(document) - 1))
    action = data.draw(st.sampled_from(["flip", "insert", "delete"]))
    if action == "flip":
        document[position] ^= data.draw(st.integers(1, 255))
    elif action == "insert":
        document.insert(position, data.draw(st.sampled_from(b" \n=+/A0&<>\"#x\xff")))
    else:
        del document[position]
    result, chain = (bytes(document), built.chains[index]) if in_result else (built.result, bytes(document))
    files = {MESSAGE: messages[index]}
    assert _verdict(result, chain, files, [MESSAGE], template=True) == _verdict(result, chain, files, [MESSAGE], template=False)


def test_the_template_readers_decline_other_layouts() -> None:
    """A chain or result laid out otherwise (no declaration, other indentation, non-canonical base64) is parsed."""
    built = build_hash_chain([[leaf(1)], [leaf(2)]], chain_uri=SIG_HASH_CHAIN, data_uri=MESSAGE)
    assert hashchain._template_result(result_doc()) is None
    assert hashchain._template_steps(chain_doc("")) is None
    assert hashchain._template_steps(built.chains[0].replace(b"\n        <", b"\n       <")) is None
    assert hashchain._template_result(built.result.replace(b"==</DigestValue>", b"=</DigestValue>")) is None
    three = build_hash_chain([[leaf(1)], [leaf(2)], [leaf(3)]], chain_uri=SIG_HASH_CHAIN, data_uri=MESSAGE)
    assert b'id="STEP1"' in three.chains[0]
    assert hashchain._template_steps(three.chains[0].replace(b'id="STEP1"', b'id="STEP0"')) is None  # a repeated id


# --- the byte templates against the builder they replaced ----------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.lists(st.binary(max_size=8), min_size=1, max_size=3), min_size=1, max_size=33),
    st.sampled_from([(SIG_HASH_CHAIN, MESSAGE), (TS_HASH_CHAIN, SIGNATURE), ("/other chain&.xml", "/data <1>")]),
    st.sampled_from(digests.ALL),
)
def test_the_byte_templates_write_the_old_builders_bytes(
    messages: list[list[bytes]], uris: tuple[str, str], algorithm: digests.DigestAlgorithm
) -> None:
    """For any batch, chain and data names (quoted as before) and digest, the templates give byte for byte the
    top, result and chains of the per-step string builder (kept in tests/.../hashchain_reference.py)."""
    if len(messages) == 1 and len(messages[0]) == 1:
        messages = messages + [[b"second"]]
    inputs = [[algorithm.digest(part) for part in parts] for parts in messages]
    ours = build_hash_chain(inputs, chain_uri=uris[0], data_uri=uris[1], algorithm=algorithm)
    theirs = hashchain_reference.build_hash_chain(inputs, chain_uri=uris[0], data_uri=uris[1], algorithm=algorithm)
    assert (ours.top, ours.result, ours.chains) == (theirs.top, theirs.result, theirs.chains)


@given(st.lists(st.tuples(st.binary(max_size=200), st.text(max_size=200)), min_size=0, max_size=4))
def test_the_step_template_is_the_digest_lists_der(items: list[tuple[bytes, str]]) -> None:
    """encode_digest_list, filled into per-size-and-URI DER templates, equals an independent DER encoder for any
    digests and method URIs (long forms of the lengths included)."""
    independent = _DigestList(
        [{"digest": d, "method": uri, "transforms": _Transforms(contents=b"")} for d, uri in items]
    ).dump()
    assert hashchain.encode_digest_list(items) == independent
