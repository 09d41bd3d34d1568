"""``fedbus registry backup create|list|restore``: the registry's backups from the CLI.

The same service functions as the API's ``/backups`` (:mod:`central_registry.admin.backups`). ``restore`` is for a
stopped registry or one whose keys changed: a running registry reads the restored database at once but keeps the
keys it started with until it is restarted (docs/management-api.md, "Restoring a running registry").
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import click

from central_registry.admin import backups
from security_server.configfile import load_config
from security_server.core.config import DatabaseConfig
from security_server.edge.cli_output import emit, format_table
from security_server.management.credential_commands import Decorator


def _database_url() -> str | None:
    """``[database] url`` of the registry's configuration (conf.d/local.ini): a PostgreSQL store is refused."""
    return DatabaseConfig.from_config(load_config("central-registry")).url


def register(registry: click.Group, dir_option: Decorator, json_option: Decorator) -> None:
    """Add the ``backup`` group to ``fedbus registry`` (with its ``--registry-dir`` and ``--json``)."""

    @registry.group("backup")
    def backup() -> None:
        """Backups of the registry's database, keys and API credentials (in <registry dir>/backups)."""

    @backup.command("create")
    @dir_option
    @json_option
    def create(root: Path, as_json: bool) -> None:
        """Make a backup now."""
        made = backups.create_backup(root, datetime.now(UTC), _database_url())
        emit(as_json, {"filename": made.filename}, lambda: f"backup {made.filename} -> {root / 'backups'}")

    @backup.command("list")
    @dir_option
    @json_option
    def list_command(root: Path, as_json: bool) -> None:
        """The backups, newest first."""
        found = backups.list_backups(root)
        emit(as_json, [{"filename": b.filename, "created_at": b.created_at.isoformat()} for b in found],
             lambda: format_table(["FILENAME", "CREATED"], [(b.filename, b.created_at.isoformat()) for b in found]))

    @backup.command("restore")
    @click.argument("filename")
    @dir_option
    def restore(filename: str, root: Path) -> None:
        """Verify a backup and put its database, keys and credentials in place (restart a running registry)."""
        backups.restore_backup(root, filename, _database_url())
        click.echo(f"restored {filename}; restart the registry if it is running to use the restored keys")
