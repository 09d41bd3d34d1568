"""The ``fedbus`` command: a root group that gathers each role's command group.

Each role keeps its commands in its own package and announces its group through the ``fedbus.commands``
entry-point group (setup.cfg), so a role that has no commands yet is simply absent from ``fedbus --help``.
"""

from __future__ import annotations

from importlib.metadata import entry_points

import click


def role_groups() -> dict[str, click.Command]:
    """The installed role groups by name."""
    found: dict[str, click.Command] = {}
    for entry in entry_points(group="fedbus.commands"):
        command = entry.load()
        if not isinstance(command, click.Command):
            raise TypeError(f"entry point {entry.name} is not a click command")
        found[entry.name] = command
    return found


class RoleGroups(click.Group):
    """A click group whose subcommands are the role groups found through entry points."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(role_groups())

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return role_groups().get(cmd_name)


@click.command(cls=RoleGroups)
@click.version_option(package_name="fedbus")
def main() -> None:
    """fedbus: a federated data-exchange bus in the style of X-Road."""
