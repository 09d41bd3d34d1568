"""Loopback for trial tests on the real reactor: serve a Resource on 127.0.0.1, talk plain HTTP to it, pick a port,
watch connections open and close, and run a client's timers on a fake clock while its sockets stay real."""

from __future__ import annotations

import functools
import socket
from dataclasses import dataclass
from datetime import datetime, timezone
from io import BytesIO
from typing import Any, Callable, Coroutine, TypeVar

from twisted.internet import reactor
from twisted.internet import task
from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IReactorPluggableNameResolver, IReactorTCP, IReactorTime
from twisted.internet.protocol import ClientFactory, Factory, connectionDone
from twisted.protocols.policies import ProtocolWrapper, WrappingFactory
from twisted.python.failure import Failure
from twisted.web.client import Agent, FileBodyProducer, readBody
from twisted.web.http_headers import Headers
from twisted.web.resource import Resource
from twisted.web.server import Site
from zope.interface import implementer

REACTOR: Any = reactor
"""The global reactor, typed loosely: Twisted's zope interfaces do not type-check method by method."""

T = TypeVar("T")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now (for servers that must be told their port first)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def now() -> datetime:
    """The reactor's time."""
    return datetime.fromtimestamp(REACTOR.seconds(), tz=timezone.utc)


@dataclass(frozen=True)
class Served:
    """A listening loopback site: its port object and its base URL."""

    port: Any
    url: str


def serve(resource: Resource) -> Served:
    """Listen on 127.0.0.1, a free port; stop it with ``served.port.stopListening()``."""
    port = REACTOR.listenTCP(0, Site(resource), interface="127.0.0.1")  # type: ignore[no-untyped-call]
    return Served(port, f"http://127.0.0.1:{port.getHost().port}/")


@dataclass(frozen=True)
class Reply:
    """An HTTP answer: status code, content type and body."""

    code: int
    content_type: bytes
    body: bytes


async def http(method: bytes, url: str, body: bytes | None = None, content_type: bytes | None = None) -> Reply:
    """Send one request with a fresh Agent and read the whole answer."""
    agent: Any = Agent(REACTOR)  # type: ignore[no-untyped-call]
    headers = Headers({b"content-type": [content_type]} if content_type else {})
    producer = FileBodyProducer(BytesIO(body)) if body is not None else None  # type: ignore[no-untyped-call]
    response = await agent.request(method, url.encode("ascii"), headers, producer)
    data = await readBody(response)
    kind = response.headers.getRawHeaders(b"content-type", [b""])[0]
    return Reply(response.code, kind, data)


def coroutine_test(test: Callable[[T], Coroutine[Any, Any, None]]) -> Callable[[T], Deferred[None]]:
    """Run an ``async def`` trial test method as a Deferred (trial waits for it)."""

    @functools.wraps(test)
    def run(self: T) -> Deferred[None]:
        return Deferred.fromCoroutine(test(self))

    return run


# --- watching connections, without polling -------------------------------------------------------------------


class ConnectionWatch:
    """The connections of one side (a server, or a client's reactor): how many were made, which are open, how many
    plaintext bytes they received; and Deferreds that fire when the number open falls, so a test waits on the
    event itself rather than on the clock (a wait that never ends is bounded by the trial test's timeout)."""

    def __init__(self) -> None:
        self.connections = 0
        self.bytes_received = 0
        self.open: list[Any] = []
        """The open connections (their ``transport`` is the real one)."""
        self._waiters: list[tuple[int, Deferred[None]]] = []

    def factory(self, wrapped: Any) -> WrappingFactory:
        """``wrapped`` with its connections watched (listen or connect with what this returns)."""
        return _WatchingFactory(self, wrapped)

    def open_at_most(self, count: int) -> Deferred[None]:
        """Fires once at most ``count`` connections are open (at once if that holds already)."""
        if len(self.open) <= count:
            return succeed(None)
        waiter: Deferred[None] = Deferred()
        self._waiters.append((count, waiter))
        return waiter

    def closed(self) -> Deferred[None]:
        """Fires once no connection is open."""
        return self.open_at_most(0)

    def _made(self, protocol: ProtocolWrapper) -> None:
        self.connections += 1
        self.open.append(protocol)

    def _lost(self, protocol: ProtocolWrapper) -> None:
        if protocol in self.open:
            self.open.remove(protocol)
        due = [waiter for count, waiter in self._waiters if len(self.open) <= count]
        self._waiters = [(count, waiter) for count, waiter in self._waiters if waiter not in due]
        for waiter in due:
            waiter.callback(None)


class _WatchedProtocol(ProtocolWrapper):
    def makeConnection(self, transport: Any) -> None:  # noqa: N802  # Twisted's name
        factory: Any = self.factory
        factory.watch._made(self)
        super().makeConnection(transport)  # type: ignore[no-untyped-call]

    def dataReceived(self, data: bytes) -> None:  # noqa: N802
        factory: Any = self.factory
        factory.watch.bytes_received += len(data)
        super().dataReceived(data)  # type: ignore[no-untyped-call]

    def connectionLost(self, reason: Failure = connectionDone) -> None:  # noqa: N802
        super().connectionLost(reason)  # type: ignore[no-untyped-call]  # the wrapped protocol has seen it first
        factory: Any = self.factory
        factory.watch._lost(self)


class _WatchingFactory(WrappingFactory):
    protocol = _WatchedProtocol

    def __init__(self, watch: ConnectionWatch, wrapped: Any) -> None:
        super().__init__(wrapped)  # type: ignore[no-untyped-call]
        self.watch = watch


@implementer(IReactorTCP, IReactorTime, IReactorPluggableNameResolver)
class ClockedLoopback:
    """A reactor for a client under test: real TCP connections through the global reactor (each watched in
    ``clients``), but timers on ``clock``, a ``task.Clock`` the test advances. It starts at the real reactor's
    time, so certificates and OCSP answers read as valid now."""

    def __init__(self) -> None:
        self.clock = task.Clock()
        self.clock.advance(REACTOR.seconds())
        self.clients = ConnectionWatch()

    @property
    def nameResolver(self) -> Any:  # noqa: N802  # Twisted's name
        """The real reactor's resolver (127.0.0.1 resolves without the network)."""
        return REACTOR.nameResolver

    def installNameResolver(self, resolver: Any) -> Any:  # noqa: N802
        """Not for tests."""
        raise NotImplementedError

    def installResolver(self, resolver: Any) -> Any:  # noqa: N802
        """Not for tests."""
        raise NotImplementedError

    def connectTCP(  # noqa: N802
        self, host: str, port: int, factory: ClientFactory, timeout: float = 30, bindAddress: Any = None
    ) -> Any:
        """Connect through the global reactor, the connection watched."""
        return REACTOR.connectTCP(host, port, self.clients.factory(factory), timeout, bindAddress)

    def listenTCP(self, port: int, factory: Factory, backlog: int = 50, interface: str = "") -> Any:  # noqa: N802
        """Listen through the global reactor."""
        return REACTOR.listenTCP(port, factory, backlog, interface)

    def seconds(self) -> float:
        """The fake clock's time."""
        return self.clock.seconds()

    def callLater(self, delay: float, callable: Callable[..., Any], *args: Any, **kw: Any) -> Any:  # noqa: N802
        """A timer on the fake clock."""
        return self.clock.callLater(delay, callable, *args, **kw)

    def getDelayedCalls(self) -> Any:  # noqa: N802
        """The fake clock's pending timers."""
        return self.clock.getDelayedCalls()

    def callFromThread(self, callable: Callable[..., Any], *args: Any, **kw: Any) -> None:  # noqa: N802
        """Through the global reactor (thread results come back on the reactor thread)."""
        REACTOR.callFromThread(callable, *args, **kw)

    def getThreadPool(self) -> Any:  # noqa: N802
        """The global reactor's thread pool."""
        return REACTOR.getThreadPool()
