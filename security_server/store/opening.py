"""Choosing a store's engine: the one place that decides between the embedded SQLite file and PostgreSQL.

``[database] url`` absent or empty keeps the SQLite file beside the node's other state; a ``postgresql://`` URL
opens that database instead (:mod:`security_server.store.postgresql`, imported only then). The message log never
comes here: it is SQLite on every node.
"""

from __future__ import annotations

from pathlib import Path

from security_server.core.config import DATABASE_URL_SCHEMES, DatabaseConfig, url_without_password
from security_server.core.errors import ConfigurationError
from security_server.store.engine import Database
from security_server.store.sqlite import DEFAULT_BUSY_TIMEOUT, open_sqlite


def open_database(
    url: str | None,
    sqlite_path: str | Path,
    *,
    label: str,
    busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
    shared_between_threads: bool = False,
    setting: str = DatabaseConfig.SETTING,
) -> Database:
    """Open the store's database: SQLite at ``sqlite_path`` when ``url`` is None or empty, else PostgreSQL at ``url``.

    ``busy_timeout`` bounds the wait for another writer's lock on either engine; ``shared_between_threads``
    matters to SQLite only (a PostgreSQL database gives each thread its own pooled connection). ``setting`` is
    what an error about the URL names.
    """
    if not url:
        return open_sqlite(
            sqlite_path, label=label, busy_timeout=busy_timeout, shared_between_threads=shared_between_threads
        )
    scheme = url.partition("://")[0] if "://" in url else ""
    if scheme not in DATABASE_URL_SCHEMES:
        raise ConfigurationError(
            f"{label}: {setting} = {url_without_password(url)!r}: must be a postgresql:// URL"
            " (or empty for the embedded SQLite database)"
        )
    from security_server.store.postgresql import open_postgresql

    return open_postgresql(url, label=label, setting=setting, lock_timeout=busy_timeout)
