"""``/certification-services`` and ``/timestamping-services``: the approved trust services (listing)."""

from __future__ import annotations

from cryptography import x509

from central_registry.admin import trust_services as admin
from central_registry.management.context import RegistryContext
from central_registry.management.operations.common import PREFIX, xroad_time
from central_registry.management.permissions import roles_for
from security_server.management.api import ApiRequest, ApiResponse, Operation
from security_server.management.certificates import certificate_details


def certification_services(context: RegistryContext, request: ApiRequest) -> ApiResponse:
    """GET /certification-services: numbered 1, 2, ... in the store's order."""
    with context.store() as store:
        cas = admin.certification_services(store)
    answer = []
    for number, ca in enumerate(cas, start=1):
        cert = x509.load_der_x509_certificate(ca.cert_der)
        answer.append({"id": number, "name": ca.name, "not_before": xroad_time(cert.not_valid_before_utc),
                       "not_after": xroad_time(cert.not_valid_after_utc)})
    return ApiResponse(200, answer)


def timestamping_services(context: RegistryContext, request: ApiRequest) -> ApiResponse:
    """GET /timestamping-services: numbered 1, 2, ...; fedbus keeps no cost type (``UNDEFINED``), and the interval
    is the federation's."""
    with context.store() as store:
        tsas = admin.timestamping_services(store)
        interval = store.settings().timestamping_interval_seconds
    return ApiResponse(200, [
        {"id": number, "url": tsa.url, "cost_type": "UNDEFINED", "timestamping_interval": interval,
         "certificate": certificate_details(x509.load_der_x509_certificate(tsa.cert_der))}
        for number, tsa in enumerate(tsas, start=1)
    ])


def operations() -> list[Operation]:
    """The operations of this area."""
    return [
        Operation("GET", f"{PREFIX}/certification-services", "getCertificationServices",
                  roles_for("getCertificationServices"), certification_services),
        Operation("GET", f"{PREFIX}/timestamping-services", "getTimestampingServices",
                  roles_for("getTimestampingServices"), timestamping_services),
    ]
