"""Shared test fixtures: where X-Road's reference vectors live."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

# CI shares its two cores with other work: a property whose inputs take long to generate there is slow, not wrong.
settings.register_profile("fedbus", suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("fedbus")

# A throwaway PostgreSQL server per session and the per-engine ``backend`` fixture of the store tests.
pytest_plugins = ("tests.postgres", "tests.security_server.store.engines")

REPO_ROOT = Path(__file__).resolve().parents[1]
XROAD_VECTORS = REPO_ROOT.parent / "shared" / "vectors" / "xroad"


@pytest.fixture(scope="session")
def xroad_vectors() -> Path:
    """The folder of X-Road's own test files (shared/vectors/xroad beside the checkout)."""
    assert XROAD_VECTORS.is_dir(), f"X-Road vectors not found at {XROAD_VECTORS}"
    return XROAD_VECTORS


@pytest.fixture(autouse=True)
def _work_in_a_temporary_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run every test in its own empty working directory, so nothing a test writes lands in the checkout
    (trial's ``TestCase.mktemp`` writes relative to the working directory)."""
    monkeypatch.chdir(tmp_path)
