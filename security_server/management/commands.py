"""``fedbus server user ...`` and ``fedbus server api-key ...``: the management API's credentials from the CLI.

The commands themselves are every role's (:mod:`security_server.management.credential_commands`); here are the
security server's directory option, its X-Road roles and its groups' help.
"""

from __future__ import annotations

import click

from security_server.management.credential_commands import Decorator, add_credential_commands
from security_server.management.roles import Role


def register(server: click.Group, dir_option: Decorator, json_option: Decorator) -> None:
    """Add the ``user`` and ``api-key`` groups to ``fedbus server`` (with its ``--dir`` and ``--json``)."""
    add_credential_commands(
        server, dir_option, json_option,
        role_names=[r.value for r in Role],
        user_help="Local users of the management API (form login, and Basic auth to manage API keys).",
        api_key_help="API keys of the management API (Authorization: X-Road-ApiKey token=KEY).",
    )
