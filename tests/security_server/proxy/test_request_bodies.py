"""Both proxies' sites read bodies through one request class: kept as bytes (never parsed as a form), bounded by the
site's limit, and cut off (the connection aborted) once a peer has sent twice the limit, whether its
Content-Length said so in advance or its chunks kept coming.

Twisted parses a POST body with a form content type into ``request.args`` (through the ``email`` package, about
0.4 ms a request, and without our size limits); the proxies forward bodies, so neither may do it.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

import pytest
from structlog.testing import capture_logs
from twisted.web.server import Site
from twisted.web.test.requesthelper import DummyChannel

from security_server.proxy.client_proxy import ClientProxy
from security_server.proxy.client_proxy_site import client_proxy_site
from security_server.proxy.peerlink import ServerProxyHandler
from security_server.proxy.server_proxy_site import ServerProxyResource, server_proxy_site

LIMIT = 1024


def client_site() -> Site:
    """The client proxy's site with a body limit of ``LIMIT`` (the proxy itself is never called here)."""
    proxy = SimpleNamespace(context=SimpleNamespace(limits=SimpleNamespace(max_body_bytes=LIMIT)))
    return client_proxy_site(cast(ClientProxy, proxy))


def server_site() -> Site:
    """The server proxy's site with a body limit of ``LIMIT`` (the handler is never called here)."""
    return server_proxy_site(ServerProxyResource(cast(ServerProxyHandler, object()), max_body_bytes=LIMIT))


SITES = pytest.mark.parametrize(
    ("make_site", "aborted_event"),
    [(client_site, "client_proxy_body_aborted"), (server_site, "server_proxy_body_aborted")],
    ids=["client", "server"],
)


class _Transport(DummyChannel.SSL):
    """A TLS transport stand-in that remembers being aborted."""

    aborts = 0

    def abortConnection(self) -> None:
        """Count the abort."""
        self.aborts += 1


def new_request(site: Site) -> tuple[Any, _Transport]:
    """A request of ``site``'s request class on a channel of that site, and the channel's transport."""
    channel: Any = DummyChannel()  # type: ignore[no-untyped-call]  # Twisted's test helper is unannotated
    channel.site = site
    transport = _Transport()  # type: ignore[no-untyped-call]
    channel.transport = transport
    return site.requestFactory(channel), transport  # type: ignore[no-untyped-call]  # Twisted's factory is unannotated


@SITES
@pytest.mark.parametrize("content_type", [b"application/x-www-form-urlencoded", b"multipart/form-data; boundary=b"])
def test_a_form_body_is_kept_as_bytes_and_not_parsed(make_site: Any, aborted_event: str, content_type: bytes) -> None:
    """A POST whose content type says form reaches the resource with its body untouched and no form args."""
    body = b"a=1&b=2" if b"urlencoded" in content_type else b'--b\r\nContent-Disposition: form-data; name="a"\r\n\r\n1\r\n--b--\r\n'
    request, _ = new_request(make_site())
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


@SITES
def test_an_over_long_declared_length_is_dropped_and_cut_off(make_site: Any, aborted_event: str) -> None:
    """A Content-Length over the limit: nothing is kept, and the connection is aborted once twice the limit came."""
    request, transport = new_request(make_site())
    request.gotLength(10 * LIMIT)
    assert request.body_too_large
    request.handleContentChunk(b"x" * LIMIT)
    request.handleContentChunk(b"x" * LIMIT)
    assert transport.aborts == 0 and request.content.getvalue() == b""
    with capture_logs() as events:
        request.handleContentChunk(b"x")
    assert transport.aborts == 1
    assert [e["event"] for e in events] == [aborted_event]


@SITES
def test_an_over_long_chunked_body_is_dropped_and_cut_off(make_site: Any, aborted_event: str) -> None:
    """A body of unknown length is kept up to the limit, dropped past it, and cut off past twice the limit."""
    request, transport = new_request(make_site())
    request.gotLength(None)
    request.handleContentChunk(b"x" * LIMIT)
    assert not request.body_too_large and len(request.content.getvalue()) == LIMIT
    request.handleContentChunk(b"x")
    assert request.body_too_large and request.content.getvalue() == b""
    request.handleContentChunk(b"x" * (LIMIT - 1))
    assert transport.aborts == 0
    request.handleContentChunk(b"x")
    assert transport.aborts == 1
