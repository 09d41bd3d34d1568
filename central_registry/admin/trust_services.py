"""The trust services the federation approves: certification authorities (with OCSP responders) and TSAs.

fedbus keeps one OCSP responder per CA (its URL and, when it is not the CA itself, its certificate) and names
approved services after their certificate's subject common name. The API numbers CAs and TSAs 1, 2, ... in the
order the store lists them (by name), so a number is stable while no service with an earlier name is added.
An approved CA may have intermediate CAs (numbered by the store, in the order they were added), each with at most
one OCSP responder, numbered like its intermediate CA.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

from central_registry.admin.errors import Conflict, NotFound
from central_registry.store import ApprovedCa, ApprovedTsa, RegistryError, RegistryStore
from security_server.core.certprofile import is_known_profile, profile_names


class UnknownCertificateProfile(RegistryError):
    """A certificate profile fedbus does not read (X-Road's central server: ``CertificateProfileInfoValidator``)."""

    http_status = 400
    api_code = "certificate_profile_info_class_not_found"


def _check_profile(profile: str) -> None:
    """Refuse a blank profile, and one fedbus does not read: its CA's certificates would name nobody."""
    if not profile.strip():
        raise RegistryError("a certification service needs a certificate profile")
    if not is_known_profile(profile):
        raise UnknownCertificateProfile(
            f"unknown certificate profile {profile!r} (known: {', '.join(profile_names())} or X-Road's class names)")


class CertificationServiceNotFound(NotFound):
    """No approved CA has this number."""

    api_code = "certification_service_not_found"


class TimestampingServiceNotFound(NotFound):
    """No approved TSA has this number."""

    api_code = "timestamping_authority_not_found"


class OcspResponderNotFound(NotFound):
    """The CA of this number has no OCSP responder (fedbus numbers a CA's one responder like its CA)."""

    api_code = "ocsp_responder_not_found"


class IntermediateCaNotFound(NotFound):
    """No intermediate CA has this id."""

    api_code = "intermediate_ca_not_found"


@dataclass(frozen=True, slots=True)
class IntermediateCa:
    """An intermediate CA of an approved CA: its id, its top CA's name, certificate, OCSP responder (or none)."""

    id: int
    ca_name: str
    cert_der: bytes
    ocsp_url: str | None
    ocsp_cert_der: bytes | None


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
    _check_profile(profile)
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


def update_certification_service(
    store: RegistryStore, number: int, profile: str | None, authentication_only: bool | None
) -> ApprovedCa:
    """Change CA ``number``'s certificate profile and whether it is approved for authentication only."""
    ca = certification_service(store, number)
    if profile is not None:
        _check_profile(profile)
    new_profile = ca.profile if profile is None else profile
    new_auth_only = ca.authentication_only if authentication_only is None else authentication_only
    with store.transaction("ca_updated", {"name": ca.name, "profile": new_profile,
                                          "authentication_only": new_auth_only}):
        store.db.execute("UPDATE approved_cas SET profile = ?, authentication_only = ? WHERE name = ?",
                         [new_profile, int(new_auth_only), ca.name])
    return certification_service(store, number)


def delete_certification_service(store: RegistryStore, number: int) -> None:
    """Withdraw CA ``number``'s approval (with its OCSP responder)."""
    ca = certification_service(store, number)
    with store.transaction("ca_deleted", {"name": ca.name}):
        store.db.execute("DELETE FROM intermediate_cas WHERE ca_name = ?", [ca.name])
        store.db.execute("DELETE FROM approved_cas WHERE name = ?", [ca.name])


def ocsp_responder(store: RegistryStore, number: int) -> ApprovedCa:
    """OCSP responder ``number``: the one of CA ``number``; :class:`OcspResponderNotFound` when it has none."""
    try:
        ca = certification_service(store, number)
    except CertificationServiceNotFound as err:
        raise OcspResponderNotFound(f"no OCSP responder {number}") from err
    if ca.ocsp_url is None:
        raise OcspResponderNotFound(f"no OCSP responder {number}")
    return ca


def update_ocsp_responder(store: RegistryStore, number: int, url: str | None, cert: x509.Certificate | None) -> ApprovedCa:
    """Change OCSP responder ``number``'s URL and (when given) its certificate."""
    ca = ocsp_responder(store, number)
    if url is not None and not url.startswith(("http://", "https://")):
        raise RegistryError("an OCSP responder URL is http:// or https://")
    new_url = ca.ocsp_url if url is None else url
    cert_der = ca.ocsp_cert_der if cert is None else _der(cert)
    with store.transaction("ocsp_responder_updated", {"ca": ca.name, "url": new_url}):
        store.db.execute("UPDATE approved_cas SET ocsp_url = ?, ocsp_cert_der = ? WHERE name = ?",
                         [new_url, cert_der, ca.name])
    return certification_service(store, number)


def delete_ocsp_responder(store: RegistryStore, number: int) -> None:
    """Remove OCSP responder ``number`` from its CA."""
    ca = ocsp_responder(store, number)
    with store.transaction("ocsp_responder_deleted", {"ca": ca.name}):
        store.db.execute("UPDATE approved_cas SET ocsp_url = NULL, ocsp_cert_der = NULL WHERE name = ?", [ca.name])


def timestamping_service(store: RegistryStore, number: int) -> ApprovedTsa:
    """One approved TSA by number."""
    tsas = store.tsas()
    if not 1 <= number <= len(tsas):
        raise TimestampingServiceNotFound(f"no timestamping service {number}")
    return tsas[number - 1]


def update_timestamping_service(
    store: RegistryStore, number: int, url: str, cert: x509.Certificate | None
) -> tuple[int, ApprovedTsa]:
    """Change TSA ``number``'s URL and (when given) its certificate, which also renames it after the new
    certificate; its (possibly new) number and the stored TSA."""
    tsa = timestamping_service(store, number)
    if not url.startswith(("http://", "https://")):
        raise RegistryError("a timestamping service URL is http:// or https://")
    new = ApprovedTsa(tsa.name, url, tsa.cert_der) if cert is None else ApprovedTsa(service_name(cert), url, _der(cert))
    if new.name != tsa.name and new.name in [t.name for t in store.tsas()]:
        raise RegistryError(f"a TSA named {new.name} is already approved")
    with store.transaction("tsa_updated", {"name": tsa.name, "new_name": new.name, "url": url}):
        store.db.execute("UPDATE approved_tsas SET name = ?, url = ?, cert_der = ? WHERE name = ?",
                         [new.name, new.url, new.cert_der, tsa.name])
    return [t.name for t in store.tsas()].index(new.name) + 1, new


def delete_timestamping_service(store: RegistryStore, number: int) -> None:
    """Withdraw TSA ``number``'s approval."""
    tsa = timestamping_service(store, number)
    with store.transaction("tsa_deleted", {"name": tsa.name}):
        store.db.execute("DELETE FROM approved_tsas WHERE name = ?", [tsa.name])


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


def _intermediate(row: dict[str, Any]) -> IntermediateCa:
    ocsp_cert = row["ocsp_cert_der"]
    return IntermediateCa(int(row["id"]), str(row["ca_name"]), bytes(row["cert_der"]),
                          None if row["ocsp_url"] is None else str(row["ocsp_url"]),
                          None if ocsp_cert is None else bytes(ocsp_cert))


def intermediate_cas_of(store: RegistryStore, ca_name: str) -> list[IntermediateCa]:
    """The intermediate CAs of the CA named ``ca_name``, by id."""
    rows = store.db.query("SELECT * FROM intermediate_cas WHERE ca_name = ? ORDER BY id", [ca_name])
    return [_intermediate(row) for row in rows]


def intermediate_cas(store: RegistryStore, number: int) -> list[IntermediateCa]:
    """The intermediate CAs of CA ``number``."""
    return intermediate_cas_of(store, certification_service(store, number).name)


def intermediate_ca(store: RegistryStore, intermediate_id: int) -> IntermediateCa:
    """One intermediate CA by id."""
    rows = store.db.query("SELECT * FROM intermediate_cas WHERE id = ?", [intermediate_id])
    if not rows:
        raise IntermediateCaNotFound(f"no intermediate CA {intermediate_id}")
    return _intermediate(rows[0])


def add_intermediate_ca(store: RegistryStore, number: int, cert: x509.Certificate) -> IntermediateCa:
    """Add an intermediate CA (its certificate) under CA ``number``."""
    ca = certification_service(store, number)
    der = _der(cert)
    if any(i.cert_der == der for i in intermediate_cas_of(store, ca.name)):
        raise RegistryError(f"{ca.name} has this intermediate CA already")
    with store.transaction("intermediate_ca_added", {"ca": ca.name, "subject": cert.subject.rfc4514_string()}):
        store.db.execute("INSERT INTO intermediate_cas (ca_name, cert_der) VALUES (?, ?)", [ca.name, der])
    return intermediate_cas_of(store, ca.name)[-1]


def delete_intermediate_ca(store: RegistryStore, intermediate_id: int) -> None:
    """Remove an intermediate CA (with its OCSP responder)."""
    found = intermediate_ca(store, intermediate_id)
    with store.transaction("intermediate_ca_deleted", {"ca": found.ca_name, "id": intermediate_id}):
        store.db.execute("DELETE FROM intermediate_cas WHERE id = ?", [intermediate_id])


def add_intermediate_ocsp_responder(
    store: RegistryStore, intermediate_id: int, url: str, cert: x509.Certificate | None
) -> IntermediateCa:
    """Give an intermediate CA its OCSP responder (one, numbered like the intermediate CA)."""
    found = intermediate_ca(store, intermediate_id)
    if found.ocsp_url is not None:
        raise OcspResponderExists(f"intermediate CA {intermediate_id} has an OCSP responder already")
    if not url.startswith(("http://", "https://")):
        raise RegistryError("an OCSP responder URL is http:// or https://")
    with store.transaction("ocsp_responder_added", {"ca": found.ca_name, "intermediate": intermediate_id, "url": url}):
        store.db.execute("UPDATE intermediate_cas SET ocsp_url = ?, ocsp_cert_der = ? WHERE id = ?",
                         [url, None if cert is None else _der(cert), intermediate_id])
    return intermediate_ca(store, intermediate_id)


def delete_intermediate_ocsp_responder(store: RegistryStore, intermediate_id: int, responder_id: int) -> None:
    """Remove an intermediate CA's OCSP responder (its id is the intermediate CA's)."""
    found = intermediate_ca(store, intermediate_id)
    if responder_id != intermediate_id or found.ocsp_url is None:
        raise OcspResponderNotFound(f"intermediate CA {intermediate_id} has no OCSP responder {responder_id}")
    with store.transaction("ocsp_responder_deleted", {"ca": found.ca_name, "intermediate": intermediate_id}):
        store.db.execute("UPDATE intermediate_cas SET ocsp_url = NULL, ocsp_cert_der = NULL WHERE id = ?",
                         [intermediate_id])
