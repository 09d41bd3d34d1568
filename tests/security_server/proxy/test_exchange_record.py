"""The exchange record both proxies share: the summary event each side writes, with its ids and outcome."""

from __future__ import annotations

from typing import Any, cast

from structlog.testing import capture_logs

from security_server.core.errors import AccessDenied
from security_server.core.rest import RestRequest
from security_server.proxy.context import ProxyContext
from security_server.proxy.exchange import ExchangeJournal, Side

REST = RestRequest.from_client(
    "GET", "/r1/EE/GOV/70000002/provider/pets", [("X-Road-Client", "EE/GOV/70000001/consumer")],
    request_id="req-1", new_query_id="EE-q1",
)
NO_CONTEXT = cast(ProxyContext, None)  # the summary needs no context


def summary(side: Side, protocol: str, fault: AccessDenied | None, **learned: Any) -> dict[str, Any]:
    """The one event a journal of ``side`` writes for an exchange that learned ``learned``."""
    journal = ExchangeJournal(NO_CONTEXT, side)
    exchange = journal.start(protocol)
    for name, value in learned.items():
        setattr(exchange, name, value)
    with capture_logs() as events:
        journal.summary(exchange, fault)
    (event,) = events
    return dict(event)


def test_the_client_side_names_its_events_after_the_protocol() -> None:
    """Client proxy: rest_request_answered with the peer, ids, method and relayed fault."""
    event = summary(Side.CLIENT, "rest", None, rest=REST, request_id="req-1", peer="SERVER:EE/GOV/2/ss2")
    assert event["event"] == "rest_request_answered"
    assert {k: event[k] for k in ("x_request_id", "peer", "query_id", "method", "relayed_fault")} == {
        "x_request_id": "req-1", "peer": "SERVER:EE/GOV/2/ss2", "query_id": "EE-q1", "method": "GET", "relayed_fault": None,
    }
    assert "protocol" not in event


def test_a_failed_client_exchange_says_whether_it_was_sent() -> None:
    """Client proxy: soap_request_failed with the fault's code and whether the request left."""
    event = summary(Side.CLIENT, "soap", AccessDenied("no"), sent=True)
    assert event["event"] == "soap_request_failed"
    assert event["sent"] is True and event["fault_code"].endswith("access_denied")


def test_the_server_side_says_peer_request_refused_and_whether_the_provider_was_called() -> None:
    """Server proxy: peer_request_refused with protocol=rest for a REST call, no peer field."""
    event = summary(Side.SERVER, "soap", AccessDenied("no"), rest=REST)
    assert event["event"] == "peer_request_refused"
    assert event["protocol"] == "rest" and event["provider_called"] is False
    assert "peer" not in event
