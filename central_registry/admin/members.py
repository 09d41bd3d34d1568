"""Members and subsystems: add, show, rename, delete (members owning no server), list."""

from __future__ import annotations

from central_registry.admin.errors import MemberClassNotFound, MemberExists, MemberNotFound, SubsystemNotFound
from central_registry.store import Member, RegistryError, RegistryStore
from security_server.core.identifiers import ClientId


def members(store: RegistryStore) -> list[Member]:
    """Every member with its subsystems, ordered by identifier."""
    return store.members()


def member(store: RegistryStore, member_id: ClientId) -> Member:
    """One member; :class:`MemberNotFound` when there is none."""
    if member_id.subsystem_code is not None or not store.has_client(member_id):
        raise MemberNotFound(f"unknown member {member_id}")
    return store.member(member_id)


def add_member(store: RegistryStore, member_id: ClientId, name: str) -> Member:
    """Add a member of an existing class."""
    if member_id.subsystem_code is None and member_id.member_class not in store.member_classes():
        raise MemberClassNotFound(f"unknown member class {member_id.member_class}")
    if member_id.subsystem_code is None and store.has_client(member_id):
        raise MemberExists(f"{member_id} already exists")
    store.add_member(member_id, name)
    return store.member(member_id)


def rename_member(store: RegistryStore, member_id: ClientId, name: str) -> Member:
    """Change a member's name."""
    member(store, member_id)
    if not name.strip():
        raise RegistryError("a member needs a name")
    with store.transaction("member_renamed", {"member": str(member_id), "name": name}):
        store.db.execute("UPDATE members SET name = ? WHERE id = ?", [name, str(member_id)])
    return store.member(member_id)


def delete_member(store: RegistryStore, member_id: ClientId) -> None:
    """Delete a member that owns no security server (its subsystems go with it)."""
    if member_id.subsystem_code is not None or not store.has_client(member_id):
        raise MemberNotFound(f"{member_id} does not exist")
    store.remove_member(member_id)


def add_subsystem(store: RegistryStore, subsystem_id: ClientId) -> None:
    """Add a subsystem to an existing member."""
    if subsystem_id.subsystem_code is None:
        raise RegistryError("a subsystem identifier needs a subsystem code")
    member(store, subsystem_id.member)  # MemberNotFound: "unknown member ..." as the store says it
    if store.has_client(subsystem_id):
        raise MemberExists(f"{subsystem_id} already exists")
    store.add_subsystem(subsystem_id)


def delete_subsystem(store: RegistryStore, subsystem_id: ClientId) -> None:
    """Delete a subsystem no security server hosts."""
    if subsystem_id.subsystem_code is None or not store.has_client(subsystem_id):
        raise MemberNotFound(f"unknown subsystem {subsystem_id}")
    if store.db.query("SELECT 1 FROM server_clients WHERE client_id = ?", [str(subsystem_id)]):
        raise RegistryError(f"{subsystem_id} is registered on a security server; unregister it first")
    with store.transaction("subsystem_deleted", {"subsystem": str(subsystem_id)}):
        store.db.execute("DELETE FROM group_members WHERE client_id = ?", [str(subsystem_id)])
        store.db.execute(
            "DELETE FROM subsystems WHERE member_id = ? AND subsystem_code = ?",
            [str(subsystem_id.member), subsystem_id.subsystem_code],
        )


def rename_subsystem(store: RegistryStore, subsystem_id: ClientId, name: str | None) -> None:
    """Give a subsystem a name, or take it away (``None`` or blank). fedbus's shared parameters have no place for
    it (schemas/shared-parameters.xsd, X-Road's version 4 shape), so it is the registry's own record."""
    if subsystem_id.subsystem_code is None or not store.has_client(subsystem_id):
        raise SubsystemNotFound(f"unknown subsystem {subsystem_id}")
    kept = name if name and name.strip() else None
    with store.transaction("subsystem_renamed", {"subsystem": str(subsystem_id), "name": kept}):
        store.db.execute(
            "UPDATE subsystems SET name = ? WHERE member_id = ? AND subsystem_code = ?",
            [kept, str(subsystem_id.member), subsystem_id.subsystem_code],
        )


def subsystem_names(store: RegistryStore, member_id: ClientId) -> dict[str, str]:
    """The names of a member's named subsystems, by subsystem code."""
    rows = store.db.query(
        "SELECT subsystem_code, name FROM subsystems WHERE member_id = ? AND name IS NOT NULL", [str(member_id)])
    return {str(row["subsystem_code"]): str(row["name"]) for row in rows}
