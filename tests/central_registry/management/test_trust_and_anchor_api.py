"""The registry API's trust services, authentication certificates and configuration anchor."""

from __future__ import annotations

from typing import Iterator

import pytest

from central_registry.bootstrap import init_registry
from central_registry.management.roles import Role
from central_registry.publisher import Publisher, SelfSignedKey
from central_registry.store import RegistryStore
from security_server.core.globalconf import anchor_hash
from security_server.core.identifiers import ClientId, SecurityServerId
from tests.central_registry.management.harness import START, RegistryApi, certificate_pem, multipart_form

SERVER = SecurityServerId(ClientId("EE", "GOV", "70000310"), "ss1")


@pytest.fixture
def served(api: RegistryApi) -> Iterator[RegistryApi]:
    """A registry made by ``fedbus registry init`` (development CA and TSA approved), with a publisher as the
    running registry has, and a server ss1 whose authentication certificate is (for the test) the registry's TLS certificate."""
    init_registry(api.root, "EE", START, public_url="http://127.0.0.1:8090", ca_key_size=2048)
    store = RegistryStore(api.paths.database)
    tls = SelfSignedKey.load(api.paths.tls)
    api.publisher = Publisher(store, api.paths.published, SelfSignedKey.load(api.paths.conf_signing),
                              public_url="http://127.0.0.1:8090", management_url="https://127.0.0.1:8443/managementservice",
                              management_cert_der=tls.cert_der)
    store.add_member(SERVER.owner, "Riik")
    store.register_auth_cert(SERVER, "ss1.example.org", tls.cert_der)
    yield api
    store.close()


def test_approved_cas_and_tsas_are_listed(served: RegistryApi) -> None:
    """The development CA and TSA appear in X-Road's shapes, the TSA with its certificate's details."""
    key = served.api_key(Role.OBSERVER)
    cas = served.request("GET", "/api/v1/certification-services", key=key).json()
    assert [c["name"] for c in cas] == ["fedbus development CA"] and cas[0]["id"] == 1
    tsas = served.request("GET", "/api/v1/timestamping-services", key=key).json()
    assert tsas[0]["url"] == "http://127.0.0.1:8090/tsa" and tsas[0]["timestamping_interval"] == 60
    assert tsas[0]["certificate"]["subject_common_name"]


def test_a_servers_authentication_certificates_are_shown(served: RegistryApi) -> None:
    """GET .../authentication-certificates answers CertificateDetails of the registered certificate."""
    key = served.api_key(Role.OBSERVER)
    certs = served.request("GET", "/api/v1/security-servers/EE:GOV:70000310:ss1/authentication-certificates",
                           key=key).json()
    tls = SelfSignedKey.load(served.paths.tls).cert
    assert len(certs) == 1 and certs[0]["id"] > 0
    assert certs[0]["serial"] == str(tls.serial_number)
    assert certs[0]["subject_common_name"] == "EE central registry"


def test_the_internal_anchor_is_shown_and_downloaded_stably(served: RegistryApi) -> None:
    """The anchor's hash matches the downloaded file, and stays the same from one call to the next."""
    key = served.api_key(Role.OBSERVER)
    shown = served.request("GET", "/api/v1/configuration-sources/INTERNAL/anchor", key=key).json()["anchor"]
    file = served.request("GET", "/api/v1/configuration-sources/INTERNAL/anchor/download", key=key)
    assert file.status == 200 and file.header("content-type") == "application/xml"
    assert anchor_hash(file.body) == shown["hash"]
    again = served.request("GET", "/api/v1/configuration-sources/INTERNAL/anchor/download", key=key)
    assert again.body == file.body and b"http://127.0.0.1:8090/internalconf" in file.body


def test_the_external_source_is_not_there(served: RegistryApi) -> None:
    """fedbus has no external configuration source: 404 with X-Road's error object."""
    key = served.api_key(Role.OBSERVER)
    answer = served.request("GET", "/api/v1/configuration-sources/EXTERNAL/anchor", key=key)
    assert answer.status == 404 and answer.json()["error"]["code"] == "configuration_source_not_found"


def test_a_ca_with_its_ocsp_responder_and_a_tsa_are_added(registry: RegistryApi) -> None:
    """A security officer approves a CA from an uploaded certificate with its profile, gives it an OCSP responder,
    and approves a TSA; each answer is in X-Road's shape and the store publishes them."""
    key = registry.api_key(Role.SECURITY_OFFICER)
    body, kind = multipart_form({"certificate_profile_info": "fedbus", "tls_auth": "true", "default_csr_format": "DER"},
                       {"certificate": certificate_pem(registry, "Test CA")})
    added = registry.request("POST", "/api/v1/certification-services", body=body, content_type=kind, key=key)
    assert added.status == 201, added.body
    assert (added.json()["id"], added.json()["name"], added.json()["certificate_profile_info"]) == (1, "Test CA", "fedbus")
    body, kind = multipart_form({"url": "http://ocsp.example.org", "cost_type": "FREE"}, {"certificate": certificate_pem(registry, "OCSP")})
    responder = registry.request("POST", "/api/v1/certification-services/1/ocsp-responders", body=body,
                                 content_type=kind, key=key)
    assert responder.status == 201 and responder.json()["has_certificate"] is True
    listed = registry.request("GET", "/api/v1/certification-services/1/ocsp-responders", key=key).json()
    assert [r["url"] for r in listed] == ["http://ocsp.example.org"]
    body, kind = multipart_form({"url": "http://tsa.example.org", "cost_type": "FREE"}, {"certificate": certificate_pem(registry, "TSA")})
    tsa = registry.request("POST", "/api/v1/timestamping-services", body=body, content_type=kind, key=key)
    assert tsa.status == 201 and tsa.json()["certificate"]["subject_common_name"] == "TSA"
    store = RegistryStore(registry.paths.database)
    try:
        assert [(c.name, c.ocsp_url) for c in store.cas()] == [("Test CA", "http://ocsp.example.org")]
        assert [t.url for t in store.tsas()] == ["http://tsa.example.org"]
    finally:
        store.close()


def test_a_registration_officer_does_not_approve_cas(registry: RegistryApi) -> None:
    """Approving a CA is the security officer's (or the system administrator's): 403 for a registration officer."""
    key = registry.api_key(Role.REGISTRATION_OFFICER)
    body, kind = multipart_form({}, {"certificate": certificate_pem(registry, "Test CA")})
    assert registry.request("POST", "/api/v1/certification-services", body=body, content_type=kind,
                            key=key).status == 403


def test_a_file_that_is_not_a_certificate_is_refused(registry: RegistryApi) -> None:
    """A garbage upload is 400 with X-Road's error object (X-Road's file lists no 400 there: not checked)."""
    key = registry.api_key(Role.SECURITY_OFFICER)
    body, kind = multipart_form({}, {"certificate": b"not a certificate"})
    answer = registry.request("POST", "/api/v1/certification-services", body=body, content_type=kind, key=key,
                              check=False)
    assert answer.status == 400 and answer.json()["error"]["code"] == "invalid_request"


def test_the_newest_configuration_parts_are_listed_and_downloaded(served: RegistryApi) -> None:
    """After a publication, the private and shared parameters are listed (not optional) and downloadable."""
    assert served.publisher is not None
    publication = served.publisher.publish(START)
    key = served.api_key(Role.OBSERVER)
    parts = served.request("GET", "/api/v1/configuration-sources/INTERNAL/configuration-parts", key=key).json()
    assert {(p["content_identifier"], p["optional"]) for p in parts} == {
        ("PRIVATE-PARAMETERS", False), ("SHARED-PARAMETERS", False)}
    shared = served.request(
        "GET", "/api/v1/configuration-sources/INTERNAL/configuration-parts/SHARED-PARAMETERS/3/download", key=key)
    assert shared.status == 200
    assert shared.body == next(v for k, v in publication.files.items() if k.endswith("shared-params.xml"))
    missing = served.request(
        "GET", "/api/v1/configuration-sources/INTERNAL/configuration-parts/MONITORING/3/download", key=key)
    assert missing.status == 404 and missing.json()["error"]["code"] == "configuration_part_not_found"


def test_the_anchor_is_re_created_with_a_new_time_and_hash(served: RegistryApi) -> None:
    """PUT .../anchor/re-create answers a new anchor made now; the anchor shown and downloaded afterwards is
    that one (X-Road's ConfigurationAnchor)."""
    key = served.api_key(Role.SECURITY_OFFICER)
    before = served.request("GET", "/api/v1/configuration-sources/INTERNAL/anchor", key=key).json()["anchor"]
    served.clock.advance(3600)
    made = served.request("PUT", "/api/v1/configuration-sources/INTERNAL/anchor/re-create", key=key)
    assert made.status == 200, made.body
    assert made.json()["hash"] != before["hash"] and made.json()["created_at"] > before["created_at"]
    shown = served.request("GET", "/api/v1/configuration-sources/INTERNAL/anchor", key=key).json()["anchor"]
    assert shown == made.json()
    file = served.request("GET", "/api/v1/configuration-sources/INTERNAL/anchor/download", key=key)
    assert anchor_hash(file.body) == made.json()["hash"]
    observer = served.api_key(Role.OBSERVER)
    assert served.request("PUT", "/api/v1/configuration-sources/INTERNAL/anchor/re-create", key=observer).status == 403


def test_the_download_url_is_the_registrys_directory(served: RegistryApi) -> None:
    """GET .../download-url answers where security servers download the internal configuration."""
    key = served.api_key(Role.OBSERVER)
    answer = served.request("GET", "/api/v1/configuration-sources/INTERNAL/download-url", key=key)
    assert answer.status == 200 and answer.json() == {"url": "http://127.0.0.1:8090/internalconf"}
    external = served.request("GET", "/api/v1/configuration-sources/EXTERNAL/download-url", key=key)
    assert external.status == 404 and external.json()["error"]["code"] == "configuration_source_not_found"
