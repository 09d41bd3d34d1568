"""The architecture's import rules hold: the core is pure, and imports run one way."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CORE = ROOT / "security_server" / "core"

FORBIDDEN_MODULES = {"twisted", "sqlite3", "sqlite_utils", "socket", "zeep", "treq", "klein", "requests", "urllib.request",
                     "http.client", "asyncio", "subprocess", "threading"}
CLOCK_CALLS = {("time", "time"), ("time", "monotonic"), ("datetime", "now"), ("datetime", "utcnow"), ("date", "today"),
               ("datetime", "today")}
FILE_CALLS = {"open"}


def _python_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*.py"))


def _imports(tree: ast.AST) -> list[tuple[str, int]]:
    found: list[tuple[str, int]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.module, node.lineno))
        elif isinstance(node, ast.ImportFrom) and node.level > 0:
            found.append(("." * node.level + (node.module or ""), node.lineno))
    return found


def core_violations(files: list[Path]) -> list[str]:
    """Every import or call in ``files`` that breaks the pure-core rule."""
    problems = []
    for path in files:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for module, line in _imports(tree):
            top = module.split(".")[0]
            if any(module == bad or module.startswith(bad + ".") for bad in FORBIDDEN_MODULES):
                problems.append(f"{path}:{line}: imports {module}")
            if top in {"security_server", "central_registry", "adapters"} and not module.startswith("security_server.core"):
                problems.append(f"{path}:{line}: core imports {module} from outside the core")
            if module.startswith(".."):
                problems.append(f"{path}:{line}: relative import {module} may leave the core")
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                owner = node.func.value
                owner_name = owner.id if isinstance(owner, ast.Name) else owner.attr if isinstance(owner, ast.Attribute) else ""
                if (owner_name, node.func.attr) in CLOCK_CALLS:
                    problems.append(f"{path}:{node.lineno}: reads the clock ({owner_name}.{node.func.attr})")
                if node.func.attr in {"read_text", "read_bytes", "write_text", "write_bytes"}:
                    problems.append(f"{path}:{node.lineno}: file I/O ({node.func.attr})")
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in FILE_CALLS:
                problems.append(f"{path}:{node.lineno}: file I/O (open)")
    return problems


def test_core_is_pure() -> None:
    """security_server/core imports no I/O library, nothing of ours outside itself, and reads no clock or file."""
    files = _python_files(CORE)
    assert files, "no core modules found"
    assert core_violations(files) == []


@pytest.mark.parametrize(
    "source",
    [
        "import twisted.internet.reactor",
        "from sqlite3 import connect",
        "import socket",
        "from security_server.proxy import x",
        "from central_registry import store",
        "import time\ntime.time()",
        "from datetime import datetime\ndatetime.now()",
        "open('x')",
    ],
)
def test_the_layering_check_catches_violations(tmp_path: Path, source: str) -> None:
    """The check itself fails on each kind of violation (so the test above can fail)."""
    bad = tmp_path / "bad.py"
    bad.write_text(source + "\n")
    assert core_violations([bad])


# Role-neutral edge helpers every role uses: locating shipped files, configuring logging and the store layer. They
# hold no security-server state, so the registry and the adapters may use them.
SHARED_EDGE_MODULES = {"security_server.configfile", "security_server.schemafiles", "security_server.logconfig"} | {
    f"security_server.store.{name}" for name in ("engine", "errors", "migrations", "opening", "postgresql", "sqlite")
}
# The token seam (issue 20): the registry's configuration-signing key may live in a PKCS#11 token, so the registry
# uses the role-neutral token modules -- the Token values and errors, the [pkcs11:NAME] configuration, the token
# keys and the PKCS#11 token itself -- but nothing of the security server's signer around them (soft token, token
# set, batch signer, OCSP client). The soft token's PIN scheme (softtoken_pin: scrypt record, PKCS#8 password,
# the process's logins by directory; issue 17) encrypts the registry's signing keys too.
SHARED_EDGE_MODULES |= {
    f"security_server.signer.{name}"
    for name in ("token", "pkcs11_config", "pkcs11_key", "pkcs11_token", "softtoken_pin")
}

# The management API (issue 17): the registry's API is built on the role-neutral HTTP and authentication pieces of
# the security server's API -- request and response types, router, resource (authentication, roles, XSRF, audit),
# credential store, passwords, sessions, login throttle, audit log, X-Road's error object and identifier formats,
# [management], its TLS certificate and HTTPS listening, the ``user`` / ``api-key`` CLI commands, the backups'
# answers and the /openapi.yaml document -- the shared
# pieces of both roles' APIs ("The operator's side" in ARCHITECTURE.md;
# tests/security_server/management/test_shared_pieces.py keeps them free of the security server's state). Its roles,
# permissions, context, operations and service layer are the registry's own. The body limit of their site is the
# proxies' bounded request (it knows nothing of either role).
SHARED_EDGE_MODULES |= {
    f"security_server.management.{name}"
    for name in ("api", "routing", "resource", "credentials", "passwords", "sessions", "throttle", "audit", "errors",
                 "ids", "config", "tls", "certificates", "credential_commands", "https_listener", "backup_answers",
                 "openapi_document")
} | {"security_server.proxy.bounded_request"}

# The console (issue 21): the registry's console (central_registry/console_web) is built on the role-neutral pieces
# of the security server's -- the page frame, login, roles and XSRF checks over a ManagementResource (base), the
# forms over the API's operations (api_forms), HTML escaping (markup), form parsing (forms), the stylesheet. Its
# pages and roles are the registry's own.
SHARED_EDGE_MODULES |= {
    f"security_server.console_web.{name}" for name in ("base", "api_forms", "markup", "forms", "stylesheet")
}


def test_registry_and_adapters_use_only_the_core_of_the_security_server() -> None:
    """central_registry and adapters may import security_server.core, the shared edge helpers and the edge toolkit."""
    problems = []
    for package in ("central_registry", "adapters"):
        for path in _python_files(ROOT / package):
            for module, line in _imports(ast.parse(path.read_text(encoding="utf-8"))):
                # the edge toolkit (security_server/edge: bounded HTTP fetch, atomic file write, CLI output) is shared too
                allowed = (
                    module.startswith("security_server.core")
                    or module in SHARED_EDGE_MODULES
                    or module.split(".")[:2] == ["security_server", "edge"]
                )
                if module.startswith("security_server") and not allowed:
                    problems.append(f"{path}:{line}: imports {module}")
    assert problems == []




def imports_of_test_modules(files: list[Path]) -> list[str]:
    """Every import in ``files`` of a module named ``test_*`` (``import``, ``from``, and ``from package import test_x``)."""
    problems = []
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""] + [alias.name for alias in node.names]
            else:
                continue
            if any(part.startswith("test_") for name in names for part in name.split(".")):
                problems.append(f"{path}:{node.lineno}: imports a test module")
    return problems


def test_no_test_module_imports_another() -> None:
    """Shared test helpers live in named fixture modules: no tests/**/test_*.py imports another test_* module."""
    files = list((ROOT / "tests").rglob("test_*.py"))
    assert files
    assert imports_of_test_modules(sorted(files)) == []


@pytest.mark.parametrize(
    "source",
    ["from tests.a.test_b import helper", "import tests.a.test_b", "from tests.a import test_b", "from .test_b import x"],
)
def test_the_test_module_check_catches_imports(tmp_path: Path, source: str) -> None:
    """The check fails on each way of importing a test module (so the test above can fail)."""
    bad = tmp_path / "test_bad.py"
    bad.write_text(source + "\n")
    assert imports_of_test_modules([bad])
