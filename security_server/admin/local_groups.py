"""Local access-rights groups of a hosted client and their members (UG-SS §8)."""

from __future__ import annotations

from typing import Iterable

from security_server.admin.errors import ClientNotFound, LocalGroupExists, LocalGroupNotFound, MemberAlreadyInGroup, NotFound
from security_server.admin.server_dir import ServerDirectory
from security_server.core.identifiers import ClientId, LocalGroupId
from security_server.serverconf.store import LocalGroup, ServerConfSnapshot


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


def _group(snapshot: ServerConfSnapshot, owner: ClientId, code: LocalGroupId) -> LocalGroup:
    if snapshot.client(owner) is None:
        raise ClientNotFound(f"{owner} is not a client of this security server")
    for group in snapshot.groups:
        if group.owner == owner and group.id == code:
            return group
    raise LocalGroupNotFound(f"{owner} has no local group {code.group_code}")


def hosted_groups(server_dir: ServerDirectory, owner: ClientId) -> tuple[LocalGroup, ...]:
    """``owner``'s local groups; :class:`ClientNotFound` when it is not hosted here."""
    snapshot = server_dir.snapshot()
    if snapshot.client(owner) is None:
        raise ClientNotFound(f"{owner} is not a client of this security server")
    return tuple(g for g in snapshot.groups if g.owner == owner)


def get_group(server_dir: ServerDirectory, owner: ClientId, code: LocalGroupId) -> LocalGroup:
    """One local group; :class:`ClientNotFound` or :class:`LocalGroupNotFound`."""
    return _group(server_dir.snapshot(), owner, code)


def create_group(server_dir: ServerDirectory, owner: ClientId, code: LocalGroupId, description: str) -> LocalGroup:
    """Create a group, telling an unknown owner (404) and a taken code (409) apart from invalid values."""
    with server_dir.open_store() as store:
        snapshot = store.snapshot()
        if snapshot.client(owner) is None:
            raise ClientNotFound(f"{owner} is not a client of this security server")
        if any(g.owner == owner and g.id == code for g in snapshot.groups):
            raise LocalGroupExists(f"{owner} already has local group {code.group_code}")
        return store.add_local_group(owner, code, description)


def add_members(server_dir: ServerDirectory, owner: ClientId, code: LocalGroupId, members: Iterable[ClientId]) -> LocalGroup:
    """Add several members; refused as a whole (nothing added) when one of them is in the group already."""
    wanted = list(dict.fromkeys(members))
    with server_dir.open_store() as store:
        group = _group(store.snapshot(), owner, code)
        present = [m for m in wanted if m in group.members]
        if present:
            raise MemberAlreadyInGroup(f"{present[0]} is already in local group {code.group_code}")
        for member in wanted:
            store.add_local_group_member(owner, code, member)
        return _group(store.snapshot(), owner, code)


def remove_members(server_dir: ServerDirectory, owner: ClientId, code: LocalGroupId, members: Iterable[ClientId]) -> None:
    """Remove several members; refused as a whole when one of them is not in the group."""
    wanted = list(dict.fromkeys(members))
    with server_dir.open_store() as store:
        group = _group(store.snapshot(), owner, code)
        absent = [m for m in wanted if m not in group.members]
        if absent:
            raise NotFound(f"{absent[0]} is not in local group {code.group_code}")
        for member in wanted:
            store.remove_local_group_member(owner, code, member)


def update_description(server_dir: ServerDirectory, owner: ClientId, code: LocalGroupId, description: str) -> LocalGroup:
    """Change a local group's description (X-Road's updateLocalGroup); :class:`ClientNotFound` or
    :class:`LocalGroupNotFound`."""
    with server_dir.open_store() as store:
        _group(store.snapshot(), owner, code)
        store.set_local_group_description(owner, code, description)
        return _group(store.snapshot(), owner, code)


def delete_group(server_dir: ServerDirectory, owner: ClientId, code: LocalGroupId) -> None:
    """Delete a local group, its members and the access rights granted to it; :class:`ClientNotFound` or
    :class:`LocalGroupNotFound`."""
    with server_dir.open_store() as store:
        _group(store.snapshot(), owner, code)
        store.delete_local_group(owner, code)
