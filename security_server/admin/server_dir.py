"""One security server's working directory: its configuration store, its soft token and its token set.

The directory holds ``serverconf.db`` (:mod:`security_server.serverconf.store`), ``keys/`` (the soft token,
:mod:`security_server.signer.softtoken`) and, between the two steps of an initialisation through the REST API,
``anchor.pending`` (the uploaded initial anchor, :mod:`security_server.admin.initialization`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from security_server.core.config import LayeredConfig
from security_server.serverconf.store import ServerConfError, ServerConfSnapshot, ServerConfStore
from security_server.signer.softtoken import SoftToken
from security_server.signer.token_set import TokenSet, open_tokens

DB_NAME = "serverconf.db"
KEYS_DIR = "keys"
PENDING_ANCHOR = "anchor.pending"


@dataclass(frozen=True, slots=True)
class ServerDirectory:
    """The working directory of one security server and how its stores are opened."""

    path: Path
    database_url: str | None = None
    """``[database] url``: the configuration store in that PostgreSQL database instead of the SQLite file."""

    @property
    def db_path(self) -> Path:
        """The SQLite configuration database (also the marker that the server was initialised)."""
        return self.path / DB_NAME

    @property
    def keys_path(self) -> Path:
        """The soft token's folder."""
        return self.path / KEYS_DIR

    @property
    def pending_anchor_path(self) -> Path:
        """Where the initial anchor waits for ``initialization``."""
        return self.path / PENDING_ANCHOR

    def is_initialised(self) -> bool:
        """Whether ``init`` has created the configuration database here (or, with a database URL, in it)."""
        if self.database_url:
            # A clustered node: the shared database says, not a file (issue 19, docs/clustering.md).
            with ServerConfStore(self.db_path, database_url=self.database_url) as store:
                return store.is_initialised()
        return self.db_path.is_file()

    def _require(self) -> None:
        if not self.is_initialised():
            raise ServerConfError(f"no security server in {self.path} (run `fedbus server init --dir {self.path}` first)")

    def open_store(self) -> ServerConfStore:
        """Open the configuration store; :class:`ServerConfError` when the server was never initialised."""
        self._require()
        return ServerConfStore(self.db_path, database_url=self.database_url)

    def snapshot(self) -> ServerConfSnapshot:
        """The whole configuration, read in one transaction."""
        with self.open_store() as store:
            return store.snapshot()

    def soft_token(self) -> SoftToken:
        """The soft token of an initialised server."""
        self._require()
        return SoftToken(self.keys_path)

    def tokens(self, config: LayeredConfig) -> TokenSet:
        """The soft token and the ``[pkcs11:NAME]`` tokens of ``config``."""
        self._require()
        return open_tokens(self.keys_path, config)
