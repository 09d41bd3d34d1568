"""The management services configuration through the registry's API: the provider subsystem named (and published
in the private parameters), registered on a security server at once, refused with X-Road's codes; the management
service's TLS certificate shown, downloaded, replaced by a new key, a CSR's answer, or an upload."""

from __future__ import annotations

import gzip
import io
import tarfile
from datetime import timedelta
from typing import Any, Iterator

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from central_registry.management.roles import Role
from central_registry.publisher import Publisher, SelfSignedKey
from central_registry.store import RegistryStore
from security_server.core.identifiers import ClientId, SecurityServerId
from tests.central_registry.management.harness import START, RegistryApi, multipart_form

OWNER = ClientId("EE", "GOV", "70000310")
SERVER = SecurityServerId(OWNER, "ss1")
PROVIDER = OWNER.subsystem("management")
BASE = "/api/v1/management-services-configuration"
FIELDS = {"service_provider_id", "service_provider_name", "security_server_id",
          "security_server_owners_global_group_code", "services_address", "wsdl_address"}


@pytest.fixture
def running(registry: RegistryApi) -> Iterator[RegistryApi]:
    """An initialised registry with member GOV/70000310 (subsystem ``management``), its server ss1, and the
    publisher a running registry has."""
    store = RegistryStore(registry.paths.database)
    store.db.execute("INSERT INTO member_classes (code, description) VALUES ('GOV', 'Government')")
    store.add_member(OWNER, "Riik")
    store.add_subsystem(PROVIDER)
    store.register_auth_cert(SERVER, "ss1.example.org", b"ss1 certificate")
    registry.publisher = Publisher(store, registry.paths.published, SelfSignedKey.load(registry.paths.conf_signing),
                                   public_url="http://127.0.0.1:8090",
                                   management_url="https://127.0.0.1:8443/managementservice",
                                   management_cert_der=SelfSignedKey.load(registry.paths.tls).cert_der,
                                   conf_signing_dir=registry.paths.conf_signing)
    yield registry
    store.close()


def _private_parameters(api: RegistryApi) -> bytes:
    assert api.publisher is not None
    files = api.publisher.build(START).files
    return next(body for name, body in files.items() if name.endswith("private-params.xml"))


def test_the_provider_is_named_published_and_registered(running: RegistryApi) -> None:
    """Before a provider is named the reserved identity is published; PATCH names a subsystem (shown with its
    member's name, published in the private parameters); register-provider makes it a client of ss1 at once."""
    key = running.api_key(Role.SECURITY_OFFICER)
    # check=False: X-Road's file asks every field to be non-empty; fedbus, as X-Road's own server, answers an empty
    # security_server_id while no server hosts the provider, and an empty wsdl_address (it serves no WSDL).
    before = running.request("GET", BASE, key=running.api_key(Role.OBSERVER), check=False).json()
    assert set(before) == FIELDS and before["services_address"] == "https://127.0.0.1:8443/managementservice"
    assert (before["service_provider_id"], before["security_server_id"]) == ("EE:REGISTRY:registry:management", "")
    assert b">REGISTRY<" in _private_parameters(running)
    unset = running.request("POST", f"{BASE}/register-provider", key=key,
                            json_body={"security_server_id": "EE:GOV:70000310:ss1"}, check=False)
    assert unset.status == 400 and unset.json()["error"]["code"] == "management_service_provider_not_set"

    named = running.request("PATCH", BASE, key=key, json_body={"service_provider_id": "EE:GOV:70000310:management"},
                            check=False)
    assert named.status == 200, named.body
    assert (named.json()["service_provider_id"], named.json()["service_provider_name"]) == (
        "EE:GOV:70000310:management", "Riik")
    private = _private_parameters(running)
    assert b">management<" in private and b">REGISTRY<" not in private

    registered = running.request("POST", f"{BASE}/register-provider", key=key,
                                 json_body={"security_server_id": "EE:GOV:70000310:ss1"}, check=False)
    assert registered.status == 200 and registered.json()["security_server_id"] == "EE:GOV:70000310:ss1"
    clients = running.request("GET", "/api/v1/security-servers/EE:GOV:70000310:ss1/clients", key=key).json()
    assert "EE:GOV:70000310:management" in [c["client_id"]["encoded_id"] for c in clients]
    requests = running.request("GET", "/api/v1/management-requests", key=key).json()["items"]
    assert [(r["origin"], r["status"]) for r in requests] == [("CENTER", "APPROVED")]
    again = running.request("POST", f"{BASE}/register-provider", key=key,
                            json_body={"security_server_id": "EE:GOV:70000310:ss1"}, check=False)
    assert again.status == 400 and again.json()["error"]["code"] == "subsystem_already_registered_to_security_server"


def test_hostile_provider_changes_are_refused(running: RegistryApi) -> None:
    """An unknown subsystem is 404 subsystem_not_found, a member id 400, an unknown server 409; an observer or a
    registration officer changes nothing (403)."""
    key = running.api_key(Role.SECURITY_OFFICER)
    unknown = running.request("PATCH", BASE, key=key, json_body={"service_provider_id": "EE:GOV:70000310:nope"},
                              check=False)
    assert unknown.status == 404 and unknown.json()["error"]["code"] == "subsystem_not_found"
    member = running.request("PATCH", BASE, key=key, json_body={"service_provider_id": "EE:GOV:70000310"},
                             check=False)
    assert member.status == 400 and member.json()["error"]["code"] == "invalid_service_provider_id"
    for role in (Role.OBSERVER, Role.REGISTRATION_OFFICER):
        refused = running.request("PATCH", BASE, key=running.api_key(role),
                                  json_body={"service_provider_id": "EE:GOV:70000310:management"}, check=False)
        assert refused.status == 403
    running.request("PATCH", BASE, key=key, json_body={"service_provider_id": "EE:GOV:70000310:management"},
                    check=False)
    missing = running.request("POST", f"{BASE}/register-provider", key=key,
                              json_body={"security_server_id": "EE:GOV:70000310:ss9"}, check=False)
    assert missing.status == 409 and missing.json()["error"]["code"] == "management_request_server_not_found"


def test_the_management_service_certificate_is_shown_and_downloaded(running: RegistryApi) -> None:
    """GET .../certificate shows tls/cert.pem (CertificateDetails); .../download-certificate is a gzip tar of it."""
    key = running.api_key(Role.OBSERVER)
    tls = SelfSignedKey.load(running.paths.tls).cert
    shown = running.request("GET", f"{BASE}/certificate", key=key).json()
    assert shown["serial"] == str(tls.serial_number)
    download = running.request("GET", f"{BASE}/download-certificate", key=key)
    assert download.status == 200
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(download.body))) as archive:
        member = archive.extractfile("./management-service.pem")
        assert member is not None
        assert x509.load_pem_x509_certificate(member.read()) == tls


def _ca_signed(csr_der: bytes) -> tuple[bytes, bytes]:
    """A CA's certificate (PEM) for the CSR's key, and an unrelated one (PEM)."""
    csr = x509.load_der_x509_csr(csr_der)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "TLS CA")])
    issued = (x509.CertificateBuilder().subject_name(csr.subject).issuer_name(name).public_key(csr.public_key())
              .serial_number(77).not_valid_before(START - timedelta(days=1)).not_valid_after(START + timedelta(days=90))
              .sign(ca_key, hashes.SHA256()))
    other = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(ca_key.public_key())
             .serial_number(78).not_valid_before(START - timedelta(days=1)).not_valid_after(START + timedelta(days=90))
             .sign(ca_key, hashes.SHA256()))
    return issued.public_bytes(serialization.Encoding.PEM), other.public_bytes(serialization.Encoding.PEM)


def test_the_tls_key_and_certificate_are_replaced_on_disk(running: RegistryApi) -> None:
    """generate-csr answers a CSR for tls/key.pem with the subject as written; a certificate for it is uploaded
    (200 CertificateDetails, tls/cert.pem replaced; the running publisher keeps the old until a start); another
    key's certificate is 400 key_not_found, the same one again 400 certificate_already_exists, garbage 400
    cannot_convert_bytes_to_certificate, a bad subject 400 invalid_distinguished_name; POST .../certificate makes
    a new key and self-signed certificate (201); an observer does none of it."""
    key = running.api_key(Role.SECURITY_OFFICER)
    tls = running.paths.tls
    old = SelfSignedKey.load(tls)
    csr = running.request("POST", f"{BASE}/generate-csr", key=key, json_body={"name": "C=EE, O=Riik, CN=cs.example.org"})
    assert csr.status == 201
    request = x509.load_der_x509_csr(csr.body)
    assert request.is_signature_valid and request.public_key() == old.key.public_key()
    assert request.subject.rfc4514_string() == "CN=cs.example.org,O=Riik,C=EE"
    bad_name = running.request("POST", f"{BASE}/generate-csr", key=key, json_body={"name": "no equals sign"},
                               check=False)
    assert bad_name.status == 400 and bad_name.json()["error"]["code"] == "invalid_distinguished_name"

    issued, other = _ca_signed(csr.body)

    def upload(data: bytes, api_key: str = key) -> Any:
        body, content_type = multipart_form({}, {"certificate": data})
        return running.request("POST", f"{BASE}/upload-certificate", key=api_key, body=body,
                               content_type=content_type, check=False)

    assert upload(issued, running.api_key(Role.OBSERVER)).status == 403
    assert upload(other).json()["error"]["code"] == "key_not_found"
    assert upload(b"garbage").json()["error"]["code"] == "cannot_convert_bytes_to_certificate"
    uploaded = running.request("POST", f"{BASE}/upload-certificate", key=key,
                               body=multipart_form({}, {"certificate": issued})[0],
                               content_type=multipart_form({}, {"certificate": issued})[1])
    assert uploaded.status == 200 and uploaded.json()["serial"] == "77"
    assert SelfSignedKey.load(tls).cert.serial_number == 77
    assert running.publisher is not None and running.publisher.management_cert_der == old.cert_der
    assert upload(issued).json()["error"]["code"] == "certificate_already_exists"

    assert running.request("POST", f"{BASE}/certificate", key=running.api_key(Role.OBSERVER), check=False).status == 403
    made = running.request("POST", f"{BASE}/certificate", key=key)
    assert made.status == 201
    renewed = SelfSignedKey.load(tls)
    assert renewed.key.public_key() != old.key.public_key() and renewed.cert.issuer == renewed.cert.subject
