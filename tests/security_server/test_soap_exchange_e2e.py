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
from typing import Any

from cryptography.hazmat.primitives import serialization
from lxml import etree
from twisted.internet import defer
from twisted.internet.threads import deferToThread

from central_registry.trust.ca import DevelopmentCA
from security_server.core.identifiers import XROAD_NS
from security_server.core.logchain import Direction
from security_server.messagelog.store import MessageLogStore
from security_server.serverconf.store import ClientState, ServerConfStore
from tests import e2e_federation as federation
from tests.e2e_federation import zeep_call


class SoapExchangeEndToEndTest(federation.TwoDepartmentFederation):
    """A SOAP request through two security servers over real mutual TLS."""

    @defer.inlineCallbacks
    def test_zeep_request_through_two_security_servers(self) -> Any:
        """zeep gets the provider's answer with requestHash; both logs hold the signed pair; xmlsec1 agrees."""
        consumer, provider = yield self.start_pair()
        for department in (consumer, provider):
            # The approval is in the published configuration now, so the server has moved its client on by itself.
            with ServerConfStore(department.root / "serverconf.db") as conf_store:
                hosted = conf_store.snapshot().client(department.client)
            assert hosted is not None and hosted.state is ClientState.REGISTERED

        address = f"http://127.0.0.1:{consumer.service.client_proxy_port}/"
        result, raw = yield deferToThread(zeep_call, address, "e2e-message-1")

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
