"""The CLI asking the running security server through its own management API (the soft token's login lives there).

A soft token login holds in the process that makes it (security_server/signer/softtoken_pin.py), so
``fedbus server token login`` cannot unlock the keys in its own process: it asks the running server, over the
management API's HTTPS port on loopback, pinning the certificate the server made at its first start
(``management-tls.crt``). It authenticates with an API key it makes for that one call in the server directory's
credential store (which whoever runs the CLI can write anyway) and revokes at once.
"""

from __future__ import annotations

import http.client
import json
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from security_server.core.errors import ServerFault
from security_server.management.config import ManagementConfig
from security_server.management.credentials import DB_NAME, CredentialStore
from security_server.management.roles import ALL_ROLES, Role
from security_server.management.tls import CERT_NAME

CALL_TIMEOUT_SECONDS = 30.0


class ServerNotRunning(ServerFault):
    """The running server's management API cannot be reached (the server is not running, or elsewhere)."""

    code = "server_not_running"


@dataclass(frozen=True, slots=True)
class Answer:
    """The API's status and JSON body (None when empty)."""

    status: int
    body: Any

    @property
    def error_code(self) -> str | None:
        """X-Road's ``error.code`` of a refusal."""
        if isinstance(self.body, dict) and isinstance(self.body.get("error"), dict):
            code = self.body["error"].get("code")
            return str(code) if code is not None else None
        return None


def _host(interface: str) -> str:
    return "127.0.0.1" if interface in ("0.0.0.0", "") else ("::1" if interface == "::" else interface)


def ask(
    root: Path, config: ManagementConfig, method: str, path: str, body: dict[str, Any] | None = None,
    *, roles: frozenset[Role] = frozenset({Role.SECURITY_OFFICER, Role.SYSTEM_ADMINISTRATOR}),
) -> Answer:
    """``method`` ``/api/v1`` + ``path`` on the running server of ``root``, with a one-call API key of ``roles``."""
    cert = root / CERT_NAME
    if not cert.is_file():
        raise ServerNotRunning(f"no {cert}: the server's management API has never run here")
    context = ssl.create_default_context(cafile=str(cert))
    with CredentialStore(root / DB_NAME, ALL_ROLES) as store:
        made = store.create_api_key(frozenset(roles), created_by="cli", now=datetime.now(UTC))
    try:
        connection = http.client.HTTPSConnection(
            _host(config.interface), config.port, context=context, timeout=CALL_TIMEOUT_SECONDS)
        payload = json.dumps(body).encode("utf-8") if body is not None else None
        headers = {"Authorization": f"X-Road-ApiKey token={made.key}", "Accept": "application/json"}
        if payload is not None:
            headers["Content-Type"] = "application/json"
        try:
            connection.request(method, f"/api/v1{path}", body=payload, headers=headers)
            response = connection.getresponse()
            data = response.read()
        except (OSError, http.client.HTTPException) as err:
            raise ServerNotRunning(
                f"the server's management API on {_host(config.interface)}:{config.port} does not answer: {err}"
            ) from err
        finally:
            connection.close()
    finally:
        with CredentialStore(root / DB_NAME, ALL_ROLES) as store:
            store.revoke_api_key(made.api_key.id)
    try:
        parsed = json.loads(data) if data else None
    except ValueError:
        parsed = None
    return Answer(response.status, parsed)
