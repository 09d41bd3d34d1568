"""``/tokens`` and the configuration-signing keys: the registry's token with its keys, login and logout with its
PIN; a key added on it, activated, deleted (central_registry/admin/signing_keys.py).

The token is the running registry's: before the registry runs (the API alone, before initialisation) these
answer 409 ``not_initialized``.
"""

from __future__ import annotations

from typing import Any

from central_registry.admin import signing_keys as admin
from central_registry.admin.errors import NotInitialised
from central_registry.admin.signing_keys import RegistryToken, SigningKey
from central_registry.management.context import RegistryContext
from central_registry.management.operations.common import PREFIX, xroad_time
from central_registry.management.permissions import roles_for
from central_registry.publisher import Publisher
from central_registry.service import RegistryPaths
from central_registry.store import RegistryStore
from security_server.management.api import ApiRequest, ApiResponse, Operation, no_content, string_field
from security_server.management.errors import ApiError, bad_request

HSM_TOKEN = "pkcs11"
"""The id and name of the PKCS#11 token that holds the key when ``[conf-signing] token`` names one."""


def _key_json(token: RegistryToken, key: SigningKey) -> dict[str, Any]:
    actions = [] if key.active or not token.logged_in or not token.soft else ["ACTIVATE", "DELETE"]
    return {"id": key.id, "token_id": token.id, "key_hash": key.key_hash, "label": {"label": key.label},
            "created_at": xroad_time(key.cert.not_valid_before_utc), "active": key.active, "available": True,
            "possible_actions": actions, "source_type": "INTERNAL", "key_algorithm": "RSA"}


def _token_json(token: RegistryToken) -> dict[str, Any]:
    actions: list[str] = []
    if token.logged_in:
        if token.has_pin:
            actions.append("LOGOUT")
        if token.can_add_key():
            actions.append("GENERATE_INTERNAL_KEY")
    else:
        actions.append("LOGIN")
    keys = [_key_json(token, key) for key in token.keys]
    # X-Road's file requires ``keys`` (a property it does not define) beside ``configuration_signing_keys``.
    return {"id": token.id, "name": token.name, "status": "OK", "logged_in": token.logged_in,
            "active": token.logged_in, "available": True, "possible_actions": actions,
            "configuration_signing_keys": keys, "keys": keys}


def _publisher(context: RegistryContext) -> Publisher:
    publisher = context.publisher()
    if publisher is None:
        raise NotInitialised("the registry is not running yet (initialise it, then start it)")
    return publisher


def _directory(context: RegistryContext) -> Any:
    return RegistryPaths(context.root).conf_signing


def _token(context: RegistryContext, store: RegistryStore, publisher: Publisher) -> RegistryToken:
    directory = _directory(context)
    return admin.token(store, publisher, directory, (directory / "key.pem").is_file(), HSM_TOKEN)


def get_tokens(context: RegistryContext, request: ApiRequest) -> ApiResponse:
    """GET /tokens: the registry's one token with its configuration-signing keys."""
    publisher = _publisher(context)
    with context.store() as store:
        return ApiResponse(200, [_token_json(_token(context, store, publisher))])


def login_token(context: RegistryContext, request: ApiRequest) -> ApiResponse:
    """PUT /tokens/{token_id}/login (``TokenPassword``): configuration signing resumes; 400 ``pin_incorrect``."""
    data = request.json_object(frozenset({"password"}), frozenset({"password"}))
    pin = string_field(data, "password")
    assert pin is not None
    publisher = _publisher(context)
    with context.store() as store:
        admin.check_token_id(_token(context, store, publisher), request.params["token_id"])
        admin.login(store, publisher, pin)
        return ApiResponse(200, _token_json(_token(context, store, publisher)))


def logout_token(context: RegistryContext, request: ApiRequest) -> ApiResponse:
    """PUT /tokens/{token_id}/logout: nothing is signed (nor published) until the next login."""
    publisher = _publisher(context)
    with context.store() as store:
        admin.check_token_id(_token(context, store, publisher), request.params["token_id"])
        admin.logout(store, publisher)
        return ApiResponse(200, _token_json(_token(context, store, publisher)))


def add_key(context: RegistryContext, request: ApiRequest) -> ApiResponse:
    """POST /configuration-sources/{configuration_type}/signing-keys (``token_id``, ``key_label``): a new,
    inactive key on the token, listed in the anchor from now on."""
    kind = request.params["configuration_type"]
    if kind not in ("INTERNAL", "EXTERNAL"):
        raise bad_request("invalid_configuration_type", kind)
    if kind == "EXTERNAL":
        raise ApiError(404, "configuration_source_not_found", kind)
    data = request.json_object(frozenset({"token_id", "key_label"}), frozenset({"token_id", "key_label"}))
    token_id, label = string_field(data, "token_id"), string_field(data, "key_label")
    assert token_id is not None and label is not None
    publisher = _publisher(context)
    with context.store() as store:
        token = _token(context, store, publisher)
        admin.check_token_id(token, token_id)
        instance = store.settings().instance
        key = admin.add_key(store, token, _directory(context), label, f"{instance} configuration signing",
                            context.now())
        return ApiResponse(201, _key_json(_token(context, store, publisher), key))


def activate_key(context: RegistryContext, request: ApiRequest) -> ApiResponse:
    """PUT /signing-keys/{sign_key_id}/activate: the key signs the configuration from the next generation."""
    publisher = _publisher(context)
    with context.store() as store:
        admin.activate_key(store, publisher, _token(context, store, publisher), _directory(context),
                           request.params["sign_key_id"])
    return no_content()


def delete_key(context: RegistryContext, request: ApiRequest) -> ApiResponse:
    """DELETE /signing-keys/{sign_key_id}: an inactive key (400 ``signing_key_action_not_possible`` for the
    active one)."""
    publisher = _publisher(context)
    with context.store() as store:
        admin.delete_key(store, _token(context, store, publisher), _directory(context), request.params["sign_key_id"])
    return no_content()


def operations() -> list[Operation]:
    """The operations of this area."""
    return [
        Operation("GET", f"{PREFIX}/tokens", "getTokens", roles_for("getTokens"), get_tokens),
        Operation("PUT", f"{PREFIX}/tokens/{{token_id}}/login", "loginToken", roles_for("loginToken"), login_token),
        Operation("PUT", f"{PREFIX}/tokens/{{token_id}}/logout", "logoutToken", roles_for("logoutToken"),
                  logout_token),
        Operation("POST", f"{PREFIX}/configuration-sources/{{configuration_type}}/signing-keys", "addKey",
                  roles_for("addKey"), add_key),
        Operation("PUT", f"{PREFIX}/signing-keys/{{sign_key_id}}/activate", "activateKey", roles_for("activateKey"),
                  activate_key),
        Operation("DELETE", f"{PREFIX}/signing-keys/{{sign_key_id}}", "deleteKey", roles_for("deleteKey"),
                  delete_key),
    ]
