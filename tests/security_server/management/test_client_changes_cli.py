"""The CLI's ``client disable/enable/rename/orphans``, ``localgroup update`` and ``service endpoint-*`` call the
admin functions the API calls, and refuse what the API refuses."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner, Result

from security_server.admin import services
from security_server.admin.server_dir import ServerDirectory
from security_server.cli import server
from security_server.core.identifiers import ClientId, ServiceId
from security_server.serverconf.store import ClientState, ServiceKind

PROVIDER = "SUBSYSTEM:EE/GOV/70000310/registry"
PETS = "SERVICE:EE/GOV/70000310/registry/pets"
CLIENT = ClientId("EE", "GOV", "70000310", "registry")
OPENAPI = json.dumps({"openapi": "3.0.0", "info": {"title": "Pets", "version": "1"},
                      "paths": {"/pets/{id}": {"get": {"responses": {"200": {"description": "ok"}}}}}}).encode()


def _run(*args: str, ok: bool = True) -> Result:
    result = CliRunner().invoke(server, list(args), catch_exceptions=False)
    assert (result.exit_code == 0) is ok, result.output
    return result


def _initialised(tmp_path: Path, xroad_vectors: Path) -> str:
    directory = str(tmp_path / "ss")
    _run("init", "--dir", directory, "--anchor", str(xroad_vectors / "configuration-anchor1.xml"),
         "--owner", "MEMBER:EE/GOV/70000310", "--server-code", "ss1")
    _run("client", "add", "--dir", directory, PROVIDER)
    return directory


def test_disable_enable_and_rename_through_the_cli(tmp_path: Path, xroad_vectors: Path) -> None:
    """A registered client is disabled and enabled; a saved one is refused; a subsystem is named."""
    directory = _initialised(tmp_path, xroad_vectors)
    server_dir = ServerDirectory(Path(directory))
    refused = _run("client", "disable", "--dir", directory, PROVIDER, ok=False)
    assert "cannot disable" in refused.output
    with server_dir.open_store() as store:
        store.set_client_state(CLIENT, ClientState.REGISTERED)
    _run("client", "disable", "--dir", directory, PROVIDER)
    assert "disabled" in _run("client", "list", "--dir", directory).output
    _run("client", "enable", "--dir", directory, PROVIDER)
    assert server_dir.snapshot().client(CLIENT).state is ClientState.REGISTERED  # type: ignore[union-attr]
    _run("client", "rename", "--dir", directory, PROVIDER, "Population registry")
    assert server_dir.snapshot().subsystem_names[CLIENT] == "Population registry"
    assert _run("client", "orphans", "--dir", directory, PROVIDER).output.strip() == "(none)"
    assert "left no keys" in _run("client", "orphans", "--dir", directory, PROVIDER, "--delete", ok=False).output


def test_group_description_and_endpoints_through_the_cli(tmp_path: Path, xroad_vectors: Path) -> None:
    """localgroup update changes the description; endpoint-add/-update/-delete change the added endpoints and a
    generated one is refused."""
    directory = _initialised(tmp_path, xroad_vectors)
    server_dir = ServerDirectory(Path(directory))
    _run("localgroup", "add", "--dir", directory, PROVIDER, "partners", "--description", "Partners")
    _run("localgroup", "update", "--dir", directory, PROVIDER, "partners", "--description", "Friends")
    assert server_dir.snapshot().groups[0].description == "Friends"
    services.add_service(server_dir, ServiceId(CLIENT, "pets"), url="http://127.0.0.1:9/pets", kind=ServiceKind.REST,
                         description=OPENAPI)
    _run("service", "endpoint-add", "--dir", directory, PETS, "POST /pets")
    _run("service", "endpoint-update", "--dir", directory, PETS, "POST /pets", "PUT /pets")
    pets = server_dir.snapshot().service(ServiceId(CLIENT, "pets"))
    assert pets is not None and [str(e) for e in pets.added_endpoints] == ["PUT /pets"]
    refused = _run("service", "endpoint-delete", "--dir", directory, PETS, "GET /pets/*", ok=False)
    assert "comes from its description" in refused.output
    _run("service", "endpoint-delete", "--dir", directory, PETS, "PUT /pets")
    assert server_dir.snapshot().service(ServiceId(CLIENT, "pets")).added_endpoints == ()  # type: ignore[union-attr]
