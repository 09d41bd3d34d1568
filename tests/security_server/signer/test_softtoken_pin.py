"""The soft token's PIN: keys encrypted at rest, login and logout, a wrong PIN, a PIN change, cert states."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Iterator

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from central_registry.trust.ca import CertKind, DevelopmentCA
from security_server.core.certprofile import signing_subject
from security_server.core.identifiers import ClientId, SecurityServerId
from security_server.signer.signing_keys import SigningKeys
from security_server.signer.softtoken import (
    KeyKind,
    KeyNotAvailable,
    KeyNotFound,
    PinIncorrect,
    SoftToken,
    SoftTokenError,
    TokenNotActive,
)
from security_server.signer.softtoken_pin import LOGINS, PinRecord, WeakPin
from security_server.signer.token import TokenStatus
from security_server.signer.token_set import TokenSet

MEMBER = ClientId("EE", "GOV", "70000310")
SERVER = SecurityServerId(MEMBER, "ss1")
PIN = "s3cret pin"


NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> DevelopmentCA:
    """One development CA for the module."""
    return DevelopmentCA.init(tmp_path_factory.mktemp("ca"), "Test CA", NOW - timedelta(days=1), key_size=2048)


def _subject_for(token: SoftToken, key_id: str) -> x509.Name:
    return signing_subject(MEMBER, "Org")


@pytest.fixture
def token(tmp_path: Path) -> Iterator[SoftToken]:
    """A token with a sign key, no PIN yet (logged out again after the test)."""
    made = SoftToken(tmp_path / "keys")
    yield made
    LOGINS.forget(made.directory)


def _signed(token: SoftToken, ca: DevelopmentCA) -> str:
    key_id = token.generate(KeyKind.SIGN, MEMBER)
    csr = token.csr(key_id, _subject_for(token, key_id))
    cert = ca.issue(csr, CertKind.SIGN, NOW - timedelta(hours=1))
    token.import_cert(cert.public_bytes(serialization.Encoding.PEM), now=NOW)
    return key_id


def _key_files(token: SoftToken) -> list[bytes]:
    return [p.read_bytes() for p in sorted(token.directory.glob("*.key.pem"))]


def test_a_token_without_a_pin_keeps_working_in_clear(token: SoftToken, ca: DevelopmentCA) -> None:
    """A token from before PINs: always logged in, its keys in clear, login and logout refused."""
    _signed(token, ca)
    assert token.status() is TokenStatus.LOGGED_IN and not token.has_pin()
    assert all(b"BEGIN PRIVATE KEY" in pem for pem in _key_files(token))
    token.signing_key(MEMBER, now=NOW)
    with pytest.raises(SoftTokenError):
        token.login(PIN)
    with pytest.raises(SoftTokenError):
        token.logout()


def test_setting_a_pin_encrypts_every_key_and_keeps_the_pin_nowhere(token: SoftToken, ca: DevelopmentCA) -> None:
    """After set_pin, no key file is in clear, pin.json holds a scrypt salt and verifier, never the PIN."""
    _signed(token, ca)
    token.generate(KeyKind.AUTH, SERVER)
    token.set_pin(PIN)
    files = _key_files(token)
    assert len(files) == 2 and all(b"BEGIN ENCRYPTED PRIVATE KEY" in pem for pem in files)
    raw = token.pin_path.read_bytes()
    assert PIN.encode() not in raw and b"scrypt" in raw
    PinRecord.parse(raw, token.pin_path)
    assert token.status() is TokenStatus.LOGGED_IN  # set_pin leaves it logged in


def test_logged_out_the_token_refuses_every_private_key_use(token: SoftToken, ca: DevelopmentCA) -> None:
    """Logged out: signing, the auth key, a CSR and a new key are refused with token_not_active; listing works."""
    key_id = _signed(token, ca)
    token.set_pin(PIN)
    token.logout()
    assert token.status() is TokenStatus.LOGGED_OUT
    assert [k.key_id for k in token.list()] == [key_id]
    for attempt in (
        lambda: token.signing_key(MEMBER, now=NOW),
        lambda: token.csr(key_id, _subject_for(token, key_id)),
        lambda: token.generate(KeyKind.SIGN, MEMBER),
    ):
        with pytest.raises(TokenNotActive) as caught:
            attempt()
        assert caught.value.code == "token_not_active"


def test_login_with_the_pin_unlocks_and_a_second_token_object_sees_it(token: SoftToken, ca: DevelopmentCA) -> None:
    """A login is per directory in the process: another SoftToken on the same folder (the API's) shares it."""
    _signed(token, ca)
    token.set_pin(PIN)
    token.logout()
    other = SoftToken(token.directory)
    other.login(PIN)
    assert token.status() is TokenStatus.LOGGED_IN
    key, cert = token.signing_key(MEMBER, now=NOW)
    assert cert.public_key() == key.public_key()


def test_a_wrong_pin_is_pin_incorrect_and_does_not_lock(token: SoftToken, ca: DevelopmentCA) -> None:
    """A wrong PIN: pin_incorrect, status stays logged out and shows the wrong PIN; the right one still works."""
    _signed(token, ca)
    token.set_pin(PIN)
    token.logout()
    for wrong in ("wrong", "s3cret pin ", "x" * 300):
        with pytest.raises(PinIncorrect) as caught:
            token.login(wrong)
        assert caught.value.code == "pin_incorrect"
    assert token.pin_incorrect() and token.status() is TokenStatus.LOGGED_OUT
    token.login(PIN)
    assert not token.pin_incorrect() and token.status() is TokenStatus.LOGGED_IN


def test_keys_made_while_logged_in_are_encrypted(token: SoftToken) -> None:
    """A key generated after the PIN is set is written encrypted under it."""
    token.set_pin(PIN)
    token.generate(KeyKind.SIGN, MEMBER)
    assert all(b"BEGIN ENCRYPTED PRIVATE KEY" in pem for pem in _key_files(token))


def test_changing_the_pin_reencrypts_and_the_old_pin_stops_working(token: SoftToken, ca: DevelopmentCA) -> None:
    """set_pin(new, old) re-encrypts every key; the old PIN is then wrong, the new one logs in."""
    _signed(token, ca)
    token.set_pin(PIN)
    before = _key_files(token)
    with pytest.raises(PinIncorrect):
        token.set_pin("new pin", "not the pin")
    with pytest.raises(SoftTokenError):
        token.set_pin("new pin")  # the old one is needed
    token.set_pin("new pin", PIN)
    assert _key_files(token) != before
    assert not list(token.directory.glob("*.next"))
    token.logout()
    with pytest.raises(PinIncorrect):
        token.login(PIN)
    token.login("new pin")
    token.signing_key(MEMBER, now=NOW)


def test_a_pin_change_cut_after_its_commit_point_still_reads_every_key(token: SoftToken, ca: DevelopmentCA) -> None:
    """A crash between pin.json and the key renames: the .next file is read under the new PIN."""
    key_id = _signed(token, ca)
    token.set_pin(PIN)
    old_file = (token.directory / f"{key_id}.key.pem").read_bytes()
    token.set_pin("new pin", PIN)
    (token.directory / f"{key_id}.key.pem.next").write_bytes((token.directory / f"{key_id}.key.pem").read_bytes())
    (token.directory / f"{key_id}.key.pem").write_bytes(old_file)
    token.logout()
    token.login("new pin")
    token.signing_key(MEMBER, now=NOW)


def test_an_empty_pin_is_refused(token: SoftToken) -> None:
    """An empty PIN is weak_pin, and nothing changes."""
    with pytest.raises(WeakPin):
        token.set_pin("")
    assert not token.has_pin()


def test_a_disabled_certificate_is_not_used_and_activation_brings_it_back(token: SoftToken, ca: DevelopmentCA) -> None:
    """Disabling the only sign certificate leaves no signing key; activating it restores it."""
    key_id = _signed(token, ca)
    assert token.set_cert_active(key_id, False).cert_active is False
    with pytest.raises(KeyNotAvailable):
        token.signing_key(MEMBER, now=NOW)
    token.set_cert_active(key_id, True)
    token.signing_key(MEMBER, now=NOW)


def test_deleting_the_certificate_then_the_key(token: SoftToken, ca: DevelopmentCA) -> None:
    """delete_cert keeps the key without a certificate; delete_key removes every file of the key."""
    key_id = _signed(token, ca)
    token.rename(key_id, "my key")
    token.delete_cert(key_id)
    info = token.key(key_id)
    assert info.cert is None and info.name == "my key"
    with pytest.raises(SoftTokenError):
        token.delete_cert(key_id)
    token.delete_key(key_id)
    assert list(token.directory.glob(f"{key_id}*")) == []
    with pytest.raises(KeyNotFound):
        token.delete_key(key_id)


def test_signing_keys_cache_forgets_at_logout(token: SoftToken, ca: DevelopmentCA) -> None:
    """A cached signing key is not used after logout: the next lookup is refused with token_not_active."""
    _signed(token, ca)
    token.set_pin(PIN)
    keys = SigningKeys(TokenSet([token]))
    now = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    keys.get(MEMBER, now)
    assert keys.cached(MEMBER, now) is not None
    token.logout()
    assert keys.cached(MEMBER, now) is None
    with pytest.raises(TokenNotActive):
        keys.get(MEMBER, now)


def test_a_pin_changed_underneath_ends_the_login(token: SoftToken, ca: DevelopmentCA, tmp_path: Path) -> None:
    """A pin.json replaced by another PIN's (a restored backup, another process) logs this process out cleanly:
    token_not_active, not a broken key file; the new PIN logs in."""
    _signed(token, ca)
    token.set_pin(PIN)
    other = SoftToken(tmp_path / "elsewhere")
    other.set_pin("another pin")
    LOGINS.forget(other.directory)
    token.pin_path.write_bytes(other.pin_path.read_bytes())
    assert token.status() is TokenStatus.LOGGED_OUT
    with pytest.raises(TokenNotActive):
        token.signing_key(MEMBER, now=NOW)
    token.login("another pin")
    assert token.status() is TokenStatus.LOGGED_IN
