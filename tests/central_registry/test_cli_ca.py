"""``fedbus registry ca``: init, issue, revoke, list, ocsp-cert and tsa-cert through click's CliRunner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from cryptography import x509
from cryptography.x509.oid import NameOID

from central_registry.cli import registry
from security_server.core.certprofile import auth_subject, member_from_signing_cert, server_from_auth_cert, signing_subject
from security_server.core.identifiers import ClientId, SecurityServerId
from tests.federation.pki import make_csr

MEMBER = ClientId("EE", "GOV", "70000310")
SERVER = SecurityServerId(MEMBER, "ss1")


def run(*args: str) -> Result:
    """Invoke ``registry`` with ``args``."""
    return CliRunner().invoke(registry, list(args), catch_exceptions=False)


@pytest.fixture(scope="module")
def ca_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CA made once through the CLI for this module (2048-bit for speed)."""
    directory = tmp_path_factory.mktemp("cli") / "ca"
    result = run("ca", "init", "--dir", str(directory), "--name", "CLI CA", "--key-size", "2048")
    assert result.exit_code == 0, result.output
    assert "initialised CA CN=CLI CA" in result.output
    return directory


def issue(ca_dir: Path, tmp_path: Path, subject: x509.Name, kind: str) -> tuple[Result, Path]:
    """Issue a certificate of ``kind`` for ``subject`` through the CLI."""
    csr = tmp_path / "req.csr"
    csr.write_bytes(make_csr(subject))
    out = tmp_path / f"{kind}.pem"
    return run("ca", "issue", "--dir", str(ca_dir), "--csr", str(csr), "--kind", kind, "--out", str(out)), out


def test_issue_signing_and_auth(ca_dir: Path, tmp_path: Path) -> None:
    """`ca issue` writes PEM certificates whose subjects read back as the member and the server."""
    result, out = issue(ca_dir, tmp_path, signing_subject(MEMBER, "Ministry"), "sign")
    assert result.exit_code == 0, result.output
    assert member_from_signing_cert(x509.load_pem_x509_certificate(out.read_bytes())) == MEMBER
    result, out = issue(ca_dir, tmp_path, auth_subject(SERVER, "Ministry"), "auth")
    assert result.exit_code == 0, result.output
    assert server_from_auth_cert(x509.load_pem_x509_certificate(out.read_bytes())) == SERVER


def test_issue_refuses_a_csr_outside_the_profile(ca_dir: Path, tmp_path: Path) -> None:
    """A CSR whose subject does not fit the profile fails with a non-zero exit and a clear message."""
    result, out = issue(ca_dir, tmp_path, x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "x")]), "sign")
    assert result.exit_code == 1
    assert "does not fit the profile" in result.output
    assert not out.exists()


def test_issue_refuses_a_file_that_is_no_csr(ca_dir: Path, tmp_path: Path) -> None:
    """A file that is not a CSR fails with a message, not a traceback."""
    bogus = tmp_path / "bogus.csr"
    bogus.write_bytes(b"hello")
    result = run("ca", "issue", "--dir", str(ca_dir), "--csr", str(bogus), "--kind", "sign", "--out", str(tmp_path / "o"))
    assert result.exit_code == 1
    assert "cannot be decoded" in result.output


def test_list_and_revoke(ca_dir: Path, tmp_path: Path) -> None:
    """`ca list --json` shows issued certificates; `ca revoke` marks one revoked with its reason."""
    result, out = issue(ca_dir, tmp_path, signing_subject(MEMBER, "Ministry"), "sign")
    serial = f"{x509.load_pem_x509_certificate(out.read_bytes()).serial_number:X}"
    result = run("ca", "revoke", "--dir", str(ca_dir), "--serial", serial, "--reason", "keyCompromise")
    assert result.exit_code == 0, result.output
    records = {r["serial"]: r for r in json.loads(run("ca", "list", "--dir", str(ca_dir), "--json").output)}
    assert records[serial]["status"] == "revoked" and records[serial]["reason"] == "keyCompromise"
    assert records[serial]["kind"] == "sign"
    table = run("ca", "list", "--dir", str(ca_dir)).output
    assert table.splitlines()[0].split()[:3] == ["SERIAL", "KIND", "STATUS"]
    row = next(line for line in table.splitlines() if line.startswith(serial + " "))
    assert row.split()[1:4] == ["sign", "revoked", "(keyCompromise)"]


def test_revoke_errors_exit_non_zero(ca_dir: Path) -> None:
    """Revoking an unknown serial or a non-hex serial fails with a message."""
    unknown = run("ca", "revoke", "--dir", str(ca_dir), "--serial", "ABCDEF")
    assert unknown.exit_code == 1 and "no certificate with serial ABCDEF" in unknown.output
    bad = run("ca", "revoke", "--dir", str(ca_dir), "--serial", "xyz")
    assert bad.exit_code == 1 and "not a hex number" in bad.output
    reason = run("ca", "revoke", "--dir", str(ca_dir), "--serial", "AB", "--reason", "removeFromCRL")
    assert reason.exit_code == 2  # click refuses a choice outside the list


def test_init_twice_is_refused(ca_dir: Path) -> None:
    """`ca init` on an existing CA fails and leaves it alone."""
    result = run("ca", "init", "--dir", str(ca_dir), "--key-size", "2048")
    assert result.exit_code == 1 and "already holds a CA" in result.output


def test_commands_on_a_directory_without_a_ca(tmp_path: Path) -> None:
    """Every command on a directory without a CA fails with the same clear message."""
    result = run("ca", "list", "--dir", str(tmp_path))
    assert result.exit_code == 1 and "holds no CA" in result.output


def test_ocsp_and_tsa_certificates(ca_dir: Path) -> None:
    """`ca ocsp-cert` and `ca tsa-cert` make the service certificates, listed with their kinds."""
    assert run("ca", "ocsp-cert", "--dir", str(ca_dir)).exit_code == 0
    assert run("ca", "tsa-cert", "--dir", str(ca_dir)).exit_code == 0
    kinds = {r["kind"] for r in json.loads(run("ca", "list", "--dir", str(ca_dir), "--json").output)}
    assert {"ocsp", "tsa"} <= kinds
    assert (ca_dir / "ocsp-cert.pem").is_file() and (ca_dir / "tsa-cert.pem").is_file()
