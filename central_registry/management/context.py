"""What the registry's operations use: its directory, the store (lent or opened), the credentials, the time."""

from __future__ import annotations

from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Callable, Iterator

from central_registry.admin.errors import NotInitialised
from central_registry.management.roles import ALL_ROLES
from central_registry.publisher import Publisher
from central_registry.store import RegistryStore
from security_server.management.credentials import CredentialStore


@dataclass(frozen=True, slots=True)
class RegistryContext:
    """The context of every registry operation (they run in the executor's thread)."""

    root: Path
    credentials_path: Path
    now: Callable[[], datetime]
    open_store: Callable[[], AbstractContextManager[RegistryStore]]
    """The registry's store for one operation: the running registry's own, or one opened for the call."""
    database_url: str | None = None
    publisher: Callable[[], Publisher | None] = lambda: None
    """The running registry's publisher (anchor, configuration parts); None while it has none."""

    def credentials(self) -> CredentialStore:
        """Open the credential store (users and API keys with central-server roles)."""
        return CredentialStore(self.credentials_path, frozenset(ALL_ROLES))

    def store(self) -> AbstractContextManager[RegistryStore]:
        """The registry's store for one operation."""
        return self.open_store()


def opening_store(database: Path, database_url: str | None = None) -> Callable[[], AbstractContextManager[RegistryStore]]:
    """Open the store for each operation and close it after (the API without a running registry: the tests);
    :class:`~central_registry.admin.errors.NotInitialised` while there is no registry database yet."""

    @contextmanager
    def opened() -> Iterator[RegistryStore]:
        if not database_url and not database.is_file():
            raise NotInitialised("the registry is not initialised yet (POST /api/v1/initialization)")
        store = RegistryStore(database, database_url=database_url)
        try:
            yield store
        finally:
            store.close()

    return opened


def lending_store(current: Callable[[], RegistryStore | None]) -> Callable[[], AbstractContextManager[RegistryStore]]:
    """Lend the running registry's store (it is only used from the registry's one store thread)."""

    @contextmanager
    def lent() -> Iterator[RegistryStore]:
        store = current()
        if store is None:
            raise RuntimeError("the registry's store is not open")
        yield store

    return lent
