"""Hash chains: X-Road's Merkle trees over message parts, batches of messages and logged signatures.

One signature (or one timestamp) covers many inputs through a hash chain (XROAD-REFERENCE.md §4.2, §4.5;
X-Road ``cmsg/hashchain/``). The signed or timestamped object is a small ``HashChainResult`` XML holding the
tree's top digest; every input gets its own ``HashChain`` XML, the path of hash steps from that top down to
the input, so each input can be verified without the others.

**Step rule** (``DigestList.java``; protocol-examples §11.2, §12.5). A hash step's value is the digest of the
DER encoding of ::

    DigestList   ::= SEQUENCE OF SingleDigest
    SingleDigest ::= SEQUENCE { digest OCTET STRING, digestMethod UTF8String, transforms SEQUENCE {} }

over the step's children in document order, with the algorithm URI of each child.

**Tree shape** (``HashChainBuilder.java``). The inputs are the leaves of a binary tree of ``2**k`` slots,
``k = ceil(log2 n)``, filled from the left. An inner node whose right subtree holds no leaf takes the value of
its left child (the odd node is carried up, never hashed alone); every other inner node is the step over its
two children. An input that has several parts (a SOAP message with attachments, or a REST request with a
body) is first reduced to one leaf: the step over all its part digests, which its chain lists as a final step
of ``DataRef`` elements (``/message.xml``, then ``/attachment1``, ``/attachment2`` ...). A single input without
parts has no chain: it is signed or timestamped directly.

**Chain XML.** Step ``STEP0`` is the root; each step holds two children in tree order, left then right: the
branch towards the input (``StepRef`` to the next step, or ``DataRef`` at the leaf) and the ``HashValue`` of
the sibling branch. The result is ``<HashChainResult URI="<chain file>#STEP0">`` with the top digest.
"""

from __future__ import annotations

import base64
import binascii
import functools
import re
from dataclasses import dataclass
from typing import Callable, Collection, Iterable, Sequence
from xml.sax.saxutils import quoteattr

from lxml import etree

from security_server.core import digests
from security_server.core.digests import DigestAlgorithm
from security_server.core.errors import (
    BusError,
    HashChainUnusedInputs,
    InvalidHashChain,
    MalformedSignature,
)
from security_server.core.safexml import parse_xml

HASHCHAIN_NS = "http://cyber.ee/hashchain"
"""Namespace of ``HashChain`` and ``HashChainResult`` (X-Road ``hashchain.xsd``)."""

DS_NS = "http://www.w3.org/2000/09/xmldsig#"
"""XML-DSig namespace, used for ``DigestMethod``, ``DigestValue`` and ``Transforms`` inside hash chains."""

MESSAGE = "/message.xml"
"""URI of the signed message (SOAP message or REST header part) in signatures, chains and containers."""
SIGNATURE = "/META-INF/signatures.xml"
"""URI of the signature document: the input of timestamp hash chains."""
SIG_HASH_CHAIN = "/sig-hashchain.xml"
"""URI of a message's hash chain under a batch or multi-part signature."""
SIG_HASH_CHAIN_RESULT = "/sig-hashchainresult.xml"
"""URI of the hash chain result that a batch or multi-part signature references."""
TS_HASH_CHAIN = "/ts-hashchain.xml"
"""URI of a signature's hash chain under a batch timestamp."""
TS_HASH_CHAIN_RESULT = "/ts-hashchainresult.xml"
"""URI of the hash chain result that a batch timestamp covers."""

MAX_HASH_CHAIN_BYTES = 4 * 1024 * 1024
"""Largest hash chain or result document we parse (a chain over 10,000 records is a few kilobytes)."""

# X-Road error codes that hash-chain failures carry as subcodes (ErrorCodes.java).
INVALID_HASH_CHAIN_REF = "invalid_hash_chain_ref"
"""Subcode: a DataRef's digest does not match the referenced data."""
MALFORMED_HASH_CHAIN = "malformed_hash_chain"
"""Subcode: the hash chain or result is not a well-formed hash chain document."""
INVALID_REFERENCE = "invalid_reference"
"""Subcode: a reference names data or a hash chain that is not available."""

MAX_STEP_DEPTH = 64
"""Deepest chain of step references we follow (a tree over 2**64 inputs; guards the recursion)."""

_STEP = "STEP"
_EMPTY_TRANSFORMS = b"\x30\x00"


def attachment_uri(index: int) -> str:
    """URI of the ``index``-th attachment (1-based), as hash chains and containers name it."""
    if index < 1:
        raise ValueError("attachments are numbered from 1")
    return f"/attachment{index}"


# --- DER digest lists ---------------------------------------------------------------------------------------


def _der_length(length: int) -> bytes:
    if length < 0x80:
        return bytes((length,))
    body = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes((0x80 | len(body),)) + body


def _der(tag: int, content: bytes) -> bytes:
    return bytes((tag,)) + _der_length(len(content)) + content


@functools.lru_cache(maxsize=32)
def _single_digest_template(size: int, uri: str) -> tuple[bytes, bytes]:
    """The DER of a ``SingleDigest`` before and after its ``size`` digest octets: fixed for a given digest size and
    method URI, so each step is filled in rather than encoded (issue 18, lever 2)."""
    octets = bytes((0x04,)) + _der_length(size)
    method = _der(0x0C, uri.encode("utf-8")) + _EMPTY_TRANSFORMS
    return bytes((0x30,)) + _der_length(len(octets) + size + len(method)) + octets, method


def encode_digest_list(items: Iterable[tuple[bytes, str]]) -> bytes:
    """DER of ``SEQUENCE OF SEQUENCE { OCTET STRING digest, UTF8String method URI, SEQUENCE {} }``.

    ``items`` are ``(digest, digest method URI)`` pairs in step order (``DigestList.concatDigests``).
    """
    pieces: list[bytes] = []
    for digest, uri in items:
        head, tail = _single_digest_template(len(digest), uri)
        pieces += (head, digest, tail)
    return _der(0x30, b"".join(pieces))


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


# The chain documents as byte templates (issue 18, lever 2): the pieces around each digest, written once.
_DIGEST_VALUE_TAIL = b"</DigestValue>\n"
_DATA_REF_TAIL = _DIGEST_VALUE_TAIL + b"        </ns2:DataRef>\n"
_HASH_VALUE_HEAD = b"        <ns2:HashValue>\n            <DigestValue>"
_HASH_VALUE_TAIL = _DIGEST_VALUE_TAIL + b"        </ns2:HashValue>\n"
_STEP_TAIL = b"    </ns2:HashStep>\n"
_CHAIN_TAIL = b"</ns2:HashChain>\n"


def _data_ref_head(uri: str) -> bytes:
    return f"        <ns2:DataRef URI={quoteattr(uri)}>\n            <DigestValue>".encode("utf-8")


def _step_head(index: int) -> bytes:
    return f'    <ns2:HashStep id="{_STEP}{index}">\n'.encode("ascii")


def _step_ref(index: int) -> bytes:
    return f'        <ns2:StepRef URI="#{_STEP}{index}"/>\n'.encode("ascii")


def _chain_head(algorithm: DigestAlgorithm) -> bytes:
    return (
        f"{_XML_DECL}<ns2:HashChain {_ROOT_NS}>\n    <ns2:DefaultDigestMethod Algorithm=\"{algorithm.uri}\"/>\n"
    ).encode("utf-8")


def _chain_xml(head: bytes, steps: Sequence[Sequence[bytes]]) -> bytes:
    parts = [head]
    for index, children in enumerate(steps):
        parts.append(_step_head(index))
        parts.extend(children)
        parts.append(_STEP_TAIL)
    parts.append(_CHAIN_TAIL)
    return b"".join(parts)


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
    chain_head = _chain_head(algorithm)
    data_ref_head = _data_ref_head(data_uri)
    b64: dict[bytes, bytes] = {}  # a sibling's digest appears in the chains of every input below its sibling

    def encoded(digest: bytes) -> bytes:
        text = b64.get(digest)
        if text is None:
            text = b64[digest] = base64.b64encode(digest)
        return text

    def data_ref(digest: bytes) -> bytes:
        return data_ref_head + encoded(digest) + _DATA_REF_TAIL

    def multipart_step(parts: Sequence[bytes]) -> list[bytes]:
        return [data_ref(parts[0])] + [
            _data_ref_head(attachment_uri(number)) + encoded(digest) + _DATA_REF_TAIL
            for number, digest in enumerate(parts[1:], start=1)
        ]

    if len(leaves) == 1:
        top = leaves[0]
        chains = (_chain_xml(chain_head, [multipart_step(inputs[0])]),)
        return HashChains(top=top, result=_result_xml(algorithm, top, result_uri), chains=chains)

    tree = _Tree(algorithm, leaves)
    built: list[bytes] = []
    for index, parts in enumerate(inputs):
        steps: list[list[bytes]] = []
        path = tree.path(index)
        for step_index, (direction, my_width, sibling) in enumerate(path):
            if my_width == 1 and len(parts) == 1:
                mine = data_ref(parts[0])
            else:
                mine = _step_ref(step_index + 1)
            other = _HASH_VALUE_HEAD + encoded(sibling) + _HASH_VALUE_TAIL
            steps.append([mine, other] if direction == 0 else [other, mine])
        if len(parts) > 1:
            steps.append(multipart_step(parts))
        built.append(_chain_xml(chain_head, steps))
    top = tree.value(0, tree.root_width)
    return HashChains(top=top, result=_result_xml(algorithm, top, result_uri), chains=tuple(built))


def batch_hash_chain_result(
    leaves: Sequence[bytes], *, chain_uri: str, algorithm: DigestAlgorithm = digests.DEFAULT
) -> bytes:
    """``build_hash_chain([[leaf] for leaf in leaves], ...).result``, byte for byte, without building the chains.

    The ``HashChainResult`` of a batch of two or more single-part inputs: one tree walk, for a reader that only
    needs to know whether a batch's leaves give a stored result (the chains are then those leaves' chains).
    """
    if len(leaves) < 2:
        raise ValueError("a batch hash chain has at least two leaves")
    for leaf in leaves:
        if len(leaf) != algorithm.size:
            raise ValueError(f"part digest of {len(leaf)} bytes is not a {algorithm.name} digest")
    # Level by level: each pair's step digest (the DER digest list filled in, as step_digest encodes it), an odd
    # last node carried up unchanged: the tree that build_hash_chain builds.
    head, tail = _single_digest_template(algorithm.size, algorithm.uri)
    outer = _der(0x30, head + leaves[0] + tail + head + leaves[1] + tail)[: -2 * (len(head) + algorithm.size + len(tail))]
    digest = algorithm.digest
    level = list(leaves)
    while len(level) > 1:
        paired = [digest(b"".join((outer, head, level[at], tail, head, level[at + 1], tail)))
                  for at in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return _result_xml(algorithm, level[0], f"{chain_uri}#{_STEP}0")


# --- verifying ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class UnresolvedRef:
    """A ``DataRef`` whose data was not available, accepted on its stated digest (and so not verified)."""

    uri: str
    algorithm: DigestAlgorithm
    digest: bytes


@dataclass(frozen=True, slots=True)
class HashChainVerification:
    """What a verified hash chain proved: its top digest and which references it resolved."""

    algorithm: DigestAlgorithm
    top: bytes
    used_inputs: frozenset[str]
    data_refs: tuple[str, ...]
    unresolved: tuple[UnresolvedRef, ...]


def _malformed(message: str, reason: str | None = None) -> InvalidHashChain:
    return InvalidHashChain(message, reason=reason, subcode=MALFORMED_HASH_CHAIN)


def _children(element: etree._Element) -> list[etree._Element]:
    """Child elements of an element-only node; text other than whitespace is malformed (as the XSD says)."""
    if (element.text or "").strip() or any((child.tail or "").strip() for child in element):
        raise _malformed("unexpected text in hash chain")
    return [child for child in element if isinstance(child.tag, str)]


def _decode_digest(element: etree._Element) -> bytes:
    if len(element):
        raise _malformed("unexpected content in hash chain digest value")
    text = "".join((element.text or "").split())
    try:
        decoded = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as err:
        raise _malformed("hash chain digest value is not base64") from err
    if base64.b64encode(decoded).decode("ascii") != text:
        raise _malformed("hash chain digest value is not canonical base64")
    return decoded


def _algorithm_of(element: etree._Element) -> DigestAlgorithm:
    uri = element.get("Algorithm")
    algorithm = digests.lookup_uri(uri) if uri is not None else None
    if algorithm is None:
        raise _malformed("unsupported hash chain digest method", reason=f"unsupported hash chain digest method {uri!r}")
    return algorithm


_DIGEST_METHOD = f"{{{DS_NS}}}DigestMethod"
_DIGEST_VALUE = f"{{{DS_NS}}}DigestValue"
_TRANSFORMS = f"{{{DS_NS}}}Transforms"
_HC = f"{{{HASHCHAIN_NS}}}"


@dataclass(frozen=True, slots=True)
class _Value:
    kind: str  # "HashValue" | "StepRef" | "DataRef"
    algorithm: DigestAlgorithm
    uri: str | None
    digest: bytes | None


def _read_value(element: etree._Element, default: DigestAlgorithm | None) -> _Value:
    kind = etree.QName(element).localname
    children = _children(element)
    algorithm = default
    if children and children[0].tag == _DIGEST_METHOD:
        algorithm = _algorithm_of(children.pop(0))
    if algorithm is None:
        raise _malformed("hash chain value without a digest method")
    if children and children[0].tag == _TRANSFORMS:
        # X-Road's builders never write transforms; running them would need a general XML-DSig engine.
        raise _malformed("hash chain transforms are not supported")
    uri = element.get("URI")
    if kind == "StepRef":
        if uri is None or children:
            raise _malformed("malformed StepRef in hash chain")
        return _Value(kind, algorithm, uri, None)
    if len(children) != 1 or children[0].tag != _DIGEST_VALUE:
        raise _malformed(f"malformed {kind} in hash chain")
    if kind == "DataRef" and uri is None:
        raise _malformed("DataRef without URI in hash chain")
    return _Value(kind, algorithm, uri if kind == "DataRef" else None, _decode_digest(children[0]))


class _Chain:
    """A parsed ``HashChain`` document: its steps by id."""

    __slots__ = ("steps",)

    def __init__(self, xml: bytes) -> None:
        read = _template_steps(xml)  # our own chains: read from their bytes
        self.steps: dict[str, list[_Value]] = {} if read is None else read
        if read is not None:
            return
        root = _parse(xml, "HashChain")
        children = _children(root)
        default: DigestAlgorithm | None = None
        if children and children[0].tag == f"{_HC}DefaultDigestMethod":
            default = _algorithm_of(children.pop(0))
        for step in children:
            if step.tag != f"{_HC}HashStep":
                raise _malformed("unexpected element in hash chain", reason=f"unexpected element {step.tag} in hash chain")
            step_id = step.get("id")
            if not step_id or step_id in self.steps:
                raise _malformed("hash step without a unique id")
            values = []
            for value in _children(step):
                if value.tag not in (f"{_HC}HashValue", f"{_HC}StepRef", f"{_HC}DataRef"):
                    raise _malformed("unexpected element in hash step")
                values.append(_read_value(value, default))
            self.steps[step_id] = values


def _parse(xml: bytes, localname: str) -> etree._Element:
    try:
        root = parse_xml(xml, max_bytes=MAX_HASH_CHAIN_BYTES)
    except BusError as err:
        raise _malformed("hash chain is not well-formed XML", reason=f"hash chain is not well-formed XML: {err.reason}") from err
    if root.tag != f"{_HC}{localname}":
        raise _malformed(f"expected a {localname} document", reason=f"expected {localname}, found {root.tag}")
    return root


# --- our own documents, read from their bytes -------------------------------------------------------------------
#
# A hash chain or result in exactly the form build_hash_chain writes is read with regular expressions built from the
# builder's own pieces: every value group is restricted to characters that need no escaping (base64, digits, plain
# URIs), so a matching document is well-formed XML whose tree the groups fix. Anything else (another producer's
# layout, a value the parser would refuse) gives None and is parsed; the tests check both readers agree.

_B64 = rb"[A-Za-z0-9+/]+={0,2}"
_PLAIN_URI = rb"[A-Za-z0-9/._:#-]+"
_XML_DECL_BYTES = _XML_DECL.encode("ascii")
_RESULT_TEMPLATE = re.compile(
    re.escape(_XML_DECL_BYTES + b'<ns2:HashChainResult URI="') + rb"(?P<uri>" + _PLAIN_URI + rb")"
    + re.escape(f'" {_ROOT_NS}>\n    <DigestMethod Algorithm="'.encode()) + rb"(?P<method>" + _PLAIN_URI + rb")"
    + re.escape(b'"/>\n    <DigestValue>') + rb"(?P<digest>" + _B64 + rb")"
    + re.escape(b"</DigestValue>\n</ns2:HashChainResult>\n")
)
_TEMPLATE_DIGEST = re.escape(b"\n            <DigestValue>") + rb"(" + _B64 + rb")" + re.escape(b"</DigestValue>\n")
_TEMPLATE_VALUE = (
    rb"        <ns2:(?:"
    + rb'DataRef URI="(?P<data_uri>' + _PLAIN_URI + rb')">' + _TEMPLATE_DIGEST.replace(b"(", b"(?P<data_digest>", 1)
    + rb"        </ns2:DataRef>\n"
    + rb"|HashValue>" + _TEMPLATE_DIGEST.replace(b"(", b"(?P<hash_digest>", 1) + rb"        </ns2:HashValue>\n"
    + rb'|StepRef URI="(?P<step_uri>#' + _STEP.encode() + rb'[0-9]+)"/>\n'
    + rb")"
)
_TEMPLATE_STEP = (
    rb'    <ns2:HashStep id="(?P<id>' + _STEP.encode() + rb'[0-9]+)">\n(?P<values>(?:' + _TEMPLATE_VALUE
    + rb")+)    </ns2:HashStep>\n"
)
_CHAIN_TEMPLATE = re.compile(
    re.escape(f'{_XML_DECL}<ns2:HashChain {_ROOT_NS}>\n    <ns2:DefaultDigestMethod Algorithm="'.encode())
    + rb"(?P<method>" + _PLAIN_URI + rb')"/>\n(?P<steps>(?:' + re.sub(rb"\(\?P<[a-z_]+>", b"(", _TEMPLATE_STEP)
    + rb")+)</ns2:HashChain>\n"
)
_TEMPLATE_STEP_RE = re.compile(re.sub(rb"\(\?P<(?!id>|values>)[a-z_]+>", b"(", _TEMPLATE_STEP))
_TEMPLATE_VALUE_RE = re.compile(_TEMPLATE_VALUE)


def _template_digest(text: bytes) -> bytes | None:
    """The bytes of canonical base64 ``text`` (what :func:`_decode_digest` accepts), else None."""
    try:
        decoded = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
    return decoded if base64.b64encode(decoded) == text else None


def _template_result(xml: bytes) -> tuple[str, DigestAlgorithm, bytes] | None:
    """``(URI, algorithm, top digest)`` of a result in exactly our form, else None (then it is parsed)."""
    if len(xml) > MAX_HASH_CHAIN_BYTES:
        return None
    match = _RESULT_TEMPLATE.fullmatch(xml)
    if match is None:
        return None
    algorithm = digests.lookup_uri(match["method"].decode("ascii"))
    digest = _template_digest(match["digest"])
    if algorithm is None or digest is None:
        return None
    return match["uri"].decode("ascii"), algorithm, digest


def _template_steps(xml: bytes) -> dict[str, list[_Value]] | None:
    """The steps of a chain in exactly our form, as :class:`_Chain` reads them from the tree, else None."""
    if len(xml) > MAX_HASH_CHAIN_BYTES:
        return None
    match = _CHAIN_TEMPLATE.fullmatch(xml)
    if match is None:
        return None
    default = digests.lookup_uri(match["method"].decode("ascii"))
    if default is None:
        return None
    steps: dict[str, list[_Value]] = {}
    for step in _TEMPLATE_STEP_RE.finditer(match["steps"]):
        step_id = step["id"].decode("ascii")
        if step_id in steps:
            return None
        values: list[_Value] = []
        for found in _TEMPLATE_VALUE_RE.finditer(step["values"]):
            if found["step_uri"] is not None:
                values.append(_Value("StepRef", default, found["step_uri"].decode("ascii"), None))
                continue
            is_data = found["data_uri"] is not None
            digest = _template_digest(found["data_digest"] if is_data else found["hash_digest"])
            if digest is None:
                return None
            uri = found["data_uri"].decode("ascii") if is_data else None
            values.append(_Value("DataRef" if is_data else "HashValue", default, uri, digest))
        steps[step_id] = values
    return steps


def _split_uri(uri: str) -> tuple[str, str]:
    base, sep, fragment = uri.partition("#")
    if not sep or not fragment:
        raise _malformed("invalid hash step URI", reason=f"invalid hash step URI {uri!r}")
    return base, fragment


class _Verifier:
    """One verification run: follows step references, resolves data and records what was used."""

    def __init__(
        self,
        chain: _Chain,
        chain_base: str,
        resolve: Callable[[str], bytes | None],
        inputs: Collection[str],
        allow_unresolved: bool,
    ) -> None:
        self.chain = chain
        self.chain_base = chain_base
        self.resolve = resolve
        self.inputs = inputs
        self.allow_unresolved = allow_unresolved
        self.visited: set[str] = set()
        self.used: set[str] = set()
        self.data_refs: list[str] = []
        self.unresolved: list[UnresolvedRef] = []

    def step_data(self, uri: str, depth: int = 0) -> bytes:
        """DER digest list of the step that ``uri`` names (``resolveHashStep``)."""
        if depth > MAX_STEP_DEPTH:
            raise _malformed("hash chain is too deep")
        base, fragment = _split_uri(uri)
        if base and base != self.chain_base:
            raise InvalidHashChain(
                "hash step refers to another hash chain", reason=f"hash step {uri!r} is outside {self.chain_base!r}",
                subcode=INVALID_REFERENCE,
            )
        values = self.chain.steps.get(fragment)
        if values is None:
            raise _malformed("hash step not found", reason=f"hash step {uri!r} not found")
        if fragment in self.visited:
            # Every step of a tree path is used once; a second visit is a loop or a shared subtree.
            raise _malformed("hash step used twice", reason=f"hash step {fragment!r} is referenced twice")
        self.visited.add(fragment)
        return encode_digest_list([self.value_digest(value, depth) for value in values])

    def value_digest(self, value: _Value, depth: int) -> tuple[bytes, str]:
        if value.kind == "HashValue":
            assert value.digest is not None
            return value.digest, value.algorithm.uri
        if value.kind == "StepRef":
            assert value.uri is not None
            return value.algorithm.digest(self.step_data(value.uri, depth + 1)), value.algorithm.uri
        assert value.uri is not None and value.digest is not None
        return self.data_ref_digest(value.uri, value.algorithm, value.digest), value.algorithm.uri

    def data_ref_digest(self, uri: str, algorithm: DigestAlgorithm, stated: bytes) -> bytes:
        """The digest a ``DataRef`` stands for, after checking it against the data (``resolveDataRef``)."""
        self.data_refs.append(uri)
        if uri in self.inputs:
            self.used.add(uri)
        data = self.resolve(uri)
        if data is None:
            if not self.allow_unresolved:
                raise InvalidHashChain(
                    "hash chain refers to data that is not available", reason=f"cannot resolve {uri!r}",
                    subcode=INVALID_REFERENCE,
                )
            self.unresolved.append(UnresolvedRef(uri, algorithm, stated))
            return stated
        if algorithm.digest(data) != stated:
            raise InvalidHashChain(
                "invalid digest value in hash chain reference",
                reason=f"invalid digest value in hash chain reference to {uri!r}",
                subcode=INVALID_HASH_CHAIN_REF,
            )
        return stated


def verify_hash_chain(
    result_xml: bytes,
    chain_xml: bytes,
    resolve: Callable[[str], bytes | None],
    inputs: Collection[str] = (),
    *,
    allow_unresolved: bool = False,
) -> HashChainVerification:
    """Verify that ``chain_xml`` leads from the data to the digest in ``result_xml`` (``HashChainVerifier``).

    ``chain_xml`` is the chain file the result's URI names; every step must lie in it. ``resolve`` maps a
    ``DataRef`` URI to the referenced bytes, or None when they are not available: then the reference is an
    error, or, with ``allow_unresolved`` (an ASiC container holds the message but not always its
    attachments), it is accepted on its stated digest and listed as unresolved. Every URI in ``inputs`` must
    be referenced by the chain.

    Raises :class:`InvalidHashChain` (subcode ``invalid_hash_chain_ref``, ``malformed_hash_chain`` or
    ``invalid_reference``; no subcode when the result digest does not match) or
    :class:`HashChainUnusedInputs`.
    """
    read = _template_result(result_xml)
    if read is not None:
        uri, algorithm, expected = read
    else:
        result = _parse(result_xml, "HashChainResult")
        found_uri = result.get("URI")
        if found_uri is None:
            raise _malformed("hash chain result without URI")
        children = _children(result)
        if len(children) != 2 or children[0].tag != _DIGEST_METHOD or children[1].tag != _DIGEST_VALUE:
            raise _malformed("malformed hash chain result")
        uri, algorithm, expected = found_uri, _algorithm_of(children[0]), _decode_digest(children[1])
    base, _ = _split_uri(uri)
    if not base:
        raise _malformed("hash chain result must name its chain file")

    verifier = _Verifier(_Chain(chain_xml), base, resolve, inputs, allow_unresolved)
    if algorithm.digest(verifier.step_data(uri)) != expected:
        raise InvalidHashChain("hash chain result does not match hash chain calculation")
    unused = sorted(set(inputs) - verifier.used)
    if unused:
        raise HashChainUnusedInputs(
            "some inputs were not referenced by the hash chain",
            reason=f"inputs not referenced by the hash chain: {', '.join(unused)}",
        )
    return HashChainVerification(
        algorithm=algorithm,
        top=expected,
        used_inputs=frozenset(verifier.used),
        data_refs=tuple(verifier.data_refs),
        unresolved=tuple(verifier.unresolved),
    )


def xroad_code(err: InvalidHashChain | HashChainUnusedInputs) -> str:
    """The X-Road error code of a hash-chain failure (``invalid_hash_chain_ref``, ``hashchain_unused_inputs`` ...)."""
    if isinstance(err, InvalidHashChain) and err.subcode:
        return err.subcode
    return err.code


def as_malformed_signature(err: InvalidHashChain | HashChainUnusedInputs) -> MalformedSignature:
    """Report a failed signature hash chain as X-Road does: ``malformed_signature.<hash chain code>``."""
    return MalformedSignature(err.message, reason=err.reason, subcode=xroad_code(err), detail_id=err.detail_id)
