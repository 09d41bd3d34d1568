"""Providers and a raw HTTP client for the REST, metadata and attachment tests (issue 6).

* :class:`RestProvider`, a REST service that echoes what it was sent, as JSON, and :data:`PETSTORE_OPENAPI`;
* :class:`AttachmentEcho`, a SOAP service taking ``multipart/related``, and :data:`WSDL`;
* :func:`http_call`, a blocking raw HTTP client (curl-style) for tests that run it in a thread.

The REST provider: any method on any path answers 200 with ``{"method", "path", "query", "headers", "body_length", "body_sha256",
"content_type"}`` (header names lower-cased, the last value of each), and sets headers that the provider's security
server must overwrite or drop (``X-Road-Service``, ``X-Road-Error``) next to one it must pass (``X-Provider``).
A path ending in ``/status/NNN`` answers with that status and an error body like pr-rest §4.6 Example 1.
"""

from __future__ import annotations

import hashlib
import http.client
import json
from dataclasses import dataclass
from typing import Any

from twisted.web import resource, server

from security_server.core.multipart import Part
from security_server.core.soapattachments import SoapWithAttachments, build_related, parse_related
from tests.federation.provider import echo_response


class RestProvider(resource.Resource):
    """See the module docstring; ``calls`` records every request as ``(method, raw uri, headers, body)``."""

    isLeaf = True

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.calls: list[tuple[str, str, dict[str, str], bytes]] = []

    def render(self, request: server.Request) -> bytes:
        """Echo the request (see the module docstring)."""
        method = request.method.decode("ascii")
        uri = request.uri.decode("latin-1")
        path, _, query = uri.partition("?")
        headers = {
            name.decode("latin-1").lower(): values[-1].decode("latin-1")
            for name, values in request.requestHeaders.getAllRawHeaders()
        }
        body = request.content.read() if request.content is not None else b""
        self.calls.append((method, uri, headers, body))
        request.setHeader(b"content-type", b"application/json;charset=utf-8")  # type: ignore[no-untyped-call]
        request.setHeader(b"x-provider", b"pets")  # type: ignore[no-untyped-call]
        request.setHeader(b"x-road-service", b"forged/by/the/provider")  # type: ignore[no-untyped-call]
        request.setHeader(b"x-road-error", b"forged")  # type: ignore[no-untyped-call]
        parts = path.rstrip("/").split("/")
        if len(parts) >= 2 and parts[-2] == "status" and parts[-1].isdigit():
            status = int(parts[-1])
            request.setResponseCode(status)
            answer: dict[str, Any] = {"status": status, "error": "Method Not Allowed", "path": path}
            return json.dumps(answer).encode("utf-8")
        answer = {
            "method": method,
            "path": path,
            "query": query or None,
            "headers": headers,
            "body_length": len(body),
            "body_sha256": hashlib.sha256(body).hexdigest(),
            "content_type": headers.get("content-type"),
        }
        return json.dumps(answer).encode("utf-8")


PETSTORE_OPENAPI = json.dumps(
    {
        "openapi": "3.0.1",
        "info": {"title": "Pets", "version": "1"},
        "servers": [{"url": "http://pets.internal.example:8080/api/v3"}],
        "paths": {
            "/pets": {"get": {"responses": {}}, "post": {"responses": {}}},
            "/pets/{petId}": {"get": {"responses": {}}, "delete": {"responses": {}}, "parameters": []},
            "/pets/{petId}/images": {"post": {"responses": {}}},
            "/public/{name}": {"get": {"responses": {}}},
            "/secret": {"get": {"responses": {}}},
        },
    }
).encode("utf-8")
"""An OpenAPI 3 description of the test provider (its ``servers`` URL is private and must be anonymised)."""


WSDL = b"""<?xml version="1.0" encoding="UTF-8"?>
<wsdl:definitions xmlns:wsdl="http://schemas.xmlsoap.org/wsdl/" xmlns:soap="http://schemas.xmlsoap.org/wsdl/soap/"
    targetNamespace="http://test.fedbus.example/producer">
  <wsdl:service name="randomService">
    <wsdl:port name="randomPort" binding="randomBinding">
      <soap:address location="http://10.0.0.7:8080/private/random"/>
    </wsdl:port>
  </wsdl:service>
</wsdl:definitions>
"""


class AttachmentEcho(resource.Resource):
    """A SOAP provider that takes ``multipart/related`` and answers the echo response with the attachments back."""

    isLeaf = True

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.received: list[SoapWithAttachments] = []

    def render_POST(self, request: server.Request) -> bytes:
        """Echo the SOAP part's headers; return every attachment (reversed order) with its MIME headers."""
        content_type = (request.getHeader(b"content-type") or b"").decode("latin-1")
        body = request.content.read() if request.content is not None else b""
        message = parse_related(content_type, body)
        self.received.append(message)
        answer = SoapWithAttachments(
            Part((("Content-Type", "text/xml; charset=UTF-8"), ("Content-ID", "<answer>")), echo_response(message.soap.body)),
            tuple(reversed(message.attachments)),
        )
        answer_type, answer_body = build_related(answer)
        request.setHeader(b"content-type", answer_type.encode("latin-1"))  # type: ignore[no-untyped-call]
        return answer_body




@dataclass
class Reply:
    """One raw HTTP answer."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        """The last value of header ``name``."""
        found = [value for key, value in self.headers if key.lower() == name.lower()]
        return found[-1] if found else None

    def all(self, name: str) -> list[str]:
        """Every value of header ``name``."""
        return [value for key, value in self.headers if key.lower() == name.lower()]


def http_call(port: int, method: str, target: str, headers: dict[str, str], body: bytes | None = None) -> Reply:
    """One request to 127.0.0.1:``port`` over a fresh connection, as curl makes it (blocking: run it in a thread)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        connection.request(method, target, body=body, headers=headers)
        response = connection.getresponse()
        return Reply(response.status, response.getheaders(), response.read())
    finally:
        connection.close()
