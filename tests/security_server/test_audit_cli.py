"""``fedbus audit``: find, export, verify (container, archive, live log) and verificationconf, with exit codes."""

from __future__ import annotations

import io
import json
import sqlite3
import zipfile
import zlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from central_registry.bootstrap import init_registry
from central_registry.publisher import Publisher, SelfSignedKey
from central_registry.service import RegistryPaths
from central_registry.store import RegistryStore
from security_server.audit_cli import audit
from security_server.confclient.bundle import ConfBundle, save
from security_server.core.archive import build_archive, ArchiveEntry
from security_server.core.evidence import read_verification_conf
from security_server.core.identifiers import ClientId
from security_server.messagelog.asic_export import record_container, record_container_name
from security_server.messagelog.store import FORM_MESSAGE_ZLIB, MessageLogStore
from security_server.serverconf.store import ServerConfStore
from tests.federation.departments import CONSUMER
from tests.federation.evidence import exchange, failed_entry, federation
from tests.security_server.messagelog.stamping import stamp_all

T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10)


def invoke(*args: str) -> Result:
    """Run ``fedbus audit ARGS``."""
    return CliRunner().invoke(audit, list(args), catch_exceptions=False)


@pytest.fixture()
def server(tmp_path: Path) -> Path:
    """A server directory whose message log holds three exchanges (one failed), the first two timestamped."""
    directory = tmp_path / "server"
    directory.mkdir()
    with MessageLogStore(directory / "messagelog.db") as store:
        store.append_entries([*exchange("find-1", T0), *exchange("find-2", T0 + timedelta(minutes=1))])
        stamp_all(store)
        request, _ = exchange("find-3", T0 + timedelta(minutes=2))
        store.append_entries([request, failed_entry("find-3", T0 + timedelta(minutes=2))])
    return directory


@pytest.fixture()
def conf(tmp_path: Path) -> Path:
    """The federation's verification configuration folder."""
    return federation().write_verificationconf(tmp_path / "verificationconf")


def test_find_lists_records_as_a_table(server: Path) -> None:
    """Without filters every record is listed with its outcome and whether it is stamped and archived."""
    result = invoke("find", "--dir", str(server))
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert lines[0].split()[:4] == ["RECORD", "TIME", "QUERY", "ID"] and len(lines) == 7
    assert "fault server.serverproxy.service_failed.timeout" in result.output


def test_find_filters_by_id_client_service_time_and_outcome(server: Path) -> None:
    """--query-id, --client (exact or prefix/), --service, --since/--until and --failed narrow the list."""

    def ids(*args: str) -> list[int]:
        result = invoke("find", "--dir", str(server), "--json", *args)
        assert result.exit_code == 0, result.output
        return [row["record"] for row in json.loads(result.output)]

    assert ids("--query-id", "find-2") == [3, 4]
    assert ids("--client", str(CONSUMER)) == [1, 2, 3, 4, 5, 6]
    assert ids("--client", "SUBSYSTEM:EE/GOV/70000310/") == [1, 2, 3, 4, 5, 6]
    assert ids("--client", str(ClientId("EE", "GOV", "1", "x"))) == []
    assert ids("--service", "SERVICE:EE/GOV/70000311/provider/getRandom/v1") == [1, 2, 3, 4, 5, 6]
    assert ids("--since", (T0 + timedelta(minutes=1)).isoformat(), "--until", (T0 + timedelta(minutes=2)).isoformat()) == [3, 4]
    assert ids("--failed") == [6]
    assert ids("--succeeded", "--query-id", "find-3") == [5]
    rows = json.loads(invoke("find", "--dir", str(server), "--json", "--query-id", "find-1").output)
    assert rows[0]["timestamped"] is True and rows[0]["direction"] == "request"


def test_find_refuses_a_malformed_identifier(server: Path) -> None:
    """A client that is not in display form is a usage error (exit 2)."""
    assert invoke("find", "--dir", str(server), "--client", "not an id").exit_code == 2


def test_export_writes_a_container_or_the_exchange_zip(server: Path, conf: Path, tmp_path: Path) -> None:
    """One record: its container (which verifies); the whole exchange: a zip of request and response."""
    single = tmp_path / "request.asice"
    result = invoke("export", "--dir", str(server), "find-1", "--request-only", "--out", str(single))
    assert result.exit_code == 0 and "find-1-request-1.asice" in result.output
    verified = invoke("verify", "container", str(single), "--conf", str(conf))
    assert verified.exit_code == 0 and verified.output.rstrip().endswith("VERIFIED"), verified.output
    pair = tmp_path / "pair.zip"
    assert invoke("export", "--dir", str(server), "find-1", "--out", str(pair)).exit_code == 0
    with zipfile.ZipFile(pair) as zipped:
        assert zipped.namelist() == ["find-1-request-1.asice", "find-1-response-2.asice"]


def test_export_warns_about_records_not_timestamped_and_refuses_unknown_ids(server: Path, tmp_path: Path) -> None:
    """An unstamped record exports with a warning; an unknown message id is an error (exit 1)."""
    result = CliRunner().invoke(
        audit, ["export", "--dir", str(server), "find-3", "--out", str(tmp_path / "x.asice")]
    )
    assert result.exit_code == 0 and "not timestamped" in result.stderr
    missing = invoke("export", "--dir", str(server), "nope", "--out", str(tmp_path / "y"))
    assert missing.exit_code == 1 and "not_found" in missing.output


def test_verify_container_says_what_was_checked(server: Path, conf: Path, tmp_path: Path) -> None:
    """The text output lists each check (signature, certificate, OCSP, member, timestamp) and ends VERIFIED."""
    path = tmp_path / "c.asice"
    invoke("export", "--dir", str(server), "find-2", "--response-only", "--out", str(path))
    result = invoke("verify", "container", str(path), "--conf", str(conf))
    assert result.exit_code == 0
    for check in ("signature:", "certificate:", "OCSP:", "member:", "timestamp token:", "timestamp hash chain:"):
        assert check in result.output
    document = json.loads(invoke("verify", "container", str(path), "--conf", str(conf), "--json").output)
    assert document["verified"] is True and document["signer"] == "SUBSYSTEM:EE/GOV/70000311/provider"


def test_verify_container_fails_with_exit_1_and_names_the_failure(server: Path, conf: Path, tmp_path: Path) -> None:
    """A container whose message changed: exit 1, the signature check FAILED, NOT VERIFIED with the code."""
    path = tmp_path / "c.asice"
    invoke("export", "--dir", str(server), "find-1", "--request-only", "--out", str(path))
    with zipfile.ZipFile(path) as zipped:
        entries = {name: zipped.read(name) for name in zipped.namelist()}
    entries["message.xml"] = entries["message.xml"].replace(b"find-1", b"find-X")
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zipped:
        for name, data in entries.items():
            zipped.writestr(name, data)
    path.write_bytes(out.getvalue())
    result = invoke("verify", "container", str(path), "--conf", str(conf))
    assert result.exit_code == 1
    assert "FAILED  signature" in result.output and "NOT VERIFIED: invalid_signature_value" in result.output


def test_verify_container_needs_a_conf(tmp_path: Path) -> None:
    """Without --conf there is nothing to trust: usage error."""
    path = tmp_path / "c.asice"
    path.write_bytes(b"x")
    assert invoke("verify", "container", str(path)).exit_code == 2


def _archive(server: Path, prev: str = "") -> tuple[bytes, str]:
    with MessageLogStore(server / "messagelog.db") as store:
        records = [(r, store.timestamp_of(r.id)) for r in store.records() if r.id <= 4]
    built = build_archive(
        [ArchiveEntry(record_container_name(r), record_container(r, s), r.time) for r, s in records],
        prev_digest=prev,
        prev_file="mlog-previous.zip" if prev else "",
    )
    return built.data, built.linking.last_digest


def test_verify_archive_first_and_with_the_previous_digest(server: Path, conf: Path, tmp_path: Path) -> None:
    """--first accepts a first archive (and prints its last digest); --previous must match; --conf checks contents."""
    data, last = _archive(server)
    first = tmp_path / "first.zip"
    first.write_bytes(data)
    result = invoke("verify", "archive", str(first), "--first", "--conf", str(conf))
    assert result.exit_code == 0 and last in result.output and "container find-1-request-1.asice" in result.output
    second_data, _ = _archive(server, prev=last)
    second = tmp_path / "second.zip"
    second.write_bytes(second_data)
    assert invoke("verify", "archive", str(second), "--previous", last).exit_code == 0
    wrong = invoke("verify", "archive", str(second), "--previous", "00" + last[2:])
    assert wrong.exit_code == 1 and "previous_digest_mismatch" in wrong.output
    assert invoke("verify", "archive", str(second), "--first", "--previous", last).exit_code == 2


def test_verify_log_passes_on_an_intact_log(server: Path, conf: Path) -> None:
    """The live chain and every stored timestamp (imprint, hash chain, token) verify: exit 0."""
    result = invoke("verify", "log", "--dir", str(server), "--conf", str(conf))
    assert result.exit_code == 0, result.output
    assert "6 records link" in result.output and "4 timestamped records" in result.output


def test_a_record_edited_in_the_database_breaks_the_chain_at_that_record(server: Path) -> None:
    """An UPDATE of record 3's message from outside: verify log fails, exit 1, and names record 3."""
    with sqlite3.connect(server / "messagelog.db") as conn:
        message, form = conn.execute("SELECT message, stored_form FROM logrecord WHERE id = 3").fetchone()
        # The edit is made in the form the message is stored in (zlib-compressed or as it is).
        compressed = bool((form or 0) & FORM_MESSAGE_ZLIB)
        edited = (zlib.decompress(message) if compressed else message).replace(b"42", b"43")
        assert edited != (zlib.decompress(message) if compressed else message)
        conn.execute("UPDATE logrecord SET message = ? WHERE id = 3", [zlib.compress(edited) if compressed else edited])
    result = invoke("verify", "log", "--dir", str(server))
    assert result.exit_code == 1
    assert "record 3" in result.output and "NOT VERIFIED" in result.output


def test_a_deleted_record_is_named_by_the_one_after_it(server: Path) -> None:
    """A row deleted from the middle: the chain breaks at the next record."""
    with sqlite3.connect(server / "messagelog.db") as conn:
        conn.execute("DELETE FROM logrecord WHERE id = 2")
    result = invoke("verify", "log", "--dir", str(server), "--json")
    assert result.exit_code == 1
    document = json.loads(result.output)
    assert document["verified"] is False and "record 3" in document["checks"][0]["detail"]


def test_a_timestamp_swapped_between_records_is_found(server: Path) -> None:
    """A record pointed at another batch's hash chain (edited outside the link) fails the timestamp check."""
    with sqlite3.connect(server / "messagelog.db") as conn:
        chain = conn.execute("SELECT ts_hashchain FROM logrecord WHERE id = 2").fetchone()[0]
        conn.execute("UPDATE logrecord SET ts_hashchain = ? WHERE id = 1", [chain])
    result = invoke("verify", "log", "--dir", str(server))
    assert result.exit_code == 1 and "record 1" in result.output


def test_verify_log_without_a_log_is_an_error(tmp_path: Path) -> None:
    """A folder without a message log: exit 1 and a clear message."""
    result = invoke("verify", "log", "--dir", str(tmp_path))
    assert result.exit_code == 1 and "no message log" in result.output


def test_verificationconf_exports_the_certificates_of_the_stored_global_configuration(tmp_path: Path) -> None:
    """From a server's verified global configuration: X-Road's layout (readable again) plus CA, OCSP and TSA PEMs."""
    now = datetime.now(UTC)
    paths = init_registry(tmp_path / "registry", "EE", now, public_url="http://127.0.0.1:1", ca_key_size=2048)
    registry = RegistryPaths(paths.root)
    store = RegistryStore(registry.database)
    try:
        publisher = Publisher(
            store, registry.published, SelfSignedKey.load(registry.conf_signing), public_url="http://127.0.0.1:1",
            management_url="https://127.0.0.1:2/managementservice",
            management_cert_der=SelfSignedKey.load(registry.tls).cert_der,
        )
        publication = publisher.build(now)
        anchor = publisher.anchor(now)
    finally:
        store.close()
    server = tmp_path / "server"
    server.mkdir()
    with ServerConfStore(server / "serverconf.db") as conf_store:
        conf_store.initialise(ClientId("EE", "GOV", "70000310"), "ss1", anchor)
    save(server / "globalconf.bundle", ConfBundle(publication.content_type, publication.directory, publication.files))
    out = tmp_path / "verificationconf"
    result = invoke("verificationconf", "--dir", str(server), "--out", str(out))
    assert result.exit_code == 0, result.output
    assert {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()} == {
        "instance-identifier", "EE/shared-params.xml", "ca.pem", "ocsp.pem", "tsa.pem",
    }
    conf = read_verification_conf({name: (out / name).read_bytes() for name in ("instance-identifier", "EE/shared-params.xml")})
    assert conf.instance == "EE" and len(conf.tsa_certs) == 1 and len(conf.approved_roots) == 1
    assert b"BEGIN CERTIFICATE" in (out / "tsa.pem").read_bytes()


def test_verificationconf_without_a_global_configuration_is_an_error(tmp_path: Path) -> None:
    """A server that has not downloaded a configuration yet: exit 1, saying so."""
    server = tmp_path / "server"
    server.mkdir()
    with ServerConfStore(server / "serverconf.db") as conf_store:
        conf_store.initialise(ClientId("EE", "GOV", "70000310"), "ss1", b"<anchor/>")
    result = invoke("verificationconf", "--dir", str(server), "--out", str(tmp_path / "out"))
    assert result.exit_code == 1 and "no global configuration" in result.output


@pytest.fixture()
def sharded(server: Path) -> Path:
    """The server above plus a second shard (``messagelog-1.db``, a second worker's) holding one exchange."""
    with MessageLogStore(server / "messagelog-1.db") as store:
        store.append_entries([*exchange("shard-1", T0 + timedelta(seconds=30))])
        stamp_all(store)
    return server


def test_find_reads_every_shard_in_time_order(sharded: Path) -> None:
    """Records of both shards are listed as one log, ordered by time, each naming its shard."""
    result = invoke("find", "--dir", str(sharded), "--json")
    assert result.exit_code == 0, result.output
    rows = [(row["shard"], row["record"], row["query_id"]) for row in json.loads(result.output)]
    assert rows[:4] == [(0, 1, "find-1"), (0, 2, "find-1"), (1, 1, "shard-1"), (1, 2, "shard-1")] and len(rows) == 8
    table = invoke("find", "--dir", str(sharded)).output
    assert table.splitlines()[0].startswith("SHARD:RECORD") and "1:2" in table


def test_export_finds_an_exchange_in_any_shard(sharded: Path, tmp_path: Path) -> None:
    """An exchange logged by the second worker exports as from a single log."""
    result = invoke("export", "shard-1", "--out", str(tmp_path / "e.zip"), "--dir", str(sharded))
    assert result.exit_code == 0, result.output
    assert len(zipfile.ZipFile(tmp_path / "e.zip").namelist()) == 2


def test_verify_log_verifies_each_shard_chain(sharded: Path, conf: Path) -> None:
    """Each shard's chain verifies from its own anchor; the timestamps of both shards are checked."""
    result = invoke("verify", "log", "--dir", str(sharded), "--conf", str(conf))
    assert result.exit_code == 0, result.output
    assert "chain of shard 0: 6 records" in result.output and "chain of shard 1: 2 records" in result.output
    assert "6 timestamped records" in result.output


def test_a_broken_second_shard_fails_verification_and_is_named(sharded: Path) -> None:
    """An edit in shard 1 fails the whole log and names the shard and record; shard 0 still passes."""
    with sqlite3.connect(sharded / "messagelog-1.db") as conn:
        conn.execute("DELETE FROM logrecord WHERE id = 1")
    document = json.loads(invoke("verify", "log", "--dir", str(sharded), "--json").output)
    assert document["verified"] is False
    checks = {check["name"]: check for check in document["checks"]}
    assert checks["chain of shard 0"]["status"] == "passed" and checks["chain of shard 1"]["status"] == "failed"


def test_verify_log_checks_signatures_only_with_a_conf(server: Path, conf: Path) -> None:
    """With --conf every signed record's signature is verified (each distinct signature once); without, skipped."""
    with_conf = invoke("verify", "log", "--dir", str(server), "--conf", str(conf), "--json")
    checks = {check["name"]: check for check in json.loads(with_conf.output)["checks"]}
    assert checks["signatures"]["status"] == "passed" and checks["signatures"]["detail"].startswith("5 signed records")
    without = invoke("verify", "log", "--dir", str(server), "--jobs", "2")
    assert without.exit_code == 0 and "skipped signatures: not verified" in without.output


def test_a_checkpoint_lets_the_next_run_verify_only_new_records(server: Path, tmp_path: Path) -> None:
    """The checkpoint stops before the first unstamped record; the next run verifies from there on, linked to it."""
    key = tmp_path / "audit.key"
    key.write_bytes(b"s" * 32)
    mark = tmp_path / "checkpoint.json"
    first = invoke("verify", "log", "--dir", str(server), "--checkpoint", str(mark), "--checkpoint-key", str(key))
    assert first.exit_code == 0, first.output
    assert "verified to record 4" in first.output and json.loads(mark.read_text())["shards"][0]["record"] == 4
    second = invoke("verify", "log", "--dir", str(server), "--since-checkpoint", str(mark), "--checkpoint-key", str(key))
    assert second.exit_code == 0, second.output
    assert "record 4 still has its signed link" in second.output and "2 records link from record 5" in second.output


def test_an_edited_checkpoint_or_a_changed_record_is_refused(server: Path, tmp_path: Path) -> None:
    """A checkpoint moved to another record, or a log whose checkpointed record changed: exit 1, saying so."""
    key = tmp_path / "audit.key"
    key.write_bytes(b"s" * 32)
    mark = tmp_path / "checkpoint.json"
    invoke("verify", "log", "--dir", str(server), "--checkpoint", str(mark), "--checkpoint-key", str(key))
    since = ("verify", "log", "--dir", str(server), "--since-checkpoint", str(mark), "--checkpoint-key", str(key))
    original = mark.read_text()
    mark.write_text(original.replace('"record": 4', '"record": 5'))
    edited = invoke(*since)
    assert edited.exit_code == 1 and "checkpoint refused" in edited.output and "does not verify" in edited.output
    mark.write_text(original)
    with sqlite3.connect(server / "messagelog.db") as conn:
        conn.execute("UPDATE logrecord SET link = zeroblob(64) WHERE id = 4")
    changed = invoke(*since)
    assert changed.exit_code == 1 and "record 4 no longer has the link the checkpoint signed" in changed.output
    assert invoke("verify", "log", "--dir", str(server), "--checkpoint", str(mark)).exit_code == 2
