"""``/backups``: the configuration and keys backed up, listed, downloaded, deleted and restored.

The archive and its checks are :mod:`security_server.admin.backups`, the answers shared with the registry
:mod:`security_server.management.backup_answers`. An uploaded backup (``/backups/upload``,
``multipart/form-data`` with the archive as ``file``) is verified before it is stored. ``/backups/ext`` is not
implemented.
"""

from __future__ import annotations

from security_server.admin import backups
from security_server.admin.backups import BackupExists
from security_server.management.api import (
    ApiRequest,
    ApiResponse,
    Operation,
    no_content,
)
from security_server.management.backup_answers import backup_json, download_answer, upload_answer
from security_server.management.context import OperationContext
from security_server.management.operations.common import PREFIX
from security_server.management.permissions import roles_for


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


def download_backup(context: OperationContext, request: ApiRequest) -> ApiResponse:
    """``GET /backups/{filename}/download``: the archive, as an attachment."""
    filename = request.params["filename"]
    return download_answer(filename, backups.read_backup(context.server_dir, filename))


def restore_backup(context: OperationContext, request: ApiRequest) -> ApiResponse:
    """``PUT /backups/{filename}/restore``: verified first; no HSM token is logged out by a restore."""
    backups.restore_backup(context.server_dir, request.params["filename"])
    return ApiResponse(200, {"hsm_tokens_logged_out": False})


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
