"""Backups of the registry's database, keys and API credentials: made, listed, read, deleted, uploaded, restored.

The archive is the security server's (:mod:`security_server.edge.backup_archive`: a tar in
``<registry dir>/backups/`` named ``conf_backup_YYYYMMDD-HHMMSS.tar``, a manifest of SHA-256 digests authenticated
with HMAC-SHA256 under ``backup-hmac.key``, which stays in the directory and is never archived) with its own format
tag, so a security server's archive is never restored into a registry. It holds ``registry.db`` (SQLite's online
backup: consistent while the registry writes), the files of ``conf-signing/``, ``ca/`` (the development CA, OCSP
responder and TSA) and ``tls/``, and the management API's users, keys and TLS identity. Not in it: the published
configuration (made again at the next generation), the audit log, ``backup-hmac.key`` (copy it with the archive to
restore on another machine).

A restore verifies the whole archive first and changes nothing when anything differs. The database is copied into
the live file with SQLite's backup API, so a running registry reads the restored state from its next operation on
(its publisher signs the next generation from it); key files are read when the registry starts: restart it to sign
with restored keys (X-Road restarts its services after a restore). A store kept in PostgreSQL (``[database] url``)
is backed up with PostgreSQL's own tools (``pg_dump``): these functions refuse it with ``backup_generation_failed``
or ``restore_process_failed``.
"""

from __future__ import annotations

import re
import sqlite3
import tempfile
from datetime import datetime
from pathlib import Path

from central_registry.admin.errors import Conflict, NotFound, NotInitialised
from central_registry.service import RegistryPaths
from central_registry.store import RegistryError, RegistryStore
from security_server.edge.atomic_file import PRIVATE_MODE, write_atomically
from security_server.edge.backup_archive import Backup, BackupFolder, BackupKind, sqlite_copy
from security_server.management.credentials import DB_NAME as CREDENTIALS_DB
from security_server.management.tls import CERT_NAME, KEY_NAME

__all__ = [
    "Backup", "BackupExists", "BackupNotFound", "BackupRefused", "InvalidBackup", "RestoreRefused", "create_backup", "delete_backup",
    "list_backups", "read_backup", "restore_backup", "upload_backup",
]

DATABASE = "registry.db"
OPTIONAL_FILES = (CREDENTIALS_DB, KEY_NAME, CERT_NAME)
KEY_FOLDERS = ("conf-signing", "ca", "tls")
"""The folders whose files a backup holds (one level: keys, certificates, the CA's index and serials)."""
FILE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")


class BackupNotFound(NotFound):
    """No backup of that name."""

    api_code = "backup_file_not_found"


class BackupExists(Conflict):
    """A backup of that name exists already (two in the same second)."""

    api_code = "backup_file_already_exists"


class InvalidBackup(RegistryError):
    """The archive is damaged, tampered with or not a registry backup; nothing was restored."""

    api_code = "invalid_backup_file"


class BackupRefused(RegistryError):
    """This registry cannot make a backup itself (its store is in PostgreSQL)."""

    api_code = "backup_generation_failed"


class RestoreRefused(RegistryError):
    """This registry cannot restore a backup itself (its store is in PostgreSQL)."""

    api_code = "restore_process_failed"


def _allowed(name: str) -> bool:
    if name == DATABASE or name in OPTIONAL_FILES:
        return True
    folder, _, file = name.partition("/")
    return folder in KEY_FOLDERS and FILE_NAME.fullmatch(file) is not None


KIND = BackupKind("fedbus-registry-backup-1", DATABASE, _allowed, BackupNotFound, BackupExists, InvalidBackup)
"""A registry's archives."""


def _backups(root: Path) -> BackupFolder:
    return BackupFolder(root, KIND)


def _require_sqlite(root: Path, database_url: str | None, refusal: type[RegistryError]) -> RegistryPaths:
    if database_url:
        raise refusal("the registry's store is in PostgreSQL ([database] url): back it up with pg_dump and restore "
                      "it with pg_restore (docs/management-api.md)")
    paths = RegistryPaths(root)
    if not paths.database.is_file():
        raise NotInitialised(f"no registry in {root}")
    return paths


def _files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return [p for p in sorted(folder.iterdir()) if p.is_file() and not p.is_symlink() and FILE_NAME.fullmatch(p.name)]


def create_backup(root: Path, now: datetime, database_url: str | None = None) -> Backup:
    """Write a new backup of the registry in ``root``."""
    paths = _require_sqlite(root, database_url, BackupRefused)
    with tempfile.TemporaryDirectory(dir=root, prefix=".backup-") as scratch:
        members = {DATABASE: sqlite_copy(paths.database, Path(scratch))}
    for name in OPTIONAL_FILES:
        if (root / name).is_file():
            members[name] = (root / name).read_bytes()
    for folder in KEY_FOLDERS:
        for path in _files(root / folder):
            members[f"{folder}/{path.name}"] = path.read_bytes()
    return _backups(root).write(members, now)


def list_backups(root: Path) -> tuple[Backup, ...]:
    """The backups, newest first (X-Road's order)."""
    return tuple(reversed(_backups(root).list()))


def read_backup(root: Path, filename: str) -> bytes:
    """The archive's bytes (for download)."""
    return _backups(root).read(filename)


def delete_backup(root: Path, filename: str) -> None:
    """Delete a backup."""
    _backups(root).delete(filename)


def upload_backup(root: Path, filename: str, data: bytes, *, overwrite: bool = False) -> Backup:
    """Store an archive made by :func:`create_backup` (of this registry, or of one whose ``backup-hmac.key`` was
    copied here), verified first: :class:`InvalidBackup` for a name that is not a backup's or an archive that does
    not verify, :class:`BackupExists` for a name taken (unless ``overwrite``)."""
    return _backups(root).upload(filename, data, overwrite=overwrite)


def _copy_into(database: Path, data: bytes, scratch: Path) -> None:
    """Overwrite the live database's content with ``data`` through SQLite's backup API: connections the running
    registry holds open see the restored state at their next transaction (no file swapped under them)."""
    incoming = scratch / "incoming.db"
    incoming.write_bytes(data)
    source = sqlite3.connect(incoming)
    try:
        source.execute("PRAGMA quick_check").fetchall()
        target = sqlite3.connect(database)
        try:
            source.backup(target)
        finally:
            target.close()
    except sqlite3.DatabaseError as err:
        raise InvalidBackup("the backup's database cannot be read") from err
    finally:
        source.close()


def restore_backup(root: Path, filename: str, database_url: str | None = None) -> None:
    """Put the database, keys and credentials of a verified backup in place (all of them, or nothing if it fails
    to verify). Run it where the registry's store is not in use (the store thread of a running registry)."""
    paths = _require_sqlite(root, database_url, RestoreRefused)
    backups = _backups(root)
    members = backups.verified(backups.read(filename))
    with tempfile.TemporaryDirectory(dir=root, prefix=".restore-") as scratch:
        _copy_into(paths.database, members[DATABASE], Path(scratch))
    # A backup made before a later migration gets it now, not only at the running registry's next start.
    RegistryStore(paths.database).close()
    for name in OPTIONAL_FILES:
        if name in members:
            write_atomically(root / name, members[name], PRIVATE_MODE)
    # Each folder ends up holding exactly the backup's files: each written whole, the others removed after.
    for folder in KEY_FOLDERS:
        restored = {name.partition("/")[2] for name in members if name.partition("/")[0] == folder}
        if restored:
            (root / folder).mkdir(mode=0o700, exist_ok=True)
        for file in sorted(restored):
            write_atomically(root / folder / file, members[f"{folder}/{file}"], PRIVATE_MODE)
        for path in _files(root / folder):
            if path.name not in restored:
                path.unlink()
