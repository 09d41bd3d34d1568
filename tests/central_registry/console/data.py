"""A registry directory for the registry console's tests: initialised (instance EE), a member with a subsystem,
its security server, an approved CA and TSA, two waiting management requests, and one user per role."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from central_registry.admin import initialization, trust_services
from central_registry.management.roles import ALL_ROLES, Role
from central_registry.requests import RequestStatus
from central_registry.service import RegistryPaths
from central_registry.store import RegistryStore
from security_server.core.identifiers import ClientId, SecurityServerId
from security_server.management.credentials import DB_NAME, CredentialStore

PASSWORD = "Registry-Secret-1"
USERS = {
    "admin": Role.SYSTEM_ADMINISTRATOR,
    "registrar": Role.REGISTRATION_OFFICER,
    "security": Role.SECURITY_OFFICER,
    "observer": Role.OBSERVER,
}
OWNER = ClientId("EE", "GOV", "70000310")
SERVER = SecurityServerId(OWNER, "ss1")
SUBSYSTEM = OWNER.subsystem("reg")
NEW_CLIENT = OWNER.subsystem("new")
SCRIPT = "<script>alert('x')</script>"


def certificate(name: str, now: datetime) -> x509.Certificate:
    """A self-signed certificate named ``name`` (standing in for a CA's, a TSA's or a server's)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    return (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(1).not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=365))
            .sign(key, hashes.SHA256()))


def _submit(store: RegistryStore, request_id: str, kind: str, submitted: datetime,
            client: ClientId | None = None) -> None:
    """A request as the registration desk stores an accepted one (its signatures were checked then)."""
    der = certificate(request_id, submitted).public_bytes(serialization.Encoding.DER)
    payload = {"type": kind, "server": str(SERVER), "address": "ss1.example.org",
               "auth_cert": base64.b64encode(der).decode() if kind == "authCertReg" else None,
               "client": str(client) if client else None}
    with store.transaction("request_submitted", {"id": request_id}):
        store.db.execute(
            "INSERT INTO requests (id, type, payload, status, submitted_at, server_id, client_id)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            [request_id, kind, json.dumps(payload), str(RequestStatus.PENDING), submitted.isoformat(), str(SERVER),
             payload["client"]],
        )


def build_registry(root: Path) -> Path:
    """The registry directory ``root`` with the federation above (times are the real clock's)."""
    now = datetime.now(UTC).replace(microsecond=0)
    initialization.initialise(root, "EE", "cs.example.org", "1234", now)
    store = RegistryStore(RegistryPaths(root).database)
    try:
        store.db.execute("INSERT INTO member_classes (code, description) VALUES ('GOV', 'Government')")
        store.add_member(OWNER, "Riik " + SCRIPT)
        store.add_subsystem(SUBSYSTEM)
        store.register_auth_cert(SERVER, "ss1.example.org",
                                 certificate("ss1", now).public_bytes(serialization.Encoding.DER))
        store.add_server_client(SERVER, SUBSYSTEM)
        trust_services.add_certification_service(store, certificate("Test CA", now), "fedbus")
        trust_services.add_timestamping_service(store, "http://tsa.example/", certificate("Test TSA", now))
        _submit(store, "req-a", "authCertReg", now - timedelta(minutes=2))
        _submit(store, "req-b", "clientReg", now - timedelta(minutes=1), NEW_CLIENT)
    finally:
        store.close()
    with CredentialStore(root / DB_NAME, frozenset(ALL_ROLES)) as credentials:
        for name, role in USERS.items():
            credentials.add_user(name, PASSWORD, frozenset({role}), now=now)
    return root
