"""The registry's token and configuration-signing keys through its API: listed in X-Road's shapes, logged out
and in with the PIN (signing stops and resumes), a second key added (the anchor lists it), activated (it signs
the next configuration, which the anchor made before still verifies) and the old one deleted."""

from __future__ import annotations

from typing import Iterator

import pytest

from central_registry.management.roles import Role
from central_registry.publisher import Publisher, SelfSignedKey
from central_registry.store import RegistryStore
from security_server.core.globalconf.anchor import parse_configuration_anchor
from security_server.core.globalconf.directory import parse_signed_directory, verify_signed_directory
from security_server.schemafiles import load_schema
from security_server.signer.token import TokenNotActive
from tests.central_registry.management.harness import START, RegistryApi

SIGNING_KEYS = "/api/v1/configuration-sources/INTERNAL/signing-keys"


@pytest.fixture
def running(registry: RegistryApi) -> Iterator[RegistryApi]:
    """An initialised registry (PIN ``1234``) with the publisher a running registry has."""
    store = RegistryStore(registry.paths.database)
    registry.publisher = Publisher(store, registry.paths.published, SelfSignedKey.load(registry.paths.conf_signing),
                                   public_url="http://127.0.0.1:8090", management_url="https://127.0.0.1:8443/m",
                                   management_cert_der=SelfSignedKey.load(registry.paths.tls).cert_der,
                                   conf_signing_dir=registry.paths.conf_signing)
    yield registry
    store.close()


def _anchor_certs(api: RegistryApi, key: str) -> int:
    body = api.request("GET", "/api/v1/configuration-sources/INTERNAL/anchor/download", key=key).body
    return len(parse_configuration_anchor(body, load_schema("configuration-anchor.xsd")).sources[0].verification_certs)


def test_the_token_is_listed_with_its_active_key(running: RegistryApi) -> None:
    """GET /tokens: softToken-0, logged in, one active key that can be neither activated nor deleted."""
    tokens = running.request("GET", "/api/v1/tokens", key=running.api_key(Role.OBSERVER)).json()
    assert [(t["id"], t["name"], t["logged_in"]) for t in tokens] == [("0", "softToken-0", True)]
    assert set(tokens[0]["possible_actions"]) == {"LOGOUT", "GENERATE_INTERNAL_KEY"}
    [key] = tokens[0]["configuration_signing_keys"]
    assert key["active"] is True and key["possible_actions"] == [] and key["source_type"] == "INTERNAL"


def test_logged_out_nothing_is_signed_until_the_pin_logs_in(running: RegistryApi) -> None:
    """Logout stops configuration signing (token_not_active); a wrong PIN is 400 pin_incorrect; the right one
    resumes it."""
    assert running.publisher is not None
    key = running.api_key(Role.SECURITY_OFFICER)
    out = running.request("PUT", "/api/v1/tokens/0/logout", key=key)
    assert out.status == 200 and out.json()["logged_in"] is False and out.json()["possible_actions"] == ["LOGIN"]
    with pytest.raises(TokenNotActive):
        running.publisher.build(START)
    wrong = running.request("PUT", "/api/v1/tokens/0/login", key=key, json_body={"password": "4321"})
    assert wrong.status == 400 and wrong.json()["error"]["code"] == "pin_incorrect"
    right = running.request("PUT", "/api/v1/tokens/0/login", key=key, json_body={"password": "1234"})
    assert right.status == 200 and right.json()["logged_in"] is True
    running.publisher.build(START)
    unknown = running.request("PUT", "/api/v1/tokens/7/logout", key=key)
    assert unknown.status == 404 and unknown.json()["error"]["code"] == "token_not_found"


def test_a_key_is_added_activated_and_the_old_one_deleted(running: RegistryApi) -> None:
    """A second key is listed in the anchor; a third is refused; the active one cannot be deleted; once the new
    key is activated it signs, and the anchor made with both keys verifies it; the old key is then deleted."""
    assert running.publisher is not None
    key = running.api_key(Role.SECURITY_OFFICER)
    old_id = running.request("GET", "/api/v1/tokens", key=key).json()[0]["configuration_signing_keys"][0]["id"]
    added = running.request("POST", SIGNING_KEYS, key=key, json_body={"token_id": "0", "key_label": "next"})
    assert added.status == 201, added.body
    new = added.json()
    assert (new["active"], new["label"], sorted(new["possible_actions"])) == (False, {"label": "next"},
                                                                               ["ACTIVATE", "DELETE"])
    assert _anchor_certs(running, key) == 2
    anchor = parse_configuration_anchor(
        running.request("GET", "/api/v1/configuration-sources/INTERNAL/anchor/download", key=key).body,
        load_schema("configuration-anchor.xsd"))
    third = running.request("POST", SIGNING_KEYS, key=key, json_body={"token_id": "0", "key_label": "third"})
    assert third.status == 400 and third.json()["error"]["code"] == "token_action_not_possible"
    active = running.request("DELETE", f"/api/v1/signing-keys/{old_id}", key=key)
    assert active.status == 400 and active.json()["error"]["code"] == "signing_key_action_not_possible"

    assert running.request("PUT", f"/api/v1/signing-keys/{new['id']}/activate", key=key).status == 204
    keys = running.request("GET", "/api/v1/tokens", key=key).json()[0]["configuration_signing_keys"]
    assert {k["id"]: k["active"] for k in keys} == {new["id"]: True, old_id: False}
    assert SelfSignedKey.load(running.paths.conf_signing).cert == running.publisher.signing_key.cert
    publication = running.publisher.build(START)
    verify_signed_directory(parse_signed_directory(publication.content_type, publication.directory), anchor, START)

    assert running.request("DELETE", f"/api/v1/signing-keys/{old_id}", key=key).status == 204
    assert _anchor_certs(running, key) == 1
    gone = running.request("DELETE", f"/api/v1/signing-keys/{old_id}", key=key)
    assert gone.status == 404 and gone.json()["error"]["code"] == "signing_key_not_found"


def test_an_observer_changes_no_key(running: RegistryApi) -> None:
    """Adding a key and logging out are the security officer's or system administrator's: 403."""
    key = running.api_key(Role.OBSERVER)
    assert running.request("POST", SIGNING_KEYS, key=key, json_body={"token_id": "0", "key_label": "x"}).status == 403
    assert running.request("PUT", "/api/v1/tokens/0/logout", key=key).status == 403
