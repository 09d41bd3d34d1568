"""The clients' internal TLS certificates and each service's ``ssl_auth`` in the server configuration (migration
5), on SQLite and on PostgreSQL."""

from __future__ import annotations

import contextlib
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterator

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from security_server.core.identifiers import ClientId, ServiceId
from security_server.serverconf.store import (
    ClientState,
    ServerConfError,
    ServerConfStore,
    ServiceKind,
    tls_certificate,
)
from tests.security_server.store.engines import Backend
from tests.security_server.store.legacy_schemas import write_serverconf

OWNER = ClientId("EE", "GOV", "70000310")
PROVIDER = OWNER.subsystem("registry")
OTHER = OWNER.subsystem("archive")
PETS = ServiceId(PROVIDER, "pets")
RANDOM = ServiceId(PROVIDER, "getRandom", "v1")


def certificate(name: str = "is.example") -> x509.Certificate:
    """A self-signed certificate, made now."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    start = datetime.now(timezone.utc) - timedelta(minutes=5)
    return (
        x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(start).not_valid_after(start + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )


@pytest.fixture
def store(backend: Backend) -> Iterator[ServerConfStore]:
    """An initialised store hosting PROVIDER and OTHER, PROVIDER with an https SOAP and an https REST service."""
    with ServerConfStore(backend.path, database_url=backend.url) as opened:
        opened.initialise(OWNER, "ss1", b"<anchor/>")
        opened.add_client(PROVIDER)
        opened.set_client_state(PROVIDER, ClientState.REGISTRATION_IN_PROGRESS)
        opened.set_client_state(PROVIDER, ClientState.REGISTERED)
        opened.add_client(OTHER)
        opened.add_service(RANDOM, url="https://127.0.0.1:8443/random")
        opened.add_service(PETS, url="https://127.0.0.1:8443/pets", kind=ServiceKind.REST)
        yield opened


def test_certificates_are_kept_per_client_in_order(store: ServerConfStore) -> None:
    """Each client has its own certificates, in the order added, as DER with their SHA-256 upper-case hex."""
    first, second, others = certificate("a"), certificate("b"), certificate("c")
    store.add_tls_certificate(tls_certificate(PROVIDER, first.public_bytes(serialization.Encoding.PEM)))
    store.add_tls_certificate(tls_certificate(PROVIDER, second.public_bytes(serialization.Encoding.DER)))
    store.add_tls_certificate(tls_certificate(OTHER, others.public_bytes(serialization.Encoding.PEM)))
    snapshot = store.snapshot()
    assert [c.der for c in snapshot.tls_certificates_of(PROVIDER)] == [
        c.public_bytes(serialization.Encoding.DER) for c in (first, second)]
    assert [c.hash for c in snapshot.tls_certificates_of(OTHER)] == [others.fingerprint(hashes.SHA256()).hex().upper()]


def test_a_duplicate_or_unknown_certificate_is_refused_and_changes_nothing(store: ServerConfStore) -> None:
    """The same certificate twice, one for a client not hosted, and removing one not there are refused."""
    cert = tls_certificate(PROVIDER, certificate().public_bytes(serialization.Encoding.PEM))
    store.add_tls_certificate(cert)
    with pytest.raises(ServerConfError):
        store.add_tls_certificate(cert)
    with pytest.raises(ServerConfError):
        store.add_tls_certificate(tls_certificate(OWNER.subsystem("nobody"), cert.der))
    with pytest.raises(ServerConfError):
        store.remove_tls_certificate(OTHER, cert.hash)
    assert store.snapshot().tls_certificates_of(PROVIDER) == (cert,)
    store.remove_tls_certificate(PROVIDER, cert.hash.lower())
    assert store.snapshot().tls_certificates == ()


@pytest.mark.parametrize("data", [b"", b"junk", b"-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n"])
def test_what_is_not_a_certificate_is_refused(data: bytes) -> None:
    """Only an X.509 certificate in PEM or DER is one."""
    with pytest.raises(ServerConfError):
        tls_certificate(PROVIDER, data)


def test_deleting_a_client_deletes_its_certificates(store: ServerConfStore) -> None:
    """A deleted client's certificates go with it; another client's stay."""
    store.add_tls_certificate(tls_certificate(OTHER, certificate().public_bytes(serialization.Encoding.PEM)))
    kept = tls_certificate(PROVIDER, certificate().public_bytes(serialization.Encoding.PEM))
    store.add_tls_certificate(kept)
    store.delete_client(OTHER)
    assert store.snapshot().tls_certificates == (kept,)


def test_ssl_auth_is_on_by_default_and_changed_only_when_given(store: ServerConfStore) -> None:
    """A new service verifies; update_service without ssl_auth keeps it; with it, sets it for that service only."""
    assert all(s.ssl_auth and s.verifies_tls for s in store.snapshot().services)
    store.update_service(RANDOM, url="https://127.0.0.1:8443/random", timeout_seconds=30, ssl_auth=False)
    store.update_service(RANDOM, url="https://127.0.0.1:8443/random", timeout_seconds=31)
    snapshot = store.snapshot()
    random, pets = snapshot.service(RANDOM), snapshot.service(PETS)
    assert random is not None and not random.ssl_auth and random.timeout_seconds == 31
    assert pets is not None and pets.ssl_auth


def test_an_http_service_never_verifies_tls(store: ServerConfStore) -> None:
    """ssl_auth means nothing for an http URL."""
    store.update_service(RANDOM, url="http://127.0.0.1:8080/random", timeout_seconds=30, ssl_auth=True)
    random = store.snapshot().service(RANDOM)
    assert random is not None and random.ssl_auth and not random.verifies_tls


def test_a_database_from_before_keeps_its_services_with_ssl_auth_on(tmp_path: Path) -> None:
    """A configuration at migration 4 opens with its services verifying TLS (X-Road's default) and no
    certificates."""
    path = tmp_path / "serverconf.db"
    with contextlib.closing(write_serverconf(path, upto=1)) as conn:
        conn.execute("INSERT INTO server VALUES (1, ?, 'ss1', x'3c613e')", (str(OWNER),))
        conn.execute("INSERT INTO client VALUES (?, 'registered', 0)", (str(PROVIDER),))
        conn.execute(
            "INSERT INTO service (client, code, version, kind, url, timeout, enabled, disabled_notice)"
            " VALUES (?, 'getRandom', 'v1', 'soap', 'https://127.0.0.1/r', 60, 1, '')",
            (str(PROVIDER),),
        )
    with ServerConfStore(path) as opened:
        snapshot = opened.snapshot()
    assert [s.ssl_auth for s in snapshot.services] == [True] and snapshot.tls_certificates == ()
