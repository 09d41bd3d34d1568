"""The keep-alive pool both lean clients share: idle connections per key, newest first, bounded, expired, closed."""

from __future__ import annotations

from twisted.internet.defer import Deferred, succeed
from twisted.internet.task import Clock

from security_server.proxy.client_connection import ClientConnection
from security_server.proxy.connection_pool import ConnectionPool


class FakeConnection(ClientConnection):
    """An open connection without a transport; closing it loses it at once."""

    def __init__(self, key: str) -> None:
        super().__init__(key, 1024)
        self.open = True
        self.closed = 0

    def close(self) -> Deferred[None]:
        """Count the close and go, as a real connection does once its transport is gone."""
        self.closed += 1
        self.open = False
        self._gone()
        return succeed(None)


def pool(clock: Clock, max_idle: int = 2) -> ConnectionPool[FakeConnection]:
    """A pool on ``clock`` keeping ``max_idle`` connections a key, for 30 s."""
    return ConnectionPool(clock, max_idle=max_idle, idle_timeout=30.0)


def opened(connections: ConnectionPool[FakeConnection], key: str) -> FakeConnection:
    """A new connection for ``key``, added to the pool."""
    connection = FakeConnection(key)
    connections.add(connection)
    return connection


def test_the_newest_idle_connection_of_a_key_is_reused() -> None:
    """Released connections wait per key; the last released is handed out first, another key gets none."""
    connections = pool(Clock())
    first, second = opened(connections, "a"), opened(connections, "a")
    connections.release(first, keep_alive=True)
    connections.release(second, keep_alive=True)
    assert connections.take_idle("b") is None
    assert connections.take_idle("a") is second
    assert connections.idle_count("a") == 1 and connections.connections_made == 2


def test_a_connection_without_keep_alive_or_beyond_the_limit_is_closed() -> None:
    """No keep-alive, or more idle than max_idle for the key: the connection is closed, not kept."""
    connections = pool(Clock(), max_idle=1)
    kept, extra, once = opened(connections, "a"), opened(connections, "a"), opened(connections, "a")
    connections.release(kept, keep_alive=True)
    connections.release(extra, keep_alive=True)
    connections.release(once, keep_alive=False)
    assert (kept.closed, extra.closed, once.closed) == (0, 1, 1)
    assert connections.idle_count() == 1


def test_an_idle_connection_expires_after_the_idle_timeout() -> None:
    """A connection unused for idle_timeout seconds is closed and leaves the pool; reuse stops its timer."""
    clock = Clock()
    connections = pool(clock)
    expiring, reused = opened(connections, "a"), opened(connections, "b")
    connections.release(expiring, keep_alive=True)
    connections.release(reused, keep_alive=True)
    clock.advance(10)
    assert connections.take_idle("b") is reused
    clock.advance(20)
    assert expiring.closed == 1 and connections.idle_count() == 0
    assert reused.closed == 0


def test_a_connection_lost_while_idle_leaves_the_pool() -> None:
    """A kept connection that the other end closes is never handed out."""
    connections = pool(Clock())
    connection = opened(connections, "a")
    connections.release(connection, keep_alive=True)
    connection.open = False
    connection._gone()
    assert connections.idle_count() == 0 and connections.take_idle("a") is None


def test_close_closes_every_connection_and_keeps_none_after() -> None:
    """close() closes idle and busy connections; a connection released afterwards is closed too."""
    connections = pool(Clock())
    idle, busy = opened(connections, "a"), opened(connections, "a")
    connections.release(idle, keep_alive=True)
    done: list[None] = []
    connections.close().addCallback(done.append)
    assert done == [None] and (idle.closed, busy.closed) == (1, 1)
    late = opened(connections, "a")
    connections.release(late, keep_alive=True)
    assert late.closed == 1 and connections.closed
