"""Which roles may call each operation, by X-Road's operationId: the one table the API checks.

X-Road grants permissions to roles (UG-SS §2.1: the system administrator installs and configures the server,
the security officer handles tokens and authentication certificates, the registration officer clients and
signing certificates, the service administrator services and access rights, the observer sees everything and
changes nothing). Every role may read what it may change; the observer may read everything except the API keys.
fedbus's auditor (``FEDBUS_AUDITOR``) is allowed no operation: only the console's Audit pages
(:data:`CONSOLE_PERMISSIONS`, the table the console checks).
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Mapping

from security_server.management.roles import XROAD_ROLES, Role

ADMIN = frozenset({Role.SYSTEM_ADMINISTRATOR})
READERS = XROAD_ROLES
SECURITY = frozenset({Role.SECURITY_OFFICER})
REGISTRATION = frozenset({Role.REGISTRATION_OFFICER})
SERVICES = frozenset({Role.SERVICE_ADMINISTRATOR})

PERMISSIONS: Mapping[str, frozenset[Role]] = MappingProxyType(
    {
        # initialization and system
        "initSecurityServer": ADMIN,
        "getInitializationStatus": READERS,
        "getAnchor": ADMIN | {Role.SECURITYSERVER_OBSERVER},
        "uploadInitialAnchor": ADMIN,
        "replaceAnchor": ADMIN,
        "previewAnchor": ADMIN,
        "downloadAnchor": ADMIN | {Role.SECURITYSERVER_OBSERVER},
        "getSecurityServers": READERS,
        "getSecurityServer": READERS,
        "getXRoadInstances": READERS,
        # diagnostics (X-Road's VIEW_DIAGNOSTICS: the system administrator and the observer)
        "getGlobalConfDiagnostics": ADMIN | {Role.SECURITYSERVER_OBSERVER},
        "getTimestampingServicesDiagnostics": ADMIN | {Role.SECURITYSERVER_OBSERVER},
        "getOcspRespondersDiagnostics": ADMIN | {Role.SECURITYSERVER_OBSERVER},
        "getApprovedTimestampingServices": READERS,
        "getConfiguredTimestampingServices": READERS,
        "addConfiguredTimestampingService": ADMIN,
        "deleteConfiguredTimestampingService": ADMIN,
        "maintenanceMode": READERS,
        "enableMaintenanceMode": ADMIN,
        "disableMaintenanceMode": ADMIN,
        # clients
        "findClients": READERS,
        "getClient": READERS,
        "addClient": REGISTRATION,
        "registerClient": REGISTRATION,
        "unregisterClient": REGISTRATION,
        "deleteClient": REGISTRATION,
        # a client's internal TLS certificates (X-Road's *_CLIENT_INTERNAL_CERT*: the service and system administrators)
        "getClientTlsCertificates": READERS,
        "getClientTlsCertificate": READERS,
        "addClientTlsCertificate": SERVICES | ADMIN,
        "deleteClientTlsCertificate": SERVICES | ADMIN,
        "findMemberName": READERS,
        # service descriptions (the service administrator's)
        "getClientServiceDescriptions": READERS,
        "addClientServiceDescription": SERVICES,
        "getServiceDescription": READERS,
        "getServiceDescriptionServices": READERS,
        "disableServiceDescription": SERVICES,
        "enableServiceDescription": SERVICES,
        "deleteServiceDescription": SERVICES,
        "refreshServiceDescription": SERVICES,
        # services and access rights (the service administrator's)
        "getService": READERS,
        "updateService": SERVICES,
        "getClientServiceClients": READERS,
        "getServiceClientAccessRights": READERS,
        "addServiceClientAccessRights": SERVICES,
        "deleteServiceClientAccessRights": SERVICES,
        "getServiceServiceClients": READERS,
        "addServiceServiceClients": SERVICES,
        "deleteServiceServiceClients": SERVICES,
        "getEndpoint": READERS,
        "getEndpointServiceClients": READERS,
        "addEndpointServiceClients": SERVICES,
        "deleteEndpointServiceClients": SERVICES,
        # local groups (the service administrator's)
        "getClientLocalGroups": READERS,
        "addClientLocalGroup": SERVICES,
        "getLocalGroup": READERS,
        "addLocalGroupMember": SERVICES,
        "deleteLocalGroupMember": SERVICES,
        "deleteLocalGroup": SERVICES,
        # tokens and keys (the security officer's and the registration officer's)
        "getTokens": READERS,
        "getToken": READERS,
        "getKey": READERS,
        "getCertificate": READERS,
        "getClientSignCertificates": READERS,
        "addKeyAndCsr": SECURITY | REGISTRATION,
        "downloadCsr": SECURITY | REGISTRATION,
        "deleteCsr": SECURITY | REGISTRATION,
        "importCertificate": SECURITY | REGISTRATION,
        "registerCertificate": SECURITY,
        "loginToken": SECURITY | ADMIN,
        "logoutToken": SECURITY | ADMIN,
        "updateTokenPin": ADMIN,
        "activateCertificate": SECURITY | REGISTRATION,
        "disableCertificate": SECURITY | REGISTRATION,
        "deleteCertificate": SECURITY | REGISTRATION,
        "getPossibleActionsForCertificate": READERS,
        "updateKey": SECURITY | REGISTRATION | ADMIN,
        "deleteKey": SECURITY | REGISTRATION,
        "generateCsr": SECURITY | REGISTRATION,
        # approved CAs and their request fields (X-Road: VIEW_APPROVED_CERTIFICATE_AUTHORITIES, or the officer of
        # the usage asked for; the handlers check the usage)
        "getApprovedCertificateAuthorities": SECURITY | REGISTRATION | ADMIN | {Role.SECURITYSERVER_OBSERVER},
        "getSubjectFieldDescriptions": SECURITY | REGISTRATION,
        "getPossibleActionsForKey": READERS,
        # issue 16 brief D: auth certificate unregistration, the server address, the small read-only operations
        "unregisterAuthCertificate": SECURITY,
        "markAuthCertForDeletion": SECURITY,
        "getServerAddress": ADMIN,
        "addressChange": ADMIN,
        "getNodeType": READERS,
        "systemVersion": READERS,
        "getTimestampingPrioritizationStrategy": READERS,
        "getOcspPrioritizationStrategy": READERS,
        "getMemberClasses": READERS,
        "getMemberClassesForInstance": READERS,
        "getPossibleActionsForCsr": READERS,
        "downloadOpenApi": READERS,
        "getGlobalConfStatus": ADMIN | {Role.SECURITYSERVER_OBSERVER},
        "getAuthCertReqStatus": ADMIN | {Role.SECURITYSERVER_OBSERVER},
        "getProxyMemoryUsage": ADMIN | {Role.SECURITYSERVER_OBSERVER},
        "updateToken": SECURITY | REGISTRATION | ADMIN,
        "addKey": SECURITY | REGISTRATION,
        # issue 16 brief B: endpoints, description and group edits, service clients, client state and name, orphans
        "addEndpoint": SERVICES,
        "updateEndpoint": SERVICES,
        "deleteEndpoint": SERVICES,
        "updateServiceDescription": SERVICES,
        "updateLocalGroup": SERVICES,
        "getServiceClient": SERVICES | {Role.SECURITYSERVER_OBSERVER},
        "findServiceClientCandidates": SERVICES | {Role.SECURITYSERVER_OBSERVER},
        "getClientSecurityServers": READERS,
        "disableClient": REGISTRATION,
        "enableClient": REGISTRATION,
        "renameClient": REGISTRATION,
        "getClientOrphans": REGISTRATION,
        "deleteOrphans": REGISTRATION,
        # issue 16 brief C: clients' connection type, the internal TLS certificate (X-Road's permissions.yml)
        "updateClient": SERVICES | REGISTRATION,
        "getSystemCertificate": READERS,
        "downloadSystemCertificate": SECURITY | ADMIN | SERVICES | REGISTRATION,
        "generateSystemTlsKeyAndCertificate": SECURITY | ADMIN,
        "generateSystemCertificateRequest": SECURITY | ADMIN,
        "importSystemCertificate": SECURITY | ADMIN,
        # backups (the system administrator's)
        "getBackups": ADMIN,
        "addBackup": ADMIN,
        "uploadBackup": ADMIN,
        "deleteBackup": ADMIN,
        "downloadBackup": ADMIN,
        "restoreBackup": ADMIN,
        # API keys (UG-SS §19.1): the system administrator only
        "createApiKey": ADMIN,
        "listApiKeys": ADMIN,
        "getApiKey": ADMIN,
        "updateApiKey": ADMIN,
        "revokeApiKey": ADMIN,
    }
)


AUDITORS = frozenset({Role.AUDITOR})

CONSOLE_PERMISSIONS: Mapping[str, frozenset[Role]] = MappingProxyType(
    {
        # health, certificates, configuration age, backlog and traffic: every X-Road role (observer and up)
        "console.overview": XROAD_ROLES,
        # clients, service descriptions, services and access rights (X-Road's service administrator's views)
        "console.configuration": SERVICES | ADMIN,
        # tokens, keys, certificate requests and certificates (X-Road's security officer's views; the registration
        # officer's too: signing keys, their requests and certificates are theirs in the API)
        "console.keys": SECURITY | REGISTRATION | ADMIN,
        # the message log: search, a record's detail, its container, verifying it
        "console.audit": ADMIN | AUDITORS,
        # a logged message's body and attachments (personal data): the same two roles, named apart so they can differ
        "console.audit.bodies": ADMIN | AUDITORS,
    }
)


def roles_for(operation_id: str) -> frozenset[Role]:
    """The roles allowed to call ``operation_id`` (KeyError for an operation without an entry)."""
    return PERMISSIONS[operation_id]
