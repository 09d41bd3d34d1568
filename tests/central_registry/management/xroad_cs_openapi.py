"""X-Road's central-server OpenAPI file, loaded for openapi-core.

The file refers to X-Road's common definitions (``ErrorInfo``, ``CodeWithDetails``, ``User`` and two error
examples) as the security server's file does; they are put in here the same way
(:class:`tests.management_api.XRoadOpenApi`). Discriminator mappings to bare schema names are written as
references (what OpenAPI means by them). Nothing else of the file is changed. The file itself does not pass
openapi-spec-validator (a schema requires ``clientId``, a property it never defines), so the check of the
document is off; every response is still validated against it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.management_api import PREFIX, XRoadOpenApi

__all__ = ["PREFIX", "XROAD_CS", "xroad_cs_spec"]

SPEC = Path(__file__).resolve().parents[3].parent / "shared" / "vectors" / "xroad" / "specs" / "central-server-openapi.yaml"
HOST = "https://localhost:4100"


def _references_for_discriminators(spec: dict[str, Any]) -> None:
    schemas = spec["components"]["schemas"]
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


XROAD_CS = XRoadOpenApi(SPEC, HOST, adjust=_references_for_discriminators, validate_spec=False)
"""X-Road's central-server file."""


def xroad_cs_spec() -> dict[str, Any]:
    """The OpenAPI document as a dict."""
    return XROAD_CS.spec
