"""Reading an HTTP response body with an upper bound, for twisted.web.client responses.

``twisted.web.client.readBody`` reads without limit, so a hostile or broken server that streams without end
exhausts our memory. :func:`read_body` keeps at most ``max_bytes``: the moment a server sends more, the
connection is dropped, what was kept is released, and the Deferred fails with :class:`BodyTooLarge`.
Cancelling the Deferred (a timeout) drops the connection too. The errors here are plain exceptions: callers
(:mod:`security_server.edge.http_fetch`) turn them into a :class:`~security_server.core.errors.BusError`
that names the server and the URL.
"""

from __future__ import annotations

from typing import Any

from twisted.internet import defer, protocol
from twisted.python.failure import Failure
from twisted.web.client import PartialDownloadError, ResponseDone
from twisted.web.http import PotentialDataLoss


class BodyTooLarge(Exception):
    """The server sent more than the reader accepts; the connection was dropped."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(f"the body is larger than {max_bytes} bytes")
        self.max_bytes = max_bytes


class BodyCutShort(Exception):
    """The connection ended before the whole body (as announced) arrived, or failed while reading it."""


class _BoundedCollector(protocol.Protocol):
    """Keeps the chunks of one body until it ends or passes the limit; fires ``finished`` exactly once."""

    def __init__(self, max_bytes: int) -> None:
        self.finished: defer.Deferred[bytes] = defer.Deferred(self._cancel)
        self.max_bytes = max_bytes
        self.chunks: list[bytes] = []
        self.size = 0
        self.done = False

    def _stop(self) -> None:
        self.done = True
        self.chunks = []
        if self.transport is not None:
            self.transport.stopProducing()  # a response body's transport: this drops the connection

    def _cancel(self, _: defer.Deferred[bytes]) -> None:
        if not self.done:
            self._stop()  # the Deferred fails with CancelledError on its own

    def dataReceived(self, data: bytes) -> None:
        if self.done:
            return
        self.size += len(data)
        if self.size > self.max_bytes:
            self._stop()
            self.finished.errback(BodyTooLarge(self.max_bytes))
            return
        self.chunks.append(data)

    def connectionLost(self, reason: Failure = protocol.connectionDone) -> None:
        if self.done:
            return
        self.done = True
        body, self.chunks = b"".join(self.chunks), []
        if isinstance(reason.value, (ResponseDone, PotentialDataLoss)):
            self.finished.callback(body)
        elif isinstance(reason.value, PartialDownloadError):
            self.finished.errback(BodyCutShort("the connection ended before the whole body arrived"))
        else:
            self.finished.errback(BodyCutShort(f"the body could not be read: {reason.value!r}"))


class _Discarder(protocol.Protocol):
    """Takes a body we will not read and drops the connection at once (a wrong status, an announced giant)."""

    def makeConnection(self, transport: Any) -> None:
        transport.stopProducing()


def read_body(response: Any, max_bytes: int) -> defer.Deferred[bytes]:
    """Collect ``response``'s body, failing with :class:`BodyTooLarge` as soon as it passes ``max_bytes``."""
    length = getattr(response, "length", None)
    if isinstance(length, int) and length > max_bytes:
        discard_body(response)
        return defer.fail(BodyTooLarge(max_bytes))
    collector = _BoundedCollector(max_bytes)
    response.deliverBody(collector)
    return collector.finished


def discard_body(response: Any) -> None:
    """Drop a response's body unread and close its connection (never read a body we do not want)."""
    response.deliverBody(_Discarder())
