"""``GET /openapi.yaml`` (downloadOpenApi): X-Road's central-server file (shipped as
``schemas/central-server-openapi.yaml``, MIT-licensed, unchanged) cut to the operations this registry answers."""

from __future__ import annotations

import functools

from central_registry.management.context import RegistryContext
from central_registry.management.operations.common import PREFIX
from central_registry.management.permissions import roles_for
from security_server.management.api import ApiRequest, ApiResponse, Operation
from security_server.management.openapi_document import openapi_answer
from security_server.schemafiles import schema_dir

FILE_NAME = "central-server-openapi.yaml"


@functools.cache
def _spec() -> bytes:
    return (schema_dir() / FILE_NAME).read_bytes()


def download_openapi(context: RegistryContext, request: ApiRequest) -> ApiResponse:
    """GET /openapi.yaml: the paths and methods of the registry's operations (the same table its router has)."""
    from central_registry.management.operations import registry_operations  # the table this module is part of

    return openapi_answer(_spec(), registry_operations(), PREFIX)


def operations() -> list[Operation]:
    """The operations of this area."""
    return [Operation("GET", f"{PREFIX}/openapi.yaml", "downloadOpenApi", roles_for("downloadOpenApi"),
                      download_openapi)]
