"""``fedbus server keys rename/delete/cert``: the CLI faces of PATCH/DELETE /keys/{id} and token-certificates."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from cryptography.hazmat.primitives.serialization import Encoding

from central_registry.trust.ca import CertKind, DevelopmentCA
from security_server.admin import keys
from security_server.admin.initialization import initialise
from security_server.admin.server_dir import ServerDirectory
from security_server.cli import server
from security_server.core.identifiers import ClientId
from security_server.signer.softtoken import KeyKind, KeyNotAvailable
from security_server.signer.token_set import TokenSet
from tests.conftest import XROAD_VECTORS

OWNER = ClientId("EE", "GOV", "70000310")


def _run(args: list[str]) -> Result:
    return CliRunner().invoke(server, args, catch_exceptions=False)


@pytest.fixture
def signed(tmp_path: Path) -> tuple[ServerDirectory, str, str]:
    """An initialised server with a sign key and its certificate: (server dir, key id, certificate hash)."""
    server_dir = ServerDirectory(tmp_path / "ss1")
    initialise(server_dir, (XROAD_VECTORS / "configuration-anchor1.xml").read_bytes(), OWNER, "ss1")
    now = datetime.now(UTC)
    ca = DevelopmentCA.init(tmp_path / "ca", "Test CA", now - timedelta(days=1), key_size=2048)
    key_id = keys.generate_key(server_dir, KeyKind.SIGN).info.key_id
    soft = TokenSet([server_dir.soft_token()])
    cert = ca.issue(keys.request_certificate(soft, key_id, "Org").pem, CertKind.SIGN, now - timedelta(hours=1))
    keys.import_certificate(soft, cert.public_bytes(Encoding.PEM), now=now)
    return server_dir, key_id, keys.certificate_hash(cert)


def test_rename_disable_activate_and_delete_through_the_cli(signed: tuple[ServerDirectory, str, str]) -> None:
    """rename keeps the name; cert disable stops signing, activate restores it; cert delete, then key delete."""
    server_dir, key_id, cert_hash = signed
    where = ["--dir", str(server_dir.path)]
    assert _run(["keys", "rename", *where, key_id, "signing 2026"]).exit_code == 0
    assert keys.find_key(server_dir, key_id).info.name == "signing 2026"
    disabled = _run(["keys", "cert", *where, "disable", cert_hash.lower()])
    assert disabled.exit_code == 0 and "disabled" in disabled.output
    with pytest.raises(KeyNotAvailable):
        server_dir.soft_token().signing_key(OWNER, now=datetime.now(UTC))
    assert _run(["keys", "cert", *where, "activate", cert_hash]).exit_code == 0
    server_dir.soft_token().signing_key(OWNER, now=datetime.now(UTC))
    assert _run(["keys", "cert", *where, "delete", cert_hash]).exit_code == 0
    assert keys.find_key(server_dir, key_id).info.cert is None
    assert _run(["keys", "delete", *where, key_id]).exit_code == 0
    assert list(server_dir.keys_path.glob(f"{key_id}*")) == []


def test_unknown_keys_and_certificates_are_refused(signed: tuple[ServerDirectory, str, str]) -> None:
    """An unknown key id or certificate hash fails with its not-found code; nothing changes."""
    server_dir, key_id, _ = signed
    where = ["--dir", str(server_dir.path)]
    missing = _run(["keys", "delete", *where, "0" * 40])
    assert missing.exit_code != 0 and "key" in missing.output.lower()
    unknown = _run(["keys", "cert", *where, "disable", "AB" * 32])
    assert unknown.exit_code != 0
    assert keys.find_key(server_dir, key_id).info.cert_active
