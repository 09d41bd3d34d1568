"""The registry API's operations, one module per area of X-Road's central-server file."""

from __future__ import annotations

from central_registry.management.operations import (
    clients,
    configuration_sources,
    global_groups,
    initialization,
    management_requests,
    member_classes,
    members,
    security_servers,
    tokens,
    trust_services,
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
        *trust_services.operations(),
        *configuration_sources.operations(),
        *tokens.operations(),
    ]
