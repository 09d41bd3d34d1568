"""The management API's role-neutral pieces import no security-server role code, so the registry can share them."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[3] / "security_server" / "management"
SHARED = ("api", "routing", "resource", "credentials", "passwords", "sessions", "throttle", "audit", "errors", "ids",
          "config", "tls", "certificates", "credential_commands", "https_listener", "backup_answers", "openapi_document")
ALLOWED = ("security_server.core", "security_server.edge", "security_server.store")


def _imports(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.append(node.module)
        elif isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
    return found


def test_the_shared_pieces_import_only_core_edge_store_and_each_other() -> None:
    """api, routing, resource, credentials, ... import only the core, the edge toolkit, the store layer and each
    other: no service layer, roles, permissions, operations or security-server stores."""
    own = {f"security_server.management.{name}" for name in SHARED}
    problems = [
        f"{name}.py imports {module}"
        for name in SHARED
        for module in _imports(PACKAGE / f"{name}.py")
        if module.startswith("security_server") and module not in own and not module.startswith(ALLOWED)
    ]
    assert problems == []
