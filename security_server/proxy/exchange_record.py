"""The operational record of one finished exchange (pr-opmon §2): what a proxy learned, in X-Road's fields.

Both proxies end every exchange in :meth:`ExchangeJournal.summary` (proxy/exchange.py), which hands
:func:`operational_record` to the recorder; it runs once per exchange, on the reactor thread, and anything it
raises is counted by the recorder, never passed into the exchange.

* ``securityServerType``: ``Client`` in the client proxy, ``Producer`` in the server proxy.
* Timestamps: the request in (the proxy took it), out (sent on: to the peer, or to the provider), the response in
  (from the peer or the provider) and out (answered), in Unix milliseconds of the reactor's clock.
* ``succeeded`` is false for a fault of ours and for a SOAP fault from the far side (X-Road records the relayed
  fault's code and string); a REST answer with an error status is an exchange that worked, recorded with its
  ``statusCode``, as X-Road does.
* Addresses are the security servers' addresses in the global configuration: the client side knows the server
  that answered, the producer side the server whose authentication certificate the TLS peer presented.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from security_server.core.errors import BusError
from security_server.core.globalconf import GlobalConf
from security_server.core.identifiers import SecurityServerId
from security_server.core.opmon.record import OperationalRecord, SecurityServerType, ServiceType

if TYPE_CHECKING:
    from security_server.proxy.context import ProxyContext
    from security_server.proxy.exchange import Exchange

FEDBUS_VERSION = "fedbus-0.1.0"
"""The ``xRoadVersion`` a record carries when the proxy was given no version of its own."""


def _address(conf: GlobalConf | None, server: SecurityServerId | None) -> str | None:
    if conf is None or server is None:
        return None
    return conf.server_address(server)


def operational_record(
    exchange: Exchange, fault: BusError | None, context: ProxyContext, *, x_road_version: str,
    internal_ip: str | None = None,
) -> OperationalRecord:
    """The record of ``exchange``, finished with ``fault`` (None when it was answered)."""
    from security_server.proxy.exchange import Side

    facts = exchange.facts
    client_side = exchange.side is Side.CLIENT
    succeeded, fault_code, fault_string = True, None, None
    if fault is not None:
        succeeded, fault_code, fault_string = False, fault.fault_code, fault.message
    else:
        far = exchange.relayed_fault if client_side else exchange.provider_fault
        if far is not None and not far.startswith("HTTP "):
            succeeded, fault_code, fault_string = False, far, facts.fault_string
    try:
        conf: GlobalConf | None = context.global_conf()
    except Exception:  # noqa: BLE001 - an outdated configuration leaves the addresses out, nothing more
        conf = None
    own = _address(conf, context.server_id)
    peer_server = facts.peer_server
    if peer_server is None and facts.peer_cert_der is not None and conf is not None:
        found = conf.server_for_auth_cert(facts.peer_cert_der)
        peer_server = None if found is None else found.id
    peer = _address(conf, peer_server)

    client = service = None
    message_id = user_id = issue = protocol_version = rest_method = rest_path = None
    represented: tuple[str | None, str] | None = None
    request_size = facts.request_size
    service_type = facts.service_type
    if exchange.soap is not None and exchange.soap.header is not None:
        header = exchange.soap.header
        client, service = header.client, header.service
        message_id, user_id, issue = header.id, header.user_id, header.issue
        protocol_version, represented = header.protocol_version, header.represented_party
        if request_size is None:
            request_size = len(exchange.soap.raw)
        service_type = service_type or ServiceType.WSDL
    elif exchange.rest is not None:
        rest = exchange.rest
        client, service = rest.client, rest.service
        message_id, user_id, issue, represented = rest.query_id, rest.user_id, rest.issue, rest.represented_party
        rest_method, rest_path = rest.method, rest.service_path or "/"
        service_type = service_type or ServiceType.REST
    return OperationalRecord(
        security_server_type=SecurityServerType.CLIENT if client_side else SecurityServerType.PRODUCER,
        succeeded=succeeded,
        request_in_ts=facts.request_in_ms,
        request_out_ts=facts.request_out_ms,
        response_in_ts=facts.response_in_ms,
        response_out_ts=facts.response_out_ms,
        client=client,
        service=service,
        rest_method=rest_method,
        rest_path=rest_path,
        represented_party_class=represented[0] if represented is not None else None,
        represented_party_code=represented[1] if represented is not None else None,
        message_id=message_id,
        message_user_id=user_id,
        message_issue=issue,
        message_protocol_version=protocol_version,
        client_security_server_address=own if client_side else peer,
        service_security_server_address=peer if client_side else own,
        request_size=request_size,
        request_mime_size=facts.request_mime_size,
        request_attachment_count=facts.request_attachments,
        response_size=facts.response_size,
        response_mime_size=facts.response_mime_size,
        response_attachment_count=facts.response_attachments,
        fault_code=fault_code,
        fault_string=fault_string,
        status_code=facts.status_code,
        service_type=ServiceType(service_type) if service_type is not None else None,
        x_road_version=x_road_version,
        security_server_internal_ip=internal_ip,
    )
