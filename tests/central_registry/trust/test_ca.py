"""The development CA: a root in a directory, issuing profile certificates from CSRs, revoking, persisting."""

from __future__ import annotations

import json
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from central_registry.trust.ca import CertKind, DevelopmentCA
from security_server.core.certprofile import (
    auth_subject,
    member_from_signing_cert,
    server_from_auth_cert,
    signing_subject,
)
from security_server.core.errors import BadRequest, CertValidation, ConfigurationError
from security_server.core.identifiers import ClientId, SecurityServerId
from security_server.core.trust import is_auth_cert, is_signing_cert, is_tsa_cert, verify_cert_path
from tests.federation.pki import ec_key, make_csr, rsa_key

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
MEMBER = ClientId("EE", "GOV", "70000310")
SERVER = SecurityServerId(MEMBER, "ss1")


@pytest.fixture(scope="module")
def ca_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CA directory initialised once for this module (2048-bit key for speed)."""
    directory = tmp_path_factory.mktemp("ca") / "ca"
    DevelopmentCA.init(directory, "Test CA", NOW, key_size=2048, ocsp_url="http://127.0.0.1:8888/")
    return directory


@pytest.fixture()
def ca(ca_dir: Path) -> DevelopmentCA:
    """The module's CA, opened afresh from disk."""
    return DevelopmentCA.open(ca_dir)


def extension(cert: x509.Certificate, kind: type[x509.ExtensionType]) -> x509.Extension[x509.ExtensionType]:
    """The certificate's extension of ``kind``."""
    return cert.extensions.get_extension_for_class(kind)


def test_init_makes_a_self_signed_root(ca: DevelopmentCA) -> None:
    """The root is self-signed, a critical-CA with keyCertSign and cRLSign, RSA as asked."""
    cert = ca.certificate
    assert cert.subject == cert.issuer
    cert.verify_directly_issued_by(cert)
    constraints = extension(cert, x509.BasicConstraints)
    assert constraints.critical and isinstance(constraints.value, x509.BasicConstraints) and constraints.value.ca
    usage = extension(cert, x509.KeyUsage).value
    assert isinstance(usage, x509.KeyUsage) and usage.key_cert_sign and usage.crl_sign
    assert cert.public_key().key_size == 2048  # type: ignore[union-attr]


def test_key_file_is_private_and_files_are_complete(ca_dir: Path) -> None:
    """The CA key is mode 0600; key, certificate and index are on disk; no temporary file is left."""
    assert stat.S_IMODE((ca_dir / "ca-key.pem").stat().st_mode) == 0o600
    assert {"ca-key.pem", "ca-cert.pem", "index.json"} <= {p.name for p in ca_dir.iterdir()}
    assert not [p for p in ca_dir.iterdir() if p.name.endswith(".tmp")]
    index = json.loads((ca_dir / "index.json").read_text())
    assert index["name"] == "Test CA" and index["format"] == 1


def test_init_refuses_an_existing_ca(ca_dir: Path) -> None:
    """A directory that holds a CA is never overwritten."""
    with pytest.raises(ConfigurationError, match="already"):
        DevelopmentCA.init(ca_dir, "Other", NOW, key_size=2048)


def test_open_refuses_a_directory_without_a_ca(tmp_path: Path) -> None:
    """Opening an empty directory says there is no CA there."""
    with pytest.raises(ConfigurationError, match="holds no CA"):
        DevelopmentCA.open(tmp_path)


def test_issues_signing_certificate_under_the_profile(ca: DevelopmentCA) -> None:
    """A signing CSR yields a nonRepudiation certificate whose subject reads back as the member."""
    cert = ca.issue(make_csr(signing_subject(MEMBER, "Ministry")), CertKind.SIGN, NOW)
    assert is_signing_cert(cert) and not is_auth_cert(cert)
    assert member_from_signing_cert(cert) == MEMBER
    assert cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "Ministry"
    assert verify_cert_path(cert, [], [ca.certificate], NOW)[-1] == ca.certificate
    aia = extension(cert, x509.AuthorityInformationAccess).value
    assert isinstance(aia, x509.AuthorityInformationAccess)
    assert aia[0].access_location.value == "http://127.0.0.1:8888/"


def test_issues_auth_certificate_for_tls(ca: DevelopmentCA) -> None:
    """An auth CSR yields a TLS client+server certificate (digitalSignature, keyEncipherment) for the server."""
    cert = ca.issue(make_csr(auth_subject(SERVER, "Ministry"), rsa_key()), CertKind.AUTH, NOW)
    assert is_auth_cert(cert) and not is_signing_cert(cert)
    assert server_from_auth_cert(cert) == SERVER
    usage = extension(cert, x509.KeyUsage).value
    assert isinstance(usage, x509.KeyUsage) and usage.digital_signature and usage.key_encipherment
    eku = extension(cert, x509.ExtendedKeyUsage).value
    assert isinstance(eku, x509.ExtendedKeyUsage)
    assert set(eku) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}


def test_issues_from_der_requests(ca: DevelopmentCA) -> None:
    """A DER request is read as well as a PEM one."""
    pem = make_csr(signing_subject(MEMBER, "Ministry"))
    der = x509.load_pem_x509_csr(pem).public_bytes(serialization.Encoding.DER)
    assert member_from_signing_cert(ca.issue(der, CertKind.SIGN, NOW)) == MEMBER


def test_refuses_a_csr_with_a_bad_signature(ca: DevelopmentCA) -> None:
    """A request whose signature does not verify (no proof of key possession) is refused."""
    key = ec_key()
    csr = x509.CertificateSigningRequestBuilder().subject_name(signing_subject(MEMBER, "Ministry")).sign(key, hashes.SHA256())
    der = bytearray(csr.public_bytes(serialization.Encoding.DER))
    der[-2] ^= 0x01
    with pytest.raises(CertValidation, match="signature"):
        ca.issue(bytes(der), CertKind.SIGN, NOW)


def test_refuses_a_csr_whose_subject_does_not_fit(ca: DevelopmentCA) -> None:
    """A request with a subject outside the profile (here CN only) is refused, for either kind."""
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "www.example.org")])
    for kind in (CertKind.SIGN, CertKind.AUTH):
        with pytest.raises(CertValidation, match="profile"):
            ca.issue(make_csr(subject), kind, NOW)


def test_refuses_a_signing_csr_whose_cn_is_not_the_member_code(ca: DevelopmentCA) -> None:
    """A signing request whose CN is a server code, not the member code, does not fit the signing profile."""
    with pytest.raises(CertValidation, match="profile"):
        ca.issue(make_csr(auth_subject(SERVER, "Ministry")), CertKind.SIGN, NOW)


def test_refuses_a_weak_key(ca: DevelopmentCA) -> None:
    """An RSA key under 2048 bits is refused."""
    with pytest.raises(CertValidation, match="2048"):
        ca.issue(make_csr(signing_subject(MEMBER, "Ministry"), rsa_key(1024)), CertKind.SIGN, NOW)


def test_refuses_garbage_instead_of_a_csr(ca: DevelopmentCA) -> None:
    """Bytes that are not a request are refused with cert_validation."""
    with pytest.raises(CertValidation):
        ca.issue(b"-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n", CertKind.SIGN, NOW)


def test_serial_numbers_are_unique_and_large(ca: DevelopmentCA) -> None:
    """Serials are random, at least 64 bits, and never repeat."""
    certs = [ca.issue(make_csr(signing_subject(MEMBER, "Ministry")), CertKind.SIGN, NOW) for _ in range(5)]
    serials = [c.serial_number for c in certs]
    assert len(set(serials)) == 5
    assert all(s.bit_length() > 64 for s in serials)
    assert len({e.serial for e in ca.issued()}) == len(ca.issued())


def test_revocation_is_recorded_and_persisted(ca: DevelopmentCA, ca_dir: Path) -> None:
    """A revocation keeps time and reason, survives reopening, and shows in the OCSP state."""
    cert = ca.issue(make_csr(signing_subject(MEMBER, "Ministry")), CertKind.SIGN, NOW)
    revoked = ca.revoke(cert.serial_number, x509.ReasonFlags.key_compromise, NOW)
    assert revoked.revoked and revoked.reason is x509.ReasonFlags.key_compromise
    again = {e.serial: e for e in DevelopmentCA.open(ca_dir).issued()}[cert.serial_number]
    assert again.revoked_at == NOW and again.reason is x509.ReasonFlags.key_compromise
    assert ca.state().issued[cert.serial_number].revoked


def test_revoking_twice_or_unknown_is_refused(ca: DevelopmentCA) -> None:
    """Revoking an unknown serial or an already revoked certificate is a bad request."""
    cert = ca.issue(make_csr(signing_subject(MEMBER, "Ministry")), CertKind.SIGN, NOW)
    ca.revoke(cert.serial_number, x509.ReasonFlags.superseded, NOW)
    with pytest.raises(BadRequest, match="already"):
        ca.revoke(cert.serial_number, x509.ReasonFlags.superseded, NOW)
    with pytest.raises(BadRequest, match="no certificate"):
        ca.revoke(12345, x509.ReasonFlags.superseded, NOW)
    with pytest.raises(BadRequest):
        ca.revoke(cert.serial_number, x509.ReasonFlags.remove_from_crl, NOW)


def test_delegated_ocsp_certificate(ca: DevelopmentCA) -> None:
    """The delegated responder certificate has id-kp-OCSPSigning and ocsp-nocheck and appears in the state."""
    cert = ca.issue_ocsp_cert(NOW)
    eku = extension(cert, x509.ExtendedKeyUsage).value
    assert isinstance(eku, x509.ExtendedKeyUsage) and ExtendedKeyUsageOID.OCSP_SIGNING in eku
    assert extension(cert, x509.OCSPNoCheck)
    state = ca.state()
    assert state.responder_cert == cert and state.responder_key is not None


def test_tsa_certificate(ca: DevelopmentCA) -> None:
    """The TSA certificate has exactly one, critical, extendedKeyUsage: timeStamping."""
    cert = ca.issue_tsa_cert(NOW)
    assert is_tsa_cert(cert)
    key, loaded = ca.tsa_credentials()
    assert loaded == cert


def test_corrupt_index_is_reported(tmp_path: Path) -> None:
    """An unreadable index is a configuration error, not a crash."""
    directory = tmp_path / "ca"
    DevelopmentCA.init(directory, "Broken", NOW, key_size=2048)
    (directory / "index.json").write_text("{not json")
    with pytest.raises(ConfigurationError):
        DevelopmentCA.open(directory).issued()
