"""The proxy test bed set up as X-Road's own proxy tests expect the federation: member-level services, a provider
that answers any X-Road request, the client proxy listening on a loopback port, and X-Road's query files with
their identifiers rewritten to ours.

X-Road's query files (tests/vectors/xroad/queries/, see its README) name instance ``EE``, class ``BUSINESS``,
members ``consumer`` and ``producer`` and subsystems ``subsys1`` and ``subsys2``; here they become the consumer
member C (``EE/GOV/70000001``, owner of ss1) with its subsystem ``client``, and the provider member P
(``EE/GOV/70000002``, owner of ss2) with its subsystem ``service``. X-Road's baseline request (``getstate.query``)
is a member-level call: MEMBER client -> service ``getState`` of the member ``producer``.
"""

from __future__ import annotations

import copy
import http.client
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from lxml import etree
from twisted.internet import reactor as global_reactor
from twisted.internet import threads
from twisted.web import resource, server

from security_server.core.acl import AccessRight
from security_server.core.errors import SOAP_ENV_NS
from security_server.core.identifiers import ServiceId
from security_server.core.safexml import parse_xml
from security_server.core.soapattachments import is_multipart_related, parse_related
from security_server.proxy.client_proxy_site import client_proxy_site
from tests.federation.world import C, CONSUMER, P, PROVIDER, ExchangeBed, publish

REACTOR: Any = global_reactor

QUERIES = Path(__file__).resolve().parents[2] / "vectors" / "xroad" / "queries"

MR = "multipart/related; charset=UTF-8; boundary=jetty771207119h3h10dty"
"""The Content-Type X-Road's multipart test cases send."""

_REWRITES = (
    (b">BUSINESS<", b">GOV<"),
    (b">consumer<", b">70000001<"),
    (b">producer<", b">70000002<"),
    (b">attachment<", b">70000002<"),
    (b">subsys1<", b">client<"),
    (b">subsys2<", b">service<"),
)

MEMBER_SERVICES = ("getState", "testQuery", "test", "generateMtom")
"""P's member-level services (X-Road's ``producer`` services), granted to C and to its subsystem."""

GET_STATE = ServiceId(P, "getState")
SUBSYSTEM_GET_STATE = ServiceId(PROVIDER, "getState")


def query(name: str) -> bytes:
    """An X-Road query file with its identifiers rewritten to the test federation's."""
    data = (QUERIES / name).read_bytes()
    for old, new in _REWRITES:
        data = data.replace(old, new)
    return data


@dataclass
class Received:
    """What the provider got: its Content-Type, SOAPAction (None when absent) and body."""

    content_type: str
    soap_action: str | None
    body: bytes


@dataclass
class XRoadProvider(resource.Resource):
    """A provider answering any X-Road request: its header echoed, ``<wrapper>Response`` in its body."""

    isLeaf = True
    received: list[Received] = field(default_factory=list)
    answer_form: Callable[[bytes], tuple[str, bytes]] | None = None
    """When set, the ``(Content-Type, body)`` to answer with, from the echo's SOAP bytes (a multipart answer)."""

    def __post_init__(self) -> None:
        resource.Resource.__init__(self)  # type: ignore[no-untyped-call]  # Twisted leaves it unannotated

    def render_POST(self, request: server.Request) -> bytes:
        """Record the request, answer with the echo."""
        content_type = (request.getHeader(b"content-type") or b"").decode("latin-1")
        action = request.getHeader(b"soapaction")
        body = request.content.read() if request.content is not None else b""
        self.received.append(Received(content_type, None if action is None else action.decode("latin-1"), body))
        soap = parse_related(content_type, body).soap.body if is_multipart_related(content_type) else body
        if self.answer_form is not None:
            answer_type, answer = self.answer_form(echo(soap))
            request.setHeader(b"content-type", answer_type.encode("latin-1"))  # type: ignore[no-untyped-call]
            return answer
        request.setHeader(b"content-type", b"text/xml; charset=UTF-8")  # type: ignore[no-untyped-call]
        return echo(soap)


def echo(request_body: bytes) -> bytes:
    """The answer to ``request_body``: its SOAP header as it came, and ``<wrapper>Response`` holding the text."""
    root = parse_xml(request_body.removeprefix(b"\xef\xbb\xbf"))
    header = root.find(f"{{{SOAP_ENV_NS}}}Header")
    body = root.find(f"{{{SOAP_ENV_NS}}}Body")
    assert header is not None and body is not None
    wrapper = etree.QName(body[0])
    envelope = etree.Element(f"{{{SOAP_ENV_NS}}}Envelope", nsmap={"SOAP-ENV": SOAP_ENV_NS})
    envelope.append(copy.deepcopy(header))
    answer = etree.SubElement(etree.SubElement(envelope, f"{{{SOAP_ENV_NS}}}Body"), etree.QName(wrapper.namespace, wrapper.localname + "Response"))
    answer.text = "".join(str(text) for text in body[0].itertext())
    return bytes(etree.tostring(envelope, xml_declaration=True, encoding="UTF-8"))


@dataclass(frozen=True)
class HttpAnswer:
    """An HTTP answer as the IS sees it: status, headers (lower-case names, every value) and body."""

    status: int
    headers: Mapping[str, list[str]]
    body: bytes

    def header(self, name: str) -> str | None:
        """The first value of header ``name``, or None."""
        values = self.headers.get(name.lower())
        return values[0] if values else None


def _exchange(port: int, method: str, path: str, body: bytes | None, headers: Mapping[str, str]) -> HttpAnswer:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.putrequest(method, path, skip_accept_encoding=True)
        for name, value in headers.items():
            connection.putheader(name, value)
        if body is not None:
            connection.putheader("Content-Length", str(len(body)))
        connection.endheaders(body)
        response = connection.getresponse()
        answer: dict[str, list[str]] = {}
        for name, value in response.getheaders():
            answer.setdefault(name.lower(), []).append(value)
        return HttpAnswer(response.status, answer, response.read())
    finally:
        connection.close()


async def http_exchange(
    port: int, method: str, path: str, body: bytes | None = None, headers: Mapping[str, str] | None = None
) -> HttpAnswer:
    """One HTTP exchange with a loopback port, in a thread (a plain client: headers exactly as given)."""
    answer: HttpAnswer = await threads.deferToThread(_exchange, port, method, path, body, headers or {})
    return answer


class XRoadBed(ExchangeBed):
    """ExchangeBed with P's member-level services on an X-Road-style provider, and the client proxy's site on a
    loopback port (requests go over real HTTP, as an IS sends them)."""

    def setUp(self) -> None:
        super().setUp()
        self.xroad_provider = XRoadProvider()
        provider_site = server.Site(self.xroad_provider)  # type: ignore[no-untyped-call]
        provider_site.timeOut = None
        self.provider_port = REACTOR.listenTCP(0, provider_site, interface="127.0.0.1")
        url = f"http://127.0.0.1:{self.provider_port.getHost().port}/xroad"
        store = self.provider.store
        for code in MEMBER_SERVICES:
            publish(store, ServiceId(P, code), url, grant_to=C)
            store.grant(AccessRight.for_service(CONSUMER, ServiceId(P, code)))
        publish(store, SUBSYSTEM_GET_STATE, url, grant_to=CONSUMER)
        site = client_proxy_site(self.client_proxy)
        site.timeOut = None
        self.client_port = REACTOR.listenTCP(0, site, interface="127.0.0.1")
        self.addCleanup(self.client_port.stopListening)
        self.addCleanup(self.provider_port.stopListening)

    async def http(
        self, body: bytes | None, content_type: str | None = "text/xml; charset=UTF-8", *, method: str = "POST",
        path: str = "/", headers: Mapping[str, str] | None = None,
    ) -> HttpAnswer:
        """Send one request to the client proxy over loopback HTTP, as an IS does."""
        sent = dict(headers or {})
        if content_type is not None:
            sent["Content-Type"] = content_type
        return await http_exchange(self.client_port.getHost().port, method, path, body, sent)
