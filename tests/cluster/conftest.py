"""Fixtures of the cluster tests."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest


@pytest.fixture
def shared_database(request: pytest.FixtureRequest, postgres_url: str, tmp_path: Path) -> Iterator[None]:
    """A fresh PostgreSQL database and a temporary folder, set on the test case (``url``, ``tmp``)."""
    request.instance.url = postgres_url
    request.instance.tmp = tmp_path
    yield
