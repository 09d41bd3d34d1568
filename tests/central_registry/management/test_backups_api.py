"""The registry's ``/backups``: database, keys and credentials backed up, downloaded, restored; hostile archives
and names refused."""

from __future__ import annotations

import io
import sqlite3
import tarfile
from datetime import timedelta
from pathlib import Path

import pytest

from central_registry.admin import backups, initialization
from central_registry.management.roles import Role
from central_registry.store import RegistryStore
from security_server.edge.backup_archive import BACKUP_DIR, HMAC_KEY, BackupFolder, BackupKind
from security_server.management.config import ManagementConfig
from tests.backup_archives import rewritten
from tests.central_registry.management.conftest import INSTANCE
from tests.central_registry.management.harness import START, RegistryApi, multipart_form

MEMBER = {"member_id": {"member_class": "GOV", "member_code": "70000310"}, "member_name": "Riik"}


@pytest.fixture
def roomy(tmp_path: Path) -> RegistryApi:
    """An initialised registry whose API takes bodies of a few megabytes (a whole backup)."""
    api = RegistryApi(tmp_path / "roomy", config=ManagementConfig(port=0, max_body_bytes=4 * 1024 * 1024))
    initialization.initialise(api.root, INSTANCE, "cs.example.org", "1234", START)
    return api


def _backup(api: RegistryApi, key: str) -> str:
    answer = api.request("POST", "/api/v1/backups", key=key)
    assert answer.status == 201, answer.body
    filename: str = answer.json()["filename"]
    return filename


def _members(api: RegistryApi) -> list[str]:
    store = RegistryStore(api.paths.database)
    try:
        return [str(m.id) for m in store.members()]
    finally:
        store.close()


def _with_class(registry: RegistryApi) -> None:
    store = RegistryStore(registry.paths.database)
    try:
        store.db.execute("INSERT INTO member_classes (code, description) VALUES ('GOV', 'Government')")
    finally:
        store.close()


def test_a_backup_holds_the_database_keys_and_credentials(registry: RegistryApi, admin_key: str) -> None:
    """POST /backups makes a listed archive with registry.db, the signing and TLS keys and the API credentials,
    and never the archive key."""
    filename = _backup(registry, admin_key)
    assert filename == "conf_backup_20261207-120000.tar"
    listed = registry.request("GET", "/api/v1/backups", key=admin_key).json()
    assert listed == [{"filename": filename, "created_at": "2026-12-07T12:00:00.000Z"}]
    download = registry.request("GET", f"/api/v1/backups/{filename}/download", key=admin_key)
    assert download.status == 200 and download.header("content-type") == "application/octet-stream"
    with tarfile.open(fileobj=io.BytesIO(download.body)) as archive:
        names = set(archive.getnames())
    assert {"registry.db", "management.db", "MANIFEST.json", "conf-signing/key.pem", "tls/key.pem"} <= names
    assert HMAC_KEY not in names and not any(n.startswith("published") for n in names)


def test_restore_brings_back_the_database_under_an_open_store(registry: RegistryApi, admin_key: str) -> None:
    """A restore copies the backup's database into the live file: a store kept open sees the old state again."""
    _with_class(registry)
    filename = _backup(registry, admin_key)
    officer = registry.api_key(Role.REGISTRATION_OFFICER)
    assert registry.request("POST", "/api/v1/members", json_body=MEMBER, key=officer).status == 201
    open_store = RegistryStore(registry.paths.database)
    try:
        assert [str(m.id) for m in open_store.members()] == ["MEMBER:EE/GOV/70000310"]
        answer = registry.request("PUT", f"/api/v1/backups/{filename}/restore", key=admin_key)
        assert answer.status == 200 and answer.json() == {"hsm_tokens_logged_out": False}
        assert open_store.members() == []
    finally:
        open_store.close()


def test_restore_puts_back_key_files(registry: RegistryApi, admin_key: str) -> None:
    """Key files changed or added after the backup are put back as they were, the added ones removed."""
    filename = _backup(registry, admin_key)
    signing = registry.paths.conf_signing / "key.pem"
    before = signing.read_bytes()
    signing.write_bytes(b"changed")
    (registry.paths.conf_signing / "extra.pem").write_bytes(b"extra")
    assert registry.request("PUT", f"/api/v1/backups/{filename}/restore", key=admin_key).status == 200
    assert signing.read_bytes() == before and not (registry.paths.conf_signing / "extra.pem").exists()


def test_a_tampered_backup_is_refused_and_nothing_changes(registry: RegistryApi, admin_key: str) -> None:
    """A changed database, key or manifest in the archive: 400 invalid_backup_file, the live state untouched."""
    _with_class(registry)
    filename = _backup(registry, admin_key)
    path = registry.root / BACKUP_DIR / filename
    good = path.read_bytes()
    officer = registry.api_key(Role.REGISTRATION_OFFICER)
    registry.request("POST", "/api/v1/members", json_body=MEMBER, key=officer)
    for name, content in (("registry.db", b"x" * 100), ("conf-signing/key.pem", b"evil"),
                          ("MANIFEST.json", b'{"manifest": "{}", "hmac": "00"}')):
        path.write_bytes(rewritten(good, name, content))
        answer = registry.request("PUT", f"/api/v1/backups/{filename}/restore", key=admin_key)
        assert answer.status == 400 and answer.json()["error"]["code"] == "invalid_backup_file", name
        assert _members(registry) == ["MEMBER:EE/GOV/70000310"]


def test_a_security_servers_archive_is_not_a_registry_backup(registry: RegistryApi, admin_key: str) -> None:
    """An archive of the other role's format, authenticated with this registry's key, is still refused."""
    made = _backup(registry, admin_key)
    other = BackupFolder(registry.root, BackupKind("fedbus-conf-backup-1", "registry.db", lambda _: True,
                                                    backups.BackupNotFound, backups.BackupExists,
                                                    backups.InvalidBackup))
    archive = other.write({"registry.db": b"db"}, registry.context.now() + timedelta(seconds=5))
    assert archive.filename != made
    answer = registry.request("PUT", f"/api/v1/backups/{archive.filename}/restore", key=admin_key)
    assert answer.status == 400 and answer.json()["error"]["code"] == "invalid_backup_file"


def test_names_that_are_not_backups_are_not_found(registry: RegistryApi, admin_key: str) -> None:
    """Path traversal and other names never reach the file system: 404 backup_file_not_found."""
    (registry.root / "registry.tar").write_bytes(b"secret")
    for name in ("..%2Fregistry.db", "..", "registry.tar", "conf_backup_20261207-120000.tar.gz",
                 "conf_backup_20261207-120000.tar"):
        answer = registry.request("GET", f"/api/v1/backups/{name}/download", key=admin_key, check=False)
        assert answer.status == 404, name
        assert answer.json()["error"]["code"] in ("backup_file_not_found", "not_found"), name
    assert registry.request("DELETE", "/api/v1/backups/..", key=admin_key).status == 404


def test_an_uploaded_backup_is_verified_stored_and_restorable(roomy: RegistryApi) -> None:
    """An archive downloaded and uploaded again is stored under its name; a name taken is X-Road's warning."""
    registry, admin_key = roomy, roomy.api_key(Role.SYSTEM_ADMINISTRATOR)
    filename = _backup(registry, admin_key)
    data = registry.request("GET", f"/api/v1/backups/{filename}/download", key=admin_key).body
    body, content_type = multipart_form({}, {"file": data}, {"file": filename})
    taken = registry.request("POST", "/api/v1/backups/upload", body=body, content_type=content_type, key=admin_key)
    assert taken.status == 400 and taken.json()["warnings"][0]["code"] == "warning_file_already_exists"
    answer = registry.request("POST", "/api/v1/backups/upload", body=body, content_type=content_type, key=admin_key,
                              query={"ignore_warnings": "true"})
    assert answer.status == 201 and answer.json()["filename"] == filename
    assert registry.request("PUT", f"/api/v1/backups/{filename}/restore", key=admin_key).status == 200


def test_hostile_uploads_are_refused(roomy: RegistryApi) -> None:
    """A misnamed, tampered or garbage upload is refused and nothing is stored."""
    registry, admin_key = roomy, roomy.api_key(Role.SYSTEM_ADMINISTRATOR)
    filename = _backup(registry, admin_key)
    data = (registry.root / BACKUP_DIR / filename).read_bytes()
    cases = {"../evil.tar": data, "conf_backup_20261207-130000.tar": rewritten(data, "registry.db", b"x"),
             "conf_backup_20261207-140000.tar": b"not a tar"}
    for name, content in cases.items():
        body, content_type = multipart_form({}, {"file": content}, {"file": name})
        answer = registry.request("POST", "/api/v1/backups/upload", body=body, content_type=content_type,
                                  key=admin_key)
        assert answer.status == 400 and answer.json()["error"]["code"] == "invalid_backup_file", name
    assert sorted(p.name for p in (registry.root / BACKUP_DIR).iterdir()) == [filename]


def test_backups_are_the_system_administrators(registry: RegistryApi) -> None:
    """Other roles get 403 on every backup operation."""
    for role in (Role.SECURITY_OFFICER, Role.REGISTRATION_OFFICER, Role.OBSERVER):
        key = registry.api_key(role)
        assert registry.request("GET", "/api/v1/backups", key=key).status == 403
        assert registry.request("POST", "/api/v1/backups", key=key).status == 403
        assert registry.request("PUT", "/api/v1/backups/conf_backup_20261207-120000.tar/restore", key=key).status == 403


def test_a_postgresql_store_is_refused_with_a_clear_error(registry: RegistryApi) -> None:
    """With the store in PostgreSQL, making or restoring a backup is 400 with X-Road's codes, nothing written."""
    with pytest.raises(backups.BackupRefused) as refused:
        backups.create_backup(registry.root, registry.context.now(), "postgresql://db.example.org/registry")
    assert refused.value.api_code == "backup_generation_failed" and "pg_dump" in refused.value.message
    with pytest.raises(backups.RestoreRefused) as not_restored:
        backups.restore_backup(registry.root, "conf_backup_20261207-120000.tar", "postgresql://db.example.org/r")
    assert not_restored.value.api_code == "restore_process_failed"
    assert not (registry.root / BACKUP_DIR).exists()


def test_an_upload_over_the_body_limit_is_413(registry: RegistryApi, admin_key: str) -> None:
    """An archive larger than [management] max-body-bytes is refused before the operation runs."""
    big = registry.request("POST", "/api/v1/backups/upload", body=b"x" * (registry.config.max_body_bytes + 1),
                           content_type="multipart/form-data; boundary=b", key=admin_key, check=False)
    assert big.status == 413 and big.json()["error"]["code"] == "request_too_large"
    assert not (registry.root / BACKUP_DIR).exists()


def test_a_backup_from_before_a_migration_is_migrated_when_restored(registry: RegistryApi, admin_key: str) -> None:
    """A backup whose database lacks a later migration's table has it again right after the restore."""
    filename = _backup(registry, admin_key)
    path = registry.root / BACKUP_DIR / filename
    with tarfile.open(fileobj=io.BytesIO(path.read_bytes())) as archive:
        handle = archive.extractfile("registry.db")
        assert handle is not None
        old = registry.root / "old.db"
        old.write_bytes(handle.read())
    connection = sqlite3.connect(old)
    connection.execute("DROP TABLE trusted_anchors")
    connection.execute("ALTER TABLE subsystems DROP COLUMN name")
    connection.execute("DELETE FROM schema_migrations WHERE store = 'registry' AND version = 4")
    connection.commit()
    connection.close()
    folder = BackupFolder(registry.root, backups.KIND)
    made = folder.write({"registry.db": old.read_bytes()}, registry.context.now() + timedelta(seconds=1))
    assert registry.request("PUT", f"/api/v1/backups/{made.filename}/restore", key=admin_key).status == 200
    assert registry.request("GET", "/api/v1/trusted-anchors", key=admin_key).json() == []
