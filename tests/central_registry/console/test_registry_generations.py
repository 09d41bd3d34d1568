"""The published configuration's generations (a fedbus extension): what the registry keeps, through its API's
``getConfigurationGenerations`` and on the registry console's Global configuration page."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from central_registry.bootstrap import init_registry
from central_registry.management.roles import Role
from central_registry.publisher import KEEP_GENERATIONS, Publisher, SelfSignedKey
from central_registry.service import RegistryPaths
from central_registry.store import RegistryStore
from security_server.core.globalconf import parse_configuration_anchor
from security_server.core.globalconf.algorithms import SHA512_URI
from security_server.core.globalconf.directory import parse_signed_directory, verify_signed_directory
from tests.central_registry.console.data import SCRIPT, build_registry
from tests.central_registry.console.harness import RegistryConsoleSite

OLDER, NEWER = "20261207101500000000", "20261207103000123456"
GENERATIONS = "/api/v1/configuration-sources/INTERNAL/generations"


def sha512(data: bytes) -> str:
    """Base64 SHA-512, as a signed directory lists a part's hash."""
    return base64.b64encode(hashlib.sha512(data).digest()).decode("ascii")


def _part(generation: str, name: str) -> bytes:
    """A part file's made-up content (with markup that must be escaped)."""
    return f"<{name} generation='{generation}'/>{SCRIPT}".encode()


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
            (folder / name).write_bytes(_part(generation, name))
    (published / "V3" / "not-a-generation").mkdir()
    return RegistryConsoleSite(root)


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


def test_a_real_publishers_generations_are_listed_with_their_directory_hashes(tmp_path: Path) -> None:
    """After more publications than the publisher keeps: the kept ones are listed, newest first, each part's hash
    the one its signed directory listed (the SHA-512 of the published file)."""
    start = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)
    paths = init_registry(tmp_path / "registry", "EE", start, public_url="http://127.0.0.1:8090", ca_key_size=2048)
    store = RegistryStore(paths.database)
    try:
        tls = SelfSignedKey.load(paths.tls)
        publisher = Publisher(store, paths.published, SelfSignedKey.load(paths.conf_signing),
                              public_url="http://127.0.0.1:8090",
                              management_url="https://127.0.0.1:8443/managementservice", management_cert_der=tls.cert_der)
        publications = [publisher.publish(start + timedelta(minutes=i)) for i in range(KEEP_GENERATIONS + 1)]
        anchor_xml = publisher.anchor(start)
    finally:
        store.close()
    console = RegistryConsoleSite(paths.root)
    listed = console.request("GET", GENERATIONS, key=console.api_key(Role.OBSERVER), check=False).json()
    kept = publications[::-1][:KEEP_GENERATIONS]
    assert [g["generation"] for g in listed] == [p.generation for p in kept]
    anchor = parse_configuration_anchor(anchor_xml)
    for generation, publication in zip(listed, kept):
        directory = verify_signed_directory(
            parse_signed_directory(publication.content_type, publication.directory), anchor, start)
        hashes = {p["file_name"]: p["hash"] for p in generation["parts"]}
        assert hashes == {e.file_name: base64.b64encode(e.digest).decode("ascii") for e in directory.entries}
        assert {e.hash_algorithm_id for e in directory.entries} == {SHA512_URI}
