"""The refusals of the service layer that a face must tell apart from a plain invalid request.

Both are :class:`~security_server.serverconf.store.ServerConfError` leaves with its fault code, so that the CLI
prints exactly what it printed when the store refused the same change; the REST face answers their HTTP status
(404, 409) and their ``api_code``, the error code X-Road's management API uses for the case.
"""

from __future__ import annotations

from typing import ClassVar

from security_server.serverconf.store import ServerConfError


class NotFound(ServerConfError):
    """The named client, service, group, key or right does not exist here."""

    http_status = 404
    api_code: ClassVar[str] = "not_found"


class Conflict(ServerConfError):
    """The change conflicts with the current state (it exists already, or the state does not allow it)."""

    http_status = 409
    api_code: ClassVar[str] = "conflict"


class ClientNotFound(NotFound):
    """No hosted client has this identifier."""

    api_code = "client_not_found"


class ClientExists(Conflict):
    """The client is already hosted here."""

    api_code = "client_already_exists"


class AnchorNotFound(NotFound):
    """No configuration anchor has been uploaded yet."""

    api_code = "anchor_not_found"


class AlreadyInitialised(Conflict):
    """The server is initialised already (or the initial anchor was uploaded already)."""

    api_code = "init_already_initialized"


class InvalidAnchor(ServerConfError):
    """The uploaded file is not a configuration anchor (or not one for this server)."""

    api_code: ClassVar[str] = "invalid_anchor"


class ServiceNotFound(NotFound):
    """The client has no service with this code (and version)."""

    api_code = "service_not_found"


class LocalGroupNotFound(NotFound):
    """The client has no local group with this code."""

    api_code = "local_group_not_found"


class LocalGroupExists(Conflict):
    """The client has a local group with this code already."""

    api_code = "local_group_code_already_exists"


class MemberAlreadyInGroup(Conflict):
    """A member to add is in the group already."""

    api_code = "member_already_exists"


class AccessRightExists(Conflict):
    """The subject holds this right already."""

    api_code = "duplicate_accessright"


class AccessRightNotFound(NotFound):
    """The subject does not hold this right."""

    api_code = "accessright_not_found"


class ActionNotPossible(Conflict):
    """The state of the client, service or group does not allow the change (X-Road's ``action_not_possible``)."""

    api_code = "action_not_possible"


class CertificateNotFound(NotFound):
    """The client has no internal TLS certificate with this hash."""

    api_code = "certificate_not_found"


class CertificateExists(Conflict):
    """The client has this internal TLS certificate already."""

    api_code = "certificate_already_exists"


class InvalidCertificate(ServerConfError):
    """The uploaded file is not an X.509 certificate."""

    api_code: ClassVar[str] = "invalid_certificate"
