"""The published configuration's generations (a fedbus extension): what the registry keeps, through its API's
``getConfigurationGenerations`` and on the registry console's Global configuration page."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import pytest

from central_registry.management.roles import Role
from central_registry.service import RegistryPaths
from tests.central_registry.console.data import SCRIPT, build_registry
from tests.central_registry.console.harness import RegistryConsoleSite

OLDER, NEWER = "20261207101500000000", "20261207103000123456"
GENERATIONS = "/api/v1/configuration-sources/INTERNAL/generations"


def sha512(data: bytes) -> str:
    """Base64 SHA-512, as a signed directory lists a part's hash."""
    return base64.b64encode(hashlib.sha512(data).digest()).decode("ascii")


@pytest.fixture
def console(tmp_path: Path) -> RegistryConsoleSite:
    """The console over a registry with two kept generations (the newer with a monitoring part) and a stray
    folder that is no generation."""
    root = build_registry(tmp_path / "registry")
    published = RegistryPaths(root).published
    for generation, names in ((OLDER, ("private-params.xml", "shared-params.xml")),
                              (NEWER, ("private-params.xml", "shared-params.xml", "monitoring-params.xml"))):
        folder = published / "V3" / generation
        folder.mkdir(parents=True)
        for name in names:
            (folder / name).write_bytes(f"<{name} generation='{generation}'/>{SCRIPT}".encode())
    (published / "V3" / "not-a-generation").mkdir()
    return RegistryConsoleSite(root)


def _part(generation: str, name: str) -> bytes:
    return f"<{name} generation='{generation}'/>{SCRIPT}".encode()


def test_the_api_lists_every_kept_generation_newest_first(console: RegistryConsoleSite) -> None:
    """Each generation with its time, whether it is the newest, and each part with its SHA-512; EXTERNAL is 404."""
    key = console.api_key(Role.OBSERVER)
    found = console.request("GET", GENERATIONS, key=key, check=False)
    assert found.status == 200, found.body
    generations = found.json()
    assert [(g["generation"], g["newest"], g["version"]) for g in generations] == [(NEWER, True, 3), (OLDER, False, 3)]
    assert generations[0]["published_at"].startswith("2026-12-07T10:30:00.123")
    newest = {p["content_identifier"]: p for p in generations[0]["parts"]}
    assert set(newest) == {"PRIVATE-PARAMETERS", "SHARED-PARAMETERS", "MONITORING"}
    assert newest["MONITORING"]["optional"] and not newest["SHARED-PARAMETERS"]["optional"]
    assert newest["SHARED-PARAMETERS"]["hash"] == sha512(_part(NEWER, "shared-params.xml"))
    assert newest["SHARED-PARAMETERS"]["hash_algorithm"] == "SHA-512"
    assert [p["file_name"] for p in generations[1]["parts"]] == ["private-params.xml", "shared-params.xml"]
    external = console.request("GET", GENERATIONS.replace("INTERNAL", "EXTERNAL"), key=key, check=False)
    assert (external.status, external.json()["error"]["code"]) == (404, "configuration_source_not_found")
    assert console.request("GET", GENERATIONS, check=False).status == 401


def test_the_configuration_page_shows_the_kept_generations(console: RegistryConsoleSite) -> None:
    """Both generations listed with each part's hash, the newest marked as the signed directory's."""
    page = console.get("/console/configuration", console.log_in("observer")).body.decode("utf-8")
    generations = page[page.index('id="h-generations"'):]
    assert generations.index(NEWER) < generations.index(OLDER)
    assert "newest (signed directory)" in generations and "kept" in generations
    assert sha512(_part(OLDER, "private-params.xml")) in generations
    assert sha512(_part(NEWER, "monitoring-params.xml")) in generations
    assert SCRIPT not in page


def test_nothing_published_says_so(tmp_path: Path) -> None:
    """Before the first publication the API lists no generation and the page says nothing is published."""
    console = RegistryConsoleSite(build_registry(tmp_path / "registry"))
    assert console.request("GET", GENERATIONS, key=console.api_key(Role.OBSERVER), check=False).json() == []
    page = console.get("/console/configuration", console.log_in("observer")).body.decode("utf-8")
    assert "Generations kept: nothing published yet" in page
