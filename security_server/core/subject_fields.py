"""The subject fields of a certificate request, as X-Road's certificate profiles describe them.

X-Road's management API asks a CA's profile which subject (DN) fields a request for it has
(``GET /certificate-authorities/{ca_name}/csr-subject-fields``, X-Road ``DnFieldDescription``): each field's
attribute id (``C``, ``O``, ``CN``, ``serialNumber`` ...), its label, a default value computed from the member
or server the request is for, whether it is read-only and whether it is required. The administrator then sends
``subject_field_values`` and the subject is built from them the way X-Road's ``DnFieldHelper`` does
(:func:`subject_from_values`): a read-only field always takes its default, a missing field its default, a
required field must end up non-blank, an unknown field is refused, and an empty value is left out.

Also here: reading one attribute of a subject (X-Road ``CertUtils.getRDNValue``: the first value of that type).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from cryptography import x509
from cryptography.x509.oid import NameOID, ObjectIdentifier

from security_server.core.errors import CertValidation

ORGANIZATION_IDENTIFIER = ObjectIdentifier("2.5.4.97")
"""X.520 organizationIdentifier (eIDAS legal-person certificates: ``NTREE-10000000``)."""

ATTRIBUTE_OIDS: Mapping[str, x509.ObjectIdentifier] = {
    "C": NameOID.COUNTRY_NAME,
    "O": NameOID.ORGANIZATION_NAME,
    "OU": NameOID.ORGANIZATIONAL_UNIT_NAME,
    "CN": NameOID.COMMON_NAME,
    "L": NameOID.LOCALITY_NAME,
    "ST": NameOID.STATE_OR_PROVINCE_NAME,
    "serialNumber": NameOID.SERIAL_NUMBER,
    "SN": NameOID.SERIAL_NUMBER,  # Bouncy Castle's BCStyle reads SN as serialNumber (2.5.4.5), as X-Road's EE profile
    "businessCategory": NameOID.BUSINESS_CATEGORY,
    "organizationIdentifier": ORGANIZATION_IDENTIFIER,
}
"""The DN attribute ids a profile's fields may use, with their OIDs."""

SUBJECT_ALT_NAME = "subjectAltName"
"""Not a DN attribute: X-Road's FI profile asks for it, and X-Road writes it as a subjectAltName extension."""

MAX_VALUE_LENGTH = 255


@dataclass(frozen=True, slots=True)
class SubjectField:
    """One subject field of a profile's request (X-Road ``DnFieldDescription`` / ``CsrSubjectFieldDescription``)."""

    id: str
    label_key: str
    """X-Road's localisation key (``DnFieldLabelLocalizationKey``), e.g. ``MEMBER_CODE``."""
    label: str
    """X-Road's compatibility label, e.g. ``Member Code (CN)``."""
    default_value: str = ""
    read_only: bool = False
    required: bool = True

    def __post_init__(self) -> None:
        if self.id not in ATTRIBUTE_OIDS and self.id != SUBJECT_ALT_NAME:
            raise ValueError(f"unknown subject field {self.id!r}")

    def to_json(self) -> dict[str, object]:
        """X-Road's ``CsrSubjectFieldDescription``."""
        return {
            "id": self.id,
            "label": self.label,
            "label_key": self.label_key,
            "default_value": self.default_value,
            "read_only": self.read_only,
            "required": self.required,
            "localized": True,
        }


def field_values(fields: tuple[SubjectField, ...], given: Mapping[str, str]) -> dict[str, str]:
    """Each field's value from ``given`` (X-Road ``DnFieldHelper.processDnParameters``); :class:`CertValidation`
    for a required field left blank or a value for a field the profile does not have."""
    extra = sorted(set(given) - {f.id for f in fields})
    if extra:
        raise CertValidation("subject field values name fields the profile does not have", reason=", ".join(extra))
    values: dict[str, str] = {}
    for one in fields:
        raw = given.get(one.id)
        if not isinstance(raw, str) and raw is not None:
            raise CertValidation(f"subject field {one.id} is not text")
        missing = raw is None or not raw.strip()
        if one.required and not one.read_only and missing:
            raise CertValidation(f"subject field {one.id} is required", reason=f"missing parameter: {one.id}")
        value = one.default_value if one.read_only or missing else str(raw)
        if one.required and not value.strip():
            raise CertValidation(f"subject field {one.id} is required", reason=f"field {one.label} has no value")
        if len(value) > MAX_VALUE_LENGTH or any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value):
            raise CertValidation(f"subject field {one.id} is not a valid value")
        values[one.id] = value
    return values


def subject_from_values(fields: tuple[SubjectField, ...], given: Mapping[str, str]) -> x509.Name:
    """The subject built from ``given`` under ``fields``, in the fields' order, empty values left out; the
    ``subjectAltName`` field is not part of the subject (see :data:`SUBJECT_ALT_NAME`)."""
    values = field_values(fields, given)
    attributes = []
    for one in fields:
        value = values[one.id]
        if one.id == SUBJECT_ALT_NAME or not value:
            continue
        try:
            attributes.append(x509.NameAttribute(ATTRIBUTE_OIDS[one.id], value))
        except ValueError as err:  # cryptography refuses a C that is not two letters
            raise CertValidation(f"subject field {one.id} is not a valid value", reason=str(err)) from err
    return x509.Name(attributes)


def attribute(subject: x509.Name, oid: x509.ObjectIdentifier) -> str | None:
    """The first value of attribute ``oid`` in ``subject`` (X-Road ``CertUtils.getRDNValue``), or None."""
    for found in subject.get_attributes_for_oid(oid):
        if isinstance(found.value, str):
            return found.value
        return None
    return None


def required_attribute(subject: x509.Name, oid: x509.ObjectIdentifier, what: str, profile: str) -> str:
    """:func:`attribute`, non-empty, or :class:`CertValidation` saying the subject lacks ``what``."""
    value = attribute(subject, oid)
    if not value:
        raise CertValidation(
            f"certificate subject does not fit the {profile} profile",
            reason=f"subject {subject.rfc4514_string()} has no {what}",
        )
    return value
