"""``/security-servers``, ``/xroad-instances`` and ``/member-classes``: what the global configuration says about the
federation.

Read from the running server's configuration client (404 ``global_conf_unavailable`` without it). A security
server's id is X-Road's ``INSTANCE:CLASS:CODE:SERVERCODE``. fedbus federates one instance: ``/xroad-instances``
lists the server's own, local.
"""

from __future__ import annotations

from typing import Any

from security_server.core.globalconf import GlobalConf
from security_server.core.identifiers import SecurityServerId
from security_server.management.api import ApiRequest, ApiResponse, Operation
from security_server.management.context import OperationContext
from security_server.management.errors import ApiError
from security_server.management.ids import client_id_text
from security_server.management.operations.common import PREFIX
from security_server.management.permissions import roles_for


def _conf(context: OperationContext) -> GlobalConf:
    if context.global_conf is None:
        raise ApiError(404, "global_conf_unavailable", "the management API runs without the server")
    conf: GlobalConf = context.global_conf()
    return conf


def server_id_text(server: SecurityServerId) -> str:
    """``INSTANCE:CLASS:CODE:SERVERCODE``."""
    return f"{client_id_text(server.owner)}:{server.server_code}"


def server_json(server_id: SecurityServerId, address: str | None) -> dict[str, Any]:
    """X-Road's ``SecurityServer``."""
    data: dict[str, Any] = {
        "id": server_id_text(server_id),
        "instance_id": server_id.owner.instance,
        "member_class": server_id.owner.member_class,
        "member_code": server_id.owner.member_code,
        "server_code": server_id.server_code,
    }
    if address:
        data["server_address"] = address
    return data


def get_security_servers(context: OperationContext, request: ApiRequest) -> ApiResponse:
    """``GET /security-servers``: every registered server, or this one only (``current_server=true``)."""
    conf = _conf(context)
    servers = conf.security_servers()
    if request.query_bool("current_server", False):
        own = context.server_dir.snapshot().server_id
        servers = tuple(s for s in servers if s.id == own)
    return ApiResponse(200, [server_json(s.id, s.address) for s in servers])


def get_security_server(context: OperationContext, request: ApiRequest) -> ApiResponse:
    """``GET /security-servers/{id}``."""
    conf = _conf(context)
    for server in conf.security_servers():
        if server_id_text(server.id) == request.params["id"]:
            return ApiResponse(200, server_json(server.id, server.address))
    raise ApiError(404, "security_server_not_found", request.params["id"])


def get_xroad_instances(context: OperationContext, request: ApiRequest) -> ApiResponse:
    """``GET /xroad-instances``: the server's own instance."""
    return ApiResponse(200, [{"identifier": _conf(context).instance, "local": True}])


def _member_classes(conf: GlobalConf) -> list[str]:
    return [c.code for c in conf.shared.global_settings.member_classes]


def get_member_classes(context: OperationContext, request: ApiRequest) -> ApiResponse:
    """``GET /member-classes?current_instance=``: the member classes of the global configuration (this instance's
    and, with ``current_instance`` false, every instance's: fedbus's configuration holds one instance)."""
    conf = _conf(context)
    request.query_bool("current_instance", False)  # 400 for a value that is not a boolean
    return ApiResponse(200, _member_classes(conf))


def get_member_classes_for_instance(context: OperationContext, request: ApiRequest) -> ApiResponse:
    """``GET /member-classes/{id}``: the member classes of instance ``id``; 404 ``instance_identifier_not_found``
    for an instance the configuration does not hold."""
    conf = _conf(context)
    if request.params["id"] != conf.instance:
        raise ApiError(404, "instance_identifier_not_found", request.params["id"])
    return ApiResponse(200, _member_classes(conf))


OPERATIONS = (
    Operation("GET", f"{PREFIX}/member-classes", "getMemberClasses", roles_for("getMemberClasses"),
              get_member_classes),
    Operation("GET", f"{PREFIX}/member-classes/{{id}}", "getMemberClassesForInstance",
              roles_for("getMemberClassesForInstance"), get_member_classes_for_instance),
    Operation("GET", f"{PREFIX}/security-servers", "getSecurityServers", roles_for("getSecurityServers"),
              get_security_servers),
    Operation("GET", f"{PREFIX}/security-servers/{{id}}", "getSecurityServer", roles_for("getSecurityServer"),
              get_security_server),
    Operation("GET", f"{PREFIX}/xroad-instances", "getXRoadInstances", roles_for("getXRoadInstances"),
              get_xroad_instances),
)
