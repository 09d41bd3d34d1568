"""The registry names the central monitoring client: ``fedbus registry set monitoring_client`` and the optional
MONITORING part of the published configuration (UG-CS §14)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from central_registry.cli import registry
from security_server.core.globalconf import (
    MONITORING_PARAMETERS,
    DirectoryEntry,
    parse_monitoring_parameters,
    parse_signed_directory,
)
from security_server.core.multipart import parse_multipart
from security_server.core.identifiers import ClientId


def run(*args: str) -> Result:
    """Invoke `fedbus registry ...` as a user would."""
    return CliRunner().invoke(registry, list(args), catch_exceptions=False)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """An initialised registry of instance EE."""
    directory = tmp_path / "registry"
    assert run("init", "--registry-dir", str(directory), "--instance", "EE", "--json").exit_code == 0
    return directory


def published_parts(root: Path) -> dict[str, bytes]:
    """The published generation's files by content identifier, as the signed directory lists them."""
    body = (root / "published" / "internalconf").read_bytes()
    boundary = body.split(b"\r\n", 1)[0][2:].decode()
    signed = parse_signed_directory(f'multipart/related; boundary="{boundary}"', body)
    inner = signed.directory_content_type.split("boundary=", 1)[1].strip('"')
    parts = parse_multipart(signed.signed_data, inner)[1:]
    entries = [DirectoryEntry.from_part(part) for part in parts]
    return {
        str(e.content_identifier): (root / "published" / e.content_location.lstrip("/")).read_bytes() for e in entries
    }


def test_the_monitoring_part_is_published_once_a_client_is_named(root: Path) -> None:
    """No MONITORING part by default; ``set monitoring_client`` publishes it; an empty value removes it again."""
    d = ("--registry-dir", str(root))
    assert run("publish", *d).exit_code == 0
    assert MONITORING_PARAMETERS not in published_parts(root)
    assert run("set", *d, "monitoring_client", "SUBSYSTEM:EE/GOV/70000310/monitoring").exit_code == 0
    assert run("publish", *d).exit_code == 0
    monitoring = published_parts(root)[MONITORING_PARAMETERS]
    assert parse_monitoring_parameters(monitoring) == ClientId("EE", "GOV", "70000310", "monitoring")
    assert run("set", *d, "monitoring_client", "").exit_code == 0
    assert run("publish", *d).exit_code == 0
    assert MONITORING_PARAMETERS not in published_parts(root)


@pytest.mark.parametrize(("value", "message"), [
    ("SERVICE:EE/GOV/1/sub/code", "member or subsystem"),
    ("nonsense", "member or subsystem"),
    ("MEMBER:LV/GOV/1", "not of instance EE"),
])
def test_a_bad_monitoring_client_is_refused(root: Path, value: str, message: str) -> None:
    """Only a member or subsystem of the registry's own instance can be the monitoring client."""
    result = CliRunner().invoke(registry, ["set", "--registry-dir", str(root), "monitoring_client", value])
    assert result.exit_code == 1 and message in result.output, result.output
