"""``GET /openapi.yaml`` (downloadOpenApi): X-Road's security-server file (shipped as
``schemas/security-server-openapi.yaml``, MIT-licensed, unchanged) with its ``paths`` cut to the operations this
server answers, computed from the router's table (:func:`security_server.management.operations.security_server_operations`)
at each call, so it cannot claim an operation fedbus does not serve (security_server/management/openapi_document.py)."""

from __future__ import annotations

import functools

from security_server.management.api import ApiRequest, ApiResponse, Operation
from security_server.management.context import OperationContext
from security_server.management.openapi_document import openapi_answer
from security_server.management.operations.common import PREFIX
from security_server.management.permissions import roles_for
from security_server.schemafiles import schema_dir

FILE_NAME = "security-server-openapi.yaml"


@functools.cache
def _spec() -> bytes:
    return (schema_dir() / FILE_NAME).read_bytes()


def download_openapi(context: OperationContext, request: ApiRequest) -> ApiResponse:
    """``GET /openapi.yaml``: the paths and methods of the server's operations (the router's table)."""
    from security_server.management.operations import security_server_operations  # the table this module is in

    return openapi_answer(_spec(), security_server_operations(), PREFIX)


OPERATIONS = (
    Operation("GET", f"{PREFIX}/openapi.yaml", "downloadOpenApi", roles_for("downloadOpenApi"), download_openapi),
)
