"""``/management-services-configuration``: the management services' provider (shown, named, registered on a
security server) and the TLS key and certificate of the registry's management service (central_registry/admin/
management_services.py, management_service_tls.py).

The management service is the registry's HTTPS ``/managementservice`` (``[registry] https-port``), where security
servers POST their signed requests; its certificate (``tls/cert.pem``) is published in the private parameters
beside the address and pinned by the servers: X-Road's "management service TLS certificate". A new key, a CSR and
an uploaded certificate change ``tls/`` on disk; the running registry serves and publishes the old pair until its
next start.
"""

from __future__ import annotations

import gzip
import io
import tarfile
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from central_registry.admin import management_service_tls as tls
from central_registry.admin import management_services as admin
from central_registry.admin.management_services import ManagementServices
from central_registry.management.context import RegistryContext
from central_registry.management.operations.common import PREFIX, parse_server_id, parse_subsystem_id, server_id_text
from central_registry.management.permissions import roles_for
from central_registry.service import RegistryPaths
from central_registry.store import RegistryStore
from security_server.management.api import ApiRequest, ApiResponse, Operation, string_field
from security_server.management.certificates import certificate_details
from security_server.management.errors import ApiError, bad_request
from security_server.management.ids import client_id_text

BASE = f"{PREFIX}/management-services-configuration"
CERTIFICATE_ARCHIVE = "management-service-certificate.tar.gz"
RESERVED_NAME = "central registry"
"""The name shown for the registry's reserved provider identity (it answers the management services itself)."""


def _json(context: RegistryContext, store: RegistryStore, found: ManagementServices) -> dict[str, Any]:
    """X-Road's ``ManagementServicesConfiguration``: the published provider (the reserved identity, named "central
    registry", until one is named), the servers hosting it joined by ``; `` as X-Road joins them, X-Road's owners'
    group code. As X-Road's central server does when it has no value, ``security_server_id`` (no server hosts the
    provider) and ``wsdl_address`` (fedbus serves no WSDL of the management services) may be empty strings."""
    provider = admin.published_provider(store)
    publisher = context.publisher()
    return {
        "service_provider_id": client_id_text(provider),
        "service_provider_name": found.provider_name or RESERVED_NAME,
        "security_server_id": "; ".join(server_id_text(s) for s in found.servers),
        "security_server_owners_global_group_code": found.owners_group or admin.OWNERS_GROUP,
        "services_address": publisher.management_url if publisher is not None else "",
        "wsdl_address": "",
    }


def get_configuration(context: RegistryContext, request: ApiRequest) -> ApiResponse:
    """GET /management-services-configuration."""
    with context.store() as store:
        return ApiResponse(200, _json(context, store, admin.configuration(store)))


def update_configuration(context: RegistryContext, request: ApiRequest) -> ApiResponse:
    """PATCH /management-services-configuration (``ServiceProviderId``): name the provider subsystem; published in
    the private parameters from the next configuration."""
    data = request.json_object(frozenset({"service_provider_id"}), frozenset({"service_provider_id"}))
    text = str(string_field(data, "service_provider_id", max_length=1279))
    try:
        subsystem = parse_subsystem_id(text)
    except ApiError as err:  # X-Road: a provider is a subsystem, else 400 invalid_service_provider_id
        raise bad_request("invalid_service_provider_id", text) from err
    with context.store() as store:
        return ApiResponse(200, _json(context, store, admin.set_provider(store, subsystem)))


def register_provider(context: RegistryContext, request: ApiRequest) -> ApiResponse:
    """POST /management-services-configuration/register-provider (``security_server_id``): the provider becomes a
    client of that server (the centre's client registration, approved at once)."""
    data = request.json_object(frozenset({"security_server_id"}), frozenset({"security_server_id"}))
    server = parse_server_id(str(string_field(data, "security_server_id", max_length=1279)))
    with context.store() as store:
        return ApiResponse(200, _json(context, store, admin.register_provider_server(store, server, context.now())))


def _tls_certificate(context: RegistryContext) -> x509.Certificate:
    path = RegistryPaths(context.root).tls / "cert.pem"
    try:
        return x509.load_pem_x509_certificate(path.read_bytes())
    except (OSError, ValueError) as err:
        raise ApiError(404, "certificate_not_found", "management service TLS") from err


def get_certificate(context: RegistryContext, request: ApiRequest) -> ApiResponse:
    """GET .../certificate: the management service's TLS certificate (``CertificateDetails``)."""
    return ApiResponse(200, certificate_details(_tls_certificate(context)))


def download_certificate(context: RegistryContext, request: ApiRequest) -> ApiResponse:
    """GET .../download-certificate: the certificate as a gzip-compressed tar, as X-Road's
    (``./management-service.pem`` and ``./management-service.cer``, DER)."""
    cert = _tls_certificate(context)
    buffer = io.BytesIO()
    moment = int(context.now().timestamp())
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, data in (("./management-service.pem", cert.public_bytes(serialization.Encoding.PEM)),
                           ("./management-service.cer", cert.public_bytes(serialization.Encoding.DER))):
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), moment, 0o644
            archive.addfile(info, io.BytesIO(data))
    body = gzip.compress(buffer.getvalue(), mtime=moment)
    return ApiResponse(200, raw=body, content_type="application/gzip", headers=(
        (b"Content-Disposition", f'attachment; filename="{CERTIFICATE_ARCHIVE}"'.encode("ascii")),))


def _tls_folder(context: RegistryContext) -> Path:
    return RegistryPaths(context.root).tls


def generate_key_and_certificate(context: RegistryContext, request: ApiRequest) -> ApiResponse:
    """POST .../certificate: a new TLS key and self-signed certificate (201; in use from the next start)."""
    with context.store() as store:
        instance = store.settings().instance
    tls.new_key_and_certificate(_tls_folder(context), f"{instance} central registry", context.now())
    return ApiResponse(201, headers=((b"Location", f"{BASE}/certificate".encode("ascii")),))


def generate_certificate_request(context: RegistryContext, request: ApiRequest) -> ApiResponse:
    """POST .../generate-csr (``DistinguishedName``): a PKCS#10 request (DER) for the TLS key."""
    data = request.json_object(frozenset({"name"}), frozenset({"name"}))
    csr = tls.certificate_request(_tls_folder(context), data["name"])
    return ApiResponse(201, raw=csr, content_type="application/octet-stream",
                       headers=((b"Content-Disposition", b'attachment; filename="request.csr"'),))


def upload_certificate(context: RegistryContext, request: ApiRequest) -> ApiResponse:
    """POST .../upload-certificate (``CertificateFile``): a certificate for the TLS key replaces the one in
    ``tls/`` (in use from the next start)."""
    parts = request.form_parts("certificate")
    if "certificate" not in parts:
        raise bad_request("invalid_request", "certificate")
    cert = tls.import_certificate(_tls_folder(context), parts["certificate"].data, context.now())
    return ApiResponse(200, certificate_details(cert))


def operations() -> list[Operation]:
    """The operations of this area."""
    return [
        Operation("GET", BASE, "getManagementServicesConfiguration", roles_for("getManagementServicesConfiguration"),
                  get_configuration),
        Operation("PATCH", BASE, "updateManagementServicesConfiguration",
                  roles_for("updateManagementServicesConfiguration"), update_configuration),
        Operation("POST", f"{BASE}/register-provider", "registerServiceProvider", roles_for("registerServiceProvider"),
                  register_provider),
        Operation("GET", f"{BASE}/certificate", "getCertificate", roles_for("getCertificate"), get_certificate),
        Operation("GET", f"{BASE}/download-certificate", "downloadCertificate", roles_for("downloadCertificate"),
                  download_certificate),
        Operation("POST", f"{BASE}/certificate", "generateKeyAndCertificate", roles_for("generateKeyAndCertificate"),
                  generate_key_and_certificate),
        Operation("POST", f"{BASE}/generate-csr", "generateCertificateRequest",
                  roles_for("generateCertificateRequest"), generate_certificate_request),
        Operation("POST", f"{BASE}/upload-certificate", "uploadCertificate", roles_for("uploadCertificate"),
                  upload_certificate),
    ]
