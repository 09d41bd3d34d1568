"""How many connections one proxy port serves at once, and what a connection over that number is told.

A port keeps a :class:`PortConnections`: the channels open on it, how many connections it refused and how many it
closed for being too slow (header, body or idle timeout). When the cap (``[proxy] <side>-max-connections``) is
reached, the site builds a :class:`RefusingProtocol` instead of an HTTP channel: it reads the request line (to know
whether the caller speaks REST or SOAP), answers ``503 Service Unavailable`` in X-Road's form (REST error JSON with
``X-Road-Error``, or a SOAP fault) with ``Connection: close``, stops writing, and drops whatever else the caller sends
until the caller closes or :data:`REFUSAL_LINGER_SECONDS` pass. Answering before reading the whole request and then
closing at once would make the kernel reset the connection over the unread bytes, and the caller would often see
the reset instead of the 503; a caller told 503 can retry later. The refused connections are few and short-lived,
so they are not counted against the cap.

The cap of 0 means "a quarter of the process's file-descriptor limit" (:func:`resolve_max_connections`): the two
proxy ports then take half of the descriptors at most, and the peer connections, provider calls, message log and
configuration files keep the other half, so a flood of idle connections cannot starve the server of descriptors.
"""

from __future__ import annotations

import ctypes
import resource
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

import structlog
from twisted.internet.error import ConnectionDone
from twisted.internet.interfaces import ISSLTransport
from twisted.internet.protocol import Protocol
from twisted.python.failure import Failure

from security_server.core.errors import BusError, Origin, ServerFault

if TYPE_CHECKING:
    from security_server.proxy.guarded_channel import RefusalWriter

log = structlog.get_logger(__name__)

REFUSAL_LINGER_SECONDS = 5.0
"""How long a refused connection is kept to deliver its 503 before it is aborted."""

MAX_REFUSAL_READ = 8 * 1024
"""How much of a refused request is looked at (for its request line) before it is answered anyway."""

MAX_AUTO_CONNECTIONS = 16384
"""The cap taken when the descriptor limit is unlimited."""

TIMEOUT_REASONS = ("header", "body", "idle")
"""Why a connection was closed for being too slow."""


_CONNECTION_DONE = Failure(ConnectionDone())  # type: ignore[no-untyped-call]  # Twisted leaves it unannotated


class ConnectionLimitReached(ServerFault):
    """The port already serves as many connections as it may (``[proxy] <side>-max-connections``): try later."""

    code = "internal_error"
    http_status = 503


def resolve_max_connections(setting: int, *, nofile: Callable[[], tuple[int, int]] | None = None) -> int:
    """The cap for a port: ``setting``, or for 0 a quarter of the soft ``RLIMIT_NOFILE`` (at least 1)."""
    if setting > 0:
        return setting
    soft, _ = (nofile or (lambda: resource.getrlimit(resource.RLIMIT_NOFILE)))()
    if soft == resource.RLIM_INFINITY or soft <= 0:
        return MAX_AUTO_CONNECTIONS
    return max(1, min(MAX_AUTO_CONNECTIONS, soft // 4))


TRIM_AFTER_CLOSED = 512
"""How many connections must have closed since the last trim before the heap is trimmed again."""

TRIM_DELAY_SECONDS = 5.0
"""How long after that the trim runs (one trim for the end of a flood, not one per closed connection)."""


def _malloc_trim() -> bool:
    """Give the C heap's free pages back to the system (glibc's ``malloc_trim(0)``); False where there is none."""
    try:
        trim = ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return False
    return bool(trim(0))


class HeapTrimmer:
    """Hands the memory of a connection flood back to the system once the flood has gone (issue 22 item 5).

    tracemalloc shows that what 2,000 idle connections cost on the Python heap (about 3 KB each: the channel, its
    transport, the TLS state's wrappers) is freed when they close; the resident size stays up because the C
    allocator keeps the freed pages (about 29 KB a connection with OpenSSL's buffers) for reuse, and ``malloc_trim``
    returns them (bench/connection_flood_memory.py). So once :data:`TRIM_AFTER_CLOSED` connections have closed since
    the last trim, a trim runs :data:`TRIM_DELAY_SECONDS` later, on the reactor (a few milliseconds).
    """

    def __init__(self, call_later: Callable[..., Any], trim: Callable[[], bool] = _malloc_trim) -> None:
        self._call_later = call_later
        self._trim = trim
        self._closed = 0
        self._pending: Any = None
        self.trims = 0
        """How many trims ran."""

    def connection_closed(self) -> None:
        """Count a closed connection; schedule a trim once enough have closed."""
        self._closed += 1
        if self._closed >= TRIM_AFTER_CLOSED and self._pending is None:
            self._pending = self._call_later(TRIM_DELAY_SECONDS, self._run)

    def _run(self) -> None:
        self._pending = None
        self._closed = 0
        self.trims += 1
        released = self._trim()
        log.info("heap_trimmed_after_connections", released=released)

    def stop(self) -> None:
        """Cancel a pending trim."""
        if self._pending is not None and self._pending.active():
            self._pending.cancel()
        self._pending = None


@dataclass(eq=False)
class PortConnections:
    """The connections of one proxy port: those open (the channels themselves), and counts of the refused and the
    timed out. Read by ``/metrics`` (``fedbus_proxy_connections_open``, ``..._refused_total``, ``..._timed_out_total``)."""

    max_connections: int
    trimmer: HeapTrimmer | None = None
    """Told of every closed connection, to release a flood's memory once it has gone."""
    open: set[Any] = field(default_factory=set)
    refused: int = 0
    timed_out: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TIMEOUT_REASONS, 0))
    at_cap: bool = False

    def __post_init__(self) -> None:
        if self.max_connections <= 0:
            raise ValueError("max_connections must be positive (resolve 0 with resolve_max_connections)")

    @property
    def full(self) -> bool:
        """Whether a new connection must be refused."""
        return len(self.open) >= self.max_connections

    def opened(self, channel: Any) -> None:
        """A channel's connection was made."""
        self.open.add(channel)

    def closed(self, channel: Any) -> None:
        """A channel's connection was lost."""
        self.open.discard(channel)
        if self.trimmer is not None:
            self.trimmer.connection_closed()
        if self.at_cap and not self.full:
            self.at_cap = False
            log.info("proxy_connections_below_cap", open=len(self.open), cap=self.max_connections)

    def refusing(self) -> None:
        """A connection is refused: count it, and log once each time the cap is reached (not once per refusal)."""
        self.refused += 1
        if not self.at_cap:
            self.at_cap = True
            log.warning("proxy_connection_cap_reached", open=len(self.open), cap=self.max_connections)

    def timed_out_for(self, reason: str) -> None:
        """A connection was closed for being too slow (``header``, ``body`` or ``idle``)."""
        self.timed_out[reason] = self.timed_out.get(reason, 0) + 1


class RefusingProtocol(Protocol):
    """What a connection over the cap gets: a 503 in X-Road's form, then the door closed (module docstring)."""

    def __init__(self, answer: RefusalWriter, origin: Origin, call_later: Callable[..., Any]) -> None:
        self._answer = answer
        self._origin = origin
        self._call_later = call_later
        self._head = b""
        self._answered = False
        self._abort_call: Any = None
        """An ``IDelayedCall`` of the site's reactor, or None."""

    def connectionMade(self) -> None:
        """Wait briefly for the request line; the connection is aborted after :data:`REFUSAL_LINGER_SECONDS`."""
        self._abort_call = self._call_later(REFUSAL_LINGER_SECONDS, self._abort)

    def dataReceived(self, data: bytes) -> None:
        """Take the request line, then answer; anything after it is dropped."""
        if self._answered:
            return
        self._head += data[: MAX_REFUSAL_READ - len(self._head)]
        line, found, _ = self._head.partition(b"\r\n")
        if found or len(self._head) >= MAX_REFUSAL_READ:
            self._refuse(line)

    def _refuse(self, request_line: bytes) -> None:
        self._answered = True
        parts = request_line.split(b" ")
        target = parts[1] if len(parts) > 1 else b"/"
        error: BusError = ConnectionLimitReached("Too many open connections, try again later", origin=self._origin)
        transport: Any = self.transport
        transport.write(self._answer(503, error, target, None, journal=False))
        if not ISSLTransport.providedBy(transport) and hasattr(transport, "loseWriteConnection"):
            transport.loseWriteConnection()  # the caller reads the 503 to its end, then closes; we drop what it sends

    def _abort(self) -> None:
        self._abort_call = None
        transport: Any = self.transport
        if transport is not None:
            transport.abortConnection()

    def connectionLost(self, reason: Failure = _CONNECTION_DONE) -> None:
        """Stop the abort timer."""
        if self._abort_call is not None and self._abort_call.active():
            self._abort_call.cancel()
        self._abort_call = None
