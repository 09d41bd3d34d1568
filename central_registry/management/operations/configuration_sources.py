"""``/configuration-sources/{configuration_type}``: the internal source's anchor and the parts of the newest
published configuration, each with its download, an optional part uploaded (central_registry/admin/
configuration_parts.py), and (a fedbus extension) the generations still kept.

fedbus has one configuration source, the internal one; ``EXTERNAL`` answers 404 ``configuration_source_not_found``
(docs/management-api.md lists it as not implemented).
"""

from __future__ import annotations

from central_registry.admin import configuration_parts as configuration_parts_admin
from central_registry.admin import configuration_sources as admin
from central_registry.admin.configuration_parts import declared_parts
from central_registry.admin.configuration_sources import Anchor
from central_registry.management.context import RegistryContext
from central_registry.management.operations.common import PREFIX, positive_int, xroad_time
from central_registry.management.permissions import roles_for
from central_registry.publisher import Publisher
from central_registry.service import RegistryPaths
from security_server.management.api import ApiRequest, ApiResponse, Operation, no_content
from security_server.management.errors import ApiError, bad_request


def _anchor(context: RegistryContext, request: ApiRequest) -> Anchor:
    return admin.internal_anchor(_publisher(context, request))


def _anchor_json(anchor: Anchor) -> dict[str, str]:
    return {"hash": anchor.hash, "created_at": xroad_time(anchor.created_at)}


def _publisher(context: RegistryContext, request: ApiRequest) -> Publisher:
    kind = request.params["configuration_type"]
    if kind not in ("INTERNAL", "EXTERNAL"):
        raise bad_request("invalid_configuration_type", kind)
    publisher = context.publisher()
    if kind == "EXTERNAL" or publisher is None:
        raise ApiError(404, "configuration_source_not_found", kind)
    return publisher


def recreate_anchor(context: RegistryContext, request: ApiRequest) -> ApiResponse:
    """PUT .../anchor/re-create: a new anchor, made now from the current sources (X-Road's
    ``ConfigurationAnchor``)."""
    publisher = _publisher(context, request)
    with context.store():
        anchor = admin.recreate_anchor(publisher, context.now())
    return ApiResponse(200, _anchor_json(anchor))


def download_url(context: RegistryContext, request: ApiRequest) -> ApiResponse:
    """GET .../download-url: X-Road's ``GlobalConfDownloadUrl``, the directory security servers download."""
    return ApiResponse(200, {"url": admin.download_url(_publisher(context, request))})


def get_anchor(context: RegistryContext, request: ApiRequest) -> ApiResponse:
    """GET .../anchor: its hash and time (X-Road's ``ConfigurationAnchorContainer``)."""
    anchor = _anchor(context, request)
    return ApiResponse(200, {"anchor": _anchor_json(anchor)})


def download_anchor(context: RegistryContext, request: ApiRequest) -> ApiResponse:
    """GET .../anchor/download: the anchor file security servers are initialised with."""
    anchor = _anchor(context, request)
    name = f"configuration_anchor_{anchor.created_at.strftime('%Y-%m-%d_%H_%M_%S')}.xml"
    return ApiResponse(200, raw=anchor.xml, content_type="application/xml",
                       headers=((b"Content-Disposition", f'attachment; filename="{name}"'.encode("ascii")),))


def _internal(request: ApiRequest) -> None:
    kind = request.params["configuration_type"]
    if kind not in ("INTERNAL", "EXTERNAL"):
        raise bad_request("invalid_configuration_type", kind)
    if kind == "EXTERNAL":
        raise ApiError(404, "configuration_source_not_found", kind)


def configuration_parts(context: RegistryContext, request: ApiRequest) -> ApiResponse:
    """GET .../configuration-parts: the parts of the newest published configuration."""
    _internal(request)
    parts = admin.configuration_parts(RegistryPaths(context.root).published, declared_parts(context.root))
    return ApiResponse(200, [
        {"content_identifier": p.content_identifier, "file_name": p.file_name, "version": p.version,
         "optional": p.optional, "file_updated_at": xroad_time(p.updated_at)}
        for p in parts
    ])


def configuration_generations(context: RegistryContext, request: ApiRequest) -> ApiResponse:
    """GET .../generations (a fedbus extension, read-only): every generation the registry still keeps, newest
    first, each part with the SHA-512 hash its signed directory listed."""
    _internal(request)
    generations = admin.configuration_generations(RegistryPaths(context.root).published, declared_parts(context.root))
    return ApiResponse(200, [
        {"generation": g.generation, "version": g.version, "published_at": xroad_time(g.published_at),
         "newest": index == 0,
         "parts": [{"content_identifier": h.part.content_identifier, "file_name": h.part.file_name,
                    "optional": h.part.optional, "hash_algorithm": "SHA-512", "hash": h.sha512} for h in g.parts]}
        for index, g in enumerate(generations)
    ])


def download_configuration_part(context: RegistryContext, request: ApiRequest) -> ApiResponse:
    """GET .../configuration-parts/{content_identifier}/{version}/download: the part's file."""
    _internal(request)
    version = positive_int(request.params["version"], "version")
    part, data = admin.configuration_part(RegistryPaths(context.root).published,
                                          request.params["content_identifier"], version, declared_parts(context.root))
    return ApiResponse(200, raw=data, content_type="application/xml",
                       headers=((b"Content-Disposition", f'attachment; filename="{part.file_name}"'.encode("ascii")),))


def upload_configuration_part(context: RegistryContext, request: ApiRequest) -> ApiResponse:
    """POST .../configuration-parts (``ConfigurationPartUpload``: ``content_identifier``, ``file``): a new version of
    an optional part declared in ``configuration-parts/*.ini``, published from the next generation (INTERNAL only;
    400 ``unknown_configuration_part`` or ``configuration_part_validation_failed``)."""
    _internal(request)
    parts = request.form_parts("file")
    if "file" not in parts or "content_identifier" not in parts:
        raise bad_request("invalid_request", "content_identifier", "file")
    identifier = parts["content_identifier"].text("content_identifier").strip()
    with context.store() as store:
        configuration_parts_admin.upload(store, context.root, identifier, parts["file"].data, context.now())
    return no_content()


def operations() -> list[Operation]:
    """The operations of this area."""
    source = f"{PREFIX}/configuration-sources/{{configuration_type}}"
    return [
        Operation("GET", f"{source}/anchor", "getAnchor", roles_for("getAnchor"), get_anchor),
        Operation("PUT", f"{source}/anchor/re-create", "reCreateAnchor", roles_for("reCreateAnchor"), recreate_anchor),
        Operation("GET", f"{source}/download-url", "getDownloadUrl", roles_for("getDownloadUrl"), download_url),
        Operation("GET", f"{source}/anchor/download", "downloadAnchor", roles_for("downloadAnchor"), download_anchor),
        Operation("GET", f"{source}/configuration-parts", "getConfigurationParts", roles_for("getConfigurationParts"),
                  configuration_parts),
        Operation("POST", f"{source}/configuration-parts", "uploadConfigurationParts",
                  roles_for("uploadConfigurationParts"), upload_configuration_part),
        Operation("GET", f"{source}/configuration-parts/{{content_identifier}}/{{version}}/download",
                  "downloadConfigurationParts", roles_for("downloadConfigurationParts"), download_configuration_part),
        Operation("GET", f"{source}/generations", "getConfigurationGenerations", roles_for("getConfigurationGenerations"),
                  configuration_generations),
    ]
