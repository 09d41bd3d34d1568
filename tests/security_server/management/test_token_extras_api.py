"""``PATCH /tokens/{id}`` (friendly name), ``POST /tokens/{id}/keys`` (addKey) and
``GET /keys/{id}/csrs/{csr_id}/possible-actions``."""

from __future__ import annotations

from typing import Any, Iterator

import pytest

from security_server.management.roles import Role
from security_server.signer.softtoken_pin import LOGINS
from tests.security_server.management.harness import Api
from tests.security_server.management.xroad_openapi import error_object


@pytest.fixture(autouse=True)
def _forget_logins(api: Api) -> Iterator[None]:
    """The token is logged out after each test."""
    yield None
    LOGINS.forget(api.server_dir.keys_path)


def _code(answer: Any) -> str:
    return str(error_object(answer.body)["error"]["code"])


def test_a_token_gets_a_friendly_name_and_keeps_its_id(initialised: Api) -> None:
    """PATCH: 200 with the Token named so; GET shows the name; the id (and the path) stay ``soft``."""
    key = initialised.api_key(Role.SECURITY_OFFICER)
    answer = initialised.request("PATCH", "/api/v1/tokens/soft", key=key, json_body={"name": "Main token"})
    assert answer.status == 200, answer.body
    assert (answer.json()["id"], answer.json()["name"]) == ("soft", "Main token")
    shown = initialised.request("GET", "/api/v1/tokens/soft", key=initialised.api_key(Role.SECURITYSERVER_OBSERVER))
    assert shown.json()["name"] == "Main token"


def test_token_renames_that_are_refused(initialised: Api) -> None:
    """Unknown token 404; empty, too long, non-text or missing name 400; an unknown field 400; the observer 403."""
    key = initialised.api_key(Role.SECURITY_OFFICER)
    assert initialised.request("PATCH", "/api/v1/tokens/nope", key=key, json_body={"name": "x"}).status == 404
    for body in ({"name": ""}, {"name": "x" * 256}, {"name": 5}, {}, {"name": "x", "extra": 1}, {"name": "a\nb"}):
        answer = initialised.request("PATCH", "/api/v1/tokens/soft", key=key, json_body=body)
        assert answer.status == 400, (body, answer.body)
    observer = initialised.api_key(Role.SECURITYSERVER_OBSERVER)
    assert initialised.request("PATCH", "/api/v1/tokens/soft", key=observer, json_body={"name": "x"}).status == 403
    shown = initialised.request("GET", "/api/v1/tokens/soft", key=observer).json()
    assert shown["name"] == "soft"


def test_add_key_makes_a_named_sign_key_without_a_request(initialised: Api) -> None:
    """addKey: 201 with the Key (SIGNING, named by its label, no certificate, no request), listed on the token; a
    CSR can be made for it afterwards."""
    key = initialised.api_key(Role.REGISTRATION_OFFICER)
    answer = initialised.request("POST", "/api/v1/tokens/soft/keys", key=key, json_body={"label": "sign 2027"})
    assert answer.status == 201, answer.body
    made = answer.json()
    assert (made["name"], made["usage"], made["certificates"], made["certificate_signing_requests"]) == (
        "sign 2027", "SIGNING", [], [])
    assert "GENERATE_SIGN_CSR" in made["possible_actions"]
    token = initialised.request("GET", "/api/v1/tokens/soft", key=key).json()
    assert made["id"] in [k["id"] for k in token["keys"]]
    unnamed = initialised.request("POST", "/api/v1/tokens/soft/keys", key=key, json_body={})
    assert unnamed.status == 201 and unnamed.json()["name"] == unnamed.json()["id"]


def test_add_key_refusals(initialised: Api) -> None:
    """A logged-out token 409 action_not_possible; unknown token 404; a bad label 400; a security officer alone
    403 (a key without a request is a sign key); nothing is made."""
    key = initialised.api_key(Role.REGISTRATION_OFFICER, Role.SECURITY_OFFICER)
    before = len(initialised.request("GET", "/api/v1/tokens/soft", key=key).json()["keys"])
    assert initialised.request("PUT", "/api/v1/tokens/soft/logout", key=key).status == 200
    logged_out = initialised.request("POST", "/api/v1/tokens/soft/keys", key=key, json_body={"label": "x"})
    assert (logged_out.status, _code(logged_out)) == (409, "action_not_possible")
    assert initialised.request("PUT", "/api/v1/tokens/soft/login", key=key,
                               json_body={"password": "Secret-1234"}).status == 200
    assert initialised.request("POST", "/api/v1/tokens/nope/keys", key=key, json_body={}).status == 404
    for body in ({"label": ""}, {"label": 7}, {"label": "x", "usage": "AUTHENTICATION"}):
        assert initialised.request("POST", "/api/v1/tokens/soft/keys", key=key, json_body=body).status == 400, body
    officer = initialised.api_key(Role.SECURITY_OFFICER)
    assert initialised.request("POST", "/api/v1/tokens/soft/keys", key=officer, json_body={}).status == 403
    assert len(initialised.request("GET", "/api/v1/tokens/soft", key=key).json()["keys"]) == before


def test_a_kept_request_can_be_deleted(initialised: Api) -> None:
    """A request's possible actions: DELETE; an unknown request or key 404, a request id with a path in it 404."""
    key = initialised.api_key(Role.REGISTRATION_OFFICER)
    made = initialised.request("POST", "/api/v1/tokens/soft/keys-with-csrs", key=key, json_body={
        "csr_generate_request": {"key_usage_type": "SIGNING", "ca_name": "Test CA", "csr_format": "PEM",
                                 "member_id": "EE:GOV:70000310", "subject_field_values": {"O": "Test Org"}}}).json()
    key_id, csr_id = made["key"]["id"], made["csr_id"]
    answer = initialised.request("GET", f"/api/v1/keys/{key_id}/csrs/{csr_id}/possible-actions", key=key)
    assert (answer.status, answer.json()) == (200, ["DELETE"])
    for path in (f"/keys/{key_id}/csrs/nope/possible-actions", f"/keys/nope/csrs/{csr_id}/possible-actions",
                 f"/keys/{key_id}/csrs/..%2F{csr_id}/possible-actions"):
        assert initialised.request("GET", f"/api/v1{path}", key=key, check=False).status == 404, path
