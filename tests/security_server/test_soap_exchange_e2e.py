"""Issue 5 end to end: zeep -> consumer security server -> mutual TLS -> provider security server -> provider.

Everything is real and on loopback: the registry with its development CA, OCSP responder and published global
configuration; two security servers assembled by ``make_service`` (the same object ``fedbus server run``
starts), registered through the real request flow (CSR, certificate, authCertReg, clientReg); a SOAP provider;
and zeep as the consumer department's system. Afterwards both message logs must hold the signed request and
response with an intact hash chain, and ``xmlsec1`` must accept a logged signature and reject it after one
changed byte of the signed message.
"""

from __future__ import annotations

import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import zeep
import zeep.transports
from cryptography.hazmat.primitives import serialization
from lxml import etree
from twisted.internet import defer
from twisted.internet import reactor as global_reactor
from twisted.internet.threads import deferToThread
from twisted.trial import unittest
from twisted.web import server

from central_registry.bootstrap import init_registry
from central_registry.service import RegistryService
from central_registry.store import RegistryStore
from central_registry.trust.ca import CertKind, DevelopmentCA
from security_server import registration
from security_server.core.acl import AccessRight
from security_server.core.certprofile import auth_subject, signing_subject
from security_server.core.identifiers import XROAD_NS, ClientId, SecurityServerId, ServiceId
from security_server.core.logchain import Direction
from security_server.messagelog.store import MessageLogStore
from security_server.serverconf.store import ClientState, ServerConfStore, ServiceKind
from security_server.service import SecurityServerService, ServerSettings, make_service
from security_server.signer.softtoken import KeyAlgorithm, KeyKind, SoftToken
from tests.central_registry.test_federation_flow import free_port, now
from tests.security_server.proxy.exchange_fixture import ProviderService

reactor: Any = global_reactor

CONSUMER_MEMBER = ClientId("EE", "GOV", "70000310")
PROVIDER_MEMBER = ClientId("EE", "GOV", "70000311")
CONSUMER = CONSUMER_MEMBER.subsystem("consumer")
PROVIDER = PROVIDER_MEMBER.subsystem("provider")
SERVICE = ServiceId(PROVIDER, "getRandom", "v1")
WSDL = Path(__file__).with_name("getrandom.wsdl")


@dataclass
class Department:
    """One department's security server, running."""

    root: Path
    server_id: SecurityServerId
    client: ClientId
    service: SecurityServerService


def _xroad_headers(message_id: str) -> list[etree._Element]:
    """The X-Road SOAP 4.0 headers a consumer system adds (pr-mess §2.2)."""
    client = CONSUMER.to_xml(etree.QName(XROAD_NS, "client"))
    service = SERVICE.to_xml(etree.QName(XROAD_NS, "service"))
    ident = etree.Element(etree.QName(XROAD_NS, "id"))
    ident.text = message_id
    version = etree.Element(etree.QName(XROAD_NS, "protocolVersion"))
    version.text = "4.0"
    return [client, service, ident, version]


def _zeep_call(address: str, message_id: str) -> tuple[Any, bytes]:
    """What a department's Python system does: load the WSDL, call getRandom through its security server."""
    transport = zeep.transports.Transport(timeout=30, operation_timeout=30)  # type: ignore[no-untyped-call]
    try:
        client = zeep.Client(str(WSDL), transport=transport)  # type: ignore[no-untyped-call]
        proxy = client.create_service(  # type: ignore[no-untyped-call]
            "{http://test.fedbus.example/producer}getRandomBinding", address
        )
        result = proxy.getRandom(seed="42", _soapheaders=_xroad_headers(message_id))
        with client.settings(raw_response=True):
            raw = proxy.getRandom(seed="43", _soapheaders=_xroad_headers(message_id + "-raw"))
        return result, raw.content
    finally:
        transport.session.close()  # no keep-alive connection left behind in the reactor


class SoapExchangeEndToEndTest(unittest.TestCase):
    """A SOAP request through two security servers over real mutual TLS."""

    timeout = 180

    def setUp(self) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="fedbus-e2e-"))
        http_port, https_port = free_port(), free_port()
        self.paths = init_registry(
            self.tmp / "registry", "EE", now(), public_url=f"http://127.0.0.1:{http_port}", ca_key_size=2048
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

    @defer.inlineCallbacks
    def _department(self, index: int, member: ClientId, client: ClientId, anchor: bytes) -> Any:
        root = self.tmp / f"ss{index}"
        root.mkdir()
        server_id = SecurityServerId(member, f"ss{index}")
        with ServerConfStore(root / "serverconf.db") as conf_store:
            conf_store.initialise(member, server_id.server_code, anchor)
            conf_store.add_client(client)
        token = SoftToken(root / "keys")
        ca = DevelopmentCA.open(self.paths.ca)
        for kind, owner, subject in (
            (KeyKind.AUTH, server_id, auth_subject(server_id, f"Department {index}")),
            (KeyKind.SIGN, member, signing_subject(member, f"Department {index}")),
        ):
            key_id = token.generate(kind, owner, KeyAlgorithm.RSA2048)
            cert = ca.issue(token.csr(key_id, subject), CertKind.AUTH if kind is KeyKind.AUTH else CertKind.SIGN, now())
            token.import_cert(cert.public_bytes(serialization.Encoding.PEM), now=now())
        svc = make_service(reactor, ServerSettings(root=root, client_proxy_port=0, server_proxy_port=0, conf_refresh_seconds=3600))
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
    def test_zeep_request_through_two_security_servers(self) -> Any:
        """zeep gets the provider's answer with requestHash; both logs hold the signed pair; xmlsec1 agrees."""
        yield self.registry.publish_now()
        assert self.registry.publisher is not None
        anchor = self.registry.publisher.anchor(now())
        consumer = yield self._department(1, CONSUMER_MEMBER, CONSUMER, anchor)
        provider = yield self._department(2, PROVIDER_MEMBER, PROVIDER, anchor)
        with ServerConfStore(provider.root / "serverconf.db") as conf_store:
            port = self.provider_port.getHost().port
            conf_store.add_service(SERVICE, url=f"http://127.0.0.1:{port}/echo", kind=ServiceKind.SOAP, timeout_seconds=30)
            conf_store.grant(AccessRight.for_service(CONSUMER, SERVICE))
        yield self.registry.publish_now()
        for department in (consumer, provider):
            yield department.service.conf_client.refresh()
            department.service.restart_ocsp()
            yield department.service.reload_serverconf()
            # The approval is in the published configuration now, so the server has moved its client on by itself.
            with ServerConfStore(department.root / "serverconf.db") as conf_store:
                hosted = conf_store.snapshot().client(department.client)
            assert hosted is not None and hosted.state is ClientState.REGISTERED
            assert department.service.ocsp is not None
            for entry in department.service.token.list():
                if entry.cert is not None:
                    yield department.service.ocsp.refresh(entry.cert)

        address = f"http://127.0.0.1:{consumer.service.client_proxy_port}/"
        result, raw = yield deferToThread(_zeep_call, address, "e2e-message-1")

        assert result == "42"  # the provider's answer, unwrapped by zeep
        answer = etree.fromstring(raw)
        request_hash = answer.find(f".//{{{XROAD_NS}}}requestHash")
        assert request_hash is not None, raw.decode()
        assert request_hash.get("algorithmId") == "http://www.w3.org/2001/04/xmlenc#sha512"
        assert answer.findtext(f".//{{{XROAD_NS}}}id") == "e2e-message-1-raw"

        yield consumer.service.stopService()
        yield provider.service.stopService()
        self.departments = []
        for department in (consumer, provider):
            with MessageLogStore(department.root / "messagelog.db") as log_store:
                assert log_store.verify() == 4  # two exchanges: request and response each
                found = log_store.find("e2e-message-1")
                assert {r.direction for r in found} == {Direction.REQUEST, Direction.RESPONSE}
                assert all(r.succeeded for r in found)
        with MessageLogStore(provider.root / "messagelog.db") as log_store:
            request = next(r for r in log_store.find("e2e-message-1") if r.direction is Direction.REQUEST)
        self._check_with_xmlsec1(request.message, request.signature)

    def _check_with_xmlsec1(self, message: bytes, signature: bytes) -> None:
        """xmlsec1 verifies the logged signature over the logged message, and rejects it after one byte changes."""
        work = self.tmp / "xmlsec"
        work.mkdir()
        (work / "message.xml").write_bytes(message)
        (work / "signatures.xml").write_bytes(signature)
        ca_pem = DevelopmentCA.open(self.paths.ca).certificate.public_bytes(serialization.Encoding.PEM)
        (work / "ca.pem").write_bytes(ca_pem)
        command = [
            "xmlsec1", "--verify", "--trusted-pem", "ca.pem", "--url-map:/message.xml", "message.xml",
            "--id-attr:Id", "http://uri.etsi.org/01903/v1.3.2#:SignedProperties", "signatures.xml",
        ]
        accepted = subprocess.run(command, cwd=work, capture_output=True, text=True, timeout=60, check=False)
        assert accepted.returncode == 0, accepted.stderr
        assert "OK" in accepted.stdout + accepted.stderr
        tampered = bytearray(message)
        position = message.index(b"e2e-message-1")
        tampered[position] ^= 0x01
        (work / "message.xml").write_bytes(bytes(tampered))
        refused = subprocess.run(command, cwd=work, capture_output=True, text=True, timeout=60, check=False)
        assert refused.returncode != 0
