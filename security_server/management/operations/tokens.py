"""``/tokens`` and ``/keys/{id}``: the tokens, their keys and certificates (X-Road's ``Token``, ``Key``,
``TokenCertificate``).

A token's id is its name (``soft``, or a ``[pkcs11:NAME]`` section's NAME); a key's id is fedbus's key id.
fedbus does not track a certificate's registration state or its last OCSP answer per certificate yet: a
certificate shows ``status`` REGISTERED when it is within its validity, SAVED otherwise, and ``ocsp_status``
OCSP_RESPONSE_UNKNOWN. Key labels are the key ids.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred

from security_server.admin import clients, csrs, keys
from security_server.admin.keys import TokenView
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
from security_server.management.operations.common import PREFIX, xroad_time
from security_server.management.permissions import roles_for
from security_server.management.roles import Role
from security_server.signer.softtoken import KeyAlgorithm, KeyInfo, KeyKind
from security_server.signer.token import TokenStatus
from security_server.signer.token_set import TokenSet

def _owner_id(owner: ClientId | SecurityServerId) -> str:
    return client_id_text(owner.owner if isinstance(owner, SecurityServerId) else owner)


def key_json(info: KeyInfo, now_cert_valid: bool, csrs: tuple[str, ...] = ()) -> dict[str, Any]:
    """X-Road's ``Key`` with its certificate (a key has at most one in fedbus) and its kept requests."""
    certificates = []
    if info.cert is not None:
        certificates.append({
            "ocsp_status": "OCSP_RESPONSE_UNKNOWN",
            "owner_id": _owner_id(info.owner),
            "active": True,
            "saved_to_configuration": True,
            "certificate_details": certificate_details(info.cert),
            "status": "REGISTERED" if now_cert_valid else "SAVED",
        })
    return {
        "id": info.key_id,
        "name": info.key_id,
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


def _key(context: OperationContext, info: KeyInfo) -> dict[str, Any]:
    now = context.now()
    valid = info.cert is not None and info.cert.not_valid_before_utc <= now <= info.cert.not_valid_after_utc
    return key_json(info, valid, csrs.csr_ids(context.server_dir, info.key_id))


def token_json(context: OperationContext, token: TokenView) -> dict[str, Any]:
    """X-Road's ``Token``."""
    return {
        "id": token.name,
        "name": token.name,
        "type": "HARDWARE" if token.hardware else "SOFTWARE",
        "keys": [_key(context, k) for k in token.keys],
        "status": "OK",
        "logged_in": token.status is TokenStatus.LOGGED_IN,
        "available": token.status is not TokenStatus.NOT_PRESENT,
        "saved_to_configuration": True,
        "read_only": False,
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
_SUBJECT_FIELDS = frozenset({"C", "O", "CN", "serialNumber", "SN"})


def add_key_and_csr(context: OperationContext, request: ApiRequest) -> ApiResponse:
    """``POST /tokens/{id}/keys-with-csrs``: a key on the token and its certificate request, kept for download.

    The auth key's request is the security officer's, a sign key's the registration officer's (X-Road's
    GENERATE_AUTH_CERT_REQ and GENERATE_SIGN_CERT_REQ). The subject follows the certificate profile; only ``O``
    of ``subject_field_values`` is taken. ``key_label`` and ``ca_name`` are accepted and not kept.
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
    string_field(spec, "ca_name")
    if spec.get("csr_format", "PEM") not in ("PEM", "DER"):
        raise bad_request("invalid_field", "csr_format")
    fields = spec.get("subject_field_values")
    if not isinstance(fields, dict) or not set(fields) <= _SUBJECT_FIELDS:
        raise bad_request("invalid_field", "subject_field_values")
    organisation = string_field(fields, "O")
    kind = KeyKind.AUTH if usage == "AUTHENTICATION" else KeyKind.SIGN
    needed = Role.SECURITY_OFFICER if kind is KeyKind.AUTH else Role.REGISTRATION_OFFICER
    assert request.principal is not None
    if needed not in request.principal.roles:
        raise forbidden("addKeyAndCsr")
    member_text = string_field(spec, "member_id", required=False, max_length=767)
    member = parse_client_id(member_text) if member_text is not None and kind is KeyKind.SIGN else None
    keys.get_token(context.server_dir, request.params["id"], context.config)
    made = csrs.generate_key_with_csr(
        context.server_dir, kind, str(organisation), member=member, token_name=request.params["id"],
        config=context.config,
    )
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
                found.append((info, _key(context, info)["certificates"][0]))
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
                return
        raise ApiError(404, "certificate_not_found", request.params["hash"])

    return context.blocking(check).addCallback(lambda _: register(address)).addCallback(lambda _: ApiResponse(200))


def get_client_sign_certificates(context: OperationContext, request: ApiRequest) -> ApiResponse:
    """``GET /clients/{id}/sign-certificates``: the signing certificates of the client's member."""
    client = parse_client_id(request.params["id"])
    clients.get_client(context.server_dir, client)
    found = [c for info, c in _certificates(context)
             if info.kind is KeyKind.SIGN and isinstance(info.owner, ClientId) and info.owner == client.member]
    return ApiResponse(200, found)


OPERATIONS = (
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
    Operation("GET", f"{PREFIX}/tokens", "getTokens", roles_for("getTokens"), get_tokens),
    Operation("GET", f"{PREFIX}/tokens/{{id}}", "getToken", roles_for("getToken"), get_token),
    Operation("GET", f"{PREFIX}/keys/{{id}}", "getKey", roles_for("getKey"), get_key),
)
