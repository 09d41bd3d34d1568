"""ASiC-E containers: one logged message with its signature and timestamp, in X-Road's layout, built and verified.

An auditor proves years later what was sent, by whom and when, from one zip (XROAD-REFERENCE.md §4.6;
X-Road ``AsicContainer``, ``AsicHelper``, ``AsicContainerVerifier``). Its entries:

=================================  =================================================================
``mimetype``                       ``application/vnd.etsi.asic-e+zip``, first and stored (ASiC rule)
``message.xml``                    the signed message (SOAP, or the REST request/response header part)
``attachmentN``                    attachments; for REST, ``attachment1`` is the body
``META-INF/signatures.xml``        the XAdES signature (``core.signature``)
``sig-hashchain[result].xml``      the signature's hash chain, for batch or multi-part signatures
``ts-hashchain[result].xml``       the batch timestamp's hash chain over logged signatures
``META-INF/timestamp.tst``         the batch RFC 3161 token (a single timestamp lives in the signature)
``META-INF/ASiCManifest.xml``      what ``timestamp.tst`` covers: ``ts-hashchainresult.xml``
``META-INF/manifest.xml``          the ODF manifest of the data entries
=================================  =================================================================

Verification follows X-Road's order and gives its verdicts on its own containers: entries present, the
signature references the message or a hash-chain result, the timestamp (its hash chain, then that its
imprint is the digest of ``ts-hashchainresult.xml`` for a batch timestamp or of the raw signature value for
a single one, then the token itself through a caller-supplied check), then the signature with its hash chain.
Zips are read defensively: unsafe entry names, too many entries and too much data are refused before or
while inflating.
"""

from __future__ import annotations

import base64
import binascii
import enum
import io
import re
import stat
import zipfile
import zlib
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable, Sequence

from asn1crypto import cms as asn1_cms
from asn1crypto import tsp as asn1_tsp  # noqa: F401  (registers TSTInfo as the parsed form of eContent)

from security_server.core import digests, hashchain
from security_server.core.errors import (
    BadRequest,
    BusError,
    HashChainUnusedInputs,
    InvalidHashChain,
    MalformedSignature,
    RequestTooLarge,
)
from security_server.core.hashchain import SIG_HASH_CHAIN_RESULT, UnresolvedRef
from security_server.core.body_logging import is_soap_without_body
from security_server.core.safexml import parse_xml
from security_server.core.signature import (
    SignatureData,
    VerifiedSignature,
    referenced_uris,
    signature_timestamp,
    signature_value,
    verify_signature,
)
from security_server.core.unlogged_message import NOT_LOGGED_DETAIL, verify_signature_without_message

MIMETYPE = "application/vnd.etsi.asic-e+zip"
"""Content of the ``mimetype`` entry."""

ENTRY_MIMETYPE = "mimetype"
ENTRY_MESSAGE = "message.xml"
ENTRY_SIGNATURE = "META-INF/signatures.xml"
ENTRY_SIG_HASH_CHAIN_RESULT = "sig-hashchainresult.xml"
ENTRY_SIG_HASH_CHAIN = "sig-hashchain.xml"
ENTRY_TS_HASH_CHAIN_RESULT = "ts-hashchainresult.xml"
ENTRY_TS_HASH_CHAIN = "ts-hashchain.xml"
ENTRY_TIMESTAMP = "META-INF/timestamp.tst"
ENTRY_ASIC_MANIFEST = "META-INF/ASiCManifest.xml"
ENTRY_MANIFEST = "META-INF/manifest.xml"

KNOWN_ENTRIES = frozenset(
    {
        ENTRY_MIMETYPE, ENTRY_MESSAGE, ENTRY_SIGNATURE, ENTRY_SIG_HASH_CHAIN_RESULT, ENTRY_SIG_HASH_CHAIN,
        ENTRY_TS_HASH_CHAIN_RESULT, ENTRY_TS_HASH_CHAIN, ENTRY_TIMESTAMP, ENTRY_ASIC_MANIFEST, ENTRY_MANIFEST,
    }
)
"""Entry names a container may hold besides ``attachmentN`` (``AsicContainerEntries``)."""

ASIC_MANIFEST_NS = "http://uri.etsi.org/2918/v1.2.1#"
"""Namespace of ``ASiCManifest`` exactly as X-Road writes it (``AsicManifestBuilder``)."""
ODF_MANIFEST_NS = "urn:oasis:names:tc:opendocument:xmlns:manifest:1.0"

_ATTACHMENT = re.compile(r"attachment([1-9][0-9]{0,5})\Z")

# X-Road's error codes for container structure (ErrorCodes.java), carried as subcodes of malformed_signature.
MIME_TYPE_NOT_FOUND = "asic_mime_type_not_found"
INVALID_MIME_TYPE = "asic_invalid_mime_type"

VALID = "valid"
"""The verdict code when every check passed."""
VALID_WITHOUT_MESSAGE = "valid_without_message"
"""The verdict code of a SOAP record logged without its body (core/body_logging.py) whose other checks all passed:
who signed a message with the stated digest, and when, is proven; the message's content is not."""
MESSAGE_NOT_FOUND = "asic_message_not_found"
SIGNATURE_NOT_FOUND = "asic_signature_not_found"
HASH_CHAIN_RESULT_NOT_FOUND = "asic_hash_chain_result_not_found"
HASH_CHAIN_NOT_FOUND = "asic_hash_chain_not_found"
TIMESTAMP_NOT_FOUND = "asic_timestamp_not_found"
MANIFEST_NOT_FOUND = "asic_manifest_not_found"
UNEXPECTED_ENTRY = "asic_unexpected_entry"
"""Ours, not X-Road's: an entry that no signature or timestamp covers, refused in strict mode."""


# --- building -----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BatchTimestamp:
    """A batch timestamp of one logged signature: the RFC 3161 token and the signature's ``ts-hashchain``."""

    token_der: bytes = field(repr=False)
    hash_chain_result: bytes = field(repr=False)
    hash_chain: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if not self.token_der or not self.hash_chain_result or not self.hash_chain:
            raise ValueError("a batch timestamp has a token, a hash chain result and a hash chain")


def _odf_manifest(names: Sequence[tuple[str, str]]) -> bytes:
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<manifest:manifest xmlns:manifest="{ODF_MANIFEST_NS}" manifest:version="1.2">',
        f'    <manifest:file-entry manifest:media-type="{MIMETYPE}" manifest:full-path="/"/>',
    ]
    lines += [
        f'    <manifest:file-entry manifest:media-type="{media_type}" manifest:full-path="{name}"/>'
        for name, media_type in names
    ]
    lines.append("</manifest:manifest>")
    return ("\n".join(lines) + "\n").encode("utf-8")


def _asic_manifest(ts_hash_chain_result: bytes) -> bytes:
    """The ASiC manifest naming what ``timestamp.tst`` covers (``AsicManifestBuilder``)."""
    digest = digests.SHA512.digest(ts_hash_chain_result)
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        f'<asic:ASiCManifest xmlns:asic="{ASIC_MANIFEST_NS}" xmlns:ds="{hashchain.DS_NS}">\n'
        f'<asic:SigReference URI="{ENTRY_TIMESTAMP}" MimeType="vnd.etsi.timestamp-token"/>\n'
        f'<asic:DataObjectReference URI="{ENTRY_TS_HASH_CHAIN_RESULT}" MimeType="text/xml">\n'
        f'<ds:DigestMethod Algorithm="{digests.SHA512.uri}" />\n'
        f"<ds:DigestValue>{base64.b64encode(digest).decode('ascii')}</ds:DigestValue>\n"
        "</asic:DataObjectReference>\n"
        "</asic:ASiCManifest>\n"
    ).encode("utf-8")


def _zip_time(created: datetime) -> tuple[int, int, int, int, int, int]:
    if created.tzinfo is None or created.utcoffset() is None:
        raise ValueError("created must be timezone-aware")
    utc = created.astimezone(timezone.utc)
    if utc.year < 1980:
        return (1980, 1, 1, 0, 0, 0)
    return (utc.year, utc.month, utc.day, utc.hour, utc.minute, utc.second)


def build_container(
    message: bytes,
    signature: SignatureData,
    *,
    created: datetime,
    attachments: Sequence[bytes] = (),
    timestamp: BatchTimestamp | None = None,
) -> bytes:
    """The ASiC-E zip of one signed message (X-Road ``AsicContainer`` + ``AsicHelper.write``).

    ``signature`` is the message's :class:`SignatureData` (with its hash chain when it has one). A single
    timestamp travels inside the signature XML (``core.signature.add_signature_timestamp``); a batch
    timestamp is ``timestamp``. ``created`` (aware) stamps every entry, so the same inputs give the same bytes.
    """
    date_time = _zip_time(created)
    entries: list[tuple[str, bytes]] = [(ENTRY_MESSAGE, message)]
    entries += [(hashchain.attachment_uri(number)[1:], data) for number, data in enumerate(attachments, start=1)]
    entries.append((ENTRY_SIGNATURE, signature.signature_xml))
    if signature.hash_chain_result is not None and signature.hash_chain is not None:
        entries += [(ENTRY_SIG_HASH_CHAIN_RESULT, signature.hash_chain_result), (ENTRY_SIG_HASH_CHAIN, signature.hash_chain)]
    if timestamp is not None:
        entries += [
            (ENTRY_TS_HASH_CHAIN_RESULT, timestamp.hash_chain_result),
            (ENTRY_TS_HASH_CHAIN, timestamp.hash_chain),
            (ENTRY_TIMESTAMP, timestamp.token_der),
            (ENTRY_ASIC_MANIFEST, _asic_manifest(timestamp.hash_chain_result)),
        ]
    listed = [
        (name, "application/octet-stream" if _ATTACHMENT.match(name) else "text/xml")
        for name, _ in entries
        if not name.startswith("META-INF/")
    ]
    entries.append((ENTRY_MANIFEST, _odf_manifest(listed)))

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.comment = f"mimetype={MIMETYPE}".encode("ascii")
        for name, data in [(ENTRY_MIMETYPE, MIMETYPE.encode("ascii")), *entries]:
            info = zipfile.ZipInfo(name, date_time=date_time)
            # ASiC (ETSI EN 319 162-1 §A.1): mimetype is the first entry, stored, so its bytes sit at offset 38.
            info.compress_type = zipfile.ZIP_STORED if name == ENTRY_MIMETYPE else zipfile.ZIP_DEFLATED
            info.create_system = 3
            info.external_attr = (stat.S_IFREG | 0o644) << 16
            archive.writestr(info, data)
    return buffer.getvalue()


# --- reading zips safely ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ZipLimits:
    """How much a container may hold before we refuse to open it (zip-bomb guard)."""

    max_container_bytes: int = 256 * 1024 * 1024
    max_entries: int = 1000
    max_entry_bytes: int = 128 * 1024 * 1024
    max_total_bytes: int = 256 * 1024 * 1024

    def __post_init__(self) -> None:
        if min(self.max_container_bytes, self.max_entries, self.max_entry_bytes, self.max_total_bytes) <= 0:
            raise ValueError("zip limits must be positive")


_UNSAFE_NAME = re.compile(r"[\x00-\x1f\\]|^[A-Za-z]:")


def _check_name(name: str) -> None:
    """Refuse names that could escape an extraction folder (path traversal) or that are not plain paths."""
    body = name[:-1] if name.endswith("/") else name
    segments = body.split("/")
    if not body or name.startswith("/") or _UNSAFE_NAME.search(name) or any(s in ("", ".", "..") for s in segments):
        raise BadRequest("unsafe entry name in container", reason=f"unsafe zip entry name {name!r}")


def read_container(data: bytes, limits: ZipLimits = ZipLimits()) -> dict[str, bytes]:
    """The entries of a zip, by name, after refusing traversal names, duplicates, links, encryption and bombs.

    Raises :class:`BadRequest` for a broken or unsafe zip and :class:`RequestTooLarge` past ``limits``.
    Directory entries are checked but not returned.
    """
    if len(data) > limits.max_container_bytes:
        raise RequestTooLarge(f"container is larger than {limits.max_container_bytes} bytes")
    entries: dict[str, bytes] = {}
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            infos = archive.infolist()
            if len(infos) > limits.max_entries:
                raise RequestTooLarge(f"container has more than {limits.max_entries} entries")
            seen: set[str] = set()
            declared = 0
            for info in infos:
                _check_name(info.filename)
                if info.filename in seen:
                    raise BadRequest("duplicate entry in container", reason=f"duplicate zip entry {info.filename!r}")
                seen.add(info.filename)
                if info.flag_bits & 0x1:
                    raise BadRequest("encrypted entry in container", reason=f"encrypted zip entry {info.filename!r}")
                if stat.S_ISLNK(info.external_attr >> 16):
                    raise BadRequest("link entry in container", reason=f"symbolic link zip entry {info.filename!r}")
                if info.file_size > limits.max_entry_bytes:
                    raise RequestTooLarge(f"container entry is larger than {limits.max_entry_bytes} bytes")
                declared += info.file_size
                if declared > limits.max_total_bytes:
                    raise RequestTooLarge(f"container holds more than {limits.max_total_bytes} bytes")
            total = 0
            for info in infos:
                if info.is_dir():
                    continue
                # Inflate at most one byte past the limit, whatever the header claims.
                with archive.open(info) as stream:
                    content = stream.read(limits.max_entry_bytes + 1)
                if len(content) > limits.max_entry_bytes:
                    raise RequestTooLarge(f"container entry is larger than {limits.max_entry_bytes} bytes")
                total += len(content)
                if total > limits.max_total_bytes:
                    raise RequestTooLarge(f"container holds more than {limits.max_total_bytes} bytes")
                entries[info.filename] = content
    except BusError:
        raise
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError, ValueError, OSError) as err:
        raise BadRequest("not a readable zip container", reason=f"not a readable zip container: {err}") from err
    return entries


# --- verifying ----------------------------------------------------------------------------------------------


TimestampCheck = Callable[[bytes, bytes], object]
"""Checks an RFC 3161 token (DER) against the data it claims to cover: CMS signature, TSA trusted by the
global configuration. Raises a :class:`BusError` when the token is not acceptable (``core.timestamp``)."""


class CheckStatus(enum.StrEnum):
    """Outcome of one verification step."""

    PASSED = "passed"
    FAILED = "failed"
    SKIPPED = "skipped"


@dataclass(frozen=True, slots=True)
class ContainerCheck:
    """One step of container verification and what it found, in words an auditor can read."""

    name: str
    status: CheckStatus
    detail: str


@dataclass(frozen=True, slots=True)
class ContainerTimestamp:
    """The container's timestamp: its token, kind, imprint algorithm and the time the TSA states."""

    token_der: bytes = field(repr=False)
    batch: bool
    imprint_algorithm: digests.DigestAlgorithm
    gen_time: datetime


@dataclass(frozen=True, slots=True)
class ContainerVerdict:
    """The verdict on a container: ``code`` is ``valid``, ``valid_without_message`` (a SOAP record logged without
    its body: see :data:`VALID_WITHOUT_MESSAGE`) or X-Road's error code, with the checks that led there.

    ``unverified_refs`` are hash-chain references to data the container does not hold (X-Road containers
    leave out attachments of batch-signed messages); ``extra_entries`` are entries nothing covers.
    """

    code: str
    checks: tuple[ContainerCheck, ...]
    error: BusError | None = None
    signature: VerifiedSignature | None = None
    message: bytes | None = field(default=None, repr=False)
    attachments: tuple[str, ...] = ()
    timestamp: ContainerTimestamp | None = None
    unverified_refs: tuple[UnresolvedRef, ...] = ()
    extra_entries: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """True when every check passed (a skipped token check still counts as passed here)."""
        return self.error is None


def error_code(err: BusError) -> str:
    """X-Road's form of an error for verdicts: ``code`` or ``code.subcode`` (no origin prefix)."""
    return f"{err.code}.{err.subcode}" if err.subcode else err.code


def _missing(subcode: str, entry: str) -> MalformedSignature:
    return MalformedSignature(f"{entry} not found or is empty", subcode=subcode)


def _blank(data: bytes | None) -> bool:
    return data is None or not data.strip()


def _check_structure(entries: dict[str, bytes]) -> None:
    """Required entries and pairs (``AsicHelper.verify*``)."""
    mimetype = entries.get(ENTRY_MIMETYPE)
    if _blank(mimetype):
        raise _missing(MIME_TYPE_NOT_FOUND, ENTRY_MIMETYPE)
    assert mimetype is not None
    if mimetype.decode("latin-1").lower() != MIMETYPE:
        raise MalformedSignature("invalid mime type", reason=f"invalid mime type {mimetype[:100]!r}", subcode=INVALID_MIME_TYPE)
    if _blank(entries.get(ENTRY_MESSAGE)):
        raise _missing(MESSAGE_NOT_FOUND, ENTRY_MESSAGE)
    if _blank(entries.get(ENTRY_SIGNATURE)):
        raise _missing(SIGNATURE_NOT_FOUND, ENTRY_SIGNATURE)
    for result, chain in (
        (ENTRY_SIG_HASH_CHAIN_RESULT, ENTRY_SIG_HASH_CHAIN),
        (ENTRY_TS_HASH_CHAIN_RESULT, ENTRY_TS_HASH_CHAIN),
    ):
        if _blank(entries.get(result)) and _blank(entries.get(chain)):
            continue
        if _blank(entries.get(result)):
            raise _missing(HASH_CHAIN_RESULT_NOT_FOUND, result)
        if _blank(entries.get(chain)):
            raise _missing(HASH_CHAIN_NOT_FOUND, chain)
    if ENTRY_TIMESTAMP in entries and _blank(entries[ENTRY_TIMESTAMP]):
        raise _missing(TIMESTAMP_NOT_FOUND, ENTRY_TIMESTAMP)
    for manifest in (ENTRY_MANIFEST, ENTRY_ASIC_MANIFEST):
        if manifest in entries and _blank(entries[manifest]):
            raise _missing(MANIFEST_NOT_FOUND, manifest)


def _read_token(token: bytes) -> tuple[digests.DigestAlgorithm, bytes, datetime]:
    """Imprint algorithm, imprint and genTime of an RFC 3161 token (``TimeStampToken``)."""
    try:
        info = asn1_cms.ContentInfo.load(token)
        if info["content_type"].native != "signed_data":
            raise ValueError("not CMS signed data")
        encapsulated = info["content"]["encap_content_info"]
        if encapsulated["content_type"].native != "tst_info":
            raise ValueError("not a timestamp token")
        tst_info = encapsulated["content"].parsed
        imprint = tst_info["message_imprint"]
        oid = imprint["hash_algorithm"]["algorithm"].dotted
        hashed = imprint["hashed_message"].native
        gen_time = tst_info["gen_time"].native
    except Exception as err:  # asn1crypto parses lazily and may fail with any error on hostile DER
        raise MalformedSignature("timestamp is not an RFC 3161 token", reason=f"timestamp is not an RFC 3161 token: {err}") from err
    algorithm = digests.lookup_oid(oid)
    if algorithm is None:
        raise MalformedSignature("unsupported timestamp digest algorithm", reason=f"unsupported imprint algorithm {oid}")
    if not isinstance(hashed, bytes) or not isinstance(gen_time, datetime):
        raise MalformedSignature("timestamp is not an RFC 3161 token")
    return algorithm, hashed, gen_time


class _Run:
    """One container verification: the checks done so far and what has been read."""

    def __init__(self) -> None:
        self.checks: list[ContainerCheck] = []
        self.message: bytes | None = None
        self.attachments: tuple[str, ...] = ()
        self.extra: tuple[str, ...] = ()
        self.timestamp: ContainerTimestamp | None = None

    def passed(self, name: str, detail: str) -> None:
        self.checks.append(ContainerCheck(name, CheckStatus.PASSED, detail))

    def skipped(self, name: str, detail: str) -> None:
        self.checks.append(ContainerCheck(name, CheckStatus.SKIPPED, detail))

    def failed(self, name: str, err: BusError) -> ContainerVerdict:
        self.checks.append(ContainerCheck(name, CheckStatus.FAILED, f"{error_code(err)}: {err.reason}"))
        return ContainerVerdict(
            code=error_code(err),
            checks=tuple(self.checks),
            error=err,
            message=self.message,
            attachments=self.attachments,
            timestamp=self.timestamp,
            extra_entries=self.extra,
        )


def verify_container(
    data: bytes,
    *,
    verify_timestamp: TimestampCheck | None = None,
    require_timestamp: bool = True,
    allow_extra_entries: bool = True,
    limits: ZipLimits = ZipLimits(),
) -> ContainerVerdict:
    """Verify an ASiC-E container as X-Road's ``AsicContainerVerifier`` does, and say what was checked.

    ``verify_timestamp`` checks the token's CMS signature and TSA (``core.timestamp``); without it that check
    is reported as skipped. ``require_timestamp=False`` accepts a container not yet timestamped.
    ``allow_extra_entries=False`` refuses entries that nothing covers (X-Road ignores them). Certificate trust
    (signer chain, OCSP, member) is the caller's next step, from ``verdict.signature``.
    """
    run = _Run()
    try:
        entries = read_container(data, limits)
    except BusError as err:
        return run.failed("zip", err)
    run.passed("zip", f"{len(entries)} entries read safely")

    try:
        _check_structure(entries)
    except BusError as err:
        return run.failed("entries", err)
    attachments = sorted(
        (name for name in entries if _ATTACHMENT.match(name)), key=lambda name: int(name[len("attachment") :])
    )
    run.attachments = tuple(attachments)
    run.extra = extra = tuple(sorted(name for name in entries if name not in KNOWN_ENTRIES and name not in attachments))
    run.message = message = entries[ENTRY_MESSAGE]
    if extra and not allow_extra_entries:
        return run.failed(
            "entries",
            MalformedSignature(
                "container holds entries nothing covers",
                reason=f"unexpected entries: {', '.join(extra)}",
                subcode=UNEXPECTED_ENTRY,
            ),
        )
    run.passed("entries", "required entries present" + (f"; ignored: {', '.join(extra)}" if extra else ""))
    signature_xml = entries[ENTRY_SIGNATURE]

    # Only the entries X-Road reads are signed data; an extra entry can never stand in for one.
    def resolve(uri: str) -> bytes | None:
        name = uri[1:] if uri.startswith("/") else uri
        if name in KNOWN_ENTRIES or _ATTACHMENT.match(name):
            return entries.get(name)
        return None

    try:
        references = referenced_uris(signature_xml)
        if hashchain.MESSAGE not in references and SIG_HASH_CHAIN_RESULT not in references:
            raise MalformedSignature(f"signature does not reference '{hashchain.MESSAGE}' or '{SIG_HASH_CHAIN_RESULT}'")
    except BusError as err:
        return run.failed("references", err)
    run.passed("references", f"signature references {', '.join(references)}")

    try:
        run.timestamp = _verify_timestamp(run, entries, signature_xml, resolve, verify_timestamp, require_timestamp)
    except BusError as err:
        return run.failed("timestamp", err)

    code = VALID
    try:
        verified = verify_signature(
            signature_xml,
            resolve,
            expected_parts=[hashchain.MESSAGE] + [f"/{name}" for name in attachments],
            allow_unresolved_hash_chain_refs=True,
        )
    except BusError as err:
        if attachments or not is_soap_without_body(message):
            return run.failed("signature", err)
        # A SOAP record logged without its body (core/body_logging.py): everything but the message, over the
        # message digest the signature states; a broken signature, certificate reference or timestamp still fails.
        try:
            verified, signed = verify_signature_without_message(signature_xml, resolve)
        except BusError as again:
            return run.failed("signature", again)
        code = VALID_WITHOUT_MESSAGE
    unverified = verified.hash_chain.unresolved if verified.hash_chain is not None else ()
    try:
        signer = verified.signing_cert.subject.rfc4514_string()
    except ValueError:
        signer = f"certificate serial {verified.signing_cert.serial_number}"
    detail = f"signed by {signer} at {verified.signing_time.isoformat()}"
    if code == VALID_WITHOUT_MESSAGE:
        detail += f"; over the message digest the signature states ({signed.algorithm.name} {signed.digest.hex()[:32]}...)"
        unverified = tuple(ref for ref in unverified if ref.uri != hashchain.MESSAGE)
    if unverified:
        detail += "; not in the container, digests taken as signed: " + ", ".join(ref.uri for ref in unverified)
    run.passed("signature", detail)
    if code == VALID_WITHOUT_MESSAGE:
        run.skipped("message", NOT_LOGGED_DETAIL)
    return ContainerVerdict(
        code=code,
        checks=tuple(run.checks),
        signature=verified,
        message=message,
        attachments=run.attachments,
        timestamp=run.timestamp,
        unverified_refs=unverified,
        extra_entries=extra,
    )


def _verify_timestamp(
    run: _Run,
    entries: dict[str, bytes],
    signature_xml: bytes,
    resolve: Callable[[str], bytes | None],
    check: TimestampCheck | None,
    required: bool,
) -> ContainerTimestamp | None:
    """The timestamp steps of ``AsicContainerVerifier.verifyTimestamp``; returns None when there is none."""
    ts_result = entries.get(ENTRY_TS_HASH_CHAIN_RESULT)
    if ts_result is not None:
        # Batch timestamp (§4.5): ts-hashchain leads from signatures.xml to the result the token covers.
        try:
            hashchain.verify_hash_chain(ts_result, entries[ENTRY_TS_HASH_CHAIN], resolve, [hashchain.SIGNATURE])
        except (InvalidHashChain, HashChainUnusedInputs) as err:
            raise MalformedSignature(
                "failed to verify time-stamp hash chain", reason=f"failed to verify time-stamp hash chain: {err.reason}"
            ) from err
        run.passed("timestamp hash chain", f"{ENTRY_TS_HASH_CHAIN} leads from {hashchain.SIGNATURE} to {ENTRY_TS_HASH_CHAIN_RESULT}")
        token = entries.get(ENTRY_TIMESTAMP)
        if token is None:
            raise _missing(TIMESTAMP_NOT_FOUND, ENTRY_TIMESTAMP)
        stamped, what = ts_result, ENTRY_TS_HASH_CHAIN_RESULT
        manifest = entries.get(ENTRY_ASIC_MANIFEST)
        if manifest is not None:
            _check_asic_manifest(manifest, ts_result)
    else:
        # Single timestamp: over the raw signature value, from timestamp.tst or inside the signature.
        token = entries.get(ENTRY_TIMESTAMP)
        if token is None:
            token = signature_timestamp(signature_xml)
        stamped, what = signature_value(signature_xml), "the signature value"
    if token is None:
        if required:
            raise _missing(TIMESTAMP_NOT_FOUND, ENTRY_TIMESTAMP)
        run.skipped("timestamp", "container has no timestamp")
        return None
    algorithm, imprint, gen_time = _read_token(token)
    if algorithm.digest(stamped) != imprint:
        raise MalformedSignature("timestamp hashes do not match", reason=f"timestamp imprint is not the digest of {what}")
    run.passed("timestamp imprint", f"token imprint is {algorithm.name} of {what}; genTime {gen_time.isoformat()}")
    if check is None:
        run.skipped("timestamp token", "token signature and TSA not checked (no timestamp verifier given)")
    else:
        check(token, stamped)
        run.passed("timestamp token", "token signature and TSA accepted")
    return ContainerTimestamp(token_der=token, batch=ts_result is not None, imprint_algorithm=algorithm, gen_time=gen_time)


def _check_asic_manifest(manifest: bytes, ts_result: bytes) -> None:
    """The ASiC manifest, when present, must name the digest of ``ts-hashchainresult.xml``."""
    try:
        root = parse_xml(manifest, max_bytes=64 * 1024)
    except BusError as err:
        raise MalformedSignature("ASiC manifest is not well-formed XML") from err
    references = root.findall(f"{{{ASIC_MANIFEST_NS}}}DataObjectReference")
    if root.tag != f"{{{ASIC_MANIFEST_NS}}}ASiCManifest" or len(references) != 1:
        raise MalformedSignature("malformed ASiC manifest")
    reference = references[0]
    method = reference.find(f"{{{hashchain.DS_NS}}}DigestMethod")
    value = reference.find(f"{{{hashchain.DS_NS}}}DigestValue")
    algorithm = digests.lookup_uri(method.get("Algorithm") or "") if method is not None else None
    if reference.get("URI") != ENTRY_TS_HASH_CHAIN_RESULT or algorithm is None or value is None:
        raise MalformedSignature("malformed ASiC manifest")
    try:
        stated = base64.b64decode("".join((value.text or "").split()), validate=True)
    except (binascii.Error, ValueError) as err:
        raise MalformedSignature("malformed ASiC manifest") from err
    if algorithm.digest(ts_result) != stated:
        raise MalformedSignature("ASiC manifest digest does not match ts-hashchainresult.xml")
