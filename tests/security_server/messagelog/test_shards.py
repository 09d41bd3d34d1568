"""Message-log shard files: shard 0 is today's ``messagelog.db``, shard n is ``messagelog-<n>.db``."""

from __future__ import annotations

from pathlib import Path

import pytest

from security_server.messagelog.shards import shard_path, shard_paths


def test_shard_zero_is_the_single_process_log(tmp_path: Path) -> None:
    """Shard 0 keeps the existing file name, so a log written before workers existed is shard 0."""
    assert shard_path(tmp_path, 0) == tmp_path / "messagelog.db"
    assert shard_path(tmp_path, 3) == tmp_path / "messagelog-3.db"
    with pytest.raises(ValueError):
        shard_path(tmp_path, -1)


def test_shard_paths_lists_present_shards_in_index_order(tmp_path: Path) -> None:
    """Only shard files are found (not -wal/-shm or other names), ordered by index, shard 0 first."""
    for name in ("messagelog-10.db", "messagelog.db", "messagelog-2.db", "messagelog-2.db-wal", "messagelog-0.db", "x.db"):
        (tmp_path / name).write_bytes(b"")
    assert [index for index, _ in shard_paths(tmp_path)] == [0, 2, 10]
    assert shard_paths(tmp_path / "absent") == []
