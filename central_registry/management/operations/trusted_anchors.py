"""``/trusted-anchors``: other instances' anchors (federation) previewed, uploaded, listed, downloaded, deleted.

The checks and the store are :mod:`central_registry.admin.trusted_anchors`. An upload is ``multipart/form-data``
with the file as ``anchor`` (X-Road's ``TrustedAnchorFile``), named ``*.xml`` as X-Road requires
(``invalid_file_extension``, ``double_file_extension``).
"""

from __future__ import annotations

import re
from typing import Any

from central_registry.admin import trusted_anchors as admin
from central_registry.admin.trusted_anchors import TrustedAnchor
from central_registry.management.context import RegistryContext
from central_registry.management.operations.common import PREFIX, xroad_time
from central_registry.management.permissions import roles_for
from security_server.management.api import ApiRequest, ApiResponse, Operation, no_content
from security_server.management.errors import bad_request

_DOUBLE_EXTENSION = re.compile(r".*\.[A-Za-z0-9]{1,10}\.xml", re.IGNORECASE)


def anchor_json(anchor: TrustedAnchor) -> dict[str, Any]:
    """X-Road's ``TrustedAnchor``; ``created_at`` (when it was added here) because the file requires it."""
    return {"hash": anchor.hash, "instance_identifier": anchor.instance,
            "generated_at": xroad_time(anchor.generated_at), "created_at": xroad_time(anchor.created_at)}


def _uploaded_anchor(request: ApiRequest) -> bytes:
    """The ``anchor`` part of a ``multipart/form-data`` body."""
    if not (request.content_type or "").lower().startswith("multipart/form-data"):
        raise bad_request("invalid_content_type", "multipart/form-data with the anchor as 'anchor'")
    part = request.form_parts("anchor").get("anchor")
    if part is None:
        raise bad_request("missing_field", "anchor")
    name = part.filename or ""
    if not name.lower().endswith(".xml"):
        raise bad_request("invalid_file_extension", name)
    if _DOUBLE_EXTENSION.fullmatch(name):
        raise bad_request("double_file_extension", name)
    return part.data


def get_anchors(context: RegistryContext, request: ApiRequest) -> ApiResponse:
    """``GET /trusted-anchors``."""
    with context.store() as store:
        return ApiResponse(200, [anchor_json(a) for a in admin.trusted_anchors(store)])


def preview_anchor(context: RegistryContext, request: ApiRequest) -> ApiResponse:
    """``POST /trusted-anchors/preview``: the anchor checked as an upload is, not kept."""
    xml = _uploaded_anchor(request)
    with context.store() as store:
        instance = store.settings().instance
    return ApiResponse(200, anchor_json(admin.verified(xml, instance, context.now())))


def upload_anchor(context: RegistryContext, request: ApiRequest) -> ApiResponse:
    """``POST /trusted-anchors``: checked, kept (replacing its instance's), published from the next generation."""
    xml = _uploaded_anchor(request)
    with context.store() as store:
        return ApiResponse(201, anchor_json(admin.add_trusted_anchor(store, xml, context.now())))


def delete_anchor(context: RegistryContext, request: ApiRequest) -> ApiResponse:
    """``DELETE /trusted-anchors/{hash}``."""
    with context.store() as store:
        admin.delete_trusted_anchor(store, request.params["hash"])
    return no_content()


def download_anchor(context: RegistryContext, request: ApiRequest) -> ApiResponse:
    """``GET /trusted-anchors/{hash}/download``: the file as uploaded."""
    with context.store() as store:
        anchor = admin.trusted_anchor(store, request.params["hash"])
    name = f"configuration_anchor_{anchor.instance}_{anchor.generated_at:%Y-%m-%d_%H_%M_%S}.xml"
    return ApiResponse(200, raw=anchor.xml, content_type="application/xml",
                       headers=((b"Content-Disposition", f'attachment; filename="{name}"'.encode("ascii")),))


def operations() -> list[Operation]:
    """The operations of this area."""
    one = f"{PREFIX}/trusted-anchors/{{hash}}"
    return [
        Operation("GET", f"{PREFIX}/trusted-anchors", "getTrustedAnchors", roles_for("getTrustedAnchors"), get_anchors),
        Operation("POST", f"{PREFIX}/trusted-anchors", "uploadTrustedAnchor", roles_for("uploadTrustedAnchor"),
                  upload_anchor),
        Operation("POST", f"{PREFIX}/trusted-anchors/preview", "previewTrustedAnchor",
                  roles_for("previewTrustedAnchor"), preview_anchor),
        Operation("DELETE", one, "deleteTrustedAnchor", roles_for("deleteTrustedAnchor"), delete_anchor),
        Operation("GET", f"{one}/download", "downloadTrustedAnchor", roles_for("downloadTrustedAnchor"),
                  download_anchor),
    ]
