"""Loopback sites for the adapter tests: serve a resource, and wait until its connections are closed.

The consumer adapters are synchronous (requests, in a thread); when they close their session the server side
learns of it on a later reactor turn. Trial checks for open connections right after a test, so tear-downs wait
(bounded) for the server's HTTP channels to go.
"""

from __future__ import annotations

import time
from typing import Any

from twisted.internet import defer, task
from twisted.internet import reactor as global_reactor
from twisted.web import http
from twisted.web.resource import Resource
from twisted.web.server import Site

reactor: Any = global_reactor


def listen(resource: Resource) -> Any:
    """Listen on 127.0.0.1, a free port; returns the listening port."""
    site = Site(resource)  # type: ignore[no-untyped-call]
    site.noisy = False
    return reactor.listenTCP(0, site, interface="127.0.0.1")


def open_http_channels() -> list[Any]:
    """Server-side HTTP connections the reactor still reads from (Twisted's channel wrapper, or a channel itself such
    as the proxies' GuardedChannel)."""
    channels = (http._GenericHTTPChannelProtocol, http.HTTPChannel)
    return [r for r in reactor.getReaders() if isinstance(getattr(r, "protocol", None), channels)]


@defer.inlineCallbacks
def connections_closed(timeout: float = 10.0) -> Any:
    """Wait until no server-side HTTP connection is open (at most ``timeout`` seconds); then drop stragglers."""
    deadline = time.monotonic() + timeout
    while open_http_channels() and time.monotonic() < deadline:
        yield task.deferLater(reactor, 0.02, lambda: None)
    for reader in open_http_channels():
        reader.loseConnection()
    if open_http_channels():
        yield task.deferLater(reactor, 0.02, lambda: None)
