"""Issue 16: the client proxy's HTTPS port and each client's connection type, over real TLS on loopback.

The federation of tests/e2e_federation.py; the consumer's server is restarted with ``client_proxy_https_port``
set, as ``fedbus server run`` starts it from ``[server] client-proxy-https-port``. The consumer's system calls it
with Python's ``ssl`` module (the client certificates made with cryptography), and the consumer client's connection
type decides (X-Road's IsAuthentication): HTTPS refuses plain HTTP, HTTPS without a certificate and HTTPS with one
that is not the client's, and is answered with the client's own; HTTPS_NO_AUTH refuses plain HTTP only; HTTP takes
both. A new internal certificate is served from the next connection on, without a restart.
"""

from __future__ import annotations

import http.client
import ssl
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from lxml import etree
from twisted.internet import defer
from twisted.internet.threads import deferToThread

from security_server.admin import internal_tls
from security_server.admin.server_dir import ServerDirectory
from security_server.core.connection_type import ConnectionType
from security_server.core.soap import SoapHeader, build_envelope
from security_server.management.tls import INTERNAL_CERT_NAME
from security_server.serverconf.store import ServerConfStore, tls_certificate
from security_server.service import ServerSettings, make_service
from security_server.workers import WorkerSupervisor
from tests import e2e_federation as federation
from tests.e2e_federation import CONSUMER, SERVICE, reactor
from tests.loopback import free_port

REFUSED = b"server.clientproxy.ssl_authentication_failed"


def soap(message_id: str) -> bytes:
    """A request of the consumer's system, with its own message id."""
    wrapper = etree.Element(etree.QName("http://test.fedbus.example/producer", "getRandom"))
    etree.SubElement(wrapper, "seed").text = "42"
    return build_envelope(SoapHeader(client=CONSUMER, service=SERVICE, id=message_id), wrapper)


@dataclass(frozen=True)
class IsCertificate:
    """An information system's TLS key and self-signed certificate, in PEM files."""

    cert_path: Path
    key_path: Path
    der: bytes


def is_certificate(directory: Path, name: str) -> IsCertificate:
    """A new IS certificate named ``name``, written to ``directory``."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    start = datetime.now(timezone.utc) - timedelta(minutes=5)
    cert = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(start).not_valid_after(start + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / f"{name}.crt", directory / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return IsCertificate(cert_path, key_path, cert.public_bytes(serialization.Encoding.DER))


def call(port: int, message_id: str, *, server_cert: Path | None = None, client: IsCertificate | None = None) -> bytes:
    """POST one SOAP request to the client proxy on ``port``: over TLS when ``server_cert`` (the internal TLS
    certificate, verified with its address) is given, with ``client``'s certificate when that is; the answer body."""
    connection: http.client.HTTPConnection
    if server_cert is None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    else:
        context = ssl.create_default_context(cafile=str(server_cert))
        if client is not None:
            context.load_cert_chain(str(client.cert_path), str(client.key_path))
        connection = http.client.HTTPSConnection("127.0.0.1", port, timeout=60, context=context)
    try:
        connection.request("POST", "/", soap(message_id), {"Content-Type": "text/xml; charset=utf-8"})
        return connection.getresponse().read()
    finally:
        connection.close()


class ClientHttpsEndToEndTest(federation.TwoDepartmentFederation):
    """The consumer's system reaches its server over HTTP and HTTPS, as its client's connection type allows."""

    @defer.inlineCallbacks
    def start(self) -> Any:
        """The pair registered; the consumer's server restarted with an HTTPS port."""
        consumer, _ = yield self.start_pair()
        yield consumer.service.stopService()
        self.https_port = free_port()
        consumer.service = make_service(reactor, ServerSettings(
            root=consumer.root, client_proxy_port=0, server_proxy_port=0, client_proxy_https_port=self.https_port,
            conf_refresh_seconds=3600,
        ))
        consumer.service.startService()
        self.consumer = consumer
        self.internal_cert = consumer.root / INTERNAL_CERT_NAME

    @defer.inlineCallbacks
    def set_connection_type(self, connection_type: ConnectionType) -> Any:
        """Store the consumer client's connection type and have its running server read it."""
        with ServerConfStore(self.consumer.root / "serverconf.db") as store:
            store.set_connection_type(CONSUMER, connection_type)
        yield self.consumer.service.reload_serverconf()

    def answered(self, body: bytes, message_id: str) -> bool:
        """Whether ``body`` is the provider's answer to ``message_id``."""
        return b"Fault>" not in body and f">{message_id}</".encode() in body

    @defer.inlineCallbacks
    def test_connection_types_over_http_and_https(self) -> Any:
        """HTTPS: only TLS with the client's own certificate is answered; HTTPS_NO_AUTH: any TLS; HTTP: anything."""
        yield self.start()
        http_port = self.consumer.service.client_proxy_port
        assert self.consumer.service.client_proxy_https_port == self.https_port
        registered = is_certificate(self.tmp, "registered-is")
        stranger = is_certificate(self.tmp, "stranger-is")
        with ServerConfStore(self.consumer.root / "serverconf.db") as store:
            store.add_tls_certificate(tls_certificate(CONSUMER, registered.der))
        tls = {"server_cert": self.internal_cert}

        yield self.set_connection_type(ConnectionType.HTTPS)
        for refused in (
            (yield deferToThread(call, http_port, "https-over-http")),
            (yield deferToThread(call, self.https_port, "https-without-cert", **tls)),
            (yield deferToThread(call, self.https_port, "https-wrong-cert", client=stranger, **tls)),
        ):
            assert REFUSED in refused, refused
        body = yield deferToThread(call, self.https_port, "https-own-cert", client=registered, **tls)
        assert self.answered(body, "https-own-cert"), body

        yield self.set_connection_type(ConnectionType.HTTPS_NO_AUTH)
        body = yield deferToThread(call, http_port, "no-auth-over-http")
        assert REFUSED in body, body
        body = yield deferToThread(call, self.https_port, "no-auth-without-cert", **tls)
        assert self.answered(body, "no-auth-without-cert"), body
        body = yield deferToThread(call, self.https_port, "no-auth-any-cert", client=stranger, **tls)
        assert self.answered(body, "no-auth-any-cert"), body

        yield self.set_connection_type(ConnectionType.HTTP)
        body = yield deferToThread(call, http_port, "http-over-http")
        assert self.answered(body, "http-over-http"), body
        body = yield deferToThread(call, self.https_port, "http-over-https", **tls)
        assert self.answered(body, "http-over-https"), body

    @defer.inlineCallbacks
    def test_worker_processes_serve_the_https_port(self) -> Any:
        """With two worker processes the parent opens the HTTPS socket too, and the workers serve it and check the
        client's connection type (HTTPS_NO_AUTH: HTTPS answered, plain HTTP refused)."""
        yield self.start()
        with ServerConfStore(self.consumer.root / "serverconf.db") as store:
            store.set_connection_type(CONSUMER, ConnectionType.HTTPS_NO_AUTH)
        yield self.consumer.service.stopService()
        self.departments.remove(self.consumer)
        supervisor = WorkerSupervisor(reactor, ServerSettings(
            root=self.consumer.root, client_proxy_port=0, server_proxy_port=0, client_proxy_https_port=self.https_port,
            conf_refresh_seconds=3600, workers=2,
        ))
        supervisor.startService()
        self.addCleanup(lambda: supervisor.stopService() if supervisor.running else None)
        yield supervisor.when_ready()
        for n in range(4):  # new connections each time: the kernel spreads them over both workers
            body = yield deferToThread(call, self.https_port, f"workers-https-{n}", server_cert=self.internal_cert)
            assert self.answered(body, f"workers-https-{n}"), body
        body = yield deferToThread(call, supervisor.client_proxy_port, "workers-http")
        assert REFUSED in body, body

    @defer.inlineCallbacks
    def test_a_new_internal_certificate_is_served_without_a_restart(self) -> Any:
        """After a new internal key and certificate are made, the next HTTPS connection presents them: a system that
        trusts only the old certificate fails the handshake, one that trusts the new one is answered."""
        yield self.start()
        old = self.tmp / "old-internal.crt"
        old.write_bytes(self.internal_cert.read_bytes())
        internal_tls.regenerate(ServerDirectory(self.consumer.root))
        try:
            yield deferToThread(call, self.https_port, "old-trust", server_cert=old)
        except ssl.SSLCertVerificationError:
            pass
        else:
            raise AssertionError("the old certificate was still served")
        body = yield deferToThread(call, self.https_port, "new-trust", server_cert=self.internal_cert)
        assert self.answered(body, "new-trust"), body
