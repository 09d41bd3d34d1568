"""What this server did with each authentication certificate (sent authCertReg, authCertDeletion, ...), by hash.

The record is ``auth-cert-status.json`` in the server directory: ``{"<SHA-256 hex>": "<CertStatus>"}``, written
whole and replaced atomically; a certificate without an entry is SAVED. The state shown is the recorded one moved
on by the global configuration in force (:func:`security_server.core.auth_cert_status.observed`), and the move is
recorded, as X-Road's configuration checker records it, so that a certificate the registry dropped shows
GLOBAL_ERROR rather than SAVED. The file is not in backups: a restored server shows its certificates SAVED until
the next global configuration lists them again.
"""

from __future__ import annotations

import threading

from security_server.admin import state_file
from security_server.admin.server_dir import ServerDirectory
from security_server.core.auth_cert_status import CertStatus, observed
from security_server.core.errors import ConfigurationError
from security_server.edge.atomic_file import PRIVATE_MODE

STATE_FILE = "auth-cert-status.json"
_LOCK = threading.Lock()


def _read(server_dir: ServerDirectory) -> dict[str, CertStatus]:
    raw = state_file.read(server_dir, STATE_FILE) or {}
    try:
        return {str(k).upper(): CertStatus(v) for k, v in raw.items()}
    except ValueError as err:
        raise ConfigurationError(f"{server_dir.path / STATE_FILE} holds an unknown certificate state: {err}") from err


def _write(server_dir: ServerDirectory, states: dict[str, CertStatus]) -> None:
    state_file.write(server_dir, STATE_FILE, {k: str(v) for k, v in states.items()}, mode=PRIVATE_MODE)


def recorded(server_dir: ServerDirectory, cert_hash: str) -> CertStatus:
    """The state recorded for the certificate (SAVED when nothing was)."""
    with _LOCK:
        return _read(server_dir).get(cert_hash.upper(), CertStatus.SAVED)


def record(server_dir: ServerDirectory, cert_hash: str, status: CertStatus) -> None:
    """Record the certificate's new state (SAVED drops its entry)."""
    with _LOCK:
        states = _read(server_dir)
        if status is CertStatus.SAVED:
            if states.pop(cert_hash.upper(), None) is None:
                return
        else:
            states[cert_hash.upper()] = status
        _write(server_dir, states)


def forget(server_dir: ServerDirectory, cert_hash: str) -> None:
    """Drop the certificate's entry (it was deleted)."""
    record(server_dir, cert_hash, CertStatus.SAVED)


def current(server_dir: ServerDirectory, cert_hash: str, listed: bool | None) -> CertStatus:
    """The certificate's state: the recorded one, moved on by the global configuration when it is known
    (``listed``: whether it lists the certificate for this server; None: no configuration at hand)."""
    with _LOCK:
        states = _read(server_dir)
        before = states.get(cert_hash.upper(), CertStatus.SAVED)
        if listed is None:
            return before
        after = observed(before, listed)
        if after is not before:
            states[cert_hash.upper()] = after
            _write(server_dir, states)
        return after
