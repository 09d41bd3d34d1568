"""``/backups``: the configuration and keys backed up, listed, downloaded, deleted and restored.

The archive and its checks are :mod:`security_server.admin.backups`. An uploaded backup (``/backups/upload``,
``multipart/form-data`` with the archive as ``file``) is verified before it is stored. ``/backups/ext`` is not
implemented.
"""

from __future__ import annotations

from typing import Any, Callable

from security_server.admin import backups
from security_server.admin.backups import Backup, BackupExists
from security_server.management.api import (
    ApiRequest,
    ApiResponse,
    Operation,
    no_content,
)
from security_server.management.context import OperationContext
from security_server.management.errors import bad_request
from security_server.management.operations.common import PREFIX, xroad_time
from security_server.management.permissions import roles_for


def backup_json(backup: Backup) -> dict[str, Any]:
    """X-Road's ``Backup``."""
    return {"filename": backup.filename, "created_at": xroad_time(backup.created_at)}


def get_backups(context: OperationContext, request: ApiRequest) -> ApiResponse:
    """``GET /backups``."""
    return ApiResponse(200, [backup_json(b) for b in backups.list_backups(context.server_dir)])


def add_backup(context: OperationContext, request: ApiRequest) -> ApiResponse:
    """``POST /backups``: make one now."""
    return ApiResponse(201, backup_json(backups.create_backup(context.server_dir, context.now())))


def delete_backup(context: OperationContext, request: ApiRequest) -> ApiResponse:
    """``DELETE /backups/{filename}``."""
    backups.delete_backup(context.server_dir, request.params["filename"])
    return no_content()


def download_answer(filename: str, data: bytes) -> ApiResponse:
    """The answer to ``GET /backups/{filename}/download`` (both roles): the archive, as an attachment."""
    disposition = f'attachment; filename="{filename}"'.encode("ascii")
    return ApiResponse(200, raw=data, content_type="application/octet-stream",
                       headers=((b"Content-Disposition", disposition),))


def download_backup(context: OperationContext, request: ApiRequest) -> ApiResponse:
    """``GET /backups/{filename}/download``: the archive, as an attachment."""
    filename = request.params["filename"]
    return download_answer(filename, backups.read_backup(context.server_dir, filename))


def restore_backup(context: OperationContext, request: ApiRequest) -> ApiResponse:
    """``PUT /backups/{filename}/restore``: verified first; no HSM token is logged out by a restore."""
    backups.restore_backup(context.server_dir, request.params["filename"])
    return ApiResponse(200, {"hsm_tokens_logged_out": False})


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


def upload_backup(context: OperationContext, request: ApiRequest) -> ApiResponse:
    """``POST /backups/upload?ignore_warnings=``: an archive verified, then stored under its name."""
    return upload_answer(
        request, lambda name, data, overwrite: backups.upload_backup(context.server_dir, name, data, overwrite=overwrite),
        BackupExists,
    )


_ONE = f"{PREFIX}/backups/{{filename}}"
OPERATIONS = (
    Operation("GET", f"{PREFIX}/backups", "getBackups", roles_for("getBackups"), get_backups),
    Operation("POST", f"{PREFIX}/backups", "addBackup", roles_for("addBackup"), add_backup),
    Operation("POST", f"{PREFIX}/backups/upload", "uploadBackup", roles_for("uploadBackup"), upload_backup),
    Operation("DELETE", _ONE, "deleteBackup", roles_for("deleteBackup"), delete_backup),
    Operation("GET", f"{_ONE}/download", "downloadBackup", roles_for("downloadBackup"), download_backup),
    Operation("PUT", f"{_ONE}/restore", "restoreBackup", roles_for("restoreBackup"), restore_backup),
)
