"""``fedbus registry backup create|list|restore``: the registry's backups from the CLI."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from central_registry.admin import initialization
from central_registry.cli import registry
from central_registry.store import RegistryStore
from security_server.core.identifiers import ClientId
from tests.management_api import START


def test_a_backup_is_made_listed_and_restored(tmp_path: Path) -> None:
    """create prints the file, list shows it, restore brings back the database as it was."""
    root = tmp_path / "registry"
    initialization.initialise(root, "EE", "cs.example.org", "1234", START)
    runner = CliRunner()
    made = runner.invoke(registry, ["backup", "create", "--registry-dir", str(root), "--json"], catch_exceptions=False)
    assert made.exit_code == 0, made.output
    filename = json.loads(made.output)["filename"]
    listed = runner.invoke(registry, ["backup", "list", "--registry-dir", str(root), "--json"], catch_exceptions=False)
    assert [b["filename"] for b in json.loads(listed.output)] == [filename]
    store = RegistryStore(root / "registry.db")
    try:
        store.db.execute("INSERT INTO member_classes (code, description) VALUES ('GOV', 'Government')")
        store.add_member(ClientId("EE", "GOV", "1"), "One")
    finally:
        store.close()
    restored = runner.invoke(registry, ["backup", "restore", filename, "--registry-dir", str(root)],
                             catch_exceptions=False)
    assert restored.exit_code == 0 and "restart" in restored.output
    store = RegistryStore(root / "registry.db")
    try:
        assert store.members() == []
    finally:
        store.close()


def test_an_unknown_backup_is_a_clear_error(tmp_path: Path) -> None:
    """Restoring a name that is no backup exits 1 with the reason."""
    root = tmp_path / "registry"
    initialization.initialise(root, "EE", "cs.example.org", "1234", START)
    result = CliRunner().invoke(registry, ["backup", "restore", "../registry.db", "--registry-dir", str(root)])
    assert result.exit_code == 1 and "no backup" in result.output
