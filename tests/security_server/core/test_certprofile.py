"""The certificate profile: member and server identities written into and read back from certificate subjects."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID
from hypothesis import given, settings
from hypothesis import strategies as st

from security_server.core.certprofile import (
    auth_subject,
    check_auth_csr_subject,
    check_signing_csr_subject,
    member_from_signing_cert,
    member_from_signing_subject,
    server_from_auth_cert,
    server_from_auth_subject,
    signing_subject,
)
from security_server.core.errors import CertValidation
from security_server.core.identifiers import ClientId, SecurityServerId
from tests.federation.pki import Issued, make_ca, make_cert, make_csr

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
MEMBER = ClientId("EE", "GOV", "70000310")
SERVER = SecurityServerId(MEMBER, "ss1")

PART = st.text(alphabet="ABCXYZabcxyz0189'()+,-.=?", min_size=1, max_size=20).filter(lambda p: p not in (".", ".."))


@pytest.fixture(scope="module")
def root() -> Issued:
    """A CA for the certificates in this module."""
    return make_ca("Profile CA", NOW)


def attrs(*pairs: tuple[x509.ObjectIdentifier, str]) -> x509.Name:
    """A subject from (oid, value) pairs, in order."""
    return x509.Name([x509.NameAttribute(oid, value) for oid, value in pairs])


def test_signing_subject_holds_the_profile_fields() -> None:
    """serialNumber is instance/class/code, CN the member code, O the member name."""
    subject = signing_subject(MEMBER, "Ministry of Tests")
    assert subject.get_attributes_for_oid(NameOID.SERIAL_NUMBER)[0].value == "EE/GOV/70000310"
    assert subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "70000310"
    assert subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "Ministry of Tests"


def test_auth_subject_names_the_server_code() -> None:
    """An auth subject carries the owner in serialNumber and the server code in CN."""
    subject = auth_subject(SERVER, "Ministry of Tests")
    assert subject.get_attributes_for_oid(NameOID.SERIAL_NUMBER)[0].value == "EE/GOV/70000310"
    assert subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "ss1"


def test_member_is_read_from_a_signing_certificate(root: Issued) -> None:
    """A signing certificate under the profile yields its member."""
    cert = make_cert(root, signing_subject(MEMBER, "Gov"), NOW, kind="sign").cert
    assert member_from_signing_cert(cert) == MEMBER


def test_server_is_read_from_an_auth_certificate(root: Issued) -> None:
    """An authentication certificate under the profile yields its security server."""
    cert = make_cert(root, auth_subject(SERVER, "Gov"), NOW, kind="auth").cert
    assert server_from_auth_cert(cert) == SERVER


def test_auth_certificate_is_not_a_signing_certificate(root: Issued) -> None:
    """A certificate without nonRepudiation is refused as a signing certificate, whatever its subject."""
    cert = make_cert(root, signing_subject(MEMBER, "Gov"), NOW, kind="auth").cert
    with pytest.raises(CertValidation, match="not a signing certificate"):
        member_from_signing_cert(cert)


def test_signing_certificate_is_not_an_auth_certificate(root: Issued) -> None:
    """A nonRepudiation certificate is refused as an authentication certificate."""
    cert = make_cert(root, auth_subject(SERVER, "Gov"), NOW, kind="sign").cert
    with pytest.raises(CertValidation, match="not an authentication certificate"):
        server_from_auth_cert(cert)


def test_subsystem_cannot_have_a_signing_subject() -> None:
    """Signing certificates belong to members; a subsystem identifier is refused."""
    with pytest.raises(CertValidation):
        signing_subject(MEMBER.subsystem("sub"), "Gov")


@pytest.mark.parametrize(
    ("case", "subject"),
    [
        ("missing serialNumber", attrs((NameOID.COMMON_NAME, "70000310"), (NameOID.ORGANIZATION_NAME, "Gov"))),
        ("missing CN", attrs((NameOID.SERIAL_NUMBER, "EE/GOV/70000310"), (NameOID.ORGANIZATION_NAME, "Gov"))),
        ("missing O", attrs((NameOID.SERIAL_NUMBER, "EE/GOV/70000310"), (NameOID.COMMON_NAME, "70000310"))),
        (
            "CN not the member code",
            attrs(
                (NameOID.SERIAL_NUMBER, "EE/GOV/70000310"),
                (NameOID.COMMON_NAME, "99999"),
                (NameOID.ORGANIZATION_NAME, "Gov"),
            ),
        ),
        (
            "subsystem in serialNumber",
            attrs(
                (NameOID.SERIAL_NUMBER, "EE/GOV/70000310/sub"),
                (NameOID.COMMON_NAME, "70000310"),
                (NameOID.ORGANIZATION_NAME, "Gov"),
            ),
        ),
        (
            "character outside X-Road's set",
            attrs(
                (NameOID.SERIAL_NUMBER, "EE/GOV/7000 0310"),
                (NameOID.COMMON_NAME, "7000 0310"),
                (NameOID.ORGANIZATION_NAME, "Gov"),
            ),
        ),
        (
            "dot-dot part",
            attrs(
                (NameOID.SERIAL_NUMBER, "EE/../70000310"),
                (NameOID.COMMON_NAME, "70000310"),
                (NameOID.ORGANIZATION_NAME, "Gov"),
            ),
        ),
        (
            "extra attribute",
            attrs(
                (NameOID.COUNTRY_NAME, "EE"),
                (NameOID.SERIAL_NUMBER, "EE/GOV/70000310"),
                (NameOID.COMMON_NAME, "70000310"),
                (NameOID.ORGANIZATION_NAME, "Gov"),
            ),
        ),
        (
            "repeated CN",
            attrs(
                (NameOID.SERIAL_NUMBER, "EE/GOV/70000310"),
                (NameOID.COMMON_NAME, "70000310"),
                (NameOID.COMMON_NAME, "70000310"),
                (NameOID.ORGANIZATION_NAME, "Gov"),
            ),
        ),
        (
            "control character in name",
            attrs(
                (NameOID.SERIAL_NUMBER, "EE/GOV/70000310"),
                (NameOID.COMMON_NAME, "70000310"),
                (NameOID.ORGANIZATION_NAME, "Gov\x00"),
            ),
        ),
    ],
)
def test_subjects_that_do_not_fit_are_refused(case: str, subject: x509.Name) -> None:
    """Each way a subject can miss the profile is refused with cert_validation."""
    with pytest.raises(CertValidation):
        member_from_signing_subject(subject)


def test_csr_checks_read_the_requested_identity() -> None:
    """The CA's CSR checks return the member or server the request asks for."""
    assert check_signing_csr_subject(x509.load_pem_x509_csr(make_csr(signing_subject(MEMBER, "Gov")))) == MEMBER
    assert check_auth_csr_subject(x509.load_pem_x509_csr(make_csr(auth_subject(SERVER, "Gov")))) == SERVER


def test_auth_csr_with_bad_server_code_is_refused() -> None:
    """A server code outside X-Road's character set does not fit the auth profile."""
    subject = attrs(
        (NameOID.SERIAL_NUMBER, "EE/GOV/70000310"), (NameOID.COMMON_NAME, "ss 1"), (NameOID.ORGANIZATION_NAME, "Gov")
    )
    with pytest.raises(CertValidation):
        check_auth_csr_subject(x509.load_pem_x509_csr(make_csr(subject)))


@settings(max_examples=100, deadline=None)
@given(instance=PART, member_class=PART, code=PART, server_code=PART)
def test_profile_round_trips(instance: str, member_class: str, code: str, server_code: str) -> None:
    """Any valid member or server written into a subject is read back unchanged."""
    member = ClientId(instance, member_class, code)
    assert member_from_signing_subject(signing_subject(member, "Name")) == member
    server = SecurityServerId(member, server_code)
    assert server_from_auth_subject(auth_subject(server, "Name")) == server
