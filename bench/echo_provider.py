"""The provider every benchmark case calls: answers SOAP with the X-Road headers echoed, REST with a JSON echo.

Run alone: ``python bench/echo_provider.py --port 9100``. Kept deliberately cheap so the figures show the bus.
"""

from __future__ import annotations

import argparse
import re

from typing import Any

from twisted.internet import reactor as _reactor
from twisted.web import resource, server

reactor: Any = _reactor

_HEADER = re.compile(rb"<(?:[\w.-]+:)?Header\b.*?</(?:[\w.-]+:)?Header>", re.S)


class Echo(resource.Resource):
    """SOAP at any path: the request's Header echoed with a small body; REST (/rest/...): JSON echo."""

    isLeaf = True

    def render_POST(self, request: Any) -> bytes:
        body = request.content.read() if request.content is not None else b""
        if request.path.startswith(b"/rest"):
            request.setHeader(b"content-type", b"application/json")
            return b'{"echo":' + str(len(body)).encode() + b"}"
        request.setHeader(b"content-type", b"text/xml; charset=UTF-8")
        header = _HEADER.search(body)
        head = header.group(0) if header else b""
        return (
            b'<?xml version="1.0" encoding="UTF-8"?><SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/"'
            b' xmlns:xrd="http://x-road.eu/xsd/xroad.xsd" xmlns:id="http://x-road.eu/xsd/identifiers">'
            + head
            + b'<SOAP-ENV:Body><ns1:getRandomResponse xmlns:ns1="http://bench.fedbus.example"><data>'
            + str(len(body)).encode()
            + b"</data></ns1:getRandomResponse></SOAP-ENV:Body></SOAP-ENV:Envelope>"
        )

    def render_GET(self, request: Any) -> bytes:
        request.setHeader(b"content-type", b"application/json")
        return b'{"echo":0}'


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    site = server.Site(Echo())  # type: ignore[no-untyped-call]
    site.noisy = False
    reactor.listenTCP(args.port, site, interface="127.0.0.1")
    reactor.run()


if __name__ == "__main__":
    main()
