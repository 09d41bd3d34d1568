"""Tampering with a backup archive, for both roles' backup tests (tests/security_server/management,
tests/central_registry/management)."""

from __future__ import annotations

import io
import tarfile


def rewritten(archive: bytes, name: str, content: bytes) -> bytes:
    """The archive with member ``name``'s content replaced (its manifest left as it was)."""
    out = io.BytesIO()
    with tarfile.open(fileobj=io.BytesIO(archive)) as source, tarfile.open(fileobj=out, mode="w") as target:
        for info in source.getmembers():
            handle = source.extractfile(info)
            assert handle is not None
            data = content if info.name == name else handle.read()
            info.size = len(data)
            target.addfile(info, io.BytesIO(data))
    return out.getvalue()
