"""``/backups``: configuration and keys backed up, downloaded, restored, and tampered archives refused."""

from __future__ import annotations

import io
import tarfile
from datetime import timedelta

from security_server.admin import keys
from security_server.admin.backups import BACKUP_DIR, HMAC_KEY
from security_server.management.roles import Role
from security_server.signer.softtoken import KeyKind
from tests.backup_archives import rewritten
from tests.security_server.management.harness import Api
from tests.security_server.management.xroad_openapi import error_object

SUB = {"member_class": "GOV", "member_code": "70000310", "subsystem_code": "registry"}


def _backup(api: Api, key: str) -> str:
    answer = api.request("POST", "/api/v1/backups", key=key)
    assert answer.status == 201, answer.body
    filename: str = answer.json()["filename"]
    return filename


def _client_ids(api: Api) -> list[str]:
    return [str(c.id) for c in api.server_dir.snapshot().clients]


def test_a_backup_is_listed_and_downloaded(initialised: Api) -> None:
    """POST /backups makes an archive named by its time; it is listed and downloads byte for byte."""
    key = initialised.api_key(Role.SYSTEM_ADMINISTRATOR)
    filename = _backup(initialised, key)
    assert filename == "conf_backup_20261207-120000.tar"
    assert initialised.request("GET", "/api/v1/backups", key=key).json() == [
        {"filename": filename, "created_at": "2026-12-07T12:00:00.000Z"}]
    download = initialised.request("GET", f"/api/v1/backups/{filename}/download", key=key)
    assert download.status == 200 and download.header("content-type") == "application/octet-stream"
    assert download.body == (initialised.directory / BACKUP_DIR / filename).read_bytes()
    with tarfile.open(fileobj=io.BytesIO(download.body)) as archive:
        assert {"serverconf.db", "management.db", "MANIFEST.json"} <= set(archive.getnames())


def test_restore_brings_back_the_configuration_and_keys(initialised: Api) -> None:
    """A client and a key added after the backup are gone after its restore; a key made before is back."""
    key = initialised.api_key(Role.SYSTEM_ADMINISTRATOR)
    before_key = keys.generate_key(initialised.server_dir, KeyKind.SIGN).info.key_id
    filename = _backup(initialised, key)
    officer = initialised.api_key(Role.REGISTRATION_OFFICER)
    initialised.request("POST", "/api/v1/clients", key=officer, json_body={"client": SUB})
    after_key = keys.generate_key(initialised.server_dir, KeyKind.AUTH).info.key_id
    (initialised.server_dir.keys_path / f"{before_key}.key").unlink(missing_ok=True)
    answer = initialised.request("PUT", f"/api/v1/backups/{filename}/restore", key=key)
    assert answer.status == 200 and answer.json() == {"hsm_tokens_logged_out": False}
    assert _client_ids(initialised) == ["MEMBER:EE/GOV/70000310"]
    on_token = {k.key_id for k in initialised.server_dir.soft_token().list()}
    assert before_key in on_token and after_key not in on_token


def _flip_a_database_byte(archive: bytes) -> bytes:
    """The archive with one byte inside the database member inverted."""
    with tarfile.open(fileobj=io.BytesIO(archive)) as source:
        info = source.getmember("serverconf.db")
    changed = bytearray(archive)
    changed[info.offset_data + info.size // 2] ^= 0xFF
    return bytes(changed)


def test_a_tampered_backup_is_refused_and_nothing_changes(initialised: Api) -> None:
    """A backup whose database, manifest or bytes were changed is 400 invalid_backup_file; nothing is restored."""
    key = initialised.api_key(Role.SYSTEM_ADMINISTRATOR)
    filename = _backup(initialised, key)
    path = initialised.directory / BACKUP_DIR / filename
    original = path.read_bytes()
    officer = initialised.api_key(Role.REGISTRATION_OFFICER)
    initialised.request("POST", "/api/v1/clients", key=officer, json_body={"client": SUB})
    for tampered in (
        rewritten(original, "serverconf.db", b"not the database"),
        rewritten(original, "MANIFEST.json", b'{"manifest": "{}", "hmac": "00"}'),
        _flip_a_database_byte(original),
        b"garbage",
    ):
        path.write_bytes(tampered)
        answer = initialised.request("PUT", f"/api/v1/backups/{filename}/restore", key=key)
        assert answer.status == 400 and error_object(answer.body)["error"]["code"] == "invalid_backup_file"
        assert len(_client_ids(initialised)) == 2


def test_a_backup_from_another_key_is_refused(initialised: Api) -> None:
    """Without this server's HMAC key (another server's backup) the restore is refused."""
    key = initialised.api_key(Role.SYSTEM_ADMINISTRATOR)
    filename = _backup(initialised, key)
    (initialised.directory / HMAC_KEY).write_text("11" * 32)
    answer = initialised.request("PUT", f"/api/v1/backups/{filename}/restore", key=key)
    assert answer.status == 400


def test_backups_are_deleted_and_unknown_names_not_found(initialised: Api) -> None:
    """DELETE removes a backup; an unknown or malformed name is 404."""
    key = initialised.api_key(Role.SYSTEM_ADMINISTRATOR)
    filename = _backup(initialised, key)
    initialised.clock.advance(timedelta(seconds=1).total_seconds())
    assert initialised.request("DELETE", f"/api/v1/backups/{filename}", key=key).status == 204
    assert initialised.request("GET", "/api/v1/backups", key=key).json() == []
    for name in (filename, "..%2Fserverconf.db", "conf_backup_x.tar"):
        answer = initialised.request("GET", f"/api/v1/backups/{name}/download", key=key)
        assert answer.status == 404


def test_backups_are_the_system_administrators(initialised: Api) -> None:
    """Other roles may neither make nor list backups."""
    key = initialised.api_key(Role.SECURITYSERVER_OBSERVER, Role.SERVICE_ADMINISTRATOR)
    assert initialised.request("POST", "/api/v1/backups", key=key).status == 403
    assert initialised.request("GET", "/api/v1/backups", key=key).status == 403


def _multipart(filename: str, data: bytes) -> tuple[bytes, str]:
    boundary = "fedbus-test-boundary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\n"
            "Content-Type: application/x-tar\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def test_an_uploaded_backup_is_verified_stored_and_restorable(initialised: Api) -> None:
    """POST /backups/upload (multipart ``file``) stores a verified archive under its name (201 Backup); it can be
    restored like one made here."""
    key = initialised.api_key(Role.SYSTEM_ADMINISTRATOR)
    filename = _backup(initialised, key)
    path = initialised.directory / BACKUP_DIR / filename
    data = path.read_bytes()
    path.unlink()
    body, content_type = _multipart(filename, data)
    answer = initialised.request("POST", "/api/v1/backups/upload", key=key, body=body, content_type=content_type)
    assert answer.status == 201, answer.body
    assert answer.json() == {"filename": filename, "created_at": "2026-12-07T12:00:00.000Z"}
    assert path.read_bytes() == data
    assert initialised.request("PUT", f"/api/v1/backups/{filename}/restore", key=key).status == 200


def test_an_uploaded_name_taken_is_a_warning_unless_ignored(initialised: Api) -> None:
    """A name that exists is 400 warnings_detected with warning_file_already_exists; ignore_warnings=true replaces."""
    key = initialised.api_key(Role.SYSTEM_ADMINISTRATOR)
    filename = _backup(initialised, key)
    body, content_type = _multipart(filename, (initialised.directory / BACKUP_DIR / filename).read_bytes())
    answer = initialised.request("POST", "/api/v1/backups/upload", key=key, body=body, content_type=content_type)
    assert answer.status == 400 and answer.json()["warnings"] == [
        {"code": "warning_file_already_exists", "metadata": [filename]}]
    again = initialised.request("POST", "/api/v1/backups/upload", key=key, body=body, content_type=content_type,
                                query={"ignore_warnings": "true"})
    assert again.status == 201


def test_an_upload_that_does_not_verify_or_is_misnamed_is_refused(initialised: Api) -> None:
    """A tampered archive or a name that is not a backup's is 400 invalid_backup_file and nothing is stored; a
    body that is not multipart is 400; an observer is 403."""
    key = initialised.api_key(Role.SYSTEM_ADMINISTRATOR)
    filename = _backup(initialised, key)
    path = initialised.directory / BACKUP_DIR / filename
    original = path.read_bytes()
    path.unlink()
    for name, data in ((filename, _flip_a_database_byte(original)), ("../evil.tar", original), (filename, b"junk")):
        body, content_type = _multipart(name, data)
        answer = initialised.request("POST", "/api/v1/backups/upload", key=key, body=body, content_type=content_type)
        assert answer.status == 400 and error_object(answer.body)["error"]["code"] == "invalid_backup_file"
    assert not path.exists() and not (initialised.directory / "evil.tar").exists()
    plain = initialised.request("POST", "/api/v1/backups/upload", key=key, body=original,
                                content_type="application/octet-stream")
    assert plain.status == 400
    body, content_type = _multipart(filename, original)
    refused = initialised.request("POST", "/api/v1/backups/upload", key=initialised.api_key(Role.SECURITYSERVER_OBSERVER),
                                  body=body, content_type=content_type)
    assert refused.status == 403 and not path.exists()
