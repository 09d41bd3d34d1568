"""A client's connection type (``PATCH /clients/{id}``) and the internal TLS certificate (``/system/certificate``),
every answer checked against X-Road's OpenAPI file; hostile input answered with X-Road's codes."""

from __future__ import annotations

import io
import tarfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from security_server.cli import server
from security_server.core.connection_type import ConnectionType
from security_server.core.identifiers import ClientId
from security_server.management.roles import Role
from security_server.management.tls import INTERNAL_CERT_NAME, INTERNAL_KEY_NAME, load_identity
from tests.security_server.management.harness import Api
from tests.security_server.management.xroad_openapi import error_object

SUBSYSTEM = "EE:GOV:70000310:registry"
CLIENT = ClientId("EE", "GOV", "70000310", "registry")
CERT = "/api/v1/system/certificate"


def _code(answer: object) -> str:
    code: str = error_object(answer.body)["error"]["code"]  # type: ignore[attr-defined]
    return code


def ca_signed(subject_key: ec.EllipticCurvePrivateKey, name: str = "ss1.example") -> tuple[x509.Certificate, x509.Certificate]:
    """A certificate for ``subject_key``'s public key issued by a new CA, and the CA's certificate."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test internal CA")])
    start = datetime.now(timezone.utc) - timedelta(minutes=5)
    ca = (
        x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(start).not_valid_after(start + timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True).sign(ca_key, hashes.SHA256())
    )
    public = subject_key.public_key()
    leaf = (
        x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(ca_name).public_key(public).serial_number(x509.random_serial_number())
        .not_valid_before(start).not_valid_after(start + timedelta(days=1)).sign(ca_key, hashes.SHA256())
    )
    return leaf, ca


@pytest.fixture
def with_client(initialised: Api) -> Api:
    """An initialised server with the saved subsystem SUBSYSTEM."""
    answer = initialised.request("POST", "/api/v1/clients", key=initialised.api_key(Role.REGISTRATION_OFFICER),
                                 json_body={"client": {"member_class": "GOV", "member_code": "70000310",
                                                       "subsystem_code": "registry"}})
    assert answer.status == 201, answer.body
    return initialised


# --- PATCH /clients/{id} --------------------------------------------------------------------------------------------


def test_the_connection_type_is_set_and_shown(with_client: Api) -> None:
    """A new client shows HTTP; PATCH sets HTTPS_NO_AUTH then HTTPS (200, the Client), which GET /clients shows and
    the store keeps."""
    api = with_client
    observer, officer = api.api_key(Role.SECURITYSERVER_OBSERVER), api.api_key(Role.SERVICE_ADMINISTRATOR)
    assert api.request("GET", f"/api/v1/clients/{SUBSYSTEM}", key=observer).json()["connection_type"] == "HTTP"
    for wanted in ("HTTPS_NO_AUTH", "HTTPS"):
        answer = api.request("PATCH", f"/api/v1/clients/{SUBSYSTEM}", key=officer, json_body={"connection_type": wanted})
        assert answer.status == 200, answer.body
        assert answer.json()["connection_type"] == wanted and answer.json()["id"] == SUBSYSTEM
    listed = {c["id"]: c["connection_type"] for c in api.request("GET", "/api/v1/clients", key=observer).json()}
    assert listed == {"EE:GOV:70000310": "HTTP", SUBSYSTEM: "HTTPS"}
    hosted = api.server_dir.snapshot().client(CLIENT)
    assert hosted is not None and hosted.connection_type is ConnectionType.HTTPS


def test_the_owner_member_has_a_connection_type_too(initialised: Api) -> None:
    """The owner member's connection type is set like a subsystem's."""
    answer = initialised.request("PATCH", "/api/v1/clients/EE:GOV:70000310",
                                 key=initialised.api_key(Role.REGISTRATION_OFFICER), json_body={"connection_type": "HTTPS"})
    assert answer.status == 200 and answer.json()["connection_type"] == "HTTPS"


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"connection_type": "SSLAUTH"}, "invalid_connection_type"),
        ({"connection_type": "https"}, "invalid_connection_type"),
        ({"connection_type": 1}, "invalid_connection_type"),
        ({}, "connection_type_required"),
        ({"connection_type": None}, "connection_type_required"),
        ({"connection_type": "HTTP", "owner": True}, "unknown_field"),
        ([], "invalid_json"),
    ],
)
def test_a_bad_connection_type_is_400(with_client: Api, body: object, code: str) -> None:
    """A value not in X-Road's ConnectionType, a missing one, an unknown field or no object: 400, nothing changed."""
    answer = with_client.request("PATCH", f"/api/v1/clients/{SUBSYSTEM}",
                                 key=with_client.api_key(Role.SERVICE_ADMINISTRATOR), json_body=body)
    assert answer.status == 400 and _code(answer) == code
    hosted = with_client.server_dir.snapshot().client(CLIENT)
    assert hosted is not None and hosted.connection_type is ConnectionType.HTTP


def test_an_unknown_client_is_404_and_the_roles_are_x_roads(with_client: Api) -> None:
    """An unknown client: 404 client_not_found; a malformed id: 400; the observer and the security officer: 403."""
    officer = with_client.api_key(Role.REGISTRATION_OFFICER)
    unknown = with_client.request("PATCH", "/api/v1/clients/EE:GOV:70000310:nobody", key=officer,
                                  json_body={"connection_type": "HTTPS"})
    assert unknown.status == 404 and _code(unknown) == "client_not_found"
    malformed = with_client.request("PATCH", "/api/v1/clients/EE:GOV", key=officer, json_body={"connection_type": "HTTPS"})
    assert malformed.status == 400
    for role in (Role.SECURITYSERVER_OBSERVER, Role.SECURITY_OFFICER):
        refused = with_client.request("PATCH", f"/api/v1/clients/{SUBSYSTEM}", key=with_client.api_key(role),
                                      json_body={"connection_type": "HTTPS"})
        assert refused.status == 403


# --- /system/certificate --------------------------------------------------------------------------------------------


def test_the_internal_certificate_is_shown_and_exported(initialised: Api) -> None:
    """GET shows X-Road's CertificateDetails of the internal certificate (made when missing); the export is a
    tar.gz with cert.pem and cert.cer, the same certificate."""
    observer = initialised.api_key(Role.SECURITYSERVER_OBSERVER)
    shown = initialised.request("GET", CERT, key=observer)
    assert shown.status == 200, shown.body
    identity = load_identity(initialised.server_dir.path / INTERNAL_KEY_NAME, initialised.server_dir.path / INTERNAL_CERT_NAME)
    assert shown.json()["hash"] == identity.cert.fingerprint(hashes.SHA256()).hex().upper()
    assert initialised.request("GET", f"{CERT}/export", key=observer).status == 403  # X-Road: not the observer
    exported = initialised.request("GET", f"{CERT}/export", key=initialised.api_key(Role.SECURITY_OFFICER))
    assert exported.status == 200 and exported.header("content-type") == "application/gzip"
    with tarfile.open(fileobj=io.BytesIO(exported.body), mode="r:gz") as archive:
        files = {m.name: archive.extractfile(m).read() for m in archive.getmembers()}  # type: ignore[union-attr]
    assert sorted(files) == ["./cert.cer", "./cert.pem"]
    assert x509.load_pem_x509_certificate(files["./cert.pem"]) == identity.cert
    assert x509.load_der_x509_certificate(files["./cert.cer"]) == identity.cert


def test_a_new_key_and_certificate_are_made(initialised: Api) -> None:
    """POST /system/certificate: 204, then a different key and certificate are shown."""
    officer = initialised.api_key(Role.SECURITY_OFFICER)
    before = initialised.request("GET", CERT, key=officer).json()["hash"]
    answer = initialised.request("POST", CERT, key=officer)
    assert answer.status == 204, answer.body
    assert initialised.request("GET", CERT, key=officer).json()["hash"] != before
    assert initialised.request("POST", CERT, key=initialised.api_key(Role.SERVICE_ADMINISTRATOR)).status == 403


def test_a_csr_then_the_ca_certificate_is_imported(initialised: Api) -> None:
    """A CSR for the internal key with X-Road's subject order; the CA's certificate (PEM chain) for it is imported
    (200, its details), served from then on, and imported again is 409 certificate_already_exists."""
    admin = initialised.api_key(Role.SYSTEM_ADMINISTRATOR)
    answer = initialised.request("POST", f"{CERT}/csr", key=admin,
                                 json_body={"name": "C=FI, O=X-Road Test, OU=Ops, CN=ss1.example"})
    assert answer.status == 201, answer.body
    csr = x509.load_der_x509_csr(answer.body)
    assert csr.is_signature_valid
    assert [a.oid for a in csr.subject] == [NameOID.COUNTRY_NAME, NameOID.ORGANIZATION_NAME,
                                             NameOID.ORGANIZATIONAL_UNIT_NAME, NameOID.COMMON_NAME]
    directory = initialised.server_dir.path
    key = load_identity(directory / INTERNAL_KEY_NAME, directory / INTERNAL_CERT_NAME).key
    assert csr.public_key() == key.public_key()
    leaf, ca = ca_signed(key)
    chain = leaf.public_bytes(serialization.Encoding.PEM) + ca.public_bytes(serialization.Encoding.PEM)
    imported = initialised.request("POST", f"{CERT}/import", key=admin, body=chain,
                                   content_type="application/octet-stream")
    assert imported.status == 200, imported.body
    assert imported.json()["hash"] == leaf.fingerprint(hashes.SHA256()).hex().upper()
    served = load_identity(directory / INTERNAL_KEY_NAME, directory / INTERNAL_CERT_NAME)
    assert served.cert == leaf and served.chain == (ca,)
    again = initialised.request("POST", f"{CERT}/import", key=admin, body=chain, content_type="application/octet-stream")
    assert again.status == 409 and _code(again) == "certificate_already_exists"


@pytest.mark.parametrize("name", ["", "no equals sign", "C=FI, XYZZY=1", "C=" + "F" * 300])
def test_a_bad_subject_is_400(initialised: Api, name: str) -> None:
    """A subject that is not a distinguished name (or too long): 400, no request made."""
    answer = initialised.request("POST", f"{CERT}/csr", key=initialised.api_key(Role.SYSTEM_ADMINISTRATOR),
                                 json_body={"name": name})
    assert answer.status == 400
    assert _code(answer) in ("invalid_distinguished_name", "invalid_field")


def test_a_certificate_of_another_key_or_garbage_is_refused(initialised: Api) -> None:
    """Another key's certificate: 400 key_not_found; not a certificate, or no body: 400 invalid_certificate; the
    internal certificate is unchanged."""
    admin = initialised.api_key(Role.SYSTEM_ADMINISTRATOR)
    before = initialised.request("GET", CERT, key=admin).json()["hash"]
    other, _ = ca_signed(ec.generate_private_key(ec.SECP256R1()))
    for body, code in (
        (other.public_bytes(serialization.Encoding.DER), "key_not_found"),
        (other.public_bytes(serialization.Encoding.PEM), "key_not_found"),
        (b"-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n", "invalid_certificate"),
        (b"\x30\x03\x02\x01\x00", "invalid_certificate"),
        (b"", "invalid_certificate"),
    ):
        answer = initialised.request("POST", f"{CERT}/import", key=admin, body=body,
                                     content_type="application/octet-stream")
        assert answer.status == 400 and _code(answer) == code, (body, answer.body)
    assert initialised.request("GET", CERT, key=admin).json()["hash"] == before


# --- the CLI's faces ------------------------------------------------------------------------------------------------


def test_the_cli_sets_the_connection_type_the_api_shows(with_client: Api) -> None:
    """`fedbus server client set-connection-type` stores what PATCH /clients/{id} would; a bad value or an unknown
    client is refused and changes nothing."""
    runner, directory = CliRunner(), str(with_client.directory)
    subsystem = "SUBSYSTEM:EE/GOV/70000310/registry"
    done = runner.invoke(server, ["client", "set-connection-type", "--dir", directory, subsystem, "HTTPS_NO_AUTH"])
    assert done.exit_code == 0, done.output
    shown = with_client.request("GET", f"/api/v1/clients/{SUBSYSTEM}", key=with_client.api_key(Role.SECURITYSERVER_OBSERVER))
    assert shown.json()["connection_type"] == "HTTPS_NO_AUTH"
    assert runner.invoke(server, ["client", "set-connection-type", "--dir", directory, subsystem, "SSLAUTH"]).exit_code != 0
    nobody = runner.invoke(server, ["client", "set-connection-type", "--dir", directory,
                                    "SUBSYSTEM:EE/GOV/70000310/nobody", "HTTPS"])
    assert nobody.exit_code != 0
    hosted = with_client.server_dir.snapshot().client(CLIENT)
    assert hosted is not None and hosted.connection_type is ConnectionType.HTTPS_NO_AUTH


def test_the_cli_makes_a_csr_and_imports_the_certificate(initialised: Api, tmp_path: Path) -> None:
    """`fedbus server internal-tls csr` then `import` of the CA's answer: the API shows the imported certificate;
    `generate` makes another; `export` writes the tar.gz."""
    runner, directory = CliRunner(), str(initialised.directory)
    csr_file = tmp_path / "internal.p10"
    made = runner.invoke(server, ["internal-tls", "csr", "--dir", directory, "--name", "C=EE, CN=ss1", str(csr_file)])
    assert made.exit_code == 0, made.output
    csr = x509.load_der_x509_csr(csr_file.read_bytes())
    key = load_identity(initialised.directory / INTERNAL_KEY_NAME, initialised.directory / INTERNAL_CERT_NAME).key
    assert csr.public_key() == key.public_key()
    leaf, _ = ca_signed(key)
    cert_file = tmp_path / "internal.pem"
    cert_file.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    imported = runner.invoke(server, ["internal-tls", "import", "--dir", directory, str(cert_file)])
    assert imported.exit_code == 0, imported.output
    digest = leaf.fingerprint(hashes.SHA256()).hex().upper()
    admin = initialised.api_key(Role.SYSTEM_ADMINISTRATOR)
    assert initialised.request("GET", CERT, key=admin).json()["hash"] == digest
    assert runner.invoke(server, ["internal-tls", "show", "--dir", directory]).output.startswith(f"hash: {digest}")
    assert runner.invoke(server, ["internal-tls", "generate", "--dir", directory]).exit_code == 0
    assert initialised.request("GET", CERT, key=admin).json()["hash"] != digest
    out = tmp_path / "certs.tar.gz"
    assert runner.invoke(server, ["internal-tls", "export", "--dir", directory, str(out)]).exit_code == 0
    with tarfile.open(out, mode="r:gz") as archive:
        assert sorted(archive.getnames()) == ["./cert.cer", "./cert.pem"]


def test_initialisation_makes_the_internal_certificate(initialised: Api) -> None:
    """Initialisation leaves the internal TLS key (mode 0600) and certificate in the server directory, as X-Road's
    installation does."""
    key_file = initialised.directory / INTERNAL_KEY_NAME
    assert key_file.is_file() and (initialised.directory / INTERNAL_CERT_NAME).is_file()
    assert key_file.stat().st_mode & 0o777 == 0o600
