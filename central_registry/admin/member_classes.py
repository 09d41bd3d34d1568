"""Member classes: list, add, change the description, delete one no member uses."""

from __future__ import annotations

from central_registry.admin.errors import MemberClassExists, MemberClassInUse, MemberClassNotFound
from central_registry.store import RegistryError, RegistryStore
from security_server.core.errors import BusError
from security_server.core.identifiers import check_part


def member_classes(store: RegistryStore) -> dict[str, str]:
    """Descriptions by code, ordered by code."""
    return store.member_classes()


def _checked(code: str, description: str) -> None:
    try:
        check_part(code, "memberClass")
    except BusError as err:
        raise RegistryError(f"invalid member class code: {err.message}") from err
    if not description.strip():
        raise RegistryError("a member class needs a description")


def add_member_class(store: RegistryStore, code: str, description: str) -> None:
    """Add a class."""
    _checked(code, description)
    store.settings()
    if code in store.member_classes():
        raise MemberClassExists(f"member class {code} exists already")
    with store.transaction("member_class_added", {"code": code, "description": description}):
        store.db.execute("INSERT INTO member_classes (code, description) VALUES (?, ?)", [code, description])


def update_member_class(store: RegistryStore, code: str, description: str) -> None:
    """Change a class's description."""
    if code not in store.member_classes():
        raise MemberClassNotFound(f"no member class {code}")
    _checked(code, description)
    with store.transaction("member_class_changed", {"code": code, "description": description}):
        store.db.execute("UPDATE member_classes SET description = ? WHERE code = ?", [description, code])


def delete_member_class(store: RegistryStore, code: str) -> None:
    """Delete a class no member belongs to."""
    if code not in store.member_classes():
        raise MemberClassNotFound(f"no member class {code}")
    if store.db.query("SELECT 1 FROM members WHERE member_class = ?", [code]):
        raise MemberClassInUse(f"member class {code} has members")
    with store.transaction("member_class_deleted", {"code": code}):
        store.db.execute("DELETE FROM member_classes WHERE code = ?", [code])
