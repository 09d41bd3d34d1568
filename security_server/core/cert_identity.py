"""What a certificate profile reads from a subject, and what every profile offers (X-Road's
``CertificateProfileInfoProvider``): the member of a signing certificate, the parts of a security server
identifier an authentication certificate carries, and the subject fields of a request for either.

X-Road reads the member from a signing certificate with the profile of the CA that issued it
(``SignCertificateProfileInfo.getSubjectIdentifier``); it never reads a server from an authentication certificate
(a server is found by its registered certificate's hash). Some profiles write the server's parts into the
subject anyway (fedbus's all of them; EJBCA's the instance and server code; FI's the instance, server code and
member class): :class:`AuthNames` holds what one profile's auth subject says, and a registration check compares
those parts, and only those, with the server the request names.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from cryptography import x509

from security_server.core.identifiers import ClientId, SecurityServerId
from security_server.core.subject_fields import SubjectField


@dataclass(frozen=True, slots=True)
class AuthNames:
    """The parts of a security server identifier an authentication certificate's subject carries (None: not
    carried by its profile)."""

    instance: str | None = None
    member_class: str | None = None
    member_code: str | None = None
    server_code: str | None = None

    def matches(self, server: SecurityServerId) -> bool:
        """Whether every part the subject carries is ``server``'s."""
        owner = server.owner
        wanted = (owner.instance, owner.member_class, owner.member_code, server.server_code)
        carried = (self.instance, self.member_class, self.member_code, self.server_code)
        return all(have is None or have == want for have, want in zip(carried, wanted))

    def server(self) -> SecurityServerId | None:
        """The whole server identifier, when the subject carries every part of it."""
        if None in (self.instance, self.member_class, self.member_code, self.server_code):
            return None
        assert self.instance and self.member_class and self.member_code and self.server_code
        return SecurityServerId(ClientId(self.instance, self.member_class, self.member_code), self.server_code)


class CertProfile(Protocol):
    """One certificate profile: how a CA writes members and servers into its certificates."""

    @property
    def name(self) -> str:
        """fedbus's short name of the profile (``fedbus``, ``ejbca``, ``ee``, ``fi``)."""
        ...

    @property
    def xroad_class(self) -> str | None:
        """X-Road's ``certificateProfileInfo`` class name of the profile (None: fedbus's own)."""
        ...

    def member_from_signing_subject(self, subject: x509.Name, instance: str) -> ClientId:
        """The member a signing certificate's subject names; ``instance`` is the instance of the member the caller
        expects, for profiles that do not write it (X-Road passes the signer's instance the same way).
        :class:`~security_server.core.errors.CertValidation` when the subject does not fit."""
        ...

    def auth_names(self, subject: x509.Name) -> AuthNames:
        """The server parts an authentication certificate's subject carries; ``CertValidation`` when it does not
        fit."""
        ...

    def signing_fields(self, member: ClientId, member_name: str, server: SecurityServerId) -> tuple[SubjectField, ...]:
        """The subject fields of a signing-certificate request for ``member`` (named ``member_name``), made on
        security server ``server`` (X-Road ``getSignCertProfile(...).getSubjectFields()``)."""
        ...

    def auth_fields(self, server: SecurityServerId, owner_name: str) -> tuple[SubjectField, ...]:
        """The subject fields of an authentication-certificate request for ``server`` (its owner named
        ``owner_name``)."""
        ...
