"""The server proxy: the provider's side of an exchange between two security servers.

A peer's client proxy sends a signed transport message over mutual TLS; the listener
(security_server/proxy/server_proxy_site.py) calls :meth:`ServerProxy.handle` with the peer's certificate. The checks run
in X-Road's order (XROAD-REFERENCE.md §4.1; X-Road ``ServerMessageProcessor``), each failing with its X-Road
fault code under the ``server.serverproxy`` prefix:

1. the global configuration is in force (``global_conf_outdated``);
2. the transport message decodes (HTTP headers, part order, a signature part: ``missing_signature``), and its
   message part is a SOAP 4.0 request (the IS-side rules of core/soap.py; attachments come as the nested
   ``multipart/mixed`` part) or a REST request message part (core/rest.py, read strictly, its service path
   normalised: ``bad_request``);
3. a ``securityServer`` header, if any, names this server (``invalid_security_server``);
4. the provider (the service's client) is a *registered* client of this server (``unknown_member``);
5. the peer's TLS certificate is an authentication certificate registered in the global configuration to a
   security server that hosts the request's client, chains to an approved CA and has a good, fresh OCSP
   response among the request's OCSP parts (``ssl_authentication_failed``, ``cert_validation``,
   ``incorrect_validation_info``, ``invalid_cert_path``; XROAD-REFERENCE.md §4.3);
6. the service exists with exactly this code and version (``unknown_service``) and is of the call's kind
   (``service_type``: a REST service called with SOAP, or the reverse); the client has an access right, default
   deny (``access_denied``; for REST a service-level right or an endpoint right covering the method and the
   normal-form path, core/acl.py); the service is enabled (``service_disabled``, with the provider's notice).
   This is X-Road's order (``verifyAccess``): the disabled notice is only shown to clients that may call the
   service. The metadata services skip this step, as X-Road's handlers do (pr-meta, pr-mrest): SOAP
   ``listMethods``, ``allowedMethods``, ``getWsdl`` and REST ``GET listMethods``, ``allowedMethods``,
   ``getOpenAPI`` are answered from this server's configuration (core/metadata.py);
7. the signature verifies over the exact message bytes and every attachment or REST body, through its hash
   chain (``invalid_signature_value``, ``malformed_signature``, e.g. ``malformed_signature.invalid_hash_chain_ref``
   for an attachment changed on the way); the signing certificate belongs to the *client's member* under the
   certificate profile (``incorrect_certificate``, X-Road ``SignatureVerifier.verifySignerName``), chains to an
   approved CA and its embedded OCSP response is good and fresh;
8. the signature has not been accepted before (replay, see :class:`ReplayGuard`; X-Road has no such check);
9. the request is logged, durably, before the provider sees it (``logging_failed`` / ``database_error``: the
   provider is not called);
10. the provider's service is called with the service's timeout (SOAP with attachments as
    ``multipart/related``; REST with the call's method at the base URL + service path + query, its headers, its
    body; the provider's status, headers and body pass through); connection refused or unreachable is
    ``service_failed.network_error``, a broken or timed-out exchange ``service_failed.io_error`` (X-Road maps
    ``SocketTimeoutException``, an ``IOException``, to ``io_error``; it has no timeout code), an HTTP status
    other than 200 or 500 ``service_failed.http_error`` (X-Road ``AbstractHttpSender.checkResponseStatus``), an
    answer that is not a SOAP message ``service_failed.<the parser's code>`` (e.g. ``invalid_xml``,
    ``invalid_content_type``); a SOAP fault from the service is passed back unchanged (X-Road does the same);
11. ``requestHash`` over the exact request bytes goes into the response header (REST: the response message part
    with ``X-Road-Request-Hash`` and the other X-Road headers), which is signed with the *provider member's* key
    and its OCSP response (with the response's attachments or body through a hash chain), logged durably, and
    returned (without OCSP parts).

:meth:`ServerProxy.handle` never fails: every fault becomes a whole-body ``text/xml`` SOAP fault (an early
failure, pr-messtransp §3.1), with a fault-detail UUID that is also in our log. One structlog event is written
per exchange (``peer_request_answered`` or ``peer_request_refused``); message bodies are never logged. Once the
request is in the message log, a failure is logged there too, as a failed response record with its fault code.

The signature, certificate and replay checks are pure decisions in the core (core/message_trust.py,
core/replay.py), shared with the client proxy.
"""

from __future__ import annotations

import base64
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Mapping, Protocol, Sequence
from urllib.parse import parse_qsl

from lxml import etree
from twisted.internet import defer
from twisted.internet.defer import Deferred

from security_server.core import digests
from security_server.core.errors import (
    BusError,
    InconsistentHeaders,
    InternalError,
    InvalidRequest,
    InvalidSecurityServer,
    Origin,
    ServiceDisabled,
    ServiceFailed,
    ServiceType,
    SslAuthenticationFailed,
    UnknownMember,
    UnknownService,
)
from security_server.core.globalconf import GlobalConf
from security_server.core.identifiers import ClientId, SecurityServerId, ServiceId, check_part
from security_server.core.logchain import Direction
from security_server.core.message_trust import TrustCache, verify_message
from security_server.core.metadata import (
    ALLOWED_METHODS,
    LIST_METHODS,
    REST_METADATA_SERVICES,
    SOAP_METADATA_SERVICES,
    RestServiceEntry,
    anonymise_openapi,
    method_list_response,
    rest_method_list,
    rewrite_wsdl,
    wsdl_request,
    wsdl_response,
)
from security_server.core.multipart import Limits, Part
from security_server.core.replay import ReplayGuard
from security_server.core.rest import RestRequest, RestResponse
from security_server.core.rest import request_hash as rest_request_hash
from security_server.core.soap import SOAP_CONTENT_TYPE, add_request_hash, check_soap_action, parse_soap
from security_server.core.soap import request_hash as soap_request_hash
from security_server.core.soapattachments import is_multipart_related, parse_related
from security_server.core.transport import (
    FAULT_CONTENT_TYPE,
    REST_RESPONSE,
    MessageContent,
    MessageKind,
    TransportHeaders,
    TransportLimits,
    SignedMessage,
    decode_request,
)
from security_server.proxy.context import ProxyContext
from security_server.proxy.exchange import Exchange, ExchangeJournal, Side, SoapRequest, message_form, sign_and_log
from security_server.proxy.exchange_log import ExchangeIds, received_entry, service_name
from security_server.proxy.peerlink import PeerRequest, PeerResponse
from security_server.proxy.peer_trust import RememberedPeerCheck
from security_server.proxy.provider_call import (
    AgentProviderClient,
    ProviderClient,
    ProviderReply,
    RestProviderClient,
    provider_tls,
)
from security_server.proxy.provider_client import LeanProviderClient
from security_server.serverconf.store import Service, ServerConfSnapshot, ServiceKind
from security_server.signer.batch_signer import BatchSigner
from security_server.signer.signing_keys import SigningKeys

# --- the peer's authentication certificate -------------------------------------------------------------------


class PeerCertCheck(Protocol):
    """The check of a peer's TLS authentication certificate (:func:`security_server.core.peerauth.check_peer_auth_cert`)."""

    def __call__(
        self,
        cert_der: bytes,
        conf: GlobalConf,
        now: datetime,
        *,
        expected_server: SecurityServerId | None = None,
        hosted_client: ClientId | None = None,
        ocsp_der: bytes | Sequence[bytes] | None,
    ) -> object:
        """Raise a BusError unless the certificate is acceptable; the result is ignored."""
        ...


MonitoringAnswer = Callable[[Any, tuple[str, str]], Deferred[tuple[str, bytes]]]
"""A monitoring metaservice's handler: ``(request SoapMessage, requestHash) -> Deferred[(Content-Type, body)]``,
failing with the BusError to answer as a fault (opmon/services.py)."""


# --- the server proxy ----------------------------------------------------------------------------------------


_WRONG_KIND = {
    ServiceKind.SOAP: "Service is a REST service and cannot be called using SOAP interface",
    ServiceKind.REST: "Service is a SOAP service and cannot be called using REST interface",
}
"""The ``service_type`` fault of a call whose kind is not the service's, by the call's kind."""


@dataclass(frozen=True, slots=True)
class _Call:
    """What steps 3-9 need of a request, whichever its protocol: the parsed message part and its exact bytes, who
    calls which service (through which server), and the bodies the signature must cover after the message."""

    message: SoapRequest | RestRequest
    raw: bytes
    client: ClientId
    service: ServiceId
    security_server: SecurityServerId | None
    kind: ServiceKind
    ids: ExchangeIds
    """How the message log names the exchange."""
    metadata: bool
    """A metadata service, answered here without an access check."""
    attachments: tuple[bytes, ...]
    monitoring: bool = False
    """A monitoring metaservice of this server's owner (pr-opmon, envmon), answered here without an access check."""
    method: str | None = None
    """REST: the call's method, for endpoint access rights."""
    path: str | None = None
    """REST: the normal-form service path, for endpoint access rights."""


class ServerProxy:
    """The provider side of an exchange; see the module docstring for the steps. Implements ServerProxyHandler."""

    def __init__(
        self,
        context: ProxyContext,
        *,
        provider_client: ProviderClient | None = None,
        peer_check: PeerCertCheck | None = None,
        replay_guard: ReplayGuard | None = None,
        signing_keys: SigningKeys | None = None,
        signer: BatchSigner | None = None,
        proxy_version: str | None = None,
        rest_client: RestProviderClient | None = None,
        monitoring: Mapping[str, MonitoringAnswer] | None = None,
    ) -> None:
        """``signer`` signs answers (shared with the client proxy in a running server); by default one of our own
        over ``signing_keys``. ``monitoring`` answers the owner's monitoring metaservices by service code
        (``getSecurityServerOperationalData``, ``getSecurityServerHealthData``, ``getSecurityServerMetrics``)."""
        self.context = context
        self.monitoring: Mapping[str, MonitoringAnswer] = monitoring or {}
        if provider_client is None:
            # The lean client for http:// services, the Agent for https:// ones (performance issue 9).
            provider_client = LeanProviderClient(
                context.reactor,
                max_response_bytes=context.limits.max_body_bytes,
                fallback=AgentProviderClient(
                    context.reactor, max_response_bytes=context.limits.max_body_bytes, client_identity=context.internal_tls
                ),
            )
        self.provider_client: ProviderClient = provider_client
        if rest_client is None:
            # The SOAP client calls REST providers too when it is an Agent (one connection pool); else a new one:
            # REST needs the response headers in order and as sent, which only the Agent keeps (the lean client's
            # fallback is not shared, as the lean client closes it itself and close() would close it twice).
            rest_client = (
                self.provider_client
                if isinstance(self.provider_client, AgentProviderClient)
                else AgentProviderClient(
                    context.reactor, max_response_bytes=context.limits.max_body_bytes, client_identity=context.internal_tls
                )
            )
        self.rest_client: RestProviderClient = rest_client
        self.peer_check: PeerCertCheck = peer_check if peer_check is not None else RememberedPeerCheck()
        self.replay_guard = replay_guard if replay_guard is not None else ReplayGuard()
        self.signing_keys = signing_keys if signing_keys is not None else SigningKeys(context.token)
        self.signer = signer if signer is not None else BatchSigner(context.reactor, self.signing_keys, context.own_ocsp)
        self.proxy_version = proxy_version
        self.trust = TrustCache()
        self.journal = ExchangeJournal(context, Side.SERVER, proxy_version)
        # The transport body holds the SOAP part plus OCSP responses and the signature: allow room for them.
        self._limits = TransportLimits(
            mime=Limits(max_body_bytes=context.limits.max_body_bytes + 1024 * 1024),
            max_attachments=context.limits.max_attachments,
        )

    def close(self) -> Deferred[None]:
        """Close the provider clients' pooled connections (at shutdown), when they have any."""
        closing: list[Deferred[Any]] = []
        for client in {id(self.provider_client): self.provider_client, id(self.rest_client): self.rest_client}.values():
            close = getattr(client, "close", None)
            if close is not None:
                closing.append(defer.maybeDeferred(close))
        return defer.gatherResults(closing).addCallback(lambda _: None)

    def handle(self, peer_cert_der: bytes | None, request: PeerRequest) -> Deferred[PeerResponse]:
        """Answer one request from a peer's client proxy; never fails (faults become fault responses)."""
        return Deferred.fromCoroutine(self._handle(self.journal.start(), peer_cert_der, request))

    async def _handle(self, exchange: Exchange, peer_cert_der: bytes | None, request: PeerRequest) -> PeerResponse:
        try:
            try:
                response = await self._process(exchange, peer_cert_der, request)
            except Exception as err:  # noqa: BLE001 - every failure is answered with a fault, never raised
                fault = err if isinstance(err, BusError) else InternalError("Internal error", reason=repr(err))
                fault.at(Origin.SERVER_PROXY)
                body = fault.to_soap_fault()
                if exchange.request_logged:
                    await self.journal.record_failure(exchange, body, fault.fault_code)
                self.journal.summary(exchange, fault)
                return self._reply(exchange, FAULT_CONTENT_TYPE, body, rest=exchange.rest is not None)
            self.journal.summary(exchange, None)
            return response
        except Exception as err:  # noqa: BLE001 - the last resort: the peer always gets an answer
            return self.last_resort(err)

    def last_resort(self, err: BaseException) -> PeerResponse:
        """The answer when handling itself failed (X-Road ``ServerProxyHandler`` catches every ``Throwable``):
        ``server.serverproxy.internal_error``, the cause in our log only."""
        fault = InternalError("Internal error", reason=repr(err), origin=Origin.SERVER_PROXY)
        self.journal.log.error("peer_request_crashed", **fault.log_fields())
        return PeerResponse(status=200, content_type=FAULT_CONTENT_TYPE, body=fault.to_soap_fault(), headers={})

    async def _process(self, exchange: Exchange, peer_cert_der: bytes | None, request: PeerRequest) -> PeerResponse:
        context = self.context
        now = context.now()
        conf = context.global_conf()
        conf.check_valid(now)

        # 2. the transport message and its message part: a SOAP 4.0 request or a REST request
        headers = TransportHeaders.from_http(request.headers, is_response=False)
        exchange.request_id = headers.request_id
        check_soap_action(headers.original_soap_action)  # X-Road checks it again here
        transport = decode_request(request.content_type, request.body, limits=self._limits)
        if transport.content.kind is MessageKind.REST:
            call = self._read_rest(exchange, transport, headers)
        else:
            call = self._read_soap(exchange, transport, request.body)

        # 3-4. the target server and the provider
        snapshot = context.server_conf()
        self._check_target(call.security_server, call.service.client, snapshot, owner_service=call.monitoring)

        # 5. the peer's TLS certificate (X-Road verifySslClientCert)
        self._check_peer(peer_cert_der, transport, conf, now, call.client)
        exchange.facts.peer_cert_der = peer_cert_der  # names the client's server in the operational record

        # 6. the service, its kind, the access right and whether it is enabled (X-Road verifyAccess order); the
        # metadata services answer without an access check (X-Road shouldVerifyAccess is false for them).
        # So do the owner's monitoring services (X-Road OpMonitoringServiceHandlerImpl: the handler decides who
        # may see what, not the access rights).
        service = None if call.metadata or call.monitoring else self._check_service(call, snapshot, conf)
        if service is not None:
            exchange.facts.service_type = "OPENAPI3" if service.service_type == "OPENAPI" else service.service_type

        # 7-8. the signature over the message and every attachment or body, its signer, and replays
        started = time.monotonic()
        await self._verify_request(transport, call, conf, now)
        exchange.timed("verification", started)

        # 9. a durable request record before the provider sees anything
        await self.journal.record(received_entry(call.ids, Direction.REQUEST, now, transport), exchange)
        exchange.request_logged = True

        # 10-11. the provider's service (or the metadata service), then the signed, logged answer
        if isinstance(call.message, RestRequest):
            return await self._answer_rest(exchange, call.message, call, service, headers, snapshot, conf)
        return await self._answer_soap(exchange, call.message, call, service, transport, headers, snapshot, conf)

    # --- step 2: the message part, by protocol ------------------------------------------------------------------

    def _read_soap(self, exchange: Exchange, transport: SignedMessage, transport_body: bytes = b"") -> _Call:
        """A SOAP 4.0 request (core/soap.py), its attachments in the nested ``multipart/mixed`` part."""
        content = transport.content
        request = SoapRequest.parse(content.message, content.content_type, max_bytes=self.context.limits.max_body_bytes)
        exchange.soap = request.soap
        header = request.header
        if content.attachments:
            exchange.facts.request_mime_size, exchange.facts.request_attachments = len(transport_body), len(content.attachments)
        return _Call(
            request,
            content.message,
            header.client,
            header.service,
            header.security_server,
            ServiceKind.SOAP,
            ExchangeIds(header.id, str(header.client), service_name(header.service), exchange.request_id),
            metadata=header.service.service_code in SOAP_METADATA_SERVICES,
            attachments=content.signed_bodies,
            monitoring=header.service.service_code in self.monitoring
            and header.service.client == self.context.server_id.owner,
        )

    def _read_rest(self, exchange: Exchange, transport: SignedMessage, headers: TransportHeaders) -> _Call:
        """A REST request message part (core/rest.py): strict, identifiers read, the service path normalised."""
        content = transport.content
        rest = RestRequest.parse(content.message)
        exchange.rest = rest
        exchange.facts.request_size = len(content.rest_body or b"")
        if headers.request_id is not None and rest.request_id is not None and rest.request_id != headers.request_id:
            raise InconsistentHeaders("x-road-request-id of the REST message is not the transport's")
        return _Call(
            rest,
            content.message,
            rest.client,
            rest.service,
            rest.security_server,
            ServiceKind.REST,
            ExchangeIds(rest.query_id, str(rest.client), str(rest.service), exchange.request_id),
            # the REST metadata services answer GET (X-Road RestMetadataServiceHandlerImpl)
            metadata=rest.method == "GET" and rest.service.service_code in REST_METADATA_SERVICES,
            attachments=content.signed_bodies,
            method=rest.method,
            path=rest.normal_path,
        )

    # --- steps 3-9, whichever the protocol -----------------------------------------------------------------------

    def _check_target(
        self,
        security_server: SecurityServerId | None,
        provider: ClientId,
        snapshot: ServerConfSnapshot,
        *,
        owner_service: bool = False,
    ) -> None:
        """Steps 3-4: a ``securityServer`` header names this server; the provider is registered here (the owner's
        monitoring services are always this server's: X-Road's owner is a client of its server by definition)."""
        if security_server is not None and security_server != self.context.server_id:
            raise InvalidSecurityServer(
                "Invalid security server identifier",
                reason=f"request names {security_server}, this is {self.context.server_id}",
            )
        if owner_service:
            return
        hosted = snapshot.client(provider)
        if hosted is None or not hosted.registered:
            raise UnknownMember(f"Client '{provider}' not found", reason=f"{provider} is not a registered client here")

    def _check_peer(
        self, peer_cert_der: bytes | None, transport: SignedMessage, conf: GlobalConf, now: datetime, client: ClientId
    ) -> None:
        """Step 5: the peer's TLS certificate (X-Road verifySslClientCert)."""
        if peer_cert_der is None:
            raise SslAuthenticationFailed("Peer presented no TLS certificate")
        if not transport.ocsp_responses:
            raise SslAuthenticationFailed("Cannot verify TLS certificate, corresponding OCSP response is missing")
        # core/peerauth.py: registered to a server hosting the client, approved CA, one OCSP part good and fresh.
        self.peer_check(peer_cert_der, conf, now, hosted_client=client, ocsp_der=transport.ocsp_responses)

    @staticmethod
    def _check_service(call: _Call, snapshot: ServerConfSnapshot, conf: GlobalConf) -> Service:
        """Step 6: the service exists with exactly this code and version, is of the call's kind, the client has an
        access right (default deny; for REST a service-level right or an endpoint right covering the method and
        the normal-form path, core/acl.py), and it is enabled (the notice is shown only to clients with a right)."""
        service = snapshot.service(call.service)
        if service is None:
            # A SOAP service has versions that a REST call cannot name: called over REST it is service_type.
            if call.kind is ServiceKind.REST and any(
                s.id.service_code == call.service.service_code for s in snapshot.services_of(call.service.client)
            ):
                raise ServiceType(_WRONG_KIND[call.kind])
            raise UnknownService(f"Unknown service: {service_name(call.service)}")
        if service.kind is not call.kind:
            raise ServiceType(_WRONG_KIND[call.kind])
        snapshot.check_access(
            call.client, call.service, in_global_group=conf.is_member_of_group, method=call.method, path=call.path
        )
        if not service.enabled:
            raise ServiceDisabled(f"Service {service_name(call.service)} is disabled: {service.disabled_notice}")
        return service

    async def _verify_request(self, transport: SignedMessage, call: _Call, conf: GlobalConf, now: datetime) -> None:
        """Steps 7-8: the signature covers the message and every attachment, made by the client's member; no replay."""
        signature = transport.signature
        verified = verify_message(
            signature.signature_xml,
            call.raw,
            call.attachments,
            signature.hash_chain_result,
            signature.hash_chain,
            call.client,
            conf,
            self.trust.get(conf),
            now,
        )
        await self.replay_guard.admit(  # a clustered node's shared guard waits off the reactor thread
            ReplayGuard.key(verified.signature_value, call.raw, signature.hash_chain),
            verified.signing_time.astimezone(timezone.utc),
            now,
        )

    # --- steps 10-11 for SOAP -----------------------------------------------------------------------------------

    async def _answer_soap(
        self,
        exchange: Exchange,
        request: SoapRequest,
        call: _Call,
        service: Service | None,
        transport: SignedMessage,
        headers: TransportHeaders,
        snapshot: ServerConfSnapshot,
        conf: GlobalConf,
    ) -> PeerResponse:
        """Step 10: the service (or the metadata service); step 11: requestHash (already in the answer), the
        signature over every part, the record, the answer."""
        if call.monitoring:
            answer, answer_type = await self._monitoring(request, call.raw)
        elif service is None:
            answer = self._soap_metadata(request, snapshot, conf, call.raw)
            answer_type = answer.content_type
        else:
            called = await self._call_soap_provider(exchange, service, transport.content, headers)
            if isinstance(called, bytes):
                return self._reply(exchange, FAULT_CONTENT_TYPE, called)  # the service's own fault, passed back
            answer, answer_type = called
        exchange.facts.response_size = len(answer.message)
        if answer.attachments and exchange.facts.response_attachments is None:
            exchange.facts.response_attachments = len(answer.attachments)
        content_type, body = await self._sign_response(call, answer, exchange)
        # X-Road ServerMessageProcessor.parseResponse: the answer's own Content-Type travels in
        # x-original-content-type, so that the client proxy answers the IS in the provider's form.
        return self._reply(exchange, content_type, body, original_content_type=answer_type)

    async def _call_soap_provider(
        self, exchange: Exchange, service: Service, request: MessageContent, headers: TransportHeaders
    ) -> tuple[MessageContent, str] | bytes:
        """Step 10 for SOAP: call the service (in the IS's form: X-Road ``ProxyMessage``) and read its answer, with
        the answer's own Content-Type; when the service answered with a SOAP fault, the fault (logged as the failed
        response) instead."""
        context = self.context
        content_type, body = message_form(request, headers.original_content_type)
        # X-Road sends the IS's SOAPAction as it came, and an empty one when the IS sent none.
        provider_headers = {"Content-Type": content_type, "SOAPAction": headers.original_soap_action or ""}
        exchange.provider_called = True
        facts = exchange.facts
        facts.request_out_ms, started = self.journal.now_ms(), time.monotonic()
        try:
            answer = await self.provider_client.post(
                service.url, body, provider_headers, float(service.timeout_seconds),
                **provider_tls(context.server_conf(), service),
            )
        finally:
            exchange.timed("provider_call", started)
            facts.response_in_ms = self.journal.now_ms()
        facts.status_code = answer.status
        if answer.status not in (200, 500):
            raise ServiceFailed("Service responded with an HTTP error", subcode="http_error", reason=f"HTTP {answer.status}")
        try:
            soap_bytes, soap_type = answer.body, answer.content_type
            soap_headers: tuple[tuple[str, str], ...] = ()
            attachments: tuple[Part, ...] = ()
            if is_multipart_related(answer.content_type):
                related = parse_related(
                    answer.content_type, answer.body, limits=self._limits.mime, max_attachments=context.limits.max_attachments
                )
                soap_bytes, soap_type = related.soap.body, related.soap_content_type
                soap_headers, attachments = related.soap_headers, related.attachments
            response = parse_soap(soap_bytes, soap_type, max_bytes=context.limits.max_body_bytes, is_response=True)
        except BusError as err:
            raise ServiceFailed(err.message, subcode=err.code, reason=f"service response: {err.reason}") from err
        if response.fault is not None:
            # X-Road parseResponse: a fault from the service goes back to the client as it is (re-encoded as
            # UTF-8, the charset of a whole-body fault); the exchange is logged as failed with its code.
            fault_body = bytes(etree.tostring(response.root, xml_declaration=True, encoding="UTF-8"))
            exchange.provider_fault = response.fault.code[:200] or "unknown"
            facts.fault_string, facts.response_size = response.fault.string, len(fault_body)
            await self.journal.record_failure(exchange, fault_body, exchange.provider_fault)
            return fault_body
        if attachments:
            facts.response_mime_size, facts.response_attachments = len(answer.body), len(attachments)
        return MessageContent(add_request_hash(response, request.message), soap_type, soap_headers, attachments), answer.content_type

    def _soap_metadata(
        self, request: SoapRequest, snapshot: ServerConfSnapshot, conf: GlobalConf, request_raw: bytes
    ) -> MessageContent:
        """Step 10 for ``listMethods``, ``allowedMethods`` and ``getWsdl`` (pr-meta; core/metadata.py)."""
        soap, header = request.soap, request.header
        provider = header.service.client
        digest = (digests.SHA512.uri, base64.b64encode(soap_request_hash(request_raw)).decode("ascii"))
        soap_services = [s for s in snapshot.services_of(provider) if s.kind is ServiceKind.SOAP]
        code = header.service.service_code
        if code == LIST_METHODS:
            return MessageContent(method_list_response(soap, [s.id for s in soap_services], digest), SOAP_CONTENT_TYPE)
        if code == ALLOWED_METHODS:
            allowed = [
                s.id
                for s in soap_services
                if snapshot.client_rights(header.client, s.id, in_global_group=conf.is_member_of_group)
            ]
            return MessageContent(method_list_response(soap, allowed, digest), SOAP_CONTENT_TYPE)
        service_code, version = wsdl_request(soap)
        target = snapshot.service(ServiceId(provider, service_code, version))
        if target is not None and target.kind is not ServiceKind.SOAP:
            raise ServiceType("Service is a REST service and does not have a WSDL")
        if target is None or target.description is None:
            raise UnknownService(f"Could not find wsdl URL for service {service_name(ServiceId(provider, service_code, version))}")
        wsdl = Part(
            (
                ("Content-Type", "text/xml"),
                ("Content-Transfer-Encoding", "binary"),
                ("Content-ID", f"<wsdl={uuid.uuid4()}@x-road.eu>"),
            ),
            rewrite_wsdl(target.description),
        )
        return MessageContent(
            wsdl_response(soap, digest),
            SOAP_CONTENT_TYPE,
            (("Content-Transfer-Encoding", "8bit"), ("Content-ID", "<rootpart>")),
            (wsdl,),
        )

    # --- steps 10-11 for REST -----------------------------------------------------------------------------------

    async def _answer_rest(
        self,
        exchange: Exchange,
        rest: RestRequest,
        call: _Call,
        service: Service | None,
        headers: TransportHeaders,
        snapshot: ServerConfSnapshot,
        conf: GlobalConf,
    ) -> PeerResponse:
        """Step 10: the provider's service (status, headers and body pass through) or the metadata service; step
        11: the response message with X-Road-Request-Hash, signed over it and the body, logged, returned."""
        body = call.attachments[0] if call.attachments else b""
        if service is None:
            reply = self._rest_metadata(rest, snapshot, conf)
        else:
            exchange.provider_called = True
            facts = exchange.facts
            facts.request_out_ms, started = self.journal.now_ms(), time.monotonic()
            try:
                reply = await self.rest_client.request(
                    rest.method, rest.provider_target(service.url), rest.headers, body, float(service.timeout_seconds),
                    **provider_tls(snapshot, service),
                )
            finally:
                exchange.timed("provider_call", started)
                facts.response_in_ms = self.journal.now_ms()
            if reply.status >= 400:
                exchange.provider_fault = f"HTTP {reply.status}"
        exchange.facts.status_code, exchange.facts.response_size = reply.status, len(reply.body)
        response = RestResponse.answering(
            rest, reply.status, reply.reason, reply.headers, rest_request_hash(call.raw, body), headers.request_id
        )
        content = MessageContent(response.to_bytes(), REST_RESPONSE, rest_body=reply.body or None)
        content_type, encoded = await self._sign_response(call, content, exchange)
        return self._reply(exchange, content_type, encoded, rest=True)

    def _rest_metadata(self, rest: RestRequest, snapshot: ServerConfSnapshot, conf: GlobalConf) -> ProviderReply:
        """Step 10 for REST ``listMethods``, ``allowedMethods`` and ``getOpenAPI`` (pr-mrest; core/metadata.py)."""
        provider = rest.service.client
        rest_services = [s for s in snapshot.services_of(provider) if s.kind is ServiceKind.REST]
        code = rest.service.service_code
        json_headers = (("Content-Type", "application/json"),)
        if code == LIST_METHODS:
            entries = [RestServiceEntry(s.id, s.service_type, s.endpoints) for s in rest_services]
            return ProviderReply(200, "OK", json_headers, rest_method_list(entries))
        if code == ALLOWED_METHODS:
            entries = []
            for item in rest_services:
                rights = snapshot.client_rights(rest.client, item.id, in_global_group=conf.is_member_of_group)
                if not rights:
                    continue
                # X-Road getAllowedRestServices: the endpoints some right of the client covers.
                covered = tuple(
                    e for e in item.endpoints if any(r.endpoint is None or r.endpoint.covers(e.method, e.path) for r in rights)
                )
                entries.append(RestServiceEntry(item.id, item.service_type, covered))
            return ProviderReply(200, "OK", json_headers, rest_method_list(entries))
        # getOpenAPI?serviceCode=... (X-Road: internal_error for an unknown or non-OpenAPI service)
        asked = [value for name, value in parse_qsl(rest.query or "", keep_blank_values=True) if name.lower() == "servicecode"]
        if not asked or not asked[-1]:
            raise InvalidRequest("Missing serviceCode in message body")
        target_id = ServiceId(provider, check_part(asked[-1], "serviceCode"))
        target = snapshot.service(target_id)
        if target is None:
            raise InternalError(f"Service not found: {target_id}")
        if target.kind is not ServiceKind.REST or target.description is None:
            raise InternalError(f"Invalid service type: {target.service_type}")
        return ProviderReply(200, "OK", json_headers, anonymise_openapi(target.description))

    # --- records, replies and the summary -----------------------------------------------------------------------

    async def _monitoring(self, request: SoapRequest, request_raw: bytes) -> tuple[MessageContent, str]:
        """Step 10 for the owner's monitoring services: the handler's answer (opmon/services.py), as the message
        to sign, and its Content-Type; a ``multipart/related`` answer (operational data) with its attachments."""
        header = request.header
        digest = (digests.SHA512.uri, base64.b64encode(soap_request_hash(request_raw)).decode("ascii"))
        content_type, body = await self.monitoring[header.service.service_code](request.soap, digest)
        if is_multipart_related(content_type):
            related = parse_related(content_type, body, limits=self._limits.mime)
            content = MessageContent(related.soap.body, related.soap_content_type, related.soap_headers, related.attachments)
            return content, content_type
        return MessageContent(body, content_type), content_type

    async def _sign_response(self, call: _Call, content: MessageContent, exchange: Exchange | None = None) -> tuple[str, bytes]:
        """Step 11: sign the answer as the provider's member over every part, log it durably; its transport form."""
        now = self.context.now()
        return await sign_and_log(
            self.signer, self.journal, call.service.client, content,
            ids=call.ids, direction=Direction.RESPONSE, signing_time=now, logged_at=now, exchange=exchange,
        )

    def _reply(
        self,
        exchange: Exchange,
        content_type: str,
        body: bytes,
        *,
        original_content_type: str | None = None,
        rest: bool = False,
    ) -> PeerResponse:
        headers = TransportHeaders(
            exchange.request_id, original_content_type=original_content_type, proxy_version=self.proxy_version, rest=rest
        )
        return PeerResponse(status=200, content_type=content_type, body=body, headers=dict(headers.to_http()))
