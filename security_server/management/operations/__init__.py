"""The implemented operations of X-Road's security-server API, one module per area (X-Road's tags).

:func:`security_server_operations` lists them all for the router; each module's ``OPERATIONS`` tuple holds its
:class:`~security_server.management.api.Operation` values with their X-Road operationId, path and roles.
"""

from __future__ import annotations

from security_server.management.api import Operation
from security_server.management.operations import (
    access_rights,
    api_keys,
    backups,
    certificate_authorities,
    client_connection,
    clients,
    diagnostics,
    endpoints,
    federation,
    initialization,
    local_groups,
    maintenance,
    openapi_document,
    prioritization,
    service_descriptions,
    services,
    system,
    system_certificate,
    timestamping,
    tokens,
)


def security_server_operations() -> tuple[Operation, ...]:
    """Every operation the security server's management API answers."""
    return (
        initialization.OPERATIONS
        + system.OPERATIONS
        + system_certificate.OPERATIONS
        + maintenance.OPERATIONS
        + diagnostics.OPERATIONS
        + timestamping.OPERATIONS
        + prioritization.OPERATIONS
        + federation.OPERATIONS
        + clients.OPERATIONS
        + client_connection.OPERATIONS
        + service_descriptions.OPERATIONS
        + services.OPERATIONS
        + access_rights.OPERATIONS
        + endpoints.OPERATIONS
        + local_groups.OPERATIONS
        + tokens.OPERATIONS
        + certificate_authorities.OPERATIONS
        + backups.OPERATIONS
        + api_keys.OPERATIONS
        + openapi_document.OPERATIONS
    )
