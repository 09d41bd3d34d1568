"""A provider's SOAP service on loopback: ``/echo`` answers with the request's headers echoed, other paths misbehave."""

from __future__ import annotations

import copy

from lxml import etree
from twisted.web import resource, server

from security_server.core.errors import SOAP_ENV_NS
from security_server.core.safexml import parse_xml

NS = "http://example.org/people"
"""The namespace of the people service's messages."""


class ProviderService(resource.Resource):
    """A SOAP provider on loopback: ``/echo`` answers with the request headers echoed; the other paths misbehave."""

    isLeaf = True

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.calls: dict[str, int] = {}
        self.bodies: list[bytes] = []
        self.soap_actions: list[str | None] = []
        self.held: list[server.Request] = []

    def render_POST(self, request: server.Request) -> bytes | int:
        """Answer by path: echo, nonxml, html, fault, notfound, drop, slow."""
        path = request.path.decode("ascii").strip("/")
        self.calls[path] = self.calls.get(path, 0) + 1
        body = request.content.read() if request.content is not None else b""
        self.bodies.append(body)
        action = request.getHeader(b"soapaction")
        self.soap_actions.append(None if action is None else action.decode("latin-1"))
        if path == "slow":
            self.held.append(request)
            return server.NOT_DONE_YET
        if path == "drop":
            assert request.transport is not None
            request.transport.abortConnection()
            return server.NOT_DONE_YET
        if path == "nonxml":
            request.setHeader(b"content-type", b"text/xml; charset=UTF-8")  # type: ignore[no-untyped-call]
            return b"this is not XML at all"
        if path == "html":
            request.setHeader(b"content-type", b"text/html")  # type: ignore[no-untyped-call]
            return b"<html><body>Internal error</body></html>"
        if path == "notfound":
            request.setResponseCode(404)
            request.setHeader(b"content-type", b"text/plain")  # type: ignore[no-untyped-call]
            return b"no such service"
        request.setHeader(b"content-type", b"text/xml; charset=UTF-8")  # type: ignore[no-untyped-call]
        if path == "fault":
            request.setResponseCode(500)
            return (
                b'<?xml version="1.0" encoding="UTF-8"?><SOAP-ENV:Envelope xmlns:SOAP-ENV="' + SOAP_ENV_NS.encode()
                + b'"><SOAP-ENV:Body><SOAP-ENV:Fault><faultcode>SOAP-ENV:Server.PersonNotFound</faultcode>'
                b"<faultstring>No such person</faultstring></SOAP-ENV:Fault></SOAP-ENV:Body></SOAP-ENV:Envelope>"
            )
        return echo_response(body)

    def render_GET(self, request: server.Request) -> bytes:
        """A REST GET (the bed's REST service points here too): a small JSON answer naming the path."""
        path = request.path.decode("ascii").strip("/")
        self.calls[path] = self.calls.get(path, 0) + 1
        request.setHeader(b"content-type", b"application/json")  # type: ignore[no-untyped-call]
        return b'{"path": "' + path.encode("ascii") + b'"}'

    def release(self) -> None:
        """Answer requests still held by ``/slow`` (at tear-down) so that no connection stays open."""
        for request in self.held:
            if not request.finished and not request._disconnected:
                request.finish()  # type: ignore[no-untyped-call]
        self.held.clear()


def echo_response(request_body: bytes) -> bytes:
    """The provider's answer: the request's header fields echoed, and ``<code>Response`` with what was asked."""
    root = parse_xml(request_body)
    header = root.find(f"{{{SOAP_ENV_NS}}}Header")
    body = root.find(f"{{{SOAP_ENV_NS}}}Body")
    assert header is not None and body is not None
    wrapper = body[0]
    envelope = etree.Element(f"{{{SOAP_ENV_NS}}}Envelope", nsmap={"SOAP-ENV": SOAP_ENV_NS})
    envelope.append(copy.deepcopy(header))
    out_body = etree.SubElement(envelope, f"{{{SOAP_ENV_NS}}}Body")
    answer = etree.SubElement(out_body, etree.QName(etree.QName(wrapper).namespace or NS, etree.QName(wrapper).localname + "Response"))
    etree.SubElement(answer, "echo").text = "".join(str(text) for text in wrapper.itertext())
    return bytes(etree.tostring(envelope, xml_declaration=True, encoding="UTF-8"))
