"""Replace a file's contents all at once, so a crash leaves either the old file or the whole new one.

The recipe (POSIX; as SQLite and git do it): write a temporary file in the same folder (a rename is atomic
only within one file system), ``fsync`` it, ``os.replace`` it over the target, then ``fsync`` the folder so
the rename itself survives a power cut. Without the two syncs a crash can leave an empty or half-written file
under the final name. The temporary file is named ``.<name>.<random>.tmp`` (unique per call, so threads and
processes writing beside each other never share one) and is removed when anything fails before the rename;
a temporary left by a killed process is recognisable by that pattern (the archiver sweeps its own).

Blocking: call it from a thread (``deferToThread``) unless the file is small and written rarely.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

PUBLIC_MODE = 0o644
"""Certificates, published configuration, anchors: anyone on the host may read them."""

PRIVATE_MODE = 0o600
"""Keys, message-log archives, the stored configuration: the service's user only."""


def write_atomically(path: Path, data: bytes, mode: int = PUBLIC_MODE) -> None:
    """Replace ``path`` with ``data``, whole or not at all, with exactly ``mode`` (the umask does not narrow it).

    The file never exists under its final name with a wider mode than ``mode``, nor half-written.
    """
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")  # created 0600
    temporary = Path(name)
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), mode)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    _sync_folder(path.parent)


def _sync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable (the folder's entry list is data too)."""
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
