"""The service layer's refusals that a face tells apart from a plain invalid request: not found, conflict.

Both are :class:`~central_registry.store.RegistryError` leaves with its fault code, so the CLI prints what it
printed when the store refused the same change; the REST face answers their HTTP status (404, 409) and their
``api_code``, the error code X-Road's central-server API uses for the case.
"""

from __future__ import annotations

from typing import ClassVar

from central_registry.store import RegistryError


class NotFound(RegistryError):
    """The named member, class, server or request does not exist."""

    http_status = 404
    api_code: ClassVar[str] = "not_found"


class Conflict(RegistryError):
    """The change conflicts with the current state (it exists already, or is still in use)."""

    http_status = 409
    api_code: ClassVar[str] = "conflict"


class MemberClassNotFound(NotFound):
    """No member class has this code."""

    api_code = "member_class_not_found"


class MemberClassExists(Conflict):
    """A member class has this code already."""

    api_code = "member_class_exists"


class MemberClassInUse(Conflict):
    """Members of the class exist."""

    api_code = "member_class_is_in_use"


class MemberNotFound(NotFound):
    """No member (or subsystem) has this identifier."""

    api_code = "member_not_found"


class SubsystemNotFound(MemberNotFound):
    """No subsystem has this identifier."""

    api_code = "subsystem_not_found"


class MemberExists(Conflict):
    """The member (or subsystem) exists already."""

    api_code = "member_exists"


class ServerNotFound(NotFound):
    """No security server has this identifier."""

    api_code = "security_server_not_found"


class RequestNotFound(NotFound):
    """No management request has this number."""

    api_code = "management_request_not_found"


class RequestNotWaiting(Conflict):
    """The request was decided already."""

    api_code = "management_request_not_waiting"


class AlreadyInitialised(Conflict):
    """The registry is initialised already."""

    api_code = "init_already_initialized"


class NotInitialised(Conflict):
    """The registry is not initialised yet."""

    api_code = "not_initialized"
