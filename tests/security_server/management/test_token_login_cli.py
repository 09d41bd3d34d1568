"""``fedbus server token login/logout/set-pin``: the CLI reaches the running server's soft token through its API."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result
from twisted.internet.threads import deferToThread
from twisted.trial import unittest

from security_server.admin.initialization import initialise
from security_server.admin.server_dir import ServerDirectory
from security_server.cli import server
from security_server.core.identifiers import ClientId
from security_server.management.config import ManagementConfig
from security_server.management.credentials import DB_NAME, CredentialStore
from security_server.management.roles import ALL_ROLES
from security_server.management.running_server import ask
from security_server.management.server import ManagementService
from security_server.signer.softtoken_pin import LOGINS
from security_server.signer.token import TokenStatus
from tests.conftest import XROAD_VECTORS
from tests.loopback import REACTOR

PIN = "Secret-1234"


def _run(args: list[str], input_text: str | None = None) -> Result:
    return CliRunner().invoke(server, args, input=input_text, catch_exceptions=False)


def _initialised(directory: Path, pin: str | None) -> ServerDirectory:
    server_dir = ServerDirectory(directory)
    anchor = (XROAD_VECTORS / "configuration-anchor1.xml").read_bytes()
    initialise(server_dir, anchor, ClientId("EE", "GOV", "70000310"), "ss1", token_pin=pin)
    return server_dir


class RunningServerLoginTest(unittest.TestCase):
    """A ManagementService on 127.0.0.1 (a free port) over a server with a soft token PIN, logged out."""

    def setUp(self) -> None:
        self.directory = Path(self.mktemp())  # type: ignore[no-untyped-call]  # trial leaves it unannotated
        self.server_dir = _initialised(self.directory, PIN)
        LOGINS.forget(self.server_dir.keys_path)
        self.service = ManagementService(REACTOR, self.server_dir, ManagementConfig(port=0))
        self.service.startService()
        self.config = ManagementConfig(port=self.service.port)

    def tearDown(self) -> Any:
        LOGINS.forget(self.server_dir.keys_path)
        return self.service.stopService()

    async def test_login_and_logout_reach_the_running_servers_token(self) -> None:
        """ask() logs the running server's token in (a wrong PIN is pin_incorrect) and out, and leaves no API key."""
        token = self.server_dir.soft_token()
        assert token.status() is TokenStatus.LOGGED_OUT
        wrong = await deferToThread(ask, self.directory, self.config, "PUT", "/tokens/soft/login", {"password": "x"})
        assert (wrong.status, wrong.error_code) == (400, "pin_incorrect")
        right = await deferToThread(ask, self.directory, self.config, "PUT", "/tokens/soft/login", {"password": PIN})
        assert (right.status, right.body["logged_in"]) == (200, True)
        assert token.status() is TokenStatus.LOGGED_IN
        out = await deferToThread(ask, self.directory, self.config, "PUT", "/tokens/soft/logout")
        assert (out.status, out.body["logged_in"]) == (200, False)
        assert token.status() is TokenStatus.LOGGED_OUT
        with CredentialStore(self.directory / DB_NAME, ALL_ROLES) as store:
            assert store.api_keys() == ()


def test_login_without_a_running_server_says_so(tmp_path: Path) -> None:
    """token login with no server running fails with server_not_running (a login holds in the server only)."""
    _initialised(tmp_path / "ss1", PIN)
    pin_file = tmp_path / "pin"
    pin_file.write_text(PIN + "\n")
    result = _run(["token", "login", "--dir", str(tmp_path / "ss1"), "--pin-file", str(pin_file)])
    assert result.exit_code != 0 and "server_not_running" in result.output + str(result.stderr)
    LOGINS.forget(tmp_path / "ss1" / "keys")


def test_set_pin_without_a_running_server_encrypts_the_files(tmp_path: Path) -> None:
    """token set-pin on a server without a PIN (asked twice, no echo) sets it on the files; changing it then needs
    the current PIN."""
    server_dir = _initialised(tmp_path / "ss1", None)
    result = _run(["token", "set-pin", "--dir", str(server_dir.path)], input_text=f"{PIN}\n{PIN}\n")
    assert result.exit_code == 0, result.output
    assert PIN not in result.output and server_dir.soft_token().has_pin()
    wrong = _run(["token", "set-pin", "--dir", str(server_dir.path)], input_text="nope\nOther-1\nOther-1\n")
    assert wrong.exit_code != 0
    again = _run(["token", "set-pin", "--dir", str(server_dir.path)], input_text=f"{PIN}\nOther-1\nOther-1\n")
    assert again.exit_code == 0, again.output
    LOGINS.forget(server_dir.keys_path)
    server_dir.soft_token().login("Other-1")
    LOGINS.forget(server_dir.keys_path)


def test_run_logs_a_soft_token_with_a_pin_in_before_starting(tmp_path: Path) -> None:
    """server run with a PIN'd soft token: without --pin-file and no terminal it refuses to start; a wrong PIN is
    refused before anything starts; the right one logs the token in (X-Road's autologin)."""
    from security_server.cli import _login_at_start

    server_dir = _initialised(tmp_path / "ss1", PIN)
    LOGINS.forget(server_dir.keys_path)
    refused = _run(["run", "--dir", str(server_dir.path)])
    assert refused.exit_code != 0 and "--pin-file" in refused.output
    wrong = tmp_path / "wrong"
    wrong.write_text("nope\n")
    bad = _run(["run", "--dir", str(server_dir.path), "--pin-file", str(wrong)])
    assert bad.exit_code != 0 and "pin_incorrect" in bad.output
    right = tmp_path / "right"
    right.write_text(PIN + "\n")
    _login_at_start(server_dir.path, right)
    assert server_dir.soft_token().status() is TokenStatus.LOGGED_IN
    LOGINS.forget(server_dir.keys_path)


def test_run_without_a_pin_starts_as_before(tmp_path: Path) -> None:
    """A soft token without a PIN needs no login at start, and nothing is created in an empty directory."""
    from security_server.cli import _login_at_start

    _login_at_start(tmp_path / "empty", None)
    assert not (tmp_path / "empty").exists()
