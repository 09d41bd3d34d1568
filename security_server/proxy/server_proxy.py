"""The server proxy: the provider's side of an exchange between two security servers.

A peer's client proxy sends a signed transport message over mutual TLS; the TLS listener (the network layer,
security_server/proxy/peerlink.py) calls :meth:`ServerProxy.handle` with the peer's certificate. The checks run
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

The signature and certificate checks here are pure decisions shared with the client proxy
(:func:`verify_member_signature`); they would sit well in ``security_server.core`` later.
"""

from __future__ import annotations

import base64
import hashlib
import heapq
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Mapping, Protocol, Sequence
from urllib.parse import parse_qsl

import structlog
from cryptography import x509
from lxml import etree
from twisted.internet import defer
from twisted.internet.defer import Deferred

from security_server.core import digests
from security_server.core.certprofile import member_from_signing_cert
from security_server.core.errors import (
    BusError,
    IncorrectCertificate,
    IncorrectValidationInfo,
    InconsistentHeaders,
    InternalError,
    InvalidCertPath,
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
from security_server.core.hashchain import SIG_HASH_CHAIN, SIG_HASH_CHAIN_RESULT
from security_server.core.identifiers import ClientId, SecurityServerId, ServiceId, check_part
from security_server.core.logchain import Direction, LogEntry
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
from security_server.core.peerauth import check_peer_auth_cert
from security_server.core.rest import RestRequest, RestResponse
from security_server.core.rest import request_hash as rest_request_hash
from security_server.core.signature import SignatureData, VerifiedSignature, verify_signature
from security_server.core.soap import SOAP_CONTENT_TYPE, SoapMessage, add_request_hash, parse_soap
from security_server.core.soap import request_hash as soap_request_hash
from security_server.core.soapattachments import (
    SoapWithAttachments,
    build_related,
    expected_uris,
    is_multipart_related,
    parse_related,
    part_resolver,
    signed_parts,
)
from security_server.core.transport import (
    FAULT_CONTENT_TYPE,
    REST_RESPONSE,
    MessageKind,
    TransportHeaders,
    TransportLimits,
    TransportMessage,
    decode_transport,
    encode_transport,
)
from security_server.core.trust import DEFAULT_CLOCK_SKEW_SECONDS, check_ocsp_response, verify_cert_path
from security_server.proxy.batch_signer import BatchSigner, sign_now
from security_server.proxy.context import ProxyContext
from security_server.proxy.exchange_log import ExchangeIds, received_entry, record, record_failure, signed_entry
from security_server.proxy.peerlink import PeerRequest, PeerResponse
from security_server.proxy.provider_call import AgentProviderClient, ProviderClient, ProviderReply, RestProviderClient
from security_server.proxy.provider_client import LeanProviderClient
from security_server.serverconf.store import Service, ServerConfSnapshot, ServiceKind
from security_server.signer.softtoken import PrivateKey, SoftToken

MESSAGE_URI = "/message.xml"
"""The detached reference of a single-part message (XROAD-REFERENCE.md §4.2)."""

DEFAULT_REPLAY_WINDOW_SECONDS = 600.0
"""How old a request signature may be (by its ``SigningTime``) and how long its value is remembered."""

DEFAULT_REPLAY_CAPACITY = 200_000
"""The most signatures the replay guard remembers at once."""

KEY_BYTES = 16
"""The size of a replay guard key (a truncated SHA-512)."""

DEFAULT_KEY_CACHE_SECONDS = 60.0
"""How long a signing key read from the soft token is reused before the token is read again."""

_log = structlog.get_logger("fedbus.proxy.server")


# --- trust material of one global configuration (pure) -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TrustAnchors:
    """The approved CA certificates, intermediates and OCSP responder certificates of a global configuration,
    parsed once per configuration."""

    roots: tuple[x509.Certificate, ...]
    intermediates: tuple[x509.Certificate, ...]
    responders: tuple[x509.Certificate, ...]

    @classmethod
    def of(cls, conf: GlobalConf) -> TrustAnchors:
        """Parse the certificates that ``conf`` lists."""
        load = x509.load_der_x509_certificate
        return cls(
            roots=tuple(load(der) for der in conf.approved_roots()),
            intermediates=tuple(load(der) for der in conf.intermediate_cas()),
            responders=tuple(load(der) for der in conf.ocsp_responder_certs()),
        )


class TrustCache:
    """Keeps the :class:`TrustAnchors` of the configuration last asked about (a new configuration object
    replaces it; the configuration client swaps in a new object on every applied download)."""

    def __init__(self) -> None:
        self._conf: GlobalConf | None = None
        self._anchors: TrustAnchors | None = None

    def get(self, conf: GlobalConf) -> TrustAnchors:
        """The anchors of ``conf``."""
        if self._conf is not conf or self._anchors is None:
            self._anchors = TrustAnchors.of(conf)
            self._conf = conf
        return self._anchors


def check_cert_and_ocsp(
    cert: x509.Certificate,
    ocsp_responses: Sequence[bytes],
    conf: GlobalConf,
    anchors: TrustAnchors,
    now: datetime,
    *,
    extra_certs: Sequence[x509.Certificate] = (),
) -> None:
    """Raise unless ``cert`` chains to an approved CA at ``now`` and one of ``ocsp_responses`` says it is good
    and is fresh (XROAD-REFERENCE.md §4.3 checks 2 and 3, §4.4).

    ``invalid_cert_path`` when there is no chain, ``cert_validation`` for a certificate out of its validity or
    revoked, ``incorrect_validation_info`` when no response is authentic, about this certificate and fresh.
    """
    path = verify_cert_path(cert, (*anchors.intermediates, *extra_certs), anchors.roots, now)
    if len(path) < 2:
        raise InvalidCertPath("an approved CA certificate cannot sign messages or authenticate a server")
    issuer = path[1]
    if not ocsp_responses:
        raise IncorrectValidationInfo("no OCSP response for the certificate")
    problems: list[BusError] = []
    for ocsp_der in ocsp_responses:
        try:
            check_ocsp_response(
                ocsp_der,
                cert,
                issuer,
                now,
                freshness_seconds=conf.ocsp_freshness_seconds,
                trusted_responders=anchors.responders,
            )
            return
        except IncorrectValidationInfo as err:
            problems.append(err)  # maybe another response is the one for this certificate
    raise problems[0]


def verify_member_signature(
    signature_xml: bytes,
    parts: Mapping[str, bytes],
    member: ClientId,
    conf: GlobalConf,
    anchors: TrustAnchors,
    now: datetime,
    *,
    expected_parts: Sequence[str] = (MESSAGE_URI,),
) -> VerifiedSignature:
    """Verify a message signature and that the signer is ``member`` (a subsystem signs with its member's key).

    ``parts`` maps the detached URIs (``/message.xml``, ``/attachmentN``, and for a hash-chain signature
    ``/sig-hashchainresult.xml`` and ``/sig-hashchain.xml``) to their bytes; every URI in ``expected_parts`` (the
    message and its attachments or REST body) must be covered. The checks: structure and value (core/signature.py), the
    signer's identity from the signing certificate under our profile (``incorrect_certificate`` when it is
    another member, X-Road ``SignatureVerifier.verifySignerName``), then the certificate path and the OCSP
    response embedded in the signature (:func:`check_cert_and_ocsp`).
    """
    verified = verify_signature(signature_xml, parts.get, expected_parts=tuple(expected_parts))
    signer = member_from_signing_cert(verified.signing_cert)
    if signer != member.member:
        raise IncorrectCertificate(
            "Name in certificate does not match name in message",
            reason=f"message is signed by {signer}, its client is {member}",
        )
    check_cert_and_ocsp(
        verified.signing_cert, verified.ocsp_responses, conf, anchors, now, extra_certs=verified.extra_certs
    )
    return verified


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


# --- replays -------------------------------------------------------------------------------------------------


class ReplayGuard:
    """Refuses a signed request that was accepted before (SECURITY-CASES.md: "the same signed message replayed").

    X-Road has no such check. A request is accepted only if its ``SigningTime`` lies within
    ``[now - window, now + skew]``; the key of an accepted request (the signature value with the digest of the
    message it covers, so the messages of one batch signature stay apart) is remembered until its signing time
    leaves the window, after which the time check alone refuses it. Memory is bounded: when ``capacity`` keys
    are held, the one signed earliest is dropped and nothing signed at or before it is accepted any more (a
    watermark), so a full guard refuses old requests instead of forgetting them.

    A client proxy re-signs every request it sends, a retry included, with a new ``SigningTime`` (the client
    proxy makes signing times of identical messages differ), so a retry through a security server always
    passes; only a byte-identical resend of a signed message is refused.
    """

    def __init__(
        self,
        window_seconds: float = DEFAULT_REPLAY_WINDOW_SECONDS,
        *,
        skew_seconds: float = DEFAULT_CLOCK_SKEW_SECONDS,
        capacity: int = DEFAULT_REPLAY_CAPACITY,
    ) -> None:
        if window_seconds <= 0 or skew_seconds < 0 or capacity < 1:
            raise ValueError("window must be positive, skew non-negative and capacity at least 1")
        self.window = timedelta(seconds=window_seconds)
        self.skew = timedelta(seconds=skew_seconds)
        self.capacity = capacity
        self._seen: set[bytes] = set()
        self._by_time: list[tuple[float, bytes]] = []
        """(signing time as POSIX seconds, key), a heap: a float is half the size of a datetime."""
        self._floor: float | None = None

    def __len__(self) -> int:
        return len(self._seen)

    @staticmethod
    def key(signature_value: bytes, message: bytes, hash_chain: bytes | None = None) -> bytes:
        """What identifies one signed message: its signature value, the digest of the message and, for a batch
        signature, the digest of its own hash chain (two identical messages of one batch share the signature
        and the message bytes but not the chain). 128 bits: a chance collision within a window is negligible,
        and a key of 16 bytes keeps a full guard to about 180 bytes an entry (tracemalloc)."""
        parts = hashlib.sha512(signature_value).digest() + hashlib.sha512(message).digest()
        if hash_chain is not None:
            parts += hashlib.sha512(hash_chain).digest()
        return hashlib.sha512(parts).digest()[:KEY_BYTES]

    def check(self, key: bytes, signing_time: datetime, now: datetime) -> None:
        """Accept ``key`` once, or raise :class:`InvalidRequest` (subcode ``replayed_signature`` or
        ``stale_signature``)."""
        self._expire(now)
        stamp = signing_time.timestamp()
        if signing_time < now - self.window or (self._floor is not None and stamp <= self._floor):
            raise InvalidRequest(
                "Request signature is too old",
                subcode="stale_signature",
                origin=Origin.SERVER_PROXY,
                reason=f"signing time {signing_time.isoformat()} is outside the replay window at {now.isoformat()}",
            )
        if signing_time > now + self.skew:
            raise InvalidRequest(
                "Request signature is from the future",
                subcode="stale_signature",
                origin=Origin.SERVER_PROXY,
                reason=f"signing time {signing_time.isoformat()} is after {now.isoformat()} plus the clock skew",
            )
        if key in self._seen:
            raise InvalidRequest(
                "Request has been received before",
                subcode="replayed_signature",
                origin=Origin.SERVER_PROXY,
                reason="this signature was accepted before (replay)",
            )
        self._seen.add(key)
        heapq.heappush(self._by_time, (stamp, key))
        while len(self._seen) > self.capacity:
            oldest, dropped = heapq.heappop(self._by_time)
            self._seen.discard(dropped)
            self._floor = oldest if self._floor is None else max(self._floor, oldest)

    def _expire(self, now: datetime) -> None:
        limit = (now - self.window).timestamp()
        while self._by_time and self._by_time[0][0] < limit:
            _, dropped = heapq.heappop(self._by_time)
            self._seen.discard(dropped)


# --- our own signing keys ------------------------------------------------------------------------------------


class SigningKeys:
    """Signing keys and certificates read from the soft token, reused for ``ttl_seconds`` (reading a key file
    and loading the key costs milliseconds, too much for every message; a renewed certificate is picked up
    within ``ttl_seconds``)."""

    def __init__(self, token: SoftToken, ttl_seconds: float = DEFAULT_KEY_CACHE_SECONDS) -> None:
        self._token = token
        self._ttl = ttl_seconds
        self._cache: dict[ClientId, tuple[float, PrivateKey, x509.Certificate]] = {}

    def get(self, member: ClientId, now: datetime) -> tuple[PrivateKey, x509.Certificate]:
        """The key and certificate ``member`` signs with at ``now`` (KeyNotAvailable when there is none)."""
        member = member.member
        stamp = now.timestamp()
        cached = self._cache.get(member)
        if cached is not None:
            read_at, key, cert = cached
            if 0 <= stamp - read_at < self._ttl and cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
                return key, cert
        key, cert = self._token.signing_key(member, now=now)
        self._cache[member] = (stamp, key, cert)
        return key, cert


def sign_message(
    keys: SigningKeys,
    own_ocsp: Callable[[x509.Certificate], bytes],
    member: ClientId,
    message: bytes,
    now: datetime,
    attachments: Sequence[bytes] = (),
) -> SignatureData:
    """Sign one message at once as ``member`` with its OCSP response (XROAD-REFERENCE.md §4.2): directly when it is
    one part, through a hash chain over ``/message.xml`` and ``/attachment1`` ... when it has attachments (SOAP
    attachments, or a REST body). The proxies sign through a :class:`BatchSigner`; this is the one-message form."""
    return sign_now(keys, own_ocsp, member, [signed_parts(message, attachments)], now)[0]


def signed_part_map(
    message: bytes, attachments: Sequence[bytes], hashchain_result: bytes | None, hashchain: bytes | None
) -> dict[str, bytes]:
    """The detached parts a received signature may reference, by URI (for :func:`verify_member_signature`)."""
    resolve = part_resolver(message, attachments, hashchain_result, hashchain)
    uris = [*expected_uris(len(attachments)), SIG_HASH_CHAIN_RESULT, SIG_HASH_CHAIN]
    return {uri: data for uri in uris if (data := resolve(uri)) is not None}


# --- the server proxy ----------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Exchange:
    """What one exchange has learned so far (for the summary event and the failure record)."""

    started: float
    request_id: str | None = None
    soap: SoapMessage | None = None
    rest: RestRequest | None = None
    request_logged: bool = False
    provider_called: bool = False
    provider_fault: str | None = None

    def identity(self) -> tuple[str, str, str] | None:
        """``(query id, client, service)`` of the request once it is known."""
        if self.soap is not None and self.soap.header is not None:
            header = self.soap.header
            return header.id, str(header.client), str(header.service)
        if self.rest is not None:
            return self.rest.query_id, str(self.rest.client), str(self.rest.service)
        return None


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(timezone.utc)


@dataclass(frozen=True, slots=True)
class _SoapAnswer:
    """A SOAP answer ready to sign: the SOAP part (with ``requestHash``), its content type and MIME headers, and
    its attachments."""

    message: bytes
    content_type: str
    headers: tuple[tuple[str, str], ...] = ()
    attachments: tuple[Part, ...] = ()


class ServerProxy:
    """The provider side of an exchange; see the module docstring for the steps. Implements ServerProxyHandler."""

    def __init__(
        self,
        context: ProxyContext,
        *,
        provider_client: ProviderClient | None = None,
        peer_check: PeerCertCheck = check_peer_auth_cert,
        replay_guard: ReplayGuard | None = None,
        signing_keys: SigningKeys | None = None,
        signer: BatchSigner | None = None,
        proxy_version: str | None = None,
        rest_client: RestProviderClient | None = None,
    ) -> None:
        """``signer`` signs answers (shared with the client proxy in a running server); by default one of our own
        over ``signing_keys``."""
        self.context = context
        if provider_client is None:
            # The lean client for http:// services, the Agent for https:// ones (performance issue 9).
            provider_client = LeanProviderClient(
                context.reactor,
                max_response_bytes=context.limits.max_body_bytes,
                fallback=AgentProviderClient(context.reactor, max_response_bytes=context.limits.max_body_bytes),
            )
        self.provider_client: ProviderClient = provider_client
        if rest_client is None:
            # The SOAP client calls REST providers too when it is an Agent (one connection pool); else a new one:
            # REST needs the response headers in order and as sent, which only the Agent keeps (the lean client's
            # fallback is not shared, as the lean client closes it itself and close() would close it twice).
            rest_client = (
                self.provider_client
                if isinstance(self.provider_client, AgentProviderClient)
                else AgentProviderClient(context.reactor, max_response_bytes=context.limits.max_body_bytes)
            )
        self.rest_client: RestProviderClient = rest_client
        self.peer_check = peer_check
        self.replay_guard = replay_guard if replay_guard is not None else ReplayGuard()
        self.signing_keys = signing_keys if signing_keys is not None else SigningKeys(context.token)
        self.signer = signer if signer is not None else BatchSigner(context.reactor, self.signing_keys, context.own_ocsp)
        self.proxy_version = proxy_version
        self.trust = TrustCache()
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
        exchange = _Exchange(started=time.monotonic())
        return Deferred.fromCoroutine(self._handle(exchange, peer_cert_der, request))

    async def _handle(self, exchange: _Exchange, peer_cert_der: bytes | None, request: PeerRequest) -> PeerResponse:
        try:
            response = await self._process(exchange, peer_cert_der, request)
        except Exception as err:  # noqa: BLE001 - every failure is answered with a fault, never raised
            fault = err if isinstance(err, BusError) else InternalError("Internal error", reason=repr(err))
            fault.at(Origin.SERVER_PROXY)
            body = fault.to_soap_fault()
            if exchange.request_logged:
                await self._log_failure(exchange, body, fault.fault_code)
            self._summary(exchange, fault)
            return self._reply(exchange, FAULT_CONTENT_TYPE, body, rest=exchange.rest is not None)
        self._summary(exchange, None)
        return response

    async def _process(self, exchange: _Exchange, peer_cert_der: bytes | None, request: PeerRequest) -> PeerResponse:
        context = self.context
        now = _utc(context.now())
        conf = context.global_conf()
        conf.check_valid(now)

        # 2. the transport message and its SOAP part
        headers = TransportHeaders.from_http(request.headers, is_response=False)
        exchange.request_id = headers.request_id
        transport = decode_transport(request.content_type, request.body, is_response=False, limits=self._limits)
        if transport.kind is MessageKind.REST:
            return await self._process_rest(exchange, peer_cert_der, headers, transport, conf, now)
        assert transport.message is not None and transport.signature is not None  # decode_transport checked
        soap = parse_soap(transport.message, transport.message_content_type, max_bytes=context.limits.max_body_bytes)
        exchange.soap = soap
        header = soap.header
        assert header is not None  # a request is never a fault
        attachments = tuple(part.body for part in transport.attachments)

        # 3-4. the target server and the provider
        snapshot = context.server_conf()
        self._check_target(header.security_server, header.service.client, snapshot)
        provider = header.service.client

        # 5. the peer's TLS certificate (X-Road verifySslClientCert)
        self._check_peer(peer_cert_der, transport, conf, now, header.client)

        # 6. the service and the access right (X-Road verifyAccess order); the metadata services answer here
        # without an access check (X-Road MetadataServiceHandlerImpl.shouldVerifyAccess is false).
        metadata = header.service.service_code in SOAP_METADATA_SERVICES
        service: Service | None = None
        if not metadata:
            service = snapshot.service(header.service)
            if service is None:
                raise UnknownService(f"Unknown service: {header.service}")
            if service.kind is not ServiceKind.SOAP:
                raise ServiceType("Service is a REST service and cannot be called using SOAP interface")
            snapshot.check_access(header.client, header.service, in_global_group=conf.is_member_of_group)
            if not service.enabled:
                raise ServiceDisabled(f"Service {header.service} is disabled: {service.disabled_notice}")

        # 7-8. the signature over the message and every attachment, its signer, and replays
        self._verify_request(transport, attachments, header.client, conf, now)

        # 9. a durable request record before the provider sees anything
        await self._log(
            received_entry(
                ExchangeIds(header.id, str(header.client), str(header.service), headers.request_id),
                Direction.REQUEST, now, transport, attachments,
            )
        )
        exchange.request_logged = True

        # 10. the provider's service, or the metadata service
        if service is None:
            answer = self._soap_metadata(soap, snapshot, conf, transport.message)
        else:
            called = await self._call_soap_provider(exchange, service, transport, headers)
            if isinstance(called, bytes):
                return self._reply(exchange, FAULT_CONTENT_TYPE, called)  # the service's own fault, passed back
            answer = called

        # 11. requestHash (already in the answer), signature over every part, log, answer
        now = _utc(context.now())
        out_attachments = tuple(part.body for part in answer.attachments)
        signature = await self.signer.sign(provider, answer.message, now, out_attachments)
        await self._log(
            signed_entry(
                ExchangeIds(header.id, str(header.client), str(header.service), headers.request_id),
                Direction.RESPONSE, now, answer.message, signature, out_attachments,
            )
        )
        content_type, body = encode_transport(
            TransportMessage(
                answer.message,
                message_content_type=answer.content_type,
                message_headers=answer.headers,
                attachments=answer.attachments,
                signature=signature.signature_xml,
                hashchain_result=signature.hash_chain_result,
                hashchain=signature.hash_chain,
            )
        )
        return self._reply(exchange, content_type, body, original_content_type=answer.content_type)

    # --- shared steps ---------------------------------------------------------------------------------------------

    def _check_target(self, security_server: SecurityServerId | None, provider: ClientId, snapshot: ServerConfSnapshot) -> None:
        """Steps 3-4: a ``securityServer`` header names this server; the provider is registered here."""
        if security_server is not None and security_server != self.context.server_id:
            raise InvalidSecurityServer(
                "Invalid security server identifier",
                reason=f"request names {security_server}, this is {self.context.server_id}",
            )
        hosted = snapshot.client(provider)
        if hosted is None or not hosted.registered:
            raise UnknownMember(f"Client '{provider}' not found", reason=f"{provider} is not a registered client here")

    def _check_peer(
        self, peer_cert_der: bytes | None, transport: TransportMessage, conf: GlobalConf, now: datetime, client: ClientId
    ) -> None:
        """Step 5: the peer's TLS certificate (X-Road verifySslClientCert)."""
        if peer_cert_der is None:
            raise SslAuthenticationFailed("Peer presented no TLS certificate")
        if not transport.ocsp_responses:
            raise SslAuthenticationFailed("Cannot verify TLS certificate, corresponding OCSP response is missing")
        # core/peerauth.py: registered to a server hosting the client, approved CA, one OCSP part good and fresh.
        self.peer_check(peer_cert_der, conf, now, hosted_client=client, ocsp_der=transport.ocsp_responses)

    def _verify_request(
        self, transport: TransportMessage, attachments: Sequence[bytes], client: ClientId, conf: GlobalConf, now: datetime
    ) -> None:
        """Steps 7-8: the signature covers the message and every attachment, made by the client's member; no replay."""
        assert transport.message is not None and transport.signature is not None
        parts = signed_part_map(transport.message, attachments, transport.hashchain_result, transport.hashchain)
        verified = verify_member_signature(
            transport.signature,
            parts,
            client,
            conf,
            self.trust.get(conf),
            now,
            expected_parts=expected_uris(len(attachments)),
        )
        self.replay_guard.check(
            ReplayGuard.key(verified.signature_value, transport.message, transport.hashchain),
            _utc(verified.signing_time),
            now,
        )

    # --- SOAP -------------------------------------------------------------------------------------------------------

    async def _call_soap_provider(
        self, exchange: _Exchange, service: Service, transport: TransportMessage, headers: TransportHeaders
    ) -> _SoapAnswer | bytes:
        """Step 10 for SOAP: call the service (as ``multipart/related`` when there are attachments) and read its
        answer; when the service answered with a SOAP fault, the fault (logged as the failed response) instead."""
        assert transport.message is not None
        context = self.context
        body, content_type = transport.message, transport.message_content_type
        if transport.attachments:
            soap_part = Part((("Content-Type", transport.message_content_type), *transport.message_headers), transport.message)
            content_type, body = build_related(SoapWithAttachments(soap_part, transport.attachments))
        provider_headers = {"Content-Type": content_type}
        if headers.original_soap_action is not None:
            provider_headers["SOAPAction"] = headers.original_soap_action
        exchange.provider_called = True
        answer = await self.provider_client.post(service.url, body, provider_headers, float(service.timeout_seconds))
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
            await self._log_failure(exchange, fault_body, exchange.provider_fault)
            return fault_body
        return _SoapAnswer(add_request_hash(response, transport.message), soap_type, soap_headers, attachments)

    def _soap_metadata(
        self, soap: SoapMessage, snapshot: ServerConfSnapshot, conf: GlobalConf, request_raw: bytes
    ) -> _SoapAnswer:
        """Step 10 for ``listMethods``, ``allowedMethods`` and ``getWsdl`` (pr-meta; core/metadata.py)."""
        header = soap.header
        assert header is not None
        provider = header.service.client
        digest = (digests.SHA512.uri, base64.b64encode(soap_request_hash(request_raw)).decode("ascii"))
        soap_services = [s for s in snapshot.services_of(provider) if s.kind is ServiceKind.SOAP]
        code = header.service.service_code
        if code == LIST_METHODS:
            return _SoapAnswer(method_list_response(soap, [s.id for s in soap_services], digest), SOAP_CONTENT_TYPE)
        if code == ALLOWED_METHODS:
            allowed = [
                s.id
                for s in soap_services
                if snapshot.client_rights(header.client, s.id, in_global_group=conf.is_member_of_group)
            ]
            return _SoapAnswer(method_list_response(soap, allowed, digest), SOAP_CONTENT_TYPE)
        service_code, version = wsdl_request(soap)
        target = snapshot.service(ServiceId(provider, service_code, version))
        if target is not None and target.kind is not ServiceKind.SOAP:
            raise ServiceType("Service is a REST service and does not have a WSDL")
        if target is None or target.description is None:
            raise UnknownService(f"Could not find wsdl URL for service {ServiceId(provider, service_code, version)}")
        wsdl = Part(
            (
                ("Content-Type", "text/xml"),
                ("Content-Transfer-Encoding", "binary"),
                ("Content-ID", f"<wsdl={uuid.uuid4()}@x-road.eu>"),
            ),
            rewrite_wsdl(target.description),
        )
        return _SoapAnswer(
            wsdl_response(soap, digest),
            SOAP_CONTENT_TYPE,
            (("Content-Transfer-Encoding", "8bit"), ("Content-ID", "<rootpart>")),
            (wsdl,),
        )

    # --- REST -------------------------------------------------------------------------------------------------------

    async def _process_rest(
        self,
        exchange: _Exchange,
        peer_cert_der: bytes | None,
        headers: TransportHeaders,
        transport: TransportMessage,
        conf: GlobalConf,
        now: datetime,
    ) -> PeerResponse:
        """The REST r1 exchange (pr-rest; X-Road ``ServerRestMessageProcessor``), in the SOAP steps' order."""
        context = self.context
        assert transport.message is not None and transport.signature is not None
        # 2. the REST message part: strict, identifiers read, the service path normalised (core/rest.py)
        rest = RestRequest.parse(transport.message)
        exchange.rest = rest
        if headers.request_id is not None and rest.request_id is not None and rest.request_id != headers.request_id:
            raise InconsistentHeaders("x-road-request-id of the REST message is not the transport's")
        body = transport.rest_body or b""
        attachments = (body,) if body else ()

        # 3-5. target server, provider, the peer's certificate
        snapshot = context.server_conf()
        self._check_target(rest.security_server, rest.service.client, snapshot)
        provider = rest.service.client
        self._check_peer(peer_cert_der, transport, conf, now, rest.client)

        # 6. service, type, access right on this endpoint (decoded, normalised path), enabled; the REST metadata
        # services answer GET without an access check (X-Road RestMetadataServiceHandlerImpl).
        metadata = rest.method == "GET" and rest.service.service_code in REST_METADATA_SERVICES
        service: Service | None = None
        if not metadata:
            service = snapshot.service(rest.service)
            if service is None:
                # A SOAP service has versions that a REST call cannot name: called over REST it is service_type.
                same_code = [s for s in snapshot.services_of(provider) if s.id.service_code == rest.service.service_code]
                if same_code:
                    raise ServiceType("Service is a SOAP service and cannot be called using REST interface")
                raise UnknownService(f"Unknown service: {rest.service}")
            if service.kind is not ServiceKind.REST:
                raise ServiceType("Service is a SOAP service and cannot be called using REST interface")
            snapshot.check_access(
                rest.client, rest.service, in_global_group=conf.is_member_of_group, method=rest.method, path=rest.normal_path
            )
            if not service.enabled:
                raise ServiceDisabled(f"Service {rest.service} is disabled: {service.disabled_notice}")

        # 7-9. signature over the message part and the body, replays, durable request record
        self._verify_request(transport, attachments, rest.client, conf, now)
        await self._log(
            received_entry(
                ExchangeIds(rest.query_id, str(rest.client), str(rest.service), headers.request_id),
                Direction.REQUEST, now, transport, attachments,
            )
        )
        exchange.request_logged = True

        # 10. the provider's service (status, headers and body pass through), or the metadata service
        if service is None:
            reply = self._rest_metadata(rest, snapshot, conf)
        else:
            exchange.provider_called = True
            reply = await self.rest_client.request(
                rest.method, rest.provider_target(service.url), rest.headers, body, float(service.timeout_seconds)
            )
            if reply.status >= 400:
                exchange.provider_fault = f"HTTP {reply.status}"

        # 11. the response message with X-Road-Request-Hash, signed over it and the body, logged, returned
        response = RestResponse.answering(
            rest, reply.status, reply.reason, reply.headers, rest_request_hash(transport.message, body), headers.request_id
        )
        message = response.to_bytes()
        out_attachments = (reply.body,) if reply.body else ()
        now = _utc(context.now())
        signature = await self.signer.sign(provider, message, now, out_attachments)
        await self._log(
            signed_entry(
                ExchangeIds(rest.query_id, str(rest.client), str(rest.service), headers.request_id),
                Direction.RESPONSE, now, message, signature, out_attachments,
            )
        )
        content_type, encoded = encode_transport(
            TransportMessage(
                message,
                message_content_type=REST_RESPONSE,
                rest_body=reply.body or None,
                signature=signature.signature_xml,
                hashchain_result=signature.hash_chain_result,
                hashchain=signature.hash_chain,
            )
        )
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

    async def _log(self, entry: LogEntry) -> None:
        await record(self.context.message_log, entry)

    def _reply(
        self,
        exchange: _Exchange,
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

    async def _log_failure(self, exchange: _Exchange, body: bytes, fault_code: str) -> None:
        """Record that an exchange whose request is in the log failed (SECURITY-CASES.md: logged as failed)."""
        identity = exchange.identity()
        if identity is None:
            return

        def not_logged(err: Exception) -> None:
            _log.error("failure_record_not_logged", **self._fields(exchange), reason=repr(err))

        ids = ExchangeIds(*identity, exchange.request_id)
        await record_failure(self.context.message_log, ids, _utc(self.context.now()), body, fault_code, not_logged)

    def _fields(self, exchange: _Exchange) -> dict[str, Any]:
        fields: dict[str, Any] = {"x_request_id": exchange.request_id}
        identity = exchange.identity()
        if identity is not None:
            fields.update(query_id=identity[0], client=identity[1], service=identity[2])
        if exchange.rest is not None:
            fields.update(protocol="rest", method=exchange.rest.method)
        return fields

    def _summary(self, exchange: _Exchange, fault: BusError | None) -> None:
        """The one event of an exchange: answered (perhaps with the provider's own fault) or refused."""
        duration_ms = round((time.monotonic() - exchange.started) * 1000, 1)
        if fault is None:
            _log.info(
                "peer_request_answered",
                **self._fields(exchange),
                provider_fault=exchange.provider_fault,
                duration_ms=duration_ms,
            )
            return
        _log.warning(
            "peer_request_refused",
            **self._fields(exchange),
            **fault.log_fields(),
            provider_called=exchange.provider_called,
            duration_ms=duration_ms,
        )
