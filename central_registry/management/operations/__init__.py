"""The registry API's operations, one module per area of X-Road's central-server file."""

from __future__ import annotations

from central_registry.management.operations import (
    backups,
    clients,
    configuration_sources,
    global_groups,
    ha_status,
    initialization,
    management_requests,
    management_services,
    member_classes,
    members,
    openapi_document,
    security_servers,
    tokens,
    trust_services,
    trusted_anchors,
)
from security_server.management.api import Operation


def registry_operations() -> list[Operation]:
    """Every operation of the registry's API."""
    return [
        *initialization.operations(),
        *member_classes.operations(),
        *members.operations(),
        *clients.operations(),
        *global_groups.operations(),
        *security_servers.operations(),
        *management_requests.operations(),
        *management_services.operations(),
        *trust_services.operations(),
        *configuration_sources.operations(),
        *tokens.operations(),
        *backups.operations(),
        *trusted_anchors.operations(),
        *ha_status.operations(),
        *openapi_document.operations(),
    ]
