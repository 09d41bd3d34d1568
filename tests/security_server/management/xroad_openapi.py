"""X-Road's security-server OpenAPI file, loaded for openapi-core, and a check of one answer against it.

The file refers to X-Road's common definitions (``common-openapi-definition.yaml``), which are not in the copy we
have; :class:`tests.management_api.XRoadOpenApi` puts them in as X-Road defines them. Nothing else of the file is
changed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

from tests.management_api import PREFIX, XRoadOpenApi

__all__ = ["PREFIX", "XROAD", "check_response", "error_object", "xroad_spec"]

SPEC = Path(__file__).resolve().parents[3].parent / "shared" / "vectors" / "xroad" / "specs" / "security-server-openapi.yaml"
HOST = "https://localhost:4000"
XROAD = XRoadOpenApi(SPEC, HOST)
"""X-Road's security-server file."""


def xroad_spec() -> dict[str, Any]:
    """The OpenAPI document as a dict, with the common definitions put in."""
    return XROAD.spec


def check_response(
    method: str, path: str, query: Mapping[str, str], status: int, content_type: str | None, body: bytes
) -> None:
    """Fail unless X-Road's file allows this answer to this request (status, content type, body schema)."""
    XROAD.check_response(method, path, query, status, content_type, body)


def error_object(body: bytes) -> dict[str, Any]:
    """The X-Road error object of a refusal, checked for its shape."""
    data: dict[str, Any] = json.loads(body)
    assert set(data) <= {"status", "error", "warnings"} and isinstance(data["status"], int)
    assert isinstance(data["error"]["code"], str)
    assert all(isinstance(m, str) for m in data["error"].get("metadata", []))
    return data
