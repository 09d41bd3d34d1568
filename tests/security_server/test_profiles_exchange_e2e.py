"""An exchange between two security servers whose certificates follow X-Road's Estonian profile, end to end.

The registry's development CA issues under X-Road's ``SkKlass3CertificateProfileInfoProvider`` (the EE profile:
``serialNumber`` = the eight-digit registry code, ``CN`` = the member's name; no instance, no server code), the
global configuration names that class for the CA, and everything else is the real flow of
``tests/e2e_federation.py``: authCertReg and clientReg checked by the registry under the CA's profile, mutual TLS
between the servers, and each side's signature check reading the signer from the other's EE certificate.
"""

from __future__ import annotations

from typing import Any

from click.testing import CliRunner
from cryptography.x509.oid import NameOID
from twisted.internet import defer
from twisted.internet.threads import deferToThread

from central_registry.trust.ca import DevelopmentCA
from security_server.audit_cli import audit
from security_server.messagelog.store import MessageLogStore
from tests import e2e_federation as federation
from tests.e2e_federation import zeep_call
from tests.federation.profile_certs import EE


class EeProfileExchangeEndToEndTest(federation.TwoDepartmentFederation):
    """Two departments with EE-profile certificates exchange a SOAP request."""

    ca_profile = EE

    @defer.inlineCallbacks
    def test_ee_profile_certificates_carry_an_exchange(self) -> Any:
        """Registered and signing with EE-profile certificates, the consumer gets the provider's answer, the
        registry published the CA with X-Road's class, and both logs hold the signed pair."""
        consumer, provider = yield self.start_pair()
        assert DevelopmentCA.open(self.paths.ca).profile == EE
        conf = consumer.service.conf_client.current()
        assert [ca.certificate_profile for ca in conf.approved_cas()] == [EE]
        for department in (consumer, provider):
            _, cert = department.service.token.signing_key(department.server_id.owner)
            serial = cert.subject.get_attributes_for_oid(NameOID.SERIAL_NUMBER)[0].value
            assert serial == department.server_id.owner.member_code  # the EE layout, not fedbus's

        address = f"http://127.0.0.1:{consumer.service.client_proxy_port}/"
        result, _ = yield deferToThread(zeep_call, address, "ee-profile-1")
        assert result == "42"

        conf_dir = consumer.root / "verificationconf"
        made = yield deferToThread(
            CliRunner().invoke, audit, ["verificationconf", "--dir", str(consumer.root), "--out", str(conf_dir)]
        )
        assert made.exit_code == 0, made.output
        yield consumer.service.stopService()
        yield provider.service.stopService()
        self.departments = []
        for department in (consumer, provider):
            with MessageLogStore(department.root / "messagelog.db") as log_store:
                assert len(log_store.find("ee-profile-1")) == 2
            # The auditor reads the signer from the EE certificate too (its instance from the configuration).
            logged = yield deferToThread(
                CliRunner().invoke, audit, ["verify", "log", "--dir", str(department.root), "--conf", str(conf_dir)]
            )
            assert logged.exit_code == 0, logged.output
