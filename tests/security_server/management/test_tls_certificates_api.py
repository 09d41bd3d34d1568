"""A client's internal TLS certificates (``/clients/{id}/tls-certificates``) and a service's ``ssl_auth``
(``PATCH /services/{id}``, with ``ssl_auth_all``), every answer checked against X-Road's OpenAPI file."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from security_server.admin import services
from security_server.cli import server
from security_server.core.identifiers import ClientId, ServiceId
from security_server.management.roles import Role
from security_server.serverconf.store import ServiceKind
from tests.security_server.management.harness import Api
from tests.security_server.management.xroad_openapi import error_object

PROVIDER = "EE:GOV:70000310:registry"
CLIENT = ClientId("EE", "GOV", "70000310", "registry")
TLS = f"/api/v1/clients/{PROVIDER}/tls-certificates"
WSDL = Path(__file__).resolve().parents[1] / "getrandom.wsdl"


def is_certificate(name: str = "is.example") -> x509.Certificate:
    """A self-signed certificate of an information system, made now."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    start = datetime.now(timezone.utc) - timedelta(minutes=5)
    return (
        x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(start).not_valid_after(start + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )


def _code(answer: object) -> str:
    code: str = error_object(answer.body)["error"]["code"]  # type: ignore[attr-defined]
    return code


@pytest.fixture
def provider(initialised: Api) -> Api:
    """A saved client with two SOAP services from one WSDL at an https URL, and a REST service."""
    initialised.request("POST", "/api/v1/clients", key=initialised.api_key(Role.REGISTRATION_OFFICER), json_body={
        "client": {"member_class": "GOV", "member_code": "70000310", "subsystem_code": "registry"}})
    wsdl = WSDL.read_bytes()
    for code in ("getRandom", "helloService"):
        services.add_service(initialised.server_dir, ServiceId(CLIENT, code, "v1"), url="https://127.0.0.1:9/soap",
                             description=wsdl)
    services.add_service(initialised.server_dir, ServiceId(CLIENT, "pets"), url="https://127.0.0.1:9/pets",
                         kind=ServiceKind.REST)
    return initialised


# --- /clients/{id}/tls-certificates ---------------------------------------------------------------------------------


def test_a_certificate_is_uploaded_listed_shown_and_deleted(provider: Api) -> None:
    """POST a PEM: 201 CertificateDetails with its SHA-256 hash; it is listed, shown by hash in either case, and
    deleted (204), after which the list is empty and the store holds none."""
    cert = is_certificate()
    admin, observer = provider.api_key(Role.SERVICE_ADMINISTRATOR), provider.api_key(Role.SECURITYSERVER_OBSERVER)
    added = provider.request("POST", TLS, key=admin, body=cert.public_bytes(serialization.Encoding.PEM),
                             content_type="application/octet-stream")
    assert added.status == 201, added.body
    digest = cert.fingerprint(hashes.SHA256()).hex().upper()
    assert added.json()["hash"] == digest and added.json()["subject_common_name"] == "is.example"
    assert [c["hash"] for c in provider.request("GET", TLS, key=observer).json()] == [digest]
    shown = provider.request("GET", f"{TLS}/{digest.lower()}", key=observer)
    assert shown.status == 200 and shown.json()["hash"] == digest
    snapshot = provider.server_dir.snapshot()
    assert [c.der for c in snapshot.tls_certificates_of(CLIENT)] == [cert.public_bytes(serialization.Encoding.DER)]
    assert provider.request("DELETE", f"{TLS}/{digest}", key=admin).status == 204
    assert provider.request("GET", TLS, key=observer).json() == []
    assert provider.server_dir.snapshot().tls_certificates == ()


def test_a_der_upload_is_the_same_certificate(provider: Api) -> None:
    """A DER upload is accepted; the same certificate again, now in PEM, is 409 certificate_already_exists."""
    cert, key = is_certificate(), provider.api_key(Role.SYSTEM_ADMINISTRATOR)
    der = provider.request("POST", TLS, key=key, body=cert.public_bytes(serialization.Encoding.DER),
                           content_type="application/octet-stream")
    assert der.status == 201, der.body
    again = provider.request("POST", TLS, key=key, body=cert.public_bytes(serialization.Encoding.PEM),
                             content_type="application/octet-stream")
    assert again.status == 409 and _code(again) == "certificate_already_exists"
    assert len(provider.server_dir.snapshot().tls_certificates) == 1


@pytest.mark.parametrize("body", [b"not a certificate", b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
                                  b"\x30\x03\x02\x01\x01", b""])
def test_what_is_not_a_certificate_is_400_invalid_certificate(provider: Api, body: bytes) -> None:
    """Text, a broken PEM, a DER that is no certificate, an empty body: 400 invalid_certificate, nothing stored."""
    answer = provider.request("POST", TLS, key=provider.api_key(Role.SERVICE_ADMINISTRATOR), body=body,
                              content_type="application/octet-stream")
    assert answer.status == 400 and _code(answer) == "invalid_certificate", answer.body
    assert provider.server_dir.snapshot().tls_certificates == ()


def test_unknown_hashes_and_clients_are_404(provider: Api) -> None:
    """An unknown hash is 404 certificate_not_found (show and delete); an unknown client 404 client_not_found."""
    key = provider.api_key(Role.SERVICE_ADMINISTRATOR)
    for method in ("GET", "DELETE"):
        answer = provider.request(method, f"{TLS}/ABCDEF0123", key=key)
        assert answer.status == 404 and _code(answer) == "certificate_not_found"
    stranger = provider.request("GET", "/api/v1/clients/EE:GOV:70000310:nobody/tls-certificates", key=key)
    assert stranger.status == 404 and _code(stranger) == "client_not_found"


def test_only_administrators_change_the_certificates(provider: Api) -> None:
    """An observer may list but not upload (403); nothing is stored."""
    observer = provider.api_key(Role.SECURITYSERVER_OBSERVER)
    assert provider.request("GET", TLS, key=observer).status == 200
    refused = provider.request("POST", TLS, key=observer, content_type="application/octet-stream",
                               body=is_certificate().public_bytes(serialization.Encoding.PEM))
    assert refused.status == 403
    assert provider.server_dir.snapshot().tls_certificates == ()


# --- ssl_auth ---------------------------------------------------------------------------------------------------------


def _service(api: Api, code: str) -> dict[str, object]:
    answer = api.request("GET", f"/api/v1/services/{PROVIDER}:{code}", key=api.api_key(Role.SECURITYSERVER_OBSERVER))
    assert answer.status == 200
    data: dict[str, object] = answer.json()
    return data


def test_ssl_auth_is_on_for_a_new_https_service_and_kept_per_service(provider: Api) -> None:
    """X-Road's default: true for https; turning it off for one service leaves the other of the description."""
    assert _service(provider, "getRandom.v1")["ssl_auth"] is True
    answer = provider.request("PATCH", f"/api/v1/services/{PROVIDER}:getRandom.v1",
                              key=provider.api_key(Role.SERVICE_ADMINISTRATOR),
                              json_body={"url": "https://127.0.0.1:9/soap", "timeout": 60, "ssl_auth": False})
    assert answer.status == 200 and answer.json()["ssl_auth"] is False
    assert _service(provider, "getRandom.v1")["ssl_auth"] is False
    assert _service(provider, "helloService.v1")["ssl_auth"] is True
    assert _service(provider, "pets")["ssl_auth"] is True


def test_ssl_auth_all_applies_to_every_service_of_the_description(provider: Api) -> None:
    """``ssl_auth_all`` turns it off for the WSDL's other service too, not for the REST service."""
    answer = provider.request("PATCH", f"/api/v1/services/{PROVIDER}:getRandom.v1",
                              key=provider.api_key(Role.SERVICE_ADMINISTRATOR), json_body={
                                  "url": "https://127.0.0.1:9/soap", "timeout": 60, "ssl_auth": False,
                                  "ssl_auth_all": True})
    assert answer.status == 200, answer.body
    snapshot = provider.server_dir.snapshot()
    assert {s.id.service_code: s.ssl_auth for s in snapshot.services} == {
        "getRandom": False, "helloService": False, "pets": True}


def test_an_http_service_shows_ssl_auth_false(provider: Api) -> None:
    """An http service has no TLS to check: shown false whatever was asked, and https later means checked."""
    key = provider.api_key(Role.SERVICE_ADMINISTRATOR)
    path = f"/api/v1/services/{PROVIDER}:getRandom.v1"
    answer = provider.request("PATCH", path, key=key, json_body={"url": "http://127.0.0.1:9/soap", "timeout": 60,
                                                                 "ssl_auth": True})
    assert answer.status == 200 and answer.json()["ssl_auth"] is False
    back = provider.request("PATCH", f"{path}", key=key, json_body={"url": "https://127.0.0.1:9/soap", "timeout": 60,
                                                                   "ssl_auth": True})
    assert back.json()["ssl_auth"] is True


def test_ssl_auth_must_be_a_boolean(provider: Api) -> None:
    """A non-boolean ssl_auth or ssl_auth_all is 400 invalid_field, and nothing changes."""
    key = provider.api_key(Role.SERVICE_ADMINISTRATOR)
    for body in ({"url": "https://127.0.0.1:9/soap", "timeout": 60, "ssl_auth": "no"},
                 {"url": "https://127.0.0.1:9/soap", "timeout": 60, "ssl_auth": False, "ssl_auth_all": 1}):
        answer = provider.request("PATCH", f"/api/v1/services/{PROVIDER}:getRandom.v1", key=key, json_body=body)
        assert answer.status == 400 and _code(answer) == "invalid_field"
    assert all(s.ssl_auth for s in provider.server_dir.snapshot().services)


def test_the_cli_sets_ssl_auth(provider: Api) -> None:
    """``fedbus server service update --no-ssl-auth --ssl-auth-all`` is the same change through the CLI."""
    result = CliRunner().invoke(server, [
        "service", "update", "--dir", str(provider.directory), "SERVICE:EE/GOV/70000310/registry/getRandom/v1",
        "--url", "https://127.0.0.1:9/soap", "--timeout", "60", "--no-ssl-auth", "--ssl-auth-all"])
    assert result.exit_code == 0, result.output
    assert {s.id.service_code: s.ssl_auth for s in provider.server_dir.snapshot().services} == {
        "getRandom": False, "helloService": False, "pets": True}


def test_the_cli_adds_lists_and_deletes_tls_certificates(provider: Api, tmp_path: Path) -> None:
    """``fedbus server client tls-cert-add/tls-certs/tls-cert-delete`` call the functions the API calls: what the
    CLI adds the API lists, and a second add is refused."""
    cert = is_certificate()
    pem_file = tmp_path / "is.pem"
    pem_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    digest = cert.fingerprint(hashes.SHA256()).hex().upper()
    subsystem, directory = "SUBSYSTEM:EE/GOV/70000310/registry", str(provider.directory)
    runner = CliRunner()
    added = runner.invoke(server, ["client", "tls-cert-add", "--dir", directory, subsystem, str(pem_file)])
    assert added.exit_code == 0 and digest in added.output, added.output
    listed = provider.request("GET", TLS, key=provider.api_key(Role.SECURITYSERVER_OBSERVER)).json()
    assert [c["hash"] for c in listed] == [digest]
    assert runner.invoke(server, ["client", "tls-cert-add", "--dir", directory, subsystem, str(pem_file)]).exit_code != 0
    assert runner.invoke(server, ["client", "tls-certs", "--dir", directory, subsystem]).output.split() == [digest]
    deleted = runner.invoke(server, ["client", "tls-cert-delete", "--dir", directory, subsystem, digest.lower()])
    assert deleted.exit_code == 0, deleted.output
    assert provider.server_dir.snapshot().tls_certificates == ()
