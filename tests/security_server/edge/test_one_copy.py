"""The edge toolkit stays the only copy: no module outside security_server/edge re-grows what it holds.

An ``ast`` walk over the shipped packages (not the tests) refuses Twisted's unbounded ``readBody``, a
hand-made atomic write (``os.replace``, ``os.fsync``, ``tempfile.mkstemp``), a hand-made request body
producer, and a ``click.Group`` subclass that catches BusErrors on its own.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
PACKAGES = ("security_server", "central_registry", "adapters")
EDGE = ROOT / "security_server" / "edge"

FORBIDDEN_NAMES = {
    "readBody": "reads an HTTP body without a bound: use security_server.edge.http_fetch",
    "FileBodyProducer": "builds its own HTTP request: use security_server.edge.http_fetch",
    "mkstemp": "writes a file by hand: use security_server.edge.atomic_file",
}
FORBIDDEN_CALLS = {
    ("os", "replace"): "writes a file by hand: use security_server.edge.atomic_file",
    ("os", "fsync"): "writes a file by hand: use security_server.edge.atomic_file",
}


def _shipped_modules() -> list[Path]:
    files: list[Path] = []
    for package in PACKAGES:
        files += [p for p in (ROOT / package).rglob("*.py") if EDGE not in p.parents]
    return sorted(files)


def repeated_blocks(files: list[Path]) -> list[str]:
    """Each place in ``files`` that does by hand what the edge toolkit holds."""
    problems = []
    for path in files:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                for alias in node.names:
                    if alias.name in FORBIDDEN_NAMES:
                        problems.append(f"{path}:{node.lineno}: {FORBIDDEN_NAMES[alias.name]}")
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                owner = node.func.value
                if isinstance(owner, ast.Name) and (owner.id, node.func.attr) in FORBIDDEN_CALLS:
                    problems.append(f"{path}:{node.lineno}: {FORBIDDEN_CALLS[(owner.id, node.func.attr)]}")
                elif node.func.attr in FORBIDDEN_NAMES:
                    problems.append(f"{path}:{node.lineno}: {FORBIDDEN_NAMES[node.func.attr]}")
            elif isinstance(node, ast.ClassDef) and any(
                isinstance(base, ast.Attribute) and base.attr == "Group" for base in node.bases
            ):
                catches = any(
                    isinstance(handler, ast.ExceptHandler) and isinstance(handler.type, ast.Name) and handler.type.id == "BusError"
                    for handler in ast.walk(node)
                )
                if catches:
                    problems.append(f"{path}:{node.lineno}: a command group that reports BusErrors itself: use "
                                    "security_server.edge.cli_output.BusErrorGroup")
    return problems


def test_no_module_repeats_the_edge_toolkit() -> None:
    """No shipped module outside security_server/edge reads unbounded bodies, writes files by hand or maps BusErrors."""
    assert repeated_blocks(_shipped_modules()) == []


def test_the_walk_finds_each_kind_of_copy(tmp_path: Path) -> None:
    """The walk is not vacuous: a module holding each forbidden block is reported once per block."""
    sample = tmp_path / "copy.py"
    sample.write_text(
        "import os, tempfile, click\n"
        "from twisted.web.client import readBody\n"
        "fd, name = tempfile.mkstemp()\n"
        "os.fsync(fd)\n"
        "os.replace(name, 'x')\n"
        "class G(click.Group):\n"
        "    def invoke(self, ctx):\n"
        "        try:\n"
        "            pass\n"
        "        except BusError:\n"
        "            pass\n",
        encoding="utf-8",
    )
    found = repeated_blocks([sample])
    assert sorted(int(line.split(":")[1]) for line in found) == [2, 3, 4, 5, 6]
