"""Fixtures of the management API tests: an API over a fresh directory, and one over an initialised server."""

from __future__ import annotations

from pathlib import Path

import pytest

from security_server.management.roles import Role
from tests.security_server.management.harness import Api

OWNER_CLASS = "GOV"
OWNER_CODE = "70000310"
SERVER_CODE = "ss1"


@pytest.fixture
def anchor_bytes(xroad_vectors: Path) -> bytes:
    """X-Road's own configuration anchor (instance EE)."""
    return (xroad_vectors / "configuration-anchor1.xml").read_bytes()


@pytest.fixture
def api(tmp_path: Path) -> Api:
    """The API over an empty server directory, with user ``admin`` (system administrator)."""
    return Api(tmp_path / "server")


@pytest.fixture
def initialised(api: Api, anchor_bytes: bytes) -> Api:
    """The API over a server initialised through the API (owner EE/GOV/70000310, server code ss1)."""
    key = api.api_key(Role.SYSTEM_ADMINISTRATOR)
    assert api.request("POST", "/api/v1/system/anchor", body=anchor_bytes, content_type="application/octet-stream",
                       key=key).status == 201
    answer = api.request("POST", "/api/v1/initialization", key=key, json_body={
        "owner_member_class": OWNER_CLASS, "owner_member_code": OWNER_CODE, "security_server_code": SERVER_CODE,
        "software_token_pin": "Secret-1234"})
    assert answer.status == 201, answer.body
    return api
