"""A PKCS#11 token on SoftHSM2: keys made and kept in the token, CSRs, certificates, signing, and every way the
token can be out (wrong PIN, removed, key deleted, no such slot) as a BusError with a fault code."""

from __future__ import annotations

import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pkcs11
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from pkcs11 import Attribute, ObjectClass

from central_registry.trust.ca import CertKind, DevelopmentCA
from security_server.core.certprofile import auth_subject, signing_subject
from security_server.core.identifiers import ClientId, SecurityServerId
from security_server.core.signature import MessagePart, build_signature, verify_signature
from security_server.signer.batch_signer import sign_now
from security_server.signer.pkcs11_config import Pkcs11TokenConfig, SignMechanism
from security_server.signer.pkcs11_key import Pkcs11EcKey, Pkcs11RsaKey, signature_algorithm_for
from security_server.signer.pkcs11_token import Pkcs11Token
from security_server.signer.token import (
    CertImportFailed,
    KeyAlgorithm,
    KeyKind,
    KeyNotAvailable,
    KeyNotFound,
    PinIncorrect,
    SoftTokenError,
    Token,
    TokenNotActive,
    TokenNotAvailable,
    TokenStatus,
)
from tests.security_server.signer.softhsm import SoftHsm, SoftHsmToken

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
MEMBER = ClientId("EE", "GOV", "70000310")
SERVER = SecurityServerId(MEMBER, "ss1")


@pytest.fixture
def hsm_token(softhsm: SoftHsm) -> SoftHsmToken:
    """A fresh SoftHSM2 token for one test."""
    return softhsm.init_token()


def _config(hsm: SoftHsmToken, name: str = "hsm", **changes: Any) -> Pkcs11TokenConfig:
    values: dict[str, Any] = {"name": name, "library": hsm.module, "token_label": hsm.label, "pin_env": "HSM_PIN"}
    values.update(changes)
    return Pkcs11TokenConfig(**values)


def _token(hsm: SoftHsmToken, pin: str | None = None, **changes: Any) -> Pkcs11Token:
    environ = {"HSM_PIN": pin if pin is not None else hsm.pin}
    return Pkcs11Token(_config(hsm, **changes), environ=environ, allow_auth_keys=True)


@pytest.fixture(scope="module")
def dev_ca(tmp_path_factory: pytest.TempPathFactory) -> DevelopmentCA:
    return DevelopmentCA.init(tmp_path_factory.mktemp("ca"), "Token test CA", NOW, key_size=2048)


def _signed_key(token: Pkcs11Token, dev_ca: DevelopmentCA, algorithm: KeyAlgorithm = KeyAlgorithm.RSA2048) -> str:
    key_id = token.generate(KeyKind.SIGN, MEMBER, algorithm)
    cert = dev_ca.issue(token.csr(key_id, signing_subject(MEMBER, "Ministry of Tests")), CertKind.SIGN, NOW)
    assert token.import_cert(cert.public_bytes(serialization.Encoding.PEM), now=NOW) == key_id
    return key_id


def _raw_session(hsm: SoftHsmToken) -> pkcs11.Session:
    """A session of our own on the token, as another application would have (PKCS#11 login is per process)."""
    token = pkcs11.lib(hsm.module).get_token(token_label=hsm.label)
    try:
        return token.open(user_pin=hsm.pin, rw=True)
    except pkcs11.exceptions.UserAlreadyLoggedIn:
        return token.open(rw=True)


# --- keys in the token --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", list(KeyAlgorithm))
def test_generated_key_lives_in_the_token_sensitive_and_not_extractable(
    hsm_token: SoftHsmToken, algorithm: KeyAlgorithm
) -> None:
    """generate makes the pair inside the token: CKA_SENSITIVE, not extractable, sign-only, labelled with its owner."""
    token = _token(hsm_token)
    key_id = token.generate(KeyKind.SIGN, MEMBER, algorithm)
    info = token.key(key_id)
    assert (info.kind, info.owner, info.algorithm, info.cert) == (KeyKind.SIGN, MEMBER, algorithm, None)
    assert token.list() == (info,)
    session = _raw_session(hsm_token)
    private = session.get_key(object_class=ObjectClass.PRIVATE_KEY, id=bytes.fromhex(key_id))
    assert private[Attribute.SENSITIVE] and not private[Attribute.EXTRACTABLE] and private[Attribute.TOKEN]
    assert private[Attribute.SIGN] and not private[Attribute.DECRYPT]
    assert private[Attribute.LABEL] == "sign MEMBER:EE/GOV/70000310"
    with pytest.raises(pkcs11.exceptions.AttributeSensitive):
        private[Attribute.PRIVATE_EXPONENT if algorithm is not KeyAlgorithm.EC_P256 else Attribute.VALUE]


def test_token_is_a_token_and_lists_keys_of_fedbus_only(hsm_token: SoftHsmToken) -> None:
    """Pkcs11Token implements the Token protocol; a key another application put in the token is not listed."""
    token: Token = _token(hsm_token)
    auth_id = token.generate(KeyKind.AUTH, SERVER, KeyAlgorithm.RSA2048)
    session = _raw_session(hsm_token)
    session.generate_keypair(pkcs11.KeyType.RSA, 2048, store=True, label="someone else's", id=b"\x07" * 20)
    sign_id = token.generate(KeyKind.SIGN, MEMBER, KeyAlgorithm.EC_P256)
    assert [k.key_id for k in token.list()] == [auth_id, sign_id]
    assert token.status() is TokenStatus.LOGGED_IN


@pytest.mark.parametrize("algorithm", [KeyAlgorithm.RSA3072, KeyAlgorithm.EC_P256])
def test_csr_from_the_token_key_verifies_and_the_certificate_imports(
    hsm_token: SoftHsmToken, dev_ca: DevelopmentCA, algorithm: KeyAlgorithm
) -> None:
    """The CSR is signed inside the token and verifies; the CA's certificate imports as a token certificate object."""
    token = _token(hsm_token)
    key_id = token.generate(KeyKind.SIGN, MEMBER, algorithm)
    request = x509.load_pem_x509_csr(token.csr(key_id, signing_subject(MEMBER, "Ministry of Tests")))
    assert request.is_signature_valid
    cert = dev_ca.issue(request.public_bytes(serialization.Encoding.PEM), CertKind.SIGN, NOW)
    assert token.import_cert(cert.public_bytes(serialization.Encoding.DER), now=NOW) == key_id
    assert token.key(key_id).cert == cert
    stored = list(_raw_session(hsm_token).get_objects({Attribute.CLASS: ObjectClass.CERTIFICATE,
                                                       Attribute.ID: bytes.fromhex(key_id)}))
    assert [bytes(c[Attribute.VALUE]) for c in stored] == [cert.public_bytes(serialization.Encoding.DER)]


def test_import_refuses_a_certificate_for_no_key_in_the_token(hsm_token: SoftHsmToken, dev_ca: DevelopmentCA) -> None:
    """A certificate whose key is not in this token is CertImportFailed, and nothing is stored."""
    other = _token(hsm_token)
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    csr = x509.CertificateSigningRequestBuilder().subject_name(signing_subject(MEMBER, "M")).sign(stranger, hashes.SHA256())
    cert = dev_ca.issue(csr.public_bytes(serialization.Encoding.PEM), CertKind.SIGN, NOW)
    with pytest.raises(CertImportFailed, match="no key on token hsm"):
        other.import_cert(cert.public_bytes(serialization.Encoding.PEM), now=NOW)


def test_auth_key_and_csr_subject_checked_as_on_the_soft_token(hsm_token: SoftHsmToken, dev_ca: DevelopmentCA) -> None:
    """An auth key's CSR names the server; after import auth_key() hands out the token key with its certificate."""
    token = _token(hsm_token)
    key_id = token.generate(KeyKind.AUTH, SERVER, KeyAlgorithm.RSA2048)
    cert = dev_ca.issue(token.csr(key_id, auth_subject(SERVER, "Ministry of Tests")), CertKind.AUTH, NOW)
    token.import_cert(cert.public_bytes(serialization.Encoding.PEM), now=NOW)
    key, found = token.auth_key(now=NOW)
    assert isinstance(key, Pkcs11RsaKey) and key.key_id == key_id and found == cert


def test_auth_keys_are_refused_unless_allowed(hsm_token: SoftHsmToken) -> None:
    """By default a token makes no auth key (TLS cannot use it yet): a clear request error, nothing generated."""
    token = Pkcs11Token(_config(hsm_token), environ={"HSM_PIN": hsm_token.pin})
    with pytest.raises(SoftTokenError, match="stay in the soft token") as caught:
        token.generate(KeyKind.AUTH, SERVER, KeyAlgorithm.RSA2048)
    assert caught.value.fault_code == "signer.invalid_request"
    assert token.list() == ()


# --- signing ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("algorithm", "mechanism"),
    [
        (KeyAlgorithm.RSA2048, SignMechanism.RSA_PKCS),
        (KeyAlgorithm.RSA2048, SignMechanism.RSA_PKCS_PSS),
        (KeyAlgorithm.EC_P256, SignMechanism.RSA_PKCS),
    ],
)
def test_sign_and_verify_with_the_certificate(
    hsm_token: SoftHsmToken, dev_ca: DevelopmentCA, algorithm: KeyAlgorithm, mechanism: SignMechanism
) -> None:
    """A signature made in the token verifies with the imported certificate's public key (PKCS#1, PSS, ECDSA)."""
    token = _token(hsm_token, sign_mechanism=mechanism)
    _signed_key(token, dev_ca, algorithm)
    key, cert = token.signing_key(MEMBER, now=NOW)
    public = cert.public_key()
    if isinstance(key, Pkcs11EcKey):
        assert isinstance(public, ec.EllipticCurvePublicKey)
        public.verify(key.sign(b"data", ec.ECDSA(hashes.SHA512())), b"data", ec.ECDSA(hashes.SHA512()))
    elif mechanism is SignMechanism.RSA_PKCS_PSS:
        assert isinstance(public, rsa.RSAPublicKey) and isinstance(key, rsa.RSAPrivateKey)
        pss = padding.PSS(mgf=padding.MGF1(hashes.SHA512()), salt_length=64)
        public.verify(key.sign(b"data", pss, hashes.SHA512()), b"data", pss, hashes.SHA512())
    else:
        assert isinstance(public, rsa.RSAPublicKey) and isinstance(key, rsa.RSAPrivateKey)
        public.verify(key.sign(b"data", padding.PKCS1v15(), hashes.SHA512()), b"data", padding.PKCS1v15(), hashes.SHA512())


class _Keys:
    def __init__(self, token: Pkcs11Token) -> None:
        self.token = token

    def get(self, member: ClientId, now: datetime) -> tuple[rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey, x509.Certificate]:
        return self.token.signing_key(member, now=now)


def test_single_and_batch_message_signatures_from_the_token_verify(hsm_token: SoftHsmToken, dev_ca: DevelopmentCA) -> None:
    """sign_now signs one message directly and three through one hash-chain signature, both with the token key."""
    token = _token(hsm_token)
    _signed_key(token, dev_ca)
    messages = [b"<m>%d</m>" % n for n in range(3)]
    (single,) = sign_now(_Keys(token), lambda cert: b"ocsp", MEMBER, [[MessagePart.of("/message.xml", messages[0])]], NOW)
    assert single.hash_chain is None
    verify_signature(single.signature_xml, {"/message.xml": messages[0]}.get)
    batch = sign_now(_Keys(token), lambda cert: b"ocsp", MEMBER, [[MessagePart.of("/message.xml", m)] for m in messages], NOW)
    assert len({s.signature_xml for s in batch}) == 1
    for message, signed in zip(messages, batch, strict=True):
        assert signed.hash_chain is not None and signed.hash_chain_result is not None
        parts = {"/message.xml": message, "/sig-hashchainresult.xml": signed.hash_chain_result,
                 "/sig-hashchain.xml": signed.hash_chain}
        verify_signature(signed.signature_xml, parts.get)


def test_xmlsec1_verifies_a_message_signed_with_a_softhsm_key(
    hsm_token: SoftHsmToken, dev_ca: DevelopmentCA, tmp_path: Path
) -> None:
    """An independent tool agrees: xmlsec1 verifies the XAdES signature made in SoftHSM2, and refuses a tampered one."""
    token = _token(hsm_token)
    _signed_key(token, dev_ca)
    key, cert = token.signing_key(MEMBER, now=NOW)
    message = b"<message>signed in an HSM</message>"
    signed = build_signature([MessagePart.of("/message.xml", message)], cert, key, b"ocsp", NOW,
                             algorithm=signature_algorithm_for(key))
    (tmp_path / "message.xml").write_bytes(message)
    (tmp_path / "signatures.xml").write_bytes(signed.signature_xml)
    (tmp_path / "ca.pem").write_bytes(dev_ca.certificate.public_bytes(serialization.Encoding.PEM))
    command = [
        "xmlsec1", "--verify", "--trusted-pem", "ca.pem", "--url-map:/message.xml", "message.xml",
        "--id-attr:Id", "http://uri.etsi.org/01903/v1.3.2#:SignedProperties", "signatures.xml",
    ]
    accepted = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False)
    assert accepted.returncode == 0, accepted.stderr
    (tmp_path / "message.xml").write_bytes(message.replace(b"HSM", b"HSN"))
    refused = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False)
    assert refused.returncode != 0


# --- the token out -----------------------------------------------------------------------------------------------------


def test_wrong_pin_is_pin_incorrect_and_logged_out_and_not_offered_again(hsm_token: SoftHsmToken) -> None:
    """A wrong PIN is signer.pin_incorrect, status logged out; the same PIN is not tried again (no PIN lock-out)."""
    environ = {"HSM_PIN": "999999"}
    token = Pkcs11Token(_config(hsm_token), environ=environ)
    with pytest.raises(PinIncorrect) as caught:
        token.list()
    assert caught.value.fault_code == "signer.pin_incorrect"
    with pytest.raises(PinIncorrect, match="not offered again"):
        token.list()
    assert token.status() is TokenStatus.LOGGED_OUT
    assert token.last_problem is not None and "999999" not in token.last_problem
    environ["HSM_PIN"] = hsm_token.pin
    assert token.status() is TokenStatus.LOGGED_IN


def test_no_pin_source_leaves_the_token_logged_out(hsm_token: SoftHsmToken, tmp_path: Path) -> None:
    """No PIN variable, or a PIN file others may read, is signer.token_not_active: logged out, not an exception."""
    unset = Pkcs11Token(_config(hsm_token), environ={})
    assert unset.status() is TokenStatus.LOGGED_OUT
    with pytest.raises(TokenNotActive) as caught:
        unset.list()
    assert caught.value.fault_code == "signer.token_not_active"
    pin_file = tmp_path / "pin"
    pin_file.write_text(hsm_token.pin + "\n")
    pin_file.chmod(0o644)
    from_file = Pkcs11Token(_config(hsm_token, pin_env=None, pin_file=str(pin_file)))
    with pytest.raises(TokenNotActive, match="chmod 600"):
        from_file.list()
    pin_file.chmod(0o600)
    assert from_file.status() is TokenStatus.LOGGED_IN


def test_slot_that_does_not_exist_is_token_not_available(hsm_token: SoftHsmToken) -> None:
    """A slot id the module does not have, or a label no token has, is signer.token_not_available: not present."""
    for token in (_token(hsm_token, token_label=None, slot=987654), _token(hsm_token, token_label="no-such-label")):
        assert token.status() is TokenStatus.NOT_PRESENT
        with pytest.raises(TokenNotAvailable) as caught:
            token.generate(KeyKind.SIGN, MEMBER)
        assert caught.value.fault_code == "signer.token_not_available"


def test_missing_module_is_token_not_available(hsm_token: SoftHsmToken, tmp_path: Path) -> None:
    """A library path with no module is signer.token_not_available, not an import or OS error."""
    token = _token(hsm_token, library=str(tmp_path / "nothing.so"))
    assert token.status() is TokenStatus.NOT_PRESENT
    with pytest.raises(TokenNotAvailable, match="no PKCS#11 module"):
        token.list()


def test_key_deleted_from_the_token_is_key_not_found(hsm_token: SoftHsmToken, dev_ca: DevelopmentCA) -> None:
    """A key deleted from the token behind our back: signing fails with signer.key_not_found, status stays logged in."""
    token = _token(hsm_token)
    key_id = _signed_key(token, dev_ca)
    key, _ = token.signing_key(MEMBER, now=NOW)
    assert isinstance(key, rsa.RSAPrivateKey)
    key.sign(b"warm", padding.PKCS1v15(), hashes.SHA256())  # the handle is cached now
    session = _raw_session(hsm_token)
    session.get_key(object_class=ObjectClass.PRIVATE_KEY, id=bytes.fromhex(key_id)).destroy()
    with pytest.raises(KeyNotAvailable) as caught:
        key.sign(b"after", padding.PKCS1v15(), hashes.SHA256())
    assert caught.value.fault_code == "signer.key_not_found"
    with pytest.raises(KeyNotFound):
        token.key(key_id)
    with pytest.raises(KeyNotAvailable):
        token.signing_key(MEMBER, now=NOW)
    assert token.status() is TokenStatus.LOGGED_IN


def test_removed_token_is_not_present_and_recovers_when_it_comes_back(
    hsm_token: SoftHsmToken, dev_ca: DevelopmentCA, tmp_path: Path
) -> None:
    """Deleting the token's directory while running: signing is signer.token_not_available and status not present;
    once the directory is back the same Pkcs11Token signs again, without a restart."""
    token = _token(hsm_token)
    _signed_key(token, dev_ca)
    key, cert = token.signing_key(MEMBER, now=NOW)
    assert isinstance(key, rsa.RSAPrivateKey)
    key.sign(b"before", padding.PKCS1v15(), hashes.SHA256())
    saved = tmp_path / "saved-token"
    shutil.copytree(hsm_token.directory, saved)
    shutil.rmtree(hsm_token.directory)
    with pytest.raises(TokenNotAvailable) as caught:
        key.sign(b"during", padding.PKCS1v15(), hashes.SHA256())
    assert caught.value.fault_code == "signer.token_not_available"
    assert token.status() is TokenStatus.NOT_PRESENT
    assert token.last_problem is not None and token.last_problem.startswith("signer.token_not_available")
    shutil.copytree(saved, hsm_token.directory)
    assert token.status() is TokenStatus.LOGGED_IN
    public = cert.public_key()
    assert isinstance(public, rsa.RSAPublicKey)
    public.verify(key.sign(b"after", padding.PKCS1v15(), hashes.SHA256()), b"after", padding.PKCS1v15(), hashes.SHA256())
