"""Backups of the server's configuration and keys: made, listed, read, deleted, restored (UG-SS §13).

A backup is an uncompressed tar archive in ``<server dir>/backups/`` named ``conf_backup_YYYYMMDD-HHMMSS.tar``.
It holds the configuration database (an online SQLite backup, consistent even while the server writes), the soft
token's folder ``keys/``, the management API's users and keys (``management.db``) and TLS identity, and
``MANIFEST.json``: each member's SHA-256, authenticated with HMAC-SHA256 under ``backup-hmac.key``, a random key
kept in the server directory (mode 0600) and never in a backup. A restore checks the HMAC and every digest first,
and refuses the whole archive (nothing changed) when anything differs, a member is missing or extra, or a name is
not one of the expected ones. Not in a backup: the message log and its archives (X-Road leaves them out too), the
downloaded global configuration (fetched again), the audit log. To restore on another machine, copy
``backup-hmac.key`` with the archive.

Only the embedded SQLite configuration is backed up here; a configuration kept in PostgreSQL is backed up with
PostgreSQL's own tools, and these functions refuse.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import re
import secrets
import sqlite3
import tarfile
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from security_server.admin.errors import Conflict, NotFound
from security_server.admin.server_dir import DB_NAME, KEYS_DIR, ServerDirectory
from security_server.edge.atomic_file import PRIVATE_MODE, write_atomically
from security_server.serverconf.store import ServerConfError

BACKUP_DIR = "backups"
HMAC_KEY = "backup-hmac.key"
MANIFEST = "MANIFEST.json"
NAME = re.compile(r"conf_backup_\d{8}-\d{6}\.tar")
OPTIONAL_FILES = ("management.db", "management-tls.key", "management-tls.crt")
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


@dataclass(frozen=True, slots=True)
class Backup:
    """A backup file and when it was made."""

    filename: str
    created_at: datetime


def _folder(server_dir: ServerDirectory) -> Path:
    folder = server_dir.path / BACKUP_DIR
    folder.mkdir(mode=0o700, exist_ok=True)
    return folder


def _hmac_key(server_dir: ServerDirectory, *, create: bool) -> bytes:
    path = server_dir.path / HMAC_KEY
    try:
        return bytes.fromhex(path.read_text(encoding="ascii").strip())
    except FileNotFoundError:
        if not create:
            raise InvalidBackup(f"no {HMAC_KEY} in {server_dir.path}: the backup cannot be verified") from None
    except ValueError as err:
        raise InvalidBackup(f"{HMAC_KEY} is damaged") from err
    key = secrets.token_bytes(32)
    write_atomically(path, key.hex().encode("ascii"), PRIVATE_MODE)
    return key


def _require_sqlite(server_dir: ServerDirectory) -> None:
    if server_dir.database_url:
        raise ServerConfError("the configuration is in PostgreSQL: back it up with PostgreSQL's tools")
    if not server_dir.is_initialised():
        raise ServerConfError(f"no security server in {server_dir.path}")


def _backup_name(filename: str) -> str:
    if not NAME.fullmatch(filename):
        raise BackupNotFound(f"no backup {filename}")
    return filename


def _created(filename: str) -> datetime:
    stamp = filename[len("conf_backup_"):-len(".tar")]
    return datetime.strptime(stamp, "%Y%m%d-%H%M%S").replace(tzinfo=UTC)


def _members(server_dir: ServerDirectory, scratch: Path) -> dict[str, bytes]:
    members: dict[str, bytes] = {}
    copy = scratch / DB_NAME
    source = sqlite3.connect(server_dir.db_path)
    try:
        target = sqlite3.connect(copy)
        try:
            source.backup(target)
        finally:
            target.close()
    finally:
        source.close()
    members[DB_NAME] = copy.read_bytes()
    for name in OPTIONAL_FILES:
        path = server_dir.path / name
        if path.is_file():
            members[name] = path.read_bytes()
    if server_dir.keys_path.is_dir():
        for path in sorted(server_dir.keys_path.iterdir()):
            if path.is_file() and KEY_FILE.fullmatch(path.name) and not path.name.startswith("."):
                members[f"{KEYS_DIR}/{path.name}"] = path.read_bytes()
    return members


def _manifest(members: dict[str, bytes], key: bytes) -> bytes:
    digests = {name: hashlib.sha256(data).hexdigest() for name, data in sorted(members.items())}
    body = json.dumps({"format": "fedbus-conf-backup-1", "files": digests}, sort_keys=True).encode()
    mac = hmac.new(key, body, hashlib.sha256).hexdigest()
    return json.dumps({"manifest": body.decode(), "hmac": mac}, sort_keys=True).encode()


def create_backup(server_dir: ServerDirectory, now: datetime) -> Backup:
    """Write a new backup of the configuration and keys."""
    _require_sqlite(server_dir)
    filename = f"conf_backup_{now.astimezone(UTC):%Y%m%d-%H%M%S}.tar"
    target = _folder(server_dir) / filename
    if target.exists():
        raise BackupExists(f"backup {filename} exists already")
    key = _hmac_key(server_dir, create=True)
    with tempfile.TemporaryDirectory(dir=server_dir.path, prefix=".backup-") as scratch:
        members = _members(server_dir, Path(scratch))
        members[MANIFEST] = _manifest(members, key)
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
            for name, data in members.items():
                info = tarfile.TarInfo(name)
                info.size, info.mode, info.mtime = len(data), 0o600, int(now.timestamp())
                archive.addfile(info, io.BytesIO(data))
    write_atomically(target, buffer.getvalue(), PRIVATE_MODE)
    return Backup(filename, _created(filename))


def list_backups(server_dir: ServerDirectory) -> tuple[Backup, ...]:
    """The backups, oldest first."""
    folder = server_dir.path / BACKUP_DIR
    if not folder.is_dir():
        return ()
    return tuple(Backup(p.name, _created(p.name)) for p in sorted(folder.iterdir()) if NAME.fullmatch(p.name))


def read_backup(server_dir: ServerDirectory, filename: str) -> bytes:
    """The archive's bytes (for download)."""
    path = server_dir.path / BACKUP_DIR / _backup_name(filename)
    try:
        return path.read_bytes()
    except FileNotFoundError as err:
        raise BackupNotFound(f"no backup {filename}") from err


def delete_backup(server_dir: ServerDirectory, filename: str) -> None:
    """Delete a backup."""
    path = server_dir.path / BACKUP_DIR / _backup_name(filename)
    try:
        path.unlink()
    except FileNotFoundError as err:
        raise BackupNotFound(f"no backup {filename}") from err


def upload_backup(server_dir: ServerDirectory, filename: str, data: bytes, *, overwrite: bool = False) -> Backup:
    """Store an archive made by ``create_backup`` (of this server, or of one whose ``backup-hmac.key`` was copied
    here) under its own name, verified first: :class:`InvalidBackup` for a name that is not a backup's or an archive
    that does not verify, :class:`BackupExists` for a name taken (unless ``overwrite``)."""
    _require_sqlite(server_dir)
    if not NAME.fullmatch(filename):
        raise InvalidBackup(f"{filename!r} is not a backup's name (conf_backup_YYYYMMDD-HHMMSS.tar)")
    _verified_members(data, _hmac_key(server_dir, create=False))
    target = _folder(server_dir) / filename
    if target.exists() and not overwrite:
        raise BackupExists(f"backup {filename} exists already")
    write_atomically(target, data, PRIVATE_MODE)
    return Backup(filename, _created(filename))


def _verified_members(data: bytes, key: bytes) -> dict[str, bytes]:
    """The members of a backup whose manifest and digests check out; :class:`InvalidBackup` otherwise."""
    members: dict[str, bytes] = {}
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as archive:
            for info in archive.getmembers():
                if not info.isfile() or info.name in members:
                    raise InvalidBackup(f"unexpected archive member {info.name!r}")
                handle = archive.extractfile(info)
                assert handle is not None
                members[info.name] = handle.read()
        outer = json.loads(members.pop(MANIFEST))
        body = outer["manifest"].encode()
        expected = hmac.new(key, body, hashlib.sha256).hexdigest()
        if not isinstance(outer.get("hmac"), str) or not hmac.compare_digest(expected, outer["hmac"]):
            raise InvalidBackup("the backup's manifest does not verify (tampered, or made by another server)")
        digests = json.loads(body)["files"]
    except InvalidBackup:
        raise
    except (tarfile.TarError, KeyError, ValueError, TypeError, AttributeError) as err:
        raise InvalidBackup("not a fedbus configuration backup") from err
    if set(digests) != set(members):
        raise InvalidBackup("the backup's files differ from its manifest")
    for name, data_bytes in members.items():
        if not hmac.compare_digest(hashlib.sha256(data_bytes).hexdigest(), str(digests[name])):
            raise InvalidBackup(f"{name} in the backup is damaged or tampered with")
        allowed = name == DB_NAME or name in OPTIONAL_FILES or (
            name.startswith(f"{KEYS_DIR}/") and KEY_FILE.fullmatch(name[len(KEYS_DIR) + 1:]) is not None)
        if not allowed:
            raise InvalidBackup(f"unexpected file {name!r} in the backup")
    if DB_NAME not in members:
        raise InvalidBackup("the backup has no configuration database")
    return members


def _replace_database(server_dir: ServerDirectory, data: bytes) -> None:
    """Swap the SQLite file, first folding and removing the old write-ahead log (which would corrupt the new one)."""
    old = sqlite3.connect(server_dir.db_path)
    try:
        old.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        old.close()
    write_atomically(server_dir.db_path, data, PRIVATE_MODE)
    for suffix in ("-wal", "-shm"):
        Path(f"{server_dir.db_path}{suffix}").unlink(missing_ok=True)


def restore_backup(server_dir: ServerDirectory, filename: str) -> None:
    """Put the configuration and keys of a verified backup in place (all of them, or nothing if it fails to verify).

    A running server picks the configuration up at its next reload; keys are read when they are used.
    """
    _require_sqlite(server_dir)
    data = read_backup(server_dir, filename)
    members = _verified_members(data, _hmac_key(server_dir, create=False))
    _replace_database(server_dir, members[DB_NAME])
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
