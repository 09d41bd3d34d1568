"""X-Road's central-server roles (UG-CS §2), the unit every operation of the registry's API is allowed to."""

from __future__ import annotations

import enum


class Role(enum.StrEnum):
    """One administrator role of the registry, spelled as X-Road spells it."""

    SYSTEM_ADMINISTRATOR = "XROAD_SYSTEM_ADMINISTRATOR"
    REGISTRATION_OFFICER = "XROAD_REGISTRATION_OFFICER"
    SECURITY_OFFICER = "XROAD_SECURITY_OFFICER"
    MANAGEMENT_SERVICE = "XROAD_MANAGEMENT_SERVICE"
    OBSERVER = "XROAD_SECURITYSERVER_OBSERVER"
    """X-Road's read-only role; its central server uses the same name as the security server's."""


ALL_ROLES: frozenset[Role] = frozenset(Role)
