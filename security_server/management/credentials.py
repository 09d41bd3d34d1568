"""Who may use the management API: local users (password, roles) and API keys (roles), in ``management.db``.

Passwords are stored as scrypt hashes (:mod:`security_server.management.passwords`); API keys as the SHA-256
of the key, which is shown once, when it is made (X-Road does the same, UG-SS §19.1). A key is 256 random bits,
so one hash is enough to make a stolen database useless for calling the API. A revoked key is deleted.

The database is SQLite beside the server configuration, opened through the store layer with numbered
migrations like every other store. A store object belongs to the thread that opened it (sqlite3's rule).
"""

from __future__ import annotations

import functools
import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Callable

from security_server.core.errors import ClientFault
from security_server.management.passwords import hash_password, verify_password
from security_server.store.engine import Database
from security_server.store.migrations import Schema, migrate, sql_migration
from security_server.store.opening import open_database

DB_NAME = "management.db"
USERNAME = re.compile(r"[A-Za-z0-9._@-]{4,255}")
"""X-Road's login names are 4 to 255 characters (``LoginRequest``); we also keep them to a safe alphabet."""
KEY_BYTES = 32

SCHEMA = Schema(
    "management",
    (
        sql_migration(
            1,
            "users_and_api_keys",
            "CREATE TABLE app_user (username TEXT PRIMARY KEY, password_hash TEXT NOT NULL, roles TEXT NOT NULL,"
            " created_at TEXT NOT NULL) STRICT",
            "CREATE TABLE api_key (id INTEGER PRIMARY KEY AUTOINCREMENT, key_hash TEXT NOT NULL UNIQUE,"
            " roles TEXT NOT NULL, created_at TEXT NOT NULL, created_by TEXT NOT NULL) STRICT",
        ),
    ),
)
"""The management database's numbered migrations."""


class CredentialError(ClientFault):
    """A user or API key change that cannot be made; nothing was changed."""

    code = "invalid_request"


class CredentialNotFound(CredentialError):
    """No such user or API key."""

    http_status = 404
    api_code = "api_key_not_found"


class UserExists(CredentialError):
    """The user name is taken."""

    http_status = 409
    api_code = "user_already_exists"


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A stored API key: its number and roles (never the key itself)."""

    id: int
    roles: frozenset[str]
    created_at: str
    created_by: str


@dataclass(frozen=True, slots=True)
class NewApiKey:
    """A key just made: the only moment its plain text exists on our side."""

    key: str
    api_key: ApiKey


def key_hash(key: str) -> str:
    """The stored form of an API key."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def _stored_roles(text: str) -> frozenset[str]:
    return frozenset(name for name in text.split(",") if name)


def _roles_text(roles: frozenset[str]) -> str:
    return ",".join(sorted(str(r) for r in roles))


@functools.cache
def _dummy_hash() -> str:
    return hash_password("not a password", salt=b"\0" * 16)


def _time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class CredentialStore:
    """Users and API keys of one management API (one security server, or the registry), each with some of
    ``roles``, the role names of that API."""

    def __init__(
        self, path: Path, roles: frozenset[str], *, random_bytes: Callable[[int], bytes] = secrets.token_bytes
    ) -> None:
        self.path = path
        self.roles = frozenset(str(r) for r in roles)
        self._random_bytes = random_bytes
        self._db: Database = open_database(None, path, label="management credentials")
        try:
            migrate(self._db, SCHEMA)
        except BaseException:
            self._db.close()
            raise

    def _checked(self, roles: frozenset[str]) -> frozenset[str]:
        names = frozenset(str(r) for r in roles)
        if not names:
            raise CredentialError("at least one role is needed")
        unknown = sorted(names - self.roles)
        if unknown:
            raise CredentialError(f"unknown role {unknown[0]!r}")
        return names

    def close(self) -> None:
        """Close the database."""
        self._db.close()

    def __enter__(self) -> CredentialStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- users --------------------------------------------------------------------------------------------------

    def add_user(self, username: str, password: str, roles: frozenset[str], *, now: datetime) -> None:
        """Add a local user; the password is hashed here and never stored or logged as it is."""
        if not USERNAME.fullmatch(username):
            raise CredentialError("a user name is 4 to 255 letters, digits or ._@-")
        if len(password) < 4:
            raise CredentialError("a password has at least 4 characters")
        checked = self._checked(roles)
        stored = hash_password(password)
        with self._db.write("adding a user") as conn:
            if conn.execute("SELECT 1 FROM app_user WHERE username = ?", (username,)).fetchone():
                raise UserExists(f"user {username} exists already")
            conn.execute(
                "INSERT INTO app_user (username, password_hash, roles, created_at) VALUES (?, ?, ?, ?)",
                (username, stored, _roles_text(checked), _time(now)),
            )

    def authenticate(self, username: str, password: str) -> frozenset[str] | None:
        """The user's roles when the password is right, else None (an unknown user costs a hash as well)."""
        row = None
        if USERNAME.fullmatch(username):
            with self._db.read("reading a user") as conn:
                row = conn.execute("SELECT password_hash, roles FROM app_user WHERE username = ?", (username,)).fetchone()
        if row is None:
            verify_password(password, _dummy_hash())  # an unknown user costs a hash too: no timing oracle
            return None
        return _stored_roles(row[1]) if verify_password(password, row[0]) else None

    def users(self) -> tuple[tuple[str, frozenset[str]], ...]:
        """Every user name with its roles."""
        with self._db.read("listing users") as conn:
            rows = conn.execute("SELECT username, roles FROM app_user ORDER BY username").fetchall()
        return tuple((row[0], _stored_roles(row[1])) for row in rows)

    # --- API keys ------------------------------------------------------------------------------------------------

    def create_api_key(self, roles: frozenset[str], *, created_by: str, now: datetime) -> NewApiKey:
        """Make a key with ``roles``; its plain text is returned once and only its hash is kept."""
        checked = self._checked(roles)
        key = self._random_bytes(KEY_BYTES).hex()
        created = _time(now)
        with self._db.write("creating an API key") as conn:
            cursor = conn.execute(
                "INSERT INTO api_key (key_hash, roles, created_at, created_by) VALUES (?, ?, ?, ?)",
                (key_hash(key), _roles_text(checked), created, created_by),
            )
            key_id = int(cursor.lastrowid or 0)
        return NewApiKey(key, ApiKey(key_id, checked, created, created_by))

    def api_key_for(self, key: str) -> ApiKey | None:
        """The stored key whose plain text is ``key``, or None."""
        with self._db.read("checking an API key") as conn:
            row = conn.execute(
                "SELECT id, roles, created_at, created_by FROM api_key WHERE key_hash = ?", (key_hash(key),)
            ).fetchone()
        return None if row is None else ApiKey(int(row[0]), _stored_roles(row[1]), row[2], row[3])

    def api_keys(self) -> tuple[ApiKey, ...]:
        """Every key, oldest first."""
        with self._db.read("listing API keys") as conn:
            rows = conn.execute("SELECT id, roles, created_at, created_by FROM api_key ORDER BY id").fetchall()
        return tuple(ApiKey(int(r[0]), _stored_roles(r[1]), r[2], r[3]) for r in rows)

    def api_key(self, key_id: int) -> ApiKey:
        """One key by number; :class:`CredentialNotFound` when there is none."""
        for found in self.api_keys():
            if found.id == key_id:
                return found
        raise CredentialNotFound(f"no API key {key_id}")

    def update_api_key(self, key_id: int, roles: frozenset[str]) -> ApiKey:
        """Replace a key's roles."""
        checked = self._checked(roles)
        with self._db.write("updating an API key") as conn:
            cursor = conn.execute("UPDATE api_key SET roles = ? WHERE id = ?", (_roles_text(checked), key_id))
            if cursor.rowcount != 1:
                raise CredentialNotFound(f"no API key {key_id}")
        return self.api_key(key_id)

    def revoke_api_key(self, key_id: int) -> None:
        """Delete a key: requests with it are refused from now on."""
        with self._db.write("revoking an API key") as conn:
            cursor = conn.execute("DELETE FROM api_key WHERE id = ?", (key_id,))
            if cursor.rowcount != 1:
                raise CredentialNotFound(f"no API key {key_id}")
