"""One configuration store kept open on one worker thread, for what a running security server reads every few seconds.

The running server re-reads its configuration every ``serverconf_poll_seconds`` (so that CLI and management API
changes apply without a restart) and the health check reads it too. Opening a store per read would, on
PostgreSQL, build and tear down a connection pool every two seconds; on SQLite a store belongs to the thread
that opened it. So one thread owns one store for the server's life: :meth:`ServerConfReader.run` calls a
function with it there. The store is opened on first use (a database that is down at that moment is opened again
at the next call) and closed on that thread when the service stops.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, TypeVar

from twisted.application.service import Service
from twisted.internet.defer import Deferred
from twisted.internet.threads import deferToThreadPool
from twisted.python.threadpool import ThreadPool

from security_server.serverconf.store import ServerConfStore

_T = TypeVar("_T")


class ServerConfReader(Service):
    """A :class:`ServerConfStore` opened once, used only from its own worker thread."""

    def __init__(self, reactor: Any, path: Path, *, database_url: str | None = None) -> None:
        self._reactor = reactor
        self._path = path
        self._database_url = database_url
        self._store: ServerConfStore | None = None
        self._pool = ThreadPool(minthreads=1, maxthreads=1, name="fedbus-serverconf")

    def startService(self) -> None:
        """Start the worker thread."""
        super().startService()  # type: ignore[no-untyped-call]  # Twisted leaves it unannotated
        self._pool.start()

    def stopService(self) -> None:
        """Close the store on its thread, then stop the thread (waiting for a read under way)."""
        super().stopService()  # type: ignore[no-untyped-call]  # Twisted leaves it unannotated
        self._pool.callInThread(self._close)
        self._pool.stop()

    def _close(self) -> None:
        if self._store is not None:
            store, self._store = self._store, None
            store.close()

    def _open(self) -> ServerConfStore:
        if self._store is None:
            self._store = ServerConfStore(self._path, database_url=self._database_url)
        return self._store

    def run(self, function: Callable[[ServerConfStore], _T]) -> Deferred[_T]:
        """Call ``function(store)`` on the worker thread; the Deferred fires on the reactor with its result."""
        return deferToThreadPool(self._reactor, self._pool, lambda: function(self._open()))
