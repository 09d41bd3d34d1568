"""Subjects and certificates written as X-Road's certificate profiles write them, made with cryptography alone.

The subjects below follow X-Road's own providers and their tests (EJBCA: ``C=instance, O=memberClass,
CN=memberCode``; Estonian SK: ``serialNumber`` = the eight-digit registry code or ``organizationIdentifier``; FI:
``C=FI, O=..., serialNumber=instance/serverCode/memberClass, CN=memberCode``), and a few that break each profile's
rule. :func:`profile_subjects` builds a profile's request subject the way fedbus's CSR operations do (from the
profile's subject fields), so the tests and the exchange fixtures share one definition.
"""

from __future__ import annotations

from datetime import datetime

from cryptography import x509
from cryptography.x509.oid import NameOID

from security_server.core.certprofile import profile_named, request_subject
from security_server.core.identifiers import ClientId, SecurityServerId
from security_server.core.subject_fields import ORGANIZATION_IDENTIFIER
from tests.federation.pki import Issued, make_cert

EJBCA = "ee.ria.xroad.common.certificateprofile.impl.EjbcaCertificateProfileInfoProvider"
EE = "ee.ria.xroad.common.certificateprofile.impl.SkKlass3CertificateProfileInfoProvider"
FI = "ee.ria.xroad.common.certificateprofile.impl.FiVRKCertificateProfileInfoProvider"
UNKNOWN = "ee.ria.xroad.common.certificateprofile.impl.IsCertificateProfileInfoProvider"
"""A real X-Road profile (Iceland's) that fedbus does not read."""


def dn(*pairs: tuple[x509.ObjectIdentifier, str]) -> x509.Name:
    """A subject of the given attributes, in order."""
    return x509.Name([x509.NameAttribute(oid, value) for oid, value in pairs])


def ejbca_sign(member: ClientId) -> x509.Name:
    """An EJBCA-profile signing subject."""
    return dn((NameOID.COUNTRY_NAME, member.instance), (NameOID.ORGANIZATION_NAME, member.member_class),
              (NameOID.COMMON_NAME, member.member_code))


def ee_sign(registry_code: str, name: str = "Riigi Infosüsteemi Amet") -> x509.Name:
    """An Estonian SK signing subject with the registry code in serialNumber."""
    return dn((NameOID.COUNTRY_NAME, "EE"), (NameOID.ORGANIZATION_NAME, name),
              (NameOID.SERIAL_NUMBER, registry_code), (NameOID.COMMON_NAME, name))


def ee_sign_org_id(org_id: str, name: str = "Firma OÜ") -> x509.Name:
    """An Estonian SK signing subject with an eIDAS organizationIdentifier."""
    return dn((NameOID.COUNTRY_NAME, "EE"), (NameOID.ORGANIZATION_NAME, name), (ORGANIZATION_IDENTIFIER, org_id),
              (NameOID.COMMON_NAME, name))


def fi_sign(instance: str, server_code: str, member_class: str, member_code: str, country: str = "FI") -> x509.Name:
    """An FI-profile signing subject (X-Road's FISubjectClientIdDecoderTest layout)."""
    return dn((NameOID.COUNTRY_NAME, country), (NameOID.ORGANIZATION_NAME, "ACME"),
              (NameOID.SERIAL_NUMBER, f"{instance}/{server_code}/{member_class}"), (NameOID.COMMON_NAME, member_code))


def profile_subjects(profile: str, owner: ClientId | SecurityServerId, name: str, server_code: str = "ss1") -> x509.Name:
    """The subject a request for ``owner`` (a member: signing; a server: authentication) has under ``profile``,
    built from the profile's fields with the editable ones filled in (``O`` = ``name``, a DNS name for ``CN``)."""
    chosen = profile_named(profile)
    if isinstance(owner, SecurityServerId):
        fields = chosen.auth_fields(owner, name)
    else:
        fields = chosen.signing_fields(owner, name, SecurityServerId(owner, server_code))
    values = {f.id: name if f.id == "O" else f"{server_code}.example.org" for f in fields
              if not f.read_only and f.id in ("O", "CN")}
    return request_subject(fields, values)


def cert_of(ca: Issued, subject: x509.Name, now: datetime, kind: str = "sign") -> x509.Certificate:
    """A certificate of ``kind`` (sign or auth) for ``subject`` from ``ca``."""
    return make_cert(ca, subject, now, kind=kind).cert
