"""``fedbus registry user ...`` and ``fedbus registry api-key ...``: the registry API's credentials from the CLI.

The same commands and credential store as the security server's
(:mod:`security_server.management.credential_commands`), in the registry's directory, with X-Road's
central-server roles.
"""

from __future__ import annotations

import click

from central_registry.management.roles import Role
from security_server.management.credential_commands import Decorator, add_credential_commands


def register(registry: click.Group, dir_option: Decorator, json_option: Decorator) -> None:
    """Add the ``user`` and ``api-key`` groups to ``fedbus registry`` (with its ``--registry-dir`` and ``--json``)."""
    add_credential_commands(
        registry, dir_option, json_option,
        role_names=[r.value for r in Role],
        user_help="Local users of the registry's management API (form login).",
        api_key_help="API keys of the registry's management API (Authorization: X-Road-ApiKey token=KEY).",
    )
