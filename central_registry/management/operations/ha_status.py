"""``GET /system/high-availability-cluster/status``: the registry's nodes and their last configuration generation.

The values are :mod:`central_registry.admin.ha_status`'s: the nodes the shared store knows (a clustered registry,
``[database] url``: docs/clustering.md) and this one, each with when it last published. ``is_ha_configured`` is
true on a shared PostgreSQL store; ``node_name`` is this node's.
"""

from __future__ import annotations

from typing import Any

from central_registry.admin import ha_status as admin
from central_registry.management.context import RegistryContext
from central_registry.management.operations.common import PREFIX, xroad_time
from central_registry.management.permissions import roles_for
from central_registry.publisher import DIRECTORY_NAME
from security_server.management.api import ApiRequest, ApiResponse, Operation


def cluster_status(context: RegistryContext, request: ApiRequest) -> ApiResponse:
    """GET /system/high-availability-cluster/status (X-Road's ``HighAvailabilityClusterStatus``)."""
    publisher = context.publisher()
    own = None if publisher is None else f"{publisher.public_url}/{DIRECTORY_NAME}"
    with context.store() as store:
        nodes = admin.cluster_status(store, own, context.now())
    shown: list[dict[str, Any]] = []
    for node in nodes:
        item: dict[str, Any] = {"node_name": node.name, "node_address": node.address, "status": node.state.value}
        if node.generated_at is not None:
            item["configuration_generated"] = xroad_time(node.generated_at)
        shown.append(item)
    return ApiResponse(200, {
        "is_ha_configured": context.database_url is not None,
        "node_name": admin.node_name(own) if own is not None else "node_0",
        "nodes": shown,
        "all_nodes_ok": all(n.state is admin.NodeState.OK for n in nodes),
    })


def operations() -> list[Operation]:
    """The operations of this area."""
    return [Operation("GET", f"{PREFIX}/system/high-availability-cluster/status", "getHighAvailabilityClusterStatus",
                      roles_for("getHighAvailabilityClusterStatus"), cluster_status)]
