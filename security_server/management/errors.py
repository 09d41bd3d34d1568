"""X-Road's error object, the one shape every refusal of the management API takes.

``{"status": 404, "error": {"code": "client_not_found", "metadata": ["..."]}}`` (X-Road's common ``ErrorInfo``
and ``CodeWithDetails``). A :class:`~security_server.core.errors.BusError` from the service layer becomes one with
its HTTP status and its ``api_code`` (the service layer's refusals, :mod:`security_server.admin.errors`) or
fault code; the API's own refusals (authentication, roles, malformed requests) are :class:`ApiError`.
"""

from __future__ import annotations

import json
from typing import Any

from security_server.core.errors import BusError


class ApiError(Exception):
    """A refusal of the management API itself: its status, X-Road error code and metadata strings."""

    def __init__(self, status: int, code: str, *metadata: str) -> None:
        super().__init__(f"{status} {code}")
        self.status = status
        self.code = code
        self.metadata = tuple(metadata)

    def body(self) -> dict[str, Any]:
        """The error object."""
        error: dict[str, Any] = {"code": self.code}
        if self.metadata:
            error["metadata"] = list(self.metadata)
        return {"status": self.status, "error": error}


def unauthorized() -> ApiError:
    """Missing or unknown credentials."""
    return ApiError(401, "unauthorized")


def forbidden(operation: str) -> ApiError:
    """Known credentials without a role the operation needs."""
    return ApiError(403, "permission_denied", operation)


def bad_request(code: str, *metadata: str) -> ApiError:
    """A malformed request: 400 with ``code``."""
    return ApiError(400, code, *metadata)


def from_bus_error(err: BusError) -> ApiError:
    """The error object of a service-layer refusal; a server fault tells only its category."""
    status = err.http_status
    if status >= 500:
        return ApiError(500, err.code)
    code = getattr(err, "api_code", None) or err.code
    return ApiError(status, str(code), err.message)


def error_json(error: ApiError) -> bytes:
    """The body bytes."""
    return json.dumps(error.body(), separators=(",", ":")).encode("utf-8")
