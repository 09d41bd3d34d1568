"""The hash-chain builder as it was before issue 18: DER and XML written per step and per chain as strings.

Kept as the reference of the byte templates in ``security_server/core/hashchain.py``: the tests check that the
templates give exactly these bytes for random batches. Not used outside the tests.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Iterable, Sequence
from xml.sax.saxutils import quoteattr

from security_server.core import digests
from security_server.core.digests import DigestAlgorithm
from security_server.core.hashchain import DS_NS, HASHCHAIN_NS, attachment_uri

_STEP = "STEP"
_EMPTY_TRANSFORMS = b"\x30\x00"


# --- DER digest lists ---------------------------------------------------------------------------------------


def _der_length(length: int) -> bytes:
    if length < 0x80:
        return bytes((length,))
    body = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes((0x80 | len(body),)) + body


def _der(tag: int, content: bytes) -> bytes:
    return bytes((tag,)) + _der_length(len(content)) + content


def encode_digest_list(items: Iterable[tuple[bytes, str]]) -> bytes:
    """DER of ``SEQUENCE OF SEQUENCE { OCTET STRING digest, UTF8String method URI, SEQUENCE {} }``.

    ``items`` are ``(digest, digest method URI)`` pairs in step order (``DigestList.concatDigests``).
    """
    body = b"".join(
        _der(0x30, _der(0x04, digest) + _der(0x0C, uri.encode("utf-8")) + _EMPTY_TRANSFORMS) for digest, uri in items
    )
    return _der(0x30, body)


def step_digest(algorithm: DigestAlgorithm, child_digests: Iterable[bytes]) -> bytes:
    """The value of a hash step whose children all use ``algorithm`` (``DigestList.digestHashStep``)."""
    return algorithm.digest(encode_digest_list((digest, algorithm.uri) for digest in child_digests))


# --- building -----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HashChains:
    """A built hash chain: the top digest, the ``HashChainResult`` XML, and one ``HashChain`` XML per input."""

    top: bytes
    result: bytes
    chains: tuple[bytes, ...]

    def __post_init__(self) -> None:
        if not self.chains:
            raise ValueError("a hash chain has at least one input")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


_XML_DECL = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
_ROOT_NS = f'xmlns="{DS_NS}" xmlns:ns2="{HASHCHAIN_NS}"'


def _result_xml(algorithm: DigestAlgorithm, top: bytes, uri: str) -> bytes:
    return (
        f"{_XML_DECL}<ns2:HashChainResult URI={quoteattr(uri)} {_ROOT_NS}>\n"
        f'    <DigestMethod Algorithm="{algorithm.uri}"/>\n'
        f"    <DigestValue>{_b64(top)}</DigestValue>\n"
        "</ns2:HashChainResult>\n"
    ).encode("utf-8")


def _data_ref(uri: str, digest: bytes) -> str:
    return (
        f"        <ns2:DataRef URI={quoteattr(uri)}>\n"
        f"            <DigestValue>{_b64(digest)}</DigestValue>\n"
        "        </ns2:DataRef>\n"
    )


def _hash_value(digest: bytes) -> str:
    return f"        <ns2:HashValue>\n            <DigestValue>{_b64(digest)}</DigestValue>\n        </ns2:HashValue>\n"


def _step_ref(index: int) -> str:
    return f'        <ns2:StepRef URI="#{_STEP}{index}"/>\n'


def _chain_xml(algorithm: DigestAlgorithm, steps: Sequence[Sequence[str]]) -> bytes:
    parts = [f"{_XML_DECL}<ns2:HashChain {_ROOT_NS}>\n", f'    <ns2:DefaultDigestMethod Algorithm="{algorithm.uri}"/>\n']
    for index, children in enumerate(steps):
        parts.append(f'    <ns2:HashStep id="{_STEP}{index}">\n')
        parts.extend(children)
        parts.append("    </ns2:HashStep>\n")
    parts.append("</ns2:HashChain>\n")
    return "".join(parts).encode("utf-8")


class _Tree:
    """The Merkle tree over ``leaves``: node ``(lo, width)`` covers slots ``lo .. lo + width - 1``."""

    __slots__ = ("algorithm", "leaves", "root_width", "_memo")

    def __init__(self, algorithm: DigestAlgorithm, leaves: Sequence[bytes]) -> None:
        self.algorithm = algorithm
        self.leaves = leaves
        self.root_width = 1 << (len(leaves) - 1).bit_length()
        self._memo: dict[tuple[int, int], bytes] = {}

    def carried(self, lo: int, width: int) -> int:
        """The width of the node that really holds this node's value (skipping carried-up left children)."""
        while width > 1 and lo + width // 2 >= len(self.leaves):
            width //= 2
        return width

    def value(self, lo: int, width: int) -> bytes:
        """The digest of node ``(lo, width)``; nodes with an empty right half carry their left child up."""
        width = self.carried(lo, width)
        if width == 1:
            return self.leaves[lo]
        key = (lo, width)
        cached = self._memo.get(key)
        if cached is None:
            half = width // 2
            cached = step_digest(self.algorithm, (self.value(lo, half), self.value(lo + half, half)))
            self._memo[key] = cached
        return cached

    def path(self, index: int) -> list[tuple[int, int, bytes]]:
        """The steps from the root to leaf ``index``: ``(direction, width of my child, sibling digest)``."""
        steps: list[tuple[int, int, bytes]] = []
        lo, width = 0, self.root_width
        while width > 1:
            half = width // 2
            if index < lo + half:
                direction, my_lo, other_lo = 0, lo, lo + half
            else:
                direction, my_lo, other_lo = 1, lo + half, lo
            my_width = self.carried(my_lo, half)
            steps.append((direction, my_width, self.value(other_lo, half)))
            lo, width = my_lo, my_width
        return steps


def build_hash_chain(
    inputs: Sequence[Sequence[bytes]],
    *,
    chain_uri: str,
    data_uri: str,
    algorithm: DigestAlgorithm = digests.DEFAULT,
) -> HashChains:
    """Build X-Road's hash chain over ``inputs`` (``HashChainBuilder``).

    Each input is the sequence of its part digests: one digest for a plain input, or the message digest
    followed by its attachment digests. ``chain_uri`` names the chain file in the result (e.g.
    :data:`SIG_HASH_CHAIN`); ``data_uri`` names the input data in ``DataRef`` elements (e.g. :data:`MESSAGE`).
    A single input with a single part has no hash chain and is refused with ``ValueError``.
    """
    if not inputs:
        raise ValueError("a hash chain needs at least one input")
    for parts in inputs:
        if not parts:
            raise ValueError("every hash chain input has at least one part digest")
        for digest in parts:
            if len(digest) != algorithm.size:
                raise ValueError(f"part digest of {len(digest)} bytes is not a {algorithm.name} digest")
    if len(inputs) == 1 and len(inputs[0]) == 1:
        raise ValueError("a single input without attachments is signed directly, not through a hash chain")

    leaves = [parts[0] if len(parts) == 1 else step_digest(algorithm, parts) for parts in inputs]
    result_uri = f"{chain_uri}#{_STEP}0"

    def multipart_step(parts: Sequence[bytes]) -> list[str]:
        return [_data_ref(data_uri, parts[0])] + [
            _data_ref(attachment_uri(number), digest) for number, digest in enumerate(parts[1:], start=1)
        ]

    if len(leaves) == 1:
        top = leaves[0]
        chains = (_chain_xml(algorithm, [multipart_step(inputs[0])]),)
        return HashChains(top=top, result=_result_xml(algorithm, top, result_uri), chains=chains)

    tree = _Tree(algorithm, leaves)
    built: list[bytes] = []
    for index, parts in enumerate(inputs):
        steps: list[list[str]] = []
        path = tree.path(index)
        for step_index, (direction, my_width, sibling) in enumerate(path):
            if my_width == 1 and len(parts) == 1:
                mine = _data_ref(data_uri, parts[0])
            else:
                mine = _step_ref(step_index + 1)
            other = _hash_value(sibling)
            steps.append([mine, other] if direction == 0 else [other, mine])
        if len(parts) > 1:
            steps.append(multipart_step(parts))
        built.append(_chain_xml(algorithm, steps))
    top = tree.value(0, tree.root_width)
    return HashChains(top=top, result=_result_xml(algorithm, top, result_uri), chains=tuple(built))
