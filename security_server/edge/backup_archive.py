"""Checksummed backup archives of a server's directory: written, listed, read, deleted, uploaded and verified.

Both roles back up the same way (the security server's configuration and keys, :mod:`security_server.admin.backups`;
the registry's, :mod:`central_registry.admin.backups`); what differs is a :class:`BackupKind`: the archive's format
tag, which member names it may hold, and the role's own refusals. An archive is an uncompressed tar in
``<directory>/backups/`` named ``conf_backup_YYYYMMDD-HHMMSS.tar`` with ``MANIFEST.json``: each member's SHA-256,
authenticated with HMAC-SHA256 under ``backup-hmac.key``, a random key kept in the directory (mode 0600) and never
in an archive. :meth:`BackupFolder.verified` checks the HMAC, the format tag and every digest, and refuses the whole
archive when anything differs, a member is missing or extra, or a name is not one the kind allows.

Blocking (files, SQLite): call from a thread.
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
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Callable

from security_server.core.errors import BusError
from security_server.edge.atomic_file import PRIVATE_MODE, write_atomically

BACKUP_DIR = "backups"
HMAC_KEY = "backup-hmac.key"
MANIFEST = "MANIFEST.json"
NAME = re.compile(r"conf_backup_\d{8}-\d{6}\.tar")
"""A backup's file name; nothing else is ever opened under ``backups/`` (no path traversal by name)."""


@dataclass(frozen=True, slots=True)
class Backup:
    """A backup file and when it was made."""

    filename: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class BackupKind:
    """What one role's archives are: the format tag in their manifest, the members they may (and must) hold, and
    the role's refusals (each a :class:`BusError` taking a message)."""

    format: str
    required: str
    """The member every archive holds (the database)."""
    allowed: Callable[[str], bool]
    not_found: Callable[[str], BusError]
    exists: Callable[[str], BusError]
    invalid: Callable[[str], BusError]


def created_at(filename: str) -> datetime:
    """When the backup named ``filename`` (a :data:`NAME`) was made."""
    stamp = filename[len("conf_backup_"):-len(".tar")]
    return datetime.strptime(stamp, "%Y%m%d-%H%M%S").replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class BackupFolder:
    """The backups of one server directory ``home``."""

    home: Path
    kind: BackupKind

    @property
    def folder(self) -> Path:
        """``<home>/backups``."""
        return self.home / BACKUP_DIR

    def _made_folder(self) -> Path:
        self.folder.mkdir(mode=0o700, exist_ok=True)
        return self.folder

    def _path(self, filename: str) -> Path:
        if not NAME.fullmatch(filename):
            raise self.kind.not_found(f"no backup {filename}")
        return self.folder / filename

    def hmac_key(self, *, create: bool) -> bytes:
        """The directory's archive key; made at the first backup, a refusal when a check needs it and it is missing."""
        path = self.home / HMAC_KEY
        try:
            return bytes.fromhex(path.read_text(encoding="ascii").strip())
        except FileNotFoundError:
            if not create:
                raise self.kind.invalid(f"no {HMAC_KEY} in {self.home}: the backup cannot be verified") from None
        except ValueError as err:
            raise self.kind.invalid(f"{HMAC_KEY} is damaged") from err
        key = secrets.token_bytes(32)
        write_atomically(path, key.hex().encode("ascii"), PRIVATE_MODE)
        return key

    def _manifest(self, members: dict[str, bytes], key: bytes) -> bytes:
        digests = {name: hashlib.sha256(data).hexdigest() for name, data in sorted(members.items())}
        body = json.dumps({"format": self.kind.format, "files": digests}, sort_keys=True).encode()
        mac = hmac.new(key, body, hashlib.sha256).hexdigest()
        return json.dumps({"manifest": body.decode(), "hmac": mac}, sort_keys=True).encode()

    def write(self, members: dict[str, bytes], now: datetime) -> Backup:
        """A new archive of ``members`` (name to bytes) with its manifest, named after ``now``."""
        filename = f"conf_backup_{now.astimezone(UTC):%Y%m%d-%H%M%S}.tar"
        target = self._made_folder() / filename
        if target.exists():
            raise self.kind.exists(f"backup {filename} exists already")
        key = self.hmac_key(create=True)
        with_manifest = {**members, MANIFEST: self._manifest(members, key)}
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
            for name, data in with_manifest.items():
                info = tarfile.TarInfo(name)
                info.size, info.mode, info.mtime = len(data), 0o600, int(now.timestamp())
                archive.addfile(info, io.BytesIO(data))
        write_atomically(target, buffer.getvalue(), PRIVATE_MODE)
        return Backup(filename, created_at(filename))

    def list(self) -> tuple[Backup, ...]:
        """The backups, oldest first."""
        if not self.folder.is_dir():
            return ()
        return tuple(Backup(p.name, created_at(p.name)) for p in sorted(self.folder.iterdir()) if NAME.fullmatch(p.name))

    def read(self, filename: str) -> bytes:
        """The archive's bytes (for download)."""
        try:
            return self._path(filename).read_bytes()
        except FileNotFoundError as err:
            raise self.kind.not_found(f"no backup {filename}") from err

    def delete(self, filename: str) -> None:
        """Delete a backup."""
        try:
            self._path(filename).unlink()
        except FileNotFoundError as err:
            raise self.kind.not_found(f"no backup {filename}") from err

    def upload(self, filename: str, data: bytes, *, overwrite: bool = False) -> Backup:
        """Store an archive under its own name, verified first: ``invalid`` for a name that is not a backup's or
        an archive that does not verify, ``exists`` for a name taken (unless ``overwrite``)."""
        if not NAME.fullmatch(filename):
            raise self.kind.invalid(f"{filename!r} is not a backup's name (conf_backup_YYYYMMDD-HHMMSS.tar)")
        self.verified(data)
        target = self._made_folder() / filename
        if target.exists() and not overwrite:
            raise self.kind.exists(f"backup {filename} exists already")
        write_atomically(target, data, PRIVATE_MODE)
        return Backup(filename, created_at(filename))

    def verified(self, data: bytes) -> dict[str, bytes]:
        """The members of an archive whose manifest and digests check out; ``invalid`` otherwise."""
        invalid = self.kind.invalid
        members: dict[str, bytes] = {}
        try:
            with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as archive:
                for info in archive.getmembers():
                    if not info.isfile() or info.name in members:
                        raise invalid(f"unexpected archive member {info.name!r}")
                    handle = archive.extractfile(info)
                    assert handle is not None
                    members[info.name] = handle.read()
            outer = json.loads(members.pop(MANIFEST))
            body = outer["manifest"].encode()
            expected = hmac.new(self.hmac_key(create=False), body, hashlib.sha256).hexdigest()
            if not isinstance(outer.get("hmac"), str) or not hmac.compare_digest(expected, outer["hmac"]):
                raise invalid("the backup's manifest does not verify (tampered, or made by another server)")
            manifest = json.loads(body)
            digests = manifest["files"]
            # An archive of the other role (or an older format) verifies under a copied key but is not ours.
            if manifest.get("format") != self.kind.format:
                raise invalid(f"not a {self.kind.format} archive")
        except BusError:
            raise
        except (tarfile.TarError, KeyError, ValueError, TypeError, AttributeError) as err:
            raise invalid("not a fedbus configuration backup") from err
        if set(digests) != set(members):
            raise invalid("the backup's files differ from its manifest")
        for name, member in members.items():
            if not hmac.compare_digest(hashlib.sha256(member).hexdigest(), str(digests[name])):
                raise invalid(f"{name} in the backup is damaged or tampered with")
            if not self.kind.allowed(name):
                raise invalid(f"unexpected file {name!r} in the backup")
        if self.kind.required not in members:
            raise invalid("the backup has no configuration database")
        return members


def sqlite_copy(database: Path, scratch: Path) -> bytes:
    """A consistent copy of a live SQLite database (SQLite's online backup: safe while others write), made in
    ``scratch``."""
    copy = scratch / database.name
    source = sqlite3.connect(database)
    try:
        target = sqlite3.connect(copy)
        try:
            source.backup(target)
        finally:
            target.close()
    finally:
        source.close()
    return copy.read_bytes()


def replace_sqlite(database: Path, data: bytes) -> None:
    """Swap a SQLite file, first folding and removing the old write-ahead log (which would corrupt the new one)."""
    old = sqlite3.connect(database)
    try:
        old.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        old.close()
    write_atomically(database, data, PRIVATE_MODE)
    for suffix in ("-wal", "-shm"):
        Path(f"{database}{suffix}").unlink(missing_ok=True)
