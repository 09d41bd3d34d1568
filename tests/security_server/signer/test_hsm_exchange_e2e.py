"""Issue 20 end to end: the SOAP exchange of issue 5 with both servers' signing keys in SoftHSM2, loaded by the
servers' real start-up path.

The federation of tests/e2e_federation.py runs with three changes, each made as an operator makes it: each
security server's INI has a ``[pkcs11:hsm]`` section naming its own SoftHSM2 token (PIN in a 0600 file), its
member's signing key is generated in that token (``keys generate --token hsm``) and certified there, and its
auth key stays in the soft token (docs/hsm.md §4); the registry's INI has ``[conf-signing] token = hsm``, so it
publishes with its configuration-signing key in SoftHSM2. ``ServerSettings.from_config`` and
``RegistrySettings.from_config`` read the INI files and the services open the tokens themselves. Registration
requests, request and response signatures and the global configuration are then all signed inside the HSM; the
logged signatures verify, and xmlsec1 agrees. The health checks follow the tokens: a removed signing token fails
the security server's check, and it passes again once the token is back, without a restart.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from twisted.internet import defer
from twisted.internet.threads import deferToThread

from central_registry.conf_signing_key import create_in_token
from central_registry.service import RegistryPaths, RegistryService, RegistrySettings
from central_registry.trust.ca import CertKind, DevelopmentCA
from security_server import registration
from security_server.configfile import load_config
from security_server.core.certprofile import signing_subject
from security_server.core.globalconf import parse_configuration_anchor
from security_server.core.identifiers import ClientId, SecurityServerId
from security_server.core.logchain import Direction
from security_server.core.signature import verify_signature
from security_server.edge.health_checker import CheckFailed, HealthCheck, HealthChecker
from security_server.messagelog.store import MessageLogStore
from security_server.serverconf.store import ClientState, ServerConfStore
from security_server.service import ServerSettings, make_service
from security_server.signer.softtoken import SoftToken
from security_server.signer.token import KeyAlgorithm, KeyKind, TokenStatus
from security_server.signer.token_set import TokenSet
from tests import e2e_federation as federation
from tests.e2e_federation import CONSUMER, CONSUMER_MEMBER, PROVIDER, PROVIDER_MEMBER, zeep_call
from tests.federation.ca import issue_into_token
from tests.loopback import REACTOR, now
from tests.security_server.signer.softhsm import SoftHsmToken, shared_softhsm

reactor: Any = REACTOR


def _pkcs11_section(hsm: SoftHsmToken, pin_file: Path) -> str:
    """A ``[pkcs11:hsm]`` section for ``hsm``, its PIN in ``pin_file`` (written here, mode 0600)."""
    pin_file.write_text(hsm.pin + "\n", encoding="utf-8")
    os.chmod(pin_file, 0o600)
    return f"[pkcs11:hsm]\nlibrary = {hsm.module}\nsign-mechanism = CKM_RSA_PKCS\ntoken-label = {hsm.label}\npin-file = {pin_file}\n"


async def _check(checker: HealthChecker, name: str) -> str | None:
    """Run the check ``name`` of ``checker`` afresh: None when it passes, else its reason."""
    check: HealthCheck = next(c for c in checker.checks if c.name == name)
    try:
        await check.run()
    except CheckFailed as failed:
        return str(failed)
    return None


class HsmSoapExchangeEndToEndTest(federation.TwoDepartmentFederation):
    """A SOAP request through two security servers and a registry whose signing keys are in SoftHSM2."""

    def setUp(self) -> Any:
        super().setUp()
        self.server_hsms: dict[int, SoftHsmToken] = {}
        return defer.ensureDeferred(self._registry_with_key_in_token())

    async def _registry_with_key_in_token(self) -> None:
        """Restart the registry from an INI whose ``[conf-signing]`` names a SoftHSM2 token holding a new key."""
        http_port, https_port = self.registry.http_port, self.registry.https_port
        # The store's one thread publishes at start; stopping closes the store, so let that publication end first.
        await self.registry.publish_now()
        await self.registry.stopService()
        self.registry_hsm = shared_softhsm().init_token()
        ini = self.tmp / "registry.ini"
        ini.write_text(
            f"[registry]\nhttp-port = {http_port}\nhttps-port = {https_port}\n"
            "[conf-signing]\ntoken = hsm\nkey-label = fedbus conf-signing\n"
            + _pkcs11_section(self.registry_hsm, self.tmp / "registry.pin"),
            encoding="utf-8",
        )
        settings = RegistrySettings.from_config(
            self.paths.root, load_config("central-registry", local_dir=self.tmp, extra=ini)
        )
        conf_signing = RegistryPaths(self.paths.root).conf_signing
        (conf_signing / "key.pem").rename(self.tmp / "conf-signing-file-key.pem")  # a new key means a new anchor
        self.conf_cert = create_in_token(conf_signing, settings.conf_signing, "EE configuration signing", now()).cert
        # As `fedbus registry serve` builds it.
        self.registry = RegistryService(
            reactor, self.paths.root, host=settings.host, http_port=settings.http_port,
            https_port=settings.https_port, public_url=settings.public_url, health=settings.health,
            conf_signing=settings.conf_signing,
        )
        self.registry.startService()

    @defer.inlineCallbacks
    def add_hsm_department(self, index: int, member: ClientId, client: ClientId, anchor: bytes) -> Any:
        """Start ``ss<index>`` from an INI with its own SoftHSM2 token, the member's signing key generated in it,
        and register the server and ``client`` (auto-approved), as :meth:`add_department` does."""
        root = self.tmp / f"ss{index}"
        root.mkdir()
        server_id = SecurityServerId(member, f"ss{index}")
        with ServerConfStore(root / "serverconf.db") as conf_store:
            conf_store.initialise(member, server_id.server_code, anchor)
            conf_store.add_client(client)
        ca = DevelopmentCA.open(self.paths.ca)
        issue_into_token(SoftToken(root / "keys"), ca, KeyKind.AUTH, server_id, KeyAlgorithm.RSA2048, now(), "Dept")
        ini = root / "local.ini"
        self.server_hsms[index] = hsm = shared_softhsm().init_token()
        ini.write_text(
            "[server]\nclient-proxy-port = 0\nserver-proxy-port = 0\nconf-refresh-seconds = 3600\n\n[management]\nport = 0\n\n"
            + _pkcs11_section(hsm, root / "hsm.pin"),
            encoding="utf-8",
        )
        settings = ServerSettings.from_config(root, load_config("security-server", local_dir=root, extra=ini))
        svc = make_service(reactor, settings)
        tokens = svc.token
        assert isinstance(tokens, TokenSet)
        # `keys generate --kind sign --token hsm`, `keys csr`, `keys import-cert`: the key pair is made in the token.
        key_id = tokens.token("hsm").generate(KeyKind.SIGN, member, KeyAlgorithm.RSA2048)
        cert = ca.issue(tokens.csr(key_id, signing_subject(member, f"Department {index}")), CertKind.SIGN, now())
        tokens.import_cert(cert.public_bytes(serialization.Encoding.PEM), now=now())
        svc.startService()
        department = federation.Department(root, server_id, client, svc)
        self.departments.append(department)
        result = yield svc.conf_client.refresh()
        assert result.applied, result.error
        svc.restart_ocsp()
        _, sign_cert = tokens.signing_key(member)
        assert sign_cert == cert and svc.ocsp is not None
        yield svc.ocsp.refresh(sign_cert)
        content_type, body = registration.auth_cert_reg(
            tokens, server_id, f"127.0.0.1:{svc.server_proxy_port}", svc.ocsp.current(sign_cert)
        )
        answer = yield registration.submit(reactor, svc.conf_client.current().management_service, content_type, body)
        assert answer["status"] == "approved"
        yield self.registry.publish_now()
        yield svc.conf_client.refresh()
        content_type, body = registration.client_reg(tokens, server_id, client, svc.ocsp.current(sign_cert))
        answer = yield registration.submit(reactor, svc.conf_client.current().management_service, content_type, body)
        assert answer["status"] == "approved"
        with ServerConfStore(root / "serverconf.db") as conf_store:
            conf_store.set_client_state(client, ClientState.REGISTRATION_IN_PROGRESS)
        return department

    @defer.inlineCallbacks
    def test_soap_exchange_with_signing_keys_in_softhsm(self) -> Any:
        """zeep gets the answer; both servers signed in their HSM, the registry in its; the logs verify, xmlsec1
        accepts the request, and the health checks pass."""
        yield self.registry.publish_now()
        anchor = self.anchor()
        (source,) = parse_configuration_anchor(anchor).sources
        assert source.verification_certs == (self.conf_cert.public_bytes(serialization.Encoding.DER),)
        assert (yield defer.ensureDeferred(_check(self.registry.health.checker, "Configuration signing key"))) is None
        consumer = yield self.add_hsm_department(1, CONSUMER_MEMBER, CONSUMER, anchor)
        provider = yield self.add_hsm_department(2, PROVIDER_MEMBER, PROVIDER, anchor)
        for department, member in ((consumer, CONSUMER_MEMBER), (provider, PROVIDER_MEMBER)):
            tokens = department.service.token
            assert isinstance(tokens, TokenSet)
            assert tokens.statuses() == {"soft": TokenStatus.LOGGED_IN, "hsm": TokenStatus.LOGGED_IN}
            sign_keys = [k for k in tokens.token("hsm").list() if k.kind is KeyKind.SIGN]
            assert [k.owner for k in sign_keys] == [member] and sign_keys[0].cert is not None
            assert [k.kind for k in tokens.token("soft").list()] == [KeyKind.AUTH]
            health = department.service.monitoring.checker
            assert (yield defer.ensureDeferred(_check(health, "Signing tokens"))) is None
        yield self.offer_service(consumer, provider)

        address = f"http://127.0.0.1:{consumer.service.client_proxy_port}/"
        result, _ = yield deferToThread(zeep_call, address, "hsm-message-1")
        assert result == "42"

        hsm_certs = {
            department.root: next(k.cert for k in department.service.token.token("hsm").list() if k.kind is KeyKind.SIGN)
            for department in (consumer, provider)
        }
        yield consumer.service.stopService()
        yield provider.service.stopService()
        self.departments = []
        for department, signer_root in ((consumer, consumer.root), (provider, consumer.root)):
            with MessageLogStore(department.root / "messagelog.db") as log_store:
                assert log_store.verify() == 4
                request = next(r for r in log_store.find("hsm-message-1") if r.direction is Direction.REQUEST)
                response = next(r for r in log_store.find("hsm-message-1") if r.direction is Direction.RESPONSE)
            verified = verify_signature(request.signature, {"/message.xml": request.message}.get)
            assert verified.signing_cert == hsm_certs[signer_root]
            verified = verify_signature(response.signature, {"/message.xml": response.message}.get)
            assert verified.signing_cert == hsm_certs[provider.root]
        self._check_with_xmlsec1(request.message, request.signature)

    @defer.inlineCallbacks
    def test_health_check_follows_the_signing_token_out_and_back(self) -> Any:
        """Removing the server's SoftHSM2 token fails "Signing tokens" (naming the token); once it is back the
        same running server passes the check again, and the registry's key check passes with its key in a token."""
        yield self.registry.publish_now()
        consumer = yield self.add_hsm_department(1, CONSUMER_MEMBER, CONSUMER, self.anchor())
        health = consumer.service.monitoring.checker
        assert (yield defer.ensureDeferred(_check(health, "Signing tokens"))) is None
        pin_file = consumer.root / "hsm.pin"
        hsm_dir = self.server_hsms[1].directory
        saved = self.tmp / "saved-token"
        shutil.copytree(hsm_dir, saved)
        shutil.rmtree(hsm_dir)
        problem = yield defer.ensureDeferred(_check(health, "Signing tokens"))
        assert problem is not None and problem.startswith("token hsm is not-present"), problem
        assert pin_file.read_text(encoding="utf-8").strip() not in problem
        shutil.copytree(saved, hsm_dir)
        assert (yield defer.ensureDeferred(_check(health, "Signing tokens"))) is None
        assert (yield defer.ensureDeferred(_check(self.registry.health.checker, "Configuration signing key"))) is None

    def _check_with_xmlsec1(self, message: bytes, signature: bytes) -> None:
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
