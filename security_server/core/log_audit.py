"""The auditor's checks of message-log records against their evidence, each shared piece verified once.

``fedbus audit verify log`` (issue 23) checks every record of a log; records share most of their evidence. A
batch timestamp covers thousands of records through one ``ts-hashchainresult.xml`` and one RFC 3161 token; a batch
signature covers the messages signed together (one XAdES signature over a ``sig-hashchainresult.xml``); every
signature of one member carries the same certificate and, until it is refreshed, the same OCSP response.
:class:`LogAuditor` therefore verifies

* each timestamp token once (decoded, its imprint compared, with a configuration its CMS signature and TSA), by the
  timestamp's id;
* each record's ``ts-hashchain.xml`` by comparing its bytes with the chain the timestamper writes for that leaf
  (:func:`expected_ts_chains` rebuilds a batch's chains once from the batch's signature hashes); a chain in any other
  form, or of a batch whose stored result is not the rebuilt one, is verified by
  :func:`~security_server.core.hashchain.verify_hash_chain` as before;
* each distinct signature once (:func:`~security_server.core.signature.verify_signature`: structure, value,
  references), then for every other record under it only that record's ``sig-hashchain.xml`` and coverage;
* each signing certificate's path to an approved CA once (revalidated in time for each signing time), each OCSP
  response's decoding and signature once (``core.trust`` remembers them), and that the certificate belongs to the
  member the record names as signer (the client of a request, the service's provider of a response).

Every check says the same as the check it replaces; only the work is shared. A failure is returned as text naming
what failed, never cached as a success. This module is pure: ``now`` is an argument.
"""

from __future__ import annotations

import binascii
import functools
import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol, Sequence

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from security_server.core import digests, hashchain
from security_server.core.errors import (
    SOAP_ENV_NS,
    BusError,
    HashChainUnusedInputs,
    IncorrectCertificate,
    IncorrectValidationInfo,
    InvalidClientIdentifier,
    InvalidHashChain,
    InvalidSignatureValue,
    MalformedSignature,
)
from security_server.core.evidence import VerificationConf, member_from_certificate
from security_server.core.digests import DigestAlgorithm
from security_server.core.hashchain import MESSAGE, SIGNATURE, TS_HASH_CHAIN, attachment_uri
from security_server.core.identifiers import ClientId, ServiceId
from security_server.core.logchain import Direction
from security_server.core.safexml import parse_xml
from security_server.core.signature import VerifiedSignature, signature_value, verify_signature, verify_signature_over_chain
from security_server.core.timestamp import TimestampInfo, read_timestamp_token, verify_timestamp_token
from security_server.core.trust import DEFAULT_CLOCK_SKEW_SECONDS, check_ocsp_response, check_validity, verify_cert_path


_MAX_SIGNATURES = 4096
"""Verified signatures remembered (records of one signature come together; a long log must not fill memory)."""
_MAX_REMEMBERED = 1024
"""Signing certificates whose DER is remembered (a log has a few signers; other readers give new objects)."""


class AuditedRecord(Protocol):
    """What the checks read of a record: a :class:`~security_server.core.logchain.LogRecord`, or the bulk
    verifier's lighter reading of its row (the same fields, already checked by the reader)."""

    @property
    def id(self) -> int: ...
    @property
    def direction(self) -> Direction: ...
    @property
    def client(self) -> str: ...
    @property
    def service(self) -> str: ...
    @property
    def message(self) -> bytes: ...
    @property
    def signature(self) -> bytes: ...
    @property
    def signature_hash(self) -> bytes: ...
    @property
    def hashchain(self) -> bytes | None: ...
    @property
    def hashchainresult(self) -> bytes | None: ...
    @property
    def attachments(self) -> tuple[bytes, ...]: ...


@dataclass(frozen=True, slots=True)
class Stamp:
    """A record's share of a stored timestamp: the timestamp's id, token and batch result, the record's ts chain."""

    id: int
    token: bytes
    hash_chain_result: bytes | None
    hash_chain: bytes | None
    leaf: bytes | None = None
    """When the record's chain is known to be the timestamper's chain, at the record's place, over a batch whose
    leaves give ``hash_chain_result`` exactly (a derived chain, checked once per batch): the leaf at that place.
    The chain then holds exactly when this is the record's signature hash, and is not read (``hash_chain`` may
    be None); otherwise the chain itself is needed for the verdict."""


def canonical_chains(
    leaves: Sequence[bytes], *, chain_uri: str, data_uri: str, algorithm: DigestAlgorithm = digests.DEFAULT
) -> tuple[bytes, list[bytes]]:
    """``build_hash_chain([[leaf] for leaf in leaves], ...)``'s result and chains, byte for byte, built faster.

    The builder's own pieces are used, and each hash step's bytes are made once per tree node and shared by every
    leaf under it (the chains of neighbouring leaves differ only in their lowest steps), where the builder walks
    the tree again for each leaf. Two or more single-part leaves.
    """
    result, chains, _ = _canonical(leaves, chain_uri=chain_uri, data_uri=data_uri, algorithm=algorithm)
    return result, chains


def _canonical(
    leaves: Sequence[bytes], *, chain_uri: str, data_uri: str, algorithm: DigestAlgorithm
) -> tuple[bytes, list[bytes], bytes]:
    """:func:`canonical_chains`, with the top digest that the result states."""
    count = len(leaves)
    if count < 2:
        raise ValueError("a batch hash chain has at least two leaves")
    if any(len(leaf) != algorithm.size for leaf in leaves):
        raise ValueError(f"leaves are {algorithm.name} digests")
    plan = _chains_plan(count, data_uri, algorithm)
    values = list(leaves)
    head, middle, tail = _step_pieces(algorithm)
    digest = algorithm.digest
    for left, right in plan.nodes:  # step_digest of the two, its DER filled in
        values.append(digest(head + values[left] + middle + values[right] + tail))
    texts = [_b64(value, newline=False) for value in values]  # base64.b64encode's bytes
    chains = []
    for literals, slots in plan.chains:
        pieces = [literals[0]]
        for slot, literal in zip(slots, literals[1:]):
            pieces += (texts[slot], literal)
        chains.append(b"".join(pieces))
    top = values[plan.top]
    before, after = _result_pieces(algorithm, f"{chain_uri}#{hashchain._STEP}0")
    return before + texts[plan.top] + after, chains, top


@functools.lru_cache(maxsize=8)
def _step_pieces(algorithm: DigestAlgorithm) -> tuple[bytes, bytes, bytes]:
    """The DER that :func:`~security_server.core.hashchain.step_digest` hashes for two digests, around them."""
    single_head, single_tail = hashchain._single_digest_template(algorithm.size, algorithm.uri)
    inner = 2 * (len(single_head) + algorithm.size + len(single_tail))
    return b"\x30" + hashchain._der_length(inner) + single_head, single_tail + single_head, single_tail


@functools.lru_cache(maxsize=32)
def _result_pieces(algorithm: DigestAlgorithm, uri: str) -> tuple[bytes, bytes]:
    """The ``HashChainResult`` document before and after its top digest's base64."""
    empty = hashchain._result_xml(algorithm, b"", uri)
    cut = empty.index(b"<DigestValue></DigestValue>") + len(b"<DigestValue>")
    return empty[:cut], empty[cut:]


_b64 = binascii.b2a_base64


@dataclass(frozen=True, slots=True)
class _ChainsPlan:
    """The shape of the chains of a batch of ``count`` leaves: what is hashed, and the bytes around each value.

    Values are numbered: the leaves first, then each tree node in :attr:`nodes` (two values' step digest, in an
    order where a node comes after its children). A leaf's chain is ``literals[0] + text(slots[0]) + literals[1]
    + ...``, where text is the value's base64.
    """

    nodes: tuple[tuple[int, int], ...]
    chains: tuple[tuple[tuple[bytes, ...], tuple[int, ...]], ...]
    top: int


@functools.lru_cache(maxsize=32)
def _chains_plan(count: int, data_uri: str, algorithm: DigestAlgorithm) -> _ChainsPlan:
    """The builder's walk of the tree of ``count`` leaves, once per shape (the builder's own pieces are used, and
    each node is shared by every leaf under it, where the builder walks the tree again for each leaf)."""
    nodes: list[tuple[int, int]] = []
    known: dict[tuple[int, int], int] = {}

    def carried(lo: int, width: int) -> int:
        while width > 1 and lo + width // 2 >= count:
            width //= 2
        return width

    def value(lo: int, width: int) -> int:
        width = carried(lo, width)
        if width == 1:
            return lo
        slot = known.get((lo, width))
        if slot is None:
            half = width // 2
            children = (value(lo, half), value(lo + half, half))
            nodes.append(children)
            slot = known[(lo, width)] = count + len(nodes) - 1
        return slot

    data_ref_head = hashchain._data_ref_head(data_uri)
    chains: list[list[bytes | int]] = [[] for _ in range(count)]
    root = 1 << (count - 1).bit_length()
    # (lo, width, depth, pieces of the chain so far): the nodes whose subtree still needs its chains written
    pending: list[tuple[int, int, int, list[bytes | int]]] = [(0, root, 0, [hashchain._chain_head(algorithm)])]
    while pending:
        lo, width, depth, prefix = pending.pop()
        half = width // 2
        head = hashchain._step_head(depth)
        for child_lo, sibling_lo, direction in ((lo, lo + half, 0), (lo + half, lo, 1)):
            if child_lo >= count:
                continue
            child_width = carried(child_lo, half)
            other: list[bytes | int] = [hashchain._HASH_VALUE_HEAD, value(sibling_lo, half), hashchain._HASH_VALUE_TAIL]
            mine: list[bytes | int]
            if child_width == 1:
                mine = [data_ref_head, child_lo, hashchain._DATA_REF_TAIL]
            else:
                mine = [hashchain._step_ref(depth + 1)]
            step = [head, *(mine + other if direction == 0 else other + mine), hashchain._STEP_TAIL]
            if child_width == 1:
                chains[child_lo] = prefix + step + [hashchain._CHAIN_TAIL]
            else:
                pending.append((child_lo, child_width, depth + 1, prefix + step))
    top = value(0, root)
    return _ChainsPlan(tuple(nodes), tuple(_split(chain) for chain in chains), top)


def _split(pieces: list[bytes | int]) -> tuple[tuple[bytes, ...], tuple[int, ...]]:
    """Literal bytes and value slots, alternating: adjacent literals joined, a literal (maybe empty) at each end."""
    literals: list[bytes] = [b""]
    slots: list[int] = []
    for piece in pieces:
        if isinstance(piece, int):
            slots.append(piece)
            literals.append(b"")
        else:
            literals[-1] += piece
    return tuple(literals), tuple(slots)


def expected_ts_chains(leaves: Sequence[tuple[int, bytes]], result_xml: bytes | None) -> dict[int, tuple[bytes, bytes]]:
    """``{record id: (leaf, ts-hashchain.xml)}`` as the timestamper writes them for a batch of ``(id, signature hash)``.

    Empty when the batch's stored ``result_xml`` is not the result these leaves give (a record of the batch is
    missing or was stamped elsewhere, another producer's form): its records' chains are then verified one by one.
    """
    if result_xml is None or len(leaves) < 2:
        return {}
    try:
        result, chains = canonical_chains([leaf for _, leaf in leaves], chain_uri=TS_HASH_CHAIN, data_uri=SIGNATURE)
    except ValueError:
        return {}
    if result != result_xml:
        return {}
    return {record_id: (leaf, chain) for (record_id, leaf), chain in zip(leaves, chains)}


@dataclass(frozen=True, slots=True)
class _Signed:
    """A signature that verified, with what every record under it shares."""

    verified: VerifiedSignature
    member: ClientId


class LogAuditor:
    """Checks records' timestamps and (with a verification configuration) signatures, sharing the work."""

    def __init__(self, conf: VerificationConf | None, now: datetime, *, skew_seconds: float = DEFAULT_CLOCK_SKEW_SECONDS) -> None:
        self.conf = conf
        self.now = now
        self.skew_seconds = skew_seconds
        self._skew = timedelta(seconds=skew_seconds)
        self._tokens: dict[int, TimestampInfo | str] = {}
        self._imprints: dict[int, str | None] = {}
        self._token_trust: dict[int, str | None] = {}
        self._signatures: dict[tuple[bytes, bytes], _Signed] = {}
        self._paths: dict[bytes, tuple[tuple[x509.Certificate, ...], tuple[datetime, datetime]]] = {}
        self._members: dict[bytes, ClientId] = {}
        self._ders: dict[int, tuple[x509.Certificate, bytes]] = {}
        self._named: dict[tuple[Direction, str, str], ClientId | str] = {}
        self._own_chains: dict[int, tuple[bytes, hashchain.HashChainVerification]] = {}
        self.without_body = 0
        """Records whose signed body is not logged (REST body logging off): its digest was taken as signed."""
        self.unverifiable = 0
        """SOAP records logged with an emptied body: their signed message digest cannot be checked (as in X-Road)."""
        self.signatures_verified = 0
        """How many distinct signatures were verified in full (the rest shared one)."""

    # --- timestamps -----------------------------------------------------------------------------------------

    def stamp_failure(
        self, record_id: int, signature: bytes, sig_hash: bytes, stamp: Stamp, expected: dict[int, tuple[bytes, bytes]]
    ) -> str | None:
        """Why the record's timestamp does not hold (its token's imprint, its ts hash chain, the token), or None.

        ``sig_hash`` is SHA-512 of ``signature`` as computed now; ``expected`` is :func:`expected_ts_chains` of the
        record's batch.
        """
        try:
            if self.conf is not None and stamp.hash_chain_result is not None and stamp.id not in self._tokens:
                self._trusted_batch_token(stamp)
            info = self._token(stamp.id, stamp.token)
            if stamp.hash_chain_result is not None:
                if stamp.leaf is not None and stamp.leaf == sig_hash:
                    pass  # the timestamper's chain from this leaf to the batch's verified result
                elif stamp.hash_chain is None:
                    raise ValueError("batch timestamp without the record's ts hash chain")
                elif expected.get(record_id) != (sig_hash, stamp.hash_chain):
                    hashchain.verify_hash_chain(
                        stamp.hash_chain_result, stamp.hash_chain, {SIGNATURE: signature}.get, [SIGNATURE]
                    )
                if stamp.id not in self._imprints:
                    self._imprints[stamp.id] = self._imprint_failure(info, stamp.hash_chain_result)
                failed = self._imprints[stamp.id]
            else:
                failed = self._imprint_failure(info, signature_value(signature))
            if failed is not None:
                raise ValueError(failed)
            if self.conf is not None:
                if stamp.id not in self._token_trust:
                    try:
                        verify_timestamp_token(stamp.token, info.imprint, self.conf.tsa_certs, self.now)
                        self._token_trust[stamp.id] = None
                    except BusError as err:
                        self._token_trust[stamp.id] = err.reason
                if self._token_trust[stamp.id] is not None:
                    raise ValueError(f"token {stamp.id}: {self._token_trust[stamp.id]}")
        except BusError as err:
            return err.reason
        except ValueError as err:
            return str(err)
        return None

    def stamp_holds(self, stamp_id: int) -> bool:
        """Whether timestamp ``stamp_id`` was found to hold (token read, imprint of its batch result and, with a
        configuration, the token's TSA and signature): a record whose ts chain leads from its own signature hash to
        that result then has nothing else to check (:meth:`stamp_failure` would find nothing)."""
        return (
            isinstance(self._tokens.get(stamp_id), TimestampInfo)
            and stamp_id in self._imprints and self._imprints[stamp_id] is None
            and (self.conf is None or (stamp_id in self._token_trust and self._token_trust[stamp_id] is None))
        )

    def _trusted_batch_token(self, stamp: Stamp) -> None:
        """Decode and verify a batch's token at once (its imprint the digest of the batch's result, from an approved
        TSA, its signature): when it holds, what the checks one by one would find is remembered; when not, nothing
        is, and the checks one by one give the verdict in their own words."""
        assert self.conf is not None and stamp.hash_chain_result is not None
        try:
            info = verify_timestamp_token(
                stamp.token, digests.SHA512.digest(stamp.hash_chain_result), self.conf.tsa_certs, self.now
            )
        except BusError:
            return
        self._tokens[stamp.id] = info
        self._imprints[stamp.id] = self._imprint_failure(info, stamp.hash_chain_result)
        self._token_trust[stamp.id] = None

    def _token(self, stamp_id: int, token: bytes) -> TimestampInfo:
        known = self._tokens.get(stamp_id)
        if known is None:
            try:
                known = read_timestamp_token(token)
            except BusError as err:
                known = err.reason
            self._tokens[stamp_id] = known
        if isinstance(known, str):
            raise ValueError(known)
        return known

    @staticmethod
    def _imprint_failure(info: TimestampInfo, stamped: bytes) -> str | None:
        if info.imprint != digests.SHA512.digest(stamped):
            return "the token's imprint is not the digest of what it should cover"
        return None

    # --- signatures -----------------------------------------------------------------------------------------

    def prepare(self, records: Sequence[AuditedRecord]) -> None:
        """Build once the ``sig-hashchain.xml`` of each batch signature whose messages are all among ``records``.

        Records signed together share their signature and ``sig-hashchainresult.xml``; when the chains built over
        their messages' digests (in id order) give exactly that result, a record whose chain equals its built one
        needs no chain verification of its own (:meth:`signature_failure`). A batch of which only some messages are
        here (a provider's batch answering several consumers) gives another result: its chains are verified one by one.
        """
        self._own_chains = {}
        if self.conf is None:
            return
        batches: dict[tuple[bytes, bytes], list[AuditedRecord]] = {}
        for record in records:
            if record.signature and record.hashchain is not None and record.hashchainresult is not None and not record.attachments:
                batches.setdefault((record.signature_hash, record.hashchainresult), []).append(record)
        for (_, result), members in batches.items():
            if len(members) < 2:
                continue
            try:
                built, chains, top = _canonical(
                    [hashlib.sha512(r.message).digest() for r in members], chain_uri=hashchain.SIG_HASH_CHAIN, data_uri=MESSAGE,
                    algorithm=digests.SHA512,
                )
            except ValueError:
                continue
            if built == result:
                # What verify_hash_chain finds for each of these chains: one DataRef to the message, resolved.
                proven = hashchain.HashChainVerification(
                    algorithm=digests.SHA512, top=top, used_inputs=frozenset({MESSAGE}), data_refs=(MESSAGE,), unresolved=()
                )
                self._own_chains.update((r.id, (chain, proven)) for r, chain in zip(members, chains))

    def stamp_time(self, stamp_id: int) -> datetime | None:
        """The time the token of timestamp ``stamp_id`` says (None: not read, or unreadable)."""
        known = self._tokens.get(stamp_id)
        return known.gen_time if isinstance(known, TimestampInfo) else None

    def signature_failure(self, record: AuditedRecord, sig_hash: bytes, stamped_at: datetime | None = None) -> str | None:
        """Why the record's signature does not hold (XAdES, certificate path, OCSP, member, timestamp after it), or None.

        Needs the verification configuration; a record without a signature (a failed exchange) has none to check.
        ``stamped_at`` is the time of the record's timestamp, which may not be before the signing time.
        """
        if self.conf is None or not record.signature:
            return None
        if record.hashchainresult is not None and record.hashchain is not None:
            shared = record.hashchainresult
        else:
            shared = digests.SHA512.digest(record.message)  # a direct signature covers exactly one message
        key = (sig_hash, shared)
        try:
            signed = self._signatures.get(key)
            own = self._own_chains.get(record.id)
            own_chain = own is not None and own[0] == record.hashchain and not record.attachments
            if signed is None:
                parts, expected = _signed_parts(record)
                if own is not None and own_chain:
                    # Its chain is the one built from its batch's messages, whose result is the stored one.
                    verified = verify_signature_over_chain(
                        record.signature, parts.get, own[1], expected_parts=expected, allow_unresolved_hash_chain_refs=True
                    )
                else:
                    verified = verify_signature(
                        record.signature, parts.get, expected_parts=expected, allow_unresolved_hash_chain_refs=True
                    )
                signed = _Signed(verified, self._trusted_member(verified))
                if len(self._signatures) >= _MAX_SIGNATURES:
                    self._signatures.clear()  # a batch's records are logged together: the recent ones are enough
                self._signatures[key] = signed
                self.signatures_verified += 1
                if verified.hash_chain is not None and verified.hash_chain.unresolved:
                    self.without_body += 1
            elif record.hashchain is not None and record.hashchainresult is not None and not own_chain:
                parts, expected = _signed_parts(record)
                # Same signature and result: only this record's own chain and what it covers are its own.
                try:
                    if self._check_own_chain(record.hashchainresult, record.hashchain, parts, expected, signed.verified):
                        self.without_body += 1
                except BusError:
                    verify_signature(  # its exact verdict
                        record.signature, parts.get, expected_parts=expected, allow_unresolved_hash_chain_refs=True
                    )
                    raise
            if stamped_at is not None and stamped_at + self._skew < signed.verified.signing_time:
                raise MalformedSignature(
                    "the timestamp is older than the signature",
                    reason=f"timestamp of {stamped_at.isoformat()}, signed at {signed.verified.signing_time.isoformat()}",
                )
            named = self._named_member(record)
            if named != signed.member:
                raise IncorrectCertificate(
                    "signing certificate does not belong to the member that the record names",
                    reason=f"certificate of {signed.member}, record names {named}",
                )
        except BusError as err:
            if isinstance(err, (InvalidSignatureValue, MalformedSignature)) and _emptied_soap_body(record.message):
                # Logged without its body (core/body_logging.py): verified without message, as `verify container`
                # does (valid_without_message): over the message digest the signature states, by a trusted signer
                # of the member the record names; anything else broken still fails.
                from security_server.core.unlogged_message import verify_signature_without_message

                try:
                    verified, _ = verify_signature_without_message(record.signature, parts.get)
                    if stamped_at is not None and stamped_at + timedelta(seconds=self.skew_seconds) < verified.signing_time:
                        raise MalformedSignature("the timestamp is older than the signature")
                    if self._trusted_member(verified) != self._named_member(record):
                        raise IncorrectCertificate("signing certificate does not belong to the member that the record names")
                except BusError as broken:
                    return broken.reason if broken.reason == broken.message else f"{broken.message}: {broken.reason}"
                self.unverifiable += 1
                return None
            return err.reason if err.reason == err.message else f"{err.message}: {err.reason}"
        return None

    @staticmethod
    def _check_own_chain(
        result: bytes, chain: bytes, parts: dict[str, bytes], expected: list[str], verified: VerifiedSignature
    ) -> bool:
        """Check a record's own chain up to its batch's signed result; True when a part was taken as signed."""
        try:
            checked = hashchain.verify_hash_chain(
                result, chain, parts.get, [p for p in expected if p not in verified.references], allow_unresolved=True
            )
        except (InvalidHashChain, HashChainUnusedInputs) as err:
            raise hashchain.as_malformed_signature(err) from err
        uncovered = set(expected) - set(verified.references) - set(checked.data_refs)
        if uncovered:
            raise IncorrectValidationInfo("signature does not cover every part", reason=", ".join(sorted(uncovered)))
        return bool(checked.unresolved)

    def _trusted_member(self, verified: VerifiedSignature) -> ClientId:
        """The signing certificate chains to an approved CA and has a fresh good OCSP answer at the signing time."""
        assert self.conf is not None
        conf, cert, at = self.conf, verified.signing_cert, verified.signing_time
        # The signature reader hands back the same certificate object for the same DER (it remembers them): its
        # DER is encoded once, the object kept so that its id is not reused while it is remembered here.
        known = self._ders.get(id(cert))
        if known is None or known[0] is not cert:
            if len(self._ders) >= _MAX_REMEMBERED:
                self._ders.clear()
            known = self._ders[id(cert)] = (cert, cert.public_bytes(serialization.Encoding.DER))
        der = known[1]
        known_path = self._paths.get(der)
        path: tuple[x509.Certificate, ...]
        try:
            if known_path is None:
                raise ValueError("not seen yet")
            path, (valid_from, valid_to) = known_path
            if at.tzinfo is None or not valid_from <= at <= valid_to:
                for link in path:  # outside every link's validity: its own words
                    check_validity(link, at)
        except (ValueError, BusError):
            path = verify_cert_path(cert, conf.intermediates + verified.extra_certs, conf.approved_roots, at)
            # Within every link's validity window exactly when inside their intersection (check_validity's test).
            window = (max(link.not_valid_before_utc for link in path), min(link.not_valid_after_utc for link in path))
            self._paths[der] = (path, window)
        issuer = path[1] if len(path) > 1 else path[0]
        ocsp_error: BusError | None = None
        for response in verified.ocsp_responses:
            try:
                check_ocsp_response(
                    response, cert, issuer, at, freshness_seconds=conf.ocsp_freshness_seconds,
                    skew_seconds=self.skew_seconds, trusted_responders=conf.ocsp_responders,
                )
                break
            except BusError as err:
                ocsp_error = ocsp_error or err
        else:
            raise ocsp_error or IncorrectValidationInfo("no OCSP response for the signing certificate")
        member = self._members.get(der)
        if member is None:
            # Profiles that do not write the instance (X-Road's Estonian one) name a member of this configuration's.
            member = member_from_certificate(cert, conf.profile_for(cert.issuer), conf.instance)
            self._members[der] = member
        return member

    def _named_member(self, record: AuditedRecord) -> ClientId:
        """The member that must have signed ``record``: its client's (request) or its service provider's (response)."""
        key = (record.direction, record.client, record.service)
        named = self._named.get(key)
        if named is None:
            try:
                if record.direction is Direction.REQUEST:
                    named = ClientId.parse_display(record.client).member
                else:
                    named = ServiceId.parse_display(record.service).client.member
            except InvalidClientIdentifier as err:
                named = f"the record names no valid signer: {err.reason}"
            self._named[key] = named
        if isinstance(named, str):
            raise IncorrectCertificate(named)
        return named


def _signed_parts(record: AuditedRecord) -> tuple[dict[str, bytes], list[str]]:
    """What a record's signature is checked against: its parts by URI, and the URIs it must cover."""
    parts = {MESSAGE: record.message}
    parts.update({attachment_uri(n): data for n, data in enumerate(record.attachments, start=1)})
    if record.hashchainresult is not None and record.hashchain is not None:
        parts[hashchain.SIG_HASH_CHAIN_RESULT] = record.hashchainresult
        parts[hashchain.SIG_HASH_CHAIN] = record.hashchain
    return parts, [MESSAGE, *(attachment_uri(n) for n in range(1, len(record.attachments) + 1))]


_SOAP_BODY = f"{{{SOAP_ENV_NS}}}Body"


def _emptied_soap_body(message: bytes) -> bool:
    """Whether ``message`` is a SOAP envelope whose ``Body`` is empty: how a record logged without body holds it."""
    if not message.lstrip().startswith(b"<"):
        return False
    try:
        root = parse_xml(message, max_bytes=len(message))
    except BusError:
        return False
    bodies = [child for child in root if child.tag == _SOAP_BODY]
    return len(bodies) == 1 and len(bodies[0]) == 0 and not (bodies[0].text or "").strip()
