"""Both proxies' ports guard their connections (issue 22 items 3 and 6): a head that arrives too slowly, a body that
stalls and a kept-alive connection left idle are closed after their timeouts; a head over the limit is answered 414
or 431 in the caller's form (REST error JSON or a SOAP fault) rather than closed; past the connection cap a new
connection is answered 503 and counted. All on a fake clock and in-memory transports.
"""

from __future__ import annotations

import gc
import json
from types import SimpleNamespace
from typing import Any, Callable, cast

import pytest
from lxml import etree
from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure

from security_server.core.config import ConnectionLimits, IniLayer, LayeredConfig, MessageLimits
from security_server.core.errors import BusError
from security_server.core.rest import rest_error_of
from security_server.core.soap import FAULT_ANSWER_CONTENT_TYPE
from security_server.metrics import GaugeSources, ServerMetrics
from security_server.proxy.bounded_request import BoundedSite
from security_server.proxy.client_proxy import ClientProxy
from security_server.proxy.client_proxy_site import client_proxy_site
from security_server.proxy.bounded_request import BoundedRequest
from security_server.proxy.connection_limits import (
    TRIM_AFTER_CLOSED,
    TRIM_DELAY_SECONDS,
    HeapTrimmer,
    RefusingProtocol,
    resolve_max_connections,
)
from security_server.proxy.guarded_channel import MAX_REQUEST_HEADERS, GuardedChannel
from security_server.proxy.peerlink import ServerProxyHandler
from security_server.proxy.server_proxy_site import ServerProxyResource, server_proxy_site

HEAD_LIMIT = 4096
LIMITS = ConnectionLimits(header_timeout_seconds=30, body_timeout_seconds=20, idle_timeout_seconds=120, max_connections=3)
ADDRESS = IPv4Address("TCP", "127.0.0.1", 40000)


class FakeProxy:
    """The parts of :class:`ClientProxy` the client proxy's site calls here: answers as the real one makes them."""

    def __init__(self) -> None:
        self.context = SimpleNamespace(limits=MessageLimits(max_header_bytes=HEAD_LIMIT))
        self.refused: list[BusError] = []

    def refuse(self, error: BusError) -> tuple[int, str, bytes]:
        """X-Road's fault form, as :meth:`ClientProxy.refuse`."""
        self.refused.append(error)
        return 200, FAULT_ANSWER_CONTENT_TYPE, error.to_soap_fault()

    def refuse_rest(self, error: BusError, accept: str | None) -> Any:
        """The REST error, as :meth:`ClientProxy.refuse_rest`."""
        self.refused.append(error)
        return rest_error_of(error, accept=accept, own_status=True)

    def list_clients(self, accept: str | None, instance: str | None = None) -> tuple[int, str, bytes]:
        """A fixed client list."""
        return 200, "text/xml", b"<clients/>"


class Transport(StringTransport):
    """A transport that remembers a half-close and an abort."""

    half_closed = False
    aborted = False

    def loseWriteConnection(self) -> None:
        """Note the half-close."""
        self.half_closed = True

    def abortConnection(self) -> None:
        """Note the abort."""
        self.aborted = True
        super().abortConnection()  # type: ignore[no-untyped-call]  # Twisted's test helper is unannotated

    def value(self) -> bytes:
        """What was written."""
        written: bytes = super().value()  # type: ignore[no-untyped-call]
        return written


def client_site(clock: Clock, limits: ConnectionLimits = LIMITS) -> BoundedSite:
    """The client proxy's site on ``clock`` with a fake proxy."""
    return client_proxy_site(cast(ClientProxy, FakeProxy()), connections=limits, reactor=clock)


def server_site(clock: Clock, limits: ConnectionLimits = LIMITS) -> BoundedSite:
    """The server proxy's site on ``clock`` (its handler is never called: only GETs and refusals here)."""
    resource = ServerProxyResource(cast(ServerProxyHandler, object()), max_body_bytes=1024)
    return server_proxy_site(resource, connections=limits, max_head_bytes=HEAD_LIMIT, reactor=clock)


SITES = pytest.mark.parametrize("make_site", [client_site, server_site], ids=["client", "server"])

ANSWERED_GET = {client_site: b"GET /listClients HTTP/1.1\r\nHost: ss\r\n\r\n", server_site: b"GET / HTTP/1.1\r\nHost: ss\r\n\r\n"}
"""A request each site answers at once (the client list; the server proxy's wrong-method fault)."""


def closing(transport: Transport) -> bool:
    """Whether the site asked to close the connection."""
    return bool(transport.disconnecting)


def connect(site: BoundedSite) -> tuple[Any, Transport]:
    """A connection to ``site``: its protocol and transport."""
    protocol = site.buildProtocol(cast(Any, ADDRESS))
    transport = Transport()  # type: ignore[no-untyped-call]
    protocol.makeConnection(transport)
    return protocol, transport


def lose(protocol: Any, transport: Transport) -> None:
    """Finish closing a connection the site asked to close (what the reactor does)."""
    protocol.connectionLost(Failure(ConnectionDone()))  # type: ignore[no-untyped-call]


def status_of(answer: bytes) -> int:
    """The status code of an answer."""
    return int(answer.split(b" ", 2)[1])


def head_and_body(answer: bytes) -> tuple[dict[str, str], bytes]:
    """The headers (lower-cased names) and body of an answer."""
    head, _, body = answer.partition(b"\r\n\r\n")
    headers = {}
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    return headers, body


def fault_code(body: bytes) -> str:
    """The faultcode of a SOAP fault."""
    code = etree.fromstring(body).find(".//faultcode")
    assert code is not None and code.text is not None
    return code.text


@SITES
def test_a_head_sent_slowly_is_cut_off_after_the_header_timeout(make_site: Any) -> None:
    """A client that sends its head a byte every few seconds is closed 30 s after connecting, counted as header."""
    clock = Clock()
    site = make_site(clock)
    protocol, transport = connect(site)
    for byte in (b"POST / HTTP/1.1\r\nHost: a\r\nX-Slow: " + b"x" * 40)[:29]:
        protocol.dataReceived(bytes([byte]))
        clock.advance(1)
    assert not closing(transport)
    clock.advance(1)
    assert closing(transport) and transport.value() == b""
    assert site.guard.connections.timed_out["header"] == 1
    clock.advance(15)
    assert transport.aborted  # did not go when asked: aborted after Twisted's abortTimeout


@SITES
def test_a_connection_that_sends_nothing_is_closed_after_the_header_timeout(make_site: Any) -> None:
    """An idle new connection (nothing sent) is closed after the header timeout, not Twisted's 12 hours."""
    clock = Clock()
    site = make_site(clock)
    _, transport = connect(site)
    clock.advance(29.9)
    assert not closing(transport)
    clock.advance(0.1)
    assert closing(transport)


@SITES
def test_a_kept_alive_connection_is_closed_after_the_idle_timeout(make_site: Any) -> None:
    """After an answer, a kept-alive connection waits 120 s for its next request, then is closed as idle."""
    clock = Clock()
    site = make_site(clock)
    protocol, transport = connect(site)
    protocol.dataReceived(ANSWERED_GET[make_site])
    assert status_of(transport.value()) == 200
    clock.advance(119)
    assert not closing(transport)
    clock.advance(1)
    assert closing(transport)
    assert site.guard.connections.timed_out == {"header": 0, "body": 0, "idle": 1}


@SITES
def test_the_next_head_on_a_kept_alive_connection_is_timed_from_its_first_byte(make_site: Any) -> None:
    """The header timeout of a second request runs from its first byte, not from the connection."""
    clock = Clock()
    site = make_site(clock)
    protocol, transport = connect(site)
    protocol.dataReceived(ANSWERED_GET[make_site])
    clock.advance(100)
    protocol.dataReceived(b"G")
    clock.advance(29)
    assert not closing(transport)
    clock.advance(1)
    assert closing(transport) and site.guard.connections.timed_out["header"] == 1


@SITES
def test_a_stalled_body_is_cut_off_and_a_slow_one_is_not(make_site: Any) -> None:
    """A body that makes progress within the body timeout is read on; one that stops for 20 s is closed."""
    clock = Clock()
    site = make_site(clock)
    protocol, transport = connect(site)
    protocol.dataReceived(b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Type: text/xml\r\nContent-Length: 100\r\n\r\n<a")
    for _ in range(3):
        clock.advance(19)
        protocol.dataReceived(b"b")
    assert not closing(transport)
    clock.advance(20)
    assert closing(transport)
    assert site.guard.connections.timed_out == {"header": 0, "body": 1, "idle": 0}


def test_a_whole_head_stops_the_header_timer() -> None:
    """A head completed in time is not cut off by the header timer while its body arrives."""
    clock = Clock()
    site = client_site(clock, ConnectionLimits(header_timeout_seconds=30, body_timeout_seconds=25))
    protocol, transport = connect(site)
    protocol.dataReceived(b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n")
    clock.advance(24)
    protocol.dataReceived(b"12345")
    clock.advance(24)
    assert not closing(transport)


def refusal(make_site: Any, request: bytes) -> tuple[int, dict[str, str], bytes, Transport, BoundedSite]:
    """Send ``request`` on a new connection; the answer's status, headers and body, the transport and site."""
    site = make_site(Clock())
    protocol, transport = connect(site)
    protocol.dataReceived(request)
    answer = transport.value()
    headers, body = head_and_body(answer)
    return status_of(answer), headers, body, transport, site


LONG = b"a" * (HEAD_LIMIT + 10)

OVERSIZED = [
    pytest.param(b"GET /r1/INST/GOV/1/SUB/svc/" + LONG + b" HTTP/1.1\r\nHost: a\r\n\r\n", 414, id="uri"),
    pytest.param(b"GET /r1/INST/GOV/1/SUB/svc HTTP/1.1\r\nHost: a\r\nX-Big: " + LONG + b"\r\n\r\n", 431, id="header"),
    pytest.param(
        b"GET /r1/INST/GOV/1/SUB/svc HTTP/1.1\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(MAX_REQUEST_HEADERS + 1)) + b"\r\n",
        431, id="header-count",
    ),
    pytest.param(
        b"GET /r1/INST/GOV/1/SUB/svc HTTP/1.1\r\n" + b"".join(b"X-%d: %s\r\n" % (i, b"v" * 100) for i in range(60)) + b"\r\n",
        431, id="head-size",
    ),
]


@pytest.mark.parametrize(("request_bytes", "status"), OVERSIZED)
def test_an_oversized_rest_head_is_answered_with_the_error_json(request_bytes: bytes, status: int) -> None:
    """A REST call with a URI, header or head over the limit, or too many headers, gets 414 / 431 with X-Road's
    error JSON (``client.bad_request``, ``X-Road-Error``), then the connection is half-closed."""
    code, headers, body, transport, _ = refusal(client_site, request_bytes)
    assert code == status
    assert headers["x-road-error"] == "client.bad_request"
    assert headers["connection"] == "close" and int(headers["content-length"]) == len(body)
    error = json.loads(body)
    assert error["type"] == "client.bad_request" and error["detail"]
    assert transport.half_closed


@pytest.mark.parametrize(("request_bytes", "status"), OVERSIZED)
def test_an_oversized_soap_head_is_answered_with_the_fault_form(request_bytes: bytes, status: int) -> None:
    """A SOAP request with a head over the limit gets 414 / 431 with X-Road's SOAP fault (``client.bad_request``)."""
    soap = request_bytes.replace(b"GET /r1/INST/GOV/1/SUB/svc", b"POST /soap", 1)
    code, headers, body, _, _ = refusal(client_site, soap)
    assert code == status
    assert headers["content-type"] == FAULT_ANSWER_CONTENT_TYPE and headers["soapaction"] == ""
    assert fault_code(body) == "client.bad_request"


@pytest.mark.parametrize(("request_bytes", "status"), OVERSIZED)
def test_an_oversized_head_to_the_server_proxy_is_answered_with_its_fault_form(request_bytes: bytes, status: int) -> None:
    """The server proxy answers a head over the limit with 414 / 431 and its fault (``server.serverproxy.bad_request``)."""
    code, headers, body, _, _ = refusal(server_site, request_bytes.replace(b"GET", b"POST", 1))
    assert code == status
    assert headers["content-type"] == FAULT_ANSWER_CONTENT_TYPE
    assert fault_code(body) == "server.serverproxy.bad_request"


def test_the_rest_refusal_answers_xml_when_asked() -> None:
    """A REST call asking for XML (``Accept``) gets its 431 error as XML."""
    request = b"GET /r1/INST/GOV/1/SUB/svc HTTP/1.1\r\nAccept: application/xml\r\nX-Big: " + LONG + b"\r\n\r\n"
    code, headers, body, _, _ = refusal(client_site, request)
    assert code == 431 and headers["content-type"].startswith("application/xml")
    assert etree.fromstring(body).findtext("type") == "client.bad_request"


@SITES
def test_nothing_after_a_refusal_is_read(make_site: Any) -> None:
    """After the 431 the connection drops what else arrives and answers nothing more; it is aborted if the caller
    does not close."""
    clock = Clock()
    site = make_site(clock)
    protocol, transport = connect(site)
    protocol.dataReceived(b"POST / HTTP/1.1\r\nX-Big: " + LONG + b"\r\n")
    answered = transport.value()
    protocol.dataReceived(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n" * 3)
    assert transport.value() == answered and status_of(answered) == 431
    clock.advance(30)
    assert transport.aborted


@SITES
def test_a_head_under_the_limit_is_served(make_site: Any) -> None:
    """A head just under the limits (header count and size) is served as before."""
    site = make_site(Clock())
    protocol, transport = connect(site)
    request = ANSWERED_GET[make_site].replace(b"Host: ss\r\n", b"".join(b"X-%d: 1\r\n" % i for i in range(MAX_REQUEST_HEADERS - 1)))
    protocol.dataReceived(request)
    assert status_of(transport.value()) == 200


@SITES
def test_past_the_cap_a_connection_is_answered_503_and_counted(make_site: Any) -> None:
    """With the cap (3) reached, a new connection gets 503 in the fault form and is counted; once one closes, the
    next is served."""
    clock = Clock()
    site = make_site(clock)
    open_ones = [connect(site) for _ in range(3)]
    protocol, transport = connect(site)
    assert isinstance(protocol, RefusingProtocol)
    protocol.dataReceived(b"POST /soap HTTP/1.1\r\nHost: a\r\n")
    headers, body = head_and_body(transport.value())
    assert status_of(transport.value()) == 503 and headers["connection"] == "close"
    assert fault_code(body).endswith(".internal_error") and fault_code(body).startswith("server.")
    assert site.guard.connections.refused == 1 and len(site.guard.connections.open) == 3
    clock.advance(5)
    assert transport.aborted  # the caller did not close: the refused connection does not stay
    lose(*open_ones[0])
    protocol, _ = connect(site)
    assert isinstance(protocol, GuardedChannel)


def test_a_rest_caller_past_the_cap_gets_the_error_json() -> None:
    """The client proxy's 503 for a REST call is X-Road's error JSON with ``X-Road-Error``."""
    site = client_site(Clock(), ConnectionLimits(max_connections=1))
    connect(site)
    protocol, transport = connect(site)
    protocol.dataReceived(b"GET /r1/INST/GOV/1/SUB/svc HTTP/1.1\r\n")
    headers, body = head_and_body(transport.value())
    assert status_of(transport.value()) == 503
    assert headers["x-road-error"] == "server.clientproxy.internal_error" == json.loads(body)["type"]
    assert transport.half_closed


@SITES
def test_closed_connections_are_no_longer_counted(make_site: Any) -> None:
    """Every connection lost, however it ended, leaves the open set: after a flood the count is back to 0."""
    clock = Clock()
    site = make_site(clock)
    connections = [connect(site) for _ in range(3)]
    connections[0][0].dataReceived(b"POST / HTTP/1.1\r\nX-Big: " + LONG + b"\r\n")
    clock.advance(30)
    for protocol, transport in connections:
        lose(protocol, transport)
    assert len(site.guard.connections.open) == 0


def test_the_metrics_show_open_refused_and_timed_out_connections() -> None:
    """``/metrics`` exports the open gauge, the refused counter and the timed-out counter by reason, per proxy."""
    clock = Clock()
    site = client_site(clock, ConnectionLimits(max_connections=1))
    connect(site)
    connect(site)
    clock.advance(30)
    text = ServerMetrics(GaugeSources(proxy_connections=lambda: {"client": site.guard.connections})).render().decode()
    assert 'fedbus_proxy_connections_open{proxy="client"} 1.0' in text
    assert 'fedbus_proxy_connections_refused_total{proxy="client"} 1.0' in text
    assert 'fedbus_proxy_connections_timed_out_total{proxy="client",reason="header"} 1.0' in text


def test_the_settings_are_read_from_the_proxy_section() -> None:
    """``[proxy] client-*`` and ``server-*`` set each port's limits; absent keys keep the X-Road-like defaults."""
    config = LayeredConfig.from_layers(
        [IniLayer("local.ini", "[proxy]\nclient-header-timeout-seconds = 5\nserver-max-connections = 50\n")]
    )
    assert ConnectionLimits.from_config(config, "client") == ConnectionLimits(header_timeout_seconds=5)
    assert ConnectionLimits.from_config(config, "server") == ConnectionLimits(max_connections=50)
    assert ConnectionLimits() == ConnectionLimits(30, 30, 120, 0)


def test_the_default_cap_is_a_quarter_of_the_descriptor_limit() -> None:
    """A cap of 0 resolves to a quarter of ``ulimit -n``; a set cap is kept."""
    assert resolve_max_connections(0, nofile=lambda: (256, 4096)) == 64
    assert resolve_max_connections(10, nofile=lambda: (256, 4096)) == 10


def recorder(trims: list[bool]) -> Callable[[], bool]:
    """A stand-in for ``malloc_trim`` that notes each call."""

    def trim() -> bool:
        trims.append(True)
        return True

    return trim


@SITES
def test_after_a_flood_closes_no_channel_is_left_and_the_heap_is_trimmed_once(make_site: Any) -> None:
    """700 connections (idle, slow, oversized, refused) opened and closed: afterwards no channel or request of the
    site is alive (gc), none is counted open, and the heap trimmer ran exactly once (issue 22 item 5)."""
    clock = Clock()
    site = make_site(clock, ConnectionLimits(max_connections=600))
    trims: list[bool] = []
    site.guard.connections.trimmer = HeapTrimmer(clock.callLater, trim=recorder(trims))
    flood = [connect(site) for _ in range(700)]
    for protocol, _ in flood[:100]:
        protocol.dataReceived(b"POST / HTTP/1.1\r\nX-Big: " + LONG + b"\r\n")
    for protocol, _ in flood[100:200]:
        protocol.dataReceived(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\nab")
    clock.advance(30)
    for protocol, transport in flood:
        lose(protocol, transport)
    del flood, protocol, transport
    clock.advance(TRIM_DELAY_SECONDS)
    gc.collect()
    assert sum(1 for o in gc.get_objects() if isinstance(o, GuardedChannel) and o.site is site) == 0
    assert sum(1 for o in gc.get_objects() if isinstance(o, BoundedRequest) and getattr(o.channel, "site", None) is site) == 0
    assert len(site.guard.connections.open) == 0 and site.guard.connections.refused == 100
    assert trims == [True]


def test_the_trimmer_waits_for_enough_closed_connections() -> None:
    """Fewer than TRIM_AFTER_CLOSED closed connections schedule no trim; reaching it schedules one, run once."""
    clock = Clock()
    trims: list[bool] = []
    trimmer = HeapTrimmer(clock.callLater, trim=recorder(trims))
    for _ in range(TRIM_AFTER_CLOSED - 1):
        trimmer.connection_closed()
    clock.advance(TRIM_DELAY_SECONDS * 2)
    assert trims == []
    for _ in range(TRIM_AFTER_CLOSED * 2):
        trimmer.connection_closed()
    clock.advance(TRIM_DELAY_SECONDS)
    assert trims == [True] and trimmer.trims == 1


@SITES
def test_a_request_that_arrives_whole_leaves_no_timer_of_ours(make_site: Any) -> None:
    """A kept-alive request read whole in one go schedules no header or body timer (only Twisted's idle one runs)."""
    clock = Clock()
    site = make_site(clock)
    protocol, transport = connect(site)
    for _ in range(3):
        protocol.dataReceived(ANSWERED_GET[make_site])
    assert transport.value().count(b"HTTP/1.1 200 ") == 3
    assert [c for c in clock.getDelayedCalls() if getattr(c.func, "__name__", "") == "_too_slow"] == []
