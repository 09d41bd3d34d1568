"""A security server set up through its management REST API (X-Road's ``/api/v1``), as an administrator's tooling
does: the demo's path for the Population Register's server, beside the CLI path of the Tax Board's.

:class:`ManagementApi` is the administrator's HTTPS client: the server's own management certificate pinned
(``management-tls.crt``, made at the API's first start), an ``X-Road-ApiKey`` on every call, and every call
written to ``logs/commands.log`` as ``METHOD https://127.0.0.1:PORT/api/v1/...`` with its status and answer
(never the key). Before ``init`` the API runs alone over the server's directory (docs/management-api.md):
``fedbus server api --dir DIR --config INI`` is that process.
"""

from __future__ import annotations

import http.client
import json
import ssl
import time
from pathlib import Path
from typing import Any

from adapters.demo.progress import StepFailed
from security_server.management.tls import CERT_NAME

API_ROLES = ("XROAD_SYSTEM_ADMINISTRATOR", "XROAD_SECURITY_OFFICER", "XROAD_REGISTRATION_OFFICER",
             "XROAD_SERVICE_ADMINISTRATOR")
"""The roles of the demo's API key: every step of a server's set-up (X-Road's roles, docs/management-api.md)."""
CALL_TIMEOUT = 60.0
_SHOWN_ANSWER = 600
"""The characters of an answer written to the commands log."""


class ApiRefused(StepFailed):
    """The API answered another status than the one the step expects."""


class ManagementApi:
    """An administrator's HTTPS client of one server's management API on ``127.0.0.1:port``, with an API key."""

    def __init__(self, directory: Path, port: int, key: str, log_path: Path) -> None:
        self._cert = directory / CERT_NAME
        """The API's own certificate, pinned (made at its first start, so read at each call)."""
        self._port = port
        self._key = key
        self._log_path = log_path
        self.base = f"https://127.0.0.1:{port}/api/v1"

    def call(self, method: str, path: str, expected: int, *, json_body: Any = None, body: bytes | None = None,
             content_type: str | None = None, what: str = "") -> bytes:
        """``method`` ``/api/v1`` + ``path``; its answer's body. :class:`ApiRefused` unless the status is
        ``expected``. ``what`` names a binary body in the log (its bytes are not written)."""
        headers = {"Authorization": f"X-Road-ApiKey token={self._key}", "Accept": "application/json"}
        if json_body is not None:
            body, content_type = json.dumps(json_body).encode("utf-8"), "application/json"
        if content_type is not None:
            headers["Content-Type"] = content_type
        started = time.monotonic()
        context = ssl.create_default_context(cafile=str(self._cert))
        connection = http.client.HTTPSConnection("127.0.0.1", self._port, context=context, timeout=CALL_TIMEOUT)
        try:
            connection.request(method, f"/api/v1{path}", body=body, headers=headers)
            response = connection.getresponse()
            status, answer = response.status, response.read()
        except (OSError, http.client.HTTPException) as err:
            self._log(method, path, json_body, what, f"# no answer: {err}", b"", time.monotonic() - started)
            raise StepFailed(f"{method} {self.base}{path}: no answer: {err}") from err
        finally:
            connection.close()
        self._log(method, path, json_body, what, f"# HTTP {status}", answer, time.monotonic() - started)
        if status != expected:
            raise ApiRefused(f"{method} {self.base}{path} answered HTTP {status}, not {expected}",
                             details=answer.decode("utf-8", errors="replace").splitlines()[:10])
        return answer

    def json(self, method: str, path: str, expected: int, **kwargs: Any) -> Any:
        """:meth:`call`, its JSON answer (None when empty)."""
        answer = self.call(method, path, expected, **kwargs)
        return json.loads(answer) if answer else None

    def _log(self, method: str, path: str, json_body: Any, what: str, outcome: str, answer: bytes,
             seconds: float) -> None:
        self._log_path.parent.mkdir(parents=True, exist_ok=True)
        with self._log_path.open("a", encoding="utf-8") as log:
            log.write(f"{method} {self.base}{path}\n")
            if json_body is not None:
                log.write(json.dumps(json_body, sort_keys=True) + "\n")
            elif what:
                log.write(f"({what})\n")
            text = answer.decode("utf-8", errors="replace").strip()
            if text:
                log.write((text if len(text) <= _SHOWN_ANSWER else text[:_SHOWN_ANSWER] + " ...") + "\n")
            log.write(f"{outcome}, {seconds:.1f}s\n\n")


def client_body(client: Any) -> dict[str, Any]:
    """X-Road's ``client`` object of ``POST /clients`` for a subsystem id."""
    return {"client": {"member_class": client.member_class, "member_code": client.member_code,
                       "subsystem_code": client.subsystem_code}}


def encoded_client(client: Any) -> str:
    """X-Road's encoded client id (``INSTANCE:CLASS:CODE:SUBSYSTEM``)."""
    return f"{client.instance}:{client.member_class}:{client.member_code}:{client.subsystem_code}"


def csr_request(usage: str, organisation: str, member: str | None) -> dict[str, Any]:
    """X-Road's body of ``POST /tokens/{id}/keys-with-csrs``: a key labelled after ``usage`` and its PEM request
    (the demo's CA is not listed in the configuration yet: fedbus's own profile, which asks for ``O``)."""
    spec: dict[str, Any] = {"key_usage_type": usage, "ca_name": "fedbus demo CA", "csr_format": "PEM",
                            "subject_field_values": {"O": organisation}}
    if member is not None:
        spec["member_id"] = member
    return {"key_label": usage.lower(), "csr_generate_request": spec}
