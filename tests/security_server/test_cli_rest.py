"""`fedbus server service add --kind rest --description` and `acl grant/revoke --endpoint` (issue 6)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from security_server.cli import server

PROVIDER = "SUBSYSTEM:EE/GOV/70000310/registry"
CONSUMER = "SUBSYSTEM:EE/COM/12345/crm"
PETS = "SERVICE:EE/GOV/70000310/registry/pets"
OPENAPI = {"openapi": "3.0.0", "paths": {"/pets": {"get": {}}, "/pets/{id}": {"get": {}, "delete": {}}}}


def _run(args: list[str], *, ok: bool = True) -> Result:
    result = CliRunner().invoke(server, args, catch_exceptions=False)
    if ok:
        assert result.exit_code == 0, result.output
    return result


def _json(args: list[str]) -> Any:
    return json.loads(_run([*args, "--json"]).stdout)


@pytest.fixture
def d(tmp_path: Path, xroad_vectors: Path) -> list[str]:
    """An initialised server directory hosting PROVIDER, as --dir arguments."""
    directory = ["--dir", str(tmp_path / "ss1")]
    anchor = str(xroad_vectors / "configuration-anchor1.xml")
    _run(["init", *directory, "--anchor", anchor, "--owner", "MEMBER:EE/GOV/70000310", "--server-code", "ss1"])
    _run(["client", "add", *directory, PROVIDER])
    return directory


def test_rest_service_with_openapi_description_lists_its_endpoints(d: list[str], tmp_path: Path) -> None:
    """service add --kind rest --description FILE stores the OpenAPI description; its operations are endpoints."""
    description = tmp_path / "pets.json"
    description.write_text(json.dumps(OPENAPI))
    added = _json(["service", "add", *d, PETS, "--url", "http://127.0.0.1:9000/api/", "--kind", "rest",
                   "--description", str(description)])
    assert added["service_type"] == "OPENAPI"
    assert added["endpoints"] == ["GET /pets", "GET /pets/*", "DELETE /pets/*"]


def test_endpoint_rights_are_granted_listed_and_revoked(d: list[str]) -> None:
    """acl grant --endpoint 'GET /pets/*' adds an endpoint right; revoke with the same endpoint removes only it."""
    _run(["service", "add", *d, PETS, "--url", "http://127.0.0.1:9000/api/", "--kind", "rest"])
    granted = _run(["acl", "grant", *d, PETS, CONSUMER, "--endpoint", "get /pets/*"])
    assert "endpoint GET /pets/*" in granted.output
    _run(["acl", "grant", *d, PETS, CONSUMER])
    listed = _json(["acl", "list", *d])
    assert sorted(str(r["endpoint"]) for r in listed) == ["GET /pets/*", "None"]
    _run(["acl", "revoke", *d, PETS, CONSUMER, "--endpoint", "GET /pets/*"])
    assert [r["endpoint"] for r in _json(["acl", "list", *d])] == [None]


@pytest.mark.parametrize("endpoint", ["GET", "FETCH /x", "GET /a/../b", "GET /a%2Fb"])
def test_malformed_endpoints_are_refused(d: list[str], endpoint: str) -> None:
    """An endpoint that is not 'METHOD PATH' with a decoded path without dot segments is refused, exit 1."""
    _run(["service", "add", *d, PETS, "--url", "http://127.0.0.1:9000/api/", "--kind", "rest"])
    result = _run(["acl", "grant", *d, PETS, CONSUMER, "--endpoint", endpoint], ok=False)
    assert result.exit_code == 1
    assert _json(["acl", "list", *d]) == []


def test_unusable_description_is_refused(d: list[str], tmp_path: Path) -> None:
    """A description that is not OpenAPI 3 JSON for a REST service is refused and nothing is added."""
    description = tmp_path / "pets.yaml"
    description.write_text("openapi: 3.0.0\n")
    result = _run(["service", "add", *d, PETS, "--url", "http://127.0.0.1:9000/", "--kind", "rest",
                   "--description", str(description)], ok=False)
    assert result.exit_code == 1
    assert _json(["service", "list", *d]) == []
