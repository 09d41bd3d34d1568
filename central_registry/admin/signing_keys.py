"""The registry's token and its configuration-signing keys (X-Road's central-server tokens and signing keys).

fedbus's registry has one token: its soft token (X-Road's ``softToken-0``, id ``0``), the files of
``conf-signing/``, or the PKCS#11 token ``[conf-signing] token`` names (id: its name; its one key is shown, keys
are not added to it here). The soft token's keys::

    conf-signing/key.pem, cert.pem        the active key: it signs the published configuration
    conf-signing/keys/<id>/key.pem, ...   the other keys (at most one more, as X-Road allows two per source)
    conf-signing/labels.json              each key's label, by id

Every key's certificate is in the anchor and in the shared parameters' source, so security servers given the
anchor made after a key is added go on verifying the configuration once that key is activated. Activating moves
the active key's files to ``keys/<its id>/`` and the chosen key's up (each file written whole; a crash between
the two final renames of ``key.pem`` and ``cert.pem`` leaves them mismatched, which the health check reports).

**Login.** A registry initialised through the API has a PIN: ``conf-signing/pin.json``, every key file encrypted
under it (central_registry/conf_signing_key.py, the security server's soft token's scheme). The running registry
starts logged out unless ``fedbus registry serve --pin-file`` logs it in (X-Road's autologin); a login decrypts the
active key into memory, a logout forgets it, and while logged out nothing is signed (generation fails with
``token_not_active``). A registry initialised through the API before key files were encrypted has only the PIN's
hash in the settings: its logout only stops signing (the key stays in clear) until ``fedbus registry token
set-pin`` encrypts it. A registry made by ``fedbus registry init`` has no PIN: always logged in, and it cannot log
out, until ``set-pin``.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from central_registry import conf_signing_key as token_files
from central_registry.admin.errors import NotFound
from central_registry.admin.initialization import PIN_SETTING
from central_registry.publisher import DIRECTORY_NAME, Publisher, SelfSignedKey
from central_registry.store import RegistryError, RegistryStore
from security_server.edge.atomic_file import PRIVATE_MODE, write_atomically
from security_server.management.passwords import verify_password
from security_server.signer.token import PinIncorrect, key_id_of

SOFT_TOKEN_ID = "0"
SOFT_TOKEN_NAME = "softToken-0"
MAX_KEYS = 2
"""X-Road allows two signing keys per configuration source."""
KEYS_DIR = "keys"
LABELS_FILE = "labels.json"


class TokenNotFound(NotFound):
    """The registry has no token with this id."""

    api_code = "token_not_found"


class SigningKeyNotFound(NotFound):
    """No configuration-signing key has this id."""

    api_code = "signing_key_not_found"


class TokenActionNotPossible(RegistryError):
    """The token cannot do this now (logged out, no PIN to log out with, keys full, a PKCS#11 token)."""

    api_code = "token_action_not_possible"


class SigningKeyActionNotPossible(RegistryError):
    """The key cannot be activated or deleted: it is the active one, or the token is logged out."""

    api_code = "signing_key_action_not_possible"


class TokenPinIncorrect(RegistryError):
    """The PIN given to log in is wrong (X-Road's ``token_incorrect_pin_format``-free soft token: no lock)."""

    api_code = "pin_incorrect"


@dataclass(frozen=True, slots=True)
class SigningKey:
    """One configuration-signing key: id, label, its certificate, whether it signs now."""

    id: str
    label: str
    cert: x509.Certificate
    active: bool

    @property
    def key_hash(self) -> str:
        """The certificate's SHA-256, upper-case hex."""
        return self.cert.fingerprint(hashes.SHA256()).hex().upper()


@dataclass(frozen=True, slots=True)
class RegistryToken:
    """The registry's token: id, name, whether it is a soft token, logged in, has a PIN; its keys."""

    id: str
    name: str
    soft: bool
    logged_in: bool
    has_pin: bool
    keys: tuple[SigningKey, ...]

    def can_add_key(self) -> bool:
        """X-Road's GENERATE_INTERNAL_KEY: a logged-in soft token with fewer than two keys."""
        return self.soft and self.logged_in and len(self.keys) < MAX_KEYS


def _labels(directory: Path) -> dict[str, str]:
    path = directory / LABELS_FILE
    if not path.is_file():
        return {}
    data = json.loads(path.read_bytes())
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def _write_labels(directory: Path, labels: dict[str, str]) -> None:
    write_atomically(directory / LABELS_FILE, json.dumps(labels, sort_keys=True).encode("utf-8") + b"\n")


def key_id(cert: x509.Certificate) -> str:
    """A signing key's id: its public key's (as the security server's token ids its keys)."""
    return key_id_of(cert.public_key())


def signing_keys(publisher: Publisher, directory: Path) -> tuple[SigningKey, ...]:
    """The keys of the registry's token, the active one first."""
    labels = _labels(directory)
    active = publisher.signing_cert
    found = [SigningKey(key_id(active), labels.get(key_id(active), "configuration signing"), active, True)]
    for cert in other_certificates(directory):
        found.append(SigningKey(key_id(cert), labels.get(key_id(cert), "configuration signing"), cert, False))
    return tuple(found)


def other_certificates(directory: Path) -> tuple[x509.Certificate, ...]:
    """The certificates of the soft token's keys that are not active, by id."""
    folder = directory / KEYS_DIR
    if not folder.is_dir():
        return ()
    return tuple(x509.load_pem_x509_certificate((sub / "cert.pem").read_bytes())
                 for sub in sorted(folder.iterdir()) if not sub.name.startswith(".") and (sub / "cert.pem").is_file())


def token(store: RegistryStore, publisher: Publisher, directory: Path, soft: bool, name: str) -> RegistryToken:
    """The registry's token as it is now."""
    has_pin = _legacy_pin(store) or (soft and token_files.has_pin(directory))
    keys = signing_keys(publisher, directory) if soft else signing_keys_of_hsm(publisher)
    return RegistryToken(SOFT_TOKEN_ID if soft else name, SOFT_TOKEN_NAME if soft else name, soft,
                         not publisher.logged_out, has_pin, keys)


def signing_keys_of_hsm(publisher: Publisher) -> tuple[SigningKey, ...]:
    """A PKCS#11 token's one key, the active one."""
    cert = publisher.signing_cert
    return (SigningKey(key_id(cert), "configuration signing", cert, True),)


def check_token_id(current: RegistryToken, token_id: str) -> None:
    """:class:`TokenNotFound` unless ``token_id`` is the registry's token."""
    if token_id != current.id:
        raise TokenNotFound(f"no token {token_id}")


def _legacy_pin(store: RegistryStore) -> bool:
    """Whether the settings hold the PIN's hash (every registry initialised through the API)."""
    return bool(store.db.query("SELECT 1 FROM settings WHERE key = ?", [PIN_SETTING]))


def login(store: RegistryStore, publisher: Publisher, pin: str) -> None:
    """Log in with the PIN: a token whose key files are encrypted under it decrypts its active key into memory;
    configuration signing resumes."""
    directory = publisher.conf_signing_dir
    encrypted = directory is not None and token_files.has_pin(directory)
    if not encrypted and not _legacy_pin(store):
        raise TokenActionNotPossible("the token has no PIN: it is always logged in")
    if not publisher.logged_out:
        raise TokenActionNotPossible("the token is logged in already")
    if encrypted:
        assert directory is not None
        try:
            publisher.signing_key = token_files.login(directory, pin)
        except PinIncorrect as err:
            store.record("token_login_refused", {})
            raise TokenPinIncorrect("the PIN is incorrect") from err
    else:
        rows = store.db.query("SELECT value FROM settings WHERE key = ?", [PIN_SETTING])
        if not verify_password(pin, str(rows[0]["value"])):
            store.record("token_login_refused", {})
            raise TokenPinIncorrect("the PIN is incorrect")
    publisher.logged_out = False
    store.record("token_logged_in", {})


def logout(store: RegistryStore, publisher: Publisher) -> None:
    """Log out: the configuration is not signed (nor published) until the next login; a token whose key files
    are encrypted forgets its secret and decrypted key."""
    directory = publisher.conf_signing_dir
    encrypted = directory is not None and token_files.has_pin(directory)
    if not encrypted and not _legacy_pin(store):
        raise TokenActionNotPossible("the token has no PIN: it cannot be logged out")
    if publisher.logged_out:
        raise TokenActionNotPossible("the token is logged out already")
    if encrypted:
        assert directory is not None
        token_files.logout(directory)
        publisher.forget_key()
    publisher.logged_out = True
    store.record("token_logged_out", {})


def add_key(store: RegistryStore, current: RegistryToken, directory: Path, label: str, common_name: str,
            now: datetime) -> SigningKey:
    """Generate a new (inactive) signing key with a self-signed certificate on the soft token."""
    if not current.can_add_key():
        raise TokenActionNotPossible(f"token {current.id} cannot take another signing key now")
    if not label.strip() or len(label) > 255:
        raise RegistryError("a signing key needs a label of 1 to 255 characters")
    shutil.rmtree(directory / KEYS_DIR / ".new", ignore_errors=True)  # left by a crash half-way
    made = SelfSignedKey.create(directory / KEYS_DIR / ".new", common_name, now, secret=token_files.secret(directory))
    new_id = key_id(made.cert)
    (directory / KEYS_DIR / ".new").replace(directory / KEYS_DIR / new_id)
    labels = _labels(directory)
    labels[new_id] = label
    _write_labels(directory, labels)
    store.record("signing_key_added", {"key_id": new_id, "label": label})
    return SigningKey(new_id, label, made.cert, False)


def _find(current: RegistryToken, wanted: str) -> SigningKey:
    for key in current.keys:
        if key.id == wanted:
            return key
    raise SigningKeyNotFound(f"no signing key {wanted}")


def _actionable(current: RegistryToken, wanted: str) -> SigningKey:
    key = _find(current, wanted)
    if key.active or not current.logged_in or not current.soft:
        raise SigningKeyActionNotPossible(f"signing key {wanted} cannot be changed now")
    return key


def activate_key(store: RegistryStore, publisher: Publisher, current: RegistryToken, directory: Path,
                 wanted: str) -> None:
    """Make key ``wanted`` the one that signs the configuration; the active one stays on the token."""
    key = _actionable(current, wanted)
    chosen = SelfSignedKey.load(directory / KEYS_DIR / key.id, token=directory)
    old = publisher.signing_key
    parked = directory / KEYS_DIR / key_id(old.cert)
    secret = token_files.secret(directory)
    _write_key(parked, old, secret)
    _write_key(directory, chosen, secret)
    shutil.rmtree(directory / KEYS_DIR / key.id)
    own_url = f"{publisher.public_url}/{DIRECTORY_NAME}"
    publisher.signing_key = chosen
    if any(url == own_url for url, _ in store.nodes()):  # a clustered registry's node: the others list its new key
        store.register_node(own_url, chosen.cert_der)
    store.record("signing_key_activated", {"key_id": key.id})


def delete_key(store: RegistryStore, current: RegistryToken, directory: Path, wanted: str) -> None:
    """Delete an inactive key (X-Road: the active key cannot be deleted)."""
    key = _actionable(current, wanted)
    shutil.rmtree(directory / KEYS_DIR / key.id)
    labels = _labels(directory)
    labels.pop(key.id, None)
    _write_labels(directory, labels)
    store.record("signing_key_deleted", {"key_id": key.id})


def _write_key(folder: Path, key: SelfSignedKey, secret: bytes | None) -> None:
    """Write ``key.pem`` (encrypted under the token PIN's ``secret`` when it has one) then ``cert.pem`` in
    ``folder``, each whole."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    write_atomically(folder / "key.pem", key.key_pem(secret), PRIVATE_MODE)
    write_atomically(folder / "cert.pem", key.cert.public_bytes(serialization.Encoding.PEM))

