"""A small federation for the peer-network tests, built at run time: CA with OCSP, three servers, odd certificates.

One development CA (with a delegated OCSP responder) issues the authentication certificates of three security
servers, each kept in its own soft token; a second, unapproved CA issues a rogue one. The global configuration
(:func:`make_conf`) approves the first CA, lists its OCSP responder at a URL the test chooses, and registers:

* ``SS1`` (owner GOV1) hosting ``CONSUMER``; ``SS2`` (owner GOV2) hosting ``PROVIDER`` and ``ONLY_ON_SS2``;
  ``SS3`` (owner GOV2) hosting ``PROVIDER``;
* on ``SS2``, besides its own certificate: the rogue certificate, an expired one, a revoked one and a signing
  certificate, so that each of those fails on its own defect rather than on registration.

Built once per test process (a few RSA/EC keys); never written outside a temporary directory.
"""

from __future__ import annotations

import functools
import hashlib
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from central_registry.trust.ca import CertKind, DevelopmentCA
from security_server.core.certprofile import auth_subject
from security_server.core.globalconf import (
    ApprovedCa,
    CaInfo,
    ConfigurationSource,
    GlobalConf,
    GlobalSettings,
    ManagementService,
    MemberClass,
    MemberInfo,
    OcspResponder,
    PrivateParameters,
    SecurityServerInfo,
    SharedParameters,
)
from security_server.core.identifiers import ClientId, SecurityServerId
from security_server.signer.softtoken import KeyAlgorithm, KeyKind, SoftToken
from tests.federation_pki import KeyAndCert, issue_auth, issue_signing, make_ca

INSTANCE = "EE"
GOV1 = ClientId(INSTANCE, "GOV", "70000001")
GOV2 = ClientId(INSTANCE, "GOV", "70000002")
SS1 = SecurityServerId(GOV1, "ss1")
SS2 = SecurityServerId(GOV2, "ss2")
SS3 = SecurityServerId(GOV2, "ss3")
CONSUMER = GOV1.subsystem("consumer")
PROVIDER = GOV2.subsystem("provider")
ONLY_ON_SS2 = GOV2.subsystem("only2")


def der(cert: x509.Certificate) -> bytes:
    """The certificate in DER."""
    return cert.public_bytes(serialization.Encoding.DER)


def _token(root: Path, ca: DevelopmentCA, server: SecurityServerId, algorithm: KeyAlgorithm, now: datetime) -> SoftToken:
    token = SoftToken(root / f"token-{server.server_code}")
    key_id = token.generate(KeyKind.AUTH, server, algorithm)
    csr = token.csr(key_id, auth_subject(server, "Test department"))
    cert = ca.issue(csr, CertKind.AUTH, now)
    token.import_cert(cert.public_bytes(serialization.Encoding.PEM), now=now)
    return token


def _expired_auth(ca: DevelopmentCA, server: SecurityServerId, now: datetime) -> KeyAndCert:
    """An auth certificate that was valid for one day, ten days ago."""
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(auth_subject(server, "Test department"))
        .sign(key, hashes.SHA256())
        .public_bytes(serialization.Encoding.PEM)
    )
    return KeyAndCert(key, ca.issue(csr, CertKind.AUTH, now - timedelta(days=10), validity_days=1))


@dataclass(frozen=True)
class PeerWorld:
    """The federation's PKI and tokens (see the module docstring)."""

    now: datetime
    root: Path
    ca: DevelopmentCA
    tokens: dict[SecurityServerId, SoftToken]
    rogue: KeyAndCert
    expired: KeyAndCert
    revoked: KeyAndCert
    unregistered: KeyAndCert
    signing: KeyAndCert

    def auth_cert(self, server: SecurityServerId) -> x509.Certificate:
        """The authentication certificate in ``server``'s token."""
        return self.tokens[server].auth_key()[1]

    def auth_der(self, server: SecurityServerId) -> bytes:
        """The authentication certificate of ``server``, DER."""
        return der(self.auth_cert(server))


@functools.cache
def peer_world() -> PeerWorld:
    """The federation, made once per test process."""
    now = datetime.now(UTC).replace(microsecond=0)
    root = Path(tempfile.mkdtemp(prefix="fedbus-peer-world-"))
    ca = make_ca(root / "ca", now)
    rogue_ca = make_ca(root / "rogue-ca", now)
    tokens = {
        SS1: _token(root, ca, SS1, KeyAlgorithm.RSA2048, now),
        SS2: _token(root, ca, SS2, KeyAlgorithm.EC_P256, now),
        SS3: _token(root, ca, SS3, KeyAlgorithm.EC_P256, now),
    }
    revoked = issue_auth(ca, SS2, now)
    ca.revoke(revoked.cert.serial_number, x509.ReasonFlags.key_compromise, now)
    return PeerWorld(
        now=now,
        root=root,
        ca=ca,
        tokens=tokens,
        rogue=issue_auth(rogue_ca, SS2, now),
        expired=_expired_auth(ca, SS2, now),
        revoked=revoked,
        unregistered=issue_auth(ca, SS2, now),
        signing=issue_signing(ca, GOV2, now),
    )


def make_conf(
    world: PeerWorld,
    *,
    ocsp_url: str = "http://127.0.0.1:1/",
    freshness_seconds: int = 3600,
    expires_at: datetime | None = None,
) -> GlobalConf:
    """The global configuration of the module docstring, with the CA's OCSP responder at ``ocsp_url``."""
    responder_cert = world.ca.state().responder_cert
    assert responder_cert is not None
    ca_info = CaInfo(der(world.ca.certificate), (OcspResponder(ocsp_url, der(responder_cert)),))

    def registered(*certs: bytes) -> tuple[bytes, ...]:
        return tuple(hashlib.sha256(c).digest() for c in certs)

    ss2_certs = registered(
        world.auth_der(SS2),
        world.rogue.cert_der,
        world.expired.cert_der,
        world.revoked.cert_der,
        world.signing.cert_der,
    )
    shared = SharedParameters(
        instance=INSTANCE,
        global_settings=GlobalSettings(freshness_seconds, (MemberClass("GOV", "Government"),)),
        sources=(ConfigurationSource("registry.example", (der(world.ca.certificate),), ()),),
        approved_cas=(ApprovedCa("fedbus test CA", ca_info, "fedbus.default"),),
        approved_tsas=(),
        members=(
            MemberInfo(GOV1, "Department one", ("consumer",)),
            MemberInfo(GOV2, "Department two", ("provider", "only2")),
        ),
        security_servers=(
            SecurityServerInfo(SS1, "127.0.0.1", registered(world.auth_der(SS1)), (CONSUMER,)),
            SecurityServerInfo(SS2, "127.0.0.1", ss2_certs, (PROVIDER, ONLY_ON_SS2)),
            SecurityServerInfo(SS3, "127.0.0.1", registered(world.auth_der(SS3)), (PROVIDER,)),
        ),
        global_groups=(),
    )
    private = PrivateParameters(
        instance=INSTANCE,
        management_service=ManagementService(
            "https://registry.example:4001/managementservice/",
            GOV1.subsystem("management"),
            der(world.ca.certificate),
        ),
        time_stamping_interval_seconds=60,
    )
    return GlobalConf(shared, private, expires_at or world.now + timedelta(days=1))
