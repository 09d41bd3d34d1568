"""Loopback for trial tests on the real reactor: serve a Resource on 127.0.0.1, talk plain HTTP to it, pick a port."""

from __future__ import annotations

import functools
import socket
from dataclasses import dataclass
from datetime import datetime, timezone
from io import BytesIO
from typing import Any, Callable, Coroutine, TypeVar

from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.web.client import Agent, FileBodyProducer, readBody
from twisted.web.http_headers import Headers
from twisted.web.resource import Resource
from twisted.web.server import Site

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
