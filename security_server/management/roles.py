"""X-Road's security-server roles (UG-SS §2.1), the unit every API operation is allowed to, plus fedbus's auditor.

``FEDBUS_AUDITOR`` is a fedbus extension (docs/compatibility.md): X-Road has no role for reading the message log.
It may open the console's Audit pages and nothing else; no API operation allows it.
"""

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
    AUDITOR = "FEDBUS_AUDITOR"


ALL_ROLES: frozenset[Role] = frozenset(Role)
XROAD_ROLES: frozenset[Role] = ALL_ROLES - {Role.AUDITOR}
"""The roles X-Road knows, the ones the API's operations are allowed to."""


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
