"""The request class of both proxies' HTTP sites: a body kept in memory up to the site's limit, never a form.

Twisted buffers a request body before the resource sees it; :class:`BoundedRequest` keeps that buffer bounded
(SECURITY-CASES.md: "read stops at the limit"): it never spills to a temporary file, drops the body once it is
over the limit (declared by ``Content-Length`` or counted as chunks arrive), and cuts the connection off once the
peer has sent twice the limit, so an endless body costs nothing. The resource then answers 413 for a body it was
told is too large (``body_too_large``) when the request completes. It also skips Twisted's parsing of form bodies
(through the ``email`` package, about 0.4 ms a request): the proxies forward bodies, never read them as forms.

:class:`BoundedSite` also guards the connections (issue 22 items 3 and 6): its channels are
:class:`~security_server.proxy.guarded_channel.GuardedChannel` s (header, body and idle timeouts; a head over
``[limits] max-header-bytes`` answered 414 or 431), it counts them in a
:class:`~security_server.proxy.connection_limits.PortConnections`, and past its cap it answers 503
(:class:`~security_server.proxy.connection_limits.RefusingProtocol`). How a refusal is written (REST error JSON or a
SOAP fault) is the proxy's own site's :meth:`BoundedSite.refusal`.
"""

from __future__ import annotations

from dataclasses import dataclass
from io import BytesIO
from typing import Any

import structlog
from twisted.internet.interfaces import IAddress
from twisted.web.resource import Resource
from twisted.web.server import Request, Site

from security_server.core.config import ConnectionLimits, MessageLimits
from security_server.core.errors import BusError, Origin
from security_server.core.soap import FAULT_ANSWER_CONTENT_TYPE
from security_server.proxy.connection_limits import HeapTrimmer, PortConnections, RefusingProtocol, resolve_max_connections
from security_server.proxy.guarded_channel import GuardedChannel, encode_answer

DEFAULT_MAX_BODY_BYTES = 10 * 1024 * 1024
"""SECURITY-CASES.md: a 10 MiB body limit unless configured otherwise."""

log = structlog.get_logger(__name__)


class BoundedRequest(Request):
    """A request whose body is kept in memory up to its site's ``max_body_bytes``; see the module docstring."""

    body_too_large = False
    _received = 0
    _parsePOSTFormSubmission = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[no-untyped-call]  # Twisted leaves it unannotated
        # Newer Twisted copies the site's setting onto the request in __init__; either way, never parse forms.
        self._parsePOSTFormSubmission = False

    def _site_setting(self, name: str, default: Any) -> Any:
        return getattr(getattr(self.channel, "site", None), name, default)

    def _limit(self) -> int:
        return int(self._site_setting("max_body_bytes", DEFAULT_MAX_BODY_BYTES))

    def gotLength(self, length: int | None) -> None:
        """Start an in-memory body (never a temporary file) and note a declared length over the limit."""
        self.content = BytesIO()
        self._received = 0
        self.body_too_large = length is not None and length > self._limit()

    def handleContentChunk(self, data: bytes) -> None:
        """Keep the body up to the limit; past it, drop it, and cut the connection off once twice the limit came."""
        self._received += len(data)
        limit = self._limit()
        if self._received > limit and not self.body_too_large:
            self.body_too_large = True
            self.content = BytesIO()
        if self.body_too_large:
            if self._received > 2 * limit:
                log.warning(self._site_setting("aborted_event", "request_body_aborted"), received=self._received, limit=limit)
                transport = getattr(self.channel, "transport", None)
                if transport is not None:
                    transport.abortConnection()
            return
        content: Any = self.content
        content.write(data)


@dataclass(frozen=True, slots=True)
class SiteGuard:
    """What a :class:`BoundedSite`'s channels read when their connection is made: the port's timeouts and cap, the
    head limit, and the port's connection count."""

    limits: ConnectionLimits
    max_head_bytes: int
    connections: PortConnections


class BoundedSite(Site):
    """A Site whose requests are :class:`BoundedRequest` s with ``max_body_bytes`` and whose channels are guarded
    (module docstring), without Twisted's access log (the proxies write one structlog summary per exchange) or
    tracebacks in answers."""

    displayTracebacks = False
    requestFactory = BoundedRequest
    protocol = GuardedChannel  # type: ignore[assignment]  # a channel of our own, not Twisted's HTTP/2-capable wrapper
    aborted_event = "request_body_aborted"
    """The event logged when a connection is cut off for an endless body."""
    origin = Origin.SERVER
    """Who reports the faults this site writes itself (a refusal past the connection cap)."""

    def __init__(
        self,
        resource: Resource,
        *,
        max_body_bytes: int,
        connections: ConnectionLimits = ConnectionLimits(),
        max_head_bytes: int = MessageLimits().max_header_bytes,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("timeout", connections.idle_timeout_seconds or None)
        super().__init__(resource, **kwargs)  # type: ignore[no-untyped-call]  # Twisted leaves it unannotated
        self.max_body_bytes = max_body_bytes
        trimmer = HeapTrimmer(self.reactor.callLater)
        self.guard = SiteGuard(
            connections, max_head_bytes, PortConnections(resolve_max_connections(connections.max_connections), trimmer)
        )

    def buildProtocol(self, addr: IAddress | None) -> Any:
        """A guarded channel, or past the cap a :class:`RefusingProtocol` (counted as refused)."""
        if self.guard.connections.full:
            self.guard.connections.refusing()
            refusing = RefusingProtocol(self.refusal, self.origin, self.reactor.callLater)
            refusing.factory = self
            return refusing
        return super().buildProtocol(addr)  # type: ignore[no-untyped-call]  # Twisted leaves it unannotated

    def refusal(self, status: int, error: BusError, target: bytes, accept: str | None, *, journal: bool) -> bytes:
        """The whole answer refusing a request before it was read: ``status`` with ``error`` as X-Road's SOAP fault
        (HTTP ``status``, ``text/xml``, empty ``SOAPAction``). A proxy's site writes REST callers' refusals as
        error JSON; ``journal`` says whether the refusal is an exchange worth summarising (an oversized head) or
        one of a flood (past the connection cap), which is only counted."""
        body = error.to_soap_fault()
        return encode_answer(status, [("Content-Type", FAULT_ANSWER_CONTENT_TYPE), ("SOAPAction", "")], body)

    def stopFactory(self) -> None:
        """The port stopped listening: no trim is left pending."""
        if self.guard.connections.trimmer is not None:
            self.guard.connections.trimmer.stop()
        super().stopFactory()

    def log(self, request: Any) -> None:
        """No per-request access log line."""
