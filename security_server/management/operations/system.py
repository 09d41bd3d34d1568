"""``/system/anchor``: the configuration anchor (show, upload the initial one, replace); ``/system/node-type``."""

from __future__ import annotations

from datetime import UTC, datetime

from security_server.admin import initialization, system
from security_server.admin.initialization import AnchorInfo, anchor_info
from security_server.core.globalconf.anchor import MAX_ANCHOR_BYTES
from security_server.management.api import ApiRequest, ApiResponse, Operation
from security_server.management.context import OperationContext
from security_server.management.errors import ApiError
from security_server.management.operations.common import PREFIX, xroad_time
from security_server.management.permissions import roles_for

_NO_DATE = datetime(1970, 1, 1, tzinfo=UTC)


def anchor_json(info: AnchorInfo) -> dict[str, str]:
    """X-Road's ``Anchor``: the hash and when the anchor was generated (the epoch when it does not say)."""
    return {"hash": info.hash, "created_at": xroad_time(info.generated_at or _NO_DATE)}


def _anchor_body(request: ApiRequest) -> bytes:
    if not request.body:
        raise ApiError(400, "invalid_anchor", "the request body is empty")
    if len(request.body) > MAX_ANCHOR_BYTES:
        raise ApiError(413, "request_too_large")
    return request.body


def get_anchor(context: OperationContext, request: ApiRequest) -> ApiResponse:
    """``GET /system/anchor``."""
    return ApiResponse(200, anchor_json(system.show_anchor(context.server_dir)))


def upload_initial_anchor(context: OperationContext, request: ApiRequest) -> ApiResponse:
    """``POST /system/anchor`` (before initialisation only)."""
    initialization.upload_initial_anchor(context.server_dir, _anchor_body(request))
    return ApiResponse(201)


def replace_anchor(context: OperationContext, request: ApiRequest) -> ApiResponse:
    """``PUT /system/anchor`` (after initialisation only; same instance)."""
    system.replace_anchor(context.server_dir, _anchor_body(request))
    return ApiResponse(201)


def preview_anchor(context: OperationContext, request: ApiRequest) -> ApiResponse:
    """``POST /system/anchor/previews``: the hash and date of an anchor, stored nowhere. With
    ``validate_instance`` (default true) an anchor of another instance than this server's is refused."""
    info = anchor_info(_anchor_body(request))
    if request.query_bool("validate_instance", True) and context.server_dir.is_initialised():
        instance = context.server_dir.snapshot().identity.instance
        if info.instance != instance:
            raise ApiError(400, "invalid_anchor", f"the anchor is for instance {info.instance}, not {instance}")
    return ApiResponse(201, anchor_json(info))


def download_anchor(context: OperationContext, request: ApiRequest) -> ApiResponse:
    """``GET /system/anchor/download``: the anchor file as it was imported."""
    data = system.current_anchor(context.server_dir)
    return ApiResponse(200, raw=data, content_type="application/xml",
                       headers=((b"Content-Disposition", b'attachment; filename="configuration-anchor.xml"'),))


def get_node_type(context: OperationContext, request: ApiRequest) -> ApiResponse:
    """``GET /system/node-type``: STANDALONE, or PRIMARY for a node of a clustered server (its configuration in
    the shared database of ``[database] url``). fedbus's nodes are all equal and every one takes changes
    (docs/clustering.md: no read-only node), which is X-Road's PRIMARY; none is ever SECONDARY."""
    return ApiResponse(200, {"node_type": "PRIMARY" if context.server_dir.database_url else "STANDALONE"})


OPERATIONS = (
    Operation("GET", f"{PREFIX}/system/node-type", "getNodeType", roles_for("getNodeType"), get_node_type),
    Operation("POST", f"{PREFIX}/system/anchor/previews", "previewAnchor", roles_for("previewAnchor"), preview_anchor),
    Operation("GET", f"{PREFIX}/system/anchor/download", "downloadAnchor", roles_for("downloadAnchor"),
              download_anchor),
    Operation("GET", f"{PREFIX}/system/anchor", "getAnchor", roles_for("getAnchor"), get_anchor),
    Operation("POST", f"{PREFIX}/system/anchor", "uploadInitialAnchor", roles_for("uploadInitialAnchor"),
              upload_initial_anchor),
    Operation("PUT", f"{PREFIX}/system/anchor", "replaceAnchor", roles_for("replaceAnchor"), replace_anchor),
)
