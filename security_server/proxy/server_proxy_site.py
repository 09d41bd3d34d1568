"""The server proxy's HTTP site: where peers' client proxies POST transport messages over mutual TLS.

:class:`ServerProxyResource` takes POST only (else ``server.serverproxy.invalid_http_method``), reads the body up to a
limit (a ``server.serverproxy.bad_request`` fault past it; the connection is cut off for an endless body,
proxy/bounded_request.py), takes the peer's TLS certificate from the
connection and hands both to the :class:`~security_server.proxy.peerlink.ServerProxyHandler` (the
:class:`~security_server.proxy.server_proxy.ServerProxy`), then writes its answer back. :func:`listen_server_proxy`
listens with the TLS options of proxy/mtls.py. Its own faults go out as X-Road 7.8's ``ServerProxyHandler`` sends
them: HTTP 200, ``text/xml;charset=utf-8``, an empty ``SOAPAction`` header, prefix ``server.serverproxy``. The
connections are guarded (proxy/guarded_channel.py, proxy/connection_limits.py): slow heads and bodies and idle
connections are closed, a head over the limit is answered ``414`` / ``431`` and a connection past the cap ``503``,
in the same fault form with that status.
"""

from __future__ import annotations

import weakref
from typing import Any

import structlog
from OpenSSL import SSL
from twisted.internet.defer import Deferred, maybeDeferred
from twisted.internet.interfaces import IListeningPort, ISSLTransport
from twisted.python.failure import Failure
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request, Site

from security_server.core.config import ConnectionLimits, MessageLimits
from security_server.core.errors import BusError, InternalError, InvalidHttpMethod, Origin, RequestTooLarge
from security_server.core.soap import FAULT_ANSWER_CONTENT_TYPE
from security_server.proxy.bounded_request import DEFAULT_MAX_BODY_BYTES, BoundedSite
from security_server.proxy.guarded_channel import encode_answer
from security_server.proxy.http1 import HOP_BY_HOP
from security_server.proxy.mtls import peer_cert_of, server_context_factory
from security_server.proxy.peer_admission import AdmittedRequest, PeerAdmission, admission_of
from security_server.proxy.peerlink import PeerRequest, PeerResponse, ServerProxyHandler
from security_server.signer.token import Token

log = structlog.get_logger(__name__)


_NOT_FORWARDED = HOP_BY_HOP | {"content-type"}
"""Headers a PeerRequest or PeerResponse never carries in its header map: one hop's, and the content type (a field
of its own)."""


def _cert_der(transport: Any) -> bytes | None:
    """The DER certificate the TLS peer of ``transport`` presented, or None."""
    if transport is None or not ISSLTransport.providedBy(transport):
        return None
    handle: Any = transport.getHandle()
    if not isinstance(handle, SSL.Connection):
        return None
    return peer_cert_of(handle)


_peer_certs: weakref.WeakKeyDictionary[Any, bytes | None] = weakref.WeakKeyDictionary()
"""Each connection's peer certificate, read once (a keep-alive connection carries many requests)."""


def peer_cert_der(request: Request) -> bytes | None:
    """The client's TLS certificate (DER) for a request on the server proxy port, or None without TLS."""
    transport = getattr(request.channel, "transport", None)
    if transport is None:
        return None
    try:
        return _peer_certs[transport]
    except KeyError:
        pass
    except TypeError:  # a transport that cannot be weakly referenced
        return _cert_der(transport)
    der = _cert_der(transport)
    _peer_certs[transport] = der
    return der


class _ServerProxySite(BoundedSite):
    """The server proxy port's Site: bounded bodies (the resource's limit), guarded connections, no access log, no
    tracebacks. Its refusals (a head over the limit, a connection past the cap) are X-Road's SOAP fault form with
    the refusal's HTTP status and ``server.serverproxy``'s prefix."""

    aborted_event = "server_proxy_body_aborted"
    origin = Origin.SERVER_PROXY
    requestFactory = AdmittedRequest  # the peer is admitted at each head, before its body (proxy/peer_admission.py)
    peer_admission: PeerAdmission | None = None

    def refusal(self, status: int, error: BusError, target: bytes, accept: str | None, *, journal: bool) -> bytes:
        """The SOAP fault form of :meth:`ServerProxyResource._fault_head`, logged like its refusals when ``journal``."""
        body = error.at(Origin.SERVER_PROXY).to_soap_fault()
        if journal:
            log.info("server_proxy_request_refused", status=status, **error.log_fields())
        return encode_answer(status, [("Content-Type", FAULT_ANSWER_CONTENT_TYPE), ("SOAPAction", "")], body)


def server_proxy_site(
    resource: ServerProxyResource,
    *,
    idle_timeout_seconds: float | None = None,
    connections: ConnectionLimits = ConnectionLimits(),
    max_head_bytes: int = MessageLimits().max_header_bytes,
    reactor: Any = None,
    admission: PeerAdmission | None = None,
) -> BoundedSite:
    """The twisted.web Site for the server proxy port (HTTP/1.1 keep-alive, closed after an idle period), its
    connections guarded by ``connections`` (``[proxy] server-...``), its timers on ``reactor`` (default: the global
    one). ``idle_timeout_seconds``, when given, overrides the idle timeout of ``connections``.

    The idle period should be longer than the clients' (MtlsPeerLink closes its idle connections first). With an
    ``admission``, peers are admitted in the TLS handshake and at each request's head (proxy/peer_admission.py).
    """
    idle = connections.idle_timeout_seconds if idle_timeout_seconds is None else idle_timeout_seconds
    site = _ServerProxySite(
        resource,
        max_body_bytes=resource.max_body_bytes,
        connections=connections,
        max_head_bytes=max_head_bytes,
        timeout=idle or None,
        reactor=reactor,
    )
    site.peer_admission = admission
    return site


def listen_server_proxy(
    reactor: Any, site: Site, token: Token, *, port: int, interface: str = ""
) -> IListeningPort:
    """Listen for security servers with mutual TLS on ``port`` (X-Road's 5500)."""
    tls = server_context_factory(token, client_policy=admission_of(site))  # the site's handshake gate, if any
    listening: IListeningPort = reactor.listenSSL(port, site, tls, interface=interface)
    return listening


def _header_text(value: bytes) -> str:
    return value.decode("latin-1")


class ServerProxyResource(Resource):
    """The server proxy's HTTP endpoint: POST a transport message, get the handler's answer back."""

    isLeaf = True

    def __init__(self, handler: ServerProxyHandler, *, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # Twisted leaves it unannotated
        if max_body_bytes <= 0:
            raise ValueError("max_body_bytes must be positive")
        self.handler = handler
        self.max_body_bytes = max_body_bytes

    def render(self, request: Request) -> bytes | int:
        """POST only; a bounded body; the handler's answer (or a fault) written back."""
        if request.method != b"POST":
            method = request.method.decode("latin-1", "replace")[:16]
            return self._fault(request, InvalidHttpMethod(f"Must use POST request method instead of {method}"))
        content: Any = request.content
        body = b""
        if content is not None:  # a Site other than server_proxy_site's may have buffered to a file
            content.seek(0)
            body = content.read(self.max_body_bytes + 1)
        if getattr(request, "body_too_large", False) or len(body) > self.max_body_bytes:
            request.channel.persistent = False  # answer, then drop a connection that sent too much
            return self._fault(
                request, RequestTooLarge(f"request body is larger than {self.max_body_bytes} bytes")
            )
        headers: dict[str, str] = {}
        for name, values in request.requestHeaders.getAllRawHeaders():
            lowered = _header_text(name).lower()
            if lowered not in _NOT_FORWARDED:
                headers[lowered] = ", ".join(_header_text(v) for v in values)
        content_type = _header_text(request.getHeader(b"content-type") or b"")
        peer_request = PeerRequest(
            headers=headers, content_type=content_type, body=body, path=_header_text(request.uri)
        )
        cert = peer_cert_der(request)
        gone = [False]
        request.notifyFinish().addErrback(lambda _: gone.__setitem__(0, True))

        def answer(response: PeerResponse) -> None:
            if gone[0]:
                return
            try:
                head = self._encode_head(response)
            except (UnicodeEncodeError, AttributeError, TypeError) as err:
                error = InternalError("server proxy answer cannot be sent", reason=repr(err), origin=Origin.SERVER_PROXY)
                log.error("server_proxy_handler_failed", **error.log_fields())
                self._write_fault(request, error)
                return
            self._write(request, head, response.body)

        def failed(failure: Failure) -> None:
            error = failure.value if isinstance(failure.value, BusError) else None
            if error is None:
                error = InternalError("server proxy failed", reason=failure.getErrorMessage())
                error.at(Origin.SERVER_PROXY)
            log.error("server_proxy_handler_failed", **error.log_fields())
            if not gone[0]:
                self._write_fault(request, error)

        handled: Deferred[PeerResponse] = maybeDeferred(self.handler.handle, cert, peer_request)
        handled.addCallbacks(answer, failed)
        handled.addErrback(lambda failure: log.error("server_proxy_reply_failed", error=failure.getErrorMessage()))
        return NOT_DONE_YET

    @staticmethod
    def _encode_head(response: PeerResponse) -> tuple[int, list[tuple[bytes, bytes]]]:
        """The status and headers to send, all encoded before anything is written."""
        status = response.status if 200 <= response.status <= 599 else 500
        headers = [(b"content-type", response.content_type.encode("latin-1"))]
        for name, value in response.headers.items():
            if name.lower() not in _NOT_FORWARDED:
                headers.append((name.encode("latin-1"), value.encode("latin-1")))
        headers.append((b"content-length", b"%d" % len(response.body)))
        return status, headers

    @staticmethod
    def _write(request: Any, head: tuple[int, list[tuple[bytes, bytes]]], body: bytes) -> None:
        status, headers = head
        request.setResponseCode(status)
        for name, value in headers:
            request.setHeader(name, value)
        request.write(body)
        request.finish()

    @staticmethod
    def _fault_head(request: Any, error: BusError) -> bytes:
        """Set X-Road's fault form (``ServerProxyHandler``: 200, text/xml, empty SOAPAction); the fault's body."""
        body = error.at(Origin.SERVER_PROXY).to_soap_fault()
        request.setResponseCode(200)
        request.setHeader(b"content-type", FAULT_ANSWER_CONTENT_TYPE.encode("ascii"))
        request.setHeader(b"content-length", b"%d" % len(body))
        request.setHeader(b"SOAPAction", b"")
        return body

    @classmethod
    def _write_fault(cls, request: Any, error: BusError) -> None:
        request.write(cls._fault_head(request, error))
        request.finish()

    @classmethod
    def _fault(cls, request: Any, error: BusError) -> bytes:
        body = cls._fault_head(request, error)
        log.info("server_proxy_request_refused", **error.log_fields())
        return body


