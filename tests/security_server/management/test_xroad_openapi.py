"""The conformance check itself: openapi-core over X-Road's file refuses answers that do not match it."""

from __future__ import annotations

import json

import pytest
from openapi_core.validation.response.exceptions import InvalidData

from tests.security_server.management.xroad_openapi import check_response


def test_a_client_list_with_an_unknown_status_fails_the_check() -> None:
    """A Client whose status is not one of X-Road's ClientStatus values does not pass."""
    body = json.dumps([{"id": "EE:GOV:1:sub", "member_class": "GOV", "member_code": "1", "status": "ACTIVE"}]).encode()
    with pytest.raises(InvalidData):
        check_response("GET", "/api/v1/clients", {}, 200, "application/json", body)


def test_a_client_without_member_code_fails_the_check() -> None:
    """A Client missing a required field does not pass."""
    body = json.dumps({"id": "EE:GOV:1", "member_class": "GOV"}).encode()
    with pytest.raises(InvalidData):
        check_response("GET", "/api/v1/clients/EE:GOV:1", {}, 200, "application/json", body)


def test_a_matching_client_passes_the_check() -> None:
    """A Client as X-Road defines it passes."""
    body = json.dumps({"id": "EE:GOV:1", "member_class": "GOV", "member_code": "1", "status": "SAVED"}).encode()
    check_response("GET", "/api/v1/clients/EE:GOV:1", {}, 200, "application/json", body)
