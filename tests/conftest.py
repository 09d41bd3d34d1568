"""Shared test fixtures: where X-Road's reference vectors live."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
XROAD_VECTORS = REPO_ROOT.parent / "shared" / "vectors" / "xroad"


@pytest.fixture(scope="session")
def xroad_vectors() -> Path:
    """The folder of X-Road's own test files (shared/vectors/xroad beside the checkout)."""
    assert XROAD_VECTORS.is_dir(), f"X-Road vectors not found at {XROAD_VECTORS}"
    return XROAD_VECTORS
