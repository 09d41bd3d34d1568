"""``fedbus server user`` and ``fedbus server api-key``: credentials made from the CLI work in the API."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from security_server.cli import server
from security_server.management.credentials import DB_NAME
from tests.security_server.management.harness import Api


def _run(args: list[str], stdin: str | None = None, ok: bool = True) -> str:
    result = CliRunner().invoke(server, args, input=stdin, catch_exceptions=False)
    if ok:
        assert result.exit_code == 0, result.output
    else:
        assert result.exit_code != 0
    return result.output


def test_a_user_added_from_the_cli_logs_in(tmp_path: Path) -> None:
    """``user add --password-stdin`` makes a user whose password works at POST /login; it is stored hashed."""
    directory = tmp_path / "server"
    _run(["user", "add", "operator", "--dir", str(directory), "--role", "XROAD_SYSTEM_ADMINISTRATOR",
          "--password-stdin"], stdin="s3cret-pass\n")
    assert b"s3cret-pass" not in (directory / DB_NAME).read_bytes()
    api = Api(directory)
    answer = api.request("POST", "/login", json_body={"username": "operator", "password": "s3cret-pass"})
    assert answer.status == 200
    listed = json.loads(_run(["user", "list", "--dir", str(directory), "--json"]))
    assert {"username": "operator", "roles": ["XROAD_SYSTEM_ADMINISTRATOR"]} in listed


def test_the_prompt_asks_twice_and_never_echoes(tmp_path: Path) -> None:
    """Without --password-stdin the password is prompted for twice and not printed."""
    directory = tmp_path / "server"
    output = _run(["user", "add", "operator", "--dir", str(directory), "--role", "xroad_securityserver_observer"],
                  stdin="pw-12345\npw-12345\n")
    assert "pw-12345" not in output and "Added user operator" in output


def test_a_password_is_not_an_option(tmp_path: Path) -> None:
    """There is no --password option: a password never goes on the command line."""
    _run(["user", "add", "operator", "--dir", str(tmp_path), "--role", "XROAD_SYSTEM_ADMINISTRATOR",
          "--password", "x"], ok=False)


def test_an_api_key_from_the_cli_works_until_revoked(tmp_path: Path) -> None:
    """``api-key create`` prints a key the API accepts; ``api-key revoke`` ends it."""
    directory = tmp_path / "server"
    made = json.loads(_run(["api-key", "create", "--dir", str(directory), "--role", "XROAD_SECURITYSERVER_OBSERVER",
                            "--json"]))
    assert made["roles"] == ["XROAD_SECURITYSERVER_OBSERVER"]
    api = Api(directory)
    assert api.request("GET", "/api/v1/initialization/status", key=made["key"]).status == 200
    listed = json.loads(_run(["api-key", "list", "--dir", str(directory), "--json"]))
    assert [k["id"] for k in listed] == [made["id"]] and "key" not in listed[0]
    _run(["api-key", "revoke", str(made["id"]), "--dir", str(directory)])
    assert api.request("GET", "/api/v1/initialization/status", key=made["key"]).status == 401


def test_revoking_an_unknown_key_fails(tmp_path: Path) -> None:
    """Revoking a key that does not exist exits non-zero with an error."""
    output = _run(["api-key", "revoke", "7", "--dir", str(tmp_path)], ok=False)
    assert "no API key 7" in output
