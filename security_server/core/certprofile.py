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
"""

from __future__ import annotations

import functools

from cryptography import x509
from cryptography.x509.oid import NameOID

from security_server.core.errors import CertValidation, InvalidClientIdentifier
from security_server.core.identifiers import ClientId, SecurityServerId
from security_server.core.trust import CERT_DECODE_ERRORS, is_auth_cert, is_signing_cert

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
