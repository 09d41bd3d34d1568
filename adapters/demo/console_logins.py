"""The demo's console logins: one user per role on both security servers and on the registry, each with a random
password made here and printed once (the commands read it from standard input: it is in no command line and no
log), and the consoles' URLs."""

from __future__ import annotations

import secrets
from typing import Callable

from adapters.demo.commands import Fedbus
from adapters.demo.federation import DEPARTMENTS, DemoPorts, Layout
from central_registry.management.config import DEFAULT_PORT as REGISTRY_MANAGEMENT_PORT

SERVER_USERS = (
    ("sysadmin", "XROAD_SYSTEM_ADMINISTRATOR"),
    ("security-officer", "XROAD_SECURITY_OFFICER"),
    ("registration-officer", "XROAD_REGISTRATION_OFFICER"),
    ("service-admin", "XROAD_SERVICE_ADMINISTRATOR"),
    ("observer", "XROAD_SECURITYSERVER_OBSERVER"),
    ("auditor", "FEDBUS_AUDITOR"),
)
"""A security server's console users: X-Road's five roles and fedbus's auditor (docs/console.md)."""
REGISTRY_USERS = (
    ("sysadmin", "XROAD_SYSTEM_ADMINISTRATOR"),
    ("security-officer", "XROAD_SECURITY_OFFICER"),
    ("registration-officer", "XROAD_REGISTRATION_OFFICER"),
    ("observer", "XROAD_SECURITYSERVER_OBSERVER"),
)
"""The registry's console users: X-Road's central-server roles that are people."""


def registry_console_url() -> str:
    """The registry's console (its management API's default port: the demo's registry listens there)."""
    return f"https://127.0.0.1:{REGISTRY_MANAGEMENT_PORT}/console/"


def console_urls(ports: DemoPorts) -> list[str]:
    """Each console's URL, one line each."""
    lines = [f"{d.server_code} console: https://127.0.0.1:{ports.management(d)}/console/" for d in DEPARTMENTS]
    return [*lines, f"registry console: {registry_console_url()}"]


def create_console_logins(fedbus: Fedbus, layout: Layout, rel: Callable[[object], str],
                          make_password: Callable[[], str] = lambda: secrets.token_urlsafe(12)) -> list[str]:
    """Add the users (``fedbus server user add`` on both servers, ``fedbus registry user add``); the lines that
    name each login and its password (the only place the password is shown)."""
    lines = []
    for name, role in SERVER_USERS:
        password = make_password()
        for department in DEPARTMENTS:
            fedbus.run("server", "user", "add", "--dir", rel(layout.server(department)), name, "--role", role,
                       "--password-stdin", stdin=password + "\n")
        lines.append(f"security servers: {name} / {password} ({role})")
    for name, role in REGISTRY_USERS:
        password = make_password()
        fedbus.run("registry", "user", "add", "--registry-dir", rel(layout.registry), name, "--role", role,
                   "--password-stdin", stdin=password + "\n")
        lines.append(f"registry: {name} / {password} ({role})")
    return lines
