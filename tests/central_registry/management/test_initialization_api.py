"""The registry API's initialisation and system status (X-Road's /initialization and /system)."""

from __future__ import annotations

from central_registry.management.roles import Role
from central_registry.store import RegistryStore
from tests.central_registry.management.harness import ADMIN_PASSWORD, RegistryApi

INIT = {"instance_identifier": "EE", "central_server_address": "cs.example.org", "software_token_pin": "s3cret-pin"}


def test_an_empty_directory_is_not_initialised(api: RegistryApi, admin_key: str) -> None:
    """Before initialisation the status has empty values and a token that is not initialised (X-Road answers
    empty strings too, which its file's ``minLength: 1`` does not allow: this one answer is not checked)."""
    answer = api.request("GET", "/api/v1/initialization/status", key=admin_key, check=False)
    assert answer.status == 200
    assert answer.json() == {"instance_identifier": "", "central_server_address": "",
                             "software_token_init_status": "NOT_INITIALIZED"}


def test_initialisation_sets_instance_address_and_pin_and_nothing_else(api: RegistryApi, admin_key: str) -> None:
    """POST /initialization stores the instance, the address and the PIN's hash; no member class, CA or TSA."""
    answer = api.request("POST", "/api/v1/initialization", json_body=INIT, key=admin_key)
    assert answer.status == 201
    status = api.request("GET", "/api/v1/initialization/status", key=admin_key).json()
    assert status == {"instance_identifier": "EE", "central_server_address": "cs.example.org",
                      "software_token_init_status": "INITIALIZED"}
    store = RegistryStore(api.paths.database)
    try:
        assert store.member_classes() == {}
        assert store.cas() == [] and store.tsas() == []
        assert "s3cret-pin" not in repr(store.db.query("SELECT value FROM settings"))
    finally:
        store.close()
    assert api.paths.conf_signing.is_dir() and not api.paths.ca.exists()


def test_a_second_initialisation_is_a_conflict(api: RegistryApi, admin_key: str) -> None:
    """Initialising twice answers 409 with X-Road's error object and changes nothing."""
    assert api.request("POST", "/api/v1/initialization", json_body=INIT, key=admin_key).status == 201
    again = api.request("POST", "/api/v1/initialization", json_body={**INIT, "instance_identifier": "FI"},
                        key=admin_key, check=False)
    assert again.status == 409
    assert again.json()["error"]["code"] == "init_already_initialized"
    assert api.request("GET", "/api/v1/initialization/status", key=admin_key).json()["instance_identifier"] == "EE"


def test_initialisation_needs_every_field(api: RegistryApi, admin_key: str) -> None:
    """A missing PIN is a 400 naming the field."""
    body = {k: v for k, v in INIT.items() if k != "software_token_pin"}
    answer = api.request("POST", "/api/v1/initialization", json_body=body, key=admin_key)
    assert answer.status == 400
    assert answer.json()["error"] == {"code": "missing_field", "metadata": ["software_token_pin"]}


def test_only_the_system_administrator_initialises(api: RegistryApi) -> None:
    """A registration officer may read the status but not initialise (403)."""
    key = api.api_key(Role.REGISTRATION_OFFICER)
    assert api.request("GET", "/api/v1/initialization/status", key=key, check=False).status == 200
    answer = api.request("POST", "/api/v1/initialization", json_body=INIT, key=key)
    assert answer.status == 403
    assert answer.json()["error"]["code"] == "permission_denied"


def test_system_status_and_address_change(registry: RegistryApi) -> None:
    """GET /system/status tells the initialisation status; PUT /system/server-address changes the address."""
    key = registry.api_key(Role.SYSTEM_ADMINISTRATOR)
    status = registry.request("GET", "/api/v1/system/status", key=key).json()
    assert status["initialization_status"]["instance_identifier"] == "EE"
    assert status["high_availability_status"]["is_ha_configured"] is False
    changed = registry.request("PUT", "/api/v1/system/server-address",
                               json_body={"central_server_address": "cs2.example.org"}, key=key)
    assert changed.status == 200
    assert changed.json()["initialization_status"]["central_server_address"] == "cs2.example.org"


def test_requests_without_credentials_are_refused(api: RegistryApi) -> None:
    """No API key: 401 with X-Road's error object."""
    answer = api.request("GET", "/api/v1/initialization/status")
    assert answer.status == 401
    assert answer.json() == {"status": 401, "error": {"code": "unauthorized"}}


def test_a_user_logs_in_and_writes_with_the_xsrf_token(registry: RegistryApi) -> None:
    """Form login sets the session and XSRF cookies; a write with the session needs the token (403 without it);
    the audit log names the user and the session."""
    login = registry.request("POST", "/login", body=f"username=admin&password={ADMIN_PASSWORD}".encode(),
                             content_type="application/x-www-form-urlencoded")
    assert login.status == 200
    cookies = login.cookies()
    body = {"central_server_address": "cs3.example.org"}
    refused = registry.request("PUT", "/api/v1/system/server-address", json_body=body,
                               cookies={"JSESSIONID": cookies["JSESSIONID"]}, check=False)
    assert refused.status == 403 and refused.json()["error"]["code"] == "xsrf_token_invalid"
    allowed = registry.request("PUT", "/api/v1/system/server-address", json_body=body,
                               cookies={"JSESSIONID": cookies["JSESSIONID"]},
                               headers={"X-XSRF-TOKEN": cookies["XSRF-TOKEN"]})
    assert allowed.status == 200
    last = (registry.root / "management-audit.jsonl").read_text().splitlines()[-1]
    assert '"user":"admin"' in last and '"auth":"session"' in last and '"operation":"updateCentralServerAddress"' in last
