"""A management API over real loopback HTTPS, as an administrator's client reaches it: the API's own certificate
pinned (:class:`PinnedPolicy`), an API key on every call and each answer checked against X-Road's file
(:class:`HttpsApiClient`); and the one-document web server a provider publishes its WSDL on (:class:`Document`).
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

from twisted.internet.ssl import Certificate, optionsForClientTLS
from twisted.web.client import Agent, FileBodyProducer, readBody
from twisted.web.http_headers import Headers
from twisted.web.iweb import IPolicyForHTTPS
from twisted.web.resource import Resource
from zope.interface import implementer

from security_server.management.tls import CERT_NAME
from tests.loopback import REACTOR
from tests.management_api import XRoadOpenApi


@implementer(IPolicyForHTTPS)
class PinnedPolicy:
    """Trust exactly one management API's own certificate, for host ``localhost``."""

    def __init__(self, pem: bytes) -> None:
        self._root = Certificate.loadPEM(pem)

    def creatorForNetloc(self, hostname: bytes, port: int) -> Any:
        return optionsForClientTLS("localhost", trustRoot=self._root)


class Document(Resource):
    """Answers one document to every GET (the provider's WSDL, published on its web server)."""

    isLeaf = True

    def __init__(self, body: bytes) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # Twisted leaves it unannotated
        self._body = body

    def render_GET(self, request: Any) -> bytes:
        request.setHeader(b"Content-Type", b"text/xml")
        return self._body


class HttpsApiClient:
    """An administrator's HTTPS client of one management API (its certificate in ``directory``) with an API key;
    every answer checked against ``spec``."""

    def __init__(self, directory: Path, port: int, key: str, spec: XRoadOpenApi) -> None:
        self._agent: Any = Agent(REACTOR, contextFactory=PinnedPolicy((directory / CERT_NAME).read_bytes()))  # type: ignore[no-untyped-call]
        self._base = f"https://localhost:{port}/api/v1"
        self._key = key
        self._spec = spec

    async def call(self, method: str, path: str, *, json_body: Any = None, body: bytes | None = None,
                   content_type: str | None = None, query: str = "") -> tuple[int, bytes]:
        """One request; its status and body, after the check against the file."""
        headers = {b"Authorization": [f"X-Road-ApiKey token={self._key}".encode()]}
        if json_body is not None:
            body, content_type = json.dumps(json_body).encode(), "application/json"
        if content_type is not None:
            headers[b"Content-Type"] = [content_type.encode()]
        producer = FileBodyProducer(io.BytesIO(body)) if body is not None else None  # type: ignore[no-untyped-call]
        url = f"{self._base}{path}" + (f"?{query}" if query else "")
        response = await self._agent.request(method.encode(), url.encode(), Headers(headers), producer)
        answer: bytes = await readBody(response)
        kind = response.headers.getRawHeaders(b"content-type", [b""])[0].decode()
        query_map = dict(part.split("=", 1) for part in query.split("&")) if query else {}
        self._spec.check_response(method, f"/api/v1{path}", query_map, response.code, kind, answer)
        return response.code, answer

    async def json(self, method: str, path: str, expected: int, **kwargs: Any) -> Any:
        """Call and check the status; the JSON answer (None when there is no body)."""
        status, answer = await self.call(method, path, **kwargs)
        assert status == expected, (method, path, status, answer)
        return json.loads(answer) if answer else None

    async def upload(self, path: str, fields: dict[str, str], certificate: bytes) -> Any:
        """POST a ``multipart/form-data`` form with a ``certificate`` file (X-Road's uploads); 201 expected."""
        boundary = "fedbus-setup-scenario"
        chunks = [f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
                  for name, value in fields.items()]
        chunks.append(f'--{boundary}\r\nContent-Disposition: form-data; name="certificate"; filename="cert.der"\r\n'
                      "Content-Type: application/octet-stream\r\n\r\n".encode() + certificate + b"\r\n")
        body = b"".join(chunks) + f"--{boundary}--\r\n".encode()
        return await self.json("POST", path, 201, body=body, content_type=f"multipart/form-data; boundary={boundary}")
