"""``/initialization`` and ``/system``: initialise the registry, its status and address."""

from __future__ import annotations

import importlib.metadata
from typing import Any

from central_registry.admin import initialization as admin
from central_registry.admin.errors import NotInitialised
from central_registry.admin.initialization import InitialisationStatus
from central_registry.management.context import RegistryContext
from central_registry.management.operations.common import PREFIX
from central_registry.management.permissions import roles_for
from security_server.management.api import ApiRequest, ApiResponse, Operation, string_field


def status_json(status: InitialisationStatus) -> dict[str, Any]:
    """X-Road's ``InitializationStatus`` (empty strings for what is not set yet, as X-Road answers)."""
    return {
        "instance_identifier": status.instance or "",
        "central_server_address": status.address or "",
        "software_token_init_status": "INITIALIZED" if status.token_initialised else "NOT_INITIALIZED",
    }


def _status(context: RegistryContext) -> InitialisationStatus:
    try:
        with context.store() as store:  # the running registry's own store when it runs
            return admin.status_of(store)
    except NotInitialised:
        return InitialisationStatus(None, None, False)


def get_status(context: RegistryContext, request: ApiRequest) -> ApiResponse:
    """GET /initialization/status."""
    return ApiResponse(200, status_json(_status(context)))


def initialise(context: RegistryContext, request: ApiRequest) -> ApiResponse:
    """POST /initialization: instance identifier, address, PIN; no member class, no CA or TSA."""
    fields = frozenset({"instance_identifier", "central_server_address", "software_token_pin"})
    data = request.json_object(fields, fields)
    instance = string_field(data, "instance_identifier")
    address = string_field(data, "central_server_address")
    pin = string_field(data, "software_token_pin")
    assert instance is not None and address is not None and pin is not None
    admin.initialise(context.root, instance, address, pin, context.now(), database_url=context.database_url)
    return ApiResponse(201)


def _system_json(context: RegistryContext) -> dict[str, Any]:
    return {
        "initialization_status": status_json(_status(context)),
        "high_availability_status": {"is_ha_configured": context.database_url is not None, "node_name": "node_0"},
    }


def system_status(context: RegistryContext, request: ApiRequest) -> ApiResponse:
    """GET /system/status."""
    return ApiResponse(200, _system_json(context))


def update_address(context: RegistryContext, request: ApiRequest) -> ApiResponse:
    """PUT /system/server-address: the address written into the next anchor (``public-host`` until then)."""
    data = request.json_object(frozenset({"central_server_address"}), frozenset({"central_server_address"}))
    address = string_field(data, "central_server_address")
    assert address is not None
    with context.store() as store:
        admin.set_address(store, address)
    return ApiResponse(200, _system_json(context))


def system_version(context: RegistryContext, request: ApiRequest) -> ApiResponse:
    """GET /system/version."""
    try:
        version = importlib.metadata.version("fedbus")
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    return ApiResponse(200, {"info": f"fedbus central registry {version}"})


def operations() -> list[Operation]:
    """The operations of this area."""
    return [
        Operation("GET", f"{PREFIX}/initialization/status", "getInitializationStatus",
                  roles_for("getInitializationStatus"), get_status),
        Operation("POST", f"{PREFIX}/initialization", "initCentralServer", roles_for("initCentralServer"), initialise),
        Operation("GET", f"{PREFIX}/system/status", "getSystemStatus", roles_for("getSystemStatus"), system_status),
        Operation("GET", f"{PREFIX}/system/version", "getSystemVersion", roles_for("getSystemVersion"), system_version),
        Operation("PUT", f"{PREFIX}/system/server-address", "updateCentralServerAddress",
                  roles_for("updateCentralServerAddress"), update_address),
    ]
