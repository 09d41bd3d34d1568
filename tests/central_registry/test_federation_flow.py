"""End to end on loopback: two departments register their security servers through the real request flow.

Registry up (HTTP: configuration, OCSP, TSA; HTTPS: management requests); each department makes keys in its
soft token, gets certificates from the development CA through CSRs, downloads the global configuration with
its anchor, fetches its own OCSP response, sends authCertReg to the registry over pinned TLS; the registry
admin approves; both servers download the new configuration and see each other.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from twisted.internet import defer
from twisted.internet import reactor as global_reactor
from twisted.trial import unittest

from central_registry.bootstrap import init_registry
from central_registry.requests import RegistrationDesk, RequestStatus
from central_registry.service import RegistryService
from central_registry.store import auth_cert_hash
from central_registry.trust.ca import CertKind, DevelopmentCA
from security_server import registration
from security_server.confclient.client import ConfClient
from security_server.core.certprofile import auth_subject, signing_subject
from security_server.core.errors import BusError
from security_server.core.globalconf import parse_configuration_anchor
from security_server.core.identifiers import ClientId, SecurityServerId
from security_server.signer.ocsp_client import OcspClient, OwnCertificate
from security_server.signer.softtoken import KeyAlgorithm, KeyKind, SoftToken
from tests.loopback import free_port, now

reactor: Any = global_reactor

GOV1 = ClientId("EE", "GOV", "70000310")
GOV2 = ClientId("EE", "GOV", "70000311")


class Department:
    """One department's security server side: soft token, configuration client, OCSP client."""

    def __init__(self, root: Path, server: SecurityServerId, name: str, anchor_xml: bytes) -> None:
        self.server = server
        self.name = name
        self.token = SoftToken(root / "keys")
        self.anchor = parse_configuration_anchor(anchor_xml)
        self.conf = ConfClient(reactor, self.anchor, root / "globalconf.bundle", interval_seconds=3600)

    def get_certificates(self, ca: DevelopmentCA) -> None:
        """Generate keys, send CSRs to the CA, import the certificates (the admin's key ceremony)."""
        auth_id = self.token.generate(KeyKind.AUTH, self.server, KeyAlgorithm.RSA2048)
        sign_id = self.token.generate(KeyKind.SIGN, self.server.owner, KeyAlgorithm.EC_P256)
        auth_csr = self.token.csr(auth_id, auth_subject(self.server, self.name))
        sign_csr = self.token.csr(sign_id, signing_subject(self.server.owner, self.name))
        for csr, kind in ((auth_csr, CertKind.AUTH), (sign_csr, CertKind.SIGN)):
            cert = ca.issue(csr, kind, now())
            self.token.import_cert(cert.public_bytes(serialization.Encoding.PEM), now=now())


class FederationFlowTest(unittest.TestCase):
    """The registration flow of issue 4 over real loopback sockets."""

    timeout = 60

    def setUp(self) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="fedbus-federation-"))
        http_port, https_port = free_port(), free_port()
        self.paths = init_registry(
            self.tmp / "registry", "EE", now(), public_url=f"http://127.0.0.1:{http_port}", ca_key_size=2048
        )
        self.registry = RegistryService(reactor, self.paths.root, http_port=http_port, https_port=https_port)
        self.registry.startService()
        self.departments: list[Department] = []

    @defer.inlineCallbacks
    def tearDown(self) -> Any:  # type: ignore[override]  # trial waits for the Deferred
        for department in self.departments:
            if department.conf.running:
                yield department.conf.stopService()
        yield self.registry.stopService()

    @defer.inlineCallbacks
    def test_two_servers_register_and_see_each_other(self) -> Any:
        """authCertReg from two departments, approved by the admin, shows both servers in both configurations."""
        store = self.registry.store
        assert store is not None
        yield self.registry.run(store.add_member, GOV1, "Population Register")
        yield self.registry.run(store.add_member, GOV2, "Tax Board")
        yield self.registry.publish_now()
        assert self.registry.publisher is not None
        anchor_xml = self.registry.publisher.anchor(now())
        ca = DevelopmentCA.open(self.paths.ca)

        servers = [SecurityServerId(GOV1, "ss1"), SecurityServerId(GOV2, "ss2")]
        for index, server in enumerate(servers):
            department = Department(self.tmp / f"department{index}", server, f"Department {index}", anchor_xml)
            department.conf.startService()
            self.departments.append(department)
            department.get_certificates(ca)
            result = yield department.conf.refresh()
            assert result.applied, result.error
            conf = department.conf.current()

            # Its own signing certificate's OCSP response, fetched from the responder named in the configuration.
            _, sign_cert = department.token.signing_key(server.owner)
            responder = conf.ocsp_responders(sign_cert.issuer)[0]
            issuer = ca.certificate
            ocsp = OcspClient(reactor, [OwnCertificate(sign_cert, issuer, responder.url)])
            yield ocsp.refresh(sign_cert)
            content_type, body = registration.auth_cert_reg(
                department.token, server, f"127.0.0.1:{5500 + index}", ocsp.current(sign_cert)
            )
            answer = yield registration.submit(reactor, conf.management_service, content_type, body)
            assert answer["status"] == "pending"

        desk = RegistrationDesk(store)
        pending = yield self.registry.run(desk.list, RequestStatus.PENDING)
        assert len(pending) == 2
        for record in pending:
            yield self.registry.run(desk.approve, record.id, now())
        yield self.registry.publish_now()

        for department in self.departments:
            result = yield department.conf.refresh()
            assert result.applied, result.error
            conf = department.conf.current()
            for other in self.departments:
                seen = conf.security_server(other.server)
                assert seen is not None, f"{department.server} does not see {other.server}"
                _, auth_cert = other.token.auth_key()
                assert seen.auth_cert_hashes == (auth_cert_hash(auth_cert.public_bytes(serialization.Encoding.DER)),)
                assert other.server.owner in seen.clients

    @defer.inlineCallbacks
    def test_forged_request_is_refused_over_the_wire(self) -> Any:
        """A request signed by an unregistered member's key is refused by the registry with its fault code."""
        store = self.registry.store
        assert store is not None
        yield self.registry.run(store.add_member, GOV1, "Population Register")
        yield self.registry.publish_now()
        assert self.registry.publisher is not None
        department = Department(self.tmp / "d", SecurityServerId(GOV2, "ss9"), "Not a member", self.registry.publisher.anchor(now()))
        department.conf.startService()
        self.departments.append(department)
        department.get_certificates(DevelopmentCA.open(self.paths.ca))
        yield department.conf.refresh()
        conf = department.conf.current()
        content_type, body = registration.auth_cert_reg(department.token, department.server, "127.0.0.1:1", b"not ocsp")
        try:
            yield registration.submit(reactor, conf.management_service, content_type, body)
        except BusError as refusal:
            assert "refused" in str(refusal)
        else:
            raise AssertionError("the registry accepted a request from a non-member")
        events = yield self.registry.run(store.audit_events)
        assert events[-1]["event"] == "request_refused"
