"""Plain Python callables as a REST service with an OpenAPI 3 description.

::

    provider = RestProvider("Population register", version="1.0.0")

    @provider.route("GET", "/persons/{personCode}", summary="One person", returns=Person)
    def get_person(request: RestRequest, personCode: str) -> Person:
        request.caller.client, request.caller.user_id    # who asked (the X-Road-* headers)
        ...

    provider.openapi("http://127.0.0.1:8082/rest")   # the OpenAPI 3.0 document (also served at openapi.json)
    provider.resource()                              # a twisted.web Resource

X-Road's REST protocol passes the path after the service code to the provider unchanged (pr-rest §4.1); the
provider's security server adds ``X-Road-Client``, ``X-Road-Service``, ``X-Road-Id``, ``X-Road-UserId`` and
``X-Road-Request-Id``, which become :attr:`RestRequest.caller`. Each path segment is percent-decoded on its own
and matched literally against the route; ``.`` and ``..`` segments are refused, so no encoding trick reaches a
route the path does not name. A callable returns a JSON-ready value (answered 200) or a :class:`RestReply`; it
raises :class:`RestError` for its own error statuses. These are the provider's answers: they never carry
``X-Road-Error``, which only the bus sets (pr-rest §4.6).
"""

from __future__ import annotations

import inspect
import json
import typing
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence
from urllib.parse import parse_qs

import structlog
from twisted.internet import threads
from twisted.web import resource, server

from adapters.provider.caller import Caller
from adapters.provider.shapes import ShapeError, json_schema, to_json

log = structlog.get_logger()

DEFAULT_MAX_BODY_BYTES = 10 * 1024 * 1024
OPENAPI_PATH = "openapi.json"
_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")

__all__ = ["RestError", "RestProvider", "RestReply", "RestRequest", "RestResource", "Route"]


class RestError(Exception):
    """Raised by a callable to answer with an error status and a JSON ``{"error", "message"}`` body."""

    def __init__(self, status: int, message: str, *, code: str = "error") -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code


@dataclass(frozen=True, slots=True)
class RestRequest:
    """One request as the provider sees it."""

    method: str
    path: str
    """The path below the provider's root, segments decoded and re-joined with ``/``."""
    path_params: Mapping[str, str]
    query: Mapping[str, tuple[str, ...]]
    headers: Mapping[str, str] = field(repr=False)
    """Request headers, names lower-cased."""
    body: bytes = field(repr=False)
    caller: Caller = field(repr=False)

    def param(self, name: str) -> str | None:
        """The first value of query parameter ``name``."""
        values = self.query.get(name)
        return values[0] if values else None

    def json(self) -> Any:
        """The body parsed as JSON; a 400 :class:`RestError` when it is not."""
        try:
            return json.loads(self.body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as err:
            raise RestError(400, "the request body is not JSON", code="bad_json") from err


@dataclass(frozen=True, slots=True)
class RestReply:
    """An answer with a chosen status, headers or content type (a bare value means 200 JSON)."""

    body: Any = None
    status: int = 200
    content_type: str = "application/json"
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Route:
    """One route: method and path pattern (``/persons/{personCode}``), the callable and its documentation."""

    method: str
    pattern: str
    segments: tuple[str, ...]
    function: Callable[..., Any]
    summary: str | None
    operation_id: str
    returns: Any
    query: Mapping[str, str]
    body: Any

    def match(self, method: str, segments: Sequence[str]) -> dict[str, str] | None:
        """The path parameters if ``segments`` fit this route's pattern, else None."""
        if method != self.method or len(segments) != len(self.segments):
            return None
        params: dict[str, str] = {}
        for expected, actual in zip(self.segments, segments):
            if expected.startswith("{") and expected.endswith("}"):
                if not actual:
                    return None
                params[expected[1:-1]] = actual
            elif expected != actual:
                return None
        return params


def _split_pattern(pattern: str) -> tuple[str, ...]:
    if not pattern.startswith("/"):
        raise ValueError(f"route pattern {pattern!r} must start with /")
    segments = tuple(pattern[1:].split("/")) if pattern != "/" else ()
    for segment in segments:
        if segment in ("", ".", ".."):
            raise ValueError(f"route pattern {pattern!r} has an empty, . or .. segment")
    return segments


class RestProvider:
    """A set of routes with one OpenAPI description."""

    def __init__(self, title: str, *, version: str = "1.0.0", description: str | None = None,
                 max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> None:
        self.title = title
        self.version = version
        self.description = description
        self.max_body_bytes = max_body_bytes
        self.routes: list[Route] = []

    def route(
        self,
        method: str,
        pattern: str,
        *,
        summary: str | None = None,
        operation_id: str | None = None,
        returns: Any = None,
        query: Mapping[str, str] | None = None,
        body: Any = None,
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Decorator: answer ``method pattern`` with the function.

        ``returns`` and ``body`` are annotations (e.g. a TypedDict) for the OpenAPI schemas; ``query`` documents
        query parameters (name -> description). The function takes the :class:`RestRequest` and the path
        parameters as keyword arguments.
        """

        def register(function: Callable[..., Any]) -> Callable[..., Any]:
            self.add(function, method, pattern, summary=summary, operation_id=operation_id, returns=returns,
                     query=query, body=body)
            return function

        return register

    def add(
        self,
        function: Callable[..., Any],
        method: str,
        pattern: str,
        *,
        summary: str | None = None,
        operation_id: str | None = None,
        returns: Any = None,
        query: Mapping[str, str] | None = None,
        body: Any = None,
    ) -> Route:
        """Add a route; its pattern and schemas are checked now."""
        verb = method.upper()
        if verb not in _METHODS:
            raise ValueError(f"method {method} is not one of {', '.join(_METHODS)}")
        segments = _split_pattern(pattern)
        names = [s[1:-1] for s in segments if s.startswith("{") and s.endswith("}")]
        parameters = inspect.signature(function).parameters
        missing = [n for n in names if n not in parameters]
        if missing:
            raise ShapeError(f"{function.__name__}: no parameter for path parameter(s) {', '.join(missing)}")
        if returns is None:
            hinted = typing.get_type_hints(function).get("return")
            returns = hinted if hinted not in (None, RestReply, Any) else None
        for annotation in (returns, body):
            if annotation is not None:
                json_schema(annotation)
        route = Route(verb, pattern, segments, function, summary, operation_id or function.__name__, returns,
                      dict(query or {}), body)
        self.routes.append(route)
        return route

    # --- OpenAPI -------------------------------------------------------------------------------------------

    def openapi(self, server_url: str | None = None) -> dict[str, Any]:
        """The OpenAPI 3.0.3 document describing the routes."""
        paths: dict[str, dict[str, Any]] = {}
        error = {"type": "object", "properties": {"error": {"type": "string"}, "message": {"type": "string"}}}
        for route in self.routes:
            parameters: list[dict[str, Any]] = [
                {"name": s[1:-1], "in": "path", "required": True, "schema": {"type": "string"}}
                for s in route.segments if s.startswith("{")
            ]
            parameters += [
                {"name": name, "in": "query", "required": False, "description": text, "schema": {"type": "string"}}
                for name, text in route.query.items()
            ]
            success: dict[str, Any] = {"description": "OK"}
            if route.returns is not None:
                success["content"] = {"application/json": {"schema": json_schema(route.returns)}}
            operation: dict[str, Any] = {
                "operationId": route.operation_id,
                "responses": {
                    "200": success,
                    "default": {"description": "Error", "content": {"application/json": {"schema": error}}},
                },
            }
            if route.summary:
                operation["summary"] = route.summary
            if parameters:
                operation["parameters"] = parameters
            if route.body is not None:
                operation["requestBody"] = {
                    "required": True, "content": {"application/json": {"schema": json_schema(route.body)}},
                }
            paths.setdefault(route.pattern, {})[route.method.lower()] = operation
        info: dict[str, Any] = {"title": self.title, "version": self.version}
        if self.description:
            info["description"] = self.description
        document: dict[str, Any] = {"openapi": "3.0.3", "info": info, "paths": paths}
        if server_url:
            document["servers"] = [{"url": server_url}]
        return document

    # --- answering ------------------------------------------------------------------------------------------

    def handle(
        self,
        method: str,
        segments: Sequence[str],
        query: Mapping[str, Sequence[str]],
        headers: Mapping[str, str],
        body: bytes,
        *,
        server_url: str | None = None,
    ) -> tuple[int, dict[str, str], bytes]:
        """Answer one request (``segments``: the path below the root, each already percent-decoded); never raises."""
        verb = method.upper()
        if any(s in (".", "..") for s in segments):
            return _error(400, "bad_path", "path segments . and .. are not allowed")
        if verb == "GET" and list(segments) == [OPENAPI_PATH]:
            return 200, {"Content-Type": "application/json"}, _dump(self.openapi(server_url))
        matches = [(route, route.match(verb, segments)) for route in self.routes]
        found = [(route, params) for route, params in matches if params is not None]
        if not found:
            allowed = any(route.match(route.method, segments) is not None for route in self.routes)
            return _error(405 if allowed else 404, "not_found" if not allowed else "method_not_allowed",
                          f"no route for {verb} /{'/'.join(segments)}")
        route, params = found[0]
        lowered = {name.lower(): value for name, value in headers.items()}
        request = RestRequest(
            method=verb, path="/" + "/".join(segments), path_params=params,
            query={name: tuple(values) for name, values in query.items()},
            headers=lowered, body=body, caller=Caller.from_rest_headers(lowered),
        )
        try:
            result = route.function(request, **params)
        except RestError as err:
            return _error(err.status, err.code, err.message)
        except Exception as err:  # noqa: BLE001 - a provider's bug must become a 500, not a dropped request
            detail = str(uuid.uuid4())
            log.error("route_failed", route=route.operation_id, fault_detail=detail, error=repr(err))
            return _error(500, "internal_error", f"internal error in the service (detail {detail})")
        log.info("route_answered", route=route.operation_id, client=str(request.caller.client),
                 user_id=request.caller.user_id, message_id=request.caller.message_id)
        reply = result if isinstance(result, RestReply) else RestReply(result)
        answer_headers = {"Content-Type": reply.content_type, **reply.headers}
        if isinstance(reply.body, bytes):
            return reply.status, answer_headers, reply.body
        return reply.status, answer_headers, _dump(to_json(reply.body))

    def resource(self, server_url: str | None = None, *, reactor: Any = None) -> RestResource:
        """A twisted.web resource serving the routes below wherever it is mounted; callables run in ``reactor``'s
        thread pool (default: the global reactor)."""
        return RestResource(self, server_url, reactor=reactor)


def _dump(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, indent=2).encode("utf-8") + b"\n"


def _error(status: int, code: str, message: str) -> tuple[int, dict[str, str], bytes]:
    return status, {"Content-Type": "application/json"}, _dump({"error": code, "message": message})


class RestResource(resource.Resource):
    """Serves a :class:`RestProvider`: the path below the mount point is matched against its routes."""

    isLeaf = True

    def __init__(self, provider: RestProvider, server_url: str | None = None, *, reactor: Any = None) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # Twisted leaves it unannotated
        self.provider = provider
        self.server_url = server_url
        if reactor is None:
            from twisted.internet import reactor as global_reactor

            reactor = global_reactor
        self.reactor = reactor

    def render(self, request: server.Request) -> int | bytes:
        """Decode the path segments (Twisted splits, then unquotes each), read the bounded body, answer in a thread."""
        method = request.method.decode("latin-1")
        try:
            segments = [s.decode("utf-8") for s in (request.postpath or [])]
        except UnicodeDecodeError:
            return _apply(request, _error(400, "bad_path", "the path is not UTF-8"))
        if segments and segments[-1] == "":
            segments = segments[:-1]  # a trailing slash names the same resource
        limit = self.provider.max_body_bytes
        body = request.content.read(limit + 1) if request.content is not None else b""
        if len(body) > limit:
            return _apply(request, _error(413, "too_large", f"the body is larger than {limit} bytes"))
        query_text = request.uri.split(b"?", 1)[1].decode("latin-1") if b"?" in request.uri else ""
        query = parse_qs(query_text, keep_blank_values=True)
        headers = {
            name.decode("latin-1"): values[-1].decode("latin-1")
            for name, values in request.requestHeaders.getAllRawHeaders()
        }
        prefix = "/" + "/".join(p.decode("latin-1") for p in request.prepath or [])
        host = request.getHost()  # type: ignore[no-untyped-call]
        server_url = self.server_url or f"http://{host.host}:{host.port}{prefix}".rstrip("/")
        gone: list[object] = []
        request.notifyFinish().addErrback(gone.append)

        def done(answer: tuple[int, dict[str, str], bytes]) -> None:
            if not gone:
                request.write(_apply(request, answer))  # type: ignore[no-untyped-call]
                request.finish()  # type: ignore[no-untyped-call]

        threads.deferToThreadPool(
            self.reactor, self.reactor.getThreadPool(), self.provider.handle, method, segments, query, headers, body,
            server_url=server_url,
        ).addCallback(done)
        return server.NOT_DONE_YET


def _apply(request: server.Request, answer: tuple[int, dict[str, str], bytes]) -> bytes:
    """Set the status and headers of ``answer``; return its body."""
    status, headers, body = answer
    request.setResponseCode(status)
    for name, value in headers.items():
        request.setHeader(name.encode("latin-1"), value.encode("latin-1"))  # type: ignore[no-untyped-call]
    request.setHeader(b"content-length", str(len(body)).encode("ascii"))  # type: ignore[no-untyped-call]
    return body
