"""An authentication certificate's registration state, as X-Road's security server keeps it.

X-Road records what the server did with the certificate (imported: SAVED; authCertReg sent: REGISTRATION_IN_PROGRESS;
authCertDeletion sent or marked for deletion: DELETION_IN_PROGRESS) and moves the state on what each new global
configuration says (its admin service's ``GlobalConfChecker.updateCertStatus``): a certificate the configuration lists
for this server becomes REGISTERED (unless its deletion is in progress); a REGISTERED one the configuration no longer
lists becomes GLOBAL_ERROR. A signing certificate is REGISTERED from its import (X-Road's ``importCertificate``).
"""

from __future__ import annotations

import enum


class CertStatus(enum.StrEnum):
    """X-Road's ``CertificateStatus`` values (the OpenAPI file's enum)."""

    SAVED = "SAVED"
    REGISTRATION_IN_PROGRESS = "REGISTRATION_IN_PROGRESS"
    REGISTERED = "REGISTERED"
    DELETION_IN_PROGRESS = "DELETION_IN_PROGRESS"
    GLOBAL_ERROR = "GLOBAL_ERROR"


def observed(recorded: CertStatus, listed: bool) -> CertStatus:
    """The state after a global configuration that does (``listed``) or does not list the certificate for this
    server, from the state recorded before it."""
    if listed:
        return recorded if recorded is CertStatus.DELETION_IN_PROGRESS else CertStatus.REGISTERED
    return CertStatus.GLOBAL_ERROR if recorded is CertStatus.REGISTERED else recorded


def can_unregister(status: CertStatus) -> bool:
    """X-Road's UNREGISTER rule: the registration was sent or is in force."""
    return status in (CertStatus.REGISTRATION_IN_PROGRESS, CertStatus.REGISTERED)


def can_register(status: CertStatus) -> bool:
    """X-Road's REGISTER rule: a saved certificate only (not one in error or on its way out)."""
    return status is CertStatus.SAVED
