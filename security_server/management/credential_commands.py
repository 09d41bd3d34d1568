"""The ``user ...`` and ``api-key ...`` CLI commands of a management API, for any role's CLI.

Both the security server's (``fedbus server``) and the registry's (``fedbus registry``) APIs keep their users and
keys in a :class:`~security_server.management.credentials.CredentialStore` in their directory; only the
directory option, the role names and the groups' help differ, and :func:`add_credential_commands` is given
those. Users and keys can be made before the directory is initialised (X-Road's initialisation itself is an API
call), so the commands create the directory when it is missing. A password is read from a hidden prompt (asked
twice) or, with ``--password-stdin``, from the first line of standard input: never from the command line, where
other users of the host could read it. A key is printed once, when it is made; only its hash is kept.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Callable, Sequence

import click

from security_server.edge import cli_output
from security_server.management.credentials import DB_NAME, CredentialStore

Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]


def _directory(where: dict[str, Path]) -> Path:
    """The value of the role's directory option, whatever name that option gives it (``directory``, ``root``)."""
    (directory,) = where.values()
    return directory


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise click.UsageError("no password on standard input")
        return password
    text: str = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    return text


def _text(roles: frozenset[str]) -> str:
    return ",".join(sorted(str(r) for r in roles))


def add_credential_commands(
    parent: click.Group,
    dir_option: Decorator,
    json_option: Decorator,
    *,
    role_names: Sequence[str],
    user_help: str,
    api_key_help: str,
) -> None:
    """Add the ``user`` and ``api-key`` groups to ``parent``: ``dir_option`` names the role's directory (it must be
    the commands' only option besides their own), ``role_names`` its X-Road roles in the order ``--role`` lists
    them, and ``user_help`` and ``api_key_help`` are the two groups' help."""
    role_choice = click.Choice(list(role_names), case_sensitive=False)
    all_roles = frozenset(role_names)

    def store(where: dict[str, Path]) -> CredentialStore:
        directory = _directory(where)
        try:
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as err:
            raise click.ClickException(f"cannot create {directory}: {err.strerror}") from err
        return CredentialStore(directory / DB_NAME, all_roles)

    def chosen(names: tuple[str, ...]) -> frozenset[str]:
        return frozenset(name.upper() for name in names)

    @parent.group("user", help=user_help)
    def user() -> None:
        pass

    @user.command("add")
    @dir_option
    @click.argument("username")
    @click.option("--role", "roles", type=role_choice, multiple=True, required=True, help="X-Road role; repeatable.")
    @click.option("--password-stdin", is_flag=True, help="Read the password from the first line of stdin.")
    def user_add(username: str, roles: tuple[str, ...], password_stdin: bool, **where: Path) -> None:
        """Add USERNAME with the given roles; the password is asked for (never given on the command line)."""
        password = _read_password(password_stdin)
        with store(where) as credentials:
            credentials.add_user(username, password, chosen(roles), now=datetime.now(UTC))
        click.echo(f"Added user {username} ({_text(chosen(roles))})")

    @user.command("list")
    @dir_option
    @json_option
    def user_list(as_json: bool, **where: Path) -> None:
        """List users and their roles."""
        with store(where) as credentials:
            users = credentials.users()
        data = [{"username": name, "roles": sorted(roles)} for name, roles in users]
        rows = [[name, _text(roles)] for name, roles in users]
        cli_output.emit(as_json, data, lambda: cli_output.format_table(["user", "roles"], rows), sort_keys=True)

    @parent.group("api-key", help=api_key_help)
    def api_key() -> None:
        pass

    @api_key.command("create")
    @dir_option
    @click.option("--role", "roles", type=role_choice, multiple=True, required=True, help="X-Road role; repeatable.")
    @json_option
    def api_key_create(roles: tuple[str, ...], as_json: bool, **where: Path) -> None:
        """Make a key; it is printed this once and only its hash is kept."""
        with store(where) as credentials:
            made = credentials.create_api_key(chosen(roles), created_by="cli", now=datetime.now(UTC))
        data = {"id": made.api_key.id, "key": made.key, "roles": sorted(made.api_key.roles)}
        cli_output.emit(as_json, data, lambda: f"API key {made.api_key.id}: {made.key}", sort_keys=True)

    @api_key.command("list")
    @dir_option
    @json_option
    def api_key_list(as_json: bool, **where: Path) -> None:
        """List keys (never their secrets)."""
        with store(where) as credentials:
            keys = credentials.api_keys()
        data = [{"id": k.id, "roles": sorted(k.roles), "created_at": k.created_at,
                 "created_by": k.created_by} for k in keys]
        rows = [[str(k.id), _text(k.roles), k.created_at, k.created_by] for k in keys]
        cli_output.emit(as_json, data,
                        lambda: cli_output.format_table(["id", "roles", "created", "by"], rows), sort_keys=True)

    @api_key.command("revoke")
    @dir_option
    @click.argument("key_id", type=int)
    def api_key_revoke(key_id: int, **where: Path) -> None:
        """Revoke key KEY_ID: requests with it are refused from now on."""
        with store(where) as credentials:
            credentials.revoke_api_key(key_id)
        click.echo(f"Revoked API key {key_id}")
