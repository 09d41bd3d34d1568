"""``/system/certificate``: the internal TLS certificate the client proxy's HTTPS port serves (UG-SS §10.4).

Show it (X-Road's ``CertificateDetails``), export it (``certs.tar.gz`` with ``cert.pem`` and ``cert.cer``), make a
new key and self-signed certificate (204, as X-Road's file says), ask for a CA-signed one (``DistinguishedName``
``name``, answered with the PKCS#10 request in DER, 201) and import the CA's certificate or chain for the key (200
with its details; 400 ``invalid_certificate`` for a file that is none, 400 ``key_not_found`` for one of another key,
409 ``certificate_already_exists`` for the one in use). A running server serves a new certificate from its next
HTTPS connection on (proxy/client_proxy_tls.py).
"""

from __future__ import annotations

from datetime import UTC, datetime

from security_server.admin import internal_tls
from security_server.management.api import ApiRequest, ApiResponse, Operation, string_field
from security_server.management.certificates import certificate_details
from security_server.management.context import OperationContext
from security_server.management.errors import bad_request
from security_server.management.operations.common import PREFIX
from security_server.management.permissions import roles_for


def get_system_certificate(context: OperationContext, request: ApiRequest) -> ApiResponse:
    """``GET /system/certificate``."""
    return ApiResponse(200, certificate_details(internal_tls.certificate(context.server_dir)))


def download_system_certificate(context: OperationContext, request: ApiRequest) -> ApiResponse:
    """``GET /system/certificate/export``: ``certs.tar.gz``."""
    return ApiResponse(200, raw=internal_tls.export(context.server_dir), content_type="application/gzip",
                       headers=((b"Content-Disposition", b'attachment; filename="certs.tar.gz"'),))


def generate_system_tls_key_and_certificate(context: OperationContext, request: ApiRequest) -> ApiResponse:
    """``POST /system/certificate``: a new key and self-signed certificate. 204 as X-Road's file documents (its
    implementation answers 201: docs/compatibility.md)."""
    internal_tls.regenerate(context.server_dir)
    return ApiResponse(204)


def generate_system_certificate_request(context: OperationContext, request: ApiRequest) -> ApiResponse:
    """``POST /system/certificate/csr``: ``{"name": "C=FI, O=..., CN=..."}``; the PKCS#10 request (DER)."""
    data = request.json_object(frozenset({"name"}), frozenset({"name"}))
    name = string_field(data, "name")
    assert name is not None  # required
    csr = internal_tls.certificate_request(context.server_dir, name)
    filename = f"internal_tls_cert_request_{datetime.now(UTC):%Y%m%d}.p10"
    return ApiResponse(201, raw=csr, content_type="application/octet-stream",
                       headers=((b"Content-Disposition", f'attachment; filename="{filename}"'.encode("ascii")),))


def import_system_certificate(context: OperationContext, request: ApiRequest) -> ApiResponse:
    """``POST /system/certificate/import``: the body is the certificate (or a PEM chain) for the internal key."""
    if not request.body or len(request.body) > internal_tls.MAX_CERTIFICATE_BYTES:
        raise bad_request("invalid_certificate", "the body is a PEM or DER certificate of at most 64 KiB")
    imported = internal_tls.import_certificate(context.server_dir, request.body)
    return ApiResponse(200, certificate_details(imported))


OPERATIONS = (
    Operation("GET", f"{PREFIX}/system/certificate", "getSystemCertificate", roles_for("getSystemCertificate"),
              get_system_certificate),
    Operation("POST", f"{PREFIX}/system/certificate", "generateSystemTlsKeyAndCertificate",
              roles_for("generateSystemTlsKeyAndCertificate"), generate_system_tls_key_and_certificate),
    Operation("GET", f"{PREFIX}/system/certificate/export", "downloadSystemCertificate",
              roles_for("downloadSystemCertificate"), download_system_certificate),
    Operation("POST", f"{PREFIX}/system/certificate/csr", "generateSystemCertificateRequest",
              roles_for("generateSystemCertificateRequest"), generate_system_certificate_request),
    Operation("POST", f"{PREFIX}/system/certificate/import", "importSystemCertificate",
              roles_for("importSystemCertificate"), import_system_certificate),
)
