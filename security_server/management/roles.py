"""X-Road's security-server roles (UG-SS §2.1), the unit every API operation is allowed to."""

from __future__ import annotations

import enum
from typing import Iterable


class Role(enum.StrEnum):
    """One administrator role, spelled as X-Road spells it."""

    SYSTEM_ADMINISTRATOR = "XROAD_SYSTEM_ADMINISTRATOR"
    SECURITY_OFFICER = "XROAD_SECURITY_OFFICER"
    REGISTRATION_OFFICER = "XROAD_REGISTRATION_OFFICER"
    SERVICE_ADMINISTRATOR = "XROAD_SERVICE_ADMINISTRATOR"
    SECURITYSERVER_OBSERVER = "XROAD_SECURITYSERVER_OBSERVER"


ALL_ROLES: frozenset[Role] = frozenset(Role)


class UnknownRole(ValueError):
    """A role name that is not one of :class:`Role`."""


def parse_roles(names: Iterable[object]) -> frozenset[Role]:
    """Roles from their names; :class:`UnknownRole` for anything else, and for an empty set."""
    roles = set()
    for name in names:
        if not isinstance(name, str) or name not in Role.__members__.values():
            raise UnknownRole(f"unknown role {name!r}")
        roles.add(Role(name))
    if not roles:
        raise UnknownRole("at least one role is needed")
    return frozenset(roles)


def roles_text(roles: Iterable[str]) -> str:
    """Roles as one printed line, sorted."""
    return ",".join(sorted(str(r) for r in roles))
