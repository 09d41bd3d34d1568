"""Reading an HTTP response body with an upper bound, for twisted.web.client responses.

``twisted.web.client.readBody`` reads without limit; a peer that sends more than we accept is cut off as
soon as it passes ``max_bytes``, and the Deferred fails with :class:`RequestTooLarge`.
"""

from __future__ import annotations

from typing import Any

from twisted.internet import defer, protocol
from twisted.python.failure import Failure
from twisted.web.client import PartialDownloadError, ResponseDone
from twisted.web.http import PotentialDataLoss

from security_server.core.errors import IoError, RequestTooLarge


class _BoundedCollector(protocol.Protocol):
    def __init__(self, finished: defer.Deferred[bytes], max_bytes: int) -> None:
        self.finished = finished
        self.max_bytes = max_bytes
        self.chunks: list[bytes] = []
        self.size = 0
        self.cut = False

    def dataReceived(self, data: bytes) -> None:
        if self.cut:
            return
        self.size += len(data)
        if self.size > self.max_bytes:
            self.cut = True
            self.chunks = []
            if self.transport is not None:
                self.transport.stopProducing()
            self.finished.errback(RequestTooLarge(f"response body is larger than {self.max_bytes} bytes"))
            return
        self.chunks.append(data)

    def connectionLost(self, reason: Failure = protocol.connectionDone) -> None:
        if self.cut:
            return
        if isinstance(reason.value, (ResponseDone, PotentialDataLoss)):
            self.finished.callback(b"".join(self.chunks))
        elif isinstance(reason.value, PartialDownloadError):
            self.finished.errback(IoError("response body was cut short"))
        else:
            self.finished.errback(IoError("response body could not be read", reason=str(reason.value)))


def read_body(response: Any, max_bytes: int) -> defer.Deferred[bytes]:
    """Collect ``response``'s body, failing with :class:`RequestTooLarge` past ``max_bytes``."""
    length = getattr(response, "length", None)
    if isinstance(length, int) and length > max_bytes:
        response.deliverBody(protocol.Protocol())  # discard; the connection is closed by the pool
        return defer.fail(RequestTooLarge(f"response body is larger than {max_bytes} bytes"))
    finished: defer.Deferred[bytes] = defer.Deferred()
    response.deliverBody(_BoundedCollector(finished, max_bytes))
    return finished
