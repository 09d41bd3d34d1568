"""``[pkcs11:NAME]`` sections: the HSM tokens a security server uses, as X-Road's ``devices.ini`` in fedbus's INI.

One section per token (vectors/xroad/specs/devices.ini has X-Road's keys; the names here are fedbus's)::

    [pkcs11:hsm1]
    library = /usr/lib/softhsm/libsofthsm2.so   ; the module (X-Road ``library``)
    sign-mechanism = CKM_RSA_PKCS               ; or CKM_RSA_PKCS_PSS, CKM_ECDSA (X-Road ``sign_mechanism``)
    token-label = fedbus                        ; or: slot = 0 (X-Road ``slot_ids``, one slot per section)
    pin-file = /etc/fedbus/hsm1.pin             ; or: pin-env = FEDBUS_HSM1_PIN
    enabled = true

The PIN itself never appears in configuration, on a command line or in a log: the section names a file (mode
0600, one line) or an environment variable, read when the token logs in. Without either the token stays logged
out. Parsing is pure, as :mod:`security_server.core.config`: values come from a :class:`LayeredConfig`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from security_server.core.config import LayeredConfig
from security_server.core.errors import ConfigurationError

SECTION_PREFIX = "pkcs11:"
KEYS = frozenset({"library", "sign-mechanism", "slot", "token-label", "pin-file", "pin-env", "enabled"})
"""The keys a ``[pkcs11:NAME]`` section may hold; any other (a typo, a ``pin``) is refused."""
RESERVED_NAMES = frozenset({"soft", "all"})
"""Token names a section cannot take: the soft token's and the whole set's."""


class SignMechanism(enum.StrEnum):
    """How the token signs a digest computed by fedbus (X-Road ``sign_mechanism``)."""

    RSA_PKCS = "CKM_RSA_PKCS"
    """RSA PKCS#1 v1.5 over a DigestInfo (X-Road's default)."""
    RSA_PKCS_PSS = "CKM_RSA_PKCS_PSS"
    """RSA-PSS over the digest, MGF1 with the same hash, salt as long as the digest."""
    ECDSA = "CKM_ECDSA"
    """ECDSA over the digest (EC keys)."""


@dataclass(frozen=True, slots=True)
class Pkcs11TokenConfig:
    """One ``[pkcs11:NAME]`` section, checked: a module, a mechanism, one way to find the token, one PIN source."""

    name: str
    library: str
    sign_mechanism: SignMechanism = SignMechanism.RSA_PKCS
    slot: int | None = None
    token_label: str | None = None
    pin_file: str | None = None
    pin_env: str | None = None
    enabled: bool = True

    def __post_init__(self) -> None:
        if not self.name or any(c.isspace() or c in ":[]" for c in self.name):
            raise ConfigurationError(f"[pkcs11:{self.name}]: a token name has no spaces, colons or brackets")
        if self.name in RESERVED_NAMES:
            raise ConfigurationError(f"[pkcs11:{self.name}]: {self.name!r} names the soft token or all tokens")
        if not self.library:
            raise ConfigurationError(f"[pkcs11:{self.name}] library: the path of the PKCS#11 module is required")
        if (self.slot is None) == (self.token_label is None):
            raise ConfigurationError(f"[pkcs11:{self.name}]: set exactly one of slot and token-label")
        if self.pin_file is not None and self.pin_env is not None:
            raise ConfigurationError(f"[pkcs11:{self.name}]: set at most one of pin-file and pin-env")

    @property
    def where(self) -> str:
        """How the token is found, for messages: ``slot 3`` or ``label 'fedbus'``."""
        return f"slot {self.slot}" if self.slot is not None else f"label {self.token_label!r}"


def _optional(config: LayeredConfig, section: str, key: str) -> str | None:
    value = config.get_str(section, key, "")
    return value or None


def pkcs11_tokens_from_config(config: LayeredConfig) -> tuple[Pkcs11TokenConfig, ...]:
    """Every enabled ``[pkcs11:NAME]`` section of ``config``, in name order."""
    sections = sorted({section for section, _ in config.values if section.startswith(SECTION_PREFIX)})
    found = []
    for section in sections:
        name = section[len(SECTION_PREFIX) :]
        for (where, key), value in config.values.items():
            if where == section and key not in KEYS:
                hint = " (the PIN itself never goes in configuration: use pin-file or pin-env)" if "pin" in key else ""
                raise ConfigurationError(f"{value.source}: [{section}] {key}: unknown key{hint}")
        mechanism_text = config.get_choice(
            section, "sign-mechanism", [m.value for m in SignMechanism], SignMechanism.RSA_PKCS.value
        )
        slot = config.get_int(section, "slot", minimum=0) if (section, "slot") in config.values else None
        token = Pkcs11TokenConfig(
            name=name,
            library=config.get_str(section, "library", ""),
            sign_mechanism=SignMechanism(mechanism_text),
            slot=slot,
            token_label=_optional(config, section, "token-label"),
            pin_file=_optional(config, section, "pin-file"),
            pin_env=_optional(config, section, "pin-env"),
            enabled=config.get_bool(section, "enabled", True),
        )
        if token.enabled:
            found.append(token)
    return tuple(found)
