"""``/tokens/{id}/login``, ``/logout`` and ``/pin``: the soft token's PIN through X-Road's API."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from security_server.admin import keys
from security_server.management.roles import Role
from security_server.signer.softtoken import KeyKind, TokenNotActive
from security_server.signer.softtoken_pin import LOGINS
from security_server.signer.token import TokenStatus
from tests.security_server.management.harness import Api
from tests.security_server.management.xroad_openapi import error_object

PIN = "Secret-1234"  # the initialised fixture's software_token_pin


@pytest.fixture(autouse=True)
def _forget_logins(api: Api) -> object:
    """Each test's token starts as its initialisation leaves it, and is logged out after it."""
    yield None
    LOGINS.forget(api.server_dir.keys_path)


def _code(answer: object) -> str:
    return str(error_object(answer.body)["error"]["code"])  # type: ignore[attr-defined]


def _soft(api: Api, key: str) -> dict[str, object]:
    answer = api.request("GET", "/api/v1/tokens/soft", key=key)
    assert answer.status == 200
    data: dict[str, object] = answer.json()
    return data


def test_initialisation_with_a_pin_encrypts_the_keys_and_leaves_the_token_logged_in(initialised: Api) -> None:
    """software_token_pin sets the PIN: pin.json exists, a new key is encrypted, the token is logged in."""
    made = keys.generate_key(initialised.server_dir, KeyKind.SIGN)
    keys_path = initialised.server_dir.keys_path
    assert (keys_path / "pin.json").is_file()
    assert b"ENCRYPTED PRIVATE KEY" in (keys_path / f"{made.info.key_id}.key.pem").read_bytes()
    assert PIN.encode() not in (keys_path / "pin.json").read_bytes()
    token = _soft(initialised, initialised.api_key(Role.SECURITYSERVER_OBSERVER))
    assert (token["logged_in"], token["status"]) == (True, "OK")


def test_logout_locks_the_keys_and_login_unlocks_them(initialised: Api) -> None:
    """After logout the token is logged_in false and signing is token_not_active; a login brings it back."""
    keys.generate_key(initialised.server_dir, KeyKind.SIGN)
    officer = initialised.api_key(Role.SECURITY_OFFICER)
    out = initialised.request("PUT", "/api/v1/tokens/soft/logout", key=officer)
    assert out.status == 200 and out.json()["logged_in"] is False
    assert initialised.server_dir.soft_token().status() is TokenStatus.LOGGED_OUT
    with pytest.raises(TokenNotActive):
        initialised.server_dir.soft_token().generate(KeyKind.SIGN, keys.list_tokens(initialised.server_dir)[0].keys[0].owner)
    back = initialised.request("PUT", "/api/v1/tokens/soft/login", key=officer, json_body={"password": PIN})
    assert back.status == 200 and (back.json()["logged_in"], back.json()["status"]) == (True, "OK")
    assert initialised.server_dir.soft_token().status() is TokenStatus.LOGGED_IN


def test_a_wrong_pin_is_pin_incorrect_and_the_token_shows_it(initialised: Api) -> None:
    """A wrong PIN: 400 pin_incorrect, token status USER_PIN_INCORRECT and still logged out; the right PIN works."""
    admin = initialised.api_key(Role.SYSTEM_ADMINISTRATOR)
    initialised.request("PUT", "/api/v1/tokens/soft/logout", key=admin)
    for _ in range(5):  # no lock, as X-Road's soft token
        wrong = initialised.request("PUT", "/api/v1/tokens/soft/login", key=admin, json_body={"password": "nope"})
        assert wrong.status == 400 and _code(wrong) == "pin_incorrect"
    token = _soft(initialised, admin)
    assert (token["logged_in"], token["status"]) == (False, "USER_PIN_INCORRECT")
    right = initialised.request("PUT", "/api/v1/tokens/soft/login", key=admin, json_body={"password": PIN})
    assert right.status == 200 and right.json()["status"] == "OK"


def test_adding_a_key_to_a_logged_out_token_is_not_possible(initialised: Api) -> None:
    """POST keys-with-csrs while logged out is 409 action_not_possible (X-Road: GENERATE_KEY needs an active token)."""
    officer = initialised.api_key(Role.SECURITY_OFFICER)
    initialised.request("PUT", "/api/v1/tokens/soft/logout", key=officer)
    answer = initialised.request("POST", "/api/v1/tokens/soft/keys-with-csrs", key=officer, json_body={
        "csr_generate_request": {"key_usage_type": "AUTHENTICATION", "ca_name": "CA", "csr_format": "PEM",
                                 "subject_field_values": {"O": "Org"}}})
    assert answer.status == 409 and _code(answer) == "action_not_possible"


def test_changing_the_pin_reencrypts_and_only_the_new_pin_logs_in(initialised: Api) -> None:
    """PUT /tokens/soft/pin: a wrong old PIN is pin_incorrect; the right one changes it, the old one stops working."""
    made = keys.generate_key(initialised.server_dir, KeyKind.SIGN)
    key_file = initialised.server_dir.keys_path / f"{made.info.key_id}.key.pem"
    before = key_file.read_bytes()
    admin = initialised.api_key(Role.SYSTEM_ADMINISTRATOR)
    wrong = initialised.request("PUT", "/api/v1/tokens/soft/pin", key=admin,
                                json_body={"old_pin": "nope", "new_pin": "Other-5678"})
    assert wrong.status == 400 and _code(wrong) == "pin_incorrect"
    changed = initialised.request("PUT", "/api/v1/tokens/soft/pin", key=admin,
                                  json_body={"old_pin": PIN, "new_pin": "Other-5678"})
    assert changed.status == 204 and key_file.read_bytes() != before
    initialised.request("PUT", "/api/v1/tokens/soft/logout", key=admin)
    old = initialised.request("PUT", "/api/v1/tokens/soft/login", key=admin, json_body={"password": PIN})
    assert old.status == 400
    new = initialised.request("PUT", "/api/v1/tokens/soft/login", key=admin, json_body={"password": "Other-5678"})
    assert new.status == 200 and new.json()["logged_in"] is True


def test_roles_unknown_tokens_and_bad_bodies(initialised: Api) -> None:
    """Observer and registration officer may not log in (403); only the system administrator changes the PIN;
    an unknown token is 404 token_not_found; a body without the password is 400."""
    for role in (Role.SECURITYSERVER_OBSERVER, Role.REGISTRATION_OFFICER):
        refused = initialised.request("PUT", "/api/v1/tokens/soft/logout", key=initialised.api_key(role))
        assert refused.status == 403
    officer = initialised.api_key(Role.SECURITY_OFFICER)
    pin = initialised.request("PUT", "/api/v1/tokens/soft/pin", key=officer, json_body={"old_pin": PIN, "new_pin": "x"})
    assert pin.status == 403
    for path, body in (("login", {"password": PIN}), ("logout", None)):
        missing = initialised.request("PUT", f"/api/v1/tokens/nothing/{path}", key=officer, json_body=body)
        assert missing.status == 404 and _code(missing) == "token_not_found"
    empty = initialised.request("PUT", "/api/v1/tokens/soft/login", key=officer, json_body={})
    assert empty.status == 400
    extra = initialised.request("PUT", "/api/v1/tokens/soft/login", key=officer,
                                json_body={"password": PIN, "pin": PIN})
    assert extra.status == 400 and _code(extra) == "unknown_field"


def test_a_token_without_a_pin_works_until_one_is_set(api: Api, anchor_bytes: bytes, tmp_path: Path) -> None:
    """Initialised without a PIN (the migration case): always logged in, login is 409, a first PIN is set by
    PUT /tokens/soft/pin, after which its keys are encrypted and it logs out and in."""
    admin = api.api_key(Role.SYSTEM_ADMINISTRATOR)
    api.request("POST", "/api/v1/system/anchor", body=anchor_bytes, content_type="application/octet-stream", key=admin)
    assert api.request("POST", "/api/v1/initialization", key=admin, json_body={
        "owner_member_class": "GOV", "owner_member_code": "70000310", "security_server_code": "ss1"}).status == 201
    made = keys.generate_key(api.server_dir, KeyKind.SIGN)
    key_file = api.server_dir.keys_path / f"{made.info.key_id}.key.pem"
    assert b"BEGIN PRIVATE KEY" in key_file.read_bytes()
    login = api.request("PUT", "/api/v1/tokens/soft/login", key=admin, json_body={"password": PIN})
    assert login.status == 400 and _code(login) == "action_not_possible"
    assert _soft(api, admin)["logged_in"] is True
    first = api.request("PUT", "/api/v1/tokens/soft/pin", key=admin, json_body={"old_pin": "-", "new_pin": PIN})
    assert first.status == 204 and b"ENCRYPTED PRIVATE KEY" in key_file.read_bytes()
    assert api.request("PUT", "/api/v1/tokens/soft/logout", key=admin).json()["logged_in"] is False
    assert api.request("PUT", "/api/v1/tokens/soft/login", key=admin, json_body={"password": PIN}).status == 200


def test_the_token_shows_what_can_be_done_to_it(initialised: Api) -> None:
    """possible_actions: logged in, GENERATE_KEY, LOGOUT and TOKEN_CHANGE_PIN; logged out, LOGIN only; its keys'
    and certificates' possible actions are shown with them."""
    keys.generate_key(initialised.server_dir, KeyKind.SIGN)
    admin = initialised.api_key(Role.SYSTEM_ADMINISTRATOR)
    token = _soft(initialised, admin)
    assert token["possible_actions"] == ["GENERATE_KEY", "LOGOUT", "TOKEN_CHANGE_PIN"]
    shown: Any = token["keys"]
    assert shown[0]["possible_actions"] == ["DELETE", "GENERATE_SIGN_CSR", "EDIT_FRIENDLY_NAME"]
    initialised.request("PUT", "/api/v1/tokens/soft/logout", key=admin)
    token = _soft(initialised, admin)
    assert token["possible_actions"] == ["LOGIN"]
    shown = token["keys"]
    assert shown[0]["possible_actions"] == ["EDIT_FRIENDLY_NAME"]
