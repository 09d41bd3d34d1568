"""Tests for the GlobalConf value and its assembly (security_server/core/globalconf/globalconf.py)."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography import x509

from security_server.core.errors import ConfigurationInstanceMismatch, GlobalConfOutdated, InvalidConfiguration
from security_server.core.globalconf import (
    PRIVATE_PARAMETERS,
    SHARED_PARAMETERS,
    AnchorSource,
    ConfigurationAnchor,
    DirectoryEntry,
    GlobalConf,
    SecurityServerInfo,
    SharedParameters,
    VerifiedDirectory,
    assemble_global_conf,
    build_private_parameters,
    build_shared_parameters,
    build_signed_directory,
    parse_shared_parameters,
    parse_signed_directory,
    verify_signed_directory,
)
from security_server.core.identifiers import ClientId, GlobalGroupId, SecurityServerId
from security_server.schemafiles import load_schema
from tests.federation.gconf import NOW, sample_private_parameters, sample_shared_parameters, signer
from tests.federation.pki import ec_issued, ec_issued_by

EXPIRES = NOW + timedelta(minutes=10)
MEMBER = ClientId("DEV", "COM", "1234")
CLIENT = ClientId("DEV", "COM", "4321")
SS0 = SecurityServerId(MEMBER, "SS0")
SS1 = SecurityServerId(CLIENT, "SS1")


def dev_conf(xroad_vectors: Path) -> GlobalConf:
    """X-Road's DEV shared parameters with sample private parameters, expiring ten minutes after NOW."""
    xml = (xroad_vectors / "globalconf_good2_v3" / "DEV" / "shared-params.xml").read_bytes()
    return GlobalConf(parse_shared_parameters(xml), sample_private_parameters("DEV"), EXPIRES, 3)


def test_security_servers_of_a_client(xroad_vectors: Path) -> None:
    """A subsystem is hosted by the servers listing it; a member by the servers it owns (as X-Road counts)."""
    conf = dev_conf(xroad_vectors)
    assert [s.id for s in conf.security_servers_of(MEMBER.subsystem("TestService"))] == [SS0]
    assert [s.id for s in conf.security_servers_of(CLIENT.subsystem("TestClient"))] == [SS1]
    assert [s.id for s in conf.security_servers_of(MEMBER)] == [SS0]
    assert conf.security_servers_of(ClientId("DEV", "COM", "9999")) == ()
    assert conf.is_hosted_by(MEMBER.subsystem("MANAGEMENT"), SS0)
    assert not conf.is_hosted_by(MEMBER.subsystem("MANAGEMENT"), SS1)


def test_server_lookups(xroad_vectors: Path) -> None:
    """Addresses, auth-cert hashes and the reverse lookup from a hash to its server."""
    conf = dev_conf(xroad_vectors)
    assert conf.server_address(SS0) == "ss0" and conf.server_address(SS1) == "ss1"
    assert conf.server_address(SecurityServerId(MEMBER, "nope")) is None
    (digest,) = conf.auth_cert_hashes(SS1)
    assert digest.hex().startswith("a44d5f44")
    found = conf.server_for_auth_cert_hash(digest)
    assert found is not None and found.id == SS1
    assert conf.server_for_auth_cert_hash(bytes(32)) is None
    assert conf.auth_cert_hashes(SecurityServerId(MEMBER, "nope")) == ()
    assert [s.id for s in conf.security_servers()] == [SS0, SS1]
    assert conf.security_server(SS0) is not None


def test_server_for_auth_cert_hashes_the_certificate() -> None:
    """server_for_auth_cert finds the server that registered the SHA-256 of the certificate's DER."""
    auth = ec_issued("ss1 auth")
    sp = sample_shared_parameters()
    first = sp.security_servers[0]
    registered = SecurityServerInfo(first.id, first.address, (hashlib.sha256(auth.der).digest(),), first.clients)
    shared = SharedParameters(
        instance="DEV",
        global_settings=sp.global_settings,
        members=sp.members,
        security_servers=(registered, sp.security_servers[1]),
    )
    conf = GlobalConf(shared, sample_private_parameters(), EXPIRES)
    found = conf.server_for_auth_cert(auth.der)
    assert found is not None and found.id == first.id
    assert conf.server_for_auth_cert(ec_issued("stranger").der) is None


def test_members_and_groups(xroad_vectors: Path) -> None:
    """Membership of members, subsystems and global groups; member names."""
    conf = dev_conf(xroad_vectors)
    assert [m.id for m in conf.members()] == [MEMBER, CLIENT]
    assert conf.has_member(MEMBER) and conf.has_member(MEMBER.subsystem("TestService"))
    assert not conf.has_member(MEMBER.subsystem("TestClient")) and not conf.has_member(ClientId("DEV", "GOV", "1"))
    assert conf.member_name(CLIENT.subsystem("TestClient")) == "Test client"
    assert conf.member_name(ClientId("DEV", "GOV", "1")) is None
    member = conf.member(MEMBER.subsystem("TestService"))
    assert member is not None and member.id == MEMBER
    owners = GlobalGroupId("DEV", "security-server-owners")
    assert conf.is_member_of_group(CLIENT, owners)
    assert not conf.is_member_of_group(CLIENT.subsystem("TestClient"), owners)
    assert not conf.is_member_of_group(CLIENT, GlobalGroupId("DEV", "nope"))
    group = conf.global_group(owners)
    assert group is not None and group.description == "Security server owners"


def test_trust_services(xroad_vectors: Path) -> None:
    """Approved roots, the CA for an issuer, its OCSP responders, the TSAs and the settings."""
    conf = dev_conf(xroad_vectors)
    (root,) = conf.approved_roots()
    root_cert = x509.load_der_x509_certificate(root)
    tsa = conf.approved_tsas()[0]
    tsa_issuer = x509.load_der_x509_certificate(tsa.cert).issuer
    ca = conf.approved_ca_for(tsa_issuer)
    assert ca is not None and ca.name == "Test CA"
    assert conf.ca_cert_for(tsa_issuer) == root and root_cert.subject == tsa_issuer
    assert [r.url for r in conf.ocsp_responders(tsa_issuer)] == ["http://testca:8888"]
    assert len(conf.ocsp_responder_certs()) == 1
    unknown = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "Unknown CA")])
    assert conf.approved_ca_for(unknown) is None and conf.ocsp_responders(unknown) == ()
    assert conf.ca_cert_for(unknown) is None
    assert (tsa.name, tsa.url) == ("Test TSA", "http://testca:8899")
    assert conf.ocsp_freshness_seconds == 3600 and conf.timestamping_interval_seconds == 60
    assert conf.instance == "DEV" and conf.intermediate_cas() == ()
    assert conf.management_service.management_request_service_provider_id.subsystem_code == "management"


def test_intermediate_ca_is_found_by_its_subject() -> None:
    """A certificate issued by an approved intermediate CA finds that CA and the intermediate's responders."""
    conf = GlobalConf(sample_shared_parameters(), sample_private_parameters(), EXPIRES)
    leaf_issuer = ec_issued_by("Sample Issuing CA", "Sample Root CA").cert.subject
    ca = conf.approved_ca_for(leaf_issuer)
    assert ca is not None and ca.name == "Sample CA"
    assert [r.url for r in conf.ocsp_responders(leaf_issuer)] == ["http://ocsp2.example/"]
    assert conf.intermediate_cas() == (ec_issued_by("Sample Issuing CA", "Sample Root CA").der,)


def test_expiry(xroad_vectors: Path) -> None:
    """The configuration is valid until expires_at, then check_valid raises GlobalConfOutdated."""
    conf = dev_conf(xroad_vectors)
    assert not conf.is_expired(EXPIRES - timedelta(seconds=1))
    conf.check_valid(EXPIRES - timedelta(seconds=1))
    assert conf.is_expired(EXPIRES)
    with pytest.raises(GlobalConfOutdated) as caught:
        conf.check_valid(EXPIRES + timedelta(seconds=1))
    assert caught.value.fault_code == "server.global_conf_outdated"


def test_shared_and_private_of_different_instances_are_refused() -> None:
    """GlobalConf refuses to join shared and private parameters of two instances."""
    with pytest.raises(ConfigurationInstanceMismatch):
        GlobalConf(sample_shared_parameters("DEV"), sample_private_parameters("EE"), EXPIRES)


def verified_directory(entries: list[DirectoryEntry]) -> VerifiedDirectory:
    """A directory of ``entries`` signed by the registry signer and verified against its anchor."""
    content_type, body = build_signed_directory(entries, EXPIRES, 3, signer().key, signer().der)
    anchor = ConfigurationAnchor("DEV", (AnchorSource("http://registry/conf", (signer().der,)),))
    return verify_signed_directory(parse_signed_directory(content_type, body), anchor, NOW)


def test_assembly_refuses_missing_unlisted_and_mislabelled_files() -> None:
    """A missing file, a file the directory does not list, or parameters naming another instance are refused."""
    private = build_private_parameters(sample_private_parameters(), load_schema("private-parameters.xsd"))
    shared = build_shared_parameters(sample_shared_parameters(), load_schema("shared-parameters.xsd"))
    foreign = build_shared_parameters(sample_shared_parameters("EE"), load_schema("shared-parameters.xsd"))
    entries = [
        DirectoryEntry.for_content(PRIVATE_PARAMETERS, "DEV", "/p.xml", private),
        DirectoryEntry.for_content(SHARED_PARAMETERS, "DEV", "/s.xml", shared),
    ]
    verified = verified_directory(entries)
    assert assemble_global_conf(verified, {"/p.xml": private, "/s.xml": shared}).shared == sample_shared_parameters()
    with pytest.raises(InvalidConfiguration):
        assemble_global_conf(verified, {"/p.xml": private})
    with pytest.raises(InvalidConfiguration):
        assemble_global_conf(verified, {"/p.xml": private, "/s.xml": shared, "/extra.xml": b"x"})
    mislabelled = [entries[0], DirectoryEntry.for_content(SHARED_PARAMETERS, "DEV", "/s.xml", foreign)]
    with pytest.raises(ConfigurationInstanceMismatch):
        assemble_global_conf(verified_directory(mislabelled), {"/p.xml": private, "/s.xml": foreign})
    only_shared = [entries[1]]
    with pytest.raises(InvalidConfiguration):
        assemble_global_conf(verified_directory(only_shared), {"/s.xml": shared})
