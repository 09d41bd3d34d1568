"""One pooled HTTP/1.1 client connection carrying one request at a time: the protocol both lean clients share.

The mutual-TLS link between security servers (security_server/proxy/mtls.py) and the provider client
(security_server/proxy/provider_client.py) keep connections in one kind of pool (proxy/connection_pool.py) and
write a whole request (http1.encode_post) on one at a time
(no pipelining, RFC 9112 §9.3.2); the answer is read with :class:`~security_server.proxy.http1.ResponseParser`.
Bytes arriving on an idle connection make it unusable; a connection that goes while an answer is awaited
completes a close-delimited answer or fails the wait. Subclasses say who answers (for the errors) and add what
their transport needs (the TLS handshake of the link).
"""

from __future__ import annotations

from typing import Any, Hashable

from twisted.internet import defer
from twisted.internet.defer import Deferred
from twisted.internet.protocol import Protocol, connectionDone
from twisted.python.failure import Failure

from security_server.core.errors import BusError, IoError, Origin
from security_server.proxy.http1 import RawResponse, ResponseParser


class ClientConnection(Protocol):
    """One client connection; :meth:`exchange` writes a request and fires with its parsed response."""

    origin: Origin = Origin.CLIENT_PROXY
    """Where errors about this connection's answers come from."""
    who: str = "peer"
    """Who answers, as the parser's error messages name it."""

    def __init__(self, key: Hashable, max_response_bytes: int) -> None:
        self.key = key
        """Where this connection goes, as its pool knows it (a peer's address, a service's (host, port))."""
        self.max_response_bytes = max_response_bytes
        self.open = False
        self.idle_call: Any = None
        """The pool's timer that closes this connection when it has been idle too long."""
        self.on_lost: Any = None
        """Called with this connection once it is gone (the pool forgets it)."""
        self._lost = False
        self._lost_waiters: list[Deferred[None]] = []
        self._response: Deferred[RawResponse] | None = None
        self._parser: ResponseParser | None = None
        self._received_any = False

    # hooks

    def _unusable(self) -> BusError:
        """The error for a request offered to a connection that cannot carry it."""
        return IoError(f"{self.who} connection is not usable", origin=self.origin)

    def _cut_short(self, error: BusError, reason: Failure) -> BusError:
        """The error for an answer the connection's end cut short (``error`` says how far it got)."""
        return error

    # transport events

    def dataReceived(self, data: bytes) -> None:
        """Feed the response parser; bytes on an idle connection make it unusable."""
        if self._response is None or self._parser is None:
            self.abort()
            return
        self._received_any = True
        try:
            done = self._parser.feed(data)
        except BusError as err:
            self._fail(err)
            self.abort()
            return
        if done is not None:
            response, self._response, self._parser = self._response, None, None
            response.callback(done)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        """Complete a close-delimited answer or fail a cut-short one, and tell the pool."""
        self.open = False
        self._lost = True
        if self._response is not None and self._parser is not None:
            parser = self._parser
            try:
                done = parser.finish_on_close()
            except BusError as err:
                self._fail(self._cut_short(err, reason))
            else:
                response, self._response, self._parser = self._response, None, None
                response.callback(done)
        self._gone()

    def _gone(self) -> None:
        """Stop the idle timer, tell the pool, and fire whoever waits for the close."""
        if self.idle_call is not None and self.idle_call.active():
            self.idle_call.cancel()
        if self.on_lost is not None:
            self.on_lost(self)
        waiters, self._lost_waiters = self._lost_waiters, []
        for waiter in waiters:
            waiter.callback(None)

    # pool operations

    def _fail(self, error: BusError) -> None:
        if self._response is not None:
            response, self._response, self._parser = self._response, None, None
            response.errback(error)

    def exchange(self, data: bytes) -> Deferred[RawResponse]:
        """Write one request and deliver its response (cancelling aborts the connection)."""
        if not self.open or self._response is not None:
            return defer.fail(self._unusable())

        def cancel(_: Deferred[RawResponse]) -> None:
            self._response = self._parser = None
            self.abort()

        self._response = Deferred(cancel)
        self._parser = ResponseParser(self.max_response_bytes, origin=self.origin, who=self.who)
        self._received_any = False
        transport: Any = self.transport
        transport.write(data)
        return self._response

    def close(self) -> Deferred[None]:
        """Close gracefully (for TLS with close_notify); fires once the connection is gone."""
        self.open = False
        if self._lost:
            return defer.succeed(None)
        waiter: Deferred[None] = Deferred()
        self._lost_waiters.append(waiter)
        transport: Any = self.transport
        if transport is not None:
            transport.loseConnection()
        return waiter

    def abort(self) -> None:
        """Drop the connection at once."""
        self.open = False
        transport: Any = self.transport
        if transport is not None and not self._lost:
            transport.abortConnection()
