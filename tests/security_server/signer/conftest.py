"""Fixtures for the signer tests: one SoftHSM2 configuration per test session."""

from __future__ import annotations

import pytest

from tests.security_server.signer.softhsm import SoftHsm, shared_softhsm


@pytest.fixture(scope="session")
def softhsm() -> SoftHsm:
    """SoftHSM2 with its token directory in a temporary folder (SOFTHSM2_CONF set for the process)."""
    return shared_softhsm()
