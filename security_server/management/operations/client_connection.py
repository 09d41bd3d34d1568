"""``PATCH /clients/{id}`` (updateClient): a client's connection type, X-Road's ``ConnectionTypeWrapper``.

``connection_type`` is ``HTTP``, ``HTTPS_NO_AUTH`` or ``HTTPS`` (core/connection_type.py); the answer is the client
as ``GET /clients/{id}`` shows it. A body without it is X-Road's 400 ``connection_type_required``, another value
400 ``invalid_connection_type``.
"""

from __future__ import annotations

from security_server.admin import client_connection
from security_server.core.connection_type import ConnectionType
from security_server.management.api import ApiRequest, ApiResponse, Operation
from security_server.management.context import OperationContext
from security_server.management.errors import bad_request
from security_server.management.ids import parse_client_id
from security_server.management.operations import clients
from security_server.management.operations.common import PREFIX
from security_server.management.permissions import roles_for


def update_client(context: OperationContext, request: ApiRequest) -> ApiResponse:
    """``PATCH /clients/{id}``: set the client's connection type; 200 with the client."""
    client = parse_client_id(request.params["id"])
    data = request.json_object(frozenset({"connection_type"}))
    if data.get("connection_type") is None:
        raise bad_request("connection_type_required", "connection_type")
    try:
        connection_type = ConnectionType.parse(data["connection_type"])
    except ValueError:
        raise bad_request("invalid_connection_type", "connection_type") from None
    client_connection.set_connection_type(context.server_dir, client, connection_type)
    return clients.get_client(context, request)


OPERATIONS = (
    Operation("PATCH", f"{PREFIX}/clients/{{id}}", "updateClient", roles_for("updateClient"), update_client),
)
