"""``PUT /token-certificates/{hash}/register``: authCertReg for the server's auth certificate with its address."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from twisted.internet import defer

from central_registry.trust.ca import CertKind, DevelopmentCA
from security_server.management.roles import Role
from tests.security_server.management.conftest import OWNER_CLASS, OWNER_CODE, SERVER_CODE
from tests.security_server.management.certificate_setup import imported_certificate as _certificate
from tests.security_server.management.harness import START, Api
from tests.security_server.management.xroad_openapi import error_object


@pytest.fixture
def server(tmp_path: Path, anchor_bytes: bytes) -> tuple[Api, list[str], str, str]:
    """An initialised server with an auth and a sign certificate; authCertReg is recorded, not sent."""
    sent: list[str] = []

    def register(address: str) -> defer.Deferred[Any]:
        sent.append(address)
        return defer.succeed({"status": "submitted"})

    api = Api(tmp_path / "server", register_server=register)
    key = api.api_key(Role.SYSTEM_ADMINISTRATOR)
    api.request("POST", "/api/v1/system/anchor", body=anchor_bytes, content_type="application/octet-stream", key=key)
    api.request("POST", "/api/v1/initialization", key=key, json_body={
        "owner_member_class": OWNER_CLASS, "owner_member_code": OWNER_CODE, "security_server_code": SERVER_CODE})
    ca = DevelopmentCA.init(tmp_path / "ca", "Test CA", START - timedelta(days=1), key_size=2048)
    auth = _certificate(api, ca, "AUTHENTICATION", CertKind.AUTH)
    sign = _certificate(api, ca, "SIGNING", CertKind.SIGN, "EE:GOV:70000310")
    return api, sent, auth, sign


@pytest.mark.parametrize("address", ["10.0.0.5", "ss1.example.org:5500", "[2001:db8::1]:8443"])
def test_the_auth_certificate_is_registered_with_the_address(server: tuple[Api, list[str], str, str],
                                                             address: str) -> None:
    """A security officer's PUT sends authCertReg once with the address as given (with or without a port): 200."""
    api, sent, auth, _ = server
    answer = api.request("PUT", f"/api/v1/token-certificates/{auth.lower()}/register",
                         key=api.api_key(Role.SECURITY_OFFICER), json_body={"address": address})
    assert answer.status == 200, answer.body
    assert sent == [address]


def test_refusals_send_nothing(server: tuple[Api, list[str], str, str]) -> None:
    """A sign certificate (400 action_not_possible), an unknown hash (404), a bad address (400), another role
    (403): no authCertReg is sent."""
    api, sent, auth, sign = server
    key = api.api_key(Role.SECURITY_OFFICER)
    cases = [
        (sign, {"address": "10.0.0.5"}, key, 400, "action_not_possible"),
        ("AB" * 32, {"address": "10.0.0.5"}, key, 404, "certificate_not_found"),
        (auth, {"address": "10.0.0.5/admin"}, key, 400, "invalid_address"),
        (auth, {}, key, 400, "missing_field"),
    ]
    for cert_hash, body, credential, status, code in cases:
        answer = api.request("PUT", f"/api/v1/token-certificates/{cert_hash}/register", key=credential, json_body=body)
        assert (answer.status, error_object(answer.body)["error"]["code"]) == (status, code), answer.body
    refused = api.request("PUT", f"/api/v1/token-certificates/{auth}/register",
                          key=api.api_key(Role.REGISTRATION_OFFICER), json_body={"address": "10.0.0.5"})
    assert refused.status == 403 and sent == []
