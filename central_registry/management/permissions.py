"""Which central-server roles may call each operation of the registry's API, by X-Road's operationId.

As in X-Road's central server (UG-CS §2): the system administrator initialises the server and changes its
address and status; the registration officer handles members, subsystems, global groups, security servers and
management requests; the security officer (with the system administrator) the trust services; the management
service (the security servers' management requests) may read what registration needs; the observer reads and
changes nothing. Every role may read.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Mapping

from central_registry.management.roles import ALL_ROLES, Role

ADMIN = frozenset({Role.SYSTEM_ADMINISTRATOR})
READERS = ALL_ROLES
REGISTRATION = frozenset({Role.REGISTRATION_OFFICER})
SECURITY = frozenset({Role.SECURITY_OFFICER})

PERMISSIONS: Mapping[str, frozenset[Role]] = MappingProxyType(
    {
        "getInitializationStatus": READERS,
        "initCentralServer": ADMIN,
        "getSystemStatus": READERS,
        "getSystemVersion": READERS,
        "updateCentralServerAddress": ADMIN,
        "getMemberClasses": READERS,
        "addMemberClass": ADMIN | REGISTRATION,
        "updateMemberClass": ADMIN | REGISTRATION,
        "deleteMemberClass": ADMIN | REGISTRATION,
        "findClients": READERS,
        "addMember": REGISTRATION,
        "getMember": READERS,
        "updateMemberName": REGISTRATION,
        "deleteMember": REGISTRATION,
        "getSubsystems": READERS,
        "getOwnedServers": READERS,
        "getUsedServers": READERS,
        "getMemberGlobalGroups": READERS,
        "unregisterMember": REGISTRATION,
        "unregisterSubsystem": REGISTRATION,
        "deleteSecurityServerAuthCert": REGISTRATION,
        "addSubsystem": REGISTRATION,
        "deleteSubsystem": REGISTRATION,
        "findSecurityServers": READERS,
        "getSecurityServer": READERS,
        "getSecurityServerClients": READERS,
        "getSecurityServerAuthCerts": READERS,
        "updateSecurityServerAddress": REGISTRATION,
        "deleteSecurityServer": REGISTRATION,
        "findManagementRequests": READERS,
        "getManagementRequest": READERS,
        "approveManagementRequest": REGISTRATION,
        "revokeManagementRequest": REGISTRATION,
        "addManagementRequest": REGISTRATION,  # the centre's requests (X-Road: ADD_*_REQUEST)
        # X-Road's permissions.yml: the management services' provider is the security officer's (every role reads)
        "getManagementServicesConfiguration": READERS,
        "updateManagementServicesConfiguration": ADMIN | SECURITY,
        "registerServiceProvider": ADMIN | SECURITY,
        "getCertificate": READERS,
        "downloadCertificate": READERS,
        "generateKeyAndCertificate": ADMIN | SECURITY,
        "generateCertificateRequest": ADMIN | SECURITY,
        "uploadCertificate": ADMIN | SECURITY,
        "uploadConfigurationParts": ADMIN | SECURITY,
        "getCertificationServices": READERS,
        "getTimestampingServices": READERS,
        "addCertificationService": ADMIN | SECURITY,
        "getCertificationService": READERS,
        "getCertificationServiceOcspResponders": READERS,
        "addCertificationServiceOcspResponder": ADMIN | SECURITY,
        "addTimestampingService": ADMIN | SECURITY,
        "updateCertificationService": ADMIN | SECURITY,
        "deleteCertificationService": ADMIN | SECURITY,
        "getCertificationServiceCertificate": READERS,
        "getOcspResponder": READERS,
        "updateOcspResponder": ADMIN | SECURITY,
        "deleteOcspResponder": ADMIN | SECURITY,
        "getOcspRespondersCertificate": READERS,
        "getTimestampingService": READERS,
        "updateTimestampingService": ADMIN | SECURITY,
        "deleteTimestampingService": ADMIN | SECURITY,
        "getCertificationServiceIntermediateCas": READERS,
        "addCertificationServiceIntermediateCa": ADMIN | SECURITY,
        "getIntermediateCa": READERS,
        "deleteIntermediateCa": ADMIN | SECURITY,
        "getIntermediateCaOcspResponders": READERS,
        "addIntermediateCaOcspResponder": ADMIN | SECURITY,
        "deleteIntermediateCaOcspResponder": ADMIN | SECURITY,
        "findGlobalGroups": READERS,
        "addGlobalGroup": REGISTRATION,
        "getGlobalGroup": READERS,
        "updateGlobalGroupDescription": REGISTRATION,
        "deleteGlobalGroup": REGISTRATION,
        "addGlobalGroupMembers": REGISTRATION,
        "findGlobalGroupMembers": READERS,
        "deleteGlobalGroupMember": REGISTRATION,
        "getAnchor": READERS,
        "downloadAnchor": READERS,
        "reCreateAnchor": ADMIN | SECURITY,
        "getTokens": READERS,
        "loginToken": ADMIN | SECURITY,
        "logoutToken": ADMIN | SECURITY,
        "addKey": ADMIN | SECURITY,
        "activateKey": ADMIN | SECURITY,
        "deleteKey": ADMIN | SECURITY,
        "getDownloadUrl": READERS,
        "getConfigurationParts": READERS,
        "getConfigurationGenerations": READERS,  # a fedbus extension (docs/compatibility.md)
        "downloadConfigurationParts": READERS,
        # X-Road's permissions.yml: backups are the system administrator's; trusted anchors the security officer's
        # (the system administrator may view and download them)
        "getBackups": ADMIN,
        "addBackup": ADMIN,
        "uploadBackup": ADMIN,
        "deleteBackup": ADMIN,
        "downloadBackup": ADMIN,
        "restoreBackup": ADMIN,
        "getTrustedAnchors": ADMIN | SECURITY,
        "downloadTrustedAnchor": ADMIN | SECURITY,
        "previewTrustedAnchor": SECURITY,
        "uploadTrustedAnchor": SECURITY,
        "deleteTrustedAnchor": SECURITY,
        "updateSubsystemName": REGISTRATION,
        "getHighAvailabilityClusterStatus": READERS,
        "getGroupMembersFilterModel": READERS,
        "downloadOpenApi": READERS,
    }
)


def roles_for(operation_id: str) -> frozenset[Role]:
    """The roles allowed to call ``operation_id`` (KeyError for an operation without an entry)."""
    return PERMISSIONS[operation_id]


VIEWERS = ALL_ROLES - {Role.MANAGEMENT_SERVICE}
"""The people's roles (the management service is the security servers' requests, not a person)."""

CONSOLE_PERMISSIONS: Mapping[str, frozenset[Role]] = MappingProxyType(
    {
        # members, subsystems, security servers, requests, trust services, configuration: every person's role
        "console.registry": VIEWERS,
        # approving or declining a waiting management request (the API checks approve/revoke the same way)
        "console.registry.decide": REGISTRATION,
    }
)
