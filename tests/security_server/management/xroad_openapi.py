"""X-Road's security-server OpenAPI file, loaded for openapi-core, and a check of one answer against it.

The file refers to X-Road's common definitions (``common-openapi-definition.yaml``: ``ErrorInfo``,
``CodeWithDetails``, ``User`` and two error examples), which are not in the copy we have; they are put in here as
X-Road defines them (``ErrorInfo``: ``status`` integer, ``error`` a ``CodeWithDetails``, ``warnings`` a list of
them; ``CodeWithDetails``: ``code`` string, ``metadata`` list of strings). Nothing else of the file is changed.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any, Mapping

import yaml  # type: ignore[import-untyped]  # no stubs installed; only safe_load is used
from openapi_core import Config, OpenAPI
from openapi_core.testing import MockRequest, MockResponse

SPEC = Path(__file__).resolve().parents[3].parent / "shared" / "vectors" / "xroad" / "specs" / "security-server-openapi.yaml"
HOST = "https://localhost:4000"
PREFIX = "/api/v1"

_CODE_WITH_DETAILS = {
    "type": "object",
    "required": ["code"],
    "properties": {"code": {"type": "string"}, "metadata": {"type": "array", "items": {"type": "string"}}},
}
_ERROR_INFO = {
    "type": "object",
    "required": ["status"],
    "properties": {
        "status": {"type": "integer"},
        "error": {"$ref": "#/components/schemas/CodeWithDetails"},
        "warnings": {"type": "array", "items": {"$ref": "#/components/schemas/CodeWithDetails"}},
    },
}


@functools.cache
def xroad_spec() -> dict[str, Any]:
    """The OpenAPI document as a dict, with the common definitions put in."""
    spec: dict[str, Any] = yaml.safe_load(SPEC.read_text(encoding="utf-8"))
    schemas = spec["components"]["schemas"]
    schemas["ErrorInfo"] = _ERROR_INFO
    schemas["CodeWithDetails"] = _CODE_WITH_DETAILS
    schemas["User"] = {"type": "object"}
    examples = spec["components"]["examples"]
    for name, example in list(examples.items()):
        if "$ref" in example:
            examples[name] = {"value": {"status": 400, "error": {"code": "example"}}}
    return spec


def _xml_as_text(body: bytes | str) -> str:
    """X-Road's file gives ``application/xml`` answers (the anchor download) a string schema: keep them text,
    where openapi-core would otherwise parse them into an element tree."""
    return body.decode("utf-8") if isinstance(body, bytes) else body


@functools.cache
def xroad_openapi() -> OpenAPI:
    """openapi-core's validator over X-Road's file."""
    config = Config(extra_media_type_deserializers={"application/xml": _xml_as_text})
    return OpenAPI.from_dict(xroad_spec(), config=config)


def documented(method: str, path_template: str) -> bool:
    """Whether X-Road's file has this operation (``path_template`` without ``/api/v1``)."""
    return method.lower() in xroad_spec()["paths"].get(path_template, {})


def check_response(
    method: str, path: str, query: Mapping[str, str], status: int, content_type: str | None, body: bytes
) -> None:
    """Fail unless X-Road's file allows this answer to this request (status, content type, body schema)."""
    request = MockRequest(HOST, method.lower(), path, args=dict(query))
    response = MockResponse(body, status_code=status, content_type=content_type or "")
    xroad_openapi().validate_response(request, response)


def error_object(body: bytes) -> dict[str, Any]:
    """The X-Road error object of a refusal, checked for its shape."""
    data: dict[str, Any] = json.loads(body)
    assert set(data) <= {"status", "error", "warnings"} and isinstance(data["status"], int)
    assert isinstance(data["error"]["code"], str)
    assert all(isinstance(m, str) for m in data["error"].get("metadata", []))
    return data
