"""A security server initialised through its management API alone, before it runs (as X-Road's admin UI is used
before initialisation): the steps the end-to-end tests of the API and of X-Road's setup scenario share.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.serialization import Encoding

from central_registry.trust.ca import CertKind, DevelopmentCA
from security_server.admin.server_dir import ServerDirectory
from security_server.core.identifiers import ClientId
from security_server.management.config import ManagementConfig
from security_server.management.credentials import DB_NAME, CredentialStore
from security_server.management.roles import ALL_ROLES, Role
from security_server.management.server import ManagementService
from tests.loopback import REACTOR, now
from tests.management_https import HttpsApiClient
from tests.security_server.management.xroad_openapi import XROAD

SOFTWARE_TOKEN_PIN = "Secret-1234"


def server_api_key(directory: Path) -> str:
    """An API key with every role but the observer's, as ``fedbus server api-key create`` makes it."""
    roles = frozenset({Role.SYSTEM_ADMINISTRATOR, Role.SECURITY_OFFICER, Role.REGISTRATION_OFFICER,
                       Role.SERVICE_ADMINISTRATOR})
    directory.mkdir(parents=True, exist_ok=True)
    with CredentialStore(directory / DB_NAME, ALL_ROLES) as store:
        return store.create_api_key(roles, created_by="admin", now=datetime.now(UTC)).key


def csr_request(usage: str, ca_name: str, organisation: str, member: str | None = None) -> dict[str, Any]:
    """X-Road's body of ``POST /tokens/{id}/keys-with-csrs``: a key labelled after ``usage`` and its PEM request."""
    spec: dict[str, Any] = {"key_usage_type": usage, "ca_name": ca_name, "csr_format": "PEM",
                            "subject_field_values": {"O": organisation}}
    if member is not None:
        spec["member_id"] = member
    return {"key_label": usage.lower(), "csr_generate_request": spec}


async def initialise_through_api(
    root: Path, key: str, anchor: bytes, member: ClientId, code: str, ca: DevelopmentCA, ca_name: str,
    organisation: str,
) -> str:
    """With the management API alone on ``root`` (started, then stopped): upload ``anchor``, initialise server
    ``code`` of ``member``, make the auth and sign keys with requests to ``ca_name`` (``ca``'s operator signs them:
    a direct call, not the API) and import the certificates. The auth certificate's hash."""
    alone = ManagementService(REACTOR, ServerDirectory(root), ManagementConfig(port=0))
    alone.startService()
    try:
        api = HttpsApiClient(root, alone.port, key, XROAD)
        await api.json("POST", "/system/anchor", 201, body=anchor, content_type="application/octet-stream")
        await api.json("POST", "/initialization", 201, json_body={
            "owner_member_class": member.member_class, "owner_member_code": member.member_code,
            "security_server_code": code, "software_token_pin": SOFTWARE_TOKEN_PIN})
        status = await api.json("GET", "/initialization/status", 200)
        assert status["is_anchor_imported"] and status["is_server_code_initialized"]
        auth_hash = ""
        sign_member = f"{member.instance}:{member.member_class}:{member.member_code}"
        for usage, kind, member_id in (("AUTHENTICATION", CertKind.AUTH, None), ("SIGNING", CertKind.SIGN, sign_member)):
            made = await api.json("POST", "/tokens/soft/keys-with-csrs", 201,
                                  json_body=csr_request(usage, ca_name, organisation, member_id))
            _, pem = await api.call("GET", f"/keys/{made['key']['id']}/csrs/{made['csr_id']}", query="csr_format=PEM")
            cert = ca.issue(pem, kind, now())
            imported = await api.json("POST", "/token-certificates", 201, body=cert.public_bytes(Encoding.DER),
                                      content_type="application/octet-stream")
            assert imported["certificate_details"]["issuer_common_name"]
            if kind is CertKind.AUTH:
                auth_hash = imported["certificate_details"]["hash"]
        return auth_hash
    finally:
        await alone.stopService()
