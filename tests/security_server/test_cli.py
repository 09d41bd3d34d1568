"""`fedbus server`: an administrator's session end to end through click, with --json output parsed."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from cryptography.hazmat.primitives.serialization import Encoding

from central_registry.trust.ca import CertKind, DevelopmentCA
from security_server.admin.server_dir import DB_NAME
from security_server.cli import server
from security_server.core.identifiers import ClientId, GlobalGroupId, ServiceId
from security_server.serverconf.store import ServerConfStore

OWNER = "MEMBER:EE/GOV/70000310"
PROVIDER = "SUBSYSTEM:EE/GOV/70000310/registry"
CONSUMER = "SUBSYSTEM:EE/COM/12345/crm"
PARTNER = "SUBSYSTEM:EE/COM/67890/portal"
GET_RANDOM = "SERVICE:EE/GOV/70000310/registry/getRandom"


def _run(args: list[str], *, ok: bool = True, env: dict[str, str] | None = None) -> Result:
    result = CliRunner().invoke(server, args, env=env, catch_exceptions=False)
    if ok:
        assert result.exit_code == 0, result.output
    return result


def _json(args: list[str]) -> Any:
    return json.loads(_run([*args, "--json"]).stdout)


def _dump(server_dir: Path) -> list[str]:
    """The whole configuration database as SQL, read through its own connection (sees the WAL too)."""
    conn = sqlite3.connect(server_dir / DB_NAME)
    try:
        return list(conn.iterdump())
    finally:
        conn.close()


def _nobody(client: ClientId, group: GlobalGroupId) -> bool:
    return False


@pytest.fixture
def anchor(xroad_vectors: Path) -> Path:
    """X-Road's own configuration anchor (instance EE)."""
    return xroad_vectors / "configuration-anchor1.xml"


@pytest.fixture
def server_dir(tmp_path: Path, anchor: Path) -> Path:
    """An initialised server directory."""
    directory = tmp_path / "ss1"
    _run(["init", "--dir", str(directory), "--anchor", str(anchor), "--owner", OWNER, "--server-code", "ss1"])
    return directory


def test_an_admin_session_end_to_end(tmp_path: Path, anchor: Path) -> None:
    """init, keys with a CA round trip, clients, services, local groups and ACLs, each step read back as JSON."""
    d = ["--dir", str(tmp_path / "ss1")]
    now = datetime.now(UTC)

    init = _json(["init", *d, "--anchor", str(anchor), "--owner", OWNER, "--server-code", "ss1"])
    assert init["server"] == "SERVER:EE/GOV/70000310/ss1" and init["instance"] == "EE"
    assert len(init["anchor_hash"].split(":")) == 28  # SHA-224, colon-separated pairs

    # Keys: an auth key and the owner's signing key, certified by the development CA.
    ca = DevelopmentCA.init(tmp_path / "ca", "Test CA", now, key_size=2048)
    auth = _json(["keys", "generate", *d, "--kind", "auth", "--algorithm", "ec-p256"])
    sign = _json(["keys", "generate", *d, "--kind", "sign", "--algorithm", "ec-p256"])
    assert (auth["owner"], sign["owner"]) == ("SERVER:EE/GOV/70000310/ss1", OWNER)
    for key, kind in ((auth, CertKind.AUTH), (sign, CertKind.SIGN)):
        csr_file = tmp_path / f"{key['key_id']}.csr"
        csr = _json(["keys", "csr", *d, key["key_id"], "--name", "Ministry of Tests", "--out", str(csr_file)])
        assert "O=Ministry of Tests" in csr["subject"] and csr_file.read_text() == csr["csr"]
        cert_file = tmp_path / f"{key['key_id']}.pem"
        cert_file.write_bytes(ca.issue(csr_file.read_bytes(), kind, now).public_bytes(Encoding.PEM))
        imported = _json(["keys", "import-cert", *d, str(cert_file)])
        assert imported["key_id"] == key["key_id"] and imported["certificate"]["issuer"] == "CN=Test CA"
    listed = _json(["keys", "list", *d])
    assert [(k["kind"], k["certificate"] is not None) for k in listed] == [("auth", True), ("sign", True)]

    # Clients and services.
    assert _json(["client", "add", *d, PROVIDER]) == {"client": PROVIDER, "state": "saved"}
    assert _json(["client", "list", *d]) == [
        {"client": OWNER, "state": "saved", "owner": True},
        {"client": PROVIDER, "state": "saved", "owner": False},
    ]
    added = _json(["service", "add", *d, f"{GET_RANDOM}/v1", "--url", "http://127.0.0.1:8080/random", "--timeout", "30"])
    assert added == {
        "service": f"{GET_RANDOM}/v1",
        "kind": "soap",
        "url": "http://127.0.0.1:8080/random",
        "timeout": 30,
        "enabled": True,
        "disabled_notice": "",
    }
    _run(["service", "add", *d, "SERVICE:EE/GOV/70000310/registry/pets", "--url", "https://pets.example/", "--kind", "rest"])
    _run(["service", "disable", *d, f"{GET_RANDOM}/v1", "--notice", "Back at 14:00"])
    services = {s["service"]: s for s in _json(["service", "list", *d, "--client", PROVIDER])}
    assert services[f"{GET_RANDOM}/v1"]["enabled"] is False
    assert services[f"{GET_RANDOM}/v1"]["disabled_notice"] == "Back at 14:00"
    assert services["SERVICE:EE/GOV/70000310/registry/pets"]["kind"] == "rest"
    _run(["service", "enable", *d, f"{GET_RANDOM}/v1"])
    assert all(s["enabled"] for s in _json(["service", "list", *d]))

    # Local groups and access rights.
    _run(["localgroup", "add", *d, PROVIDER, "partners", "--description", "Partner portals"])
    _run(["localgroup", "add-member", *d, PROVIDER, "partners", PARTNER])
    assert _json(["localgroup", "list", *d]) == [
        {"client": PROVIDER, "code": "partners", "description": "Partner portals", "members": [PARTNER]}
    ]
    for subject in (CONSUMER, "LOCALGROUP:partners", "GLOBALGROUP:EE/security-server-owners"):
        _run(["acl", "grant", *d, GET_RANDOM, subject])
    rights = _json(["acl", "list", *d, "--service", GET_RANDOM])
    assert [(r["service"], r["subject"], r["endpoint"]) for r in rights] == [
        (GET_RANDOM, CONSUMER, None),
        (GET_RANDOM, "LOCALGROUP:partners", None),
        (GET_RANDOM, "GLOBALGROUP:EE/security-server-owners", None),
    ]
    _run(["acl", "revoke", *d, GET_RANDOM, "GLOBALGROUP:EE/security-server-owners"])
    assert len(_json(["acl", "list", *d, "--client", PROVIDER])) == 2

    # What the proxies will see.
    with ServerConfStore(tmp_path / "ss1" / DB_NAME) as store:
        snapshot = store.snapshot()
    service = ServiceId.parse_display(f"{GET_RANDOM}/v1")
    assert snapshot.is_allowed(ClientId.parse_display(CONSUMER), service, in_global_group=_nobody)
    assert snapshot.is_allowed(ClientId.parse_display(PARTNER), service, in_global_group=_nobody)
    assert not snapshot.is_allowed(ClientId.parse_display(CONSUMER).member, service, in_global_group=_nobody)
    owners = GlobalGroupId("EE", "security-server-owners")
    assert not snapshot.is_allowed(ClientId("EE", "GOV", "1", "x"), service, in_global_group=lambda c, g: g == owners)

    status = _json(["status", *d])
    assert status["server"] == "SERVER:EE/GOV/70000310/ss1"
    assert status["clients"] == {"saved": 2}
    assert status["services"] == {"enabled": 2, "disabled": 0}
    assert status["access_rights"] == 2 and status["local_groups"] == 1
    assert status["keys"]["auth_certificate_valid"] is True
    assert status["keys"]["members_with_signing_certificate"] == [OWNER]


def test_tables_are_the_default_output(server_dir: Path) -> None:
    """Without --json the commands print aligned tables with headers."""
    _run(["client", "add", "--dir", str(server_dir), PROVIDER])
    out = _run(["client", "list", "--dir", str(server_dir)]).stdout
    lines = out.splitlines()
    assert lines[0].split() == ["client", "state", "role"]
    assert lines[1].split() == [OWNER, "saved", "owner"] and lines[2].split() == [PROVIDER, "saved"]
    assert "(none)" in _run(["acl", "list", "--dir", str(server_dir)]).stdout


def test_the_directory_comes_from_the_environment(server_dir: Path) -> None:
    """FEDBUS_SERVER_DIR stands in for --dir."""
    status = json.loads(_run(["status", "--json"], env={"FEDBUS_SERVER_DIR": str(server_dir)}).stdout)
    assert status["server"] == "SERVER:EE/GOV/70000310/ss1"


@pytest.mark.parametrize(
    "args",
    [
        ["client", "add", "EE/GOV/70000310/registry"],  # path form is not accepted: display form only
        ["client", "add", OWNER],  # a member where a subsystem is expected
        ["client", "add", "SUBSYSTEM:EE/GOV/../x"],
        ["service", "add", "SERVICE:EE/GOV/1", "--url", "http://a/"],
        ["acl", "grant", GET_RANDOM, "SERVER:EE/GOV/70000310/ss1"],  # a server is not a subject
        ["keys", "generate", "--kind", "encrypt"],
        ["service", "add", GET_RANDOM, "--url", "http://a/", "--timeout", "soon"],
    ],
)
def test_malformed_arguments_exit_2_with_a_usage_error(server_dir: Path, args: list[str]) -> None:
    """Malformed identifiers and options are click usage errors (exit 2) and change nothing."""
    before = _dump(server_dir)
    result = _run([*args, "--dir", str(server_dir)], ok=False)
    assert result.exit_code == 2
    assert "Invalid value" in result.stderr
    assert result.stdout == ""
    assert _dump(server_dir) == before


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["client", "add", "SUBSYSTEM:FI/GOV/1/x"], "not of this server's instance"),
        (["service", "add", GET_RANDOM, "--url", "http://a/"], "not a client of this security server"),
        (["service", "add", GET_RANDOM, "--url", "ftp://a/"], "must use http or https"),
        (["service", "add", GET_RANDOM, "--url", "http://a/", "--timeout", "0"], "timeout"),
        (["acl", "grant", f"{GET_RANDOM}/v1", CONSUMER], "per service code"),
        (["acl", "revoke", GET_RANDOM, CONSUMER], "no such right"),
        (["service", "enable", GET_RANDOM], "has no service"),
        (["keys", "csr", "0" * 40, "--name", "x"], "no key"),
    ],
)
def test_refused_changes_exit_1_with_the_reason(server_dir: Path, args: list[str], message: str) -> None:
    """A change the store or token refuses prints Error: with the reason on stderr and exits 1."""
    before = _dump(server_dir)
    result = _run([*args, "--dir", str(server_dir)], ok=False)
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: ") and message in result.stderr
    assert result.stdout == ""
    assert _dump(server_dir) == before


def test_an_auth_key_takes_no_member(server_dir: Path) -> None:
    """--member with --kind auth is a usage error: an auth key belongs to the server."""
    result = _run(["keys", "generate", "--dir", str(server_dir), "--kind", "auth", "--member", OWNER], ok=False)
    assert result.exit_code == 2 and "--member is for sign keys" in result.stderr
    assert list((server_dir / "keys").iterdir()) == []


def test_a_duplicate_is_refused_with_its_fault_code(server_dir: Path) -> None:
    """Adding the same client twice exits 1 and names the fault code."""
    _run(["client", "add", "--dir", str(server_dir), PROVIDER])
    result = _run(["client", "add", "--dir", str(server_dir), PROVIDER], ok=False)
    assert result.exit_code == 1
    assert "already a client" in result.stderr and "[client.invalid_request]" in result.stderr


def test_init_twice_is_refused(server_dir: Path, anchor: Path) -> None:
    """A directory holds one server; a second init exits 1 and keeps the first identity."""
    result = _run(
        ["init", "--dir", str(server_dir), "--anchor", str(anchor), "--owner", OWNER, "--server-code", "ss2"], ok=False
    )
    assert result.exit_code == 1 and "already initialised" in result.stderr
    assert json.loads(_run(["status", "--dir", str(server_dir), "--json"]).stdout)["server"].endswith("/ss1")


def test_init_refuses_an_anchor_of_another_instance(tmp_path: Path, anchor: Path) -> None:
    """The anchor is for EE; an FI owner is refused before anything is created."""
    directory = tmp_path / "fi"
    result = _run(
        ["init", "--dir", str(directory), "--anchor", str(anchor), "--owner", "MEMBER:FI/GOV/1", "--server-code", "ss1"],
        ok=False,
    )
    assert result.exit_code == 1 and "instance EE" in result.stderr
    assert not directory.exists()


def test_init_refuses_a_file_that_is_not_an_anchor(tmp_path: Path) -> None:
    """Garbage given as the anchor is refused with the global-configuration fault, nothing created."""
    bogus = tmp_path / "anchor.xml"
    bogus.write_bytes(b"<!DOCTYPE x [<!ENTITY a 'b'>]><x>&a;</x>")
    directory = tmp_path / "ss"
    result = _run(
        ["init", "--dir", str(directory), "--anchor", str(bogus), "--owner", OWNER, "--server-code", "ss1"], ok=False
    )
    assert result.exit_code == 1 and "Error:" in result.stderr
    assert not directory.exists()


@pytest.mark.parametrize("args", [["status"], ["client", "list"], ["keys", "list"], ["acl", "grant", GET_RANDOM, CONSUMER]])
def test_commands_before_init_point_to_init(tmp_path: Path, args: list[str]) -> None:
    """Without an initialised directory every command exits 1 and says to run init; no database is created."""
    directory = tmp_path / "empty"
    result = _run([*args, "--dir", str(directory)], ok=False)
    assert result.exit_code == 1 and "fedbus server init" in result.stderr
    assert not (directory / DB_NAME).exists()


def test_csr_without_out_prints_the_pem(server_dir: Path) -> None:
    """keys csr prints the PEM request to stdout when no --out is given."""
    key = json.loads(_run(["keys", "generate", "--dir", str(server_dir), "--kind", "sign", "--algorithm", "ec-p256", "--json"]).stdout)
    out = _run(["keys", "csr", "--dir", str(server_dir), key["key_id"], "--name", "Ministry of Tests"]).stdout
    assert out.startswith("-----BEGIN CERTIFICATE REQUEST-----")

