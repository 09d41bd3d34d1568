"""Local access-rights groups of a hosted client and their members (UG-SS §8)."""

from __future__ import annotations

from security_server.admin.server_dir import ServerDirectory
from security_server.core.identifiers import ClientId, LocalGroupId
from security_server.serverconf.store import LocalGroup


def add_group(server_dir: ServerDirectory, owner: ClientId, code: LocalGroupId, description: str) -> LocalGroup:
    """Create an empty local group of ``owner``."""
    with server_dir.open_store() as store:
        return store.add_local_group(owner, code, description)


def add_member(server_dir: ServerDirectory, owner: ClientId, code: LocalGroupId, member: ClientId) -> None:
    """Add a member or subsystem to a local group of ``owner``."""
    with server_dir.open_store() as store:
        store.add_local_group_member(owner, code, member)


def list_groups(server_dir: ServerDirectory, owner: ClientId | None = None) -> tuple[LocalGroup, ...]:
    """Every local group, or ``owner``'s, with its members."""
    return tuple(g for g in server_dir.snapshot().groups if owner is None or g.owner == owner)
