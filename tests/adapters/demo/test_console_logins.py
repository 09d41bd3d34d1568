"""The demo's console logins: one user per role on both security servers and the registry, each password random,
given to the command on standard input only, and printed once beside the consoles' URLs."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

from adapters.demo.commands import Fedbus
from adapters.demo.console_logins import (
    REGISTRY_USERS,
    SERVER_USERS,
    console_urls,
    create_console_logins,
    registry_console_url,
)
from adapters.demo.federation import DemoPorts, Layout
from adapters.demo.snippets import try_it


class Recorder:
    """Stands in for :class:`Fedbus`: keeps each command's arguments and standard input."""

    def __init__(self) -> None:
        self.calls: list[tuple[tuple[str, ...], str | None]] = []

    def run(self, *args: str, stdin: str | None = None, **_: Any) -> None:
        """Record one command."""
        self.calls.append((args, stdin))


def test_each_role_gets_a_user_whose_password_is_only_on_stdin(tmp_path: Path) -> None:
    """Six users on each of the two servers, four on the registry; each role's password differs, is never an
    argument, and is printed exactly once."""
    recorder = Recorder()
    passwords = iter(f"pw-{n:02d}-secret" for n in range(100))
    lines = create_console_logins(cast(Fedbus, recorder), Layout(tmp_path), str, lambda: next(passwords))
    servers = [c for c in recorder.calls if c[0][:3] == ("server", "user", "add")]
    registry = [c for c in recorder.calls if c[0][:3] == ("registry", "user", "add")]
    assert len(servers) == 2 * len(SERVER_USERS) and len(registry) == len(REGISTRY_USERS)
    assert {c[0][c[0].index("--role") + 1] for c in servers} == {role for _, role in SERVER_USERS}
    for args, stdin in recorder.calls:
        assert "--password-stdin" in args and stdin is not None and stdin.endswith("\n")
        assert stdin.strip() not in " ".join(args)
    secrets = {stdin for _, stdin in recorder.calls}
    assert len(secrets) == len(SERVER_USERS) + len(REGISTRY_USERS)
    text = "\n".join(lines)
    assert all(text.count(secret.strip()) == 1 for secret in secrets if secret)
    assert "security servers: service-admin / " in text and "registry: registration-officer / " in text


def test_the_consoles_urls_are_printed_while_the_federation_runs(tmp_path: Path) -> None:
    """Each server's console on its management port, and the registry's on 4100, in the closing lines."""
    ports = DemoPorts(20000)
    assert console_urls(ports) == ["ss-tax console: https://127.0.0.1:20013/console/",
                                   "ss-pop console: https://127.0.0.1:20023/console/",
                                   f"registry console: {registry_console_url()}"]
    closing = "\n".join(try_it(Layout(tmp_path), ports, audit=False))
    assert "https://127.0.0.1:20013/console/" in closing and "https://127.0.0.1:4100/console/" in closing
