"""The CLI's ``client delete``, ``service update`` and ``localgroup delete`` call the admin functions the API calls."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner, Result

from security_server.admin.server_dir import ServerDirectory
from security_server.cli import server
from security_server.core.identifiers import ClientId, ServiceId

PROVIDER = "SUBSYSTEM:EE/GOV/70000310/registry"
SERVICE = "SERVICE:EE/GOV/70000310/registry/getRandom/v1"
CLIENT = ClientId("EE", "GOV", "70000310", "registry")


def _run(*args: str, ok: bool = True) -> Result:
    result = CliRunner().invoke(server, list(args), catch_exceptions=False)
    assert (result.exit_code == 0) is ok, result.output
    return result


def _initialised(tmp_path: Path, xroad_vectors: Path) -> str:
    directory = str(tmp_path / "ss")
    _run("init", "--dir", directory, "--anchor", str(xroad_vectors / "configuration-anchor1.xml"),
         "--owner", "MEMBER:EE/GOV/70000310", "--server-code", "ss1")
    _run("client", "add", "--dir", directory, PROVIDER)
    _run("service", "add", "--dir", directory, SERVICE, "--url", "http://127.0.0.1:9/soap")
    _run("localgroup", "add", "--dir", directory, PROVIDER, "partners", "--description", "Partners")
    return directory


def test_service_update_and_deletions_through_the_cli(tmp_path: Path, xroad_vectors: Path) -> None:
    """update changes URL and timeout; localgroup delete and client delete remove what the API's DELETEs remove."""
    directory = _initialised(tmp_path, xroad_vectors)
    _run("service", "update", "--dir", directory, SERVICE, "--url", "http://127.0.0.1:10/soap", "--timeout", "30")
    changed = ServerDirectory(Path(directory)).snapshot().service(ServiceId(CLIENT, "getRandom", "v1"))
    assert changed is not None and (changed.url, changed.timeout_seconds) == ("http://127.0.0.1:10/soap", 30)
    _run("localgroup", "delete", "--dir", directory, PROVIDER, "partners")
    assert not ServerDirectory(Path(directory)).snapshot().groups
    _run("client", "delete", "--dir", directory, PROVIDER)
    snapshot = ServerDirectory(Path(directory)).snapshot()
    assert snapshot.client(CLIENT) is None and not snapshot.services


def test_a_registered_client_is_not_deleted_through_the_cli(tmp_path: Path, xroad_vectors: Path) -> None:
    """The CLI refuses what the API refuses: a registered client stays until it is unregistered."""
    from security_server.serverconf.store import ClientState

    directory = _initialised(tmp_path, xroad_vectors)
    with ServerDirectory(Path(directory)).open_store() as store:
        store.set_client_state(CLIENT, ClientState.REGISTERED)
    result = _run("client", "delete", "--dir", directory, PROVIDER, ok=False)
    assert result.exit_code == 1 and "unregister it before deleting it" in result.output
    assert ServerDirectory(Path(directory)).snapshot().client(CLIENT) is not None
