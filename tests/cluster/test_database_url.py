"""``[database] url`` through the real start-up paths: the CLI, a running security server and a running registry.

Each test writes ``conf.d/local.ini`` in a temporary working directory (where the CLI and ``fedbus server run``
look for it) naming the throwaway PostgreSQL database of :mod:`tests.postgres`.
"""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Iterator

import psycopg
import pytest
from click.testing import CliRunner, Result
from twisted.internet import defer
from twisted.trial import unittest

from central_registry.cli import registry
from central_registry.service import RegistryService
from central_registry.store import RegistryStore
from security_server.cli import server
from security_server.configfile import load_config
from security_server.core.errors import InvalidRequest
from security_server.core.identifiers import ClientId, SecurityServerId
from security_server.replay_store import ClusterReplayGuard
from security_server.serverconf.store import ServerConfStore
from security_server.service import ServerSettings, make_service
from security_server.signer.softtoken import KeyAlgorithm, KeyKind, SoftToken
from tests.federation.ca import issue_into_token, make_ca
from tests.loopback import REACTOR, free_port

OWNER = "MEMBER:EE/GOV/70000310"
CONSUMER = ClientId.parse_display("SUBSYSTEM:EE/GOV/70000310/crm")
reactor: Any = REACTOR


def _local_ini(directory: Path, url: str) -> None:
    (directory / "conf.d").mkdir(exist_ok=True)
    (directory / "conf.d" / "local.ini").write_text(f"[database]\nurl = {url}\n", encoding="utf-8")


def _server(*args: str) -> Result:
    return CliRunner().invoke(server, list(args), catch_exceptions=False)


@pytest.fixture
def on_postgres(request: pytest.FixtureRequest, postgres_url: str, tmp_path: Path, xroad_vectors: Path,
                monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A working directory whose conf.d/local.ini names a fresh PostgreSQL database; set on the test case."""
    monkeypatch.chdir(tmp_path)
    _local_ini(tmp_path, postgres_url)
    request.instance.url = postgres_url
    request.instance.tmp = tmp_path
    request.instance.anchor = xroad_vectors / "configuration-anchor1.xml"
    yield


@pytest.mark.usefixtures("on_postgres")
class SecurityServerOnPostgres(unittest.TestCase):
    """Two security-server nodes whose configuration is one PostgreSQL database."""

    url: str
    tmp: Path
    anchor: Path

    def _init(self, name: str) -> Path:
        root = self.tmp / name
        result = _server("init", "--dir", str(root), "--anchor", str(self.anchor), "--owner", OWNER, "--server-code", "ss1")
        assert result.exit_code == 0, result.output
        return root

    def test_the_cli_writes_the_shared_database_not_a_file(self) -> None:
        """`server init` and `client add` with a database URL write PostgreSQL; no serverconf.db file appears."""
        root = self._init("node1")
        assert not (root / "serverconf.db").exists()
        result = _server("client", "add", "--dir", str(root), str(CONSUMER))
        assert result.exit_code == 0, result.output
        with ServerConfStore(self.tmp / "elsewhere.db", database_url=self.url) as store:
            assert CONSUMER in {client.id for client in store.snapshot().clients}

    @defer.inlineCallbacks
    def test_a_change_through_one_node_reaches_the_other(self) -> Any:
        """Two running nodes on one database: a client added through node 1's CLI is in node 2's next re-read."""
        node1 = self._init("node1")
        now = datetime.now(UTC)
        server_id = SecurityServerId(ClientId.parse_display(OWNER), "ss1")
        ca = make_ca(self.tmp / "ca", now)
        issue_into_token(SoftToken(node1 / "keys"), ca, KeyKind.AUTH, server_id, KeyAlgorithm.EC_P256, now)
        node2 = self.tmp / "node2"
        node2.mkdir()
        shutil.copytree(node1 / "keys", node2 / "keys")  # the documented copy step (docs/clustering.md)
        config = load_config("security-server")
        services = [
            make_service(reactor, ServerSettings.from_config(root, config)) for root in (node1, node2)
        ]
        for svc in services:
            svc.serverconf.startService()  # only the part that re-reads the store: no ports, no downloads
        try:
            assert all(svc.identity.server_code == "ss1" for svc in services)
            assert CONSUMER not in {c.id for c in services[1]._snapshot.clients}
            result = _server("client", "add", "--dir", str(node1), str(CONSUMER))
            assert result.exit_code == 0, result.output
            yield services[1].reload_serverconf()  # what the poll does every serverconf_poll_seconds
            assert CONSUMER in {c.id for c in services[1]._snapshot.clients}
            # Both nodes' server proxies guard replays through the shared database.
            guards = [svc.server_proxy.replay_guard for svc in services]
            assert all(isinstance(guard, ClusterReplayGuard) for guard in guards)
            signed = now - timedelta(seconds=1)
            guards[0].check(b"q" * 16, signed, now)
            with pytest.raises(InvalidRequest):
                guards[1].check(b"q" * 16, signed, now)
        finally:
            for svc in services:
                svc.serverconf.stopService()
                if svc.cluster_replay is not None:
                    svc.cluster_replay.close()


def test_an_unreachable_database_url_stops_server_run_naming_the_setting(tmp_path: Path, xroad_vectors: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """`fedbus server run` with a URL nobody listens on exits with an error naming ``[database] url``."""
    monkeypatch.chdir(tmp_path)
    extra = tmp_path / "run.ini"
    extra.write_text(f"[database]\nurl = postgresql://fedbus:secret@127.0.0.1:{free_port()}/fedbus\n", encoding="utf-8")
    result = CliRunner().invoke(server, ["run", "--dir", str(tmp_path / "ss1"), "--config", str(extra)])
    assert result.exit_code != 0
    text = result.output + repr(result.exception)
    assert "[database] url" in text and "secret" not in text


def test_a_url_that_is_not_postgresql_is_refused_at_start(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A ``mysql://`` URL is refused when the settings are read, naming the setting."""
    monkeypatch.chdir(tmp_path)
    extra = tmp_path / "run.ini"
    extra.write_text("[database]\nurl = mysql://x@127.0.0.1/db\n", encoding="utf-8")
    result = CliRunner().invoke(server, ["run", "--dir", str(tmp_path / "ss1"), "--config", str(extra)])
    assert result.exit_code != 0
    assert "[database] url" in result.output + repr(result.exception)


@pytest.mark.usefixtures("on_postgres")
class RegistryOnPostgres(unittest.TestCase):
    """A registry whose store is a PostgreSQL database."""

    url: str
    tmp: Path

    @defer.inlineCallbacks
    def test_registry_init_member_add_and_serve(self) -> Any:
        """`registry init` and `member add` write PostgreSQL; the running registry publishes from it."""
        root = self.tmp / "registry"
        http_port = free_port()
        result = CliRunner().invoke(registry, ["init", "--registry-dir", str(root), "--instance", "EE", "--no-dev-ca"],
                                    catch_exceptions=False)
        assert result.exit_code == 0, result.output
        assert not (root / "registry.db").exists()
        result = CliRunner().invoke(registry, ["member", "add", "--registry-dir", str(root), OWNER, "--name", "Registry Dept"],
                                    catch_exceptions=False)
        assert result.exit_code == 0, result.output
        svc = RegistryService(reactor, root, http_port=http_port, database_url=self.url)
        svc.startService()
        try:
            yield svc.publish_now()
            assert svc.store is not None
            assert [m.id for m in svc.store.members()] == [ClientId.parse_display(OWNER)]
        finally:
            yield svc.stopService()
        store = RegistryStore(self.tmp / "unused.db", database_url=self.url)
        try:
            assert store.is_initialised()
        finally:
            store.close()


def test_a_schema_from_a_newer_fedbus_refuses_server_run(tmp_path: Path, postgres_url: str, xroad_vectors: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """A shared database migrated by a newer fedbus stops `fedbus server run` and is left untouched."""
    monkeypatch.chdir(tmp_path)
    _local_ini(tmp_path, postgres_url)
    root = tmp_path / "ss1"
    anchor = xroad_vectors / "configuration-anchor1.xml"
    assert _server("init", "--dir", str(root), "--anchor", str(anchor), "--owner", OWNER, "--server-code", "ss1").exit_code == 0
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO schema_migrations (store, version, name, applied_at)"
            " SELECT store, max(version) + 1, 'from the future', '2030-01-01T00:00:00Z' FROM schema_migrations"
            " GROUP BY store"
        )
        before = conn.execute("SELECT count(*) FROM schema_migrations").fetchone()
    result = CliRunner().invoke(server, ["run", "--dir", str(root)])
    assert result.exit_code != 0
    assert "newer fedbus" in result.output + repr(result.exception)
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM schema_migrations").fetchone() == before
