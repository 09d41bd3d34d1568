"""The soft token: keys in 0600 PKCS#8 files, CSRs with the profile subject, certificates matched by public key."""

from __future__ import annotations

import os
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from central_registry.trust.ca import CertKind, DevelopmentCA
from security_server.core.certprofile import (
    auth_subject,
    member_from_signing_subject,
    server_from_auth_subject,
    signing_subject,
)
from security_server.core.errors import CertValidation, ConfigurationError
from security_server.core.identifiers import ClientId, SecurityServerId
from security_server.signer.softtoken import (
    CertExists,
    CertImportFailed,
    KeyAlgorithm,
    KeyKind,
    KeyNotAvailable,
    KeyNotFound,
    SoftToken,
    SoftTokenError,
    WrongCertUsage,
    key_id_of,
)

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
MEMBER = ClientId("EE", "GOV", "70000310")
OTHER_MEMBER = ClientId("EE", "GOV", "70000999")
SERVER = SecurityServerId(MEMBER, "ss1")
OTHER_SERVER = SecurityServerId(MEMBER, "ss2")


class TinyCA:
    """A throwaway EC CA that issues any certificate a test needs, including ones the dev CA would refuse."""

    def __init__(self) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Tiny test CA")])

    def issue(
        self,
        public_key: object,
        subject: x509.Name,
        *,
        signing: bool,
        not_before: datetime = NOW - timedelta(days=1),
        not_after: datetime = NOW + timedelta(days=365),
    ) -> x509.Certificate:
        usage = x509.KeyUsage(
            digital_signature=True,
            content_commitment=signing,
            key_encipherment=not signing,
            data_encipherment=False,
            key_agreement=False,
            key_cert_sign=False,
            crl_sign=False,
            encipher_only=False,
            decipher_only=False,
        )
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self.name)
            .public_key(public_key)  # type: ignore[arg-type]
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before)
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(usage, critical=True)
        )
        if not signing:
            builder = builder.add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
            )
        return builder.sign(self.key, hashes.SHA256())


@pytest.fixture(scope="module")
def ca() -> TinyCA:
    """One throwaway CA for the module."""
    return TinyCA()


@pytest.fixture
def token(tmp_path: Path) -> SoftToken:
    """An empty token in a fresh directory."""
    return SoftToken(tmp_path / "keys")


def _public_key(token: SoftToken, key_id: str) -> object:
    csr = x509.load_pem_x509_csr(token.csr(key_id, _subject_for(token, key_id)))
    return csr.public_key()


def _subject_for(token: SoftToken, key_id: str) -> x509.Name:
    info = token.key(key_id)
    if info.kind is KeyKind.AUTH:
        assert isinstance(info.owner, SecurityServerId)
        return auth_subject(info.owner, "Ministry of Tests")
    assert isinstance(info.owner, ClientId)
    return signing_subject(info.owner, "Ministry of Tests")


def _issue_for(token: SoftToken, ca: TinyCA, key_id: str, **kwargs: datetime) -> x509.Certificate:
    info = token.key(key_id)
    return ca.issue(_public_key(token, key_id), _subject_for(token, key_id), signing=info.kind is KeyKind.SIGN, **kwargs)


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _no_temporary_files(token: SoftToken) -> bool:
    return not [p for p in token.directory.iterdir() if p.name.startswith(".")]


# --- generate ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", list(KeyAlgorithm))
def test_generate_writes_a_0600_pkcs8_key_named_by_its_public_key(token: SoftToken, algorithm: KeyAlgorithm) -> None:
    """Each algorithm makes a PKCS#8 PEM file, mode 0600, in a 0700 folder, whose id is its public key's hash."""
    key_id = token.generate(KeyKind.SIGN, MEMBER, algorithm)
    path = token.directory / f"{key_id}.key.pem"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(token.directory.stat().st_mode) == 0o700
    pem = path.read_bytes()
    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----")
    key = serialization.load_pem_private_key(pem, password=None)
    assert key_id_of(key.public_key()) == key_id
    if algorithm is KeyAlgorithm.EC_P256:
        assert isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp256r1"
    else:
        assert isinstance(key, rsa.RSAPrivateKey) and key.key_size == {"rsa2048": 2048, "rsa3072": 3072}[algorithm.value]
    info = token.key(key_id)
    assert (info.kind, info.owner, info.algorithm, info.cert) == (KeyKind.SIGN, MEMBER, algorithm, None)
    assert _no_temporary_files(token)


def test_list_shows_every_key_auth_first(token: SoftToken) -> None:
    """list() returns all keys with their owner and kind, the auth key first."""
    sign_id = token.generate(KeyKind.SIGN, MEMBER, KeyAlgorithm.EC_P256)
    auth_id = token.generate(KeyKind.AUTH, SERVER, KeyAlgorithm.EC_P256)
    assert [(k.key_id, k.kind, k.owner) for k in token.list()] == [
        (auth_id, KeyKind.AUTH, SERVER),
        (sign_id, KeyKind.SIGN, MEMBER),
    ]


@pytest.mark.parametrize(
    ("kind", "owner", "algorithm"),
    [
        (KeyKind.AUTH, MEMBER, KeyAlgorithm.EC_P256),  # an auth key belongs to a server
        (KeyKind.SIGN, SERVER, KeyAlgorithm.EC_P256),  # a sign key belongs to a member
        (KeyKind.SIGN, MEMBER.subsystem("sub"), KeyAlgorithm.EC_P256),  # not to a subsystem
        (KeyKind.SIGN, MEMBER, "dsa1024"),
        ("encrypt", MEMBER, KeyAlgorithm.EC_P256),
    ],
)
def test_generate_refuses_a_wrong_owner_or_algorithm(token: SoftToken, kind: KeyKind, owner: object, algorithm: KeyAlgorithm) -> None:
    """A key that does not fit its owner, or an unknown algorithm, is refused and nothing is written."""
    with pytest.raises(SoftTokenError):
        token.generate(kind, owner, algorithm)  # type: ignore[arg-type]
    assert list(token.directory.iterdir()) == []


# --- csr ----------------------------------------------------------------------------------------------------


def test_signing_csr_verifies_and_carries_the_profile_subject(token: SoftToken) -> None:
    """The CSR is signed by the key and its subject reads back as the key's member."""
    key_id = token.generate(KeyKind.SIGN, MEMBER, KeyAlgorithm.RSA2048)
    csr = x509.load_pem_x509_csr(token.csr(key_id, signing_subject(MEMBER, "Ministry of Tests")))
    assert csr.is_signature_valid
    assert csr.subject == signing_subject(MEMBER, "Ministry of Tests")
    assert member_from_signing_subject(csr.subject) == MEMBER
    assert key_id_of(csr.public_key()) == key_id


def test_auth_csr_verifies_and_carries_the_profile_subject(token: SoftToken) -> None:
    """An auth key's CSR names its security server."""
    key_id = token.generate(KeyKind.AUTH, SERVER, KeyAlgorithm.EC_P256)
    csr = x509.load_pem_x509_csr(token.csr(key_id, auth_subject(SERVER, "Ministry of Tests")))
    assert csr.is_signature_valid
    assert server_from_auth_subject(csr.subject) == SERVER


@pytest.mark.parametrize(
    "subject",
    [
        signing_subject(OTHER_MEMBER, "Someone else"),
        auth_subject(SERVER, "Ministry of Tests"),  # an auth subject for a sign key: CN is not the member code
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "70000310")]),
    ],
)
def test_csr_refuses_a_subject_that_does_not_name_the_keys_owner(token: SoftToken, subject: x509.Name) -> None:
    """A sign key will not sign a request for another member or a subject outside the profile."""
    key_id = token.generate(KeyKind.SIGN, MEMBER, KeyAlgorithm.EC_P256)
    with pytest.raises((SoftTokenError, CertValidation)):
        token.csr(key_id, subject)


def test_csr_refuses_another_server_for_an_auth_key(token: SoftToken) -> None:
    """An auth key will not sign a request naming another security server."""
    key_id = token.generate(KeyKind.AUTH, SERVER, KeyAlgorithm.EC_P256)
    with pytest.raises(SoftTokenError):
        token.csr(key_id, auth_subject(OTHER_SERVER, "Ministry of Tests"))


@pytest.mark.parametrize("key_id", ["0" * 40, "../../etc/passwd", "ABCDEF" * 7, ""])
def test_unknown_or_malformed_key_ids_are_not_found(token: SoftToken, key_id: str) -> None:
    """An id that is not on the token, or is not an id at all, is KeyNotFound (no path is ever built from it)."""
    with pytest.raises(KeyNotFound):
        token.csr(key_id, signing_subject(MEMBER, "x"))


# --- import_cert ----------------------------------------------------------------------------------------------


def test_import_a_matching_certificate_pem_and_use_it(token: SoftToken, ca: TinyCA) -> None:
    """A certificate for the key's public key is stored beside it and signing_key returns the pair."""
    key_id = token.generate(KeyKind.SIGN, MEMBER, KeyAlgorithm.RSA2048)
    cert = _issue_for(token, ca, key_id)
    assert token.import_cert(_pem(cert), now=NOW) == key_id
    assert token.key(key_id).cert == cert
    key, found = token.signing_key(MEMBER.subsystem("registry"), now=NOW)
    assert found == cert
    assert isinstance(key, rsa.RSAPrivateKey)
    signature = key.sign(b"data", padding.PKCS1v15(), hashes.SHA512())
    public = found.public_key()
    assert isinstance(public, rsa.RSAPublicKey)
    public.verify(signature, b"data", padding.PKCS1v15(), hashes.SHA512())
    assert _no_temporary_files(token)


def test_import_a_matching_certificate_der_for_the_auth_key(token: SoftToken, ca: TinyCA) -> None:
    """DER works too; auth_key returns the server's key and certificate."""
    key_id = token.generate(KeyKind.AUTH, SERVER, KeyAlgorithm.EC_P256)
    cert = _issue_for(token, ca, key_id)
    assert token.import_cert(cert.public_bytes(serialization.Encoding.DER), now=NOW) == key_id
    key, found = token.auth_key(now=NOW)
    assert found == cert and key_id_of(key.public_key()) == key_id


def test_a_certificate_from_the_development_ca_imports(token: SoftToken, tmp_path: Path) -> None:
    """The real flow: token CSR -> development CA -> import (the CA rebuilds the subject from the profile)."""
    dev_ca = DevelopmentCA.init(tmp_path / "ca", "Test CA", NOW, key_size=2048)
    key_id = token.generate(KeyKind.SIGN, MEMBER, KeyAlgorithm.EC_P256)
    cert = dev_ca.issue(token.csr(key_id, signing_subject(MEMBER, "Ministry of Tests")), CertKind.SIGN, NOW)
    assert token.import_cert(_pem(cert), now=NOW) == key_id


def test_import_refuses_a_certificate_for_no_key(token: SoftToken, ca: TinyCA) -> None:
    """A certificate whose public key is on no key of the token is refused."""
    token.generate(KeyKind.SIGN, MEMBER, KeyAlgorithm.EC_P256)
    stranger = ec.generate_private_key(ec.SECP256R1()).public_key()
    cert = ca.issue(stranger, signing_subject(MEMBER, "Ministry of Tests"), signing=True)
    with pytest.raises(CertImportFailed, match="no key"):
        token.import_cert(_pem(cert), now=NOW)


def test_import_refuses_an_expired_certificate(token: SoftToken, ca: TinyCA) -> None:
    """A certificate past its notAfter at ``now`` is refused with cert_validation and not stored."""
    key_id = token.generate(KeyKind.SIGN, MEMBER, KeyAlgorithm.EC_P256)
    cert = _issue_for(token, ca, key_id, not_before=NOW - timedelta(days=400), not_after=NOW - timedelta(seconds=1))
    with pytest.raises(CertValidation, match="expired"):
        token.import_cert(_pem(cert), now=NOW)
    assert token.key(key_id).cert is None


def test_import_refuses_the_wrong_kind_of_certificate(token: SoftToken, ca: TinyCA) -> None:
    """An authentication certificate on a signing key (or the reverse) is wrong_cert_usage."""
    sign_id = token.generate(KeyKind.SIGN, MEMBER, KeyAlgorithm.EC_P256)
    auth_usage = ca.issue(_public_key(token, sign_id), signing_subject(MEMBER, "Ministry of Tests"), signing=False)
    with pytest.raises(WrongCertUsage):
        token.import_cert(_pem(auth_usage), now=NOW)
    auth_id = token.generate(KeyKind.AUTH, SERVER, KeyAlgorithm.EC_P256)
    sign_usage = ca.issue(_public_key(token, auth_id), auth_subject(SERVER, "Ministry of Tests"), signing=True)
    with pytest.raises(WrongCertUsage):
        token.import_cert(_pem(sign_usage), now=NOW)
    assert token.key(sign_id).cert is None and token.key(auth_id).cert is None


def test_import_refuses_a_certificate_naming_another_owner(token: SoftToken, ca: TinyCA) -> None:
    """A certificate for this key's public key but another member's name is refused."""
    key_id = token.generate(KeyKind.SIGN, MEMBER, KeyAlgorithm.EC_P256)
    cert = ca.issue(_public_key(token, key_id), signing_subject(OTHER_MEMBER, "Someone else"), signing=True)
    with pytest.raises(CertImportFailed, match="belongs to"):
        token.import_cert(_pem(cert), now=NOW)


def test_import_refuses_the_same_certificate_twice(token: SoftToken, ca: TinyCA) -> None:
    """Importing a certificate that is already stored is cert_exists."""
    key_id = token.generate(KeyKind.SIGN, MEMBER, KeyAlgorithm.EC_P256)
    cert = _issue_for(token, ca, key_id)
    token.import_cert(_pem(cert), now=NOW)
    with pytest.raises(CertExists):
        token.import_cert(_pem(cert), now=NOW)


@pytest.mark.parametrize("data", [b"", b"garbage", b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"])
def test_import_refuses_what_is_not_a_certificate(token: SoftToken, data: bytes) -> None:
    """Unreadable input is cert_import_failed, never a bare parser exception."""
    with pytest.raises(CertImportFailed):
        token.import_cert(data, now=NOW)


def test_import_refuses_a_bundle(token: SoftToken, ca: TinyCA) -> None:
    """A file with two certificates is refused: exactly one certificate is imported at a time."""
    key_id = token.generate(KeyKind.SIGN, MEMBER, KeyAlgorithm.EC_P256)
    cert = _issue_for(token, ca, key_id)
    with pytest.raises(CertImportFailed, match="one certificate"):
        token.import_cert(_pem(cert) + _pem(cert), now=NOW)


# --- choosing keys for the proxies ---------------------------------------------------------------------------


def test_no_certificate_means_no_signing_key(token: SoftToken) -> None:
    """A key without an imported certificate is not usable; the error is a server fault key_not_found."""
    token.generate(KeyKind.SIGN, MEMBER, KeyAlgorithm.EC_P256)
    with pytest.raises(KeyNotAvailable) as caught:
        token.signing_key(MEMBER)
    assert caught.value.fault_code == "signer.key_not_found"
    with pytest.raises(KeyNotAvailable):
        token.auth_key()


def test_signing_key_is_per_member_and_prefers_the_newest_valid_certificate(token: SoftToken, ca: TinyCA) -> None:
    """Another member's key is never returned; a renewed certificate wins; ``now`` filters out invalid ones."""
    other_id = token.generate(KeyKind.SIGN, OTHER_MEMBER, KeyAlgorithm.EC_P256)
    token.import_cert(_pem(_issue_for(token, ca, other_id)), now=NOW)
    old_id = token.generate(KeyKind.SIGN, MEMBER, KeyAlgorithm.EC_P256)
    old = _issue_for(token, ca, old_id, not_before=NOW - timedelta(days=300), not_after=NOW + timedelta(days=10))
    token.import_cert(_pem(old), now=NOW)
    new_id = token.generate(KeyKind.SIGN, MEMBER, KeyAlgorithm.EC_P256)
    new = _issue_for(token, ca, new_id, not_before=NOW - timedelta(days=1), not_after=NOW + timedelta(days=300))
    token.import_cert(_pem(new), now=NOW)
    assert token.signing_key(MEMBER, now=NOW)[1] == new
    assert token.signing_key(MEMBER, now=NOW - timedelta(days=100))[1] == old  # the new one is not valid yet
    with pytest.raises(KeyNotAvailable):
        token.signing_key(MEMBER, now=NOW + timedelta(days=400))
    assert token.signing_key(OTHER_MEMBER, now=NOW)[1] != new


def test_a_key_file_readable_by_others_is_refused(token: SoftToken, ca: TinyCA) -> None:
    """If someone widens a key file's mode, the token refuses to use the key."""
    key_id = token.generate(KeyKind.SIGN, MEMBER, KeyAlgorithm.EC_P256)
    token.import_cert(_pem(_issue_for(token, ca, key_id)), now=NOW)
    os.chmod(token.directory / f"{key_id}.key.pem", 0o644)
    with pytest.raises(ConfigurationError, match="chmod 600"):
        token.signing_key(MEMBER)


def test_malformed_metadata_is_a_configuration_error(token: SoftToken) -> None:
    """A hand-edited metadata file that no longer parses fails loudly, naming the file."""
    key_id = token.generate(KeyKind.SIGN, MEMBER, KeyAlgorithm.EC_P256)
    (token.directory / f"{key_id}.json").write_text('{"format": 1, "kind": "sign"}')
    with pytest.raises(ConfigurationError, match=key_id):
        token.list()


def test_a_key_appears_only_when_its_metadata_is_written(token: SoftToken) -> None:
    """A key file without metadata (a crash between the two writes) is not listed."""
    key_id = token.generate(KeyKind.SIGN, MEMBER, KeyAlgorithm.EC_P256)
    (token.directory / f"{key_id}.json").unlink()
    assert token.list() == ()
