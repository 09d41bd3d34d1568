"""The HTTP channel of both proxies' sites: slow clients cut off, oversized heads answered, connections counted.

Twisted's ``HTTPChannel`` has one timer, the idle timeout, and restarts it on every byte, so a client that sends
its head one byte every few seconds is never cut off (issue 22 item 3). :class:`GuardedChannel` adds two timers of
its own, both on the site's reactor:

* the **header timeout**, from the connection (or, on a kept-alive connection, from the first byte of the next
  request) to the end of the head, whatever the pace of the bytes (X-Road: ``*-connector-initial-idle-time``);
* the **body timeout**, restarted by every byte of a request body: a body that makes no progress is cut off.

The idle timeout stays Twisted's own (``timeOut``, set by the site). A timed-out connection is closed, counted by
reason in the site's :class:`~security_server.proxy.connection_limits.PortConnections`, and aborted if it has not
gone :attr:`abortTimeout` seconds later.

Twisted answers a head over its limits with a bare ``400`` and closes (issue 22 item 6). Here the limits are the
site's (``[limits] max-header-bytes`` for the request line, each header line and the whole head;
:data:`MAX_REQUEST_HEADERS` header fields), and a head over them gets ``414 URI Too Long`` (the request line) or
``431 Request Header Fields Too Large`` (the header fields), in the form the caller speaks: the site's
:meth:`~security_server.proxy.bounded_request.BoundedSite.refusal` writes REST error JSON or a SOAP fault
(``client.bad_request``). The channel then stops reading the request, half-closes its side after the answer, and
drops what else comes until the caller closes, so the caller reads the answer rather than a connection reset.
"""

from __future__ import annotations

from typing import Any, Protocol

from twisted.internet.interfaces import ISSLTransport
from twisted.internet.error import ConnectionDone
from twisted.python.failure import Failure
from twisted.web.http import HTTPChannel

from security_server.core.errors import BusError, RequestTooLarge

MAX_REQUEST_HEADERS = 100
"""The most header fields a request may have (Twisted's default is 500); more is 431."""

REASONS = {408: b"Request Timeout", 414: b"URI Too Long", 431: b"Request Header Fields Too Large", 503: b"Service Unavailable"}
"""Reason phrases of the answers written here (RFC 9110 §15.5.9, §15.5.15, RFC 6585 §5, RFC 9110 §15.6.4)."""


class RefusalWriter(Protocol):
    """Writes a whole answer refusing a request before it was read: the site's ``refusal``."""

    def __call__(self, status: int, error: BusError, target: bytes, accept: str | None, *, journal: bool) -> bytes:
        """The bytes of a ``Connection: close`` answer with ``status`` for ``error`` on a request for ``target``."""
        ...


def encode_answer(status: int, headers: list[tuple[str, str]], body: bytes) -> bytes:
    """A complete HTTP/1.1 answer that closes the connection (RFC 9112 §9.6), with ``Content-Length``."""
    lines = [b"HTTP/1.1 %d %s" % (status, REASONS.get(status, b"Error"))]
    lines += [f"{name}: {value}".encode("latin-1") for name, value in headers]
    lines += [b"Content-Length: %d" % len(body), b"Connection: close"]
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


_CONNECTION_DONE = Failure(ConnectionDone())  # type: ignore[no-untyped-call]  # Twisted leaves it unannotated


# Where a connection is in its current request (plain strings: an Enum member lookup costs ~0.1 µs, and these are
# looked at several times per header line).
IDLE = "idle"
"""Between requests on a kept-alive connection (Twisted's idle timeout runs)."""
REQUEST_LINE = "request-line"
HEADERS = "headers"
BODY = "body"
HANDLING = "handling"
"""The request is with the resource; its answer is being made or written."""
REFUSED = "refused"
"""Answered without reading the request; what else comes is dropped."""


class GuardedChannel(HTTPChannel):
    """An ``HTTPChannel`` with header and body timeouts, answered head limits and connection counting (module
    docstring). Its settings come from its site (``site.guard``) when the connection is made."""

    maxHeaders = MAX_REQUEST_HEADERS
    phase: str = REQUEST_LINE
    """One of :data:`IDLE`, :data:`REQUEST_LINE`, :data:`HEADERS`, :data:`BODY`, :data:`HANDLING`, :data:`REFUSED`."""
    _head_call: Any = None
    _body_call: Any = None
    """The timers: ``IDelayedCall`` s of the site's reactor, or None."""
    _accept: bytes | None = None
    """The current request's ``Accept`` header, for the form of a refusal."""
    _header_timeout = 0.0
    _body_timeout = 0.0
    site: Any = None

    def connectionMade(self) -> None:
        """Take the site's limits, count the connection and start the header timer."""
        guard = getattr(self.site, "guard", None)
        if guard is not None:
            self._header_timeout = float(guard.limits.header_timeout_seconds)
            self._body_timeout = float(guard.limits.body_timeout_seconds)
            self.MAX_LENGTH = self.totalHeadersSize = guard.max_head_bytes
            guard.connections.opened(self)
        super().connectionMade()  # type: ignore[no-untyped-call]  # Twisted leaves it unannotated
        self._new_request()
        self._start_head_timer()

    # --- timers ----------------------------------------------------------------------------------------------

    def _later(self, delay: float, function: Any, *args: Any) -> Any:
        """``callLater`` on the site's reactor (Twisted's factory sets it on each channel)."""
        call_later: Any = self.callLater
        return call_later(delay, function, *args)

    def _new_request(self) -> None:
        """A request begins (its head timer is armed by :meth:`_arm_timers` if the head does not come at once)."""
        self.phase = REQUEST_LINE
        self._accept = None
        self._cancel_head_timer()

    def _start_head_timer(self) -> None:
        if self._header_timeout > 0 and self._head_call is None:
            self._head_call = self._later(self._header_timeout, self._too_slow, "header")

    def _arm_timers(self) -> None:
        """After bytes were parsed: a head still incomplete has its timer running; a body still coming has its
        timer restarted (the bytes were progress). A request that came whole in one read costs no timer."""
        if self.phase is REQUEST_LINE or self.phase is HEADERS:
            self._start_head_timer()
        elif self.phase is BODY:
            self._restart_body_timer()

    def _cancel_head_timer(self) -> None:
        if self._head_call is not None and self._head_call.active():
            self._head_call.cancel()
        self._head_call = None

    def _restart_body_timer(self) -> None:
        if self._body_timeout <= 0:
            return
        if self._body_call is not None and self._body_call.active():
            self._body_call.reset(self._body_timeout)
        else:
            self._body_call = self._later(self._body_timeout, self._too_slow, "body")

    def _cancel_body_timer(self) -> None:
        if self._body_call is not None and self._body_call.active():
            self._body_call.cancel()
        self._body_call = None

    def _too_slow(self, reason: str) -> None:
        """Close a connection whose head or body took too long; abort it if it has not gone later."""
        self._head_call = self._body_call = None
        self._count_timeout(reason)
        self._close_slow_connection()

    def _count_timeout(self, reason: str) -> None:
        guard = getattr(self.site, "guard", None)
        if guard is not None:
            guard.connections.timed_out_for(reason)

    def _close_slow_connection(self) -> None:
        if self.abortTimeout is not None and self._abortingCall is None:
            self._abortingCall = self._later(self.abortTimeout, self.forceAbortClient)
        self.loseConnection()  # type: ignore[no-untyped-call]

    def timeoutConnection(self) -> None:
        """Twisted's idle timeout: close, counted as ``idle`` (without Twisted's log line per connection)."""
        self._count_timeout("idle")
        self._close_slow_connection()

    def forceAbortClient(self) -> None:
        """Abort a connection that did not close after its timeout (Twisted's, without its log line)."""
        self._abortingCall = None
        if self.transport is not None:
            self.transport.abortConnection()

    # --- parsing ---------------------------------------------------------------------------------------------

    def dataReceived(self, data: bytes) -> None:
        """Drop bytes after a refusal; time a new request's head from its first byte; count body bytes as progress."""
        if self.phase is REFUSED:
            return
        if self.phase is IDLE and data:
            self._new_request()
        super().dataReceived(data)  # type: ignore[no-untyped-call]
        self._arm_timers()

    def lineReceived(self, line: bytes) -> Any:
        """Refuse a request line or head over the limit (414 / 431); else Twisted's parsing."""
        if self.phase is REFUSED:
            return True
        if self.phase is IDLE:
            self._new_request()
        if self._receivedHeaderSize + len(line) > self.totalHeadersSize:
            return self._refuse_head(line)
        starting = self.phase is REQUEST_LINE
        if not starting and line[:7].lower() == b"accept:":
            self._accept = line[7:].strip(b" \t")  # Twisted files a header line only when the next one comes
        result = super().lineReceived(line)  # type: ignore[no-untyped-call]
        if starting and line and self.phase is REQUEST_LINE:
            self.phase = HEADERS
        return result

    def lineLengthExceeded(self, line: bytes) -> Any:
        """A single line over the limit: 414 for the request line, 431 for a header line."""
        return self._refuse_head(line)

    def headerReceived(self, line: bytes) -> bool:
        """One more header field than :attr:`maxHeaders` is 431; else Twisted's handling."""
        if self.phase is REFUSED:
            return False
        if self._receivedHeaderCount >= self.maxHeaders:
            self._refuse_head(b"")
            return False
        ok: bool = super().headerReceived(line)  # type: ignore[no-untyped-call]
        return ok

    def allHeadersReceived(self) -> None:
        """The head is complete: stop the header timer (a body still to come is timed by :meth:`_arm_timers`)."""
        self._cancel_head_timer()
        super().allHeadersReceived()  # type: ignore[no-untyped-call]
        self.phase = BODY

    def allContentReceived(self) -> None:
        """The request is complete: no timer of ours runs while the resource answers it."""
        self._cancel_body_timer()
        self.phase = HANDLING
        super().allContentReceived()  # type: ignore[no-untyped-call]

    def requestDone(self, request: Any) -> None:
        """After an answer on a kept-alive connection: idle, or a pipelined request's head is timed from now."""
        pipelined = bool(self.persistent and any(self._dataBuffer))  # Twisted may buffer an empty rest
        if self.persistent:
            if pipelined:
                self._new_request()  # Twisted parses the bytes it buffered now
            else:
                self.phase = IDLE
        super().requestDone(request)  # type: ignore[no-untyped-call]
        if pipelined:
            self._arm_timers()

    # --- refusals --------------------------------------------------------------------------------------------

    def _refuse_head(self, line: bytes) -> bool:
        """Answer 414 (still in the request line) or 431, then stop reading (module docstring)."""
        in_request_line = self.phase in (REQUEST_LINE, IDLE)
        if in_request_line:
            parts = line.split(b" ", 2)
            target = parts[1] if len(parts) > 1 else b"/"
            accept = None
            message = f"Request line is longer than {self.totalHeadersSize} bytes"
        else:
            target = getattr(self, "_path", b"/")
            accept = None if self._accept is None else self._accept.decode("latin-1")
            message = (
                f"Request has more than {self.maxHeaders} header fields"
                if self._receivedHeaderCount >= self.maxHeaders
                else f"Request head is longer than {self.totalHeadersSize} bytes"
            )
        status = 414 if in_request_line else 431
        self.refuse(status, RequestTooLarge(message), target, accept)
        return True

    def refuse(self, status: int, error: BusError, target: bytes, accept: str | None) -> None:
        """Answer ``status`` for ``error`` without reading the request further, then close our side."""
        self._cancel_head_timer()
        self._cancel_body_timer()
        self.phase = REFUSED
        self.clearLineBuffer()  # type: ignore[no-untyped-call]
        self.persistent = False
        writer: RefusalWriter | None = getattr(self.site, "refusal", None)
        answer = (
            writer(status, error, target, accept, journal=True)
            if writer is not None
            else encode_answer(status, [("Content-Type", "text/plain")], error.message.encode("utf-8"))
        )
        transport: Any = self.transport
        transport.write(answer)
        if not ISSLTransport.providedBy(transport) and hasattr(transport, "loseWriteConnection"):
            transport.loseWriteConnection()
        # The caller closes once it has read the answer; if it does not, it is cut off after the header timeout.
        if self._abortingCall is None:
            linger = self._header_timeout if self._header_timeout > 0 else float(self.abortTimeout or 15)
            self._abortingCall = self._later(linger, self.forceAbortClient)

    def connectionLost(self, reason: Failure = _CONNECTION_DONE) -> None:
        """Stop the timers and uncount the connection."""
        self._cancel_head_timer()
        self._cancel_body_timer()
        guard = getattr(self.site, "guard", None)
        if guard is not None:
            guard.connections.closed(self)
        super().connectionLost(reason)  # type: ignore[no-untyped-call]
