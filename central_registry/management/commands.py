"""``fedbus registry user ...`` and ``fedbus registry api-key ...``: the registry API's credentials from the CLI.

The same credential store as the security server's (:mod:`security_server.management.credentials`), in the
registry's directory, with X-Road's central-server roles. Users and keys can be made before the registry is
initialised (X-Road's initialisation itself is an API call). A password is read from a hidden prompt (asked
twice) or, with ``--password-stdin``, from the first line of standard input, never from the command line; a key
is printed once, when it is made, and only its hash is kept.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Callable

import click

from central_registry.management.roles import ALL_ROLES, Role
from security_server.edge import cli_output
from security_server.management.credentials import DB_NAME, CredentialStore

Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]
ROLE_CHOICE = click.Choice([r.value for r in Role], case_sensitive=False)


def _store(root: Path) -> CredentialStore:
    try:
        root.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as err:
        raise click.ClickException(f"cannot create {root}: {err.strerror}") from err
    return CredentialStore(root / DB_NAME, frozenset(ALL_ROLES))


def _roles(names: tuple[str, ...]) -> frozenset[str]:
    return frozenset(Role(name.upper()).value for name in names)


def _text(roles: frozenset[str]) -> str:
    return ",".join(sorted(roles))


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise click.UsageError("no password on standard input")
        return password
    text: str = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    return text


def register(registry: click.Group, dir_option: Decorator, json_option: Decorator) -> None:
    """Add the ``user`` and ``api-key`` groups to ``fedbus registry`` (with its ``--registry-dir`` and ``--json``)."""

    @registry.group("user")
    def user() -> None:
        """Local users of the registry's management API (form login)."""

    @user.command("add")
    @dir_option
    @click.argument("username")
    @click.option("--role", "roles", type=ROLE_CHOICE, multiple=True, required=True, help="X-Road role; repeatable.")
    @click.option("--password-stdin", is_flag=True, help="Read the password from the first line of stdin.")
    def user_add(root: Path, username: str, roles: tuple[str, ...], password_stdin: bool) -> None:
        """Add USERNAME with the given roles; the password is asked for (never given on the command line)."""
        password = _read_password(password_stdin)
        with _store(root) as store:
            store.add_user(username, password, _roles(roles), now=datetime.now(UTC))
        click.echo(f"Added user {username} ({_text(_roles(roles))})")

    @user.command("list")
    @dir_option
    @json_option
    def user_list(root: Path, as_json: bool) -> None:
        """List users and their roles."""
        with _store(root) as store:
            users = store.users()
        data = [{"username": name, "roles": sorted(roles)} for name, roles in users]
        rows = [[name, _text(roles)] for name, roles in users]
        cli_output.emit(as_json, data, lambda: cli_output.format_table(["user", "roles"], rows), sort_keys=True)

    @registry.group("api-key")
    def api_key() -> None:
        """API keys of the registry's management API (Authorization: X-Road-ApiKey token=KEY)."""

    @api_key.command("create")
    @dir_option
    @click.option("--role", "roles", type=ROLE_CHOICE, multiple=True, required=True, help="X-Road role; repeatable.")
    @json_option
    def api_key_create(root: Path, roles: tuple[str, ...], as_json: bool) -> None:
        """Make a key; it is printed this once and only its hash is kept."""
        with _store(root) as store:
            made = store.create_api_key(_roles(roles), created_by="cli", now=datetime.now(UTC))
        data = {"id": made.api_key.id, "key": made.key, "roles": sorted(made.api_key.roles)}
        cli_output.emit(as_json, data, lambda: f"API key {made.api_key.id}: {made.key}", sort_keys=True)

    @api_key.command("list")
    @dir_option
    @json_option
    def api_key_list(root: Path, as_json: bool) -> None:
        """List keys (never their secrets)."""
        with _store(root) as store:
            keys = store.api_keys()
        data = [{"id": k.id, "roles": sorted(k.roles), "created_at": k.created_at,
                 "created_by": k.created_by} for k in keys]
        rows = [[str(k.id), _text(k.roles), k.created_at, k.created_by] for k in keys]
        cli_output.emit(as_json, data,
                        lambda: cli_output.format_table(["id", "roles", "created", "by"], rows), sort_keys=True)

    @api_key.command("revoke")
    @dir_option
    @click.argument("key_id", type=int)
    def api_key_revoke(root: Path, key_id: int) -> None:
        """Revoke key KEY_ID: requests with it are refused from now on."""
        with _store(root) as store:
            store.revoke_api_key(key_id)
        click.echo(f"Revoked API key {key_id}")
