"""The trust services the federation approves: certification authorities (with OCSP responders) and TSAs.

fedbus keeps one OCSP responder per CA (its URL and, when it is not the CA itself, its certificate) and names
approved services after their certificate's subject common name. The API numbers CAs and TSAs 1, 2, ... in the
order the store lists them (by name), so a number is stable while no service with an earlier name is added.
"""

from __future__ import annotations

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

from central_registry.admin.errors import Conflict, NotFound
from central_registry.store import ApprovedCa, ApprovedTsa, RegistryError, RegistryStore


class CertificationServiceNotFound(NotFound):
    """No approved CA has this number."""

    api_code = "certification_service_not_found"


class TimestampingServiceNotFound(NotFound):
    """No approved TSA has this number."""

    api_code = "timestamping_service_not_found"


class OcspResponderExists(Conflict):
    """fedbus keeps one OCSP responder per CA, and this CA has one."""

    api_code = "ocsp_responder_exists"


def certificate(data: bytes) -> x509.Certificate:
    """A certificate from PEM or DER bytes; :class:`RegistryError` when it is neither."""
    try:
        return x509.load_pem_x509_certificate(data) if b"-----BEGIN" in data else x509.load_der_x509_certificate(data)
    except ValueError as err:
        raise RegistryError("the file is not an X.509 certificate") from err


def _der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def service_name(cert: x509.Certificate) -> str:
    """An approved service's name: its subject's common name (the whole subject when it has none)."""
    found = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(found[0].value) if found else cert.subject.rfc4514_string()


def certification_services(store: RegistryStore) -> list[ApprovedCa]:
    """The approved CAs, in the store's order."""
    return store.cas()


def certification_service(store: RegistryStore, number: int) -> ApprovedCa:
    """One approved CA by number."""
    cas = store.cas()
    if not 1 <= number <= len(cas):
        raise CertificationServiceNotFound(f"no certification service {number}")
    return cas[number - 1]


def add_certification_service(
    store: RegistryStore, cert: x509.Certificate, profile: str, *, authentication_only: bool = False
) -> tuple[int, ApprovedCa]:
    """Approve a CA by its certificate, with its certificate profile; its number and the stored CA."""
    if not profile.strip():
        raise RegistryError("a certification service needs a certificate profile")
    ca = ApprovedCa(service_name(cert), _der(cert), None, None, authentication_only, profile)
    store.add_ca(ca)
    return [c.name for c in store.cas()].index(ca.name) + 1, ca


def add_ocsp_responder(store: RegistryStore, number: int, url: str, cert: x509.Certificate | None) -> ApprovedCa:
    """Give CA ``number`` its OCSP responder (URL, and the responder's certificate unless the CA signs its
    answers itself)."""
    ca = certification_service(store, number)
    if ca.ocsp_url is not None:
        raise OcspResponderExists(f"{ca.name} has an OCSP responder already ({ca.ocsp_url})")
    if not url.startswith(("http://", "https://")):
        raise RegistryError("an OCSP responder URL is http:// or https://")
    cert_der = None if cert is None else _der(cert)
    with store.transaction("ocsp_responder_added", {"ca": ca.name, "url": url}):
        store.db.execute("UPDATE approved_cas SET ocsp_url = ?, ocsp_cert_der = ? WHERE name = ?",
                         [url, cert_der, ca.name])
    return certification_service(store, number)


def timestamping_services(store: RegistryStore) -> list[ApprovedTsa]:
    """The approved timestamping services, in the store's order."""
    return store.tsas()


def add_timestamping_service(store: RegistryStore, url: str, cert: x509.Certificate) -> tuple[int, ApprovedTsa]:
    """Approve a TSA by its URL and certificate; its number and the stored TSA."""
    if not url.startswith(("http://", "https://")):
        raise RegistryError("a timestamping service URL is http:// or https://")
    tsa = ApprovedTsa(service_name(cert), url, _der(cert))
    store.add_tsa(tsa)
    return [t.name for t in store.tsas()].index(tsa.name) + 1, tsa
