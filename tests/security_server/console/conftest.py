"""Fixtures of the console's tests: the server directory they serve."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.security_server.console.data import Built, build_server


@pytest.fixture
def built(tmp_path: Path) -> Built:
    """A server directory with users of each role, a message log with timestamped exchanges, operational records
    and an initialised server with a certified signing key (:func:`~tests.security_server.console.data.build_server`)."""
    return build_server(tmp_path / "server")
