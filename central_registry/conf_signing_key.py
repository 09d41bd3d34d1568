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
"""

from __future__ import annotations

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
from security_server.edge.atomic_file import write_atomically
from security_server.signer.pkcs11_config import Pkcs11TokenConfig, pkcs11_tokens_from_config
from security_server.signer.pkcs11_token import Pkcs11Token
from security_server.signer.token import KeyAlgorithm, key_id_of

SECTION = "conf-signing"
DEFAULT_KEY_LABEL = "fedbus conf-signing"
CERT_FILE = "cert.pem"
KEY_FILE = "key.pem"


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
