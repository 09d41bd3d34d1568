"""Where the registry's configuration-signing key lives: a file (the default) or a PKCS#11 token (issue 20).

By default ``conf-signing/`` in the registry directory holds ``key.pem`` and its self-signed ``cert.pem``
(:class:`~central_registry.publisher.SelfSignedKey`). With a ``[conf-signing]`` section naming a token, the key is
generated and kept in that token and only ``cert.pem`` (public, it goes into the anchor) stays in the folder; the
token is a ``[pkcs11:NAME]`` section of the registry's INI, with the same keys as on a security server
(security_server/signer/pkcs11_config.py)::

    [conf-signing]
    token = hsm1                          ; the [pkcs11:hsm1] section below; empty = key.pem in conf-signing/
    key-label = fedbus conf-signing       ; CKA_LABEL of the key pair in the token

    [pkcs11:hsm1]
    library = /usr/lib/softhsm/libsofthsm2.so
    sign-mechanism = CKM_RSA_PKCS         ; CKM_RSA_PKCS_PSS signs the directory RSA-PSS-SHA512
    token-label = registry
    pin-file = /etc/fedbus/registry-hsm1.pin

The directory is signed inside the token (RSA-SHA512, or RSA-PSS-SHA512 for a PSS-only token); security servers
verify it with the certificate of their anchor, as for a file key.

**The soft token's PIN** (issue 17). As the security server's soft token (security_server/signer/softtoken_pin.py,
whose scrypt record, PKCS#8 encryption and process-wide logins this reuses), a registry whose token has a PIN keeps
``conf-signing/pin.json`` and every key file (``key.pem``, ``keys/<id>/key.pem``) encrypted under it. A login
(:func:`login`: the API's ``PUT /tokens/0/login``, or ``fedbus registry serve --pin-file``, X-Road's autologin)
holds the PIN's secret in this process; a logout forgets it and every decrypted key; a restart starts logged out,
and a logged-out registry signs (and so publishes) nothing, which its health check and ``GET /tokens`` show.
A key file in clear (a registry made before PINs, or by ``fedbus registry init``) keeps working, always logged in,
until :func:`set_pin` (``fedbus registry token set-pin``) encrypts every key under a PIN.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Mapping

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from central_registry.publisher import SelfSignedKey, self_signed_certificate
from security_server.core.config import LayeredConfig
from security_server.core.errors import ConfigurationError
from security_server.edge.atomic_file import PRIVATE_MODE, write_atomically
from security_server.signer.pkcs11_config import Pkcs11TokenConfig, pkcs11_tokens_from_config
from security_server.signer.pkcs11_token import Pkcs11Token
from security_server.signer.softtoken_pin import LOGINS, PIN_FILE, PinRecord, new_pin_record, secret_for
from security_server.signer.token import KeyAlgorithm, PinIncorrect, SoftTokenError, TokenNotActive, key_id_of

SECTION = "conf-signing"
DEFAULT_KEY_LABEL = "fedbus conf-signing"
CERT_FILE = "cert.pem"
KEY_FILE = "key.pem"
KEYS_DIR = "keys"
NEXT_KEY_FILE = "key.pem.next"
"""A key re-encrypted under a new PIN, waiting for ``pin.json`` to change (see :func:`set_pin`)."""
TOKEN_NAME = "softToken-0"


@dataclass(frozen=True, slots=True)
class ConfSigningSettings:
    """The ``[conf-signing]`` section: the token that holds the key (None: a file key) and the key's label."""

    token: Pkcs11TokenConfig | None = None
    key_label: str = DEFAULT_KEY_LABEL

    @classmethod
    def from_config(cls, config: LayeredConfig) -> ConfSigningSettings:
        """Read ``[conf-signing]``; a token name needs an enabled ``[pkcs11:NAME]`` section."""
        name = config.get_str(SECTION, "token", "")
        label = config.get_str(SECTION, "key-label", DEFAULT_KEY_LABEL)
        if not label:
            raise ConfigurationError(f"[{SECTION}] key-label must not be empty")
        if not name:
            return cls(None, label)
        tokens = {token.name: token for token in pkcs11_tokens_from_config(config)}
        if name not in tokens:
            raise ConfigurationError(f"[{SECTION}] token = {name}: there is no enabled [pkcs11:{name}] section")
        return cls(tokens[name], label)


def _token(settings: ConfSigningSettings, environ: Mapping[str, str] | None) -> Pkcs11Token:
    assert settings.token is not None
    return Pkcs11Token(settings.token, environ=environ)


def create_in_token(
    directory: Path,
    settings: ConfSigningSettings,
    common_name: str,
    now: datetime,
    *,
    environ: Mapping[str, str] | None = None,
) -> SelfSignedKey:
    """Generate the configuration-signing key in the settings' token and write its self-signed certificate (signed
    in the token) to ``directory``; refused while ``directory`` holds a key file (move it away first: a new key
    means a new anchor for every security server)."""
    if settings.token is None:
        raise ConfigurationError(f"[{SECTION}] names no token")
    if (directory / KEY_FILE).exists():
        raise ConfigurationError(f"{directory} holds a key file; move it away before making the key in a token")
    key = _token(settings, environ).generate_labelled(settings.key_label, KeyAlgorithm.RSA2048)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ConfigurationError("the configuration-signing key must be an RSA key")
    cert = self_signed_certificate(key, common_name, now)
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    write_atomically(directory / CERT_FILE, cert.public_bytes(serialization.Encoding.PEM))
    return SelfSignedKey(key, cert)


def load_conf_signing_key(
    directory: Path, settings: ConfSigningSettings, *, environ: Mapping[str, str] | None = None
) -> SelfSignedKey:
    """The configuration-signing key: ``key.pem`` in ``directory``, or the settings' token key with the certificate
    in ``directory`` (which must be that key's). A token that is out raises its BusError (signer fault code)."""
    if settings.token is None:
        return SelfSignedKey.load(directory)
    try:
        cert = x509.load_pem_x509_certificate((directory / CERT_FILE).read_bytes())
    except (OSError, ValueError) as err:
        raise ConfigurationError(f"cannot load the configuration-signing certificate in {directory}: {err}") from err
    key = _token(settings, environ).labelled_key(settings.key_label)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ConfigurationError(f"the key labelled {settings.key_label!r} is not an RSA key")
    if key_id_of(key.public_key()) != key_id_of(cert.public_key()):
        raise ConfigurationError(
            f"{directory / CERT_FILE} is not the certificate of the key labelled {settings.key_label!r} in token "
            f"{settings.token.name}"
        )
    return SelfSignedKey(key, cert)


def open_conf_signing_key(
    directory: Path, settings: ConfSigningSettings, *, environ: Mapping[str, str] | None = None
) -> SelfSignedKey | x509.Certificate:
    """What a starting registry signs with: the key, or only its certificate while the soft token's key is
    encrypted under a PIN no one logged in with yet (the registry then starts logged out)."""
    try:
        return load_conf_signing_key(directory, settings, environ=environ)
    except TokenNotActive:
        try:
            return x509.load_pem_x509_certificate((directory / CERT_FILE).read_bytes())
        except (OSError, ValueError) as err:
            raise ConfigurationError(f"cannot load the configuration-signing certificate in {directory}: {err}") from err


# --- the soft token's PIN ----------------------------------------------------------------------------------------


def has_pin(directory: Path) -> bool:
    """Whether the soft token in ``directory`` has a PIN its key files are encrypted under."""
    return (directory / PIN_FILE).is_file()


def logged_in(directory: Path) -> bool:
    """Whether the soft token's keys can be read: it has no PIN, or it was logged in in this process."""
    return not has_pin(directory) or LOGINS.get(directory) is not None


def secret(directory: Path) -> bytes | None:
    """The secret new key files are encrypted under: None for a token without a PIN; :class:`TokenNotActive`
    while a token with one is logged out."""
    if not has_pin(directory):
        return None
    login = LOGINS.get(directory)
    if login is None:
        raise TokenNotActive(f"token {TOKEN_NAME} is not logged in (log in with its PIN)")
    return login.secret


def _record(directory: Path) -> PinRecord:
    path = directory / PIN_FILE
    try:
        return PinRecord.parse(path.read_bytes(), path)
    except OSError as err:
        raise ConfigurationError(f"cannot read {path}: {err}") from err


def login(directory: Path, pin: str) -> SelfSignedKey:
    """Log the soft token in with ``pin`` (:class:`~security_server.signer.token.PinIncorrect` when wrong) and
    answer its active key, decrypted."""
    if not has_pin(directory):
        raise SoftTokenError(f"token {TOKEN_NAME} has no PIN: it is always logged in")
    try:
        unlocked = secret_for(_record(directory), pin, TOKEN_NAME)
    except PinIncorrect:
        LOGINS.mark_incorrect(directory, True)
        raise
    LOGINS.set(directory, unlocked)
    try:
        _finish_pin_change(directory)
        return SelfSignedKey.load(directory)
    except BaseException:
        LOGINS.forget(directory)
        raise


def logout(directory: Path) -> None:
    """Forget the soft token's secret in this process."""
    LOGINS.forget(directory)


def _key_folders(directory: Path) -> list[Path]:
    """The folders of the soft token's key files: the active key's, then every other key's."""
    others = directory / KEYS_DIR
    found = sorted(p for p in others.iterdir() if not p.name.startswith(".") and (p / KEY_FILE).is_file()) \
        if others.is_dir() else []
    return [directory, *found]


def _finish_pin_change(directory: Path) -> None:
    """Put in place the key files a PIN change that stopped after its commit point left re-encrypted beside
    their old files (``key.pem.next`` readable under the PIN now in force)."""
    for folder in [directory, *sorted((directory / KEYS_DIR).glob("[!.]*"))] if (directory / KEYS_DIR).is_dir() \
            else [directory]:
        pending = folder / NEXT_KEY_FILE
        if not pending.is_file():
            continue
        try:
            staged = folder / ".check"
            staged.mkdir(mode=0o700, exist_ok=True)
            write_atomically(staged / KEY_FILE, pending.read_bytes(), PRIVATE_MODE)
            write_atomically(staged / CERT_FILE, (folder / CERT_FILE).read_bytes())
            SelfSignedKey.load(staged, token=directory)
        except ConfigurationError:
            pending.unlink(missing_ok=True)  # from a change that never reached its commit point
        else:
            pending.replace(folder / KEY_FILE)
        finally:
            shutil.rmtree(folder / ".check", ignore_errors=True)


def set_pin(directory: Path, new_pin: str, old_pin: str | None = None) -> None:
    """Set the soft token's first PIN (its key files are in clear) or change it (``old_pin``): every key file is
    encrypted under the new PIN and the token is logged in with it. As the security server's soft token, each key
    is first written re-encrypted beside its file (``key.pem.next``), then ``pin.json`` changes (the commit point),
    then each ``.next`` file replaces its key file; a crash leaves every key readable under the PIN in force."""
    if not (directory / CERT_FILE).is_file() or not (directory / KEY_FILE).is_file():
        raise SoftTokenError(f"{directory} holds no configuration-signing key file (a PKCS#11 token has its own PIN)")
    if has_pin(directory):
        if old_pin is None:
            raise SoftTokenError(f"token {TOKEN_NAME} has a PIN already: give the old one to change it")
        LOGINS.set(directory, secret_for(_record(directory), old_pin, TOKEN_NAME))
    elif old_pin is not None:
        raise SoftTokenError(f"token {TOKEN_NAME} has no PIN yet")
    record, new_secret = new_pin_record(new_pin)
    folders = _key_folders(directory)
    for folder in folders:
        (folder / NEXT_KEY_FILE).unlink(missing_ok=True)
        key = SelfSignedKey.load(folder, token=directory)
        write_atomically(folder / NEXT_KEY_FILE, key.key_pem(new_secret), PRIVATE_MODE)
    write_atomically(directory / PIN_FILE, record.to_json(), PRIVATE_MODE)
    for folder in folders:
        (folder / NEXT_KEY_FILE).replace(folder / KEY_FILE)
    LOGINS.set(directory, new_secret)
