"""Tests for shared parameters (security_server/core/globalconf/sharedparams.py)."""

from __future__ import annotations

import base64
from dataclasses import replace
from pathlib import Path

import pytest
from cryptography import x509
from hypothesis import given, settings
from lxml import etree

from security_server.core.errors import InvalidConfiguration
from security_server.core.globalconf import (
    GlobalSettings,
    MemberClass,
    MemberInfo,
    SecurityServerInfo,
    SharedParameters,
    build_shared_parameters,
    parse_shared_parameters,
)
from security_server.core.identifiers import ClientId, GlobalGroupId, SecurityServerId
from security_server.schemafiles import load_schema
from tests.federation.gconf import sample_shared_parameters, shared_parameters


def schema() -> etree.XMLSchema:
    """Our shared-parameters schema."""
    return load_schema("shared-parameters.xsd")


def dev_xml(xroad_vectors: Path) -> bytes:
    """X-Road's DEV shared parameters (configuration version 3)."""
    return (xroad_vectors / "globalconf_good2_v3" / "DEV" / "shared-params.xml").read_bytes()


def subject(cert: bytes) -> str:
    """The RFC 4514 subject of a DER certificate."""
    return x509.load_der_x509_certificate(cert).subject.rfc4514_string()


def test_x_road_dev_shared_parameters_are_read(xroad_vectors: Path) -> None:
    """Members, security servers, approved CA and TSA, group and settings of X-Road's DEV file come out right."""
    sp = parse_shared_parameters(dev_xml(xroad_vectors), schema())
    assert sp.instance == "DEV"
    member, client = ClientId("DEV", "COM", "1234"), ClientId("DEV", "COM", "4321")
    assert [(m.id, m.name, m.subsystems) for m in sp.members] == [
        (member, "Test member", ("MANAGEMENT", "TestService")),
        (client, "Test client", ("TestClient",)),
    ]
    ss0, ss1 = sp.security_servers
    assert ss0.id == SecurityServerId(member, "SS0") and ss0.address == "ss0"
    assert ss0.auth_cert_hashes == (base64.b64decode("doUtNhEOGtC25LLCQJ9iOE3ZRMXj9EhDAZTcusuEUIs="),)
    assert ss0.clients == (member.subsystem("MANAGEMENT"), member.subsystem("TestService"))
    assert ss1.id == SecurityServerId(client, "SS1") and ss1.address == "ss1"
    assert ss1.auth_cert_hashes == (base64.b64decode("pE1fROGYVuLoU9x0avWSU3qRZsGuCsG8neuchZ+VR50="),)
    assert ss1.clients == (client.subsystem("TestClient"),)
    (ca,) = sp.approved_cas
    assert (ca.name, ca.authentication_only, subject(ca.top_ca.cert)) == ("Test CA", False, "CN=Test CA,O=Test")
    assert ca.certificate_profile == "ee.ria.xroad.common.certificateprofile.impl.FiVRKCertificateProfileInfoProvider"
    (ocsp,) = ca.top_ca.ocsp_responders
    assert ocsp.url == "http://testca:8888" and ocsp.cert is not None and subject(ocsp.cert) == "CN=Test OCSP,O=Test"
    assert ca.intermediates == ()
    (tsa,) = sp.approved_tsas
    assert (tsa.name, tsa.url, subject(tsa.cert)) == ("Test TSA", "http://testca:8899", "CN=Test TSA,O=Test")
    (group,) = sp.global_groups
    assert group.id == GlobalGroupId("DEV", "security-server-owners") and group.members == (member, client)
    assert sp.global_settings == GlobalSettings(3600, (MemberClass("COM", "Commercial"),))
    (source,) = sp.sources
    assert source.address == "cs"
    assert [subject(c) for c in source.internal_verification_certs] == ["CN=internalSigningKey"]
    assert [subject(c) for c in source.external_verification_certs] == ["CN=externalSigningKey"]


def test_x_road_dev_shared_parameters_survive_our_builder(xroad_vectors: Path) -> None:
    """Rebuilding X-Road's DEV file gives XML that our schema accepts and that parses back equal."""
    sp = parse_shared_parameters(dev_xml(xroad_vectors))
    assert parse_shared_parameters(build_shared_parameters(sp, schema()), schema()) == sp


def test_sample_round_trip_and_deterministic_output() -> None:
    """A sample builds to schema-valid bytes that parse back equal; input order does not change the bytes."""
    sp = sample_shared_parameters()
    built = build_shared_parameters(sp, schema())
    assert parse_shared_parameters(built, schema()) == sp
    reordered = SharedParameters(
        instance=sp.instance,
        global_settings=sp.global_settings,
        sources=sp.sources,
        approved_cas=sp.approved_cas,
        approved_tsas=sp.approved_tsas,
        members=tuple(reversed(sp.members)),
        security_servers=tuple(reversed(sp.security_servers)),
        global_groups=sp.global_groups,
    )
    assert reordered == sp
    assert build_shared_parameters(reordered, schema()) == built


@settings(max_examples=60, deadline=None)
@given(shared_parameters())
def test_generated_shared_parameters_round_trip(sp: SharedParameters) -> None:
    """Any consistent shared parameters survive build -> parse (with schema validation) unchanged."""
    assert parse_shared_parameters(build_shared_parameters(sp, schema()), schema()) == sp


def test_later_version_elements_are_tolerated(xroad_vectors: Path) -> None:
    """Optional elements of versions 5 and 6 (subsystemName, inMaintenanceMode) are read past."""
    xml = dev_xml(xroad_vectors)
    xml = xml.replace(
        b"<subsystemCode>MANAGEMENT</subsystemCode>",
        b"<subsystemCode>MANAGEMENT</subsystemCode><subsystemName>Management</subsystemName>",
    )
    maintenance = b"<inMaintenanceMode><message>m</message></inMaintenanceMode>"
    xml = xml.replace(b"<client>id4</client>", b"<client>id4</client>" + maintenance)
    assert parse_shared_parameters(xml) == parse_shared_parameters(dev_xml(xroad_vectors))


@pytest.mark.parametrize(
    ("old", "new"),
    [
        pytest.param(b'<member id="id3">', b'<member id="id0">', id="duplicate-xml-id"),
        pytest.param(b"<owner>id3</owner>", b"<owner>id9</owner>", id="dangling-owner"),
        pytest.param(b"<owner>id3</owner>", b"<owner>id4</owner>", id="owner-is-a-subsystem"),
        pytest.param(b"<client>id4</client>", b"<client>nope</client>", id="dangling-client"),
        pytest.param(b"<client>id4</client>", b"<client>id4</client><client>id4</client>", id="duplicate-client"),
        pytest.param(b"<memberCode>4321</memberCode>", b"<memberCode>1234</memberCode>", id="duplicate-member"),
        pytest.param(b"<memberCode>4321</memberCode>", b"<memberCode>43/21</memberCode>", id="invalid-member-code"),
        pytest.param(
            b"<subsystemCode>TestService</subsystemCode>",
            b"<subsystemCode>MANAGEMENT</subsystemCode>",
            id="duplicate-subsystem",
        ),
        pytest.param(b"<serverCode>SS1</serverCode>", b"<serverCode>SS 1</serverCode>", id="invalid-server-code"),
        pytest.param(
            b"pE1fROGYVuLoU9x0avWSU3qRZsGuCsG8neuchZ+VR50=",
            b"doUtNhEOGtC25LLCQJ9iOE3ZRMXj9EhDAZTcusuEUIs=",
            id="hash-on-two-servers",
        ),
        pytest.param(b"pE1fROGYVuLoU9x0avWSU3qRZsGuCsG8neuchZ+VR50=", b"pE1fROGY", id="hash-wrong-length"),
        pytest.param(b"pE1fROGYVuLoU9x0avWSU3qRZsGuCsG8neuchZ+VR50=", b"not base64!", id="hash-not-base64"),
        pytest.param(
            b"<description>Commercial</description>\n        </memberClass>\n        <memberCode>4321",
            b"<description>Other</description>\n        </memberClass>\n        <memberCode>4321",
            id="member-class-description-differs",
        ),
        pytest.param(b"<ocspFreshnessSeconds>3600", b"<ocspFreshnessSeconds>0", id="zero-freshness"),
        pytest.param(b"<ocspFreshnessSeconds>3600", b"<ocspFreshnessSeconds>soon", id="freshness-not-a-number"),
        pytest.param(b"<authenticationOnly>false", b"<authenticationOnly>maybe", id="bad-boolean"),
        pytest.param(b"<url>http://testca:8899</url>", b"", id="tsa-without-url"),
        pytest.param(b"<name>Test client</name>", b"<name>Test client</name><name>again</name>", id="unexpected-element"),
        pytest.param(b"<name>Test client</name>", b"<name>Test client</name>stray", id="stray-text"),
        pytest.param(b"<ns3:conf", b'<!DOCTYPE x [<!ENTITY e "e">]><ns3:conf', id="doctype"),
        pytest.param(b"</ns3:conf>", b"", id="not-well-formed"),
        pytest.param(b"<instanceIdentifier>DEV", b"<instanceIdentifier>DE V", id="invalid-instance"),
        pytest.param(b"<ns2:memberCode>4321</ns2:memberCode>", b"", id="group-member-without-code"),
    ],
)
def test_bad_shared_parameters_are_refused(xroad_vectors: Path, old: bytes, new: bytes) -> None:
    """Each inconsistent, duplicated, dangling or malformed variant of the DEV file raises InvalidConfiguration."""
    xml = dev_xml(xroad_vectors)
    assert old in xml
    with pytest.raises(InvalidConfiguration):
        parse_shared_parameters(xml.replace(old, new, 1))


def test_certificate_that_is_not_a_certificate_is_refused(xroad_vectors: Path) -> None:
    """A CA cert element holding base64 of something else is refused."""
    root = etree.fromstring(dev_xml(xroad_vectors))
    cert = root.find("approvedCA/topCA/cert")
    assert cert is not None
    cert.text = base64.b64encode(b"not a certificate").decode()
    with pytest.raises(InvalidConfiguration):
        parse_shared_parameters(etree.tostring(root))


def test_wrong_root_element_is_refused() -> None:
    """A document whose root is not {xroad.xsd}conf is refused."""
    with pytest.raises(InvalidConfiguration):
        parse_shared_parameters(b'<conf xmlns="urn:other"><instanceIdentifier>EE</instanceIdentifier></conf>')


def test_schema_validation_failure_is_reported_as_invalid_configuration(xroad_vectors: Path) -> None:
    """With the schema given, a document it rejects raises InvalidConfiguration naming the violation."""
    xml = dev_xml(xroad_vectors).replace(b"<address>ss1</address>", b"<address>ss1</address><address>x</address>")
    with pytest.raises(InvalidConfiguration) as caught:
        parse_shared_parameters(xml, schema())
    assert "line" in caught.value.reason


def test_inconsistent_values_cannot_be_constructed() -> None:
    """Unknown owners, unknown clients, unknown member classes and foreign members are refused on construction."""
    sp = sample_shared_parameters()
    member = sp.members[0].id
    stranger = ClientId("DEV", "GOV", "9999")
    bad_servers = [
        SecurityServerInfo(SecurityServerId(stranger, "x")),
        SecurityServerInfo(SecurityServerId(member, "x"), clients=(stranger,)),
        SecurityServerInfo(SecurityServerId(member, "x"), clients=(member.subsystem("nope"),)),
    ]
    for server in bad_servers:
        with pytest.raises(InvalidConfiguration):
            replace(sp, security_servers=(server,))
    with pytest.raises(InvalidConfiguration):
        first, second = sp.security_servers
        replace(sp, security_servers=(first, replace(second, auth_cert_hashes=first.auth_cert_hashes)))
    for members in (
        (MemberInfo(ClientId("DEV", "EDU", "1"), "School"),),
        (MemberInfo(ClientId("EE", "GOV", "1"), "Foreign"),),
        (sp.members[0], sp.members[0]),
    ):
        with pytest.raises(InvalidConfiguration):
            replace(sp, members=members, security_servers=())
    with pytest.raises(InvalidConfiguration):
        MemberInfo(ClientId("DEV", "GOV", "1", "sub"), "a subsystem is not a member")
    with pytest.raises(InvalidConfiguration):
        MemberInfo(ClientId("DEV", "GOV", "1"), "bad\x00name")
    with pytest.raises(InvalidConfiguration):
        GlobalSettings(3600, (MemberClass("GOV", "a"), MemberClass("GOV", "b")))


def test_comments_and_processing_instructions_are_ignored(xroad_vectors: Path) -> None:
    """Comments and processing instructions between or inside elements carry no data and are skipped."""
    xml = dev_xml(xroad_vectors)
    commented = xml.replace(b"<member id=", b"<!-- a comment --><?pi data?><member id=").replace(
        b"<name>Test member</name>", b"<name>Test <!-- c -->member</name>"
    )
    assert parse_shared_parameters(commented) == parse_shared_parameters(xml)
