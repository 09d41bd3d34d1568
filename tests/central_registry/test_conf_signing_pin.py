"""The registry's configuration-signing keys under its token PIN: encrypted at rest, decrypted into memory by a
login, forgotten by a logout or a restart (nothing is signed then); a key in clear keeps working until a PIN is
set; the CLI sets the PIN and logs in from a PIN file only."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest
from click.testing import CliRunner, Result
from cryptography import x509

from central_registry import conf_signing_key as token_files
from central_registry.admin import initialization
from central_registry.bootstrap import init_registry
from central_registry.cli import registry
from central_registry.conf_signing_key import ConfSigningSettings, open_conf_signing_key
from central_registry.management.roles import Role
from central_registry.publisher import Publisher, SelfSignedKey
from central_registry.service import RegistryPaths
from central_registry.store import RegistryStore
from security_server.signer.softtoken_pin import LOGINS
from security_server.signer.token import PinIncorrect, SoftTokenError, TokenNotActive, key_id_of
from tests.central_registry.management.harness import START, RegistryApi

ENCRYPTED = b"-----BEGIN ENCRYPTED PRIVATE KEY-----"


def _restart(directory: Path) -> None:
    """What a new process sees: no login."""
    LOGINS.forget(directory)


def _publisher(store: RegistryStore, paths: RegistryPaths) -> Publisher:
    return Publisher(store, paths.published, open_conf_signing_key(paths.conf_signing, ConfSigningSettings()),
                     public_url="http://127.0.0.1:8090", management_url="https://127.0.0.1:8443/m",
                     management_cert_der=SelfSignedKey.load(paths.tls).cert_der, conf_signing_dir=paths.conf_signing)


@pytest.fixture
def api(tmp_path: Path) -> Iterator[RegistryApi]:
    """A registry initialised through the service layer with PIN ``1234``, then restarted: logged out."""
    api = RegistryApi(tmp_path / "registry")
    initialization.initialise(api.root, "EE", "cs.example.org", "1234", START)
    _restart(api.paths.conf_signing)
    store = RegistryStore(api.paths.database)
    api.publisher = _publisher(store, api.paths)
    yield api
    store.close()
    _restart(api.paths.conf_signing)


def test_initialisation_encrypts_the_signing_key_under_the_pin(api: RegistryApi) -> None:
    """The key file is PKCS#8 encrypted, pin.json holds no PIN; after a restart the key cannot be read, only its
    certificate, and the publisher signs nothing."""
    directory = api.paths.conf_signing
    assert (directory / "key.pem").read_bytes().startswith(ENCRYPTED)
    assert b"1234" not in (directory / "pin.json").read_bytes()
    with pytest.raises(TokenNotActive):
        SelfSignedKey.load(directory)
    assert isinstance(open_conf_signing_key(directory, ConfSigningSettings()), x509.Certificate)
    assert api.publisher is not None and api.publisher.logged_out
    with pytest.raises(TokenNotActive):
        api.publisher.build(START)
    assert api.publisher.anchor(START)  # the anchor needs the certificate only


def test_the_api_logs_in_with_the_pin_and_out_again(api: RegistryApi) -> None:
    """A restarted registry's token is logged out (LOGIN only); a wrong PIN is 400 pin_incorrect and changes
    nothing; the right one decrypts the key (signing resumes); a logout forgets it (signing stops again)."""
    assert api.publisher is not None
    key = api.api_key(Role.SECURITY_OFFICER)
    [token] = api.request("GET", "/api/v1/tokens", key=key).json()
    assert (token["logged_in"], token["possible_actions"]) == (False, ["LOGIN"])
    wrong = api.request("PUT", "/api/v1/tokens/0/login", key=key, json_body={"password": "4321"})
    assert wrong.status == 400 and wrong.json()["error"]["code"] == "pin_incorrect"
    assert LOGINS.get(api.paths.conf_signing) is None and api.publisher.logged_out
    right = api.request("PUT", "/api/v1/tokens/0/login", key=key, json_body={"password": "1234"})
    assert right.status == 200 and right.json()["logged_in"] is True
    api.publisher.build(START)
    out = api.request("PUT", "/api/v1/tokens/0/logout", key=key)
    assert out.status == 200 and out.json()["logged_in"] is False
    assert LOGINS.get(api.paths.conf_signing) is None
    with pytest.raises(TokenNotActive):
        api.publisher.build(START)


def test_keys_added_on_a_token_with_a_pin_are_encrypted_and_activate(api: RegistryApi) -> None:
    """A second key is written encrypted; logged out, no key is added (token_action_not_possible); activating it
    leaves both key files encrypted and the new key signs."""
    assert api.publisher is not None
    key = api.api_key(Role.SECURITY_OFFICER)
    body = {"token_id": "0", "key_label": "next"}
    refused = api.request("POST", "/api/v1/configuration-sources/INTERNAL/signing-keys", key=key, json_body=body)
    assert refused.status == 400 and refused.json()["error"]["code"] == "token_action_not_possible"
    api.request("PUT", "/api/v1/tokens/0/login", key=key, json_body={"password": "1234"})
    added = api.request("POST", "/api/v1/configuration-sources/INTERNAL/signing-keys", key=key, json_body=body).json()
    directory = api.paths.conf_signing
    assert (directory / "keys" / added["id"] / "key.pem").read_bytes().startswith(ENCRYPTED)
    assert api.request("PUT", f"/api/v1/signing-keys/{added['id']}/activate", key=key).status == 204
    assert all(p.read_bytes().startswith(ENCRYPTED) for p in directory.rglob("key.pem"))
    assert key_id_of(api.publisher.signing_key.key.public_key()) == added["id"]
    api.publisher.build(START)


def test_a_key_in_clear_works_until_a_pin_is_set(tmp_path: Path) -> None:
    """A registry made by ``registry init`` signs with its key in clear, always logged in; set_pin encrypts every
    key file; a change needs the old PIN; a crash after the commit point is finished by the next login."""
    paths = init_registry(tmp_path / "registry", "EE", START, public_url="http://127.0.0.1:8090", dev_ca=False)
    directory = paths.conf_signing
    assert token_files.logged_in(directory) and not token_files.has_pin(directory)
    before = SelfSignedKey.load(directory)
    SelfSignedKey.create(directory / "keys" / "other", "other", START)
    token_files.set_pin(directory, "first")
    assert all(p.read_bytes().startswith(ENCRYPTED) for p in directory.rglob("key.pem"))
    _restart(directory)
    assert not token_files.logged_in(directory)
    with pytest.raises(SoftTokenError):
        token_files.set_pin(directory, "second")
    with pytest.raises(PinIncorrect):
        token_files.set_pin(directory, "second", "wrong")
    token_files.set_pin(directory, "second", "first")
    _restart(directory)
    with pytest.raises(PinIncorrect):
        token_files.login(directory, "first")
    assert token_files.login(directory, "second").cert == before.cert
    # A change interrupted after pin.json changed: key.pem.next, under the new PIN, is put in place at login.
    staged = SelfSignedKey.load(directory)
    (directory / "key.pem.next").write_bytes(staged.key_pem(LOGINS.get(directory).secret))  # type: ignore[union-attr]
    (directory / "key.pem").write_bytes(b"garbage")
    _restart(directory)
    assert token_files.login(directory, "second").cert == before.cert
    assert not (directory / "key.pem.next").exists()
    _restart(directory)


def _run(*args: str) -> Result:
    return CliRunner().invoke(registry, list(args))


def test_the_cli_sets_the_pin_and_publishes_only_with_a_pin_file(tmp_path: Path) -> None:
    """``registry token set-pin`` reads the PIN from a file; afterwards ``publish`` is refused without --pin-file
    (token_not_active), refused with a wrong one, and signs with the right one; the anchor needs no PIN."""
    paths = init_registry(tmp_path / "registry", "EE", START, public_url="http://127.0.0.1:8090", dev_ca=False)
    d = ("--registry-dir", str(paths.root))
    pin, wrong = tmp_path / "pin", tmp_path / "wrong"
    pin.write_text("s3cret\n")
    wrong.write_text("nope\n")
    try:
        result = _run("token", "set-pin", *d, "--pin-file", str(pin))
        assert result.exit_code == 0, result.output
        assert "s3cret" not in result.output
        _restart(paths.conf_signing)
        refused = _run("publish", *d)
        assert refused.exit_code != 0 and "token_not_active" in refused.output
        assert _run("publish", *d, "--pin-file", str(wrong)).exit_code != 0
        _restart(paths.conf_signing)
        published = _run("publish", *d, "--pin-file", str(pin))
        assert published.exit_code == 0, published.output
        _restart(paths.conf_signing)
        assert _run("anchor", *d, "--out", str(tmp_path / "anchor.xml")).exit_code == 0
    finally:
        _restart(paths.conf_signing)


def test_a_registry_initialised_before_pins_encrypted_keys_keeps_its_old_login(tmp_path: Path) -> None:
    """A registry whose PIN is only a hash in the settings (its key in clear) logs out and in as before: a logout
    only stops signing, the hash checks the PIN; set_pin then encrypts the key."""
    api = RegistryApi(tmp_path / "registry")
    initialization.initialise(api.root, "EE", "cs.example.org", "1234", START)
    directory = api.paths.conf_signing
    clear = SelfSignedKey.load(directory)
    (directory / "key.pem").write_bytes(clear.key_pem())  # as such a registry's key file is
    (directory / "pin.json").unlink()
    _restart(directory)
    store = RegistryStore(api.paths.database)
    try:
        api.publisher = _publisher(store, api.paths)
        assert not api.publisher.logged_out
        key = api.api_key(Role.SECURITY_OFFICER)
        assert api.request("PUT", "/api/v1/tokens/0/logout", key=key).json()["logged_in"] is False
        with pytest.raises(TokenNotActive):
            api.publisher.build(START)
        wrong = api.request("PUT", "/api/v1/tokens/0/login", key=key, json_body={"password": "4321"})
        assert wrong.status == 400 and wrong.json()["error"]["code"] == "pin_incorrect"
        assert api.request("PUT", "/api/v1/tokens/0/login", key=key, json_body={"password": "1234"}).status == 200
        api.publisher.build(START)
        token_files.set_pin(directory, "1234")
        assert (directory / "key.pem").read_bytes().startswith(ENCRYPTED)
    finally:
        store.close()
        _restart(directory)
