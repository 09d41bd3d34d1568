"""X-Road's certificate profiles and the profile registry: identities read from each profile's certificates, the
subject fields of its requests, and the subjects each profile refuses."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID
from hypothesis import given, settings
from hypothesis import strategies as st

from security_server.core import certprofile
from security_server.core.cert_identity import AuthNames
from security_server.core.certprofile import (
    FEDBUS,
    auth_names_of_cert,
    auth_subject,
    is_known_profile,
    member_from_signing_cert_as,
    names_owner,
    profile_named,
    request_subject,
    signing_subject,
)
from security_server.core.errors import CertValidation
from security_server.core.identifiers import ClientId, SecurityServerId
from security_server.core.subject_fields import field_values
from tests.federation.pki import Issued, make_ca
from tests.federation.profile_certs import (
    EE,
    EJBCA,
    FI,
    UNKNOWN,
    cert_of,
    dn,
    ee_sign,
    ee_sign_org_id,
    ejbca_sign,
    fi_sign,
    profile_subjects,
)

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
MEMBER = ClientId("EE", "GOV", "70000310")
SERVER = SecurityServerId(MEMBER, "ss1")


@pytest.fixture(scope="module")
def ca() -> Issued:
    """A CA for the certificates in this module."""
    return make_ca("Profiles CA", NOW)


# --- the registry ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "short"), [(EJBCA, "ejbca"), (EE, "ee"), (FI, "fi"), ("fedbus", "fedbus"),
                                             ("ejbca", "ejbca"), ("ee", "ee"), ("fi", "fi")])
def test_xroad_class_names_and_short_names_name_a_profile(name: str, short: str) -> None:
    """An approved CA may name its profile by X-Road's Java class or by fedbus's short name."""
    assert is_known_profile(name)
    assert profile_named(name).name == short


@pytest.mark.parametrize("name", [UNKNOWN, "fedbus.default", "", "EjbcaCertificateProfileInfoProvider"])
def test_an_unknown_profile_is_refused(name: str) -> None:
    """A profile fedbus does not read is refused by name, and a certificate of its CA has no readable identity."""
    assert not is_known_profile(name)
    with pytest.raises(CertValidation):
        profile_named(name)


def test_a_certificate_of_a_ca_with_an_unknown_profile_has_no_identity(ca: Issued) -> None:
    """Reading a signing certificate under an unknown profile fails with cert_validation, not a guess."""
    cert = cert_of(ca, signing_subject(MEMBER, "Member"), NOW)
    with pytest.raises(CertValidation, match="does not know"):
        member_from_signing_cert_as(cert, UNKNOWN, "EE")


def test_fedbus_profile_reads_as_before(ca: Issued) -> None:
    """Under the name ``fedbus`` the registry reads exactly what the original functions read."""
    sign = cert_of(ca, signing_subject(MEMBER, "Member"), NOW)
    auth = cert_of(ca, auth_subject(SERVER, "Member"), NOW, "auth")
    assert member_from_signing_cert_as(sign, "fedbus", "XX") == certprofile.member_from_signing_cert(sign) == MEMBER
    assert auth_names_of_cert(auth, "fedbus").server() == certprofile.server_from_auth_cert(auth) == SERVER


def test_fedbus_fields_build_the_same_subject_as_before() -> None:
    """A request built from the fedbus profile's fields is byte-for-byte the subject signing_subject/auth_subject
    make."""
    sign_fields = FEDBUS.signing_fields(MEMBER, "Member", SERVER)
    auth_fields = FEDBUS.auth_fields(SERVER, "Member")
    assert request_subject(sign_fields, {"O": "Member"}).public_bytes() == signing_subject(MEMBER, "Member").public_bytes()
    assert request_subject(auth_fields, {"O": "Other"}).public_bytes() == auth_subject(SERVER, "Other").public_bytes()


# --- EJBCA ------------------------------------------------------------------------------------------------------


def test_ejbca_signing_certificate_names_its_member(ca: Issued) -> None:
    """EJBCA: C, O and CN are the instance, member class and member code."""
    cert = cert_of(ca, ejbca_sign(MEMBER), NOW)
    assert member_from_signing_cert_as(cert, EJBCA, "FI") == MEMBER


def test_ejbca_auth_certificate_carries_instance_and_server_code(ca: Issued) -> None:
    """EJBCA's auth subject carries the instance and the server code only; those are compared."""
    cert = cert_of(ca, dn((NameOID.COUNTRY_NAME, "EE"), (NameOID.COMMON_NAME, "ss1")), NOW, "auth")
    names = auth_names_of_cert(cert, EJBCA)
    assert names == AuthNames(instance="EE", server_code="ss1")
    assert names.matches(SERVER) and names.server() is None
    assert not names.matches(SecurityServerId(MEMBER, "ss2"))


def test_ejbca_subject_without_its_country_is_refused(ca: Issued) -> None:
    """A signing subject lacking the profile's C names no member."""
    cert = cert_of(ca, dn((NameOID.ORGANIZATION_NAME, "GOV"), (NameOID.COMMON_NAME, "70000310")), NOW)
    with pytest.raises(CertValidation, match="ejbca"):
        member_from_signing_cert_as(cert, EJBCA, "EE")


# --- the Estonian profile -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("code", "member_class"), [("70000310", "GOV"), ("10000001", "COM"), ("80000002", "NGO"),
                                                     ("90000003", "NGO"), ("60000004", "COM")])
def test_ee_registry_code_gives_member_class(ca: Issued, code: str, member_class: str) -> None:
    """EE: the eight-digit serialNumber is the member code, its first digit the member class; the instance is the
    expected member's."""
    cert = cert_of(ca, ee_sign(code), NOW)
    assert member_from_signing_cert_as(cert, EE, "EE") == ClientId("EE", member_class, code)
    assert member_from_signing_cert_as(cert, EE, "ee-test") == ClientId("ee-test", member_class, code)


@pytest.mark.parametrize(("org_id", "expected"), [("NTREE-10000001", ("COM", "10000001")),
                                                   ("GO:EE-70000310", ("GOV", "70000310")),
                                                   ("NP:EE-80000002", ("NGO", "80000002")),
                                                   ("NTRLV-40003000", ("NEE", "NTRLV-40003000"))])
def test_ee_organization_identifier_wins_over_serial_number(ca: Issued, org_id: str, expected: tuple[str, str]) -> None:
    """EE: an eIDAS organizationIdentifier names the member by its prefix; other prefixes are NEE members."""
    cert = cert_of(ca, ee_sign_org_id(org_id), NOW)
    assert member_from_signing_cert_as(cert, EE, "EE") == ClientId("EE", *expected)


@pytest.mark.parametrize("serial", ["7000031", "700003100", "7000031A", "00000310", "7000-310"])
def test_ee_malformed_serial_number_is_refused(ca: Issued, serial: str) -> None:
    """EE: a serialNumber that is not eight ASCII digits starting 1-9 names no member."""
    cert = cert_of(ca, ee_sign(serial), NOW)
    with pytest.raises(CertValidation):
        member_from_signing_cert_as(cert, EE, "EE")


def test_ee_subject_without_serial_number_is_refused(ca: Issued) -> None:
    """EE: neither organizationIdentifier nor serialNumber: no member."""
    cert = cert_of(ca, dn((NameOID.COUNTRY_NAME, "EE"), (NameOID.COMMON_NAME, "Amet")), NOW)
    with pytest.raises(CertValidation, match="ee profile"):
        member_from_signing_cert_as(cert, EE, "EE")


def test_ee_auth_certificate_carries_the_owner(ca: Issued) -> None:
    """EE: an auth certificate names its owner's class and code, not the server code."""
    cert = cert_of(ca, ee_sign("70000310"), NOW, "auth")
    names = auth_names_of_cert(cert, EE)
    assert names.matches(SERVER) and names.matches(SecurityServerId(MEMBER, "any"))
    assert not names.matches(SecurityServerId(ClientId("EE", "GOV", "70000311"), "ss1"))


# --- the Finnish profile --------------------------------------------------------------------------------------


def test_fi_signing_certificate_names_its_member(ca: Issued) -> None:
    """FI: serialNumber instance/serverCode/memberClass and CN the member code (X-Road's decoder test)."""
    cert = cert_of(ca, fi_sign("FI-TEST", "serverCode", "PUB", "1234567-8"), NOW)
    assert member_from_signing_cert_as(cert, FI, "EE") == ClientId("FI-TEST", "PUB", "1234567-8")


def test_fi_older_layouts_are_read(ca: Issued) -> None:
    """FI: the legacy C=FI/O=instance/OU=class/CN=code and the oldest C/O/CN layouts still name the member."""
    legacy = dn((NameOID.COUNTRY_NAME, "FI"), (NameOID.ORGANIZATION_NAME, "FI-TEST"),
                (NameOID.ORGANIZATIONAL_UNIT_NAME, "PUB"), (NameOID.COMMON_NAME, "1234567-8"))
    oldest = dn((NameOID.COUNTRY_NAME, "FI"), (NameOID.ORGANIZATION_NAME, "GOV"), (NameOID.COMMON_NAME, "0245437-2"))
    assert member_from_signing_cert_as(cert_of(ca, legacy, NOW), FI, "x") == ClientId("FI-TEST", "PUB", "1234567-8")
    assert member_from_signing_cert_as(cert_of(ca, oldest, NOW), FI, "x") == ClientId("FI", "GOV", "0245437-2")


@pytest.mark.parametrize("subject", [
    fi_sign("FI-TEST", "serverCode", "PUB", "1234567-8", country="XX"),
    dn((NameOID.COUNTRY_NAME, "FI"), (NameOID.ORGANIZATION_NAME, "ACME"), (NameOID.SERIAL_NUMBER, "1/2/3/4"),
       (NameOID.COMMON_NAME, "1234567-8")),
    dn((NameOID.COUNTRY_NAME, "FI"), (NameOID.ORGANIZATION_NAME, "ACME"), (NameOID.SERIAL_NUMBER, "///"),
       (NameOID.COMMON_NAME, "1234567-8")),
    dn((NameOID.COUNTRY_NAME, "FI"), (NameOID.SERIAL_NUMBER, "FI-TEST/serverCode/PUB"),
       (NameOID.COMMON_NAME, "1234567-8")),
], ids=["wrong-country", "four-parts", "empty-parts", "no-organization"])
def test_fi_subjects_x_road_refuses_are_refused(ca: Issued, subject: x509.Name) -> None:
    """FI: the subjects X-Road's FISubjectClientIdDecoderTest expects to fail name no member here either."""
    with pytest.raises(CertValidation):
        member_from_signing_cert_as(cert_of(ca, subject, NOW), FI, "FI")


def test_fi_mismatching_serial_number_names_another_member(ca: Issued) -> None:
    """FI: a serialNumber of another instance or class reads as another member, which no check takes for ours."""
    cert = cert_of(ca, fi_sign("EE", "ss1", "COM", "70000310"), NOW)
    assert member_from_signing_cert_as(cert, FI, "EE") != MEMBER
    assert not names_owner(cert.subject, MEMBER)


def test_fi_auth_certificate_carries_instance_server_code_and_class(ca: Issued) -> None:
    """FI: an auth certificate's serialNumber gives the instance, server code and member class; CN is a DNS name."""
    subject = dn((NameOID.COUNTRY_NAME, "FI"), (NameOID.ORGANIZATION_NAME, "ACME"),
                 (NameOID.SERIAL_NUMBER, "EE/ss1/GOV"), (NameOID.COMMON_NAME, "ss1.example.org"))
    names = auth_names_of_cert(cert_of(ca, subject, NOW, "auth"), FI)
    assert names.matches(SERVER)
    assert not names.matches(SecurityServerId(MEMBER, "ss2"))
    assert not names.matches(SecurityServerId(ClientId("EE", "COM", "70000310"), "ss1"))


def test_a_signing_certificate_is_not_read_as_an_auth_certificate(ca: Issued) -> None:
    """Every profile checks the key usage first: a signing certificate carries no server."""
    cert = cert_of(ca, fi_sign("EE", "ss1", "GOV", "70000310"), NOW, "sign")
    with pytest.raises(CertValidation, match="not an authentication"):
        auth_names_of_cert(cert, FI)
    with pytest.raises(CertValidation, match="not a signing"):
        member_from_signing_cert_as(cert_of(ca, ejbca_sign(MEMBER), NOW, "auth"), EJBCA, "EE")


# --- request subjects -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("profile", ["fedbus", EJBCA, EE, FI])
def test_a_request_built_from_a_profiles_fields_names_its_owner(ca: Issued, profile: str) -> None:
    """For each profile, the request subject its fields make reads back as the member (signing) and matches the
    server (authentication) it was made for."""
    sign = cert_of(ca, profile_subjects(profile, MEMBER, "Member"), NOW)
    auth = cert_of(ca, profile_subjects(profile, SERVER, "Member"), NOW, "auth")
    assert member_from_signing_cert_as(sign, profile, "EE") == MEMBER
    assert auth_names_of_cert(auth, profile).matches(SERVER)
    assert names_owner(sign.subject, MEMBER) and names_owner(auth.subject, SERVER)


def test_fields_follow_x_roads_descriptions() -> None:
    """The FI signing fields are X-Road's: C=FI and serialNumber read-only from the ids, O editable and required."""
    fields = {f.id: f for f in profile_named(FI).signing_fields(MEMBER, "Member", SERVER)}
    assert list(fields) == ["C", "O", "serialNumber", "CN", "subjectAltName"]
    assert (fields["C"].default_value, fields["C"].read_only) == ("FI", True)
    assert fields["serialNumber"].default_value == "EE/ss1/GOV"
    assert fields["O"].required and not fields["O"].read_only
    assert fields["CN"].to_json()["label_key"] == "MEMBER_CODE"


def test_read_only_fields_keep_their_defaults() -> None:
    """A value given for a read-only field is replaced by its default (X-Road's DnFieldHelper)."""
    fields = profile_named(EJBCA).signing_fields(MEMBER, "Member", SERVER)
    assert field_values(fields, {"CN": "somebody-else"})["CN"] == "70000310"


@pytest.mark.parametrize(("values", "problem"), [({}, "required"), ({"O": "  "}, "required"),
                                                 ({"O": "ACME", "L": "Helsinki"}, "does not have"),
                                                 ({"O": "ACME", "subjectAltName": "ss1.example.org"}, "subjectAltName"),
                                                 ({"O": "A\x00B"}, "not a valid")])
def test_bad_field_values_are_refused(values: dict[str, str], problem: str) -> None:
    """A required editable field left blank, a field the profile lacks, a subjectAltName (fedbus's requests carry
    no extensions) or a control character is refused."""
    fields = profile_named(FI).signing_fields(MEMBER, "Member", SERVER)
    with pytest.raises(CertValidation) as caught:
        request_subject(fields, values)
    assert problem in (caught.value.message + str(caught.value.reason))


def test_ejbca_request_for_a_long_instance_is_refused() -> None:
    """EJBCA writes the instance in C, which X.509 keeps to two letters: a request for ``DEV`` is refused."""
    member = ClientId("DEV", "GOV", "1")
    with pytest.raises(CertValidation, match="C"):
        request_subject(profile_named(EJBCA).signing_fields(member, "M", SecurityServerId(member, "ss1")), {})


# --- round trips ------------------------------------------------------------------------------------------------

PART = st.text(alphabet="ABCXYZabcxyz0189'()+,-.=?", min_size=1, max_size=16).filter(lambda p: p not in (".", ".."))
MEMBERS = st.builds(ClientId, PART, PART, PART)


@given(member=MEMBERS, server_code=PART)
@settings(max_examples=60, deadline=None)
def test_fi_and_fedbus_requests_round_trip(member: ClientId, server_code: str) -> None:
    """For any member and server, the FI and fedbus request subjects read back as that member and match that
    server."""
    server = SecurityServerId(member, server_code)
    for profile in (profile_named(FI), FEDBUS):
        sign = request_subject(profile.signing_fields(member, "Member", server), {"O": "Member"})
        auth_values = {"O": "Member", "CN": "ss.example.org"} if profile is not FEDBUS else {"O": "Member"}
        auth = request_subject(profile.auth_fields(server, "Member"), auth_values)
        assert profile.member_from_signing_subject(sign, "unused") == member
        assert profile.auth_names(auth).matches(server)


@given(instance=st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=2, max_size=2), member_class=PART, code=PART,
       server_code=PART)
@settings(max_examples=60, deadline=None)
def test_ejbca_requests_round_trip(instance: str, member_class: str, code: str, server_code: str) -> None:
    """For any two-letter instance, EJBCA's request subjects read back as the member and match the server."""
    member = ClientId(instance, member_class, code)
    server = SecurityServerId(member, server_code)
    profile = profile_named(EJBCA)
    assert profile.member_from_signing_subject(
        request_subject(profile.signing_fields(member, "M", server), {}), "unused") == member
    assert profile.auth_names(request_subject(profile.auth_fields(server, "M"), {})).matches(server)


@given(first=st.sampled_from("123456789"), rest=st.text(alphabet="0123456789", min_size=7, max_size=7))
@settings(max_examples=40, deadline=None)
def test_ee_requests_round_trip(first: str, rest: str) -> None:
    """For any eight-digit registry code, the EE request names the member whose class its first digit gives."""
    member_class = {"7": "GOV", "8": "NGO", "9": "NGO"}.get(first, "COM")
    member = ClientId("EE", member_class, first + rest)
    server = SecurityServerId(member, "ss1")
    profile = profile_named(EE)
    sign = request_subject(profile.signing_fields(member, "Amet", server), {})
    assert profile.member_from_signing_subject(sign, "EE") == member
    assert profile.auth_names(request_subject(profile.auth_fields(server, "Amet"), {})).matches(server)
