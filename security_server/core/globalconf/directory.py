"""The signed directory of the configuration download protocol: build, parse, verify (pr-gconf §2.3-§2.6).

On the wire (pr-gconf Annex A.2; X-Road's DirectoryContentBuilder/DirectoryContentSigner)::

    Content-Type: multipart/related; boundary=OUTER
    --OUTER
    Content-Type: multipart/mixed; boundary=INNER      <- part 1: the directory; its body is what is signed
    --INNER
    Expire-date: 2026-01-01T00:10:00Z                   <- header-only first entry (§2.4)
    Version: 3
    --INNER
    Content-type: application/octet-stream              <- one part per configuration file
    Content-transfer-encoding: base64
    Content-identifier: SHARED-PARAMETERS; instance="EE"
    Content-location: /V3/20260101000000/shared-params.xml
    Hash-algorithm-id: http://www.w3.org/2001/04/xmlenc#sha512

    <base64 digest of the file>
    --INNER--
    --OUTER
    Content-Type: application/octet-stream              <- part 2: the signature over part 1's body
    Content-Transfer-Encoding: base64
    Signature-Algorithm-Id: http://www.w3.org/2001/04/xmldsig-more#rsa-sha512
    Verification-certificate-hash: <b64 digest of the signing cert>; hash-algorithm-id="...#sha512"

    <base64 signature>
    --OUTER--

:func:`parse_signed_directory` only splits the outer message; nothing inside the directory is trusted until
:func:`verify_signed_directory` has checked the signature against the anchor, so a changed byte in the
directory is always reported as a bad signature.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime
from typing import Callable, Sequence

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from security_server.core.errors import (
    BadRequest,
    ConfigurationAnchorMismatch,
    ConfigurationHashMismatch,
    ConfigurationInstanceMismatch,
    ConfigurationSignatureInvalid,
    GlobalConfOutdated,
    InvalidConfiguration,
    InvalidContentType,
    RequestTooLarge,
)
from security_server.core.globalconf import algorithms
from security_server.core.globalconf.algorithms import RSA_SHA512_URI, SHA512_URI, SignatureKey
from security_server.core.globalconf.anchor import ConfigurationAnchor
from security_server.core.globalconf.values import (
    check_aware,
    check_certificate,
    check_code,
    format_datetime,
    parse_datetime,
)
from security_server.core.multipart import (
    Limits,
    Part,
    boundary_of,
    build_multipart,
    format_header_value,
    parse_header_value,
    parse_multipart,
    parse_multipart_message,
)

SHARED_PARAMETERS = "SHARED-PARAMETERS"
PRIVATE_PARAMETERS = "PRIVATE-PARAMETERS"
_PARAMETER_CONTENT = (SHARED_PARAMETERS, PRIVATE_PARAMETERS)

CONFIGURATION_VERSION = 3
"""The configuration version whose shared and private parameters fedbus writes (pr-gconf §2.7)."""

MAX_DIRECTORY_BYTES = 1024 * 1024
"""Largest signed directory we read; a directory with a handful of parts is a few kilobytes."""

_LIMITS = Limits(
    max_body_bytes=MAX_DIRECTORY_BYTES,
    max_parts=64,
    max_part_bytes=MAX_DIRECTORY_BYTES,
    max_header_bytes=8 * 1024,
    max_headers_per_part=20,
)

Signer = Callable[[bytes], bytes]
"""Signs the directory bytes and returns the signature (e.g. a call into the signer service)."""


def _check_header_text(value: object, what: str) -> str:
    if not isinstance(value, str) or not value or value != value.strip(" \t"):
        raise InvalidConfiguration(f"{what} must be non-empty text without surrounding blanks")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        raise InvalidConfiguration(f"{what} has control characters")
    return value


def _decode_b64(text: bytes | str, what: str) -> bytes:
    raw = text.encode("ascii", "replace") if isinstance(text, str) else text
    compact = b"".join(raw.split())
    if not compact:
        raise InvalidConfiguration(f"{what} is empty")
    try:
        return base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError) as err:
        raise InvalidConfiguration(f"{what} is not valid base64") from err


@dataclass(frozen=True, slots=True)
class DirectoryEntry:
    """One configuration file listed in the directory: where it is, what it is, and its digest."""

    content_location: str
    digest: bytes
    content_identifier: str | None = None
    instance: str | None = None
    hash_algorithm_id: str = SHA512_URI
    file_name: str | None = None

    def __post_init__(self) -> None:
        _check_header_text(self.content_location, "Content-location")
        if not isinstance(self.digest, bytes) or len(self.digest) != algorithms.digest_size(self.hash_algorithm_id):
            raise InvalidConfiguration("directory entry digest does not fit its hash algorithm")
        if self.content_identifier is not None:
            identifier = _check_header_text(self.content_identifier, "Content-identifier")
            if ";" in identifier or '"' in identifier:
                raise InvalidConfiguration("Content-identifier may not contain ';' or quotes")
        if self.instance is not None:
            check_code(self.instance, "Content-identifier instance")
        if self.content_identifier in _PARAMETER_CONTENT and self.instance is None:
            # pr-gconf §2.5: parameter parts MUST name their instance.
            raise InvalidConfiguration(f"{self.content_identifier} entry must name its instance")
        if self.instance is not None and self.content_identifier is None:
            raise InvalidConfiguration("an instance is given without a Content-identifier")
        if self.file_name is not None:
            _check_header_text(self.file_name, "Content-file-name")

    @classmethod
    def for_content(
        cls,
        content_identifier: str | None,
        instance: str | None,
        content_location: str,
        content: bytes,
        *,
        hash_algorithm_id: str = SHA512_URI,
        file_name: str | None = None,
    ) -> DirectoryEntry:
        """The entry for the file ``content`` published at ``content_location``, with its digest computed."""
        return cls(
            content_location,
            algorithms.digest(hash_algorithm_id, content),
            content_identifier,
            instance,
            hash_algorithm_id,
            file_name,
        )

    def to_part(self) -> Part:
        """The directory part of this entry (pr-gconf §2.4)."""
        headers = [
            ("Content-type", "application/octet-stream"),
            ("Content-transfer-encoding", "base64"),
        ]
        if self.content_identifier is not None:
            params = [] if self.instance is None else [("instance", self.instance)]
            headers.append(("Content-identifier", format_header_value(self.content_identifier, params)))
        headers.append(("Content-location", self.content_location))
        headers.append(("Hash-algorithm-id", self.hash_algorithm_id))
        if self.file_name is not None:
            headers.append(("Content-file-name", self.file_name))
        return Part(tuple(headers), base64.b64encode(self.digest))

    @classmethod
    def from_part(cls, part: Part) -> DirectoryEntry:
        """Read a directory part, checking the headers that pr-gconf §2.4 requires."""
        content_type = parse_header_value(part.require_header("Content-type"))
        if content_type.media_type != "application/octet-stream":
            raise InvalidConfiguration("directory entry is not application/octet-stream")
        if part.require_header("Content-transfer-encoding").lower() != "base64":
            raise InvalidConfiguration("directory entry is not base64-encoded")
        identifier: str | None = None
        instance: str | None = None
        raw_identifier = part.header("Content-identifier")
        if raw_identifier is not None:
            parsed = parse_header_value(raw_identifier)
            identifier, instance = parsed.value, parsed.param("instance")
        return cls(
            part.require_header("Content-location"),
            _decode_b64(part.body, "directory entry digest"),
            identifier,
            instance,
            part.require_header("Hash-algorithm-id"),
            part.header("Content-file-name"),
        )


@dataclass(frozen=True, slots=True)
class SignedDirectory:
    """A downloaded signed directory, split but not yet trusted: see :func:`verify_signed_directory`."""

    directory_content_type: str
    signed_data: bytes
    signature: bytes
    signature_algorithm_id: str
    verification_cert_hash: bytes
    verification_cert_hash_algorithm_id: str


@dataclass(frozen=True, slots=True)
class VerifiedDirectory:
    """A directory whose signature verified with the anchor's key, unexpired at verification time."""

    instance: str
    expires_at: datetime
    version: int | None
    entries: tuple[DirectoryEntry, ...]
    verification_cert: bytes

    def entry(self, content_identifier: str, instance: str | None = None) -> DirectoryEntry | None:
        """The entry with ``content_identifier`` (for ``instance``, by default the directory's), or ``None``."""
        wanted = self.instance if instance is None else instance
        for entry in self.entries:
            if entry.content_identifier == content_identifier and entry.instance == wanted:
                return entry
        return None

    def is_expired(self, now: datetime) -> bool:
        """True from ``Expire-date`` on (pr-gconf §2.4)."""
        return check_aware(now, "now") >= self.expires_at


# --- building -----------------------------------------------------------------------------------------------


def _sign(signer: Signer | SignatureKey, algorithm_id: str, data: bytes) -> bytes:
    if isinstance(signer, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey)):
        return algorithms.sign(signer, algorithm_id, data)
    signature = signer(data)
    if not isinstance(signature, bytes) or not signature:
        raise InvalidConfiguration("the signer returned no signature")
    return signature


def build_directory(entries: Sequence[DirectoryEntry], expires_at: datetime, version: int | None) -> tuple[str, bytes]:
    """The directory (``multipart/mixed``) of ``entries``: its content type and body, the bytes to be signed."""
    check_aware(expires_at, "Expire-date")
    first: list[tuple[str, str]] = [("Expire-date", format_datetime(expires_at))]
    if version is not None:
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise InvalidConfiguration("configuration version must be a positive integer")
        first.append(("Version", str(version)))
    items = tuple(entries)
    for entry in items:
        if not isinstance(entry, DirectoryEntry):
            raise InvalidConfiguration("directory entries must be DirectoryEntry values")
    _check_unique_parameters(items)
    boundary, body = build_multipart([Part(tuple(first)), *(entry.to_part() for entry in items)])
    return format_header_value("multipart/mixed", [("charset", "UTF-8"), ("boundary", boundary)]), body


def build_signed_directory(
    entries: Sequence[DirectoryEntry],
    expires_at: datetime,
    version: int | None,
    signer: Signer | SignatureKey,
    cert: bytes,
    *,
    signature_algorithm_id: str = RSA_SHA512_URI,
    cert_hash_algorithm_id: str = SHA512_URI,
) -> tuple[str, bytes]:
    """Build and sign a directory; returns the HTTP ``Content-Type`` value and the body.

    ``signer`` is a private key, or a callable that signs with ``signature_algorithm_id``; ``cert`` (DER) is
    the certificate of its key, named in the signature part by its digest (pr-gconf §2.3). The output is
    deterministic for a deterministic signature (RSA PKCS#1 v1.5).
    """
    check_certificate(cert, "directory signing certificate")
    directory_type, directory_body = build_directory(entries, expires_at, version)
    signature = _sign(signer, signature_algorithm_id, directory_body)
    cert_hash = base64.b64encode(algorithms.digest(cert_hash_algorithm_id, cert)).decode("ascii")
    signature_part = Part(
        (
            ("Content-Type", "application/octet-stream"),
            ("Content-Transfer-Encoding", "base64"),
            ("Signature-Algorithm-Id", signature_algorithm_id),
            (
                "Verification-certificate-hash",
                format_header_value(cert_hash, [("hash-algorithm-id", cert_hash_algorithm_id)]),
            ),
        ),
        base64.b64encode(signature),
    )
    directory_part = Part((("Content-Type", directory_type),), directory_body)
    boundary, body = build_multipart([directory_part, signature_part])
    return format_header_value("multipart/related", [("charset", "UTF-8"), ("boundary", boundary)]), body


# --- parsing and verification -------------------------------------------------------------------------------


def parse_signed_directory(content_type: str, body: bytes) -> SignedDirectory:
    """Split a downloaded signed directory into the signed bytes and the signature, checking its framing.

    Raises :class:`InvalidConfiguration` for a wrong content type, a truncated or malformed multipart, or a
    signature part that lacks what pr-gconf §2.3 requires.
    """
    try:
        _, parts = parse_multipart_message(content_type, body, ("multipart/related",), _LIMITS)
        if len(parts) != 2:
            raise InvalidConfiguration(f"signed directory must have 2 parts, not {len(parts)}")
        directory_part, signature_part = parts
        directory_type = directory_part.require_header("Content-Type")
        boundary_of(parse_header_value(directory_type), ("multipart/mixed",))
        if parse_header_value(signature_part.require_header("Content-Type")).media_type != "application/octet-stream":
            raise InvalidConfiguration("signature part is not application/octet-stream")
        if signature_part.require_header("Content-Transfer-Encoding").lower() != "base64":
            raise InvalidConfiguration("signature part is not base64-encoded")
        algorithm_id = signature_part.require_header("Signature-Algorithm-Id")
        cert_hash = parse_header_value(signature_part.require_header("Verification-certificate-hash"))
        cert_hash_algorithm_id = cert_hash.param("hash-algorithm-id")
        if cert_hash_algorithm_id is None:
            raise InvalidConfiguration("Verification-certificate-hash has no hash-algorithm-id")
    except (BadRequest, InvalidContentType, RequestTooLarge) as err:
        raise InvalidConfiguration("signed directory is malformed", reason=f"signed directory: {err.reason}") from err
    return SignedDirectory(
        directory_content_type=directory_type,
        signed_data=directory_part.body,
        signature=_decode_b64(signature_part.body, "directory signature"),
        signature_algorithm_id=algorithm_id,
        verification_cert_hash=_decode_b64(cert_hash.value, "Verification-certificate-hash"),
        verification_cert_hash_algorithm_id=cert_hash_algorithm_id,
    )


def _check_signature(directory: SignedDirectory, anchor: ConfigurationAnchor) -> bytes:
    """Find the anchor certificate named by the directory and verify the signature with its key."""
    candidates = [
        cert
        for cert in anchor.verification_certs()
        if algorithms.digest(directory.verification_cert_hash_algorithm_id, cert) == directory.verification_cert_hash
    ]
    if not candidates:
        raise ConfigurationAnchorMismatch("the directory is not signed with a key of the configuration anchor")
    for cert in candidates:
        try:
            public_key = x509.load_der_x509_certificate(cert).public_key()
        except (ValueError, UnsupportedAlgorithm):
            continue
        if algorithms.verify(public_key, directory.signature_algorithm_id, directory.signature, directory.signed_data):
            return cert
    raise ConfigurationSignatureInvalid("the directory signature does not verify")


def _check_unique_parameters(entries: Sequence[DirectoryEntry]) -> None:
    seen: set[tuple[str | None, str | None]] = set()
    for entry in entries:
        if entry.content_identifier in _PARAMETER_CONTENT:
            key = (entry.content_identifier, entry.instance)
            if key in seen:
                raise InvalidConfiguration(f"directory lists {entry.content_identifier} for {entry.instance} twice")
            seen.add(key)


def _parse_directory(directory: SignedDirectory) -> tuple[datetime, int | None, tuple[DirectoryEntry, ...]]:
    try:
        boundary = boundary_of(parse_header_value(directory.directory_content_type), ("multipart/mixed",))
        parts = parse_multipart(directory.signed_data, boundary, _LIMITS)
        header_part = parts[0]
        if header_part.body.strip():
            raise InvalidConfiguration("the first directory part must carry headers only")
        expires_at = parse_datetime(header_part.require_header("Expire-date"), "Expire-date")
        version_text = header_part.header("Version")
        entries = tuple(DirectoryEntry.from_part(part) for part in parts[1:])
    except (BadRequest, InvalidContentType, RequestTooLarge) as err:
        raise InvalidConfiguration("directory is malformed", reason=f"directory: {err.reason}") from err
    version: int | None = None
    if version_text is not None:
        if not version_text.isascii() or not version_text.isdigit() or len(version_text) > 9:
            raise InvalidConfiguration("directory Version is not a number")
        version = int(version_text)
    _check_unique_parameters(entries)
    return expires_at, version, entries


def verify_signed_directory(
    directory: SignedDirectory, anchor: ConfigurationAnchor, now: datetime
) -> VerifiedDirectory:
    """Verify a directory against the anchor at ``now`` (pr-gconf §2.6 steps 1-3) and read its entries.

    In this order: the signing certificate must be one of the anchor's (:class:`ConfigurationAnchorMismatch`),
    the signature must verify (:class:`ConfigurationSignatureInvalid`), the directory must be well formed
    (:class:`InvalidConfiguration`), unexpired (:class:`GlobalConfOutdated`) and for the anchor's instance
    (:class:`ConfigurationInstanceMismatch`: private parameters of another instance, or no parameters of
    this one).
    """
    check_aware(now, "now")
    cert = _check_signature(directory, anchor)
    expires_at, version, entries = _parse_directory(directory)
    if now >= expires_at:
        raise GlobalConfOutdated(
            "the downloaded configuration has expired", reason=f"directory expired at {format_datetime(expires_at)}"
        )
    own = [e for e in entries if e.content_identifier in _PARAMETER_CONTENT and e.instance == anchor.instance]
    foreign_private = [
        e for e in entries if e.content_identifier == PRIVATE_PARAMETERS and e.instance != anchor.instance
    ]
    if foreign_private or not own:
        raise ConfigurationInstanceMismatch(
            f"the directory is not a configuration of instance {anchor.instance}",
            reason=f"directory instances: {sorted({str(e.instance) for e in entries})}, anchor: {anchor.instance}",
        )
    return VerifiedDirectory(anchor.instance, expires_at, version, entries, cert)


def verify_part(entry: DirectoryEntry, content: bytes) -> None:
    """Check a downloaded configuration file against its directory entry (pr-gconf §2.6 step 4)."""
    if algorithms.digest(entry.hash_algorithm_id, content) != entry.digest:
        raise ConfigurationHashMismatch(f"{entry.content_location} does not match its digest in the directory")
