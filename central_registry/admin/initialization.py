"""Initialising a registry (X-Road's central-server initialisation): instance identifier, address, token PIN.

Unlike ``fedbus registry init``, initialisation through the service layer's :func:`initialise` creates no member
class and approves no CA or TSA: the development CA, OCSP responder and TSA stay an offer of the CLI
(``--no-dev-ca`` off), never forced. The software token PIN encrypts the configuration-signing key file
(``conf-signing/pin.json``, central_registry/conf_signing_key.py) and its scrypt hash is kept in the settings, so
that the token's status can be told.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from central_registry.admin.errors import AlreadyInitialised
from central_registry.conf_signing_key import set_pin
from central_registry.publisher import SelfSignedKey
from central_registry.service import RegistryPaths
from central_registry.store import RegistryError, RegistryStore
from security_server.management.passwords import hash_password

ADDRESS_SETTING = "central_server_address"
PIN_SETTING = "software_token_pin_hash"


@dataclass(frozen=True, slots=True)
class InitialisationStatus:
    """What is set up: the instance identifier, the registry's address, whether the token has a PIN."""

    instance: str | None
    address: str | None
    token_initialised: bool


def _setting(store: RegistryStore, key: str) -> str | None:
    row = next(iter(store.db.query("SELECT value FROM settings WHERE key = ?", [key])), None)
    return None if row is None else str(row["value"])


def status_of(store: RegistryStore) -> InitialisationStatus:
    """The status of an open registry store."""
    instance = _setting(store, "instance")
    has_pin = _setting(store, PIN_SETTING) is not None
    # A registry made by ``fedbus registry init`` has its signing key already: its token counts as initialised.
    return InitialisationStatus(instance, _setting(store, ADDRESS_SETTING), has_pin or instance is not None)


def status(root: Path, database_url: str | None = None) -> InitialisationStatus:
    """The status of the registry in ``root`` (nothing set up when there is no database yet)."""
    paths = RegistryPaths(root)
    if not database_url and not paths.database.is_file():
        return InitialisationStatus(None, None, False)
    store = RegistryStore(paths.database, database_url=database_url)
    try:
        return status_of(store)
    finally:
        store.close()


def set_address(store: RegistryStore, address: str) -> None:
    """Change the registry's public address (X-Road's central server address)."""
    if not address.strip() or any(c.isspace() for c in address):
        raise RegistryError("the central server address must be a host name or an address")
    store.settings()
    with store.transaction("central_server_address_changed", {"address": address}):
        store.db.execute(
            "INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            [ADDRESS_SETTING, address],
        )


def initialise(
    root: Path, instance: str, address: str, pin: str, now: datetime, *, database_url: str | None = None
) -> InitialisationStatus:
    """Initialise the registry in ``root``: store with no member class, signing and TLS keys, address, PIN hash."""
    if not pin:
        raise RegistryError("the software token PIN must not be empty")
    paths = RegistryPaths(root)
    if status(root, database_url).instance is not None or paths.conf_signing.exists():
        raise AlreadyInitialised(f"{root} already holds an initialised registry")
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    store = RegistryStore(paths.database, database_url=database_url)
    try:
        store.initialise(instance, member_classes={})
        set_address(store, address)
        with store.transaction("software_token_initialised", {}):
            store.db.execute("INSERT INTO settings (key, value) VALUES (?, ?)", [PIN_SETTING, hash_password(pin)])
        SelfSignedKey.create(paths.conf_signing, f"{instance} configuration signing", now)
        set_pin(paths.conf_signing, pin)  # its key file encrypted under the PIN; logged in, as X-Road's after init
        SelfSignedKey.create(paths.tls, f"{instance} central registry", now)
        return status_of(store)
    finally:
        store.close()
