"""Where the shards of one security server's message log live: one file, one hash chain, per worker process.

A server run with ``[server] workers = N`` has N message-log writers, one per worker process; each appends to its
own shard and links its own hash chain, so no two processes ever extend the same chain. Shard 0 is the file a
single-process server has always written (``messagelog.db``), so an existing log stays readable as it is; shard
``n >= 1`` is ``messagelog-<n>.db`` beside it. ``fedbus audit`` reads every shard found as one log and verifies
each chain on its own.
"""

from __future__ import annotations

import re
from pathlib import Path

LOG_NAME = "messagelog.db"
"""Shard 0: the message log of a server run with one worker."""

_SHARD_NAME = re.compile(r"messagelog-([1-9][0-9]{0,5})\.db")


def shard_path(directory: Path, index: int) -> Path:
    """The file of shard ``index`` of the message log in the server directory ``directory``."""
    if index < 0:
        raise ValueError("a shard index is not negative")
    return directory / (LOG_NAME if index == 0 else f"messagelog-{index}.db")


def shard_paths(directory: Path) -> list[tuple[int, Path]]:
    """The shards present in ``directory`` with their indexes, shard 0 first (an absent shard 0 is skipped)."""
    found: list[tuple[int, Path]] = []
    if (directory / LOG_NAME).is_file():
        found.append((0, directory / LOG_NAME))
    if directory.is_dir():
        for path in directory.iterdir():
            match = _SHARD_NAME.fullmatch(path.name)
            if match is not None and path.is_file():
                found.append((int(match.group(1)), path))
    return sorted(found)
