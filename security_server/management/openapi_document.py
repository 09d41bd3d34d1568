"""``GET /openapi.yaml`` for both roles: X-Road's OpenAPI file with its ``paths`` cut to the operations served.

The document is computed from the router's own table each time it is asked for, so it cannot drift from what
the API answers: a path stays with only the methods implemented, a path with none goes, and everything else of
X-Road's file (``info``, ``components``, ``security``) stays as it is (its schemas are shared by the operations
left, and an unused one is harmless).
"""

from __future__ import annotations

from typing import Any, Iterable

import yaml  # type: ignore[import-untyped]  # no stubs installed

from security_server.management.api import ApiResponse, Operation

METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


def restricted_document(spec: dict[str, Any], operations: Iterable[Operation], prefix: str) -> dict[str, Any]:
    """``spec`` with only the (method, path) pairs of ``operations`` (their paths under ``prefix``)."""
    served: dict[str, set[str]] = {}
    for operation in operations:
        if operation.path.startswith(prefix):
            served.setdefault(operation.path[len(prefix):], set()).add(operation.method.lower())
    paths: dict[str, Any] = {}
    for path, item in spec.get("paths", {}).items():
        methods = served.get(path, set())
        kept = {key: value for key, value in item.items() if key not in METHODS or key in methods}
        if any(key in methods for key in kept):
            paths[path] = kept
    return {**spec, "paths": paths}


def openapi_answer(spec_yaml: bytes, operations: Iterable[Operation], prefix: str) -> ApiResponse:
    """The answer to ``GET /openapi.yaml``: the restricted document as YAML."""
    spec = yaml.safe_load(spec_yaml)
    document = restricted_document(spec, operations, prefix)
    text = yaml.safe_dump(document, sort_keys=False, allow_unicode=True).encode("utf-8")
    return ApiResponse(200, raw=text, content_type="application/x-yaml",
                       headers=((b"Content-Disposition", b'attachment; filename="openapi.yaml"'),))
