"""``/tokens`` and ``/keys/{id}``: the tokens, their keys and certificates (X-Road's ``Token``, ``Key``,
``TokenCertificate``).

A token's id is its name (``soft``, or a ``[pkcs11:NAME]`` section's NAME); a key's id is fedbus's key id.
A certificate's ``status`` is X-Road's (security_server/core/auth_cert_status.py): a signing certificate is
REGISTERED; an authentication certificate's follows what this server sent (register, unregister, mark for deletion)
and what the global configuration in force lists. fedbus does not keep the last OCSP answer per certificate yet:
``ocsp_status`` is OCSP_RESPONSE_UNKNOWN (DISABLED for a disabled one). Key labels are the key ids; a key's ``name`` is its friendly
name once given (``PATCH /keys/{id}``), else its id.

The soft token's login, logout and PIN (security_server/admin/token_login.py) hold for the running server: the API
runs in its process (security_server/service.py, worker 0), and with several workers the login is passed to every
other one (security_server/workers.py), so a login here lets all its proxies sign.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator

from twisted.internet.defer import Deferred

from security_server.admin import auth_cert_states, clients, csrs, keys, possible_actions, token_login
from security_server.admin import registration as admin_registration
from security_server.admin.errors import ActionNotPossible
from security_server.admin.keys import TokenView
from security_server.core.auth_cert_status import CertStatus
from security_server.core.errors import BusError, CertValidation
from security_server.core.globalconf import GlobalConf
from security_server.core.identifiers import ClientId, SecurityServerId
from security_server.core.server_address import parse_server_address
from security_server.management.api import (
    ApiRequest,
    ApiResponse,
    Operation,
    no_content,
    string_field,
)
from security_server.management.certificates import certificate_details
from security_server.management.context import OperationContext
from security_server.management.errors import ApiError, bad_request, forbidden
from security_server.management.ids import client_id_text, parse_client_id
from security_server.management.operations import certificate_authorities
from security_server.management.operations.common import PREFIX, xroad_time
from security_server.management.permissions import roles_for
from security_server.management.roles import Role
from security_server.signer.softtoken import KeyAlgorithm, KeyInfo, KeyKind
from security_server.signer.token import TokenStatus
from security_server.signer.token_set import TokenSet

def _owner_id(owner: ClientId | SecurityServerId) -> str:
    return client_id_text(owner.owner if isinstance(owner, SecurityServerId) else owner)


def key_json(
    info: KeyInfo, status: CertStatus, csrs: tuple[str, ...] = (), *,
    actions: tuple[str, ...] | None = None, cert_actions: tuple[str, ...] | None = None,
) -> dict[str, Any]:
    """X-Road's ``Key`` with its certificate (a key has at most one in fedbus) and its kept requests; with
    ``actions`` and ``cert_actions``, their ``possible_actions``."""
    certificates: list[dict[str, Any]] = []
    if info.cert is not None:
        certificates.append({
            "ocsp_status": "OCSP_RESPONSE_UNKNOWN" if info.cert_active else "DISABLED",
            "owner_id": _owner_id(info.owner),
            "active": info.cert_active,
            "saved_to_configuration": True,
            "certificate_details": certificate_details(info.cert),
            "status": str(status),
        })
        if cert_actions is not None:
            certificates[-1]["possible_actions"] = list(cert_actions)
    shown: dict[str, Any] = {
        "id": info.key_id,
        "name": info.name or info.key_id,
        "label": info.key_id,
        "certificates": certificates,
        "certificate_signing_requests": [
            {"id": csr_id, "owner_id": _owner_id(info.owner), "possible_actions": []} for csr_id in csrs
        ],
        "usage": "AUTHENTICATION" if info.kind is KeyKind.AUTH else "SIGNING",
        "available": True,
        "saved_to_configuration": True,
        "key_algorithm": "EC" if info.algorithm is KeyAlgorithm.EC_P256 else "RSA",
    }
    if actions is not None:
        shown["possible_actions"] = list(actions)
    return shown


def _key(context: OperationContext, info: KeyInfo, token: TokenView | None = None) -> dict[str, Any]:
    """The key as X-Road shows it, with the possible actions on it and its certificate (on ``token``, looked up
    when not given)."""
    status = keys.certificate_status(context.server_dir, info, _conf_or_none(context)) if info.cert is not None \
        else CertStatus.SAVED
    if token is None:
        token = keys.get_token(context.server_dir, keys.find_key(context.server_dir, info.key_id, context.config).token,
                               context.config)
    found = keys.TokenKey(token.name, info)
    return key_json(
        info, status, csrs.csr_ids(context.server_dir, info.key_id),
        actions=tuple(a.value for a in possible_actions.key_actions(token, found)),
        cert_actions=tuple(a.value for a in possible_actions.certificate_actions(token, found, status)),
    )


def _conf_or_none(context: OperationContext) -> GlobalConf | None:
    """The global configuration in force, or None (no running server, nothing downloaded, or expired): then a
    certificate shows the state recorded last."""
    if context.global_conf is None:
        return None
    try:
        conf: GlobalConf = context.global_conf()
    except BusError:
        return None
    return conf


def token_json(context: OperationContext, token: TokenView) -> dict[str, Any]:
    """X-Road's ``Token``."""
    return {
        "id": token.name,
        "name": keys.token_names(context.server_dir).get(token.name, token.name),
        "type": "HARDWARE" if token.hardware else "SOFTWARE",
        "keys": [_key(context, k, token) for k in token.keys],
        "status": "USER_PIN_INCORRECT" if token.pin_incorrect else "OK",
        "logged_in": token.status is TokenStatus.LOGGED_IN,
        "available": token.status is not TokenStatus.NOT_PRESENT,
        "saved_to_configuration": True,
        "read_only": False,
        "possible_actions": [a.value for a in possible_actions.token_actions(token)],
    }


def get_tokens(context: OperationContext, request: ApiRequest) -> ApiResponse:
    """``GET /tokens``."""
    return ApiResponse(200, [token_json(context, t) for t in keys.list_tokens(context.server_dir, context.config)])


def get_token(context: OperationContext, request: ApiRequest) -> ApiResponse:
    """``GET /tokens/{id}``."""
    return ApiResponse(200, token_json(context, keys.get_token(context.server_dir, request.params["id"], context.config)))


def get_key(context: OperationContext, request: ApiRequest) -> ApiResponse:
    """``GET /keys/{id}``."""
    found = keys.find_key(context.server_dir, request.params["id"], context.config)
    return ApiResponse(200, _key(context, found.info))


_CSR_FIELDS = frozenset({"key_usage_type", "ca_name", "csr_format", "member_id", "subject_field_values", "acme_order"})


def add_key_and_csr(context: OperationContext, request: ApiRequest) -> ApiResponse:
    """``POST /tokens/{id}/keys-with-csrs``: a key on the token and its certificate request, kept for download.

    The auth key's request is the security officer's, a sign key's the registration officer's (X-Road's
    GENERATE_AUTH_CERT_REQ and GENERATE_SIGN_CERT_REQ). The subject follows the certificate profile of the CA
    ``ca_name`` (fedbus's when the global configuration does not list it: operations/certificate_authorities.py)
    filled from the identifiers and ``subject_field_values`` (400 ``invalid_dn_parameter`` for values it refuses;
    no key is made then). ``key_label`` is accepted and not kept.
    """
    data = request.json_object(frozenset({"key_label", "csr_generate_request"}), frozenset({"csr_generate_request"}))
    string_field(data, "key_label", required=False)
    spec = data["csr_generate_request"]
    if not isinstance(spec, dict):
        raise bad_request("invalid_field", "csr_generate_request")
    unknown = sorted(set(spec) - _CSR_FIELDS)
    if unknown:
        raise bad_request("unknown_field", *unknown)
    usage = spec.get("key_usage_type")
    if usage not in ("AUTHENTICATION", "SIGNING"):
        raise bad_request("invalid_field", "key_usage_type")
    ca_name = str(string_field(spec, "ca_name"))
    if spec.get("csr_format", "PEM") not in ("PEM", "DER"):
        raise bad_request("invalid_field", "csr_format")
    values = certificate_authorities.subject_field_values(spec)
    kind = KeyKind.AUTH if usage == "AUTHENTICATION" else KeyKind.SIGN
    needed = Role.SECURITY_OFFICER if kind is KeyKind.AUTH else Role.REGISTRATION_OFFICER
    assert request.principal is not None
    if needed not in request.principal.roles:
        raise forbidden("addKeyAndCsr")
    member_text = string_field(spec, "member_id", required=False, max_length=767)
    member = parse_client_id(member_text) if member_text is not None and kind is KeyKind.SIGN else None
    token = keys.get_token(context.server_dir, request.params["id"], context.config)
    if token.status is not TokenStatus.LOGGED_IN:  # X-Road: GENERATE_KEY is possible on an active token only
        raise ApiError(409, "action_not_possible", f"token {token.name} is not logged in")
    wanted = certificate_authorities.profile_request(context, ca_name, kind, member, values)
    try:
        made = csrs.generate_key_with_csr(
            context.server_dir, kind, values.get("O", ""), member=member, token_name=request.params["id"],
            config=context.config, profile_request=wanted,
        )
    except CertValidation as err:
        raise certificate_authorities.invalid_dn(err) from err
    return ApiResponse(201, {"key": _key(context, made.key.info), "csr_id": made.csr_id})


def download_csr(context: OperationContext, request: ApiRequest) -> ApiResponse:
    """``GET /keys/{id}/csrs/{csr_id}?csr_format=PEM|DER`` (X-Road's file answers it with 201)."""
    form = request.query_value("csr_format") or "PEM"
    if form not in ("PEM", "DER"):
        raise bad_request("invalid_parameter", "csr_format")
    key_id, csr_id = request.params["id"], request.params["csr_id"]
    data = csrs.read_csr(context.server_dir, key_id, csr_id, der=form == "DER")
    disposition = f'attachment; filename="{csr_id}.{form.lower()}"'.encode("ascii")
    return ApiResponse(201, raw=data, content_type="application/octet-stream",
                       headers=((b"Content-Disposition", disposition),))


def delete_csr(context: OperationContext, request: ApiRequest) -> ApiResponse:
    """``DELETE /keys/{id}/csrs/{csr_id}``."""
    csrs.delete_csr(context.server_dir, request.params["id"], request.params["csr_id"])
    return no_content()


def import_certificate(context: OperationContext, request: ApiRequest) -> ApiResponse:
    """``POST /token-certificates``: a certificate (PEM or DER) for a key on one of the tokens; its kept
    requests are dropped."""
    if not request.body or len(request.body) > 64 * 1024:
        raise bad_request("invalid_certificate", "the body is a PEM or DER certificate of at most 64 KiB")
    tokens = context.server_dir.tokens(context.config) if context.config is not None else TokenSet(
        [context.server_dir.soft_token()])
    imported = keys.import_certificate(tokens, request.body, now=context.now())
    for csr_id in csrs.csr_ids(context.server_dir, imported.info.key_id):
        csrs.delete_csr(context.server_dir, imported.info.key_id, csr_id)
    return ApiResponse(201, _key(context, imported.info)["certificates"][0])


def _certificates(context: OperationContext) -> list[tuple[KeyInfo, dict[str, Any]]]:
    found = []
    for token in keys.list_tokens(context.server_dir, context.config):
        for info in token.keys:
            if info.cert is not None:
                found.append((info, _key(context, info, token)["certificates"][0]))
    return found


def get_certificate(context: OperationContext, request: ApiRequest) -> ApiResponse:
    """``GET /token-certificates/{hash}``: a certificate on a token by its SHA-256 (hex, either case)."""
    wanted = request.params["hash"].upper()
    for _, certificate in _certificates(context):
        if certificate["certificate_details"]["hash"] == wanted:
            return ApiResponse(200, certificate)
    raise ApiError(404, "certificate_not_found", request.params["hash"])


def register_certificate(context: OperationContext, request: ApiRequest) -> Deferred[ApiResponse]:
    """``PUT /token-certificates/{hash}/register``: ``SecurityServerAddress``, with or without a port (X-Road's
    default 5500 without one); authCertReg for the server's auth certificate (pr-mserv §2.2), signed with it and
    the owner's signing key. Only the token's auth certificate is registered (400 ``action_not_possible`` for a
    sign certificate). Runs on the reactor thread (it talks to the registry); 200 once the registry has it."""
    data = request.json_object(frozenset({"address"}), frozenset({"address"}))
    address = str(string_field(data, "address"))
    if parse_server_address(address) is None:
        raise bad_request("invalid_address", address)
    if context.register_server is None:
        raise ApiError(404, "registration_unavailable", "the management API runs without the registry")
    assert context.blocking is not None
    register = context.register_server
    wanted = request.params["hash"].upper()

    def check() -> None:
        for info, certificate in _certificates(context):
            if certificate["certificate_details"]["hash"] == wanted:
                if info.kind is not KeyKind.AUTH:
                    raise ApiError(400, "action_not_possible", "only an authentication certificate is registered")
                if "REGISTER" not in certificate["possible_actions"]:
                    raise ApiError(400, "action_not_possible",
                                   f"the certificate is {certificate['status']}: only a saved one is registered")
                return
        raise ApiError(404, "certificate_not_found", request.params["hash"])

    def sent(_: object) -> None:
        auth_cert_states.record(context.server_dir, wanted, CertStatus.REGISTRATION_IN_PROGRESS)

    blocking = context.blocking
    return (blocking(check).addCallback(lambda _: register(address))
            .addCallback(lambda answer: blocking(lambda: sent(answer)))
            .addCallback(lambda _: ApiResponse(200)))


def unregister_certificate(context: OperationContext, request: ApiRequest) -> Deferred[ApiResponse]:
    """``PUT /token-certificates/{hash}/unregister``: authCertDeletion for a registered (or in registration)
    authentication certificate (pr-mserv §2.3), signed as clientDeletion is; the certificate is then
    DELETION_IN_PROGRESS, and the registry drops it from the next global configuration when it approves. 400
    ``action_not_possible`` for a signing certificate or one not registered, 404 for an unknown hash. Runs on the
    reactor thread (it talks to the registry); 204 once the registry has it."""
    if context.unregister_server is None:
        raise ApiError(404, "registration_unavailable", "the management API runs without the registry")
    assert context.blocking is not None
    send = context.unregister_server
    wanted = request.params["hash"].upper()

    def check() -> None:
        _refuse_unless_unregistrable(context, request)

    def sent(_: object) -> None:
        auth_cert_states.record(context.server_dir, wanted, CertStatus.DELETION_IN_PROGRESS)

    blocking = context.blocking
    return (blocking(check).addCallback(lambda _: send(wanted))
            .addCallback(lambda answer: blocking(lambda: sent(answer)))
            .addCallback(lambda _: no_content()))


def _refuse_unless_unregistrable(context: OperationContext, request: ApiRequest) -> None:
    token, found = _certificate(context, request)
    if found.info.kind is not KeyKind.AUTH:
        raise ApiError(400, "action_not_possible", "only an authentication certificate is unregistered")
    _not_possible(possible_actions.PossibleAction.UNREGISTER, _cert_actions(context, token, found),
                  "this certificate (it is not registered)")


def mark_certificate_for_deletion(context: OperationContext, request: ApiRequest) -> ApiResponse:
    """``PUT /token-certificates/{hash}/mark-for-deletion``: a registered authentication certificate becomes
    DELETION_IN_PROGRESS without a request sent (the registry was told another way), so that it may be deleted."""
    _refuse_unless_unregistrable(context, request)
    with _action_as_400():
        admin_registration.mark_cert_for_deletion(context.server_dir, request.params["hash"], context.config)
    return no_content()


def get_client_sign_certificates(context: OperationContext, request: ApiRequest) -> ApiResponse:
    """``GET /clients/{id}/sign-certificates``: the signing certificates of the client's member."""
    client = parse_client_id(request.params["id"])
    clients.get_client(context.server_dir, client)
    found = [c for info, c in _certificates(context)
             if info.kind is KeyKind.SIGN and isinstance(info.owner, ClientId) and info.owner == client.member]
    return ApiResponse(200, found)


# --- the soft token's PIN ---------------------------------------------------------------------------------------


def login_token(context: OperationContext, request: ApiRequest) -> ApiResponse:
    """``PUT /tokens/{id}/login`` (``TokenPassword``): unlock the soft token's keys in the running server; 400
    ``pin_incorrect`` for a wrong PIN (no lock, as X-Road's soft token), 400 ``action_not_possible`` for a token
    without a PIN or a PKCS#11 token. Never logged: the PIN is not in the audit record."""
    data = request.json_object(frozenset({"password"}), frozenset({"password"}))
    pin = string_field(data, "password")
    assert pin is not None
    with _action_as_400():
        token = token_login.login(context.server_dir, request.params["id"], pin, context.config)
    return ApiResponse(200, token_json(context, token))


def logout_token(context: OperationContext, request: ApiRequest) -> ApiResponse:
    """``PUT /tokens/{id}/logout``: forget the soft token's keys; signing is refused with ``token_not_active``
    and the health check fails until the next login."""
    with _action_as_400():
        token = token_login.logout(context.server_dir, request.params["id"], context.config)
    return ApiResponse(200, token_json(context, token))


def update_token_pin(context: OperationContext, request: ApiRequest) -> ApiResponse:
    """``PUT /tokens/{id}/pin`` (``TokenPinUpdate``): every key is re-encrypted under the new PIN; the token stays
    logged in with it. A token without a PIN yet takes its first one (``old_pin`` is then not checked)."""
    data = request.json_object(frozenset({"old_pin", "new_pin"}), frozenset({"old_pin", "new_pin"}))
    old_pin = string_field(data, "old_pin")
    new_pin = string_field(data, "new_pin")
    assert new_pin is not None
    with _action_as_400():
        token_login.set_pin(context.server_dir, request.params["id"], new_pin, old_pin, context.config)
    return no_content()


# --- certificates by hash ---------------------------------------------------------------------------------------


def _require_role_for(request: ApiRequest, kind: KeyKind, operation_id: str) -> None:
    """Auth certificates and keys are the security officer's; sign ones also the registration officer's."""
    assert request.principal is not None
    if kind is KeyKind.AUTH and Role.SECURITY_OFFICER not in request.principal.roles:
        raise forbidden(operation_id)


def _not_possible(action: possible_actions.PossibleAction, allowed: tuple[possible_actions.PossibleAction, ...],
                  what: str) -> None:
    """X-Road's implementation refuses an action its rules do not allow with 409 ``action_not_possible``; its
    OpenAPI file documents no 409 for these operations, so fedbus answers 400 with the same code
    (docs/compatibility.md)."""
    if action not in allowed:
        raise ApiError(400, "action_not_possible", f"{action.value} is not possible for {what}")


@contextmanager
def _action_as_400() -> Iterator[None]:
    """The service layer's :class:`ActionNotPossible` (409) as 400, for the operations whose file has no 409."""
    try:
        yield
    except ActionNotPossible as err:
        raise ApiError(400, "action_not_possible", err.message) from err


def _cert_actions(context: OperationContext, token: TokenView, found: keys.TokenKey
                  ) -> tuple[possible_actions.PossibleAction, ...]:
    """The possible actions on ``found``'s certificate in its current state."""
    status = keys.certificate_status(context.server_dir, found.info, _conf_or_none(context))
    return possible_actions.certificate_actions(token, found, status)


def _certificate(context: OperationContext, request: ApiRequest) -> tuple[TokenView, keys.TokenKey]:
    found = keys.find_certificate(context.server_dir, request.params["hash"], context.config)
    return keys.get_token(context.server_dir, found.token, context.config), found


def _set_certificate_active(context: OperationContext, request: ApiRequest, active: bool, operation_id: str) -> ApiResponse:
    token, found = _certificate(context, request)
    _require_role_for(request, found.info.kind, operation_id)
    action = possible_actions.PossibleAction.ACTIVATE if active else possible_actions.PossibleAction.DISABLE
    _not_possible(action, _cert_actions(context, token, found), "this certificate")
    with _action_as_400():
        keys.set_certificate_active(context.server_dir, request.params["hash"], active, context.config)
    return no_content()


def activate_certificate(context: OperationContext, request: ApiRequest) -> ApiResponse:
    """``PUT /token-certificates/{hash}/activate``: the certificate may be used again (400 ``action_not_possible``
    when it is active, as X-Road's possible actions)."""
    return _set_certificate_active(context, request, True, "activateCertificate")


def disable_certificate(context: OperationContext, request: ApiRequest) -> ApiResponse:
    """``PUT /token-certificates/{hash}/disable``: the certificate is no longer used to sign or authenticate; with
    no other sign certificate for the member, its exchanges are refused (400 when it is disabled already)."""
    return _set_certificate_active(context, request, False, "disableCertificate")


def delete_certificate(context: OperationContext, request: ApiRequest) -> ApiResponse:
    """``DELETE /token-certificates/{hash}``: 400 ``action_not_possible`` for a registered auth certificate
    (unregister it first); deleting the sign certificate in use leaves the member without one."""
    token, found = _certificate(context, request)
    _require_role_for(request, found.info.kind, "deleteCertificate")
    _not_possible(possible_actions.PossibleAction.DELETE,
                  _cert_actions(context, token, found), "this certificate")
    with _action_as_400():
        keys.delete_certificate(context.server_dir, request.params["hash"], now=context.now(), config=context.config)
    return no_content()


def get_certificate_actions(context: OperationContext, request: ApiRequest) -> ApiResponse:
    """``GET /token-certificates/{hash}/possible-actions``."""
    token, found = _certificate(context, request)
    return ApiResponse(200, [a.value for a in _cert_actions(context, token, found)])


# --- keys -------------------------------------------------------------------------------------------------------


def _key_on_token(context: OperationContext, request: ApiRequest) -> tuple[TokenView, keys.TokenKey]:
    found = keys.find_key(context.server_dir, request.params["id"], context.config)
    return keys.get_token(context.server_dir, found.token, context.config), found


def update_key(context: OperationContext, request: ApiRequest) -> ApiResponse:
    """``PATCH /keys/{id}`` (``KeyName``): the key's friendly name (soft token keys)."""
    data = request.json_object(frozenset({"name"}), frozenset({"name"}))
    name = string_field(data, "name")
    assert name is not None
    token, found = _key_on_token(context, request)
    _not_possible(possible_actions.PossibleAction.EDIT_FRIENDLY_NAME, possible_actions.key_actions(token, found),
                  "this key")
    with _action_as_400():
        renamed = keys.rename_key(context.server_dir, found.info.key_id, name, context.config)
    return ApiResponse(200, _key(context, renamed.info))


def delete_key(context: OperationContext, request: ApiRequest) -> ApiResponse:
    """``DELETE /keys/{id}?ignore_warnings=``: the key, its certificate and its kept requests. An auth key with a
    registered certificate answers X-Road's warning ``auth_key_with_registered_cert_warning``; with the warning
    ignored, 400 ``action_not_possible`` (fedbus cannot send the certificate's deletion request yet)."""
    ignore = request.query_bool("ignore_warnings", False)
    token, found = _key_on_token(context, request)
    _require_role_for(request, found.info.kind, "deleteKey")
    _not_possible(possible_actions.PossibleAction.DELETE, possible_actions.key_actions(token, found), "this key")
    if keys.registered_auth_key(context.server_dir, found.info.key_id, now=context.now(), config=context.config):
        if not ignore:
            return ApiResponse(400, {"status": 400, "error": {"code": "warnings_detected"}, "warnings": [
                {"code": "auth_key_with_registered_cert_warning", "metadata": [found.info.key_id]}]})
        raise ApiError(400, "action_not_possible", "unregister the authentication certificate first")
    with _action_as_400():
        keys.delete_key(context.server_dir, found.info.key_id, now=context.now(), config=context.config)
    return no_content()


def generate_csr(context: OperationContext, request: ApiRequest) -> ApiResponse:
    """``POST /keys/{id}/csrs`` (``CsrGenerate``): a new request for an existing key, kept for download and
    answered as the file (201, PEM or DER). ``key_usage_type`` must be the key's (400 ``wrong_key_usage``); the
    subject follows the profile of the CA ``ca_name`` with ``subject_field_values``, as for ``addKeyAndCsr``;
    ``member_id``, if given,
    must be the sign key's member. 400 ``action_not_possible`` while the token is logged out or when the key has
    a certificate already (X-Road's GENERATE_*_CSR rule)."""
    data = request.json_object(_CSR_FIELDS, frozenset({"key_usage_type", "ca_name", "csr_format",
                                                       "subject_field_values"}))
    usage = data.get("key_usage_type")
    if usage not in ("AUTHENTICATION", "SIGNING"):
        raise bad_request("invalid_field", "key_usage_type")
    ca_name = str(string_field(data, "ca_name"))
    form = data.get("csr_format")
    if form not in ("PEM", "DER"):
        raise bad_request("invalid_field", "csr_format")
    values = certificate_authorities.subject_field_values(data)
    member_text = string_field(data, "member_id", required=False, max_length=767)
    token, found = _key_on_token(context, request)
    kind = KeyKind.AUTH if usage == "AUTHENTICATION" else KeyKind.SIGN
    if kind is not found.info.kind:
        raise bad_request("wrong_key_usage", found.info.key_id)
    assert request.principal is not None
    needed = Role.SECURITY_OFFICER if kind is KeyKind.AUTH else Role.REGISTRATION_OFFICER
    if needed not in request.principal.roles:
        raise forbidden("generateCsr")
    if member_text is not None and kind is KeyKind.SIGN and parse_client_id(member_text) != found.info.owner:
        raise bad_request("invalid_field", "member_id")
    wanted = (possible_actions.PossibleAction.GENERATE_AUTH_CSR if kind is KeyKind.AUTH
              else possible_actions.PossibleAction.GENERATE_SIGN_CSR)
    _not_possible(wanted, possible_actions.key_actions(token, found), "this key (token logged out or key certified)")
    member = found.info.owner if isinstance(found.info.owner, ClientId) else None
    wanted_request = certificate_authorities.profile_request(context, ca_name, kind, member, values)
    try:
        made = csrs.request_kept_csr(context.server_dir, found.info.key_id, values.get("O", ""),
                                     config=context.config, profile_request=wanted_request)
    except CertValidation as err:
        raise certificate_authorities.invalid_dn(err) from err
    data_out = csrs.read_csr(context.server_dir, found.info.key_id, made, der=form == "DER")
    disposition = f'attachment; filename="{made}.{str(form).lower()}"'.encode("ascii")
    return ApiResponse(201, raw=data_out, content_type="application/octet-stream",
                       headers=((b"Content-Disposition", disposition),))


def update_token(context: OperationContext, request: ApiRequest) -> ApiResponse:
    """``PATCH /tokens/{id}`` (``TokenName``): the token's friendly name, shown as its ``name`` (its id stays)."""
    data = request.json_object(frozenset({"name"}), frozenset({"name"}))
    name = string_field(data, "name")
    assert name is not None
    token = keys.rename_token(context.server_dir, request.params["id"], name, context.config)
    return ApiResponse(200, token_json(context, token))


def add_key(context: OperationContext, request: ApiRequest) -> ApiResponse:
    """``POST /tokens/{id}/keys`` (``KeyLabel``): a key without a request, a signing key of the owner (fedbus keys
    have their usage from birth); ``label`` becomes its name. 409 ``action_not_possible`` while the token is logged
    out (X-Road's GENERATE_KEY rule); the registration officer's, as a sign key's request is."""
    data = request.json_object(frozenset({"label"}), frozenset())
    label = string_field(data, "label", required=False)
    assert request.principal is not None
    if Role.REGISTRATION_OFFICER not in request.principal.roles:
        raise forbidden("addKey")
    made = keys.add_key(context.server_dir, request.params["id"], label, context.config)
    return ApiResponse(201, _key(context, made.info))


def get_csr_actions(context: OperationContext, request: ApiRequest) -> ApiResponse:
    """``GET /keys/{id}/csrs/{csr_id}/possible-actions``: X-Road's rule for a kept request (DELETE)."""
    token, found = _key_on_token(context, request)
    if request.params["csr_id"] not in csrs.csr_ids(context.server_dir, found.info.key_id):
        raise csrs.CsrNotFound(f"key {found.info.key_id} has no request {request.params['csr_id']}")
    return ApiResponse(200, [a.value for a in possible_actions.csr_actions(token)])


def get_key_actions(context: OperationContext, request: ApiRequest) -> ApiResponse:
    """``GET /keys/{id}/possible-actions``."""
    token, found = _key_on_token(context, request)
    return ApiResponse(200, [a.value for a in possible_actions.key_actions(token, found)])


OPERATIONS = (
    Operation("PUT", f"{PREFIX}/tokens/{{id}}/login", "loginToken", roles_for("loginToken"), login_token),
    Operation("PUT", f"{PREFIX}/tokens/{{id}}/logout", "logoutToken", roles_for("logoutToken"), logout_token),
    Operation("PUT", f"{PREFIX}/tokens/{{id}}/pin", "updateTokenPin", roles_for("updateTokenPin"), update_token_pin),
    Operation("PUT", f"{PREFIX}/token-certificates/{{hash}}/activate", "activateCertificate",
              roles_for("activateCertificate"), activate_certificate),
    Operation("PUT", f"{PREFIX}/token-certificates/{{hash}}/disable", "disableCertificate",
              roles_for("disableCertificate"), disable_certificate),
    Operation("DELETE", f"{PREFIX}/token-certificates/{{hash}}", "deleteCertificate", roles_for("deleteCertificate"),
              delete_certificate),
    Operation("GET", f"{PREFIX}/token-certificates/{{hash}}/possible-actions", "getPossibleActionsForCertificate",
              roles_for("getPossibleActionsForCertificate"), get_certificate_actions),
    Operation("PATCH", f"{PREFIX}/keys/{{id}}", "updateKey", roles_for("updateKey"), update_key),
    Operation("DELETE", f"{PREFIX}/keys/{{id}}", "deleteKey", roles_for("deleteKey"), delete_key),
    Operation("POST", f"{PREFIX}/keys/{{id}}/csrs", "generateCsr", roles_for("generateCsr"), generate_csr),
    Operation("GET", f"{PREFIX}/keys/{{id}}/possible-actions", "getPossibleActionsForKey",
              roles_for("getPossibleActionsForKey"), get_key_actions),
    Operation("GET", f"{PREFIX}/token-certificates/{{hash}}", "getCertificate", roles_for("getCertificate"),
              get_certificate),
    Operation("GET", f"{PREFIX}/clients/{{id}}/sign-certificates", "getClientSignCertificates",
              roles_for("getClientSignCertificates"), get_client_sign_certificates),
    Operation("POST", f"{PREFIX}/tokens/{{id}}/keys-with-csrs", "addKeyAndCsr", roles_for("addKeyAndCsr"),
              add_key_and_csr),
    Operation("GET", f"{PREFIX}/keys/{{id}}/csrs/{{csr_id}}", "downloadCsr", roles_for("downloadCsr"), download_csr),
    Operation("DELETE", f"{PREFIX}/keys/{{id}}/csrs/{{csr_id}}", "deleteCsr", roles_for("deleteCsr"), delete_csr),
    Operation("POST", f"{PREFIX}/token-certificates", "importCertificate", roles_for("importCertificate"),
              import_certificate),
    Operation("PUT", f"{PREFIX}/token-certificates/{{hash}}/register", "registerCertificate",
              roles_for("registerCertificate"), register_certificate, in_reactor=True),
    Operation("PUT", f"{PREFIX}/token-certificates/{{hash}}/unregister", "unregisterAuthCertificate",
              roles_for("unregisterAuthCertificate"), unregister_certificate, in_reactor=True),
    Operation("PUT", f"{PREFIX}/token-certificates/{{hash}}/mark-for-deletion", "markAuthCertForDeletion",
              roles_for("markAuthCertForDeletion"), mark_certificate_for_deletion),
    Operation("PATCH", f"{PREFIX}/tokens/{{id}}", "updateToken", roles_for("updateToken"), update_token),
    Operation("POST", f"{PREFIX}/tokens/{{id}}/keys", "addKey", roles_for("addKey"), add_key),
    Operation("GET", f"{PREFIX}/keys/{{id}}/csrs/{{csr_id}}/possible-actions", "getPossibleActionsForCsr",
              roles_for("getPossibleActionsForCsr"), get_csr_actions),
    Operation("GET", f"{PREFIX}/tokens", "getTokens", roles_for("getTokens"), get_tokens),
    Operation("GET", f"{PREFIX}/tokens/{{id}}", "getToken", roles_for("getToken"), get_token),
    Operation("GET", f"{PREFIX}/keys/{{id}}", "getKey", roles_for("getKey"), get_key),
)
