"""The audit log of the management API: one JSON line per write (who, when, what, result).

Every request that changes something, allowed or refused, gets a line: ``time`` (UTC), ``user`` (user name, or
``api-key:N``), ``auth`` (``session``, ``api-key``, ``basic`` or ``none``), ``method``, ``path``, ``operation``
(X-Road's operationId), ``status`` (HTTP) and ``result`` (``success`` or ``failure`` with the error code). Bodies
are never written: they may carry PINs, passwords or keys. Lines are appended and flushed at once; a line is
small, and the file is opened in append mode so that lines of concurrent writers never interleave.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Callable

AUDIT_NAME = "management-audit.jsonl"


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """One write and its outcome."""

    user: str
    auth: str
    method: str
    path: str
    operation: str
    status: int
    error_code: str | None = None

    def as_dict(self, now: datetime) -> dict[str, Any]:
        """The JSON object of the line."""
        data: dict[str, Any] = {
            "time": now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
            "user": self.user,
            "auth": self.auth,
            "method": self.method,
            "path": self.path,
            "operation": self.operation,
            "status": self.status,
            "result": "success" if self.status < 400 else "failure",
        }
        if self.error_code is not None:
            data["error_code"] = self.error_code
        return data


class AuditLog:
    """Appends :class:`AuditEvent` lines to one file."""

    def __init__(self, path: Path, now: Callable[[], datetime]) -> None:
        self.path = path
        self._now = now

    def record(self, event: AuditEvent) -> None:
        """Append one line."""
        line = json.dumps(event.as_dict(self._now()), sort_keys=True, separators=(",", ":")) + "\n"
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line.encode("utf-8"))
        finally:
            os.close(fd)
