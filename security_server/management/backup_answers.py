"""The answers both roles' ``/backups`` operations give: X-Road's ``Backup`` JSON, the uploaded archive of a
``multipart/form-data`` body, the upload's warning for a name taken, and the download.

Role-neutral (the security server's :mod:`security_server.management.operations.backups` and the registry's
:mod:`central_registry.management.operations.backups`): each role hands in its own archive functions.
"""

from __future__ import annotations

from typing import Any, Callable

from security_server.edge.backup_archive import Backup
from security_server.management.api import ApiRequest, ApiResponse
from security_server.management.certificates import xroad_time
from security_server.management.errors import bad_request


def backup_json(backup: Backup) -> dict[str, Any]:
    """X-Road's ``Backup``."""
    return {"filename": backup.filename, "created_at": xroad_time(backup.created_at)}


def uploaded_file(request: ApiRequest) -> tuple[str, bytes]:
    """The ``file`` part of a ``multipart/form-data`` body: its file name and bytes (400 when there is none)."""
    content_type = request.content_type or ""
    if not content_type.lower().startswith("multipart/form-data"):
        raise bad_request("invalid_content_type", "multipart/form-data with the archive as 'file'")
    part = request.form_parts("file").get("file")
    if part is None:
        raise bad_request("missing_field", "file")
    if not part.filename:
        raise bad_request("invalid_multipart", "file")
    return part.filename, part.data


def upload_answer(
    request: ApiRequest, store: Callable[[str, bytes, bool], Backup], exists: type[Exception]
) -> ApiResponse:
    """The answer to ``POST /backups/upload?ignore_warnings=`` (both roles): the uploaded archive handed to
    ``store`` (file name, bytes, overwrite), which raises ``exists`` for a name taken: X-Road's warning
    ``warning_file_already_exists`` (400) unless ``ignore_warnings=true`` (then replaced)."""
    filename, data = uploaded_file(request)
    try:
        stored = store(filename, data, request.query_bool("ignore_warnings", False))
    except exists:
        return ApiResponse(400, {"status": 400, "error": {"code": "warnings_detected"},
                                 "warnings": [{"code": "warning_file_already_exists", "metadata": [filename]}]})
    return ApiResponse(201, backup_json(stored))


def download_answer(filename: str, data: bytes) -> ApiResponse:
    """The answer to ``GET /backups/{filename}/download`` (both roles): the archive, as an attachment."""
    disposition = f'attachment; filename="{filename}"'.encode("ascii")
    return ApiResponse(200, raw=data, content_type="application/octet-stream",
                       headers=((b"Content-Disposition", disposition),))
