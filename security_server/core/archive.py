"""Message-log archives: zips of ASiC-E containers chained by ``linkinginfo``, built and verified as X-Road does.

An archive (XROAD-REFERENCE.md §4.6; X-Road ``LogArchiveWriter``, ``LogArchiveCache``, ``LinkingInfoBuilder``
and the ``messagelog-archive-verifier``) is a zip of ``.asice`` containers plus one ``linkinginfo`` entry::

    <previous archive's last digest | -> <previous archive file | -> <algorithm, e.g. SHA-512>
    <digest_1> <container file 1>
    <digest_2> <container file 2>
    ...

    digest_i = hex( H( utf8( digest_(i-1) + hex(H(container_i bytes)) ) ) ),  digest_0 = previous last digest

so every container is chained to the one before it, and the first to the previous archive (protocol-examples
§11.1, §12.6). Hex is lowercase. X-Road's verifier (``ArchiveHashChainVerifier``) takes the previous archive's
last digest, or ``--first``, and checks in this order: a ``linkinginfo`` exists, at least one container, the
previous digest matches the first line, the container names in the zip and in ``linkinginfo`` are the same
set, and each container's chained digest (computed in zip order) equals its line. We give the same verdicts
on X-Road's archives and add: the zip is read defensively (no unsafe names, duplicates, links or bombs), and
in strict mode (the default) any other entry in the zip is refused, since nothing covers it.

This module is pure: it builds and checks bytes; writing the file atomically is the archiver's job.
"""

from __future__ import annotations

import io
import re
import stat
import urllib.parse
import zipfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Sequence

from security_server.core import digests
from security_server.core.asic import ZipLimits, read_container
from security_server.core.digests import DigestAlgorithm
from security_server.core.errors import BusError, RequestTooLarge

LINKINGINFO = "linkinginfo"
"""Name of the zip entry that chains the containers (``LogArchiveCache``)."""

CONTAINER_SUFFIX = ".asice"
"""Entries with this suffix are the archive's containers (``MessageArchiveExtractor.isAsic``)."""

MAX_QUERY_ID_CHARS = 226
"""How much of the (escaped) message id a container name keeps (``AsicContainerNameGenerator``)."""

ARCHIVE_LIMITS = ZipLimits(
    max_container_bytes=2 * 1024 * 1024 * 1024,
    max_entries=200_000,
    max_entry_bytes=256 * 1024 * 1024,
    max_total_bytes=4 * 1024 * 1024 * 1024,
)
"""How much an archive may hold before the verifier refuses it (X-Road rotates archives at 32 MiB)."""

MAX_LINKINGINFO_BYTES = 64 * 1024 * 1024
"""Largest ``linkinginfo`` read (a line is under 400 bytes; this allows far more containers than any archive has)."""

# Verdict codes: "valid", or "invalid_archive.<reason>".
VALID = "valid"
NOT_A_ZIP = "invalid_archive.not_a_readable_zip"
TOO_LARGE = "invalid_archive.too_large"
NO_LINKINGINFO = "invalid_archive.linkinginfo_not_found"
MALFORMED_LINKINGINFO = "invalid_archive.malformed_linkinginfo"
NO_CONTAINERS = "invalid_archive.no_asic_containers"
PREVIOUS_DIGEST_MISMATCH = "invalid_archive.previous_digest_mismatch"
FILE_NAMES_DIFFER = "invalid_archive.file_names_differ"
DIGEST_MISMATCH = "invalid_archive.digest_mismatch"
UNEXPECTED_ENTRY = "invalid_archive.unexpected_entry"
"""Ours, not X-Road's: an entry that is neither a container nor ``linkinginfo`` (refused in strict mode)."""

_UNSAFE_GROUP = re.compile(r"[\x00-\x1f\x7f\\<>/:|*?]")  # LogArchiveWriter.escape
_FILE_TIME = "%Y%m%d%H%M%S"


# --- names ---------------------------------------------------------------------------------------------------


def escape_query_id(query_id: str) -> str:
    """X-Road's ``AsicUtils.escapeString``: Java's ``URLEncoder`` form encoding (UTF-8), ``/`` as ``%2F``.

    Java leaves ``A-Z a-z 0-9 . - * _`` as they are and writes a space as ``+``; everything else is
    percent-encoded, so the result is one safe path segment.
    """
    return urllib.parse.quote_plus(query_id, safe="*").replace("~", "%7E")


def container_name(query_id: str, response: bool, record_id: int) -> str:
    """The name of a record's container in an archive or ``/asic`` download (``AsicContainerNameGenerator``).

    ``<escaped query id, at most 226 chars>-<request|response>-<record id in base 32>.asice``.
    """
    if record_id < 0:
        raise ValueError("record ids are not negative")
    return f"{escape_query_id(query_id)[:MAX_QUERY_ID_CHARS]}-{'response' if response else 'request'}-{_base32(record_id)}{CONTAINER_SUFFIX}"


def _base32(value: int) -> str:
    """Java's ``Long.toUnsignedString(value, 32)``: digits 0-9 then a-v."""
    alphabet = "0123456789abcdefghijklmnopqrstuv"
    if value == 0:
        return "0"
    out = []
    while value:
        value, remainder = divmod(value, 32)
        out.append(alphabet[remainder])
    return "".join(reversed(out))


def archive_file_name(first: datetime, last: datetime, last_digest: str, *, group: str | None = None) -> str:
    """X-Road's archive file name: ``mlog[-<group>]-<first>-<last>-<first 16 hex of the last digest>.zip``.

    ``first`` and ``last`` are the creation times of the first and last record, written ``yyyyMMddHHmmss``
    (in UTC: X-Road uses the server's local zone, which an archive should not depend on).
    """
    for moment in (first, last):
        if moment.tzinfo is None or moment.utcoffset() is None:
            raise ValueError("archive times must be timezone-aware")
    prefix = _UNSAFE_GROUP.sub("_", group)[:200] + "-" if group else ""
    first_text = first.astimezone(timezone.utc).strftime(_FILE_TIME)
    last_text = last.astimezone(timezone.utc).strftime(_FILE_TIME)
    return f"mlog-{prefix}{first_text}-{last_text}-{last_digest[:16]}.zip"


# --- linkinginfo ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LinkingEntry:
    """One container line of ``linkinginfo``: its chained digest (lowercase hex) and its file name."""

    digest: str
    name: str

    def __post_init__(self) -> None:
        if not self.name or any(c.isspace() for c in self.name):
            raise ValueError(f"container name {self.name!r} is empty or holds white space")
        if not self.digest or any(c.isspace() for c in self.digest):
            raise ValueError("a linkinginfo digest is a non-empty word")


@dataclass(frozen=True, slots=True)
class LinkingInfo:
    """A parsed ``linkinginfo``: where it continues from, the algorithm, and one line per container."""

    prev_digest: str
    prev_file: str
    algorithm: DigestAlgorithm
    entries: tuple[LinkingEntry, ...] = ()

    def __post_init__(self) -> None:
        for word, what in ((self.prev_digest, "previous digest"), (self.prev_file, "previous file")):
            if any(c.isspace() for c in word):
                raise ValueError(f"the {what} holds white space")

    @property
    def last_digest(self) -> str:
        """The digest the next archive continues from (the previous one when there are no containers)."""
        return self.entries[-1].digest if self.entries else self.prev_digest

    def to_bytes(self) -> bytes:
        """The file as X-Road writes it (``LinkingInfoBuilder.build``): ``-`` for blanks, ``\\n`` after every line."""
        lines = [f"{self.prev_digest or '-'} {self.prev_file or '-'} {self.algorithm.name}"]
        lines += [f"{entry.digest} {entry.name}" for entry in self.entries]
        return ("\n".join(lines) + "\n").encode("utf-8")


def chain_digest(algorithm: DigestAlgorithm, prev_digest: str, container: bytes) -> str:
    """The next linkinginfo digest: ``hex(H(utf8(prev_digest + hex(H(container)))))`` (``DigestCalculator``)."""
    return algorithm.digest((prev_digest + algorithm.digest(container).hex()).encode("utf-8")).hex()


class LinkingInfoError(ValueError):
    """``linkinginfo`` is not in X-Road's format."""


def parse_linkinginfo(data: bytes) -> LinkingInfo:
    """Read a ``linkinginfo`` as X-Road's verifier does (``LinkingInfo.parse``); :class:`LinkingInfoError` if malformed.

    Lines end in ``\\n`` or ``\\r\\n``; trailing empty lines are ignored; ``-`` in the first line means blank.
    """
    if len(data) > MAX_LINKINGINFO_BYTES:
        raise LinkingInfoError("linkinginfo is too large")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise LinkingInfoError("linkinginfo is not UTF-8") from err
    lines = re.split(r"\r?\n", text)
    while lines and lines[-1] == "":
        lines.pop()  # Java's String.split drops trailing empty strings
    if not lines:
        raise LinkingInfoError("linkinginfo is empty")
    first = lines[0].split()
    if len(first) != 3:
        raise LinkingInfoError("the first line of linkinginfo is not '<digest> <file> <algorithm>'")
    algorithm = digests.lookup_name(first[2])
    if algorithm is None:
        raise LinkingInfoError(f"linkinginfo names an unsupported digest algorithm {first[2][:40]!r}")
    entries = []
    for number, line in enumerate(lines[1:], start=2):
        words = line.split()
        if len(words) != 2:
            raise LinkingInfoError(f"line {number} of linkinginfo is not '<digest> <file>'")
        entries.append(LinkingEntry(words[0], words[1]))
    return LinkingInfo(
        prev_digest="" if first[0] == "-" else first[0],
        prev_file="" if first[1] == "-" else first[1],
        algorithm=algorithm,
        entries=tuple(entries),
    )


# --- building ------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ArchiveEntry:
    """A container to archive: its file name, bytes and time (the record's, stamped on the zip entry)."""

    name: str
    data: bytes = field(repr=False)
    time: datetime


@dataclass(frozen=True, slots=True)
class BuiltArchive:
    """An archive's bytes and the ``linkinginfo`` inside it."""

    data: bytes = field(repr=False)
    linking: LinkingInfo


def _zip_time(moment: datetime) -> tuple[int, int, int, int, int, int]:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("entry times must be timezone-aware")
    utc = moment.astimezone(timezone.utc)
    if utc.year < 1980:
        return (1980, 1, 1, 0, 0, 0)
    return (utc.year, utc.month, utc.day, utc.hour, utc.minute, utc.second)


def build_archive(
    containers: Sequence[ArchiveEntry],
    *,
    prev_digest: str,
    prev_file: str,
    algorithm: DigestAlgorithm = digests.SHA512,
) -> BuiltArchive:
    """Zip ``containers`` with a ``linkinginfo`` continuing from ``prev_digest`` (X-Road ``LogArchiveCache``).

    Containers are stored uncompressed (they are zips already) in the given order, ``linkinginfo`` last, with
    fixed entry times, so the same inputs always give the same bytes: an archive interrupted by a crash is
    rebuilt identically.
    """
    if not containers:
        raise ValueError("an archive holds at least one container")
    names = [entry.name for entry in containers]
    if len(set(names)) != len(names):
        raise ValueError("container names in an archive are unique")
    for name in names:
        if not name.endswith(CONTAINER_SUFFIX) or "/" in name or name in (".", ".."):
            raise ValueError(f"{name!r} is not a container file name")
    entries = []
    digest = prev_digest
    for entry in containers:
        digest = chain_digest(algorithm, digest, entry.data)
        entries.append(LinkingEntry(digest, entry.name))
    linking = LinkingInfo(prev_digest, prev_file, algorithm, tuple(entries))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for entry in containers:
            archive.writestr(_zip_info(entry.name, entry.time), entry.data)
        latest = max(entry.time for entry in containers)
        info = _zip_info(LINKINGINFO, latest)
        archive.writestr(info, linking.to_bytes())
    return BuiltArchive(buffer.getvalue(), linking)


def _zip_info(name: str, moment: datetime) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=_zip_time(moment))
    info.compress_type = zipfile.ZIP_STORED
    info.create_system = 3
    info.external_attr = (stat.S_IFREG | 0o644) << 16
    return info


# --- verifying -----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ArchiveCheck:
    """One step of archive verification, in words an auditor can read."""

    name: str
    passed: bool
    detail: str


@dataclass(frozen=True, slots=True)
class ArchiveVerdict:
    """The verdict on an archive: ``code`` is ``valid`` or an ``invalid_archive.*`` code, with the checks made.

    ``last_digest`` is what the next archive must continue from (X-Road's verifier prints it); ``containers``
    are the archive's containers in zip order, for deeper checks of each one.
    """

    code: str
    checks: tuple[ArchiveCheck, ...]
    linking: LinkingInfo | None = None
    last_digest: str | None = None
    containers: tuple[tuple[str, bytes], ...] = field(default=(), repr=False)

    @property
    def ok(self) -> bool:
        """True when the archive verified."""
        return self.code == VALID


class _Run:
    def __init__(self) -> None:
        self.checks: list[ArchiveCheck] = []
        self.linking: LinkingInfo | None = None

    def passed(self, name: str, detail: str) -> None:
        self.checks.append(ArchiveCheck(name, True, detail))

    def failed(self, name: str, code: str, detail: str) -> ArchiveVerdict:
        self.checks.append(ArchiveCheck(name, False, f"{code}: {detail}"))
        return ArchiveVerdict(code, tuple(self.checks), self.linking)


def verify_archive(
    data: bytes,
    previous_digest: str | None,
    *,
    strict: bool = True,
    limits: ZipLimits = ARCHIVE_LIMITS,
) -> ArchiveVerdict:
    """Verify an archive's ``linkinginfo`` chain (X-Road ``ArchiveHashChainVerifier``); say what was checked.

    ``previous_digest`` is the previous archive's last digest, or None for the first archive of a chain
    (X-Road's ``--first``). In ``strict`` mode an entry that is neither a container nor ``linkinginfo`` is
    refused; X-Road ignores such entries (``strict=False`` gives exactly its verdicts).
    """
    run = _Run()
    try:
        entries = read_container(data, limits)
    except RequestTooLarge as err:
        return run.failed("zip", TOO_LARGE, err.reason)
    except BusError as err:
        return run.failed("zip", NOT_A_ZIP, err.reason)
    run.passed("zip", f"{len(entries)} entries read safely")

    raw_linking = entries.get(LINKINGINFO)
    if raw_linking is None:
        return run.failed(LINKINGINFO, NO_LINKINGINFO, "the archive has no linkinginfo entry")
    try:
        linking = run.linking = parse_linkinginfo(raw_linking)
    except LinkingInfoError as err:
        return run.failed(LINKINGINFO, MALFORMED_LINKINGINFO, str(err))
    run.passed(
        LINKINGINFO,
        f"{len(linking.entries)} containers, {linking.algorithm.name}, continues from "
        + (f"{linking.prev_file or 'an unnamed archive'} ({linking.prev_digest[:16]}...)" if linking.prev_digest else "nothing (first archive)"),
    )

    containers = [(name, content) for name, content in entries.items() if name.endswith(CONTAINER_SUFFIX)]
    extra = sorted(name for name in entries if name != LINKINGINFO and not name.endswith(CONTAINER_SUFFIX))
    if not containers:
        return run.failed("containers", NO_CONTAINERS, "there are no ASiC containers in the archive, at least one is expected")
    if extra and strict:
        return run.failed("containers", UNEXPECTED_ENTRY, f"entries nothing covers: {', '.join(extra)}")
    run.passed("containers", f"{len(containers)} containers" + (f"; ignored: {', '.join(extra)}" if extra else ""))

    expected_prev = previous_digest or ""
    if expected_prev != linking.prev_digest:
        return run.failed(
            "previous digest",
            PREVIOUS_DIGEST_MISMATCH,
            f"given {expected_prev or '(first archive)'}, linkinginfo has {linking.prev_digest or '(first archive)'}",
        )
    run.passed("previous digest", "linkinginfo continues from " + (expected_prev or "nothing: first archive"))

    listed = {entry.name: entry.digest for entry in linking.entries}
    in_zip = {name for name, _ in containers}
    if len(listed) != len(linking.entries) or set(listed) != in_zip:
        missing = sorted(set(listed) - in_zip)
        unlisted = sorted(in_zip - set(listed))
        detail = "; ".join(
            part
            for part in (
                f"listed but not in the archive: {', '.join(missing)}" if missing else "",
                f"in the archive but not listed: {', '.join(unlisted)}" if unlisted else "",
                "a container is listed twice" if len(listed) != len(linking.entries) else "",
            )
            if part
        )
        return run.failed("file names", FILE_NAMES_DIFFER, detail)
    run.passed("file names", "linkinginfo lists exactly the containers in the archive")

    digest = linking.prev_digest
    for name, content in containers:
        digest = chain_digest(linking.algorithm, digest, content)
        if digest != listed[name]:
            return run.failed("digest chain", DIGEST_MISMATCH, f"digest of {name} does not match its linkinginfo line")
    run.passed("digest chain", f"every container's chained digest matches; last digest {digest}")
    return ArchiveVerdict(VALID, tuple(run.checks), linking, digest, tuple(containers))
