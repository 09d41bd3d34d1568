"""X-Road's certificate profiles that fedbus reads: EJBCA's (X-Road's default), the Estonian and the Finnish one.

Each is named in the global configuration by X-Road's Java class (``certificateProfileInfo`` of an approved CA);
:mod:`security_server.core.certprofile` maps those names to the objects here. What each reads and asks for,
as X-Road's own providers do (``ee.ria.xroad.common.certificateprofile.impl``):

``EjbcaCertificateProfileInfoProvider`` (``ejbca``)
    signing: ``C`` = instance, ``O`` = member class, ``CN`` = member code (``CertSubjectUtils.getSubjectClientId``);
    authentication: ``C`` = instance, ``CN`` = server code.
``SkKlass3CertificateProfileInfoProvider`` (``ee``, SK ID Solutions' organisation certificates)
    signing: the member code in ``serialNumber`` (eight digits; the member class from its first digit: 1-6 COM,
    7 GOV, 8-9 NGO) or, when present, in ``organizationIdentifier`` (``NTREE-`` COM, ``GO:EE-`` GOV, ``NP:EE-``
    NGO, anything else NEE with the whole identifier as the code); the instance is not in the certificate, it is
    the expected member's; ``CN`` = the member's name. Authentication: the same ``serialNumber`` and ``CN``.
``FiVRKCertificateProfileInfoProvider`` (``fi``)
    signing: ``C`` = ``FI``, ``O`` = organisation name, ``serialNumber`` = ``instance/serverCode/memberClass``,
    ``CN`` = member code (``FISubjectClientIdDecoder``, with its two older layouts: ``C=FI, O=instance,
    OU=memberClass, CN=memberCode`` and ``C=instance, O=memberClass, CN=memberCode``); authentication: ``C`` =
    ``FI``, ``serialNumber`` = ``instance/serverCode/memberClass``, ``CN`` = the server's DNS name.

One deliberate difference: the FI profile's ``subjectAltName`` field is described as optional (X-Road: required),
because fedbus's tokens make requests without extensions; a value for it is refused (core/certprofile.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography import x509
from cryptography.x509.oid import NameOID

from security_server.core.cert_identity import AuthNames
from security_server.core.errors import CertValidation, InvalidClientIdentifier
from security_server.core.identifiers import ClientId, SecurityServerId
from security_server.core.subject_fields import (
    ORGANIZATION_IDENTIFIER,
    SUBJECT_ALT_NAME,
    SubjectField,
    attribute,
    required_attribute,
)

XROAD_PROFILE_PACKAGE = "ee.ria.xroad.common.certificateprofile.impl."

LABELS = {
    "COMMON_NAME": "Common Name (CN)",
    "COUNTRY_CODE": "Country Code (C)",
    "INSTANCE_IDENTIFIER": "Instance Identifier (C)",
    "MEMBER_CLASS": "Member Class (O)",
    "MEMBER_CODE": "Member Code (CN)",
    "ORGANIZATION_NAME": "Organization Name (O)",
    "SERIAL_NUMBER": "Serial Number",
    "SERIAL_NUMBER_SN": "Serial Number (SN)",
    "SERVER_CODE": "Server Code (CN)",
    "SERVER_DNS_NAME": "Server DNS Name (CN)",
    "SUBJECT_ALTERNATIVE_NAME": "Subject Alternative Name (SAN)",
}
"""X-Road's ``DnFieldLabelLocalizationKey``: each localisation key with its compatibility label."""


def _field(field_id: str, key: str, default: str = "", *, read_only: bool, required: bool = True) -> SubjectField:
    return SubjectField(field_id, key, LABELS[key], default, read_only, required)


def _client(instance: str, member_class: str, member_code: str, profile: str) -> ClientId:
    try:
        return ClientId(instance, member_class, member_code)
    except InvalidClientIdentifier as err:
        raise CertValidation(f"certificate subject does not fit the {profile} profile", reason=err.message) from err


@dataclass(frozen=True, slots=True)
class EjbcaProfile:
    """X-Road's EJBCA profile (the default of X-Road's central server)."""

    name: str = "ejbca"
    xroad_class: str | None = XROAD_PROFILE_PACKAGE + "EjbcaCertificateProfileInfoProvider"

    def member_from_signing_subject(self, subject: x509.Name, instance: str) -> ClientId:
        """``C``/``O``/``CN`` as instance/member class/member code (``instance`` is not used)."""
        return _client(
            required_attribute(subject, NameOID.COUNTRY_NAME, "country code (C)", self.name),
            required_attribute(subject, NameOID.ORGANIZATION_NAME, "organization (O)", self.name),
            required_attribute(subject, NameOID.COMMON_NAME, "common name (CN)", self.name),
            self.name,
        )

    def auth_names(self, subject: x509.Name) -> AuthNames:
        """``C`` = instance, ``CN`` = server code."""
        return AuthNames(
            instance=required_attribute(subject, NameOID.COUNTRY_NAME, "country code (C)", self.name),
            server_code=required_attribute(subject, NameOID.COMMON_NAME, "common name (CN)", self.name),
        )

    def signing_fields(self, member: ClientId, member_name: str, server: SecurityServerId) -> tuple[SubjectField, ...]:
        """C, O and CN, all read-only."""
        return (
            _field("C", "INSTANCE_IDENTIFIER", member.instance, read_only=True),
            _field("O", "MEMBER_CLASS", member.member_class, read_only=True),
            _field("CN", "MEMBER_CODE", member.member_code, read_only=True),
        )

    def auth_fields(self, server: SecurityServerId, owner_name: str) -> tuple[SubjectField, ...]:
        """C and CN, read-only."""
        return (
            _field("C", "INSTANCE_IDENTIFIER", server.owner.instance, read_only=True),
            _field("CN", "SERVER_CODE", server.server_code, read_only=True),
        )


_EE_ORG_PREFIXES = (("NTREE-", "COM"), ("GO:EE-", "GOV"), ("NP:EE-", "NGO"))
_EE_CLASS_BY_DIGIT = {**dict.fromkeys("123456", "COM"), "7": "GOV", "8": "NGO", "9": "NGO"}
EE_SERIAL_DIGITS = 8


@dataclass(frozen=True, slots=True)
class EeProfile:
    """X-Road's Estonian profile for SK ID Solutions' organisation certificates (``SkKlass3``)."""

    name: str = "ee"
    xroad_class: str | None = XROAD_PROFILE_PACKAGE + "SkKlass3CertificateProfileInfoProvider"

    def _class_and_code(self, subject: x509.Name) -> tuple[str, str]:
        org_id = attribute(subject, ORGANIZATION_IDENTIFIER)
        if org_id:
            for prefix, member_class in _EE_ORG_PREFIXES:
                if org_id.startswith(prefix):
                    return member_class, org_id[len(prefix):]
            return "NEE", org_id  # the whole identifier keeps foreign member codes unique (as X-Road)
        serial = required_attribute(subject, NameOID.SERIAL_NUMBER, "serial number", self.name)
        if not serial.isascii() or not serial.isdigit() or len(serial) != EE_SERIAL_DIGITS:
            raise CertValidation(
                f"certificate subject does not fit the {self.name} profile",
                reason=f"serial number {serial!r} is not {EE_SERIAL_DIGITS} digits",
            )
        by_digit = _EE_CLASS_BY_DIGIT.get(serial[0])
        if by_digit is None:
            raise CertValidation(
                f"certificate subject does not fit the {self.name} profile", reason=f"malformed serial number {serial!r}"
            )
        return by_digit, serial

    def member_from_signing_subject(self, subject: x509.Name, instance: str) -> ClientId:
        """The member class and code from ``organizationIdentifier`` or ``serialNumber``, in ``instance``."""
        member_class, member_code = self._class_and_code(subject)
        return _client(instance, member_class, member_code, self.name)

    def auth_names(self, subject: x509.Name) -> AuthNames:
        """The owner's member class and code, read as from a signing certificate."""
        member_class, member_code = self._class_and_code(subject)
        return AuthNames(member_class=member_class, member_code=member_code)

    def signing_fields(self, member: ClientId, member_name: str, server: SecurityServerId) -> tuple[SubjectField, ...]:
        """SN = member code, CN = member name, both read-only."""
        return (
            _field("SN", "SERIAL_NUMBER_SN", member.member_code, read_only=True),
            _field("CN", "COMMON_NAME", member_name, read_only=True),
        )

    def auth_fields(self, server: SecurityServerId, owner_name: str) -> tuple[SubjectField, ...]:
        """SN = owner's member code, CN = owner's name, both read-only."""
        return (
            _field("SN", "SERIAL_NUMBER_SN", server.owner.member_code, read_only=True),
            _field("CN", "COMMON_NAME", owner_name, read_only=True),
        )


FI_COUNTRY = "FI"


@dataclass(frozen=True, slots=True)
class FiProfile:
    """X-Road's Finnish profile (``FiVRK``, the Digital and Population Data Services Agency's CA)."""

    name: str = "fi"
    xroad_class: str | None = XROAD_PROFILE_PACKAGE + "FiVRKCertificateProfileInfoProvider"

    def _country(self, subject: x509.Name) -> None:
        if attribute(subject, NameOID.COUNTRY_NAME) != FI_COUNTRY:
            raise CertValidation(
                f"certificate subject does not fit the {self.name} profile",
                reason=f"subject {subject.rfc4514_string()} has no valid country code (C=FI)",
            )

    def _serial_parts(self, subject: x509.Name) -> list[str]:
        serial = required_attribute(subject, NameOID.SERIAL_NUMBER, "serial number", self.name)
        parts = serial.split("/")
        if len(parts) != 3:
            raise CertValidation(
                f"certificate subject does not fit the {self.name} profile",
                reason=f"serialNumber {serial!r} is not instance/serverCode/memberClass",
            )
        return parts

    def member_from_signing_subject(self, subject: x509.Name, instance: str) -> ClientId:
        """``serialNumber`` = instance/serverCode/memberClass with ``CN`` = member code (or the older layouts)."""
        if attribute(subject, NameOID.SERIAL_NUMBER) is None:
            if attribute(subject, NameOID.ORGANIZATIONAL_UNIT_NAME) is None:
                # the oldest layout: C=instance, O=memberClass, CN=memberCode
                return EjbcaProfile().member_from_signing_subject(subject, instance)
            self._country(subject)
            return _client(
                required_attribute(subject, NameOID.ORGANIZATION_NAME, "organization (O)", self.name),
                required_attribute(subject, NameOID.ORGANIZATIONAL_UNIT_NAME, "organizational unit (OU)", self.name),
                required_attribute(subject, NameOID.COMMON_NAME, "common name (CN)", self.name),
                self.name,
            )
        self._country(subject)
        required_attribute(subject, NameOID.ORGANIZATION_NAME, "organization (O)", self.name)
        member_code = required_attribute(subject, NameOID.COMMON_NAME, "common name (CN)", self.name)
        parts = self._serial_parts(subject)
        return _client(parts[0], parts[2], member_code, self.name)

    def auth_names(self, subject: x509.Name) -> AuthNames:
        """Instance, server code and member class from ``serialNumber`` (``CN`` is a DNS name)."""
        self._country(subject)
        instance, server_code, member_class = self._serial_parts(subject)
        return AuthNames(instance=instance, member_class=member_class, server_code=server_code)

    def signing_fields(self, member: ClientId, member_name: str, server: SecurityServerId) -> tuple[SubjectField, ...]:
        """C=FI, O (given), serialNumber instance/serverCode/memberClass, CN member code, subjectAltName."""
        return (
            _field("C", "COUNTRY_CODE", FI_COUNTRY, read_only=True),
            _field("O", "ORGANIZATION_NAME", read_only=False),
            _field("serialNumber", "SERIAL_NUMBER", f"{member.instance}/{server.server_code}/{member.member_class}",
                   read_only=True),
            _field("CN", "MEMBER_CODE", member.member_code, read_only=True),
            _field(SUBJECT_ALT_NAME, "SUBJECT_ALTERNATIVE_NAME", read_only=False, required=False),
        )

    def auth_fields(self, server: SecurityServerId, owner_name: str) -> tuple[SubjectField, ...]:
        """C=FI, O (given), serialNumber instance/serverCode/memberClass, CN the server's DNS name (given)."""
        owner = server.owner
        return (
            _field("C", "COUNTRY_CODE", FI_COUNTRY, read_only=True),
            _field("O", "ORGANIZATION_NAME", read_only=False),
            _field("serialNumber", "SERIAL_NUMBER", f"{owner.instance}/{server.server_code}/{owner.member_class}",
                   read_only=True),
            _field("CN", "SERVER_DNS_NAME", read_only=False),
            _field(SUBJECT_ALT_NAME, "SUBJECT_ALTERNATIVE_NAME", read_only=False, required=False),
        )
