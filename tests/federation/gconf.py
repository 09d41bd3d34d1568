"""Global configuration values for tests: the pieces every test federation's configuration is made of, samples
and Hypothesis strategies.

The builders (:func:`approved_ca`, :func:`auth_hashes`, :func:`private_parameters`) are shared by the federations
of :mod:`tests.federation.world`, :mod:`tests.federation.peers` and :mod:`tests.federation.evidence`; the samples
and strategies serve the globalconf tests, whose injected 'now' is :data:`NOW`. Directory signing uses RSA 2048
as X-Road does; certificates that only fill CA/TSA/OCSP slots use P-256 keys, which are quicker to make.
"""

from __future__ import annotations

import functools
import hashlib

from hypothesis import strategies as st

from central_registry.trust.ca import DevelopmentCA
from security_server.core.globalconf import (
    ApprovedCa,
    ApprovedTsa,
    CaInfo,
    ConfigurationSource,
    GlobalGroup,
    GlobalSettings,
    ManagementService,
    MemberClass,
    MemberInfo,
    OcspResponder,
    PrivateParameters,
    SecurityServerInfo,
    SharedParameters,
)
from security_server.core.identifiers import ClientId, GlobalGroupId, SecurityServerId
from tests.federation.ca import OCSP_URL
from tests.federation.pki import SAMPLE_TIME, Issued, der, ec_issued, ec_issued_by, rsa_issued

NOW = SAMPLE_TIME
"""The injected 'now' of the globalconf tests."""

IDENTIFIER_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789'()+,-.=?"

MANAGEMENT_URL = "https://registry.example:4001/managementservice/"


# --- the pieces of a federation's configuration ---------------------------------------------------------------


def approved_ca(
    ca: DevelopmentCA, *, ocsp_url: str = OCSP_URL, name: str = "fedbus test CA", profile: str = "fedbus"
) -> ApprovedCa:
    """The development CA approved, with its delegated OCSP responder at ``ocsp_url``."""
    responder = ca.state().responder_cert
    assert responder is not None, "the CA has no OCSP responder certificate"
    return ApprovedCa(name, CaInfo(der(ca.certificate), (OcspResponder(ocsp_url, der(responder)),)), profile)


def auth_hashes(*certs_der: bytes) -> tuple[bytes, ...]:
    """The SHA-256 hashes by which a security server's registered authentication certificates are listed."""
    return tuple(hashlib.sha256(cert).digest() for cert in certs_der)


def private_parameters(
    instance: str, provider: ClientId, cert_der: bytes | None, *, url: str = MANAGEMENT_URL
) -> PrivateParameters:
    """Private parameters naming ``provider`` the management service provider (timestamping every 60 s)."""
    return PrivateParameters(
        instance=instance,
        management_service=ManagementService(url, provider, cert_der),
        time_stamping_interval_seconds=60,
    )


# --- samples ------------------------------------------------------------------------------------------------


def signer() -> Issued:
    """The registry's directory-signing key and certificate."""
    return rsa_issued("fedbus registry signer")


def other_signer() -> Issued:
    """A key and certificate that the anchor does not know."""
    return rsa_issued("someone else")


def sample_shared_parameters(instance: str = "DEV") -> SharedParameters:
    """Two members with a subsystem each, two security servers, one CA (with intermediate), one TSA, a group."""
    gov = ClientId(instance, "GOV", "1001")
    com = ClientId(instance, "COM", "2002")
    top = ec_issued("Sample Root CA")
    intermediate = ec_issued_by("Sample Issuing CA", "Sample Root CA")
    return SharedParameters(
        instance=instance,
        global_settings=GlobalSettings(600, (MemberClass("GOV", "Government"), MemberClass("COM", "Commercial"))),
        sources=(ConfigurationSource("registry.example", (signer().der,), ()),),
        approved_cas=(
            ApprovedCa(
                "Sample CA",
                CaInfo(top.der, (OcspResponder("http://ocsp.example/", ec_issued("Sample OCSP").der),)),
                "fedbus.default",
                (CaInfo(intermediate.der, (OcspResponder("http://ocsp2.example/"),)),),
            ),
        ),
        approved_tsas=(ApprovedTsa("Sample TSA", "http://tsa.example/", ec_issued("Sample TSA").der),),
        members=(MemberInfo(gov, "Ministry", ("registry",)), MemberInfo(com, "Company", ("client",))),
        security_servers=(
            SecurityServerInfo(
                SecurityServerId(gov, "ss1"), "ss1.example", (bytes(range(32)),), (gov.subsystem("registry"),)
            ),
            SecurityServerInfo(
                SecurityServerId(com, "ss2"), "ss2.example", (bytes(range(1, 33)),), (com.subsystem("client"),)
            ),
        ),
        global_groups=(GlobalGroup(GlobalGroupId(instance, "owners"), "Server owners", (gov, com)),),
    )


def sample_private_parameters(instance: str = "DEV") -> PrivateParameters:
    """Private parameters whose management provider is a subsystem of the sample's first member."""
    return private_parameters(
        instance, ClientId(instance, "GOV", "1001", "management"), ec_issued("Sample registration TLS").der
    )


# --- Hypothesis strategies ----------------------------------------------------------------------------------

codes = st.text(alphabet=IDENTIFIER_CHARS, min_size=1, max_size=8).filter(lambda s: s not in (".", ".."))
"""Identifier parts in X-Road's character set."""

texts = st.text(
    alphabet=st.characters(exclude_categories=("Cs", "Cc", "Cn"), include_characters="\t\n"), min_size=1, max_size=16
).filter(lambda s: bool(s.strip()))
"""Names and descriptions: any text XML can carry unchanged, not blank."""


@functools.cache
def cert_pool() -> tuple[bytes, ...]:
    """A few certificates to fill CA, OCSP and TSA slots."""
    return tuple(ec_issued(f"Pool {i}").der for i in range(4))


@st.composite
def shared_parameters(draw: st.DrawFn, instance: str | None = None) -> SharedParameters:
    """Consistent shared parameters: members, servers hosting their subsystems, groups, CAs and TSAs."""
    inst = instance if instance is not None else draw(codes)
    pool = cert_pool()
    classes = draw(st.lists(codes, min_size=1, max_size=3, unique=True))
    member_classes = tuple(MemberClass(code, draw(st.one_of(st.just(""), texts))) for code in classes)
    member_ids = draw(
        st.lists(
            st.builds(lambda c, m: ClientId(inst, c, m), st.sampled_from(classes), codes),
            max_size=4,
            unique=True,
        )
    )
    members = tuple(
        MemberInfo(m, draw(texts), tuple(draw(st.lists(codes, max_size=3, unique=True)))) for m in member_ids
    )
    hostable = [c for m in members for c in (m.id, *m.subsystem_ids)]
    hashes_ = iter(draw(st.lists(st.binary(min_size=32, max_size=32), min_size=8, max_size=8, unique=True)))
    servers: list[SecurityServerInfo] = []
    for owner in draw(st.lists(st.sampled_from(member_ids), max_size=3)) if member_ids else []:
        server_id = SecurityServerId(owner, draw(codes))
        if any(s.id == server_id for s in servers):
            continue
        clients = tuple(draw(st.lists(st.sampled_from(hostable), max_size=3, unique=True)))
        address = draw(st.one_of(st.none(), codes.map(lambda c: f"{c}.example")))
        auth_hashes = tuple(next(hashes_) for _ in range(draw(st.integers(0, 2))))
        servers.append(SecurityServerInfo(server_id, address, auth_hashes, clients))
    group_codes = draw(st.lists(codes, max_size=2, unique=True))
    groups = tuple(
        GlobalGroup(
            GlobalGroupId(inst, code),
            draw(st.one_of(st.just(""), texts)),
            tuple(draw(st.lists(st.sampled_from(hostable), max_size=3, unique=True))) if hostable else (),
        )
        for code in group_codes
    )
    responders = st.builds(OcspResponder, codes.map(lambda c: f"http://{c}/"), st.one_of(st.none(), st.sampled_from(pool)))
    ca_infos = st.builds(CaInfo, st.sampled_from(pool), st.lists(responders, max_size=2).map(tuple))
    ca_names = draw(st.lists(texts, max_size=2, unique=True))
    cas = tuple(
        ApprovedCa(name, draw(ca_infos), draw(codes), tuple(draw(st.lists(ca_infos, max_size=1))), draw(st.booleans()))
        for name in ca_names
    )
    tsa_names = draw(st.lists(texts, max_size=2, unique=True))
    tsas = tuple(ApprovedTsa(name, f"http://{draw(codes)}/tsa", draw(st.sampled_from(pool))) for name in tsa_names)
    sources = tuple(
        ConfigurationSource(draw(codes), tuple(draw(st.lists(st.sampled_from(pool), max_size=2))), ())
        for _ in range(draw(st.integers(0, 1)))
    )
    return SharedParameters(
        instance=inst,
        global_settings=GlobalSettings(draw(st.integers(1, 10**6)), member_classes),
        sources=sources,
        approved_cas=cas,
        approved_tsas=tsas,
        members=members,
        security_servers=tuple(servers),
        global_groups=groups,
    )
