"""Fixtures of the registry API tests: an API over an empty directory, and one over an initialised registry."""

from __future__ import annotations

from pathlib import Path

import pytest

from central_registry.admin import initialization
from central_registry.management.roles import Role
from tests.central_registry.management.harness import START, RegistryApi

INSTANCE = "EE"


@pytest.fixture
def api(tmp_path: Path) -> RegistryApi:
    """The API over an empty registry directory, with user ``admin`` (system administrator)."""
    return RegistryApi(tmp_path / "registry")


@pytest.fixture
def registry(api: RegistryApi) -> RegistryApi:
    """The API over a registry initialised through the service layer (instance EE, no member class yet)."""
    initialization.initialise(api.root, INSTANCE, "cs.example.org", "1234", START)
    return api


@pytest.fixture
def officer(registry: RegistryApi) -> str:
    """An API key of a registration officer."""
    return registry.api_key(Role.REGISTRATION_OFFICER)


@pytest.fixture
def admin_key(api: RegistryApi) -> str:
    """An API key of a system administrator."""
    return api.api_key(Role.SYSTEM_ADMINISTRATOR)
