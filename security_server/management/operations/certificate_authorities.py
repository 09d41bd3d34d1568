"""``/certificate-authorities``: the approved CAs of the global configuration and the subject fields of a
certificate request for each (X-Road's ``getApprovedCertificateAuthorities`` and ``getSubjectFieldDescriptions``).

A CA's certificate profile (``certificateProfileInfo`` of its approved-CA entry, core/certprofile.py) decides the
subject fields; the CSR operations (operations/tokens.py) build the subject from them with
:func:`profile_request`. fedbus fetches no OCSP status for CA certificates: ``ocsp_response`` is
``NOT_AVAILABLE``, as X-Road shows for a top CA. A CA whose profile fedbus does not read is listed, and asking
for its fields answers 500 ``certificate_profile_instantiation_failure``, as X-Road does.
"""

from __future__ import annotations

from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from security_server.admin import csrs
from security_server.core.certprofile import FEDBUS, is_known_profile, profile_named
from security_server.core.errors import BusError, CertValidation
from security_server.core.globalconf import GlobalConf
from security_server.core.globalconf.sharedparams import ApprovedCa
from security_server.core.identifiers import ClientId
from security_server.management.api import ApiRequest, ApiResponse, Operation, string_field
from security_server.management.context import OperationContext
from security_server.management.errors import ApiError, bad_request, forbidden
from security_server.management.ids import parse_client_id
from security_server.management.operations.common import PREFIX, xroad_time
from security_server.management.permissions import roles_for
from security_server.management.roles import Role
from security_server.signer.softtoken import KeyKind


def _conf(context: OperationContext) -> GlobalConf | None:
    """The configuration in force, or None when the API runs without one (or none was downloaded yet)."""
    if context.global_conf is None:
        return None
    try:
        conf: GlobalConf = context.global_conf()
    except BusError:
        return None
    return conf


def _required_conf(context: OperationContext) -> GlobalConf:
    conf = _conf(context)
    if conf is None:
        raise ApiError(404, "global_conf_unavailable", "the management API runs without a global configuration")
    return conf


def _usage(text: str | None, *, required: bool) -> KeyKind | None:
    if text is None:
        if required:
            raise bad_request("missing_parameter", "key_usage_type")
        return None
    if text not in ("AUTHENTICATION", "SIGNING"):
        raise bad_request("invalid_parameter", "key_usage_type")
    return KeyKind.AUTH if text == "AUTHENTICATION" else KeyKind.SIGN


def _ca_json(ca: ApprovedCa, cert: x509.Certificate, path: list[x509.Certificate]) -> dict[str, Any]:
    """X-Road's ``CertificateAuthority`` for one CA certificate; ``path`` runs from the top CA to ``cert``."""
    urls = [r.url for info in ca.ca_infos() if info.cert == cert.public_bytes(Encoding.DER) for r in info.ocsp_responders]
    return {
        "name": ca.name,
        "subject_distinguished_name": cert.subject.rfc4514_string() or "-",
        "issuer_distinguished_name": cert.issuer.rfc4514_string() or "-",
        "ocsp_response": "NOT_AVAILABLE",
        "not_after": xroad_time(cert.not_valid_after_utc),
        "top_ca": len(path) == 1,
        "path": ":".join(c.subject.rfc4514_string() for c in path) or "-",
        "authentication_only": ca.authentication_only,
        "certificate_profile_info": ca.certificate_profile,
        "acme_capable": False,
        "ocsp_responders": [{"url": url, "cost_type": "UNDEFINED"} for url in urls],
    }


def get_approved_certificate_authorities(context: OperationContext, request: ApiRequest) -> ApiResponse:
    """``GET /certificate-authorities?key_usage_type=&include_intermediate_cas=``: the approved CAs (top CAs unless
    intermediates are asked for); for SIGNING without the authentication-only ones. A security officer alone may
    list them for AUTHENTICATION, a registration officer alone for SIGNING (X-Road's rule)."""
    usage = _usage(request.query_value("key_usage_type"), required=False)
    intermediates = request.query_bool("include_intermediate_cas", False)
    assert request.principal is not None
    roles = request.principal.roles
    if not roles & {Role.SYSTEM_ADMINISTRATOR, Role.SECURITYSERVER_OBSERVER}:
        allowed = (Role.SECURITY_OFFICER in roles and usage is not KeyKind.SIGN) or (
            Role.REGISTRATION_OFFICER in roles and usage is KeyKind.SIGN)
        if not allowed:
            raise forbidden("getApprovedCertificateAuthorities")
    found: list[dict[str, Any]] = []
    for ca in _required_conf(context).approved_cas():
        if usage is KeyKind.SIGN and ca.authentication_only:
            continue
        top = x509.load_der_x509_certificate(ca.top_ca.cert)
        found.append(_ca_json(ca, top, [top]))
        if intermediates:
            for info in ca.intermediates:
                cert = x509.load_der_x509_certificate(info.cert)
                found.append(_ca_json(ca, cert, [top, cert]))
    return ApiResponse(200, found)


def approved_ca(conf: GlobalConf, ca_name: str) -> ApprovedCa | None:
    """The approved CA called ``ca_name`` (X-Road's CA name: the approved-CA entry's name)."""
    return next((ca for ca in conf.approved_cas() if ca.name == ca_name), None)


def profile_request(
    context: OperationContext, ca_name: str, kind: KeyKind, member: ClientId | None, values: dict[str, str]
) -> csrs.ProfileRequest:
    """The request for ``ca_name``'s profile with ``values``: the CA's profile when the global configuration lists
    it (400 ``wrong_key_usage`` for a sign request to an authentication-only CA, 500 for a profile fedbus does not
    read); fedbus's own when the configuration does not list the CA or the API runs without one, as before CAs
    had profiles (the console names no CA)."""
    conf = _conf(context)
    ca = None if conf is None else approved_ca(conf, ca_name)
    if ca is None or conf is None:
        # As before CAs had profiles: O required (missing_field), C, CN, serialNumber and SN accepted and not used.
        if not set(values) <= _UNLISTED_CA_FIELDS:
            raise bad_request("invalid_field", "subject_field_values")
        return csrs.ProfileRequest(FEDBUS, {"O": str(string_field(values, "O"))})
    if kind is KeyKind.SIGN and ca.authentication_only:
        raise bad_request("wrong_key_usage", ca_name)
    if not is_known_profile(ca.certificate_profile):
        raise ApiError(500, "certificate_profile_instantiation_failure", ca.certificate_profile)
    owner = context.server_dir.snapshot().identity.owner if kind is KeyKind.AUTH or member is None else member
    return csrs.ProfileRequest(profile_named(ca.certificate_profile), values, conf.member_name(owner) or "")


_UNLISTED_CA_FIELDS = frozenset({"C", "O", "CN", "serialNumber", "SN"})
"""The subject fields a request to a CA the configuration does not list may name (fedbus's profile uses ``O``)."""


def subject_field_values(data: dict[str, Any]) -> dict[str, str]:
    """``subject_field_values`` of a ``CsrGenerate``: an object of strings (400 ``invalid_field`` otherwise)."""
    fields = data.get("subject_field_values")
    if not isinstance(fields, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in fields.items()):
        raise bad_request("invalid_field", "subject_field_values")
    return dict(fields)


def invalid_dn(err: CertValidation) -> ApiError:
    """X-Road's 400 ``invalid_dn_parameter`` for subject field values the profile refuses."""
    return bad_request("invalid_dn_parameter", err.reason or err.message)


def get_subject_field_descriptions(context: OperationContext, request: ApiRequest) -> ApiResponse:
    """``GET /certificate-authorities/{ca_name}/csr-subject-fields?key_usage_type=&member_id=&key_id=``: the
    subject fields of a request to the CA, defaults filled from this server (AUTHENTICATION) or ``member_id``
    (SIGNING, required: 400 ``member_id_required_for_sign_csr``). The security officer asks for auth requests, the
    registration officer for sign requests; a ``key_id`` of the other usage is 400 ``wrong_key_usage``."""
    kind = _usage(request.query_value("key_usage_type"), required=True)
    assert request.principal is not None and kind is not None
    needed = Role.SECURITY_OFFICER if kind is KeyKind.AUTH else Role.REGISTRATION_OFFICER
    if needed not in request.principal.roles:
        raise forbidden("getSubjectFieldDescriptions")
    member_text = request.query_value("member_id")
    if kind is KeyKind.SIGN and not member_text:
        raise bad_request("member_id_required_for_sign_csr")
    member = parse_client_id(member_text) if member_text else None
    if member is not None and member.subsystem_code is not None:
        raise bad_request("invalid_client_id", str(member_text))
    key_id = request.query_value("key_id")
    if key_id:
        from security_server.admin import keys  # keys imports the token layer; only this branch needs it

        found = keys.find_key(context.server_dir, key_id, context.config)
        if found.info.kind is not kind:
            raise bad_request("wrong_key_usage", key_id)
    conf = _required_conf(context)
    ca_name = request.params["ca_name"]
    ca = approved_ca(conf, ca_name)
    if ca is None:
        raise ApiError(404, "certificate_authority_not_found", ca_name)
    wanted = profile_request(context, ca_name, kind, member, {})
    fields = csrs.subject_fields(context.server_dir, kind, wanted.profile, member, wanted.member_name)
    return ApiResponse(200, [f.to_json() for f in fields])


OPERATIONS = (
    Operation("GET", f"{PREFIX}/certificate-authorities", "getApprovedCertificateAuthorities",
              roles_for("getApprovedCertificateAuthorities"), get_approved_certificate_authorities),
    Operation("GET", f"{PREFIX}/certificate-authorities/{{ca_name}}/csr-subject-fields", "getSubjectFieldDescriptions",
              roles_for("getSubjectFieldDescriptions"), get_subject_field_descriptions),
)
