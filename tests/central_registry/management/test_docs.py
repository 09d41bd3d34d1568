"""docs/management-api.md's registry section lists every implemented operation with an example, and every other
operation of X-Road's central-server file as not implemented."""

from __future__ import annotations

from pathlib import Path

from central_registry.management.operations import registry_operations
from tests.central_registry.management.xroad_cs_openapi import PREFIX, xroad_cs_spec

DOC = Path(__file__).resolve().parents[3] / "docs" / "management-api.md"


def _sections() -> tuple[str, str]:
    text = DOC.read_text(encoding="utf-8")
    _, _, registry = text.partition("# Management REST API (registry)")
    implemented, _, missing = registry.partition("## Not implemented yet (registry)")
    return implemented, missing


def test_every_implemented_operation_is_documented_with_an_example() -> None:
    """Each operation the registry's API answers is in its section with method, path and operationId, and each
    path has a curl line."""
    implemented, missing = _sections()
    for operation in registry_operations():
        assert f"`{operation.method} {operation.path}` {operation.name}" in implemented, operation.name
        assert f"`{operation.method} {operation.path}`" not in missing, operation.name
    assert implemented.count("curl ") >= len({op.path for op in registry_operations()})


def test_every_other_xroad_operation_is_listed_as_not_implemented() -> None:
    """Each operation of X-Road's central-server file that the registry does not answer is listed as missing."""
    _, missing = _sections()
    done = {(op.method, op.path[len(PREFIX):]) for op in registry_operations()}
    for path, methods in xroad_cs_spec()["paths"].items():
        for method in methods:
            if method in ("get", "post", "put", "patch", "delete") and (method.upper(), path) not in done:
                assert f"`{method.upper()} {PREFIX}{path}`" in missing, (method, path)
