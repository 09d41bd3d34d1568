"""The keep-alive connection pool both lean clients share: the mutual-TLS peer link and the provider client.

Idle connections are kept per key (a peer's address, a service's (host, port)), at most ``max_idle`` of them, the
most recently used handed out first; one unused for ``idle_timeout`` seconds is closed (the client closes before
the server's longer idle timeout, so a kept connection is rarely found closed under it). A connection the other
end closes leaves the pool at once. Opening connections, and what is checked before one is used (the peer link
verifies its peer's certificate), stays with each client.
"""

from __future__ import annotations

from typing import Any, Generic, Hashable, TypeVar

from twisted.internet import defer
from twisted.internet.defer import Deferred

from security_server.proxy.client_connection import ClientConnection

C = TypeVar("C", bound=ClientConnection)


class ConnectionPool(Generic[C]):
    """Open connections by key, the idle ones ready for reuse; see the module docstring."""

    def __init__(self, reactor: Any, *, max_idle: int, idle_timeout: float) -> None:
        if max_idle < 0:
            raise ValueError("max_idle must not be negative")
        self._reactor = reactor
        self._max_idle = max_idle
        self._idle_timeout = idle_timeout
        self._idle: dict[Hashable, list[C]] = {}
        self._connections: set[C] = set()
        self.closed = False
        self.connections_made = 0
        """How many connections have been added (a figure for logs and tests)."""

    @property
    def open_count(self) -> int:
        """How many connections are open, idle or in use (a figure for /metrics)."""
        return len(self._connections)

    def idle_count(self, key: Hashable | None = None) -> int:
        """How many open connections wait for reuse (for ``key``, or in all)."""
        if key is not None:
            return len(self._idle.get(key, ()))
        return sum(len(idle) for idle in self._idle.values())

    def add(self, connection: C) -> None:
        """Keep track of a newly opened connection (it leaves the pool when it is lost)."""
        connection.on_lost = self._lost
        self._connections.add(connection)
        self.connections_made += 1

    def take_idle(self, key: Hashable) -> C | None:
        """The most recently used idle connection for ``key`` that is still open, or None."""
        idle = self._idle.get(key)
        while idle:
            connection = idle.pop()
            if connection.idle_call is not None and connection.idle_call.active():
                connection.idle_call.cancel()
            if connection.open:
                return connection
        return None

    def release(self, connection: C, keep_alive: bool) -> None:
        """Keep ``connection`` for reuse after an answer, or close it (no keep-alive, gone, pool full or closed)."""
        idle = self._idle.setdefault(connection.key, [])
        if self.closed or not keep_alive or not connection.open or len(idle) >= self._max_idle:
            connection.close()
            return
        connection.idle_call = self._reactor.callLater(self._idle_timeout, self._expire, connection)
        idle.append(connection)

    def close(self) -> Deferred[None]:
        """Close every connection (at shutdown); fires when all are gone."""
        self.closed = True
        waits = [connection.close() for connection in list(self._connections)]
        self._idle.clear()
        done: Deferred[None] = defer.gatherResults(waits, consumeErrors=True).addCallback(lambda _: None)
        return done

    def _expire(self, connection: C) -> None:
        idle = self._idle.get(connection.key, [])
        if connection in idle:
            idle.remove(connection)
        connection.close()

    def _lost(self, connection: C) -> None:
        self._connections.discard(connection)
        idle = self._idle.get(connection.key)
        if idle is not None and connection in idle:
            idle.remove(connection)
