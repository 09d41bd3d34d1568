"""The client proxy: the consumer's side of an exchange, facing the consumer's information system (IS).

The IS-facing site (proxy/client_proxy_site.py) routes by path: ``/r1/...`` is a REST r1 call, ``/listClients``
the client list, anything else a SOAP request.

* SOAP: the IS POSTs an X-Road SOAP 4.0 request, alone or with attachments (``multipart/related``, MTOM
  included; core/soapattachments.py); :meth:`ClientProxy.handle_soap` answers with the provider's signed,
  checked response in the provider's own form (a ``multipart/related`` answer under the provider's Content-Type
  and boundary, as X-Road answers it), or with the X-Road SOAP fault saying why not.
* REST: any method on ``/r1/{service id}[/path][?query]`` with ``X-Road-Client`` (core/rest.py, pr-rest);
  :meth:`ClientProxy.handle_rest` answers with the provider's status, headers and body plus the X-Road response
  headers, after checking ``X-Road-Request-Hash``; an error inside the bus is the REST error JSON (or XML when
  ``Accept`` asks for it) with ``X-Road-Error``: the error's own status for what the IS sent (400, 413 over a
  limit), 500 for ours, and X-Road's rule (500 for ``server.*``, else 400) for a fault relayed from the provider.
* ``GET /listClients``: :meth:`ClientProxy.list_clients` answers from the global configuration (pr-meta Annex
  C.1), XML or JSON by ``Accept``. The other metadata services (``listMethods``, ``allowedMethods``,
  ``getWsdl``, ``getOpenAPI``) are ordinary signed exchanges answered by the provider's server.

The steps run in X-Road's order for both protocols (XROAD-REFERENCE.md §4.1; X-Road ``ClientMessageProcessor``
and ``ClientRestMessageProcessor``):

1. the global configuration is in force (``server.clientproxy.global_conf_outdated``); a SOAP request's
   ``SOAPAction`` header is absent, empty or a quoted URI (``client.invalid_soap_action``, checked before the body
   is read, as X-Road does; it is passed on to the provider as it came);
2. the request is a SOAP 4.0 message under the configured size limit, parsed by the hardened parser (the
   ``client.*`` codes of core/soap.py: ``invalid_xml``, ``missing_header``, ``duplicate_header_field``,
   ``invalid_protocol_version``, ``inconsistent_headers``, ``invalid_client_identifier``, ...; for
   ``multipart/related`` also ``mime_parsing_failed``, ``missing_soap``, ``invalid_content_type``), or a REST
   call whose URI is within its limit and whose path, identifiers and headers are well formed (``bad_request``,
   ``invalid_client_identifier``; a service path that servers could read differently never leaves);
3. the client is a *registered* client of this server in the server configuration, and the global
   configuration has it registered on this server (``server.clientproxy.unknown_member``); the request came the
   way the client's connection type asks (plain HTTP, HTTPS, HTTPS with one of its internal TLS certificates:
   core/connection_type.py; ``server.clientproxy.ssl_authentication_failed``);
4. the provider is a known member (or subsystem) whose security servers the global configuration lists
   (``unknown_member``); a ``securityServer`` header narrows them to that one (``invalid_security_server``);
5. the request is signed with the *client member's* signing key, with its OCSP response, over the exact bytes
   the IS posted (XROAD-REFERENCE.md §4.2): the SOAP message, or the REST message part; with attachments or a
   REST body through a hash chain over every part; identical requests signed within one millisecond get distinct
   signing times (:class:`SigningClock`), so a retry is always a new signature that passes the provider's
   replay check;
6. the transport message (OCSP response of our authentication certificate, the message, the signature) is
   built, and the request is logged: the record is *durable* before anything leaves (``logging_failed`` /
   ``database_error``: nothing is sent);
7. the peer link delivers it to one of the provider's servers (fastest to connect, then the others;
   ``network_error`` when none can be reached);
8. the answer: a fault from the provider's side is passed through to the IS unchanged, as X-Road does;
   otherwise the peer's TLS certificate must be the registered authentication certificate of a server that
   hosts the provider (see *Peer verification* below), the response signature must verify and be made by the
   *provider member's* certificate, over every part, chained to an approved CA with a good, fresh OCSP
   response, and the response must echo the request's headers with the right ``requestHash`` (REST: client,
   ``X-Road-Id``, service, request id and ``X-Road-Request-Hash``; ``inconsistent_response``);
9. the response is logged (durable; attachments and REST bodies with it) and its exact bytes go to the IS.

Fault prefixes: a fault in what the IS sent keeps its ``client.`` prefix; every other fault is
``server.clientproxy.*``; a fault from the provider's server keeps its own code (e.g.
``server.serverproxy.access_denied``). Every SOAP fault, relayed ones included, is answered as X-Road 7.8 answers
it (``HandlerBase.sendErrorResponse``): HTTP 200, ``text/xml;charset=utf-8``, an empty ``SOAPAction`` header.
Whatever goes wrong, the IS gets an answer: a failure outside the steps (in the summary, say) is answered with
``server.clientproxy.internal_error`` and its cause logged (``soap_request_crashed``), as X-Road's handler catches
every ``Throwable``.

*Peer verification.* The link checks the peer before a byte of the request is written (the mutual-TLS link and
the in-memory one run a verifier, in production ``peer_trust.PeerAuthVerifier``: all of XROAD-REFERENCE.md §4.3
including OCSP); the client proxy only checks that the answer came from one of the servers it offered.

One structlog event is written per exchange (``soap_request_answered`` / ``soap_request_failed``, or
``rest_request_answered`` / ``rest_request_failed``), with the fault code and fault-detail UUID; message bodies
are never logged.
"""

from __future__ import annotations

import time
import uuid
from datetime import datetime
from typing import Mapping, Sequence

from cryptography import x509
from lxml import etree
from twisted.internet.defer import Deferred

from security_server.core.connection_type import PLAINTEXT, ConnectionType, IsConnection, check_connection
from security_server.core.errors import (
    BusError,
    InconsistentResponse,
    InternalError,
    InvalidMessage,
    InvalidSecurityServer,
    NetworkError,
    Origin,
    RequestTooLarge,
    SslAuthenticationFailed,
    UnknownMember,
)
from security_server.core.globalconf import GlobalConf
from security_server.core.identifiers import ClientId, SecurityServerId
from security_server.core.logchain import Direction
from security_server.core.message_trust import TrustCache, verify_message
from security_server.core.metadata import accepts_json, client_list, list_clients_json, list_clients_xml
from security_server.core.multipart import Limits
from security_server.core.rest import (
    JSON_CONTENT_TYPE,
    RestAnswer,
    RestRequest,
    RestResponse,
    header_value,
    rest_error,
    rest_error_of,
)
from security_server.core.rest_consistency import check_rest_response_consistency
from security_server.core.server_address import DEFAULT_SERVER_PROXY_PORT, peer_addresses
from security_server.core.signing_clock import SigningClock
from security_server.core.soap import (
    FAULT_ANSWER_CONTENT_TYPE,
    SOAP_CONTENT_TYPE,
    check_response_consistency,
    check_soap_action,
    parse_soap,
)
from security_server.core.soapattachments import is_multipart_related, parse_related
from security_server.core.transport import (
    FAULT_CONTENT_TYPE,
    REST_REQUEST,
    FaultMessage,
    MessageContent,
    MessageKind,
    TransportHeaders,
    TransportLimits,
    TransportMessage,
    decode_transport,
)
from security_server.proxy.context import ProxyContext
from security_server.proxy.exchange import Exchange, ExchangeJournal, Side, SoapRequest, message_form, sign_and_log
from security_server.proxy.exchange_log import ExchangeIds, received_entry, service_name
from security_server.proxy.peerlink import PeerAddress, PeerLink, PeerRequest
from security_server.signer.batch_signer import BatchSigner
from security_server.signer.signing_keys import SigningKeys

DEFAULT_PEER_TIMEOUT_SECONDS = 300.0
"""How long to wait for the provider's server to answer (longer than a provider service's default 60 s)."""

AUTH_CERT_CACHE_SECONDS = 60.0
"""How long our authentication certificate read from the soft token is reused."""


# --- the client proxy ---------------------------------------------------------------------------------------


def _header(headers: Mapping[str, str], name: str) -> str | None:
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value
    return None


class ClientProxy:
    """The consumer side of an exchange; see the module docstring for the steps."""

    def __init__(
        self,
        context: ProxyContext,
        link: PeerLink,
        *,
        peer_timeout_seconds: float = DEFAULT_PEER_TIMEOUT_SECONDS,
        default_peer_port: int = DEFAULT_SERVER_PROXY_PORT,
        signing_keys: SigningKeys | None = None,
        signer: BatchSigner | None = None,
        proxy_version: str | None = None,
    ) -> None:
        """``signer`` signs requests (one shared with the server proxy, so both sides' messages of a turn
        batch together); by default one of our own over ``signing_keys``."""
        self.context = context
        self.link = link
        self.peer_timeout_seconds = peer_timeout_seconds
        self.default_peer_port = default_peer_port
        self.signing_keys = signing_keys if signing_keys is not None else SigningKeys(context.token)
        self.signer = signer if signer is not None else BatchSigner(context.reactor, self.signing_keys, context.own_ocsp)
        self.proxy_version = proxy_version
        self.clock = SigningClock()
        self.trust = TrustCache()
        self.journal = ExchangeJournal(context, Side.CLIENT, proxy_version)
        self._auth_cert: tuple[float, x509.Certificate] | None = None
        self.internal_cert: bytes | None = None
        """This server's internal TLS certificate (DER), set by the HTTPS listener: a connection made with it passes
        connection type HTTPS (X-Road: a local connection)."""
        self._limits = TransportLimits(
            mime=Limits(max_body_bytes=context.limits.max_body_bytes + 1024 * 1024),
            max_attachments=context.limits.max_attachments,
        )

    # --- the IS-facing entry points ---------------------------------------------------------------------------

    def handle_soap(
        self, content_type: str, body: bytes, headers: Mapping[str, str], connection: IsConnection = PLAINTEXT
    ) -> Deferred[tuple[int, str, bytes]]:
        """Answer one IS request: ``(HTTP status, content type, body)``; never fails (faults are answers).

        ``body`` is a SOAP message, or a SOAP message with attachments (``multipart/related``, MTOM included);
        ``connection`` says how it came (plain HTTP, or TLS with the IS's certificate).
        """
        exchange = self.journal.start("soap")
        return Deferred.fromCoroutine(self._handle(exchange, content_type, body, headers, connection))

    def handle_rest(
        self,
        method: str,
        target: str,
        headers: Sequence[tuple[str, str]],
        body: bytes,
        connection: IsConnection = PLAINTEXT,
    ) -> Deferred[RestAnswer]:
        """Answer one REST r1 call (``target`` is the raw request target); never fails: an error inside the bus is
        the REST error JSON with ``X-Road-Error`` (pr-rest §4.6)."""
        exchange = self.journal.start("rest")
        return Deferred.fromCoroutine(self._handle_rest(exchange, method, target, headers, body, connection))

    def list_clients(self, accept: str | None, instance: str | None = None) -> tuple[int, str, bytes]:
        """``GET /listClients`` (pr-meta Annex C.1): the global configuration's members and subsystems, as XML,
        or as JSON when ``Accept`` names ``application/json``; answered here, nothing is exchanged."""
        try:
            conf = self.context.global_conf()
            conf.check_valid(self.context.now())
            entries = client_list(conf.members()) if instance in (None, "", conf.instance) else ()
        except Exception as err:  # noqa: BLE001 - answered with a fault, never raised
            fault = err if isinstance(err, BusError) else InternalError("Internal error", reason=repr(err))
            fault.at(Origin.CLIENT_PROXY)
            self.journal.log.warning("list_clients_failed", **fault.log_fields())
            return 200, FAULT_ANSWER_CONTENT_TYPE, fault.to_soap_fault()
        if accepts_json(accept):
            return 200, JSON_CONTENT_TYPE, list_clients_json(entries)
        return 200, SOAP_CONTENT_TYPE, list_clients_xml(entries)

    def refuse(self, error: BusError) -> tuple[int, str, bytes]:
        """The answer to a request refused before it could be read (wrong method, body over the limit)."""
        self.journal.summary(self.journal.start("soap"), error)
        return 200, FAULT_ANSWER_CONTENT_TYPE, error.to_soap_fault()

    def last_resort(self, err: BaseException) -> tuple[int, str, bytes]:
        """The answer when handling itself failed (X-Road ``AbstractClientProxyHandler`` catches every
        ``Throwable``): ``server.clientproxy.internal_error``, the cause in our log only."""
        fault = InternalError("Internal error", reason=repr(err), origin=Origin.CLIENT_PROXY)
        self.journal.log.error("soap_request_crashed", **fault.log_fields())
        return 200, FAULT_ANSWER_CONTENT_TYPE, fault.to_soap_fault()

    def last_resort_rest(self, err: BaseException, accept: str | None) -> RestAnswer:
        """:meth:`last_resort` for a REST call: X-Road's error JSON, 500, ``server.clientproxy.internal_error``."""
        fault = InternalError("Internal error", reason=repr(err), origin=Origin.CLIENT_PROXY)
        self.journal.log.error("rest_request_crashed", **fault.log_fields())
        return rest_error_of(fault, accept=accept)

    def refuse_rest(self, error: BusError, accept: str | None) -> RestAnswer:
        """The REST answer to a call refused before it could be read (URI or body over the limit)."""
        self.journal.summary(self.journal.start("rest"), error)
        return rest_error_of(error, accept=accept, own_status=True)

    async def _handle(
        self, exchange: Exchange, content_type: str, body: bytes, headers: Mapping[str, str], connection: IsConnection
    ) -> tuple[int, str, bytes]:
        try:
            try:
                answer = await self._process(exchange, content_type, body, headers, connection)
            except Exception as err:  # noqa: BLE001 - every failure is answered with a fault, never raised
                exchange.facts.status_code = 200  # X-Road answers every SOAP fault with HTTP 200
                fault = await self._fail(exchange, err)
                return 200, FAULT_ANSWER_CONTENT_TYPE, fault.to_soap_fault()
            exchange.facts.status_code = answer[0]
            self.journal.summary(exchange, None)
            return answer
        except Exception as err:  # noqa: BLE001 - the last resort: the IS always gets an answer
            return self.last_resort(err)

    async def _handle_rest(
        self,
        exchange: Exchange,
        method: str,
        target: str,
        headers: Sequence[tuple[str, str]],
        body: bytes,
        connection: IsConnection,
    ) -> RestAnswer:
        accept = header_value(headers, "Accept")
        try:
            try:
                answer = await self._process_rest(exchange, method, target, headers, body, connection)
            except Exception as err:  # noqa: BLE001 - every failure is answered with the error JSON, never raised
                fault = await self._fail(exchange, err)
                # pr-rest §4.6: 500 for our failures; for the IS's own faults its status (400, or 413 over a limit).
                error = rest_error_of(fault, accept=accept, own_status=fault.origin is Origin.CLIENT)
                exchange.facts.status_code = error.status
                return error
            exchange.facts.status_code = answer.status
            self.journal.summary(exchange, None)
            return answer
        except Exception as err:  # noqa: BLE001 - the last resort: the IS always gets an answer (issue 22 item 8)
            return self.last_resort_rest(err, accept)

    async def _fail(self, exchange: Exchange, err: Exception) -> BusError:
        """Turn a failure into the fault the IS gets, record it when the request is logged, write the summary."""
        fault = err if isinstance(err, BusError) else InternalError("Internal error", reason=repr(err))
        # A fault in what the IS sent keeps its client. prefix; anything else is ours.
        if exchange.sent or fault.origin is not Origin.CLIENT:
            fault.at(Origin.CLIENT_PROXY)
        if exchange.request_logged:
            await self.journal.record_failure(exchange, fault.to_soap_fault(), fault.fault_code)
        self.journal.summary(exchange, fault)
        return fault

    # --- SOAP ---------------------------------------------------------------------------------------------------

    async def _process(
        self, exchange: Exchange, content_type: str, body: bytes, headers: Mapping[str, str], connection: IsConnection
    ) -> tuple[int, str, bytes]:
        context = self.context
        now = context.now()
        conf = context.global_conf()
        conf.check_valid(now)
        check_soap_action(_header(headers, "SOAPAction"))

        # 2. the IS's request: the SOAP message, or the SOAP part and attachments of a multipart/related one
        if is_multipart_related(content_type):
            related = parse_related(
                content_type, body, limits=self._limits.mime, max_attachments=context.limits.max_attachments
            )
            request = SoapRequest.parse(related.soap.body, related.soap_content_type, max_bytes=context.limits.max_body_bytes)
            content = MessageContent(related.soap.body, related.soap_content_type, related.soap_headers, related.attachments)
            exchange.facts.request_mime_size, exchange.facts.request_attachments = len(body), len(related.attachments)
        else:
            request = SoapRequest.parse(body, content_type, max_bytes=context.limits.max_body_bytes)
            content = MessageContent(body, content_type)
        exchange.soap = request.soap
        header = request.header

        # 3-4. the client, and the provider's security servers
        self._check_client(conf, header.client, connection)
        provider = header.service.client
        peers = self._provider_peers(conf, provider, header.security_server, service_name(header.service))

        # 5-6. sign the SOAP part and every attachment, build the transport message, log durably
        request_id = exchange.request_id = str(uuid.uuid4())
        ids = ExchangeIds(header.id, str(header.client), service_name(header.service), request_id)
        transport_headers = TransportHeaders(
            request_id,
            original_content_type=content_type,
            original_soap_action=_header(headers, "SOAPAction"),
            proxy_version=self.proxy_version,
        )
        peer_request = await self._sign_request(exchange, ids, header.client, content, transport_headers, body, now)

        # 7-8. to the provider's server, and its checked answer
        answer = await self._exchange_with_peer(exchange, peers, peer_request, provider)
        if isinstance(answer, FaultMessage):
            return await self._relay_fault(exchange, answer.fault)
        response = answer.content
        reply = parse_soap(response.message, response.content_type, max_bytes=context.limits.max_body_bytes, is_response=True)
        if not reply.is_fault:
            check_response_consistency(request.soap, reply)

        # 9. log and answer with the exact bytes, in the provider's form: X-Road ClientMessageProcessor.sendResponse
        # answers under the provider's Content-Type (x-original-content-type), a multipart/related answer with its
        # boundary and part headers, also with the SOAP part alone (ProxyMessage.writeSoapContent).
        await self.journal.record(received_entry(ids, Direction.RESPONSE, context.now(), answer), exchange)
        answer_type, answer_body = message_form(response, exchange.answer_content_type)
        exchange.facts.response_size = len(response.message)
        if response.attachments:
            exchange.facts.response_mime_size, exchange.facts.response_attachments = len(answer_body), len(response.attachments)
        if reply.is_fault:
            exchange.relayed_fault = (reply.fault_code or "unknown")[:200]
            exchange.facts.fault_string = reply.fault_string
            # X-Road passes a fault answer on as a fault: its XML alone, as UTF-8, in the fault form.
            return 200, FAULT_ANSWER_CONTENT_TYPE, bytes(etree.tostring(reply.root, xml_declaration=True, encoding="UTF-8"))
        return 200, answer_type, answer_body

    # --- REST r1 ----------------------------------------------------------------------------------------------

    async def _process_rest(
        self,
        exchange: Exchange,
        method: str,
        target: str,
        headers: Sequence[tuple[str, str]],
        body: bytes,
        connection: IsConnection,
    ) -> RestAnswer:
        context = self.context
        now = context.now()
        conf = context.global_conf()
        conf.check_valid(now)

        # 2. the call: method, path, X-Road-* headers (core/rest.py); a new X-Road-Id when the IS sent none
        if len(target) > context.limits.max_uri_chars:
            raise RequestTooLarge(f"Request URI is longer than {context.limits.max_uri_chars} characters")
        request_id = str(uuid.uuid4())
        exchange.request_id = request_id
        rest = RestRequest.from_client(
            method, target, headers, request_id=request_id, new_query_id=f"{conf.instance}-{uuid.uuid4()}"
        )
        exchange.rest = rest
        exchange.facts.request_size = len(body)
        ids = ExchangeIds(rest.query_id, str(rest.client), str(rest.service), request_id)

        # 3-4. the client, and the provider's security servers
        self._check_client(conf, rest.client, connection)
        provider = rest.service.client
        peers = self._provider_peers(conf, provider, rest.security_server, str(rest.service))

        # 5-6. sign the message part and the body (a hash chain when there is a body), log durably
        message = rest.to_bytes()
        content = MessageContent(message, REST_REQUEST, rest_body=body or None)
        transport_headers = TransportHeaders(request_id, proxy_version=self.proxy_version, rest=True)
        peer_request = await self._sign_request(exchange, ids, rest.client, content, transport_headers, message + body, now)

        # 7-8. to the provider's server, its checked answer
        answer = await self._exchange_with_peer(exchange, peers, peer_request, provider)
        if isinstance(answer, FaultMessage):
            return await self._relay_rest_fault(exchange, answer.fault, header_value(headers, "Accept"))
        if answer.content.kind is not MessageKind.REST:
            raise InvalidMessage("Response to a REST request is not a REST message")
        response = RestResponse.parse(answer.content.message)
        check_rest_response_consistency(rest, response, request_id, message, body)

        # 9. log, then the provider's status, headers and body to the IS
        await self.journal.record(received_entry(ids, Direction.RESPONSE, context.now(), answer), exchange)
        exchange.facts.response_size = len(answer.content.rest_body or b"")
        if response.status >= 400:
            exchange.relayed_fault = f"HTTP {response.status}"
        return RestAnswer(response.status, response.headers, answer.content.rest_body or b"")

    async def _relay_rest_fault(self, exchange: Exchange, fault_body: bytes, accept: str | None) -> RestAnswer:
        """A fault from the provider's side, as the REST error JSON with its own code and detail (X-Road
        ``checkResponse`` then ``sendErrorResponse``)."""
        fault = parse_soap(fault_body, FAULT_CONTENT_TYPE, max_bytes=self.context.limits.max_body_bytes, is_response=True)
        if fault.fault is None:
            raise InvalidMessage("Fault part of the response is not a SOAP fault")
        exchange.relayed_fault = (fault.fault.code or "unknown")[:200]
        exchange.facts.fault_string = fault.fault.string
        await self.journal.record_failure(exchange, fault_body, exchange.relayed_fault)
        return rest_error(fault.fault.code, fault.fault.string, fault.fault.detail or "", accept=accept)

    # --- steps ------------------------------------------------------------------------------------------------

    def _check_client(self, conf: GlobalConf, client: ClientId, connection: IsConnection = PLAINTEXT) -> None:
        """Step 3: the client is registered here, in our configuration and in the global one, and its system
        connected as the client's connection type asks (X-Road ``verifyClientStatus``, then
        ``verifyClientAuthentication``)."""
        context = self.context
        server_conf = context.server_conf()
        hosted = server_conf.client(client)
        if hosted is None or not hosted.registered:
            raise UnknownMember(f"Client '{client}' not found", reason=f"{client} is not a registered client of this server")
        if not conf.has_member(client) or not conf.is_hosted_by(client, context.server_id):
            raise UnknownMember(
                f"Client '{client}' not found",
                reason=f"the global configuration does not register {client} on {context.server_id}",
            )
        if hosted.connection_type is not ConnectionType.HTTP:
            certs = [c.der for c in server_conf.tls_certificates_of(client)]
            check_connection(client, hosted.connection_type, connection, certs, self.internal_cert)

    def _provider_peers(
        self, conf: GlobalConf, provider: ClientId, security_server: SecurityServerId | None, service_text: str
    ) -> list[PeerAddress]:
        """Step 4: the provider's security servers (narrowed by a ``securityServer`` target) with usable addresses."""
        if not conf.has_member(provider):
            raise UnknownMember(f"Client '{provider}' not found", reason=f"{provider} is not in the global configuration")
        servers = conf.security_servers_of(provider)
        if security_server is not None:
            servers = tuple(s for s in servers if s.id == security_server)
            if not servers:
                raise InvalidSecurityServer(
                    f"Invalid security server \"{security_server}\"",
                    reason=f"{security_server} does not host {provider}",
                    origin=Origin.CLIENT_PROXY,  # X-Road: a configuration fault, not the IS's
                )
        peers = peer_addresses(servers, self.default_peer_port)
        if not peers:
            raise UnknownMember(
                f"Could not find addresses for service provider \"{service_text}\"",
                reason=f"no server hosting {provider} has a usable address",
            )
        return peers

    async def _sign_request(
        self,
        exchange: Exchange,
        ids: ExchangeIds,
        client: ClientId,
        content: MessageContent,
        transport_headers: TransportHeaders,
        as_received: bytes,
        now: datetime,
    ) -> PeerRequest:
        """Steps 5-6: sign as the client's member (identical requests get distinct signing times, keyed by
        ``as_received``), encode after our auth certificate's OCSP response, log durably; the request to send."""
        transport_type, transport_body = await sign_and_log(
            self.signer,
            self.journal,
            client,
            content,
            ids=ids,
            direction=Direction.REQUEST,
            signing_time=self.clock.time_for(as_received, now),
            logged_at=now,
            ocsp_responses=lambda: (self.context.own_ocsp(self._own_auth_cert(now)),),
            exchange=exchange,
        )
        exchange.request_logged = True
        return PeerRequest(headers=dict(transport_headers.to_http()), content_type=transport_type, body=transport_body)

    async def _exchange_with_peer(
        self, exchange: Exchange, peers: list[PeerAddress], request: PeerRequest, provider: ClientId
    ) -> TransportMessage:
        """Steps 7-8: deliver, then check who answered and the answer's signature (made by the provider's member,
        over the message and every attachment or body); or the fault the provider's side answered with. The peer's
        TLS certificate is the link's to check (XROAD-REFERENCE.md §4.3), before the request is written: the
        mutual-TLS link runs ``peer_trust.PeerAuthVerifier`` on every connection it uses."""
        context = self.context
        exchange.sent = True
        facts = exchange.facts
        facts.request_out_ms, started = self.journal.now_ms(), time.monotonic()
        try:
            response = await self.link.send(peers, request, self.peer_timeout_seconds)
        except BusError:
            raise
        except Exception as err:
            raise NetworkError("Could not reach the provider's security server", reason=repr(err)) from err
        finally:
            exchange.timed("peer_exchange", started)
            facts.response_in_ms = self.journal.now_ms()
        exchange.peer = str(response.server) if response.server is not None else None
        facts.peer_server = response.server

        now = context.now()
        conf = context.global_conf()
        if response.server is not None and all(p.server != response.server for p in peers):
            raise SslAuthenticationFailed(
                "Answer came from a security server that was not asked", reason=f"answer from {response.server}"
            )
        transport = decode_transport(response.content_type, response.body, is_response=True, limits=self._limits)
        if isinstance(transport, FaultMessage):
            # A fault from the provider's side; its listener may answer early faults without transport headers.
            return transport
        reply_headers = TransportHeaders.from_http(response.headers, is_response=True)
        if reply_headers.request_id is not None and reply_headers.request_id != exchange.request_id:
            raise InconsistentResponse(
                "Response from server proxy is not consistent with request",
                reason=f"x-road-request-id {reply_headers.request_id!r} is not {exchange.request_id!r}",
            )
        exchange.answer_content_type = reply_headers.original_content_type
        signature = transport.signature
        started = time.monotonic()
        verify_message(
            signature.signature_xml,
            transport.content.message,
            transport.content.signed_bodies,
            signature.hash_chain_result,
            signature.hash_chain,
            provider,
            conf,
            self.trust.get(conf),
            now,
        )
        exchange.timed("verification", started)
        return transport

    def _own_auth_cert(self, now: datetime) -> x509.Certificate:
        """Our authentication certificate (read from the token at most once a minute; the key stays with TLS)."""
        stamp = now.timestamp()
        if self._auth_cert is not None:
            read_at, cert = self._auth_cert
            if 0 <= stamp - read_at < AUTH_CERT_CACHE_SECONDS and cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
                return cert
        _, cert = self.context.token.auth_key(now=now)
        self._auth_cert = (stamp, cert)
        return cert

    async def _relay_fault(self, exchange: Exchange, fault_body: bytes) -> tuple[int, str, bytes]:
        """Pass the provider side's SOAP fault to the IS as it is (X-Road ``checkResponse``), once it is checked
        to be a well-formed SOAP fault."""
        fault = parse_soap(fault_body, FAULT_CONTENT_TYPE, max_bytes=self.context.limits.max_body_bytes, is_response=True)
        if not fault.is_fault:
            raise InvalidMessage("Fault part of the response is not a SOAP fault")
        exchange.relayed_fault = (fault.fault_code or "unknown")[:200]
        exchange.facts.fault_string = fault.fault_string
        await self.journal.record_failure(exchange, fault_body, exchange.relayed_fault)
        return 200, FAULT_ANSWER_CONTENT_TYPE, fault_body
