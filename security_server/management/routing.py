"""Matching a request path to an :class:`~security_server.management.api.Operation` by its X-Road path template.

The path is split at its literal slashes first, then each segment is percent-decoded, so an identifier with
reserved characters (an endpoint's path: ``%2F``) may be sent encoded without changing which segments there are;
``{name}`` matches one whole segment. Every operation checks what a parameter may hold (no parameter names a file). Where a literal segment and a parameter could both match
(``/backups/ext`` and ``/backups/{filename}``), the template with fewer parameters wins.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping
from urllib.parse import unquote

from security_server.management.api import Operation
from security_server.management.errors import ApiError


def split_path(path: str) -> tuple[str, ...]:
    """The decoded segments of a path (a trailing slash ignored); 404 for one with ``.``, ``..`` or empty segments."""
    raw = path.split("?", 1)[0]
    if not raw.startswith("/"):
        raise ApiError(404, "not_found")
    parts = raw[1:].split("/")
    if parts and parts[-1] == "":
        parts.pop()
    try:
        decoded = tuple(unquote(part, errors="strict") for part in parts)
    except UnicodeDecodeError as err:
        raise ApiError(404, "not_found") from err
    if any(p in ("", ".", "..") for p in decoded):
        raise ApiError(404, "not_found")
    return decoded


@dataclass(frozen=True, slots=True)
class _Template:
    segments: tuple[str, ...]
    operation: Operation

    @property
    def parameters(self) -> int:
        return sum(1 for s in self.segments if s.startswith("{"))

    def match(self, parts: tuple[str, ...]) -> dict[str, str] | None:
        if len(parts) != len(self.segments):
            return None
        params: dict[str, str] = {}
        for segment, part in zip(self.segments, parts):
            if segment.startswith("{"):
                params[segment[1:-1]] = part
            elif segment != part:
                return None
        return params


class Router:
    """The operations of one API, looked up by method and path."""

    def __init__(self, operations: Iterable[Operation]) -> None:
        templates = [_Template(tuple(op.path.strip("/").split("/")), op) for op in operations]
        seen = set()
        for template in templates:
            key = (template.operation.method, template.segments)
            if key in seen:
                raise ValueError(f"two operations for {template.operation.method} {template.operation.path}")
            seen.add(key)
        self._templates = sorted(templates, key=lambda t: t.parameters)

    @property
    def operations(self) -> tuple[Operation, ...]:
        """Every operation, for the docs and the tests."""
        return tuple(t.operation for t in self._templates)

    def match(self, method: str, path: str) -> tuple[Operation, Mapping[str, str]]:
        """The operation and its path parameters; 404 for an unknown path, 405 for a known path and another method."""
        parts = split_path(path)
        path_known = False
        for template in self._templates:
            params = template.match(parts)
            if params is None:
                continue
            if template.operation.method == method:
                return template.operation, params
            path_known = True
        if path_known:
            raise ApiError(405, "method_not_allowed", method)
        raise ApiError(404, "not_found")
