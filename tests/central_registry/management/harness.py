"""The registry's management API in memory: the real site over a StringTransport, a Clock, operations run at once.

The request and its check are both roles' (:class:`tests.management_api.InMemoryApi`): every answer to a path of
X-Road's central-server OpenAPI file is checked against the file by openapi-core (``check=False`` only for
statuses the file does not list, which the tests assert themselves).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from twisted.internet.task import Clock

from central_registry.management.context import RegistryContext, opening_store
from central_registry.management.roles import Role
from central_registry.publisher import Publisher, SelfSignedKey
from central_registry.management.server import make_registry_management_site
from central_registry.service import RegistryPaths
from security_server.management.config import ManagementConfig
from security_server.management.credentials import CredentialStore
from tests.central_registry.management.xroad_cs_openapi import XROAD_CS
from tests.management_api import ADMIN_PASSWORD, START, InMemoryApi, run_now

__all__ = ["ADMIN_PASSWORD", "START", "RegistryApi", "certificate_pem", "multipart_form"]


@dataclass
class RegistryApi(InMemoryApi):
    """The registry's API over one registry directory, with a clock and an admin user."""

    openapi = XROAD_CS
    host = "localhost:4100"

    root: Path
    config: ManagementConfig = field(default_factory=lambda: ManagementConfig(port=0, max_body_bytes=64 * 1024))
    clock: Clock = field(default_factory=Clock)
    publisher: Publisher | None = None
    """The running registry's publisher, when a test gives one (the anchor)."""

    def __post_init__(self) -> None:
        self.clock.advance(START.timestamp())
        self.paths = RegistryPaths(self.root)
        self.site = make_registry_management_site(
            self.clock, self.root, self.config, executor=run_now, open_store=opening_store(self.paths.database),
            secure_cookies=False, publisher=lambda: self.publisher,
        )
        self.router = self.site.resource._router
        self.context: RegistryContext = self.site.resource._context
        with self.credentials() as store:
            store.add_user("admin", ADMIN_PASSWORD, frozenset({Role.SYSTEM_ADMINISTRATOR}), now=START)

    def credentials(self) -> CredentialStore:
        """The credential store of the registry directory."""
        return self.context.credentials()


def multipart_form(
    fields: dict[str, str], files: dict[str, bytes], filenames: dict[str, str] | None = None
) -> tuple[bytes, str]:
    """A multipart/form-data body as X-Road's UI sends uploads (a file part is named ``<field>.pem`` unless
    ``filenames`` says otherwise)."""
    boundary = "fedbus-test-boundary"
    chunks = []
    for name, value in fields.items():
        chunks.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
    for name, data in files.items():
        filename = (filenames or {}).get(name, f"{name}.pem")
        chunks.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
                      f"Content-Type: application/octet-stream\r\n\r\n".encode() + data + b"\r\n")
    return b"".join(chunks) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def certificate_pem(api: RegistryApi, common_name: str) -> bytes:
    """A self-signed certificate (PEM) standing in for a CA's, a responder's or a TSA's."""
    key = SelfSignedKey.create(api.root / common_name.replace(" ", "-"), common_name, START)
    return key.cert.public_bytes(serialization.Encoding.PEM)
