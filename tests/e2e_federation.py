"""The real two-department federation the end-to-end tests share, running as services on loopback.

The process-level layer over :mod:`tests.federation`: the registry with its development CA, OCSP responder, TSA
and published global configuration; the provider's SOAP service of :mod:`tests.federation.provider`; and the
departments of :mod:`tests.federation.departments` as security servers assembled by ``make_service`` (the same
object ``fedbus server run`` starts), their keys certified by the registry's CA (:mod:`tests.federation.ca`) and
each registered through the real request flow (CSR, certificate, authCertReg, clientReg). A test case inherits
``TwoDepartmentFederation`` (import this module, not the class, so the base is not collected on its own) and
adds its departments with ``add_department``, or starts the consumer and the provider offering SERVICE with
``start_pair``.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import zeep
import zeep.transports
from lxml import etree
from twisted.internet import defer
from twisted.trial import unittest
from twisted.web import server

from central_registry.bootstrap import init_registry
from central_registry.service import RegistryService
from central_registry.store import RegistryStore
from central_registry.trust.ca import DevelopmentCA
from security_server import registration
from security_server.core.acl import AccessRight
from security_server.core.identifiers import XROAD_NS, ClientId, SecurityServerId
from security_server.management.config import ManagementConfig
from security_server.serverconf.store import ClientState, ServerConfStore, ServiceKind
from security_server.service import SecurityServerService, ServerSettings, make_service
from security_server.signer.softtoken import KeyAlgorithm, KeyKind, SoftToken
from tests.federation.ca import issue_into_token
from tests.federation.departments import CONSUMER as CONSUMER
from tests.federation.departments import CONSUMER_MEMBER as CONSUMER_MEMBER
from tests.federation.departments import PROVIDER as PROVIDER
from tests.federation.departments import PROVIDER_MEMBER as PROVIDER_MEMBER
from tests.federation.departments import SERVICE as SERVICE
from tests.federation.provider import ProviderService
from tests.loopback import REACTOR, free_port, now

reactor: Any = REACTOR

WSDL = Path(__file__).parent / "security_server" / "getrandom.wsdl"


@dataclass
class Department:
    """One department's security server, running."""

    root: Path
    server_id: SecurityServerId
    client: ClientId
    service: SecurityServerService


def xroad_headers(message_id: str) -> list[etree._Element]:
    """The X-Road SOAP 4.0 headers a consumer system adds (pr-mess §2.2)."""
    client = CONSUMER.to_xml(etree.QName(XROAD_NS, "client"))
    service = SERVICE.to_xml(etree.QName(XROAD_NS, "service"))
    ident = etree.Element(etree.QName(XROAD_NS, "id"))
    ident.text = message_id
    version = etree.Element(etree.QName(XROAD_NS, "protocolVersion"))
    version.text = "4.0"
    return [client, service, ident, version]


def zeep_call(address: str, message_id: str) -> tuple[Any, bytes]:
    """What a department's Python system does: load the WSDL, call getRandom through its security server."""
    transport = zeep.transports.Transport(timeout=30, operation_timeout=30)  # type: ignore[no-untyped-call]
    try:
        client = zeep.Client(str(WSDL), transport=transport)  # type: ignore[no-untyped-call]
        proxy = client.create_service(  # type: ignore[no-untyped-call]
            "{http://test.fedbus.example/producer}getRandomBinding", address
        )
        result = proxy.getRandom(seed="42", _soapheaders=xroad_headers(message_id))
        with client.settings(raw_response=True):
            raw = proxy.getRandom(seed="43", _soapheaders=xroad_headers(message_id + "-raw"))
        return result, raw.content
    finally:
        transport.session.close()  # no keep-alive connection left behind in the reactor


class TwoDepartmentFederation(unittest.TestCase):
    """A running registry and SOAP provider; departments are added by the test, and all stopped afterwards."""

    timeout = 180
    ca_profile = "fedbus"
    """The certificate profile the registry's development CA issues under (a test case may choose X-Road's)."""

    def setUp(self) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="fedbus-e2e-"))
        http_port, https_port = free_port(), free_port()
        self.paths = init_registry(
            self.tmp / "registry", "EE", now(), public_url=f"http://127.0.0.1:{http_port}", ca_key_size=2048,
            ca_profile=self.ca_profile,
        )
        store = RegistryStore(self.paths.database)
        store.set_setting("auto_approve", "true")
        store.add_member(CONSUMER_MEMBER, "Consumer Department")
        store.add_member(PROVIDER_MEMBER, "Provider Department")
        store.close()
        self.registry = RegistryService(reactor, self.paths.root, http_port=http_port, https_port=https_port)
        self.registry.startService()
        self.provider = ProviderService()
        self.provider_port = reactor.listenTCP(0, server.Site(self.provider), interface="127.0.0.1")  # type: ignore[no-untyped-call]
        self.departments: list[Department] = []

    @defer.inlineCallbacks
    def tearDown(self) -> Any:  # type: ignore[override]  # trial waits for the Deferred
        self.provider.release()
        for department in self.departments:
            yield department.service.stopService()
        yield self.provider_port.stopListening()
        yield self.registry.stopService()

    def anchor(self) -> bytes:
        """The registry's configuration anchor, as a department's administrator downloads it."""
        assert self.registry.publisher is not None
        anchor: bytes = self.registry.publisher.anchor(now())
        return anchor

    @defer.inlineCallbacks
    def add_department(
        self, index: int, member: ClientId, client: ClientId, anchor: bytes, management: ManagementConfig | None = None
    ) -> Any:
        """Start security server ``ss<index>`` for ``member`` and register it and ``client`` (auto-approved);
        with ``management``, its management API and console listen as ``fedbus server run`` starts them."""
        root = self.tmp / f"ss{index}"
        root.mkdir()
        server_id = SecurityServerId(member, f"ss{index}")
        with ServerConfStore(root / "serverconf.db") as conf_store:
            conf_store.initialise(member, server_id.server_code, anchor)
            conf_store.add_client(client)
        token = SoftToken(root / "keys")
        ca = DevelopmentCA.open(self.paths.ca)
        issue_into_token(token, ca, KeyKind.AUTH, server_id, KeyAlgorithm.RSA2048, now(), f"Department {index}",
                         profile=ca.profile)
        issue_into_token(token, ca, KeyKind.SIGN, member, KeyAlgorithm.RSA2048, now(), f"Department {index}",
                         profile=ca.profile)
        svc = make_service(reactor, ServerSettings(root=root, client_proxy_port=0, server_proxy_port=0, conf_refresh_seconds=3600,
                                                  management=management))
        svc.startService()
        department = Department(root, server_id, client, svc)
        self.departments.append(department)
        result = yield svc.conf_client.refresh()
        assert result.applied, result.error
        svc.restart_ocsp()
        conf = svc.conf_client.current()
        _, sign_cert = token.signing_key(member)
        assert svc.ocsp is not None
        yield svc.ocsp.refresh(sign_cert)
        # authCertReg with the server proxy's real address, then clientReg for the subsystem (auto-approved).
        content_type, body = registration.auth_cert_reg(
            token, server_id, f"127.0.0.1:{svc.server_proxy_port}", svc.ocsp.current(sign_cert)
        )
        answer = yield registration.submit(reactor, conf.management_service, content_type, body)
        assert answer["status"] == "approved"
        yield self.registry.publish_now()
        yield svc.conf_client.refresh()
        content_type, body = registration.client_reg(token, server_id, client, svc.ocsp.current(sign_cert))
        answer = yield registration.submit(reactor, svc.conf_client.current().management_service, content_type, body)
        assert answer["status"] == "approved"
        with ServerConfStore(root / "serverconf.db") as conf_store:
            conf_store.set_client_state(client, ClientState.REGISTRATION_IN_PROGRESS)  # as `client register` does
        return department

    @defer.inlineCallbacks
    def start_pair(self) -> Any:
        """Publish, start and register the consumer (``ss1``) and provider (``ss2``) departments, and offer SERVICE."""
        yield self.registry.publish_now()
        anchor = self.anchor()
        consumer = yield self.add_department(1, CONSUMER_MEMBER, CONSUMER, anchor)
        provider = yield self.add_department(2, PROVIDER_MEMBER, PROVIDER, anchor)
        yield self.offer_service(consumer, provider)
        return consumer, provider

    @defer.inlineCallbacks
    def offer_service(self, consumer: Department, provider: Department) -> Any:
        """The provider's server offers SERVICE (the SOAP provider's /echo) to CONSUMER; both then catch up."""
        with ServerConfStore(provider.root / "serverconf.db") as conf_store:
            port = self.provider_port.getHost().port
            conf_store.add_service(SERVICE, url=f"http://127.0.0.1:{port}/echo", kind=ServiceKind.SOAP, timeout_seconds=30)
            conf_store.grant(AccessRight.for_service(CONSUMER, SERVICE))
        yield self.catch_up(consumer, provider)

    @defer.inlineCallbacks
    def catch_up(self, *departments: Department) -> Any:
        """Publish, then have each department download the configuration, reload its own and refresh its OCSP."""
        yield self.registry.publish_now()
        for department in departments:
            yield department.service.conf_client.refresh()
            department.service.restart_ocsp()
            yield department.service.reload_serverconf()
            assert department.service.ocsp is not None
            for entry in department.service.token.list():
                if entry.cert is not None:
                    yield department.service.ocsp.refresh(entry.cert)
