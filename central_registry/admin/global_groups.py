"""Global groups of the federation and their members: list, add, show, change the description, delete; members
added, listed and removed. Groups are named by code within the registry's instance."""

from __future__ import annotations

from central_registry.admin.errors import Conflict, MemberNotFound, NotFound
from central_registry.store import GlobalGroup, RegistryError, RegistryStore
from security_server.core.errors import BusError
from security_server.core.identifiers import ClientId, GlobalGroupId


class GlobalGroupNotFound(NotFound):
    """No global group has this code."""

    api_code = "global_group_not_found"


class GlobalGroupExists(Conflict):
    """A global group has this code already."""

    api_code = "global_group_exists"


class GroupMemberNotFound(NotFound):
    """The client is not a member of the group."""

    api_code = "global_group_member_not_found"


def group_id(store: RegistryStore, code: str) -> GlobalGroupId:
    """The identifier of group ``code`` in the registry's instance."""
    try:
        return GlobalGroupId(store.settings().instance, code)
    except BusError as err:
        raise RegistryError(f"invalid global group code: {err.message}") from err


def global_groups(store: RegistryStore) -> list[GlobalGroup]:
    """Every group with its members, ordered by identifier."""
    return store.groups()


def global_group(store: RegistryStore, code: str) -> GlobalGroup:
    """One group by code."""
    wanted = group_id(store, code)
    for group in store.groups():
        if group.id == wanted:
            return group
    raise GlobalGroupNotFound(f"no global group {code}")


def add_global_group(store: RegistryStore, code: str, description: str) -> GlobalGroup:
    """Create a group."""
    group = group_id(store, code)
    if any(g.id == group for g in store.groups()):
        raise GlobalGroupExists(f"global group {code} exists already")
    if not description.strip():
        raise RegistryError("a global group needs a description")
    store.add_group(group, description)
    return global_group(store, code)


def update_description(store: RegistryStore, code: str, description: str) -> GlobalGroup:
    """Change a group's description."""
    group = global_group(store, code)
    if not description.strip():
        raise RegistryError("a global group needs a description")
    with store.transaction("global_group_changed", {"group": str(group.id), "description": description}):
        store.db.execute("UPDATE global_groups SET description = ? WHERE id = ?", [description, str(group.id)])
    return global_group(store, code)


def delete_global_group(store: RegistryStore, code: str) -> None:
    """Delete a group with its memberships."""
    group = global_group(store, code)
    with store.transaction("global_group_deleted", {"group": str(group.id)}):
        store.db.execute("DELETE FROM group_members WHERE group_id = ?", [str(group.id)])
        store.db.execute("DELETE FROM global_groups WHERE id = ?", [str(group.id)])


def add_members(store: RegistryStore, code: str, clients: list[ClientId]) -> list[ClientId]:
    """Add members and subsystems (all or none); the ones that were not in the group already."""
    group = global_group(store, code)
    for client in clients:
        if not store.has_client(client):
            raise MemberNotFound(f"unknown member or subsystem {client}")
    added = [c for c in dict.fromkeys(clients) if c not in group.members]
    with store.transaction("global_group_members_added", {"group": str(group.id)}, audit=False):
        for client in added:
            store.add_group_member(group.id, client)
    return added


def remove_member(store: RegistryStore, code: str, client: ClientId) -> None:
    """Remove one member or subsystem from a group."""
    group = global_group(store, code)
    if client not in group.members:
        raise GroupMemberNotFound(f"{client} is not in global group {code}")
    with store.transaction("global_group_member_removed", {"group": str(group.id), "client": str(client)}):
        store.db.execute("DELETE FROM group_members WHERE group_id = ? AND client_id = ?",
                         [str(group.id), str(client)])


def groups_of_member(store: RegistryStore, member_id: ClientId) -> list[tuple[GlobalGroup, ClientId]]:
    """The groups the member or one of its subsystems is in, with which of them is."""
    return [(g, c) for g in store.groups() for c in g.members if c.member == member_id]
