"""X-Road's central-server OpenAPI file, loaded for openapi-core, and a check of one answer against it.

The file refers to X-Road's common definitions (``ErrorInfo``, ``CodeWithDetails``, ``User`` and two error
examples) as the security server's file does; they are put in here the same way
(:mod:`tests.security_server.management.xroad_openapi`). Discriminator mappings to bare schema names are
written as references (what OpenAPI means by them). Nothing else of the file is changed. The file itself does
not pass openapi-spec-validator (a schema requires ``clientId``, a property it never defines), so the check of
the document is off; every response is still validated against it.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Mapping

import yaml  # type: ignore[import-untyped]  # no stubs installed; only safe_load is used
from openapi_core import Config, OpenAPI
from openapi_core.testing import MockRequest, MockResponse

from tests.security_server.management.xroad_openapi import _CODE_WITH_DETAILS, _ERROR_INFO

SPEC = Path(__file__).resolve().parents[3].parent / "shared" / "vectors" / "xroad" / "specs" / "central-server-openapi.yaml"
HOST = "https://localhost:4100"
PREFIX = "/api/v1"


@functools.cache
def xroad_cs_spec() -> dict[str, Any]:
    """The OpenAPI document as a dict."""
    spec: dict[str, Any] = yaml.safe_load(SPEC.read_text(encoding="utf-8"))
    schemas = spec["components"]["schemas"]
    schemas["ErrorInfo"] = _ERROR_INFO
    schemas["CodeWithDetails"] = _CODE_WITH_DETAILS
    schemas["User"] = {"type": "object"}
    for name, schema in list(schemas.items()):
        # OpenAPI lets a discriminator map to a bare schema name; the validator resolves only references. The mapped
        # schemas extend the base through allOf, so they extend a copy without the discriminator (else it loops).
        mapping = schema.get("discriminator", {}).get("mapping", {}) if isinstance(schema, dict) else {}
        if not mapping:
            continue
        base = {k: v for k, v in schema.items() if k != "discriminator"}
        schemas[f"{name}Base"] = base
        for value, target in list(mapping.items()):
            target_name = target.rsplit("/", 1)[-1]
            mapping[value] = f"#/components/schemas/{target_name}"
            for part in schemas[target_name].get("allOf", []):
                if part.get("$ref") == f"#/components/schemas/{name}":
                    part["$ref"] = f"#/components/schemas/{name}Base"
    examples = spec["components"]["examples"]
    for name, example in list(examples.items()):
        if "$ref" in example:
            examples[name] = {"value": {"status": 400, "error": {"code": "example"}}}
    return spec


def _xml_as_text(body: bytes | str) -> str:
    return body.decode("utf-8") if isinstance(body, bytes) else body


@functools.cache
def xroad_cs_openapi() -> OpenAPI:
    """openapi-core's validator over X-Road's central-server file."""
    config = Config(extra_media_type_deserializers={"application/xml": _xml_as_text}, spec_validator_cls=None)
    return OpenAPI.from_dict(xroad_cs_spec(), config=config)


def documented(method: str, path_template: str) -> bool:
    """Whether X-Road's file has this operation (``path_template`` without ``/api/v1``)."""
    return method.lower() in xroad_cs_spec()["paths"].get(path_template, {})


def check_response(
    method: str, path: str, query: Mapping[str, str], status: int, content_type: str | None, body: bytes
) -> None:
    """Fail unless X-Road's file allows this answer to this request (status, content type, body schema)."""
    request = MockRequest(HOST, method.lower(), path, args=dict(query))
    response = MockResponse(body, status_code=status, content_type=content_type or "")
    xroad_cs_openapi().validate_response(request, response)
