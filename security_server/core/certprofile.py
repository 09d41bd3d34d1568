"""fedbus's one certificate profile: how a member or a security server is written into a certificate subject.

X-Road lets each approved CA name a ``certificateProfileInfo`` class that reads the member identity from its
certificates (XROAD-REFERENCE.md §4.1, ``SignatureVerifier.verifySignerName``). fedbus has one profile, used by
the development CA and expected from any CA the registry approves:

Signing certificate (a member's, keyUsage nonRepudiation)::

    serialNumber = <instance>/<memberClass>/<memberCode>
    CN           = <memberCode>
    O            = <member name>

Authentication certificate (a security server's, keyUsage digitalSignature, TLS client and server)::

    serialNumber = <instance>/<memberClass>/<memberCode>     (the server's owner)
    CN           = <serverCode>
    O            = <owner's member name>

Rules a subject must meet, or it is refused with :class:`CertValidation`:

* exactly these three attributes, each exactly once, and nothing else;
* ``serialNumber`` has exactly three ``/``-separated parts, each a valid X-Road identifier part (the character
  set ``A-Z a-z 0-9 ' ( ) + , - . = ?``, see identifiers.py), so it names a member, never a subsystem;
* in a signing certificate ``CN`` equals the member code; in an authentication certificate ``CN`` is a valid
  server code;
* ``O`` is 1 to 64 characters (X.520 ub-organization-name) without control characters.

The member name in ``O`` is informative: identity is decided by ``serialNumber`` (and ``CN``) alone.

**The profile registry.** Besides fedbus's profile (name ``fedbus``, the default), fedbus reads X-Road's EJBCA,
Estonian and Finnish profiles (core/xroad_certprofiles.py). An approved CA in the global configuration names its
profile in ``certificateProfileInfo``: ``fedbus`` or X-Road's Java class name
(``ee.ria.xroad.common.certificateprofile.impl.FiVRKCertificateProfileInfoProvider``); :func:`profile_named`
maps either to a profile. A configuration naming a profile fedbus does not know is accepted (X-Road's security
server accepts it too: its ``GetCertificateProfile`` fails only when a certificate of that CA is read); a
certificate of such a CA then has no readable identity and is refused with :class:`CertValidation`. The registry
refuses an unknown name where it is entered, as X-Road's central server does.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Mapping

from cryptography import x509
from cryptography.x509.oid import NameOID

from security_server.core.cert_identity import AuthNames, CertProfile
from security_server.core.errors import CertValidation, InvalidClientIdentifier
from security_server.core.identifiers import ClientId, SecurityServerId
from security_server.core.subject_fields import SUBJECT_ALT_NAME, SubjectField, subject_from_values
from security_server.core.trust import CERT_DECODE_ERRORS, is_auth_cert, is_signing_cert
from security_server.core.xroad_certprofiles import LABELS, EeProfile, EjbcaProfile, FiProfile

MAX_NAME_LENGTH = 64
"""X.520 ub-organization-name: the most characters an ``O`` attribute may hold."""

_PROFILE_OIDS = (NameOID.SERIAL_NUMBER, NameOID.COMMON_NAME, NameOID.ORGANIZATION_NAME)


def _check_name(name: str) -> str:
    if not isinstance(name, str) or not name or len(name) > MAX_NAME_LENGTH:
        raise CertValidation(f"member name must be 1 to {MAX_NAME_LENGTH} characters")
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in name):
        raise CertValidation("member name may not contain control characters")
    return name


def _subject(member: ClientId, common_name: str, name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, _check_name(name)),
            x509.NameAttribute(NameOID.SERIAL_NUMBER, "/".join(member.parts())),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def signing_subject(member: ClientId, name: str) -> x509.Name:
    """The subject of ``member``'s signing certificate under our profile."""
    if member.subsystem_code is not None:
        raise CertValidation("a signing certificate belongs to a member, not a subsystem")
    return _subject(member, member.member_code, name)


def auth_subject(server: SecurityServerId, name: str) -> x509.Name:
    """The subject of security server ``server``'s authentication certificate under our profile."""
    return _subject(server.owner, server.server_code, name)


def _single_values(subject: x509.Name) -> dict[x509.ObjectIdentifier, str]:
    """The profile's three attributes, each present once, with nothing else in the subject."""
    values: dict[x509.ObjectIdentifier, str] = {}
    for attribute in subject:
        if attribute.oid not in _PROFILE_OIDS:
            raise CertValidation(
                "certificate subject does not fit the profile",
                reason=f"unexpected attribute {attribute.oid.dotted_string} in {subject.rfc4514_string()}",
            )
        if attribute.oid in values:
            raise CertValidation(
                "certificate subject does not fit the profile",
                reason=f"attribute {attribute.oid.dotted_string} repeats in {subject.rfc4514_string()}",
            )
        if not isinstance(attribute.value, str):
            raise CertValidation("certificate subject does not fit the profile", reason="non-text attribute")
        values[attribute.oid] = attribute.value
    for oid in _PROFILE_OIDS:
        if oid not in values:
            raise CertValidation(
                "certificate subject does not fit the profile",
                reason=f"attribute {oid.dotted_string} missing from {subject.rfc4514_string()}",
            )
    _check_name(values[NameOID.ORGANIZATION_NAME])
    return values


def _member(serial_number: str) -> ClientId:
    parts = serial_number.split("/")
    if len(parts) != 3:
        raise CertValidation(
            "certificate subject does not fit the profile",
            reason=f"serialNumber {serial_number!r} is not instance/memberClass/memberCode",
        )
    try:
        return ClientId(parts[0], parts[1], parts[2])
    except InvalidClientIdentifier as err:
        raise CertValidation(
            "certificate subject does not fit the profile", reason=f"serialNumber {serial_number!r}: {err.message}"
        ) from err


def member_from_signing_subject(subject: x509.Name) -> ClientId:
    """Read the member from a signing certificate (or request) subject under our profile."""
    values = _single_values(subject)
    member = _member(values[NameOID.SERIAL_NUMBER])
    if values[NameOID.COMMON_NAME] != member.member_code:
        raise CertValidation(
            "certificate subject does not fit the profile",
            reason=f"CN {values[NameOID.COMMON_NAME]!r} is not the member code {member.member_code!r}",
        )
    return member


def server_from_auth_subject(subject: x509.Name) -> SecurityServerId:
    """Read the security server from an authentication certificate (or request) subject under our profile."""
    values = _single_values(subject)
    owner = _member(values[NameOID.SERIAL_NUMBER])
    try:
        return SecurityServerId(owner, values[NameOID.COMMON_NAME])
    except InvalidClientIdentifier as err:
        raise CertValidation(
            "certificate subject does not fit the profile", reason=f"CN is not a server code: {err.message}"
        ) from err


def member_name(subject: x509.Name) -> str:
    """The member name (``O``) of a subject that fits the profile."""
    return _single_values(subject)[NameOID.ORGANIZATION_NAME]


def _subject_of(cert: x509.Certificate) -> x509.Name:
    """The certificate's subject; :class:`CertValidation` if it cannot be decoded (cryptography decodes lazily)."""
    try:
        subject = cert.subject
        subject.rfc4514_string()
    except CERT_DECODE_ERRORS as err:
        raise CertValidation("certificate subject cannot be decoded", reason=str(err)) from err
    return subject


@functools.lru_cache(maxsize=1024)
def member_from_signing_cert(cert: x509.Certificate) -> ClientId:
    """The member a signing certificate belongs to; :class:`CertValidation` if it is not one under our profile."""
    if not is_signing_cert(cert):
        raise CertValidation(
            "not a signing certificate",
            reason="it lacks keyUsage nonRepudiation or is a CA",
        )
    return member_from_signing_subject(_subject_of(cert))


@functools.lru_cache(maxsize=1024)
def server_from_auth_cert(cert: x509.Certificate) -> SecurityServerId:
    """The security server an authentication certificate belongs to; :class:`CertValidation` if it is not one."""
    if not is_auth_cert(cert):
        raise CertValidation(
            "not an authentication certificate",
            reason="it lacks keyUsage digitalSignature, has nonRepudiation, lacks TLS client and server use, "
            "or is a CA",
        )
    return server_from_auth_subject(_subject_of(cert))


def check_signing_csr_subject(csr: x509.CertificateSigningRequest) -> ClientId:
    """The member a signing-certificate request asks for; :class:`CertValidation` if its subject does not fit."""
    return member_from_signing_subject(csr.subject)


def check_auth_csr_subject(csr: x509.CertificateSigningRequest) -> SecurityServerId:
    """The server an authentication-certificate request asks for; :class:`CertValidation` if its subject does not fit."""
    return server_from_auth_subject(csr.subject)


# --- the profile registry -----------------------------------------------------------------------------------------

FEDBUS_PROFILE = "fedbus"
"""The name of fedbus's own profile, the default: what the registry publishes for its development CA."""


@dataclass(frozen=True, slots=True)
class FedbusProfile:
    """fedbus's own profile (the module docstring) as a :class:`~security_server.core.cert_identity.CertProfile`."""

    name: str = FEDBUS_PROFILE
    xroad_class: str | None = None

    def member_from_signing_subject(self, subject: x509.Name, instance: str) -> ClientId:
        """:func:`member_from_signing_subject` (the instance is in the subject)."""
        return member_from_signing_subject(subject)

    def auth_names(self, subject: x509.Name) -> AuthNames:
        """Every part of the server, from :func:`server_from_auth_subject`."""
        server = server_from_auth_subject(subject)
        owner = server.owner
        return AuthNames(owner.instance, owner.member_class, owner.member_code, server.server_code)

    def signing_fields(self, member: ClientId, member_name: str, server: SecurityServerId) -> tuple[SubjectField, ...]:
        """O = the member's name (editable), serialNumber and CN read-only."""
        return (
            SubjectField("O", "ORGANIZATION_NAME", LABELS["ORGANIZATION_NAME"], member_name),
            SubjectField("serialNumber", "SERIAL_NUMBER", LABELS["SERIAL_NUMBER"], "/".join(member.parts()), True),
            SubjectField("CN", "MEMBER_CODE", LABELS["MEMBER_CODE"], member.member_code, True),
        )

    def auth_fields(self, server: SecurityServerId, owner_name: str) -> tuple[SubjectField, ...]:
        """O = the owner's name (editable), serialNumber (the owner) and CN (the server code) read-only."""
        return (
            SubjectField("O", "ORGANIZATION_NAME", LABELS["ORGANIZATION_NAME"], owner_name),
            SubjectField("serialNumber", "SERIAL_NUMBER", LABELS["SERIAL_NUMBER"], "/".join(server.owner.parts()), True),
            SubjectField("CN", "SERVER_CODE", LABELS["SERVER_CODE"], server.server_code, True),
        )


FEDBUS = FedbusProfile()
PROFILES: tuple[CertProfile, ...] = (FEDBUS, EjbcaProfile(), EeProfile(), FiProfile())
"""Every profile fedbus reads."""

_BY_NAME: Mapping[str, CertProfile] = {
    **{p.name: p for p in PROFILES},
    **{p.xroad_class: p for p in PROFILES if p.xroad_class is not None},
}


def is_known_profile(name: str) -> bool:
    """Whether ``name`` is a profile's short name or X-Road class name."""
    return name in _BY_NAME


def profile_named(name: str) -> CertProfile:
    """The profile a CA's ``certificateProfileInfo`` names (short name or X-Road class name); :class:`CertValidation`
    for a name fedbus does not know (its certificates have no readable identity)."""
    found = _BY_NAME.get(name)
    if found is None:
        raise CertValidation(
            "the certificate's CA uses a certificate profile fedbus does not know", reason=f"profile {name!r}"
        )
    return found


def profile_names() -> tuple[str, ...]:
    """The short names of every profile, fedbus's first."""
    return tuple(p.name for p in PROFILES)


@functools.lru_cache(maxsize=1024)
def member_from_signing_cert_as(cert: x509.Certificate, profile_name: str, instance: str) -> ClientId:
    """The member a signing certificate belongs to under profile ``profile_name`` (its CA's); ``instance`` is the
    expected member's instance, for profiles that do not write it. fedbus's profile answers exactly as
    :func:`member_from_signing_cert`. :class:`CertValidation` when it is not one, or the profile is unknown."""
    profile = profile_named(profile_name)
    if profile is FEDBUS:
        return member_from_signing_cert(cert)
    if not is_signing_cert(cert):
        raise CertValidation("not a signing certificate", reason="it lacks keyUsage nonRepudiation or is a CA")
    return profile.member_from_signing_subject(_subject_of(cert), instance)


@functools.lru_cache(maxsize=1024)
def auth_names_of_cert(cert: x509.Certificate, profile_name: str) -> AuthNames:
    """The server parts an authentication certificate carries under profile ``profile_name``; fedbus's profile
    reads it as :func:`server_from_auth_cert`. :class:`CertValidation` when it is not one, or the profile is unknown."""
    profile = profile_named(profile_name)
    if profile is FEDBUS:
        server = server_from_auth_cert(cert)
        owner = server.owner
        return AuthNames(owner.instance, owner.member_class, owner.member_code, server.server_code)
    if not is_auth_cert(cert):
        raise CertValidation("not an authentication certificate", reason="it lacks the key usages of one or is a CA")
    return profile.auth_names(_subject_of(cert))


def names_owner(subject: x509.Name, owner: ClientId | SecurityServerId) -> bool:
    """Whether ``subject`` names ``owner`` under one of the profiles (a member in a signing subject, a server's
    parts in an authentication subject). The tokens use it for a key's own requests and certificates, where the CA
    is not known; identity that decides anything is read with the CA's own profile."""
    try:
        subject.rfc4514_string()
    except CERT_DECODE_ERRORS:
        return False
    for profile in PROFILES:
        try:
            if isinstance(owner, SecurityServerId):
                if profile.auth_names(subject).matches(owner):
                    return True
            elif profile.member_from_signing_subject(subject, owner.instance) == owner:
                return True
        except CertValidation:
            continue
    return False


def request_subject(fields: tuple[SubjectField, ...], values: Mapping[str, str]) -> x509.Name:
    """The subject of a request built from ``subject_field_values`` under a profile's ``fields``
    (:func:`~security_server.core.subject_fields.subject_from_values`); a ``subjectAltName`` value is refused, as
    fedbus's requests carry no extensions."""
    if values.get(SUBJECT_ALT_NAME):
        raise CertValidation("fedbus makes requests without a subjectAltName", reason="subjectAltName given")
    return subject_from_values(fields, values)
