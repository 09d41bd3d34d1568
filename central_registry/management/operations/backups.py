"""``/backups``: the registry's database, keys and credentials backed up, listed, downloaded, deleted and restored.

The archive and its checks are :mod:`central_registry.admin.backups`; the answers are both roles'
(:mod:`security_server.management.backup_answers`). A restore answers when the database and files are
in place: the running registry reads the restored database from its next operation on, and signs with restored
keys after a restart (docs/management-api.md).
"""

from __future__ import annotations

from central_registry.admin import backups
from central_registry.admin.backups import BackupExists
from central_registry.management.context import RegistryContext
from central_registry.management.operations.common import PREFIX
from central_registry.management.permissions import roles_for
from security_server.management.api import ApiRequest, ApiResponse, Operation, no_content
from security_server.management.backup_answers import backup_json, download_answer, upload_answer


def get_backups(context: RegistryContext, request: ApiRequest) -> ApiResponse:
    """``GET /backups``: newest first."""
    return ApiResponse(200, [backup_json(b) for b in backups.list_backups(context.root)])


def add_backup(context: RegistryContext, request: ApiRequest) -> ApiResponse:
    """``POST /backups``: make one now."""
    return ApiResponse(201, backup_json(backups.create_backup(context.root, context.now(), context.database_url)))


def delete_backup(context: RegistryContext, request: ApiRequest) -> ApiResponse:
    """``DELETE /backups/{filename}``."""
    backups.delete_backup(context.root, request.params["filename"])
    return no_content()


def download_backup(context: RegistryContext, request: ApiRequest) -> ApiResponse:
    """``GET /backups/{filename}/download``: the archive, as an attachment."""
    filename = request.params["filename"]
    return download_answer(filename, backups.read_backup(context.root, filename))


def restore_backup(context: RegistryContext, request: ApiRequest) -> ApiResponse:
    """``PUT /backups/{filename}/restore``: verified first, then the database copied into the live one (in the
    registry's store thread, so no operation runs meanwhile); no HSM token is logged out."""
    filename = request.params["filename"]
    with context.store():
        backups.restore_backup(context.root, filename, context.database_url)
    return ApiResponse(200, {"hsm_tokens_logged_out": False})


def upload_backup(context: RegistryContext, request: ApiRequest) -> ApiResponse:
    """``POST /backups/upload?ignore_warnings=``: an archive verified, then stored under its name."""
    return upload_answer(
        request, lambda name, data, overwrite: backups.upload_backup(context.root, name, data, overwrite=overwrite),
        BackupExists,
    )


def operations() -> list[Operation]:
    """The operations of this area."""
    one = f"{PREFIX}/backups/{{filename}}"
    return [
        Operation("GET", f"{PREFIX}/backups", "getBackups", roles_for("getBackups"), get_backups),
        Operation("POST", f"{PREFIX}/backups", "addBackup", roles_for("addBackup"), add_backup),
        Operation("POST", f"{PREFIX}/backups/upload", "uploadBackup", roles_for("uploadBackup"), upload_backup),
        Operation("DELETE", one, "deleteBackup", roles_for("deleteBackup"), delete_backup),
        Operation("GET", f"{one}/download", "downloadBackup", roles_for("downloadBackup"), download_backup),
        Operation("PUT", f"{one}/restore", "restoreBackup", roles_for("restoreBackup"), restore_backup),
    ]
