"""``fedbus registry``: a registry admin's session through click's CliRunner, with --json output parsed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from central_registry.cli import registry
from security_server.core.globalconf import parse_configuration_anchor, parse_signed_directory


def run(*args: str) -> Result:
    """Invoke `fedbus registry ...` as a user would."""
    return CliRunner().invoke(registry, list(args), catch_exceptions=False)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """An initialised registry (instance EE, small CA key for speed is not configurable here, so 3072)."""
    directory = tmp_path / "registry"
    result = run("init", "--registry-dir", str(directory), "--instance", "EE", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["public_url"] == "http://127.0.0.1:8090"
    return directory


def test_admin_session(root: Path, tmp_path: Path) -> None:
    """Members, subsystems, groups and settings change through the CLI; publish and anchor write real files."""
    d = ("--registry-dir", str(root))
    assert run("member", "add", *d, "MEMBER:EE/GOV/70000310", "--name", "Population Register").exit_code == 0
    assert run("subsystem", "add", *d, "SUBSYSTEM:EE/GOV/70000310/registry").exit_code == 0
    members = json.loads(run("member", "list", *d, "--json").output)
    assert members == [{"id": "MEMBER:EE/GOV/70000310", "name": "Population Register", "subsystems": ["registry"]}]
    assert run("group", "add", *d, "GLOBALGROUP:EE/partners", "--description", "Partners").exit_code == 0
    assert run("group", "add-member", *d, "GLOBALGROUP:EE/partners", "SUBSYSTEM:EE/GOV/70000310/registry").exit_code == 0
    assert json.loads(run("group", "list", *d, "--json").output)[0]["members"] == ["SUBSYSTEM:EE/GOV/70000310/registry"]
    assert run("set", *d, "auto_approve", "true").exit_code == 0
    approved = json.loads(run("ca", "approved", *d, "--json").output)
    assert approved[0]["name"] == "fedbus development CA"
    assert approved[0]["ocsp_url"] == "http://127.0.0.1:8090/ocsp"
    assert json.loads(run("tsa", "list", *d, "--json").output)[0]["url"] == "http://127.0.0.1:8090/tsa"
    assert json.loads(run("requests", "list", *d, "--json").output) == []
    assert json.loads(run("server", "list", *d, "--json").output) == []

    published = run("publish", *d)
    assert published.exit_code == 0, published.output
    directory_body = (root / "published" / "internalconf").read_bytes()
    boundary = directory_body.split(b"\r\n", 1)[0][2:].decode()
    signed = parse_signed_directory(f'multipart/related; boundary="{boundary}"', directory_body)
    assert signed is not None
    anchor_file = tmp_path / "anchor.xml"
    assert run("anchor", *d, "--out", str(anchor_file)).exit_code == 0
    anchor = parse_configuration_anchor(anchor_file.read_bytes())
    assert anchor.instance == "EE"
    assert anchor.sources[0].download_url == "http://127.0.0.1:8090/internalconf"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("member", "add", "MEMBER:EE/GOV/1", "--name", "Again"), "already exists"),
        (("member", "add", "MEMBER:FI/GOV/2", "--name", "Other instance"), "instance"),
        (("subsystem", "add", "SUBSYSTEM:EE/GOV/404/x"), "unknown member"),
        (("member", "remove", "MEMBER:EE/GOV/404"), "does not exist"),
        (("requests", "approve", "no-such-request"), "no request"),
        (("set", "ocsp_freshness_seconds", "5"), "must be an integer"),
    ],
)
def test_refusals_exit_1_with_a_clear_message(root: Path, args: tuple[str, ...], message: str) -> None:
    """Invalid changes exit with status 1 and say why; nothing is changed."""
    assert run("member", "add", "--registry-dir", str(root), "MEMBER:EE/GOV/1", "--name", "First").exit_code == 0
    result = run(*args[:2], "--registry-dir", str(root), *args[2:]) if args[0] in ("member", "subsystem", "requests") else run(
        args[0], "--registry-dir", str(root), *args[1:]
    )
    assert result.exit_code == 1, result.output
    assert message in result.output
    assert len(json.loads(run("member", "list", "--registry-dir", str(root), "--json").output)) == 1


@pytest.mark.parametrize("identifier", ["EE/GOV/1", "MEMBER:EE/GOV/1/sub", "MEMBER:EE/GOV/a%2Fb", "SUBSYSTEM:EE/GOV/1/s"])
def test_malformed_member_identifiers_are_usage_errors(root: Path, identifier: str) -> None:
    """A malformed or wrong-type identifier is a usage error (exit 2), never a different identifier."""
    result = run("member", "add", "--registry-dir", str(root), identifier, "--name", "X")
    assert result.exit_code == 2


def test_commands_need_an_initialised_registry(tmp_path: Path) -> None:
    """Commands on a folder without a registry exit 1 and say how to make one."""
    result = run("member", "list", "--registry-dir", str(tmp_path / "none"))
    assert result.exit_code == 1
    assert "fedbus registry init" in result.output


def test_init_twice_is_refused(root: Path) -> None:
    """A second init on the same folder is refused."""
    result = run("init", "--registry-dir", str(root), "--instance", "EE")
    assert result.exit_code == 1
    assert "already holds a registry" in result.output
