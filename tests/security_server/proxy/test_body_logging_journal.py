"""The proxies log bodies as [messagelog] message-body-logging says (proxy/exchange.py ExchangeJournal.record)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import pytest
from twisted.internet.defer import Deferred, ensureDeferred, succeed

from security_server.core.body_logging import BodyLogging
from security_server.core.identifiers import ClientId
from security_server.core.logchain import LogEntry
from security_server.core.rest import RestRequest
from security_server.core.soap import parse_soap
from security_server.proxy.exchange import Exchange, ExchangeJournal, Side
from tests.federation.evidence import exchange, soap_message

PROVIDER = ClientId("EE", "GOV", "70000311", "provider")
REST_HEAD = RestRequest.from_client(
    "POST", "/r1/EE/GOV/70000311/provider/getRandom", [("X-Road-Client", "EE/GOV/70000310/consumer")],
    request_id="r-1", new_query_id="q-rest",
).to_bytes()


@dataclass
class RecordingLog:
    """A message log that keeps what it is given."""

    body_logging: BodyLogging
    entries: list[LogEntry] = field(default_factory=list)

    def log(self, entry: LogEntry) -> Deferred[Any]:
        self.entries.append(entry)
        return succeed(None)


@dataclass
class Context:
    """The little of ProxyContext that the journal reads when it records."""

    message_log: RecordingLog
    reactor: Any = None


def _soap_exchange(side: Side) -> Exchange:
    made = Exchange(side)
    made.soap = parse_soap(soap_message("q-soap", response=False), "text/xml", max_bytes=1 << 20)
    return made


def _rest_exchange(side: Side) -> Exchange:
    made = Exchange(side, "rest")
    made.rest = RestRequest.parse(REST_HEAD)
    return made


def _logged(policy: BodyLogging, side: Side, rest: bool) -> LogEntry:
    """What the journal hands the log for a request with a body, on ``side``, under ``policy``."""
    log = RecordingLog(policy)
    journal = ExchangeJournal(Context(log), side)  # type: ignore[arg-type]  # a stand-in context
    request, _ = exchange("q", attachments=(b'{"secret": 1}',))
    if rest:
        request = replace(request, message=REST_HEAD)
    done: list[object] = []
    ensureDeferred(journal.record(request, _rest_exchange(side) if rest else _soap_exchange(side))).addBoth(done.append)
    assert done == [None]  # the stand-in log answers at once
    [entry] = log.entries
    return entry


@pytest.mark.parametrize("rest", [False, True], ids=["soap", "rest"])
def test_a_remote_producer_listed_as_disabled_is_logged_without_body_by_the_client_proxy(rest: bool) -> None:
    """disabled-...-remote-producer-subsystems: the client proxy drops the body; the server proxy keeps it."""
    policy = BodyLogging(disabled_remote=frozenset({PROVIDER}))
    client_side = _logged(policy, Side.CLIENT, rest)
    assert client_side.attachments == () and b"seed" not in client_side.message
    server_side = _logged(policy, Side.SERVER, rest)
    assert server_side.attachments == (b'{"secret": 1}',)


@pytest.mark.parametrize("rest", [False, True], ids=["soap", "rest"])
def test_with_logging_off_only_the_listed_local_producer_keeps_its_body(rest: bool) -> None:
    """message-body-logging = false with enabled-...-local-producer-subsystems: the server proxy keeps that
    producer's body; the client proxy (remote lists, empty) drops it."""
    policy = BodyLogging(enabled=False, enabled_local=frozenset({PROVIDER}))
    assert (_logged(policy, Side.SERVER, rest)).attachments == (b'{"secret": 1}',)
    dropped = _logged(policy, Side.CLIENT, rest)
    assert dropped.attachments == ()
    if rest:
        assert dropped.message == REST_HEAD  # the REST message part is kept whole
    else:
        assert b"<SOAP-ENV:Body></SOAP-ENV:Body>" in dropped.message and b"<xroad:id>q</xroad:id>" in dropped.message
