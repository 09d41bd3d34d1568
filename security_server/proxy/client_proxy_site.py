"""The client proxy's HTTP site, facing the department systems (IS): routed by path to the :class:`ClientProxy`.

``/r1/...`` is a REST r1 call (any method), ``/listClients`` the client list (pr-meta), anything else a SOAP request
(POST only; any other method, ``GET /wsdl`` of X-Road before 6.24 included, is ``client.invalid_http_method``, as
X-Road 7.8 answers it). Bodies are bounded (proxy/bounded_request.py): over the limit, the IS gets
``client.bad_request`` (413 for REST), and an endless body is cut off.

SOAP faults go out as X-Road 7.8 sends them (``HandlerBase.sendErrorResponse``): HTTP 200, ``text/xml;charset=utf-8``
and an empty ``SOAPAction`` header. Nothing that goes wrong here leaves the IS without an answer: a failure is
answered with ``server.clientproxy.internal_error`` (:meth:`ClientProxy.last_resort`).

The same site serves the HTTP port and the HTTPS port (proxy/client_proxy_tls.py); each request tells the proxy
how it came (:func:`~security_server.proxy.client_proxy_tls.is_connection`), for the client's connection type.

The connections are guarded (proxy/guarded_channel.py, proxy/connection_limits.py): a head over the limit is
``414`` / ``431`` and a connection past the cap ``503``, each as REST error JSON for ``/r1/...`` and as a SOAP fault
otherwise (:meth:`_ClientProxySite.refusal`).
"""

from __future__ import annotations

from typing import Any, Callable

from twisted.python.failure import Failure
from twisted.web import server
from twisted.web.http_headers import Headers
from twisted.web.resource import Resource

from security_server.core.config import ConnectionLimits, MessageLimits
from security_server.core.errors import BusError, InvalidHttpMethod, Origin, RequestTooLarge
from security_server.core.metadata import LIST_CLIENTS_PATH
from security_server.core.rest import PROTOCOL_PREFIX, RestAnswer, header_value, rest_error_of
from security_server.core.soap import FAULT_ANSWER_CONTENT_TYPE
from security_server.proxy.bounded_request import BoundedSite
from security_server.proxy.client_proxy import ClientProxy
from security_server.proxy.client_proxy_tls import is_connection
from security_server.proxy.guarded_channel import encode_answer


class ClientProxyResource(Resource):
    """The IS-facing endpoint, routed by path: ``/r1/...`` is a REST call (any method), ``/listClients`` the
    client list (pr-meta), anything else a SOAP request (POST only; any other method is
    ``client.invalid_http_method``)."""

    isLeaf = True

    def __init__(self, proxy: ClientProxy) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # Twisted leaves it unannotated
        self.proxy = proxy

    def render(self, request: server.Request) -> bytes | int:
        """Dispatch by path, then method (see the class docstring)."""
        path = request.path or b""
        if path.startswith(PROTOCOL_PREFIX.encode("ascii")):
            return self._render_rest(request)
        if path == LIST_CLIENTS_PATH.encode("ascii"):
            return self._render_list_clients(request)
        return self._render_soap(request)

    def _body(self, request: server.Request) -> bytes | None:
        """The request body, or None when it is over the limit (declared or read)."""
        limit = self.proxy.context.limits.max_body_bytes
        declared = request.getHeader(b"content-length")
        too_large = getattr(request, "body_too_large", False) or (
            declared is not None and declared.isdigit() and int(declared) > limit
        )
        body = b"" if too_large or request.content is None else request.content.read(limit + 1)
        if too_large or len(body) > limit:
            return None
        return body

    def _render_soap(self, request: server.Request) -> bytes | int:
        try:
            return self._soap(request)
        except Exception as err:  # noqa: BLE001 - the last resort: the IS always gets an answer
            return _start_answer(request, self.proxy.last_resort(err))

    def _soap(self, request: server.Request) -> bytes | int:
        limit = self.proxy.context.limits.max_body_bytes
        if request.method != b"POST":
            # X-Road 7.8 ClientMessageHandler: the path is not looked at, so the old GET /wsdl gets this too.
            method = request.method.decode("latin-1", "replace")[:16]
            wrong_method = InvalidHttpMethod(f"Must use POST request method instead of {method}")
            return _start_answer(request, self.proxy.refuse(wrong_method))
        body = self._body(request)
        if body is None:
            refused = self.proxy.refuse(RequestTooLarge(f"Request body is larger than {limit} bytes"))
            return _start_answer(request, refused)
        content_type = (request.getHeader(b"content-type") or b"").decode("latin-1")
        headers: dict[str, str] = {}
        soap_action = request.getHeader(b"soapaction")
        if soap_action is not None:
            headers["SOAPAction"] = soap_action.decode("latin-1")
        gone: list[Failure] = []
        request.notifyFinish().addErrback(gone.append)

        def write(answer: tuple[int, str, bytes]) -> None:
            if gone:
                return  # the IS hung up; the exchange is logged and summarised already
            body = _start_answer(request, answer)
            request.write(body)  # type: ignore[no-untyped-call]  # Twisted leaves it unannotated
            request.finish()  # type: ignore[no-untyped-call]

        self.proxy.handle_soap(content_type, body, headers, is_connection(request)).addCallback(write).addErrback(
            _answer_anyway(request, self.proxy.last_resort, gone)
        )
        return server.NOT_DONE_YET

    def _render_list_clients(self, request: server.Request) -> bytes:
        accept = request.getHeader(b"accept")
        instance = request.args.get(b"xRoadInstance", [None])[0] if request.args else None
        answer = self.proxy.list_clients(
            None if accept is None else accept.decode("latin-1"),
            None if instance is None else instance.decode("utf-8", "replace"),
        )
        return _start_answer(request, answer)

    def _render_rest(self, request: server.Request) -> bytes | int:
        headers = [
            (name.decode("latin-1"), value.decode("latin-1"))
            for name, values in request.requestHeaders.getAllRawHeaders()
            for value in values
        ]
        accept = header_value(headers, "Accept")
        target = request.uri.decode("latin-1")
        limits = self.proxy.context.limits
        body = self._body(request)
        if len(target) > limits.max_uri_chars:
            refused = RequestTooLarge(f"Request URI is longer than {limits.max_uri_chars} characters")
            return _write_rest(request, self.proxy.refuse_rest(refused, accept))
        if body is None:
            refused = RequestTooLarge(f"Request body is larger than {limits.max_body_bytes} bytes")
            return _write_rest(request, self.proxy.refuse_rest(refused, accept))
        gone: list[Failure] = []
        request.notifyFinish().addErrback(gone.append)

        def write(answer: RestAnswer) -> None:
            if gone:
                return  # the IS hung up; the exchange is logged and summarised already
            data = _write_rest(request, answer)
            request.write(data)  # type: ignore[no-untyped-call]  # Twisted leaves it unannotated
            request.finish()  # type: ignore[no-untyped-call]

        method = request.method.decode("latin-1", "replace")
        self.proxy.handle_rest(method, target, headers, body, is_connection(request)).addCallback(write).addErrback(
            _answer_rest_anyway(request, lambda err: self.proxy.last_resort_rest(err, accept), gone)
        )
        return server.NOT_DONE_YET


def _write_rest(request: server.Request, answer: RestAnswer) -> bytes:
    """Set a REST answer's status and headers (in order; ``Date`` replaces ours); return its body."""
    request.defaultContentType = None  # pr-rest §4.3: the provider's Content-Type, or none, passes unchanged
    request.setResponseCode(answer.status)
    for name, value in answer.headers:
        lowered = name.lower()
        if lowered in ("date", "content-type"):
            _set_header(request, lowered.encode("ascii"), value.encode("latin-1"))
        else:
            request.responseHeaders.addRawHeader(name.encode("latin-1"), value.encode("latin-1"))
    _set_header(request, b"content-length", str(len(answer.body)).encode("ascii"))
    return answer.body


def _set_header(request: server.Request, name: bytes, value: bytes) -> None:
    request.setHeader(name, value)  # type: ignore[no-untyped-call]  # Twisted leaves it unannotated


def _start_answer(request: server.Request, answer: tuple[int, str, bytes]) -> bytes:
    """Set the status and headers of ``answer``; return its body. A SOAP fault (in X-Road's fault form) also gets
    the empty ``SOAPAction`` header X-Road sends with one (``HandlerBase.sendErrorResponse``)."""
    status, content_type, body = answer
    request.setResponseCode(status)
    _set_header(request, b"content-type", content_type.encode("latin-1"))
    _set_header(request, b"content-length", str(len(body)).encode("ascii"))
    if content_type == FAULT_ANSWER_CONTENT_TYPE:
        _set_header(request, b"SOAPAction", b"")
    return body


def _answer_anyway(
    request: server.Request, last_resort: Callable[[BaseException], tuple[int, str, bytes]], gone: list[Failure]
) -> Callable[[Failure], None]:
    """An errback that answers with ``last_resort``'s fault when writing the answer failed before anything was sent."""

    def answer(failure: Failure) -> None:
        fault = last_resort(failure.value if failure.value is not None else RuntimeError("unknown failure"))
        if gone or request.finished or request.startedWriting:
            return  # nothing more can be said on this request
        request.write(_start_answer(request, fault))  # type: ignore[no-untyped-call]
        request.finish()  # type: ignore[no-untyped-call]

    return answer


def _answer_rest_anyway(
    request: server.Request, last_resort: Callable[[BaseException], RestAnswer], gone: list[Failure]
) -> Callable[[Failure], None]:
    """:func:`_answer_anyway` for a REST call: writing the answer failed, so the IS gets ``last_resort``'s error JSON
    (issue 22 item 8), with none of the failed answer's headers."""

    def answer(failure: Failure) -> None:
        fault = last_resort(failure.value if failure.value is not None else RuntimeError("unknown failure"))
        if gone or request.finished or request.startedWriting:
            return  # nothing more can be said on this request
        request.responseHeaders = Headers()
        request.write(_write_rest(request, fault))  # type: ignore[no-untyped-call]
        request.finish()  # type: ignore[no-untyped-call]

    return answer


class _ClientProxySite(BoundedSite):
    """The client proxy port's Site: bounded bodies (the proxy's limit), guarded connections, no access log, no
    tracebacks."""

    aborted_event = "client_proxy_body_aborted"
    origin = Origin.CLIENT_PROXY

    def __init__(self, resource: ClientProxyResource, **kwargs: Any) -> None:
        super().__init__(resource, **kwargs)
        self.proxy = resource.proxy

    def refusal(self, status: int, error: BusError, target: bytes, accept: str | None, *, journal: bool) -> bytes:
        """A REST call (``/r1/...``) is refused with the error JSON (or XML, as ``Accept`` asks), anything else with
        the SOAP fault form, both with HTTP ``status``; ``journal`` summarises the refusal as the proxy does a body
        over the limit (an oversized head), else it is only counted (past the connection cap)."""
        if target.startswith(PROTOCOL_PREFIX.encode("ascii")):
            rest = self.proxy.refuse_rest(error, accept) if journal else rest_error_of(error, accept=accept)
            return encode_answer(status, list(rest.headers), rest.body)
        if journal:
            _, content_type, body = self.proxy.refuse(error)
        else:
            content_type, body = FAULT_ANSWER_CONTENT_TYPE, error.to_soap_fault()
        return encode_answer(status, [("Content-Type", content_type), ("SOAPAction", "")], body)


def client_proxy_site(
    proxy: ClientProxy, *, connections: ConnectionLimits = ConnectionLimits(), reactor: Any = None
) -> BoundedSite:
    """A ``Site`` serving :class:`ClientProxyResource` with bodies bounded by the proxy's configured limit and
    connections guarded by ``connections`` (``[proxy] client-...``), its timers on ``reactor`` (default: the global
    one)."""
    limits = proxy.context.limits
    return _ClientProxySite(
        ClientProxyResource(proxy),
        max_body_bytes=limits.max_body_bytes,
        max_head_bytes=getattr(limits, "max_header_bytes", MessageLimits().max_header_bytes),
        connections=connections,
        reactor=reactor,
    )
