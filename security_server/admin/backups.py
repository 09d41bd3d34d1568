"""Backups of the server's configuration and keys: made, listed, read, deleted, restored (UG-SS §13).

A backup is an uncompressed tar archive in ``<server dir>/backups/`` named ``conf_backup_YYYYMMDD-HHMMSS.tar``.
It holds the configuration database (an online SQLite backup, consistent even while the server writes), the soft
token's folder ``keys/``, the management API's users and keys (``management.db``) and TLS identity, the internal
TLS key and certificate (``internal-tls.*``, what the client proxy's HTTPS port serves), and
``MANIFEST.json``: each member's SHA-256, authenticated with HMAC-SHA256 under ``backup-hmac.key``, a random key
kept in the server directory (mode 0600) and never in a backup. A restore checks the HMAC and every digest first,
and refuses the whole archive (nothing changed) when anything differs, a member is missing or extra, or a name is
not one of the expected ones. Not in a backup: the message log and its archives (X-Road leaves them out too), the
downloaded global configuration (fetched again), the audit log. To restore on another machine, copy
``backup-hmac.key`` with the archive.

The archive, its manifest and its checks are :mod:`security_server.edge.backup_archive` (the registry's backups
use them too). Only the embedded SQLite configuration is backed up here; a configuration kept in PostgreSQL is backed up with
PostgreSQL's own tools, and these functions refuse.
"""

from __future__ import annotations

import re
import tempfile
from datetime import datetime
from pathlib import Path

from security_server.admin.errors import Conflict, NotFound
from security_server.admin.server_dir import DB_NAME, KEYS_DIR, ServerDirectory
from security_server.edge.atomic_file import PRIVATE_MODE, write_atomically
from security_server.edge.backup_archive import (
    BACKUP_DIR,
    HMAC_KEY,
    MANIFEST,
    NAME,
    Backup,
    BackupFolder,
    BackupKind,
    replace_sqlite,
    sqlite_copy,
)
from security_server.serverconf.store import ServerConfError

__all__ = [
    "BACKUP_DIR", "HMAC_KEY", "MANIFEST", "NAME", "OPTIONAL_FILES", "Backup", "BackupExists", "BackupNotFound",
    "InvalidBackup", "create_backup", "delete_backup", "list_backups", "read_backup", "restore_backup",
    "upload_backup",
]

OPTIONAL_FILES = ("management.db", "management-tls.key", "management-tls.crt", "internal-tls.key", "internal-tls.crt")
KEY_FILE = re.compile(r"[A-Za-z0-9._-]{1,200}")


class BackupNotFound(NotFound):
    """No backup of that name."""

    api_code = "backup_file_not_found"


class BackupExists(Conflict):
    """A backup of that name exists already (two in the same second)."""

    api_code = "backup_file_already_exists"


class InvalidBackup(ServerConfError):
    """The archive is damaged, tampered with or not a fedbus backup; nothing was restored."""

    api_code = "invalid_backup_file"


def _allowed(name: str) -> bool:
    return name == DB_NAME or name in OPTIONAL_FILES or (
        name.startswith(f"{KEYS_DIR}/") and KEY_FILE.fullmatch(name[len(KEYS_DIR) + 1:]) is not None)


KIND = BackupKind("fedbus-conf-backup-1", DB_NAME, _allowed, BackupNotFound, BackupExists, InvalidBackup)
"""A security server's archives."""


def _backups(server_dir: ServerDirectory) -> BackupFolder:
    return BackupFolder(server_dir.path, KIND)


def _require_sqlite(server_dir: ServerDirectory) -> None:
    if server_dir.database_url:
        raise ServerConfError("the configuration is in PostgreSQL: back it up with PostgreSQL's tools")
    if not server_dir.is_initialised():
        raise ServerConfError(f"no security server in {server_dir.path}")


def _members(server_dir: ServerDirectory, scratch: Path) -> dict[str, bytes]:
    members: dict[str, bytes] = {DB_NAME: sqlite_copy(server_dir.db_path, scratch)}
    for name in OPTIONAL_FILES:
        path = server_dir.path / name
        if path.is_file():
            members[name] = path.read_bytes()
    if server_dir.keys_path.is_dir():
        for path in sorted(server_dir.keys_path.iterdir()):
            if path.is_file() and KEY_FILE.fullmatch(path.name) and not path.name.startswith("."):
                members[f"{KEYS_DIR}/{path.name}"] = path.read_bytes()
    return members


def create_backup(server_dir: ServerDirectory, now: datetime) -> Backup:
    """Write a new backup of the configuration and keys."""
    _require_sqlite(server_dir)
    with tempfile.TemporaryDirectory(dir=server_dir.path, prefix=".backup-") as scratch:
        members = _members(server_dir, Path(scratch))
    return _backups(server_dir).write(members, now)


def list_backups(server_dir: ServerDirectory) -> tuple[Backup, ...]:
    """The backups, oldest first."""
    return _backups(server_dir).list()


def read_backup(server_dir: ServerDirectory, filename: str) -> bytes:
    """The archive's bytes (for download)."""
    return _backups(server_dir).read(filename)


def delete_backup(server_dir: ServerDirectory, filename: str) -> None:
    """Delete a backup."""
    _backups(server_dir).delete(filename)


def upload_backup(server_dir: ServerDirectory, filename: str, data: bytes, *, overwrite: bool = False) -> Backup:
    """Store an archive made by ``create_backup`` (of this server, or of one whose ``backup-hmac.key`` was copied
    here) under its own name, verified first: :class:`InvalidBackup` for a name that is not a backup's or an archive
    that does not verify, :class:`BackupExists` for a name taken (unless ``overwrite``)."""
    _require_sqlite(server_dir)
    return _backups(server_dir).upload(filename, data, overwrite=overwrite)


def restore_backup(server_dir: ServerDirectory, filename: str) -> None:
    """Put the configuration and keys of a verified backup in place (all of them, or nothing if it fails to verify).

    A running server picks the configuration up at its next reload; keys are read when they are used.
    """
    _require_sqlite(server_dir)
    backups = _backups(server_dir)
    members = backups.verified(backups.read(filename))
    replace_sqlite(server_dir.db_path, members[DB_NAME])
    for name in OPTIONAL_FILES:
        if name in members:
            write_atomically(server_dir.path / name, members[name], PRIVATE_MODE)
    # Each key file is written whole (edge.atomic_file); key files the backup does not hold go after.
    server_dir.keys_path.mkdir(mode=0o700, exist_ok=True)
    restored = {name[len(KEYS_DIR) + 1:] for name in members if name.startswith(f"{KEYS_DIR}/")}
    for key_name in sorted(restored):
        write_atomically(server_dir.keys_path / key_name, members[f"{KEYS_DIR}/{key_name}"], PRIVATE_MODE)
    for path in server_dir.keys_path.iterdir():
        if path.is_file() and KEY_FILE.fullmatch(path.name) and not path.name.startswith(".") and path.name not in restored:
            path.unlink()
