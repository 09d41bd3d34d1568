"""Message-log archives: X-Road's verdicts on its archives, our archives chain and verify, hostile zips are refused."""

from __future__ import annotations

import hashlib
import io
import stat
import zipfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from security_server.core import archive, digests
from security_server.core.asic import ZipLimits
from security_server.core.archive import (
    ArchiveEntry,
    LinkingInfo,
    LinkingInfoError,
    archive_file_name,
    build_archive,
    chain_digest,
    container_name,
    parse_linkinginfo,
    verify_archive,
)

T0 = datetime(2026, 11, 29, 12, 0, 5, tzinfo=timezone.utc)
ARCHIVE_0_LAST = (
    "9011ab557706b5050584d6888af7b390e5350f4edad296bd7a582aa51732aac7"
    "f49a4ec44dd361027945ade0de8b8cf607fb7b7d11f17b0560d44b965c358eaa"
)


def vector(xroad_vectors: Path, name: str) -> bytes:
    """An archive from shared/vectors/xroad/archives."""
    return (xroad_vectors / "archives" / name).read_bytes()


# --- X-Road's archives and its archive verifier's verdicts ---------------------------------------------------------


def test_first_xroad_archive_verifies_as_first_and_gives_its_last_digest(xroad_vectors: Path) -> None:
    """message-archive-0.zip is accepted with --first; its last digest is the one archive-1 continues from."""
    verdict = verify_archive(vector(xroad_vectors, "message-archive-0.zip"), None)
    assert verdict.code == "valid" and verdict.last_digest == ARCHIVE_0_LAST


def test_chained_xroad_archive_verifies_with_the_previous_digest(xroad_vectors: Path) -> None:
    """message-archive-1.zip is accepted with the previous archive's last digest (X-Road's test value)."""
    verdict = verify_archive(vector(xroad_vectors, "message-archive-1.zip"), ARCHIVE_0_LAST)
    assert verdict.ok, verdict.checks
    assert verdict.linking is not None and verdict.linking.prev_file.startswith("mlog-20231023121255")
    assert len(verdict.containers) == len(verdict.linking.entries)


@pytest.mark.parametrize("previous", ["4145" + ARCHIVE_0_LAST[4:], None], ids=["wrong-digest", "as-first"])
def test_chained_xroad_archive_is_rejected_with_another_previous_digest(xroad_vectors: Path, previous: str | None) -> None:
    """archive-1 with 4145... in place of 9011... (X-Road's negative test), or as a first archive, is rejected."""
    verdict = verify_archive(vector(xroad_vectors, "message-archive-1.zip"), previous)
    assert verdict.code == archive.PREVIOUS_DIGEST_MISMATCH


MLOG_VERDICTS = {
    "mlog-WITH_LINKINGINFO.zip": "valid",
    "mlog-WITH_INVALID_LINKINGINFO.zip": archive.DIGEST_MISMATCH,
    "mlog-NO_LINKINGINFO.zip": archive.NO_LINKINGINFO,
    "mlog-NO_ASIC_CONTAINERS.zip": archive.NO_CONTAINERS,
    "mlog-EXCESSIVE_FILES_IN_LINKINGINFO.zip": archive.FILE_NAMES_DIFFER,
}


@pytest.mark.parametrize(("name", "expected"), sorted(MLOG_VERDICTS.items()))
def test_xroad_mlog_archives_get_the_archive_verifiers_verdict(xroad_vectors: Path, name: str, expected: str) -> None:
    """The mlog-* archives (first archives, SHA-256) get X-Road's archive verifier's verdict, strict or not."""
    for strict in (True, False):
        assert verify_archive(vector(xroad_vectors, name), None, strict=strict).code == expected


def test_every_archive_vector_is_covered(xroad_vectors: Path) -> None:
    """Every zip in the archives vectors folder has a test above."""
    names = {path.name for path in (xroad_vectors / "archives").glob("*.zip")}
    assert names == set(MLOG_VERDICTS) | {"message-archive-0.zip", "message-archive-1.zip"}


def test_linkinginfo_digest_rule_matches_the_vector_line(xroad_vectors: Path) -> None:
    """digest_1 = hex(SHA-512(utf8('' + hex(SHA-512(container))))) reproduces archive-0's only line."""
    with zipfile.ZipFile(io.BytesIO(vector(xroad_vectors, "message-archive-0.zip"))) as zipped:
        container = zipped.read("3a2a743f-56da-4085-b643-79e335341eb3-request-1.asice")
        linking = zipped.read("linkinginfo")
    expected = hashlib.sha512(hashlib.sha512(container).hexdigest().encode()).hexdigest()
    assert chain_digest(digests.SHA512, "", container) == expected == ARCHIVE_0_LAST
    parsed = parse_linkinginfo(linking)
    assert parsed.to_bytes() == linking  # we write the format byte for byte as X-Road does


# --- names ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query_id", "response", "record_id", "expected"),
    [
        ("3a2a743f-56da-4085-b643-79e335341eb3", False, 1, "3a2a743f-56da-4085-b643-79e335341eb3-request-1.asice"),
        ("ID1234", True, 10, "ID1234-response-a.asice"),
        ("a b/c*~ä", False, 32, "a+b%2Fc*%7E%C3%A4-request-10.asice"),
        ("../../etc/passwd", False, 1, "..%2F..%2Fetc%2Fpasswd-request-1.asice"),
    ],
)
def test_container_names_follow_xroads_name_generator(query_id: str, response: bool, record_id: int, expected: str) -> None:
    """<URL-encoded query id>-<request|response>-<record id in base 32>.asice, never a path."""
    assert container_name(query_id, response, record_id) == expected


def test_long_query_ids_are_cut_at_226_characters() -> None:
    """The escaped query id keeps at most 226 characters (AsicContainerNameGenerator.MAX_QUERY_LENGTH)."""
    assert container_name("q" * 300, False, 1) == "q" * 226 + "-request-1.asice"


def test_archive_file_name_is_xroads() -> None:
    """mlog-<first>-<last>-<16 hex>.zip with UTC yyyyMMddHHmmss times; a group is escaped."""
    name = archive_file_name(T0, T0 + timedelta(hours=1), ARCHIVE_0_LAST)
    assert name == "mlog-20261129120005-20261129130005-9011ab557706b505.zip"
    assert archive_file_name(T0, T0, "ab", group="EE/GOV:1").startswith("mlog-EE_GOV_1-")


# --- our archives ------------------------------------------------------------------------------------------------


def entries(*datas: bytes) -> list[ArchiveEntry]:
    """Containers named c1.asice, c2.asice ... with the given bytes."""
    return [ArchiveEntry(f"c{n}.asice", data, T0 + timedelta(seconds=n)) for n, data in enumerate(datas, start=1)]


@settings(max_examples=50, deadline=None)
@given(st.lists(st.lists(st.binary(min_size=1, max_size=64), min_size=1, max_size=4), min_size=1, max_size=4))
def test_built_archives_chain_and_verify(batches: list[list[bytes]]) -> None:
    """Any sequence of archives built one after another verifies, each with the previous one's last digest."""
    previous, previous_file = "", ""
    for number, datas in enumerate(batches):
        built = build_archive(entries(*datas), prev_digest=previous, prev_file=previous_file)
        verdict = verify_archive(built.data, previous or None)
        assert verdict.ok, verdict.checks
        assert verdict.last_digest == built.linking.last_digest
        assert [data for _, data in verdict.containers] == datas
        previous, previous_file = built.linking.last_digest, f"archive-{number}.zip"


def test_the_same_inputs_build_the_same_bytes() -> None:
    """Archives are reproducible (a pending archive is rebuilt identically after a crash)."""
    one = build_archive(entries(b"a", b"b"), prev_digest="", prev_file="")
    two = build_archive(entries(b"a", b"b"), prev_digest="", prev_file="")
    assert one.data == two.data


def _rezip(data: bytes, change: dict[str, bytes | None], add: dict[str, bytes] | None = None) -> bytes:
    """The archive with entries replaced (bytes) or removed (None), and entries added."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(out, "w") as target:
        for info in source.infolist():
            if info.filename in change:
                replacement = change[info.filename]
                if replacement is not None:
                    target.writestr(info, replacement)
                continue
            target.writestr(info, source.read(info))
        for name, content in (add or {}).items():
            target.writestr(name, content)
    return out.getvalue()


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_one_changed_byte_anywhere_in_an_archive_is_detected(data: st.DataObject) -> None:
    """Flipping any byte of the archive file fails verification (zip CRCs, linkinginfo, or the digest chain)."""
    built = build_archive(entries(b"container one", b"container two"), prev_digest="", prev_file="")
    at = data.draw(st.integers(0, len(built.data) - 1), label="at")
    mask = data.draw(st.integers(1, 255), label="mask")
    tampered = built.data[:at] + bytes([built.data[at] ^ mask]) + built.data[at + 1 :]
    verdict = verify_archive(tampered, None)
    assert not verdict.ok or [c for _, c in verdict.containers] == [b"container one", b"container two"]


def test_a_changed_container_is_named() -> None:
    """A container whose bytes changed (with a valid zip around it) fails the digest chain, naming it."""
    built = build_archive(entries(b"one", b"two"), prev_digest="", prev_file="")
    verdict = verify_archive(_rezip(built.data, {"c2.asice": b"twO"}), None)
    assert verdict.code == archive.DIGEST_MISMATCH and "c2.asice" in verdict.checks[-1].detail


def test_a_missing_container_is_refused() -> None:
    """A container removed from the archive: the names in the zip and in linkinginfo differ."""
    built = build_archive(entries(b"one", b"two"), prev_digest="", prev_file="")
    verdict = verify_archive(_rezip(built.data, {"c1.asice": None}), None)
    assert verdict.code == archive.FILE_NAMES_DIFFER and "c1.asice" in verdict.checks[-1].detail


def test_a_missing_linkinginfo_is_refused() -> None:
    """An archive without linkinginfo is refused."""
    built = build_archive(entries(b"one"), prev_digest="", prev_file="")
    assert verify_archive(_rezip(built.data, {"linkinginfo": None}), None).code == archive.NO_LINKINGINFO


def test_an_extra_entry_is_refused_in_strict_mode_and_ignored_as_xroad_does() -> None:
    """An entry nothing covers is refused by default; X-Road-compatible mode ignores it (its verdict)."""
    built = build_archive(entries(b"one"), prev_digest="", prev_file="")
    extra = _rezip(built.data, {}, {"readme.txt": b"trust me"})
    assert verify_archive(extra, None).code == archive.UNEXPECTED_ENTRY
    assert verify_archive(extra, None, strict=False).ok


def test_an_extra_unlisted_container_is_refused() -> None:
    """A container added to the zip but not to linkinginfo is refused in either mode."""
    built = build_archive(entries(b"one"), prev_digest="", prev_file="")
    extra = _rezip(built.data, {}, {"c9.asice": b"forged"})
    for strict in (True, False):
        assert verify_archive(extra, None, strict=strict).code == archive.FILE_NAMES_DIFFER


@pytest.mark.parametrize("name", ["../evil.asice", "/etc/evil.asice", "a/../../evil.asice", "C:evil.asice", "a\\..\\evil.asice"])
def test_path_traversal_entry_names_are_refused(name: str) -> None:
    """An archive holding an entry whose name could escape an extraction folder is not read at all."""
    built = build_archive(entries(b"one"), prev_digest="", prev_file="")
    verdict = verify_archive(_rezip(built.data, {}, {name: b"x"}), None)
    assert verdict.code == archive.NOT_A_ZIP and "unsafe" in verdict.checks[-1].detail


def test_a_zip_bomb_is_refused() -> None:
    """A small archive that inflates past the limits is refused before it is inflated in full."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as zipped:
        zipped.writestr("bomb.asice", b"\0" * (20 * 1024 * 1024))
        zipped.writestr("linkinginfo", b"- - SHA-512\n")
    assert len(out.getvalue()) < 100 * 1024
    limits = ZipLimits(max_entry_bytes=1024 * 1024, max_total_bytes=2 * 1024 * 1024)
    assert verify_archive(out.getvalue(), None, limits=limits).code == archive.TOO_LARGE


def test_garbage_is_not_a_zip() -> None:
    """Bytes that are not a zip are refused as such."""
    assert verify_archive(b"PK\x03\x04 not really", None).code == archive.NOT_A_ZIP


def test_symbolic_link_entries_are_refused() -> None:
    """A zip entry marked as a symbolic link is refused."""
    built = build_archive(entries(b"one"), prev_digest="", prev_file="")
    info = zipfile.ZipInfo("link.asice")
    info.create_system = 3
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    out = io.BytesIO(built.data)
    with zipfile.ZipFile(out, "a") as zipped:
        zipped.writestr(info, b"/etc/passwd")
    assert verify_archive(out.getvalue(), None).code == archive.NOT_A_ZIP


@pytest.mark.parametrize(
    "text",
    [b"", b"- -\n", b"- - MD5\n", b"- - SHA-512\nonly-one-word\n", b"- - SHA-512\na b c\n", b"\xff\xfe", b"- - SHA-512\n\nab c.asice\n"],
    ids=["empty", "short-header", "md5", "one-word", "three-words", "not-utf8", "blank-line"],
)
def test_malformed_linkinginfo_is_refused(text: bytes) -> None:
    """A linkinginfo not in X-Road's format is refused (LinkingInfoError), never a crash."""
    with pytest.raises(LinkingInfoError):
        parse_linkinginfo(text)


def test_linkinginfo_writes_dashes_for_a_first_archive() -> None:
    """A first archive's header is '- - SHA-512', each line '<digest> <name>', each ending in a newline."""
    info = LinkingInfo("", "", digests.SHA512, (archive.LinkingEntry("ab", "x.asice"),))
    assert info.to_bytes() == b"- - SHA-512\nab x.asice\n"
    assert parse_linkinginfo(b"- - SHA-512\r\nab x.asice\r\n\r\n") == info


_WORD = st.text(st.characters(codec="utf-8", exclude_categories=("Z", "C")), min_size=1, max_size=20)


@settings(max_examples=60, deadline=None)
@given(st.one_of(st.just(""), _WORD), st.one_of(st.just(""), _WORD), st.lists(st.tuples(_WORD, _WORD), max_size=5),
       st.sampled_from(digests.ALL))
def test_linkinginfo_round_trips(prev: str, prev_file: str, lines: list[tuple[str, str]], algorithm: digests.DigestAlgorithm) -> None:
    """parse_linkinginfo(info.to_bytes()) == info for any words without white space (and '-' means blank)."""
    if prev == "-" or prev_file == "-":
        return
    info = LinkingInfo(prev, prev_file, algorithm, tuple(archive.LinkingEntry(d, n) for d, n in lines))
    assert parse_linkinginfo(info.to_bytes()) == info
