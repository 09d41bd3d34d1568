"""docs/management-api.md lists every implemented operation, and every other operation of X-Road's file as not
implemented."""

from __future__ import annotations

from pathlib import Path

from security_server.management.operations import security_server_operations
from tests.security_server.management.xroad_openapi import PREFIX, xroad_spec

DOC = Path(__file__).resolve().parents[3] / "docs" / "management-api.md"


def _sections() -> tuple[str, str]:
    text = DOC.read_text(encoding="utf-8").split("\n# Management REST API (registry)")[0]  # the registry's own part
    implemented, _, missing = text.partition("## Not implemented yet")
    return implemented, missing


def test_every_implemented_operation_is_documented_with_an_example() -> None:
    """Each operation the API answers is in the doc with its method, path and operationId, and has a curl line."""
    implemented, missing = _sections()
    for operation in security_server_operations():
        path = operation.path[len(PREFIX):]
        assert f"`{operation.method} {path}` {operation.name}" in implemented or (
            f"`{operation.method} {path}`" in implemented and operation.name in implemented), operation.name
        assert f"`{operation.method} {path}`" not in missing, operation.name
    assert implemented.count("curl ") >= len({op.path for op in security_server_operations()}) // 2


def test_every_other_xroad_operation_is_listed_as_not_implemented() -> None:
    """Each operation of X-Road's file that fedbus does not answer is in the not-implemented list."""
    _, missing = _sections()
    done = {(op.method, op.path[len(PREFIX):]) for op in security_server_operations()}
    for path, methods in xroad_spec()["paths"].items():
        for method in methods:
            if method in ("get", "post", "put", "patch", "delete") and (method.upper(), path) not in done:
                assert f"`{method.upper()} {path}`" in missing, (method, path)
