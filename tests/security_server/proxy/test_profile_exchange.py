"""Exchanges between two security servers whose certificates follow X-Road's Finnish (FI) profile, in memory.

The test CA issues under ``FiVRKCertificateProfileInfoProvider`` and the global configuration names that class:
the consumer's and the provider's signing certificates (``C=FI, serialNumber=instance/serverCode/memberClass,
CN=memberCode``) are read with the FI profile on both sides. The same exchange with the CA named under another
profile, or one fedbus does not read, is refused: the profile comes from the configuration, not from the
certificate.
"""

from __future__ import annotations

from dataclasses import replace

from cryptography.x509.oid import NameOID

from security_server.core.globalconf import GlobalConf
from tests.federation.profile_certs import EJBCA, FI, UNKNOWN
from tests.federation.world import C, ExchangeBed, fault_code, is_request, records


def _with_profile(conf: GlobalConf, profile: str) -> GlobalConf:
    """``conf`` with its one approved CA naming ``profile``."""
    (ca,) = conf.shared.approved_cas
    shared = replace(conf.shared, approved_cas=(replace(ca, certificate_profile=profile),))
    return GlobalConf(shared, conf.private, conf.expires_at)


class FiProfileExchangeTest(ExchangeBed):
    """ss1 and ss2 with FI-profile certificates from a CA the configuration names FI."""

    ca_profile = FI

    async def test_an_exchange_with_fi_certificates(self) -> None:
        """The consumer gets the provider's answer; both logs hold the request and the response."""
        _, sign_cert = self.pki.consumer_token.signing_key(C)
        assert sign_cert.subject.get_attributes_for_oid(NameOID.COUNTRY_NAME)[0].value == "FI"
        status, _, body = await self.send(is_request(query_id="fi-1"))
        assert status == 200, body[:300]
        assert b"Jaan Tamm" in body
        for server in (self.consumer, self.provider):
            assert len([r for r in records(server.log_path) if r.query_id == "fi-1"]) == 2

    async def test_the_profile_comes_from_the_configuration(self) -> None:
        """Named under EJBCA's profile, the FI certificates name no member: the provider refuses the request."""
        self.conf_box[0] = _with_profile(self.conf_box[0], EJBCA)
        status, _, body = await self.send(is_request(query_id="fi-2"))
        assert fault_code(body).endswith("cert_validation"), (status, body[:300])
        assert self.service.calls == {}

    async def test_a_ca_of_an_unknown_profile_signs_for_nobody(self) -> None:
        """A CA whose profile fedbus does not read has certificates of no readable identity: refused."""
        self.conf_box[0] = _with_profile(self.conf_box[0], UNKNOWN)
        status, _, body = await self.send(is_request(query_id="fi-3"))
        assert fault_code(body).endswith("cert_validation"), (status, body[:300])
        assert self.service.calls == {}
