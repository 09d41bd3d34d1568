"""A certificate for a key made through the management API: the key and its request through the API, the
development CA's certificate imported through it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from cryptography.hazmat.primitives.serialization import Encoding

from central_registry.trust.ca import CertKind, DevelopmentCA
from security_server.management.roles import Role
from tests.security_server.management.harness import START, Api


def imported_certificate(api: Api, ca: DevelopmentCA, usage: str, kind: CertKind, member: str | None = None) -> str:
    """A key with a request through the API, the CA's certificate imported; its hash."""
    key = api.api_key(Role.SECURITY_OFFICER, Role.REGISTRATION_OFFICER)
    spec: dict[str, Any] = {"key_usage_type": usage, "ca_name": "Test CA", "csr_format": "PEM",
                            "subject_field_values": {"O": "Test Org"}}
    if member is not None:
        spec["member_id"] = member
    made = api.request("POST", "/api/v1/tokens/soft/keys-with-csrs", key=key, json_body={"csr_generate_request": spec})
    pem = api.request("GET", f"/api/v1/keys/{made.json()['key']['id']}/csrs/{made.json()['csr_id']}", key=key).body
    cert = ca.issue(pem, kind, START - timedelta(hours=1))
    imported = api.request("POST", "/api/v1/token-certificates", key=key, body=cert.public_bytes(Encoding.DER),
                           content_type="application/octet-stream")
    found: str = imported.json()["certificate_details"]["hash"]
    return found
