"""The atomic file write: whole or not at all, synced, with exactly the mode asked for."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import pytest

from security_server.edge.atomic_file import PRIVATE_MODE, write_atomically


def mode_of(path: Path) -> int:
    """The permission bits of ``path``."""
    return stat.S_IMODE(path.stat().st_mode)


def test_writes_a_new_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    """A new file gets the bytes; nothing else is left in the folder."""
    target = tmp_path / "index.json"
    write_atomically(target, b"{}")
    assert target.read_bytes() == b"{}"
    assert [p.name for p in tmp_path.iterdir()] == ["index.json"]


def test_replaces_an_existing_file_whole(tmp_path: Path) -> None:
    """A shorter new content replaces a longer old one entirely (no tail of the old file survives)."""
    target = tmp_path / "serial.json"
    target.write_bytes(b"x" * 1000)
    write_atomically(target, b"short")
    assert target.read_bytes() == b"short"


@pytest.mark.parametrize("mode", [0o600, 0o644, 0o640])
def test_the_mode_is_exactly_the_one_asked_for(tmp_path: Path, mode: int) -> None:
    """The file has exactly ``mode``, whatever the umask, and a private file never existed wider."""
    old_umask = os.umask(0o077)
    try:
        target = tmp_path / "key.pem"
        write_atomically(target, b"secret", mode)
    finally:
        os.umask(old_umask)
    assert mode_of(target) == mode


def test_replacing_narrows_a_wider_old_file(tmp_path: Path) -> None:
    """Rewriting a 0644 file as private leaves it 0600 (the new inode carries the new mode)."""
    target = tmp_path / "key.p8"
    target.write_bytes(b"old")
    target.chmod(0o644)
    write_atomically(target, b"new", PRIVATE_MODE)
    assert mode_of(target) == PRIVATE_MODE


class Boom(Exception):
    """A failure injected in the middle of a write."""


def test_a_failure_mid_write_leaves_the_old_file_and_no_temporary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """If syncing the new bytes fails (a full disk, a crash), the old file is untouched and the temporary is gone."""
    target = tmp_path / "globalconf.bundle"
    target.write_bytes(b"old configuration")

    def failing_fsync(fd: int) -> None:
        raise Boom("disk full")

    monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(Boom):
        write_atomically(target, b"new configuration that never lands")
    assert target.read_bytes() == b"old configuration"
    assert [p.name for p in tmp_path.iterdir()] == ["globalconf.bundle"]


def test_a_failed_rename_leaves_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A failure at the rename (the last step before the new file counts) keeps the old file and cleans up."""
    target = tmp_path / "anchor.xml"
    target.write_bytes(b"old")

    def failing_replace(source: Any, destination: Any) -> None:
        raise Boom("rename failed")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(Boom):
        write_atomically(target, b"new")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["anchor.xml"]


def test_the_file_and_then_its_folder_are_synced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """fsync runs on the temporary file before the rename and on the folder after it."""
    events: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace

    def recording_fsync(fd: int) -> None:
        events.append("fsync folder" if stat.S_ISDIR(os.fstat(fd).st_mode) else "fsync file")
        real_fsync(fd)

    def recording_replace(source: Any, destination: Any) -> None:
        events.append("replace")
        real_replace(source, destination)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    monkeypatch.setattr(os, "replace", recording_replace)
    write_atomically(tmp_path / "a.der", b"der")
    assert events == ["fsync file", "replace", "fsync folder"]


def test_temporaries_follow_the_documented_pattern(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The temporary is ``.<name>.<random>.tmp`` in the same folder (what the archiver sweeps as ``.mlog-*.tmp``)."""
    seen: list[Path] = []

    def recording_replace(source: Any, destination: Any) -> None:
        seen.append(Path(source))
        raise Boom("stop before the rename")

    monkeypatch.setattr(os, "replace", recording_replace)
    with pytest.raises(Boom):
        write_atomically(tmp_path / "mlog-1-2-abc.zip", b"zip")
    assert seen[0].parent == tmp_path
    assert seen[0].match(".mlog-1-2-abc.zip.*.tmp")
