"""``/certification-services`` (with their OCSP responders and intermediate CAs), ``/intermediate-cas``,
``/ocsp-responders`` and ``/timestamping-services``: list, show, add, change, delete, and the certificates.

A CA, an OCSP responder and a TSA are added from ``multipart/form-data`` uploads as in X-Road's file (the
certificate as ``certificate``, the settings as fields). fedbus keeps one OCSP responder per CA, numbered like
its CA; it keeps no cost type (``UNDEFINED``).
"""

from __future__ import annotations

from typing import Any, Callable

from cryptography import x509

from central_registry.admin import trust_services as admin
from central_registry.management.context import RegistryContext
from central_registry.management.operations.common import PREFIX, positive_int, xroad_time
from central_registry.management.permissions import roles_for
from central_registry.store import ApprovedCa, ApprovedTsa, RegistryStore
from security_server.management.api import ApiRequest, ApiResponse, FormPart, Operation, no_content, string_field
from security_server.management.certificates import certificate_details
from security_server.management.errors import bad_request

COST_TYPES = ("FREE", "PAID", "UNDEFINED")


def _ca_json(number: int, ca: ApprovedCa, full: bool) -> dict[str, Any]:
    cert = x509.load_der_x509_certificate(ca.cert_der)
    data: dict[str, Any] = {"id": number, "name": ca.name, "not_before": xroad_time(cert.not_valid_before_utc),
                            "not_after": xroad_time(cert.not_valid_after_utc)}
    if full:
        data.update({
            "issuer_distinguished_name": cert.issuer.rfc4514_string(),
            "subject_distinguished_name": cert.subject.rfc4514_string(),
            "certificate_profile_info": ca.profile,
            "tls_auth": not ca.authentication_only,
            "default_csr_format": "DER",
        })
    return data


def _tsa_json(number: int, tsa: ApprovedTsa, interval: int) -> dict[str, Any]:
    return {"id": number, "url": tsa.url, "cost_type": "UNDEFINED", "timestamping_interval": interval,
            "certificate": certificate_details(x509.load_der_x509_certificate(tsa.cert_der))}


def _ocsp_json(number: int, ca: ApprovedCa) -> dict[str, Any]:
    return {"id": number, "url": ca.ocsp_url, "cost_type": "UNDEFINED", "has_certificate": ca.ocsp_cert_der is not None}


def _uploaded_certificate(parts: dict[str, FormPart], required: bool = True) -> x509.Certificate | None:
    part = parts.get("certificate")
    if part is None:
        if required:
            raise bad_request("missing_field", "certificate")
        return None
    return admin.certificate(part.data)


def _field(parts: dict[str, FormPart], name: str, default: str | None = None) -> str:
    part = parts.get(name)
    if part is None:
        if default is None:
            raise bad_request("missing_field", name)
        return default
    value = part.text(name).strip()
    if not value or len(value) > 255:
        raise bad_request("invalid_field", name)
    return value


def _url_and_certificate(parts: dict[str, FormPart]) -> tuple[str, x509.Certificate | None]:
    """An OCSP responder's or a TSA's form: its ``url``, X-Road's ``cost_type`` (checked; fedbus keeps none) and
    the ``certificate``, if uploaded."""
    url = _field(parts, "url")
    _check_cost_type(parts)
    return url, _uploaded_certificate(parts, required=False)


def _check_cost_type(parts: dict[str, FormPart]) -> None:
    if _field(parts, "cost_type", "UNDEFINED") not in COST_TYPES:
        raise bad_request("invalid_field", "cost_type")


def _delete(context: RegistryContext, number: int, delete: Callable[[RegistryStore, int], None]) -> ApiResponse:
    """Delete item ``number`` with ``delete`` in one store session: 204."""
    with context.store() as store:
        delete(store, number)
    return no_content()


def _ca_number(request: ApiRequest) -> int:
    return positive_int(request.params["certification_service_id"], "certification_service_id")


def certification_services(context: RegistryContext, request: ApiRequest) -> ApiResponse:
    """GET /certification-services."""
    with context.store() as store:
        cas = admin.certification_services(store)
    return ApiResponse(200, [_ca_json(number, ca, False) for number, ca in enumerate(cas, start=1)])


def certification_service(context: RegistryContext, request: ApiRequest) -> ApiResponse:
    """GET /certification-services/{certification_service_id}."""
    number = _ca_number(request)
    with context.store() as store:
        return ApiResponse(200, _ca_json(number, admin.certification_service(store, number), True))


def add_certification_service(context: RegistryContext, request: ApiRequest) -> ApiResponse:
    """POST /certification-services: ``certificate``, ``certificate_profile_info`` (``fedbus`` by default, or
    X-Road's class name of the EJBCA, EE or FI profile; another is 400 ``certificate_profile_info_class_not_found``),
    ``tls_auth`` (``false``: the CA is approved for authentication only)."""
    parts = request.form_parts("certificate")
    cert = _uploaded_certificate(parts)
    assert cert is not None
    profile = _field(parts, "certificate_profile_info", "fedbus")
    tls_auth = _field(parts, "tls_auth", "true").lower()
    if tls_auth not in ("true", "false"):
        raise bad_request("invalid_field", "tls_auth")
    with context.store() as store:
        number, ca = admin.add_certification_service(store, cert, profile, authentication_only=tls_auth == "false")
    return ApiResponse(201, _ca_json(number, ca, True))


def ocsp_responders(context: RegistryContext, request: ApiRequest) -> ApiResponse:
    """GET /certification-services/{certification_service_id}/ocsp-responders."""
    number = _ca_number(request)
    with context.store() as store:
        ca = admin.certification_service(store, number)
    return ApiResponse(200, [] if ca.ocsp_url is None else [_ocsp_json(number, ca)])


def add_ocsp_responder(context: RegistryContext, request: ApiRequest) -> ApiResponse:
    """POST /certification-services/{certification_service_id}/ocsp-responders: ``url``, ``cost_type``, and the
    responder's ``certificate`` unless the CA answers itself."""
    number = _ca_number(request)
    url, cert = _url_and_certificate(request.form_parts("url"))
    with context.store() as store:
        ca = admin.add_ocsp_responder(store, number, url, cert)
    return ApiResponse(201, _ocsp_json(number, ca))


def timestamping_services(context: RegistryContext, request: ApiRequest) -> ApiResponse:
    """GET /timestamping-services (the interval is the federation's)."""
    with context.store() as store:
        tsas = admin.timestamping_services(store)
        interval = store.settings().timestamping_interval_seconds
    return ApiResponse(200, [_tsa_json(number, tsa, interval) for number, tsa in enumerate(tsas, start=1)])


def add_timestamping_service(context: RegistryContext, request: ApiRequest) -> ApiResponse:
    """POST /timestamping-services: ``url``, ``certificate``, ``cost_type``."""
    url, cert = _url_and_certificate(request.form_parts("certificate"))
    if cert is None:
        raise bad_request("missing_field", "certificate")
    with context.store() as store:
        number, tsa = admin.add_timestamping_service(store, url, cert)
        interval = store.settings().timestamping_interval_seconds
    return ApiResponse(201, _tsa_json(number, tsa, interval))


def update_certification_service(context: RegistryContext, request: ApiRequest) -> ApiResponse:
    """PATCH /certification-services/{certification_service_id}: X-Road's ``CertificationServiceSettings``
    (``certificate_profile_info``, ``tls_auth`` as ``"true"``/``"false"``, ``default_csr_format`` ``DER``)."""
    number = _ca_number(request)
    data = request.json_object(frozenset({"certificate_profile_info", "tls_auth", "default_csr_format"}))
    profile = string_field(data, "certificate_profile_info", required=False)
    tls_auth = string_field(data, "tls_auth", required=False)
    if tls_auth is not None and tls_auth.lower() not in ("true", "false"):
        raise bad_request("invalid_field", "tls_auth")
    if data.get("default_csr_format", "DER") != "DER":
        raise bad_request("invalid_field", "default_csr_format")
    with context.store() as store:
        ca = admin.update_certification_service(
            store, number, profile, None if tls_auth is None else tls_auth.lower() == "false")
    return ApiResponse(200, _ca_json(number, ca, True))


def delete_certification_service(context: RegistryContext, request: ApiRequest) -> ApiResponse:
    """DELETE /certification-services/{certification_service_id}: the CA and its OCSP responder."""
    return _delete(context, _ca_number(request), admin.delete_certification_service)


def certification_service_certificate(context: RegistryContext, request: ApiRequest) -> ApiResponse:
    """GET /certification-services/{certification_service_id}/certificate: X-Road's ``CertificateDetails``."""
    number = _ca_number(request)
    with context.store() as store:
        ca = admin.certification_service(store, number)
    return ApiResponse(200, certificate_details(x509.load_der_x509_certificate(ca.cert_der)))


def _ocsp_number(request: ApiRequest) -> int:
    return positive_int(request.params["ocsp_responder_id"], "ocsp_responder_id")


def ocsp_responder(context: RegistryContext, request: ApiRequest) -> ApiResponse:
    """GET /ocsp-responders/{ocsp_responder_id} (CA n's responder is responder n)."""
    number = _ocsp_number(request)
    with context.store() as store:
        return ApiResponse(200, _ocsp_json(number, admin.ocsp_responder(store, number)))


def update_ocsp_responder(context: RegistryContext, request: ApiRequest) -> ApiResponse:
    """PATCH /ocsp-responders/{ocsp_responder_id}: any of ``url``, ``cost_type``, ``certificate``."""
    number = _ocsp_number(request)
    parts = request.form_parts("url")
    url = _field(parts, "url") if "url" in parts else None
    _check_cost_type(parts)
    cert = _uploaded_certificate(parts, required=False)
    with context.store() as store:
        ca = admin.update_ocsp_responder(store, number, url, cert)
    return ApiResponse(200, _ocsp_json(number, ca))


def delete_ocsp_responder(context: RegistryContext, request: ApiRequest) -> ApiResponse:
    """DELETE /ocsp-responders/{ocsp_responder_id}."""
    return _delete(context, _ocsp_number(request), admin.delete_ocsp_responder)


def ocsp_responder_certificate(context: RegistryContext, request: ApiRequest) -> ApiResponse:
    """GET /ocsp-responders/{ocsp_responder_id}/certificate: the responder's certificate, or its CA's when the
    CA answers itself."""
    number = _ocsp_number(request)
    with context.store() as store:
        ca = admin.ocsp_responder(store, number)
    der = ca.ocsp_cert_der if ca.ocsp_cert_der is not None else ca.cert_der
    return ApiResponse(200, certificate_details(x509.load_der_x509_certificate(der)))


def _tsa_number(request: ApiRequest) -> int:
    return positive_int(request.params["timestamping_service_id"], "timestamping_service_id")


def timestamping_service(context: RegistryContext, request: ApiRequest) -> ApiResponse:
    """GET /timestamping-services/{timestamping_service_id}."""
    number = _tsa_number(request)
    with context.store() as store:
        tsa = admin.timestamping_service(store, number)
        interval = store.settings().timestamping_interval_seconds
    return ApiResponse(200, _tsa_json(number, tsa, interval))


def update_timestamping_service(context: RegistryContext, request: ApiRequest) -> ApiResponse:
    """PATCH /timestamping-services/{timestamping_service_id}: ``url``, ``cost_type`` and optionally a new
    ``certificate`` (the TSA is then named, and numbered, after it)."""
    number = _tsa_number(request)
    url, cert = _url_and_certificate(request.form_parts("url"))
    with context.store() as store:
        new_number, tsa = admin.update_timestamping_service(store, number, url, cert)
        interval = store.settings().timestamping_interval_seconds
    return ApiResponse(200, _tsa_json(new_number, tsa, interval))


def delete_timestamping_service(context: RegistryContext, request: ApiRequest) -> ApiResponse:
    """DELETE /timestamping-services/{timestamping_service_id}."""
    return _delete(context, _tsa_number(request), admin.delete_timestamping_service)


def _intermediate_json(found: admin.IntermediateCa) -> dict[str, Any]:
    return {"id": found.id, "ca_certificate": certificate_details(x509.load_der_x509_certificate(found.cert_der))}


def _intermediate_ocsp_json(found: admin.IntermediateCa) -> dict[str, Any]:
    return {"id": found.id, "url": found.ocsp_url, "cost_type": "UNDEFINED",
            "has_certificate": found.ocsp_cert_der is not None}


def _intermediate_id(request: ApiRequest) -> int:
    return positive_int(request.params["intermediate_ca_id"], "intermediate_ca_id")


def intermediate_cas(context: RegistryContext, request: ApiRequest) -> ApiResponse:
    """GET /certification-services/{certification_service_id}/intermediate-cas."""
    number = _ca_number(request)
    with context.store() as store:
        return ApiResponse(200, [_intermediate_json(i) for i in admin.intermediate_cas(store, number)])


def add_intermediate_ca(context: RegistryContext, request: ApiRequest) -> ApiResponse:
    """POST /certification-services/{certification_service_id}/intermediate-cas: the uploaded ``certificate``."""
    number = _ca_number(request)
    cert = _uploaded_certificate(request.form_parts("certificate"))
    assert cert is not None
    with context.store() as store:
        return ApiResponse(201, _intermediate_json(admin.add_intermediate_ca(store, number, cert)))


def intermediate_ca(context: RegistryContext, request: ApiRequest) -> ApiResponse:
    """GET /intermediate-cas/{intermediate_ca_id}."""
    found_id = _intermediate_id(request)
    with context.store() as store:
        return ApiResponse(200, _intermediate_json(admin.intermediate_ca(store, found_id)))


def delete_intermediate_ca(context: RegistryContext, request: ApiRequest) -> ApiResponse:
    """DELETE /intermediate-cas/{intermediate_ca_id} (with its OCSP responder)."""
    return _delete(context, _intermediate_id(request), admin.delete_intermediate_ca)


def intermediate_ocsp_responders(context: RegistryContext, request: ApiRequest) -> ApiResponse:
    """GET /intermediate-cas/{intermediate_ca_id}/ocsp-responders."""
    found_id = _intermediate_id(request)
    with context.store() as store:
        found = admin.intermediate_ca(store, found_id)
    return ApiResponse(200, [] if found.ocsp_url is None else [_intermediate_ocsp_json(found)])


def add_intermediate_ocsp_responder(context: RegistryContext, request: ApiRequest) -> ApiResponse:
    """POST /intermediate-cas/{intermediate_ca_id}/ocsp-responders: ``url``, ``cost_type``, the responder's
    ``certificate`` unless the intermediate CA answers itself."""
    found_id = _intermediate_id(request)
    url, cert = _url_and_certificate(request.form_parts("url"))
    with context.store() as store:
        found = admin.add_intermediate_ocsp_responder(store, found_id, url, cert)
    return ApiResponse(201, _intermediate_ocsp_json(found))


def delete_intermediate_ocsp_responder(context: RegistryContext, request: ApiRequest) -> ApiResponse:
    """DELETE /intermediate-cas/{intermediate_ca_id}/ocsp-responders/{ocsp_responder_id}."""
    found_id = _intermediate_id(request)
    responder = _ocsp_number(request)
    with context.store() as store:
        admin.delete_intermediate_ocsp_responder(store, found_id, responder)
    return no_content()


def operations() -> list[Operation]:
    """The operations of this area."""
    one = f"{PREFIX}/certification-services/{{certification_service_id}}"
    ocsp = f"{PREFIX}/ocsp-responders/{{ocsp_responder_id}}"
    tsa = f"{PREFIX}/timestamping-services/{{timestamping_service_id}}"
    inter = f"{PREFIX}/intermediate-cas/{{intermediate_ca_id}}"
    return [
        Operation("GET", f"{PREFIX}/certification-services", "getCertificationServices",
                  roles_for("getCertificationServices"), certification_services),
        Operation("POST", f"{PREFIX}/certification-services", "addCertificationService",
                  roles_for("addCertificationService"), add_certification_service),
        Operation("GET", one, "getCertificationService", roles_for("getCertificationService"), certification_service),
        Operation("GET", f"{one}/ocsp-responders", "getCertificationServiceOcspResponders",
                  roles_for("getCertificationServiceOcspResponders"), ocsp_responders),
        Operation("POST", f"{one}/ocsp-responders", "addCertificationServiceOcspResponder",
                  roles_for("addCertificationServiceOcspResponder"), add_ocsp_responder),
        Operation("PATCH", one, "updateCertificationService", roles_for("updateCertificationService"),
                  update_certification_service),
        Operation("DELETE", one, "deleteCertificationService", roles_for("deleteCertificationService"),
                  delete_certification_service),
        Operation("GET", f"{one}/certificate", "getCertificationServiceCertificate",
                  roles_for("getCertificationServiceCertificate"), certification_service_certificate),
        Operation("GET", f"{one}/intermediate-cas", "getCertificationServiceIntermediateCas",
                  roles_for("getCertificationServiceIntermediateCas"), intermediate_cas),
        Operation("POST", f"{one}/intermediate-cas", "addCertificationServiceIntermediateCa",
                  roles_for("addCertificationServiceIntermediateCa"), add_intermediate_ca),
        Operation("GET", inter, "getIntermediateCa", roles_for("getIntermediateCa"), intermediate_ca),
        Operation("DELETE", inter, "deleteIntermediateCa", roles_for("deleteIntermediateCa"), delete_intermediate_ca),
        Operation("GET", f"{inter}/ocsp-responders", "getIntermediateCaOcspResponders",
                  roles_for("getIntermediateCaOcspResponders"), intermediate_ocsp_responders),
        Operation("POST", f"{inter}/ocsp-responders", "addIntermediateCaOcspResponder",
                  roles_for("addIntermediateCaOcspResponder"), add_intermediate_ocsp_responder),
        Operation("DELETE", f"{inter}/ocsp-responders/{{ocsp_responder_id}}", "deleteIntermediateCaOcspResponder",
                  roles_for("deleteIntermediateCaOcspResponder"), delete_intermediate_ocsp_responder),
        Operation("GET", ocsp, "getOcspResponder", roles_for("getOcspResponder"), ocsp_responder),
        Operation("PATCH", ocsp, "updateOcspResponder", roles_for("updateOcspResponder"), update_ocsp_responder),
        Operation("DELETE", ocsp, "deleteOcspResponder", roles_for("deleteOcspResponder"), delete_ocsp_responder),
        Operation("GET", f"{ocsp}/certificate", "getOcspRespondersCertificate",
                  roles_for("getOcspRespondersCertificate"), ocsp_responder_certificate),
        Operation("GET", tsa, "getTimestampingService", roles_for("getTimestampingService"), timestamping_service),
        Operation("PATCH", tsa, "updateTimestampingService", roles_for("updateTimestampingService"),
                  update_timestamping_service),
        Operation("DELETE", tsa, "deleteTimestampingService", roles_for("deleteTimestampingService"),
                  delete_timestamping_service),
        Operation("GET", f"{PREFIX}/timestamping-services", "getTimestampingServices",
                  roles_for("getTimestampingServices"), timestamping_services),
        Operation("POST", f"{PREFIX}/timestamping-services", "addTimestampingService",
                  roles_for("addTimestampingService"), add_timestamping_service),
    ]
