"""The request classes of both proxies keep a body as bytes and never parse it as a form.

Twisted parses a POST body with a form content type into ``request.args`` (through the ``email`` package, about
0.4 ms a request, and without our size limits); the proxies forward bodies, so neither may do it.
"""

from __future__ import annotations

from typing import Any

import pytest
from twisted.web.server import Request
from twisted.web.test.requesthelper import DummyChannel

from security_server.proxy.client_proxy import bounded_request_factory
from security_server.proxy.mtls import _BoundedRequest


@pytest.mark.parametrize("content_type", [b"application/x-www-form-urlencoded", b"multipart/form-data; boundary=b"])
@pytest.mark.parametrize("factory", [bounded_request_factory(1024), _BoundedRequest], ids=["client", "server"])
def test_a_form_body_is_kept_as_bytes_and_not_parsed(factory: type[Request], content_type: bytes) -> None:
    """A POST whose content type says form reaches the resource with its body untouched and no form args."""
    body = b"a=1&b=2" if b"urlencoded" in content_type else b'--b\r\nContent-Disposition: form-data; name="a"\r\n\r\n1\r\n--b--\r\n'
    request: Any = factory(DummyChannel())  # type: ignore[no-untyped-call]  # Twisted's test helper is unannotated
    processed: list[bool] = []
    request.process = lambda: processed.append(True)
    request.requestHeaders.setRawHeaders(b"content-type", [content_type])
    request.gotLength(len(body))
    request.handleContentChunk(body)
    request.requestReceived(b"POST", b"/", b"HTTP/1.1")
    assert processed == [True]
    assert request.args == {}
    request.content.seek(0)
    assert request.content.read() == body
