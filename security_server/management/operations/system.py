"""``/system/anchor``: the configuration anchor (show, upload the initial one, replace); ``/system/node-type``;
``/system/server-address`` (X-Road's addressChange)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from twisted.internet.defer import Deferred

from security_server.admin import initialization, system
from security_server.admin import registration as admin_registration
from security_server.admin.initialization import AnchorInfo, anchor_info
from security_server.core.errors import BusError
from security_server.core.globalconf import GlobalConf
from security_server.core.globalconf.anchor import MAX_ANCHOR_BYTES
from security_server.core.server_address import parse_server_address
from security_server.management.api import ApiRequest, ApiResponse, Operation, string_field
from security_server.management.context import OperationContext
from security_server.management.errors import ApiError, bad_request
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


def _current_address(context: OperationContext) -> str | None:
    """This server's address in the global configuration in force (None without one, or when it has none)."""
    if context.global_conf is None:
        return None
    try:
        conf: GlobalConf = context.global_conf()
    except BusError:
        return None
    address: str | None = conf.server_address(context.server_dir.snapshot().server_id)
    return address


def get_server_address(context: OperationContext, request: ApiRequest) -> ApiResponse:
    """``GET /system/server-address``: X-Road's ``SecurityServerAddressStatus``: the address the global
    configuration publishes for this server (absent while none is known) and the change sent and not yet published
    (absent when none waits; forgotten once published)."""
    current = _current_address(context)
    data: dict[str, Any] = {}
    if current is not None:
        data["current_address"] = {"address": current}
    waiting = admin_registration.requested_address(context.server_dir, current)
    if waiting is not None:
        data["requested_change"] = {"address": waiting}
    return ApiResponse(200, data)


def change_address(context: OperationContext, request: ApiRequest) -> Deferred[ApiResponse]:
    """``PUT /system/server-address`` (``SecurityServerAddress``): addressChange to the registry, signed by the
    server's auth key and the owner's sign key; 202, and the address is the requested change until a configuration
    publishes it. 400 ``invalid_address``; 400 ``address_change_request_already_submitted`` while one waits, 400
    ``same_address_change_request`` for the current address (X-Road: 409; its file documents 400). Runs on the
    reactor thread (it talks to the registry)."""
    data = request.json_object(frozenset({"address"}), frozenset({"address"}))
    address = str(string_field(data, "address"))
    if parse_server_address(address) is None:
        raise bad_request("invalid_address", address)
    if context.change_address is None:
        raise ApiError(404, "registration_unavailable", "the management API runs without the registry")
    assert context.blocking is not None
    blocking, send = context.blocking, context.change_address

    def check() -> None:
        admin_registration.check_address_change(context.server_dir, address, _current_address(context))

    return (blocking(check).addCallback(lambda _: send(address))
            .addCallback(lambda _: blocking(lambda: admin_registration.record_address_change(context.server_dir,
                                                                                             address)))
            .addCallback(lambda _: ApiResponse(202)))


OPERATIONS = (
    Operation("GET", f"{PREFIX}/system/server-address", "getServerAddress", roles_for("getServerAddress"),
              get_server_address),
    Operation("PUT", f"{PREFIX}/system/server-address", "addressChange", roles_for("addressChange"), change_address,
              in_reactor=True),
    Operation("GET", f"{PREFIX}/system/node-type", "getNodeType", roles_for("getNodeType"), get_node_type),
    Operation("POST", f"{PREFIX}/system/anchor/previews", "previewAnchor", roles_for("previewAnchor"), preview_anchor),
    Operation("GET", f"{PREFIX}/system/anchor/download", "downloadAnchor", roles_for("downloadAnchor"),
              download_anchor),
    Operation("GET", f"{PREFIX}/system/anchor", "getAnchor", roles_for("getAnchor"), get_anchor),
    Operation("POST", f"{PREFIX}/system/anchor", "uploadInitialAnchor", roles_for("uploadInitialAnchor"),
              upload_initial_anchor),
    Operation("PUT", f"{PREFIX}/system/anchor", "replaceAnchor", roles_for("replaceAnchor"), replace_anchor),
)
