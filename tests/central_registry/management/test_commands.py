"""``fedbus registry user`` and ``api-key``: the registry API's credentials, with central-server roles."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from central_registry.cli import registry
from central_registry.management.roles import Role
from tests.central_registry.management.harness import RegistryApi


def test_a_key_made_by_the_cli_calls_the_api(tmp_path: Path) -> None:
    """``api-key create --role ...`` prints a key once; the API takes it with that role and lists it without it."""
    root = tmp_path / "registry"
    made = CliRunner().invoke(registry, ["api-key", "create", "--registry-dir", str(root),
                                         "--role", "XROAD_REGISTRATION_OFFICER", "--json"])
    assert made.exit_code == 0, made.output
    key = json.loads(made.output)["key"]
    api = RegistryApi(root)
    assert api.request("GET", "/api/v1/initialization/status", key=key, check=False).status == 200
    refused = api.request("GET", "/api/v1/member-classes", key=key, check=False)
    assert refused.status == 409 and refused.json()["error"]["code"] == "not_initialized"
    assert not api.paths.database.exists()
    listed = CliRunner().invoke(registry, ["api-key", "list", "--registry-dir", str(root), "--json"])
    assert key not in listed.output and json.loads(listed.output)[0]["roles"] == [Role.REGISTRATION_OFFICER.value]


def test_security_server_roles_are_refused(tmp_path: Path) -> None:
    """A role of the security server only (service administrator) is not a choice of the registry's CLI."""
    answer = CliRunner().invoke(registry, ["user", "add", "--registry-dir", str(tmp_path), "ann1",
                                           "--role", "XROAD_SERVICE_ADMINISTRATOR", "--password-stdin"], input="pw12\n")
    assert answer.exit_code == 2 and "XROAD_SERVICE_ADMINISTRATOR" in answer.output


def test_a_user_is_added_from_stdin(tmp_path: Path) -> None:
    """``user add --password-stdin`` adds a user whose password the store then accepts."""
    answer = CliRunner().invoke(registry, ["user", "add", "--registry-dir", str(tmp_path), "officer",
                                           "--role", "XROAD_SECURITY_OFFICER", "--password-stdin"], input="pw1234\n")
    assert answer.exit_code == 0 and "Added user officer (XROAD_SECURITY_OFFICER)" in answer.output
    api = RegistryApi(tmp_path)
    with api.credentials() as store:
        assert store.authenticate("officer", "pw1234") == frozenset({Role.SECURITY_OFFICER.value})
