"""One exchange as both proxies see it: what it has learned so far, the one summary event it ends with, its failure
record, and the step both proxies take to send a message on (sign, encode the transport message, log durably).

The client proxy's summary is ``soap_request_answered`` / ``soap_request_failed`` (or ``rest_...``), the server
proxy's ``peer_request_answered`` / ``peer_request_refused``; both carry the exchange's ids and duration, and on
failure the fault's code and fault-detail UUID (CONVENTIONS.md habit 7: one summary line per exchange). Once the
request is in the message log, a failure is recorded there too (SECURITY-CASES.md: nothing half-written).
"""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable, Sequence

import structlog

from security_server.core.body_logging import BodyLogging, entry_without_body
from security_server.core.errors import BadRequest, BusError
from security_server.core.identifiers import ClientId, SecurityServerId
from security_server.core.logchain import Direction, LogEntry
from security_server.core.rest import RestRequest
from security_server.core.multipart import Part
from security_server.core.soap import SoapHeader, SoapMessage, parse_soap
from security_server.core.soapattachments import SoapWithAttachments, build_related, build_related_as, is_multipart_related
from security_server.core.transport import MessageContent, SignedMessage, encode_transport
from security_server.proxy.context import ProxyContext
from security_server.proxy.exchange_log import ExchangeIds, record, record_failure, service_name, signed_entry
from security_server.proxy.exchange_record import FEDBUS_VERSION, operational_record
from security_server.signer.batch_signer import BatchSigner


def message_form(content: MessageContent, original_content_type: str | None) -> tuple[str, bytes]:
    """A SOAP message as its receiver gets it, the provider a request or the IS an answer, in its sender's form
    (X-Road ``ProxyMessage.getSoapContentType`` and ``writeSoapContent``): when the sender's ``Content-Type``
    (``x-original-content-type``) is ``multipart/related``, under that type and its boundary, each part's
    headers kept (also with the SOAP part alone); else the SOAP message as it came, or, with attachments, a new
    ``multipart/related`` (a boundary that cannot carry these parts is replaced)."""
    related = is_multipart_related(original_content_type) if original_content_type is not None else False
    if not related and not content.attachments:
        return content.content_type, content.message
    soap_part = Part((("Content-Type", content.content_type), *content.headers), content.message)
    message = SoapWithAttachments(soap_part, content.attachments)
    if related and original_content_type is not None:
        kept = build_related_as(message, original_content_type)
        if kept is not None:
            return kept
    return build_related(message)


@dataclass(frozen=True, slots=True)
class SoapRequest:
    """A parsed SOAP request with its X-Road header (a request always has one: core/soap.py refuses a fault)."""

    soap: SoapMessage
    header: SoapHeader

    @classmethod
    def parse(cls, message: bytes, content_type: str, *, max_bytes: int) -> SoapRequest:
        """Parse ``message`` as a SOAP 4.0 request (the ``client.*`` faults of core/soap.py)."""
        soap = parse_soap(message, content_type, max_bytes=max_bytes)
        if soap.header is None:
            raise BadRequest("Malformed SOAP message: a request cannot be a SOAP fault")
        return cls(soap, soap.header)


@dataclass(slots=True)
class ExchangeFacts:
    """The facts of one exchange for its operational record (pr-opmon §2) and the phase metrics; the proxies fill
    them in as they go, and nothing reads them before the exchange is finished."""

    request_in_ms: int | None = None
    request_out_ms: int | None = None
    response_in_ms: int | None = None
    response_out_ms: int | None = None
    request_size: int | None = None
    request_mime_size: int | None = None
    request_attachments: int | None = None
    response_size: int | None = None
    response_mime_size: int | None = None
    response_attachments: int | None = None
    status_code: int | None = None
    fault_string: str | None = None
    """The fault string of a SOAP fault relayed from the far side (or the provider's own)."""
    service_type: str | None = None
    """Server proxy: the called service's description type (``WSDL``, ``REST``, ``OPENAPI3``)."""
    peer_server: SecurityServerId | None = None
    """Client proxy: the security server that answered."""
    peer_cert_der: bytes | None = None
    """Server proxy: the client's server's authentication certificate, once it passed (names that server)."""
    phases: dict[str, float] = field(default_factory=dict)


class Side(enum.Enum):
    """Which proxy an exchange runs in; it names the summary events and their fields."""

    CLIENT = "fedbus.proxy.client"
    SERVER = "fedbus.proxy.server"


@dataclass(slots=True)
class Exchange:
    """What one exchange has learned so far (for the summary event and the failure record)."""

    side: Side
    protocol: str = "soap"
    """``soap`` or ``rest``: the client proxy's summary event is named after it."""
    started: float = field(default_factory=time.monotonic)
    request_id: str | None = None
    soap: SoapMessage | None = None
    rest: RestRequest | None = None
    request_logged: bool = False
    sent: bool = False
    """Client proxy: the request went to a peer."""
    peer: str | None = None
    """Client proxy: the security server that answered."""
    relayed_fault: str | None = None
    """Client proxy: the fault code (or ``HTTP nnn``) the provider's side answered with."""
    answer_content_type: str | None = None
    """Client proxy: the Content-Type the provider answered with (``x-original-content-type``), when sent."""
    provider_called: bool = False
    """Server proxy: the provider's service was called."""
    provider_fault: str | None = None
    """Server proxy: the fault code (or ``HTTP nnn``) of the provider's own answer."""
    facts: ExchangeFacts = field(default_factory=lambda: ExchangeFacts())
    """What the operational record needs besides the above (times, sizes, status); see proxy/exchange_record.py."""

    def timed(self, phase: str, since: float) -> None:
        """Add the seconds from ``since`` (``time.monotonic()``) to now to ``phase`` (metrics.PHASES)."""
        phases = self.facts.phases
        phases[phase] = phases.get(phase, 0.0) + time.monotonic() - since

    def identity(self) -> tuple[str, str, str] | None:
        """``(query id, client, service)`` of the request once it is known."""
        if self.soap is not None and self.soap.header is not None:
            header = self.soap.header
            return header.id, str(header.client), service_name(header.service)
        if self.rest is not None:
            return self.rest.query_id, str(self.rest.client), str(self.rest.service)
        return None

    def producer(self) -> ClientId | None:
        """The member or subsystem that provides the called service, once the request is known."""
        if self.soap is not None and self.soap.header is not None:
            return self.soap.header.service.client
        if self.rest is not None:
            return self.rest.service.client
        return None

    def ids(self) -> ExchangeIds | None:
        """How the message log names this exchange, once the request is known."""
        identity = self.identity()
        return None if identity is None else ExchangeIds(*identity, self.request_id)

    def fields(self) -> dict[str, Any]:
        """The ids every event about this exchange carries."""
        fields: dict[str, Any] = {"x_request_id": self.request_id}
        if self.side is Side.CLIENT:
            fields["peer"] = self.peer
        identity = self.identity()
        if identity is not None:
            fields.update(query_id=identity[0], client=identity[1], service=identity[2])
        if self.rest is not None:
            if self.side is Side.SERVER:
                fields["protocol"] = "rest"
            fields["method"] = self.rest.method
        return fields


class ExchangeJournal:
    """What one proxy writes about its exchanges: message-log records, the failure record and the summary event."""

    def __init__(self, context: ProxyContext, side: Side, proxy_version: str | None = None) -> None:
        self._context = context
        self._side = side
        self._proxy_version = proxy_version
        self._recorder = getattr(context, "opmon", None)
        self.log = structlog.get_logger(side.value)

    def now_ms(self) -> int:
        """The reactor's time in Unix milliseconds (the operational record's timestamps)."""
        return int(self._context.reactor.seconds() * 1000)

    def start(self, protocol: str = "soap") -> Exchange:
        """A new exchange, timed from now."""
        exchange = Exchange(self._side, protocol)
        if self._recorder is not None:
            exchange.facts.request_in_ms = self.now_ms()
        return exchange

    async def record(self, entry: LogEntry, exchange: Exchange | None = None) -> None:
        """Append ``entry`` to the message log durably (``logging_failed`` when it cannot be); the time it took
        goes to ``exchange``'s ``log_commit`` phase when given."""
        started = time.monotonic()
        await record(self._context.message_log, self._loggable(entry, exchange))
        if exchange is not None:
            exchange.timed("log_commit", started)

    def _loggable(self, entry: LogEntry, exchange: Exchange | None) -> LogEntry:
        """``entry`` as the log keeps it: without its body when body logging is off for the exchange's producer on
        this side ([messagelog] ``message-body-logging`` and its exceptions; core/body_logging.py)."""
        policy = getattr(self._context.message_log, "body_logging", None)
        if not isinstance(policy, BodyLogging) or exchange is None:
            return entry
        client_side = self._side is Side.CLIENT
        if policy.logs_every_body(client_side=client_side) or policy.logs_body(exchange.producer(), client_side=client_side):
            return entry
        return entry_without_body(entry, rest=exchange.rest is not None)

    async def record_failure(self, exchange: Exchange, body: bytes, fault_code: str) -> None:
        """Record that an exchange whose request is in the log failed; never raises (the fault stands)."""
        ids = exchange.ids()
        if ids is None:
            return

        def not_logged(err: Exception) -> None:
            self.log.error("failure_record_not_logged", **exchange.fields(), reason=repr(err))

        await record_failure(self._context.message_log, ids, self._context.now(), body, fault_code, not_logged)

    def summary(self, exchange: Exchange, fault: BusError | None) -> None:
        """The one event of an exchange: answered (perhaps with a fault from the far side) or failed."""
        duration_ms = round((time.monotonic() - exchange.started) * 1000, 1)
        if exchange.side is Side.CLIENT:
            answered, failed = f"{exchange.protocol}_request_answered", f"{exchange.protocol}_request_failed"
            far_fault: dict[str, Any] = {"relayed_fault": exchange.relayed_fault}
            handed_on: dict[str, Any] = {"sent": exchange.sent}
        else:
            answered, failed = "peer_request_answered", "peer_request_refused"
            far_fault = {"provider_fault": exchange.provider_fault}
            handed_on = {"provider_called": exchange.provider_called}
        if fault is None:
            self.log.info(answered, **exchange.fields(), **far_fault, duration_ms=duration_ms)
        else:
            self.log.warning(failed, **exchange.fields(), **fault.log_fields(), **handed_on, duration_ms=duration_ms)
        self._monitor(exchange, fault)

    def _monitor(self, exchange: Exchange, fault: BusError | None) -> None:
        """Hand the finished exchange to operational monitoring and the metrics (ARCHITECTURE.md, "Observation
        flows one way"): nothing here waits, and nothing here can fail the exchange."""
        recorder = self._recorder
        if recorder is None:
            return
        try:
            facts = exchange.facts
            facts.response_out_ms = self.now_ms()
            facts.phases["total"] = time.monotonic() - exchange.started
            recorder.finished(
                lambda: operational_record(
                    exchange, fault, self._context, x_road_version=self._proxy_version or FEDBUS_VERSION,
                    internal_ip=recorder.internal_ip,
                ),
                facts.phases,
            )
        except Exception as err:  # noqa: BLE001 - monitoring never fails an exchange
            self.log.warning("opmon_record_dropped", error=f"{type(err).__name__}: {err}")


async def sign_and_log(
    signer: BatchSigner,
    journal: ExchangeJournal,
    member: ClientId,
    content: MessageContent,
    *,
    ids: ExchangeIds,
    direction: Direction,
    signing_time: datetime,
    logged_at: datetime,
    ocsp_responses: Callable[[], Sequence[bytes]] = tuple,
    exchange: Exchange | None = None,
) -> tuple[str, bytes]:
    """Sign ``content`` as ``member`` (XROAD-REFERENCE.md §4.2: over the message and every attachment or REST body),
    encode it as a transport message after ``ocsp_responses()`` and log it durably; the transport
    ``(Content-Type, body)`` to send. Nothing leaves before the record is durable. The time spent signing and
    logging goes to ``exchange``'s phases when given."""
    bodies = content.signed_bodies
    started = time.monotonic()
    signature = await signer.sign(member, content.message, signing_time, bodies)
    encoded = encode_transport(SignedMessage(content, signature, tuple(ocsp_responses())))
    if exchange is not None:
        exchange.timed("signing", started)
    await journal.record(signed_entry(ids, direction, logged_at, content.message, signature, bodies), exchange)
    return encoded
