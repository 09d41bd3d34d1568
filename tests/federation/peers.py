"""Three security servers' authentication tokens and defective certificates, for the peer-link tests.

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
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509

from central_registry.trust.ca import DevelopmentCA
from security_server.core.globalconf import (
    ConfigurationSource,
    GlobalConf,
    GlobalSettings,
    MemberClass,
    MemberInfo,
    SecurityServerInfo,
    SharedParameters,
)
from security_server.core.identifiers import ClientId, SecurityServerId
from security_server.signer.softtoken import KeyAlgorithm, KeyKind, SoftToken
from tests.federation.ca import KeyAndCert, issue_auth, issue_into_token, issue_signing, make_ca
from tests.federation.gconf import approved_ca, auth_hashes, private_parameters
from tests.federation.pki import der, ec_key

INSTANCE = "EE"
GOV1 = ClientId(INSTANCE, "GOV", "70000001")
GOV2 = ClientId(INSTANCE, "GOV", "70000002")
SS1 = SecurityServerId(GOV1, "ss1")
SS2 = SecurityServerId(GOV2, "ss2")
SS3 = SecurityServerId(GOV2, "ss3")
CONSUMER = GOV1.subsystem("consumer")
PROVIDER = GOV2.subsystem("provider")
ONLY_ON_SS2 = GOV2.subsystem("only2")


def _token(root: Path, ca: DevelopmentCA, server: SecurityServerId, algorithm: KeyAlgorithm, now: datetime) -> SoftToken:
    token = SoftToken(root / f"token-{server.server_code}")
    issue_into_token(token, ca, KeyKind.AUTH, server, algorithm, now, "Test department")
    return token


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
        expired=issue_auth(ca, SS2, now - timedelta(days=10), "Test department", key=ec_key(), validity_days=1),
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
    ss2_certs = auth_hashes(
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
        approved_cas=(approved_ca(world.ca, ocsp_url=ocsp_url),),
        approved_tsas=(),
        members=(
            MemberInfo(GOV1, "Department one", ("consumer",)),
            MemberInfo(GOV2, "Department two", ("provider", "only2")),
        ),
        security_servers=(
            SecurityServerInfo(SS1, "127.0.0.1", auth_hashes(world.auth_der(SS1)), (CONSUMER,)),
            SecurityServerInfo(SS2, "127.0.0.1", ss2_certs, (PROVIDER, ONLY_ON_SS2)),
            SecurityServerInfo(SS3, "127.0.0.1", auth_hashes(world.auth_der(SS3)), (PROVIDER,)),
        ),
        global_groups=(),
    )
    private = private_parameters(INSTANCE, GOV1.subsystem("management"), der(world.ca.certificate))
    return GlobalConf(shared, private, expires_at or world.now + timedelta(days=1))
