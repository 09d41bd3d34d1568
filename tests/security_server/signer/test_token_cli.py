"""`fedbus server keys ... --token NAME` and `fedbus server token status` with a SoftHSM2 token in the config."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from cryptography.hazmat.primitives.serialization import Encoding

from central_registry.trust.ca import CertKind, DevelopmentCA
from security_server.cli import server
from tests.security_server.signer.softhsm import SoftHsm, SoftHsmToken

OWNER = "MEMBER:EE/GOV/70000310"


def _run(args: list[str], *, ok: bool = True, env: dict[str, str] | None = None) -> Result:
    result = CliRunner().invoke(server, args, env=env, catch_exceptions=False)
    if ok:
        assert result.exit_code == 0, result.output
    return result


@pytest.fixture
def setup(tmp_path: Path, softhsm: SoftHsm, xroad_vectors: Path) -> tuple[list[str], SoftHsmToken]:
    """A server directory and a config with one [pkcs11:hsm1] token whose PIN is in a 0600 file."""
    hsm = softhsm.init_token()
    pin_file = tmp_path / "hsm1.pin"
    pin_file.write_text(hsm.pin + "\n")
    pin_file.chmod(0o600)
    config = tmp_path / "tokens.ini"
    config.write_text(f"[pkcs11:hsm1]\nlibrary = {hsm.module}\ntoken-label = {hsm.label}\npin-file = {pin_file}\n")
    directory = tmp_path / "ss1"
    anchor = xroad_vectors / "configuration-anchor1.xml"
    _run(["init", "--dir", str(directory), "--anchor", str(anchor), "--owner", OWNER, "--server-code", "ss1"])
    return ["--dir", str(directory), "--config", str(config)], hsm


def _json(args: list[str]) -> Any:
    return json.loads(_run([*args, "--json"]).stdout)


def test_generate_csr_import_and_list_a_key_in_the_hsm(setup: tuple[list[str], SoftHsmToken], tmp_path: Path) -> None:
    """keys generate --token hsm1 makes the key in the token; csr, import-cert and list find it there."""
    d, _ = setup
    now = datetime.now(UTC)
    key = _json(["keys", "generate", *d, "--kind", "sign", "--algorithm", "rsa2048", "--token", "hsm1"])
    assert (key["token"], key["owner"], key["certificate"]) == ("hsm1", OWNER, None)
    csr_file = tmp_path / "sign.csr"
    _json(["keys", "csr", *d, key["key_id"], "--name", "Ministry of Tests", "--out", str(csr_file)])
    ca = DevelopmentCA.init(tmp_path / "ca", "Test CA", now, key_size=2048)
    cert_file = tmp_path / "sign.pem"
    cert_file.write_bytes(ca.issue(csr_file.read_bytes(), CertKind.SIGN, now).public_bytes(Encoding.PEM))
    imported = _json(["keys", "import-cert", *d, str(cert_file)])
    assert imported["token"] == "hsm1" and imported["certificate"]["issuer"] == "CN=Test CA"
    soft = _json(["keys", "generate", *d, "--kind", "auth", "--algorithm", "ec-p256"])
    listed = _json(["keys", "list", *d])
    assert [(k["key_id"], k["token"]) for k in listed] == [(soft["key_id"], "soft"), (key["key_id"], "hsm1")]
    assert "hsm1" in _run(["keys", "list", *d]).stdout


def test_token_status_shows_logged_in_then_not_present(setup: tuple[list[str], SoftHsmToken], tmp_path: Path) -> None:
    """token status lists the soft token and hsm1 logged in; with hsm1's directory gone it is not present."""
    d, hsm = setup
    assert [(t["token"], t["status"]) for t in _json(["token", "status", *d])] == [
        ("soft", "logged-in"), ("hsm1", "logged-in"),
    ]
    saved = tmp_path / "saved"
    shutil.copytree(hsm.directory, saved)
    shutil.rmtree(hsm.directory)
    try:
        statuses = {t["token"]: t for t in _json(["token", "status", *d])}
        assert statuses["hsm1"]["status"] == "not-present"
        assert statuses["hsm1"]["problem"].startswith("signer.token_not_available")
    finally:
        shutil.copytree(saved, hsm.directory)
    assert hsm.pin not in _run(["token", "status", *d]).stdout


def test_unknown_token_name_is_refused(setup: tuple[list[str], SoftHsmToken]) -> None:
    """keys generate --token with no such section exits 1 naming the known tokens."""
    d, _ = setup
    result = _run(["keys", "generate", *d, "--kind", "sign", "--token", "nope"], ok=False)
    assert result.exit_code == 1 and "token_not_found" in result.output and "hsm1" in result.output
