"""Two security servers wired in memory around a provider's service, built from real parts for the proxy tests.

Everything is made at run time: a development CA with its delegated OCSP responder (:mod:`tests.federation.ca`),
soft tokens whose keys get certificates through CSRs, the global configuration that lists the servers, server
configurations and message logs (SQLite) in temporary folders, the proxies wired through ``LocalPeerLink``, and
the SOAP provider of :mod:`tests.federation.provider` on a loopback port. The PKI is made once per test process
(RSA key generation is the slow part); everything that a test may change is made per test.

The federation: member C (``EE/GOV/70000001``) runs ``ss1`` and hosts the consumer subsystem ``client``; member
P (``EE/GOV/70000002``) runs ``ss2`` and hosts the provider subsystem ``service``; member O
(``EE/COM/70000003``) runs ``ss3`` (registered, hosting neither) and also has a signing key, the "other
member's key". ``ss9`` has an auth certificate from the CA but is not registered anywhere.
"""

from __future__ import annotations

import functools
import shutil
import tempfile
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Callable, Mapping, Sequence

from cryptography import x509
from lxml import etree
from twisted.internet.defer import Deferred, succeed
from twisted.trial import unittest
from twisted.web import server
from twisted.web.client import HTTPConnectionPool

from central_registry.trust.ca import DevelopmentCA
from central_registry.trust.ocsp_responder import build_ocsp_response
from security_server.core.acl import AccessRight
from security_server.core.config import MessageLimits
from security_server.core.errors import SOAP_ENV_NS
from security_server.core.globalconf import (
    GlobalConf,
    GlobalSettings,
    MemberClass,
    MemberInfo,
    SecurityServerInfo,
    SharedParameters,
)
from security_server.core.identifiers import ClientId, SecurityServerId, ServiceId
from security_server.core.logchain import LogRecord
from security_server.core.soap import SoapHeader, build_envelope
from security_server.core.transport import SignedMessage, decode_request, decode_transport, encode_transport
from security_server.messagelog.store import MessageLogStore
from security_server.messagelog.writer import MessageLogWriter
from security_server.proxy.client_proxy import ClientProxy
from security_server.proxy.context import ProxyContext
from security_server.proxy.locallink import LocalPeerLink
from security_server.proxy.peer_trust import PeerAuthVerifier, PeerOcspCache
from security_server.proxy.peerlink import PeerAddress, PeerLink, PeerRequest, PeerResponse, ServerProxyHandler
from security_server.proxy.provider_call import AgentProviderClient
from security_server.proxy.server_proxy import ServerProxy
from security_server.serverconf.store import ClientState, ServerConfStore, ServiceKind
from security_server.signer.signing_keys import SigningKeys
from security_server.signer.softtoken import KeyKind, SoftToken
from security_server.signer.token import Token
from tests.federation.ca import issue_into_token, make_ca, ocsp_for
from tests.federation.gconf import approved_ca, auth_hashes, private_parameters
from tests.federation.pki import der
from tests.federation.provider import NS, ProviderService
from tests.loopback import REACTOR, free_port, now

C = ClientId("EE", "GOV", "70000001")
P = ClientId("EE", "GOV", "70000002")
O = ClientId("EE", "COM", "70000003")  # noqa: E741 - the "other" member
CONSUMER = C.subsystem("client")
PROVIDER = P.subsystem("service")
OTHER = O.subsystem("other")
SS1 = SecurityServerId(C, "ss1")
SS2 = SecurityServerId(P, "ss2")
SS3 = SecurityServerId(O, "ss3")
SS9 = SecurityServerId(O, "ss9")

SERVICE = ServiceId(PROVIDER, "getPerson", "v1")


# --- the PKI, once per process -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pki:
    """The CA, the tokens and the certificates of the test federation."""

    root: Path
    ca: DevelopmentCA
    consumer_token: SoftToken
    """ss1's auth key and member C's signing key (RSA 2048, X-Road's default, deterministic signatures)."""
    provider_token: SoftToken
    """ss2's auth key and member P's signing key."""
    revoked_token: SoftToken
    """A second ss1 auth key whose certificate the CA has revoked, and a second signing key of member C."""
    other_token: SoftToken
    """ss3's auth key and member O's signing key."""
    unregistered_auth: x509.Certificate
    """An auth certificate for ss9, which no global configuration lists."""

    def auth_cert(self, token: SoftToken) -> x509.Certificate:
        """The auth certificate on ``token``."""
        return token.auth_key()[1]


@functools.cache
def pki(profile: str = "fedbus") -> Pki:
    """The test PKI (made on first use, kept for the test process); the CA issues under certificate ``profile``."""
    root = Path(tempfile.mkdtemp(prefix="fedbus-exchange-pki-"))
    at = now()
    ca = make_ca(root / "ca", at, "fedbus exchange test CA", profile=profile)
    issue = functools.partial(issue_into_token, ca=ca, now=at, profile=ca.profile)
    consumer = SoftToken(root / "consumer")
    issue(consumer, kind=KeyKind.AUTH, owner=SS1, algorithm="ec-p256")
    issue(consumer, kind=KeyKind.SIGN, owner=C, algorithm="rsa2048")
    provider = SoftToken(root / "provider")
    issue(provider, kind=KeyKind.AUTH, owner=SS2, algorithm="ec-p256")
    issue(provider, kind=KeyKind.SIGN, owner=P, algorithm="rsa2048")
    revoked = SoftToken(root / "revoked")
    revoked_cert = issue(revoked, kind=KeyKind.AUTH, owner=SS1, algorithm="ec-p256")
    issue(revoked, kind=KeyKind.SIGN, owner=C, algorithm="ec-p256")
    ca.revoke(revoked_cert.serial_number, x509.ReasonFlags.key_compromise, at)
    other = SoftToken(root / "other")
    issue(other, kind=KeyKind.AUTH, owner=SS3, algorithm="ec-p256")
    issue(other, kind=KeyKind.SIGN, owner=O, algorithm="ec-p256")
    stray = SoftToken(root / "stray")
    unregistered = issue(stray, kind=KeyKind.AUTH, owner=SS9, algorithm="ec-p256")
    return Pki(root, ca, consumer, provider, revoked, other, unregistered)


_KEYS: dict[int, SigningKeys] = {}


def signing_keys(token: Token) -> SigningKeys:
    """One key cache per token for the whole test process (loading an RSA key costs tens of milliseconds)."""
    keys = _KEYS.get(id(token))
    if keys is None:
        keys = _KEYS[id(token)] = SigningKeys(token, ttl_seconds=3600)
    return keys


class OwnOcsp:
    """``ProxyContext.own_ocsp``: real responses from the CA, made once per certificate; ``age`` makes them old."""

    def __init__(self, ca: DevelopmentCA, age: Callable[[x509.Certificate], timedelta] | None = None) -> None:
        self.ca = ca
        self.age = age
        self._made: dict[int, bytes] = {}

    def __call__(self, cert: x509.Certificate) -> bytes:
        made = self._made.get(cert.serial_number)
        if made is None:
            delta = self.age(cert) if self.age is not None else timedelta(0)
            made = self._made[cert.serial_number] = ocsp_for(self.ca, cert, now() - delta)
        return made


def ocsp_fetch(ca: DevelopmentCA) -> Callable[[str, bytes], Deferred[bytes]]:
    """A ``PeerOcspCache`` fetch that asks the CA's responder logic in memory."""

    def fetch(url: str, request_der: bytes) -> Deferred[bytes]:
        return succeed(build_ocsp_response(request_der, ca.state(), now()))

    return fetch


# --- the global configuration ------------------------------------------------------------------------------


def global_conf(
    material: Pki,
    *,
    expires_in: timedelta = timedelta(days=1),
    ss1_certs: tuple[x509.Certificate, ...] | None = None,
    ss2_address: str = "127.0.0.1:5500",
    extra_provider_servers: tuple[SecurityServerInfo, ...] = (),
) -> GlobalConf:
    """The federation's configuration: three members, three servers, one approved CA with its responder (named
    with the certificate profile it issues under)."""
    ca_der = der(material.ca.certificate)
    auth1 = ss1_certs if ss1_certs is not None else (material.auth_cert(material.consumer_token),)
    shared = SharedParameters(
        instance="EE",
        global_settings=GlobalSettings(3600, (MemberClass("GOV", "Government"), MemberClass("COM", "Commercial"))),
        approved_cas=(approved_ca(material.ca, name="test CA", profile=material.ca.profile),),
        members=(
            MemberInfo(C, "Consumer department", ("client",)),
            MemberInfo(P, "Provider department", ("service",)),
            MemberInfo(O, "Other company", ("other",)),
        ),
        security_servers=(
            SecurityServerInfo(SS1, "127.0.0.1:5500", auth_hashes(*(der(c) for c in auth1)), (CONSUMER,)),
            SecurityServerInfo(
                SS2, ss2_address, auth_hashes(der(material.auth_cert(material.provider_token))), (PROVIDER,)
            ),
            SecurityServerInfo(
                SS3, "127.0.0.1:5500", auth_hashes(der(material.auth_cert(material.other_token))), (OTHER,)
            ),
            *extra_provider_servers,
        ),
    )
    private = private_parameters("EE", C.subsystem("management"), ca_der, url="https://127.0.0.1:1/managementservice/")
    return GlobalConf(shared, private, now() + expires_in)


# --- requests the consumer's IS sends --------------------------------------------------------------------------


def is_request(
    service: ServiceId = SERVICE, *, client: ClientId = CONSUMER, text: str = "Jaan Tamm", query_id: str | None = None
) -> bytes:
    """A well-formed SOAP 4.0 request from the consumer IS."""
    header = SoapHeader(client=client, service=service, id=query_id or str(uuid.uuid4()), user_id="EE30101010007")
    wrapper = etree.Element(etree.QName(NS, service.service_code), nsmap={"p": NS})
    etree.SubElement(wrapper, "name").text = text
    return build_envelope(header, wrapper)


# --- one server's edge parts ---------------------------------------------------------------------------------


@dataclass
class Server:
    """One security server's configuration store, message log and proxy context."""

    server_id: SecurityServerId
    store: ServerConfStore
    log_path: Path
    writer: MessageLogWriter
    context: ProxyContext
    own_ocsp: OwnOcsp
    conf_box: list[GlobalConf] = field(default_factory=list)


def make_server(
    directory: Path,
    server_id: SecurityServerId,
    token: SoftToken,
    conf_box: list[GlobalConf],
    own_ocsp: OwnOcsp,
    *,
    log_path: Path | None = None,
    limits: MessageLimits = MessageLimits(),
) -> Server:
    """A server's store (initialised, owner registered), a running message-log writer and its proxy context."""
    directory.mkdir(parents=True, exist_ok=True)
    store = ServerConfStore(directory / "serverconf.db")
    store.initialise(server_id.owner, server_id.server_code, b"<anchor/>")
    store.set_client_state(server_id.owner, ClientState.REGISTERED)
    path = log_path if log_path is not None else directory / "messagelog.db"
    writer = MessageLogWriter(REACTOR, path)
    writer.start()
    context = ProxyContext(
        reactor=REACTOR,
        server_id=server_id,
        global_conf=lambda: conf_box[0],
        server_conf=store.snapshot,
        token=token,
        own_ocsp=own_ocsp,
        message_log=writer,
        limits=limits,
    )
    return Server(server_id, store, path, writer, context, own_ocsp, conf_box)


def add_registered_client(store: ServerConfStore, client: ClientId) -> None:
    """Add a subsystem and mark it registered."""
    store.add_client(client)
    store.set_client_state(client, ClientState.REGISTERED)


def publish(
    store: ServerConfStore,
    service: ServiceId,
    url: str,
    *,
    timeout_seconds: int = 10,
    grant_to: ClientId | None = CONSUMER,
    kind: ServiceKind = ServiceKind.SOAP,
) -> None:
    """Add ``service`` at ``url`` and grant ``grant_to`` the right to call it."""
    store.add_service(service, url=url, kind=kind, timeout_seconds=timeout_seconds)
    if grant_to is not None:
        store.grant(AccessRight.for_service(grant_to, service))


# --- the test bed: both servers wired through the in-memory link -------------------------------------------

SOAP = "text/xml; charset=UTF-8"

SLOW = ServiceId(PROVIDER, "slowService")
DROP = ServiceId(PROVIDER, "dropService")
NONXML = ServiceId(PROVIDER, "garbageService")
FAULTY = ServiceId(PROVIDER, "faultService")
REFUSED = ServiceId(PROVIDER, "refusedService")
DISABLED = ServiceId(PROVIDER, "disabledService")
DENIED = ServiceId(PROVIDER, "deniedService")
REST = ServiceId(PROVIDER, "restService")


def fault_code(body: bytes) -> str:
    """The ``faultcode`` of a SOAP fault answer."""
    root = etree.fromstring(body)
    code = root.find(f"{{{SOAP_ENV_NS}}}Body/{{{SOAP_ENV_NS}}}Fault/faultcode")
    assert code is not None, body[:400]
    return code.text or ""


def fault_detail(body: bytes) -> str:
    """The fault-detail UUID of a SOAP fault answer."""
    root = etree.fromstring(body)
    detail = root.find(f"{{{SOAP_ENV_NS}}}Body/{{{SOAP_ENV_NS}}}Fault/detail/faultDetail")
    assert detail is not None
    return detail.text or ""


def records(path: Path) -> list[LogRecord]:
    """Every record of a message log."""
    with MessageLogStore(path) as store:
        return list(store.records())



class ExchangeBed(unittest.TestCase):
    """Base of trial test cases: ss1 and ss2 with their stores, logs and proxies, wired through LocalPeerLink,
    and the provider service on a loopback port."""

    timeout = 30
    ca_profile = "fedbus"
    """The certificate profile of the test CA (a test case may choose one of X-Road's)."""

    def setUp(self) -> None:
        self.pki: Pki = pki() if self.ca_profile == "fedbus" else pki(self.ca_profile)  # one cache entry for fedbus
        self.tmp = Path(tempfile.mkdtemp(prefix="fedbus-exchange-"))
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.conf_box = [global_conf(self.pki)]
        self.service = ProviderService()
        site = server.Site(self.service)  # type: ignore[no-untyped-call]
        site.timeOut = None
        self.port = REACTOR.listenTCP(0, site, interface="127.0.0.1")
        base = f"http://127.0.0.1:{self.port.getHost().port}"
        self.servers: list[Server] = []
        self.pool = HTTPConnectionPool(REACTOR, persistent=False)  # type: ignore[no-untyped-call]
        self.consumer = self.make_consumer()
        self.provider = self.make_provider(base)
        self.server_proxy = self.make_server_proxy(self.provider)
        self.link = self.make_link(self.server_proxy)
        self.client_proxy = self.make_client_proxy(self.link)

    def make_link(self, server_proxy: ServerProxyHandler) -> LocalPeerLink:
        """The in-memory link from ss1 to ``server_proxy`` as ss2, checking ss2's certificate as production does
        (PeerAuthVerifier, OCSP included) before it delivers anything."""
        return LocalPeerLink(
            {SS2: server_proxy},
            {SS2: der(self.pki.auth_cert(self.pki.provider_token))},
            client_cert_der=der(self.pki.auth_cert(self.pki.consumer_token)),
            verify_peer=PeerAuthVerifier(
                REACTOR, lambda: self.conf_box[0], PeerOcspCache(REACTOR, fetch=ocsp_fetch(self.pki.ca))
            ),
        )

    def make_consumer(
        self,
        *,
        token: SoftToken | None = None,
        log_path: Path | None = None,
        own_ocsp: OwnOcsp | None = None,
        limits: MessageLimits = MessageLimits(),
    ) -> Server:
        """The consumer's server ss1 hosting the registered subsystem CONSUMER."""
        consumer = make_server(
            self.tmp / f"ss1-{len(self.servers)}",
            SS1,
            token or self.pki.consumer_token,
            self.conf_box,
            own_ocsp or OwnOcsp(self.pki.ca),
            log_path=log_path,
            limits=limits,
        )
        add_registered_client(consumer.store, CONSUMER)
        self.servers.append(consumer)
        return consumer

    def make_provider(self, base: str, *, log_path: Path | None = None, own_ocsp: OwnOcsp | None = None) -> Server:
        """The provider's server ss2 with its services published and granted to CONSUMER (but one)."""
        provider = make_server(
            self.tmp / f"ss2-{len(self.servers)}",
            SS2,
            self.pki.provider_token,
            self.conf_box,
            own_ocsp or OwnOcsp(self.pki.ca),
            log_path=log_path,
        )
        store = provider.store
        add_registered_client(store, PROVIDER)
        publish(store, SERVICE, f"{base}/echo")
        publish(store, SLOW, f"{base}/slow", timeout_seconds=1)
        publish(store, DROP, f"{base}/drop")
        publish(store, NONXML, f"{base}/nonxml")
        publish(store, FAULTY, f"{base}/fault")
        publish(store, REFUSED, f"http://127.0.0.1:{free_port()}/closed")
        publish(store, DISABLED, f"{base}/echo")
        store.disable_service(DISABLED, "Closed for maintenance until Monday")
        publish(store, DENIED, f"{base}/echo", grant_to=None)
        publish(store, REST, f"{base}/echo", kind=ServiceKind.REST)
        self.servers.append(provider)
        return provider

    def make_client_proxy(self, link: PeerLink, consumer: Server | None = None) -> ClientProxy:
        """A client proxy for the consumer (or ``consumer``) sending through ``link``."""
        context = (consumer or self.consumer).context
        return ClientProxy(context, link, signing_keys=signing_keys(context.token))

    def make_server_proxy(self, provider: Server) -> ServerProxy:
        """The provider's server proxy, calling the provider over the test's connection pool."""
        return ServerProxy(
            provider.context,
            provider_client=AgentProviderClient(REACTOR, max_response_bytes=1024 * 1024, pool=self.pool),
            signing_keys=signing_keys(provider.context.token),
        )

    def tearDown(self) -> Deferred[None]:  # type: ignore[override]  # trial waits for a Deferred
        """Stop the writers, close the stores, the pooled connections and the provider's port."""
        return Deferred.fromCoroutine(self._tear_down())

    async def _tear_down(self) -> None:
        self.service.release()
        for one in self.servers:
            await one.writer.stop()
            one.store.close()
        await self.pool.closeCachedConnections()  # type: ignore[no-untyped-call]
        await self.port.stopListening()

    async def send(
        self, body: bytes, *, proxy: ClientProxy | None = None, headers: Mapping[str, str] | None = None
    ) -> tuple[int, str, bytes]:
        """POST ``body`` as the consumer IS does."""
        return await (proxy or self.client_proxy).handle_soap(SOAP, body, headers or {"SOAPAction": '""'})

    async def assert_fault(self, body: bytes, code: str, *, proxy: ClientProxy | None = None, status: int | None = None) -> bytes:
        """Send ``body`` and check that the IS gets the fault ``code``."""
        got_status, content_type, answer = await self.send(body, proxy=proxy)
        assert fault_code(answer) == code
        assert content_type.startswith("text/xml")
        if status is not None:
            assert got_status == status
        return answer

    def assert_nothing_sent(self) -> None:
        """Nothing reached the provider's server, and the provider was not called."""
        assert self.link.delivered == []
        assert self.service.calls == {}


# --- a link in the middle ------------------------------------------------------------------------------------


class RewritingLink:
    """A peer link in the middle: rewrites the request before, or the response after, the in-memory link."""

    def __init__(
        self,
        inner: PeerLink,
        request: Callable[[PeerRequest], PeerRequest] | None = None,
        response: Callable[[PeerResponse], PeerResponse] | None = None,
    ) -> None:
        self.inner = inner
        self.request = request
        self.response = response

    def send(self, peers: Sequence[PeerAddress], request: PeerRequest, timeout_seconds: float) -> Deferred[PeerResponse]:
        """Rewrite, deliver, rewrite."""
        if self.request is not None:
            request = self.request(request)
        answered = self.inner.send(peers, request, timeout_seconds)
        if self.response is not None:
            answered.addCallback(self.response)
        return answered


def rewrite_request(change: Callable[[SignedMessage], SignedMessage]) -> Callable[[PeerRequest], PeerRequest]:
    """A request rewriter that decodes the transport message, changes it and encodes it again."""

    def rewrite(request: PeerRequest) -> PeerRequest:
        message = decode_request(request.content_type, request.body)
        content_type, body = encode_transport(change(message))
        return PeerRequest(headers=request.headers, content_type=content_type, body=body, path=request.path)

    return rewrite


def rewrite_response(change: Callable[[SignedMessage], SignedMessage]) -> Callable[[PeerResponse], PeerResponse]:
    """A rewriter of a signed response, as :func:`rewrite_request`."""

    def rewrite(response: PeerResponse) -> PeerResponse:
        message = decode_transport(response.content_type, response.body, is_response=True)
        assert isinstance(message, SignedMessage), "the rewritten response is a signed one"
        content_type, body = encode_transport(change(message))
        return PeerResponse(
            status=response.status,
            content_type=content_type,
            body=body,
            headers=response.headers,
            server=response.server,
            peer_cert_der=response.peer_cert_der,
        )

    return rewrite
