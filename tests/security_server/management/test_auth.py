"""Authentication, roles, XSRF, limits and the audit log of the management API."""

from __future__ import annotations

import json
from typing import Any

from security_server.management.audit import AUDIT_NAME
from security_server.management.roles import Role
from security_server.management.throttle import DEFAULT_MAX_FAILURES, DEFAULT_WINDOW_SECONDS
from tests.security_server.management.harness import ADMIN_PASSWORD, START, Api
from tests.security_server.management.xroad_openapi import error_object

SUB = {"member_class": "GOV", "member_code": "70000310", "subsystem_code": "registry"}


def _login(api: Api, username: str = "admin", password: str = ADMIN_PASSWORD) -> dict[str, str]:
    answer = api.request("POST", "/login", body=f"username={username}&password={password}".encode(),
                         content_type="application/x-www-form-urlencoded")
    assert answer.status == 200, answer.body
    return answer.cookies()


def _audit(api: Api) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (api.directory / AUDIT_NAME).read_text().splitlines()]


# --- credentials -----------------------------------------------------------------------------------------------


def test_no_credentials_is_401_with_the_error_object(initialised: Api) -> None:
    """A request without credentials is 401 with X-Road's error object."""
    answer = initialised.request("GET", "/api/v1/clients")
    assert answer.status == 401 and error_object(answer.body) == {"status": 401, "error": {"code": "unauthorized"}}


def test_an_unknown_api_key_is_401(initialised: Api) -> None:
    """A key that was never made is 401."""
    assert initialised.request("GET", "/api/v1/clients", key="0" * 64).status == 401


def test_a_role_without_the_permission_is_403(initialised: Api) -> None:
    """An observer may list clients but not add one: 403 permission_denied, nothing added."""
    key = initialised.api_key(Role.SECURITYSERVER_OBSERVER)
    assert initialised.request("GET", "/api/v1/clients", key=key).status == 200
    answer = initialised.request("POST", "/api/v1/clients", key=key, json_body={"client": SUB})
    assert answer.status == 403
    assert error_object(answer.body)["error"] == {"code": "permission_denied", "metadata": ["addClient"]}
    assert len(initialised.server_dir.snapshot().clients) == 1


def test_the_role_is_checked_before_the_body(initialised: Api) -> None:
    """A caller without the role learns nothing about its body: 403 even when the body is malformed."""
    key = initialised.api_key(Role.SERVICE_ADMINISTRATOR)
    answer = initialised.request("POST", "/api/v1/clients", key=key, body=b"{", content_type="application/json")
    assert answer.status == 403


# --- API keys -------------------------------------------------------------------------------------------------------


def test_api_keys_are_made_used_and_revoked(initialised: Api) -> None:
    """An administrator makes a key with Basic auth, the key works, and once revoked it is 401."""
    admin = ("admin", ADMIN_PASSWORD)
    made = initialised.request("POST", "/api/v1/api-keys", basic=admin, json_body=["XROAD_REGISTRATION_OFFICER"])
    assert made.status == 200 and made.json()["roles"] == ["XROAD_REGISTRATION_OFFICER"]
    key, key_id = made.json()["key"], made.json()["id"]
    assert initialised.request("POST", "/api/v1/clients", key=key, json_body={"client": SUB}).status == 201
    listed = initialised.request("GET", "/api/v1/api-keys", basic=admin).json()
    assert {"id": key_id, "roles": ["XROAD_REGISTRATION_OFFICER"]} in listed and all("key" not in k for k in listed)
    updated = initialised.request("PUT", f"/api/v1/api-keys/{key_id}", basic=admin, json_body=["XROAD_SECURITYSERVER_OBSERVER"])
    assert updated.json() == {"id": key_id, "roles": ["XROAD_SECURITYSERVER_OBSERVER"]}
    assert initialised.request("POST", "/api/v1/clients", key=key, json_body={"client": SUB}).status == 403
    assert initialised.request("DELETE", f"/api/v1/api-keys/{key_id}", basic=admin).status == 204
    assert initialised.request("GET", "/api/v1/clients", key=key).status == 401
    assert initialised.request("GET", f"/api/v1/api-keys/{key_id}", basic=admin).status == 404


def test_an_api_key_cannot_manage_api_keys(initialised: Api) -> None:
    """Keys are managed by people: even an administrator's key is 401 on /api-keys."""
    key = initialised.api_key(Role.SYSTEM_ADMINISTRATOR)
    assert initialised.request("POST", "/api/v1/api-keys", key=key, json_body=["XROAD_SYSTEM_ADMINISTRATOR"]).status == 401


def test_an_unknown_role_is_refused(initialised: Api) -> None:
    """A key with a role X-Road does not have is 400 and is not made."""
    with initialised.credentials() as store:
        before = store.api_keys()
    answer = initialised.request("POST", "/api/v1/api-keys", basic=("admin", ADMIN_PASSWORD), json_body=["ROOT"])
    assert answer.status == 400 and error_object(answer.body)["error"]["code"] == "invalid_role"
    with initialised.credentials() as store:
        assert store.api_keys() == before


def test_a_wrong_basic_password_is_401(initialised: Api) -> None:
    """Basic auth with a wrong password is 401."""
    assert initialised.request("GET", "/api/v1/api-keys", basic=("admin", "wrong")).status == 401


def test_keys_are_stored_hashed(initialised: Api) -> None:
    """The plain key is nowhere in the credential database."""
    key = initialised.api_key(Role.SYSTEM_ADMINISTRATOR)
    assert key.encode() not in (initialised.directory / "management.db").read_bytes()


# --- sessions and XSRF ------------------------------------------------------------------------------------------


def test_login_sets_the_session_and_xsrf_cookies(initialised: Api) -> None:
    """A form login answers 200 with JSESSIONID and XSRF-TOKEN; the session reads without a key."""
    cookies = _login(initialised)
    assert set(cookies) == {"JSESSIONID", "XSRF-TOKEN"}
    answer = initialised.request("GET", "/api/v1/clients", cookies={"JSESSIONID": cookies["JSESSIONID"]})
    assert answer.status == 200


def test_json_login_is_accepted(initialised: Api) -> None:
    """X-Road's LoginRequest as JSON logs in too."""
    answer = initialised.request("POST", "/api/v1/login", json_body={"username": "admin", "password": ADMIN_PASSWORD})
    assert answer.status == 200 and "JSESSIONID" in answer.cookies()


def test_a_write_with_a_session_needs_the_xsrf_header(initialised: Api) -> None:
    """Without X-XSRF-TOKEN (or with another value) a session write is 403; with it, it goes through."""
    with initialised.credentials() as store:
        store.add_user("officer", "officer-pass", frozenset({Role.REGISTRATION_OFFICER}), now=START)
    cookies = _login(initialised, "officer", "officer-pass")
    session = {"JSESSIONID": cookies["JSESSIONID"]}
    bare = initialised.request("POST", "/api/v1/clients", cookies=session, json_body={"client": SUB})
    assert bare.status == 403 and error_object(bare.body)["error"]["code"] == "xsrf_token_invalid"
    wrong = initialised.request("POST", "/api/v1/clients", cookies=session, json_body={"client": SUB},
                                headers={"X-XSRF-TOKEN": "guess"})
    assert wrong.status == 403
    good = initialised.request("POST", "/api/v1/clients", cookies=session, json_body={"client": SUB},
                               headers={"X-XSRF-TOKEN": cookies["XSRF-TOKEN"]})
    assert good.status == 201


def test_logout_ends_the_session(initialised: Api) -> None:
    """After logout the session cookie is 401."""
    cookies = _login(initialised)
    session = {"JSESSIONID": cookies["JSESSIONID"]}
    out = initialised.request("DELETE", "/api/v1/logout", cookies=session, headers={"X-XSRF-TOKEN": cookies["XSRF-TOKEN"]})
    assert out.status == 204
    assert initialised.request("GET", "/api/v1/clients", cookies=session).status == 401


def test_an_idle_session_expires(initialised: Api) -> None:
    """A session unused for longer than the idle limit is gone."""
    cookies = _login(initialised)
    initialised.clock.advance(initialised.config.session_idle_seconds + 1)
    assert initialised.request("GET", "/api/v1/clients", cookies={"JSESSIONID": cookies["JSESSIONID"]}).status == 401


def test_login_attempts_are_rate_limited(initialised: Api) -> None:
    """After the allowed failures even the right password is 429, until the window has passed."""
    for _ in range(DEFAULT_MAX_FAILURES):
        wrong = initialised.request("POST", "/login", json_body={"username": "admin", "password": "nope"})
        assert wrong.status == 401
    blocked = initialised.request("POST", "/login", json_body={"username": "admin", "password": ADMIN_PASSWORD})
    assert blocked.status == 429 and error_object(blocked.body)["error"]["code"] == "too_many_login_attempts"
    initialised.clock.advance(DEFAULT_WINDOW_SECONDS + 1)
    assert initialised.request("POST", "/login", json_body={"username": "admin", "password": ADMIN_PASSWORD}).status == 200


# --- transport rules --------------------------------------------------------------------------------------------


def test_an_unknown_path_is_404_and_a_wrong_method_405(initialised: Api) -> None:
    """Unknown paths are 404; a GET on a write-only path is 405 and changes nothing (no write through a GET)."""
    key = initialised.api_key(Role.SYSTEM_ADMINISTRATOR)
    assert initialised.request("GET", "/api/v1/nothing-here", key=key).status == 404
    answer = initialised.request("GET", "/api/v1/initialization", key=key, check=False)
    assert answer.status == 405 and error_object(answer.body)["error"]["code"] == "method_not_allowed"


def test_a_body_over_the_limit_is_413(initialised: Api) -> None:
    """A body larger than [management] max-body-bytes is refused with 413 before the operation runs."""
    key = initialised.api_key(Role.SYSTEM_ADMINISTRATOR)
    big = b"x" * (initialised.config.max_body_bytes + 1)
    answer = initialised.request("PUT", "/api/v1/system/anchor", body=big, content_type="application/octet-stream",
                                 key=key, check=False)
    assert answer.status == 413 and error_object(answer.body)["error"]["code"] == "request_too_large"


def test_answers_are_not_cached(initialised: Api) -> None:
    """Every answer says Cache-Control: no-store and nosniff."""
    answer = initialised.request("GET", "/api/v1/clients", key=initialised.api_key(Role.SECURITYSERVER_OBSERVER))
    assert answer.header("cache-control") == "no-store" and answer.header("x-content-type-options") == "nosniff"


# --- audit --------------------------------------------------------------------------------------------------------


def test_every_write_is_audited_with_who_what_and_result(initialised: Api) -> None:
    """Allowed and refused writes each get a line; reads get none; no password or key is written."""
    key = initialised.api_key(Role.REGISTRATION_OFFICER)
    before = len(_audit(initialised))
    initialised.request("GET", "/api/v1/clients", key=key)
    initialised.request("POST", "/api/v1/clients", key=key, json_body={"client": SUB})
    initialised.request("POST", "/api/v1/clients", key=key, json_body={"client": SUB})
    initialised.request("POST", "/api/v1/clients", json_body={"client": SUB})
    lines = _audit(initialised)[before:]
    assert [(e["operation"], e["status"], e["result"]) for e in lines] == [
        ("addClient", 201, "success"), ("addClient", 409, "failure"), ("addClient", 401, "failure")]
    assert lines[0]["user"].startswith("api-key:") and lines[0]["auth"] == "api-key"
    assert lines[1]["error_code"] == "client_already_exists" and lines[2]["user"] == "anonymous"
    _login(initialised)
    text = (initialised.directory / AUDIT_NAME).read_text()
    assert ADMIN_PASSWORD not in text and key not in text
    assert _audit(initialised)[-1]["operation"] == "login"
