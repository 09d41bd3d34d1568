"""Creating a registry's working directory: store, keys, and optionally a development CA with OCSP and TSA."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from cryptography.hazmat.primitives import serialization

from central_registry.publisher import SelfSignedKey
from central_registry.service import RegistryPaths
from central_registry.store import ApprovedCa, ApprovedTsa, RegistryStore
from central_registry.trust.ca import DevelopmentCA
from security_server.core.errors import ConfigurationError

DEV_CA_NAME = "fedbus development CA"
DEV_TSA_NAME = "fedbus development TSA"
CERTIFICATE_PROFILE = "fedbus"


def init_registry(
    root: Path,
    instance: str,
    now: datetime,
    *,
    public_url: str,
    dev_ca: bool = True,
    ca_key_size: int = 3072,
    database_url: str | None = None,
    ca_profile: str = CERTIFICATE_PROFILE,
) -> RegistryPaths:
    """Initialise ``root`` for instance ``instance``; with ``dev_ca`` also make and approve a development CA and TSA
    (the CA issuing under certificate profile ``ca_profile``, security_server/core/certprofile.py).

    ``public_url`` is the registry's HTTP base URL, written into the CA's certificates (OCSP) and the
    approved CA and TSA entries. Refused if ``root`` already holds a registry.
    """
    paths = RegistryPaths(root)
    if paths.database.exists() or paths.conf_signing.exists():
        raise ConfigurationError(f"{root} already holds a registry")
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    store = RegistryStore(paths.database, database_url=database_url)
    try:
        store.initialise(instance)
        SelfSignedKey.create(paths.conf_signing, f"{instance} configuration signing", now)
        SelfSignedKey.create(paths.tls, f"{instance} central registry", now)
        if dev_ca:
            base = public_url.rstrip("/")
            ca = DevelopmentCA.init(paths.ca, DEV_CA_NAME, now, key_size=ca_key_size, ocsp_url=f"{base}/ocsp",
                                    profile=ca_profile)
            ocsp_cert = ca.issue_ocsp_cert(now)
            tsa_cert = ca.issue_tsa_cert(now)
            der = serialization.Encoding.DER
            store.add_ca(
                ApprovedCa(DEV_CA_NAME, ca.certificate.public_bytes(der), f"{base}/ocsp", ocsp_cert.public_bytes(der),
                           False, ca.profile)
            )
            store.add_tsa(ApprovedTsa(DEV_TSA_NAME, f"{base}/tsa", tsa_cert.public_bytes(der)))
    finally:
        store.close()
    return paths


def join_registry(root: Path, now: datetime, *, database_url: str) -> tuple[RegistryPaths, str]:
    """Make ``root`` another node of the clustered registry in ``database_url``: its own configuration-signing and
    HTTPS keys, no store of its own (issue 19). Returns the paths and the instance.

    The database must hold an initialised registry. The node lists itself as a configuration source when it
    starts (``fedbus registry serve``); re-download the anchor afterwards, it then names every node.
    """
    paths = RegistryPaths(root)
    if paths.database.exists() or paths.conf_signing.exists():
        raise ConfigurationError(f"{root} already holds a registry")
    store = RegistryStore(paths.database, database_url=database_url)
    try:
        if not store.is_initialised():
            raise ConfigurationError("the database holds no registry yet: run `fedbus registry init` on the first node")
        instance = store.settings().instance
    finally:
        store.close()
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    SelfSignedKey.create(paths.conf_signing, f"{instance} configuration signing ({root.name})", now)
    SelfSignedKey.create(paths.tls, f"{instance} central registry ({root.name})", now)
    return paths, instance
