"""What a store failure is, as leaves of :class:`~security_server.core.errors.DatabaseError`.

Every leaf keeps ``database_error`` as its fault code, so what a caller or peer sees is unchanged; the class says
what an operator can do about it (wait for a lock, restore a file, fix permissions, check the database URL,
upgrade fedbus). The message
names the store and what it was doing; the reason (our log, the CLI's detail) adds the file and the engine's own
words.
"""

from __future__ import annotations

from security_server.core.errors import DatabaseError


class DatabaseLocked(DatabaseError):
    """Another connection held the lock for longer than the busy timeout; trying again later may work."""


class DatabaseCorrupt(DatabaseError):
    """The file is not a database of this engine, or its pages are damaged; restore it from a copy."""


class DatabaseUnwritable(DatabaseError):
    """The file cannot be opened or written (permissions, read-only file system, disk full, I/O error)."""


class DatabaseUnreachable(DatabaseError):
    """The database server cannot be reached or refused us (address, credentials, database name); check the
    setting that names it (``[database] url``). Trying again later may work once the server is back."""


class ConstraintViolated(DatabaseError):
    """A statement broke a constraint (unique key, foreign key, NOT NULL); the store turns it into its own refusal."""

    def __init__(self, message: str, *, detail: str, reason: str | None = None) -> None:
        super().__init__(message, reason=reason)
        self.detail = detail
        """The engine's words for the constraint, e.g. ``UNIQUE constraint failed: members.id`` (SQLite) or
        ``duplicate key value violates unique constraint "members_pkey"`` (PostgreSQL)."""


class SchemaTooNew(DatabaseError):
    """The database was migrated by a newer fedbus than this one; it is refused, never written."""


class StoreClosed(DatabaseError):
    """The store was used after :meth:`close`."""
