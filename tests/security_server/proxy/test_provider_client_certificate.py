"""The server's internal TLS certificate is the client certificate presented to an ``https`` service (X-Road's
``CustomSSLSocketFactory`` uses the internal key), and a new one is presented from the next call on."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from OpenSSL import SSL
from twisted.internet import ssl
from twisted.internet.defer import Deferred
from twisted.trial import unittest
from twisted.web import resource, server

from security_server.core.errors import ServiceFailed
from security_server.management.tls import InternalIdentity, new_internal_identity
from security_server.proxy.mtls import peer_cert_of
from security_server.proxy.provider_call import AgentProviderClient, ProviderTls
from tests.loopback import REACTOR, coroutine_test


def self_signed(name: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """A key and a self-signed certificate for ``name``, made now."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    start = datetime.now(UTC) - timedelta(minutes=5)
    cert = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(start).not_valid_after(start + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return key, cert


class _ClientCertEcho(resource.Resource):
    """Answers every POST with nothing, keeping the client certificate (DER) each request came with."""

    isLeaf = True

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.seen: list[bytes | None] = []

    def render_POST(self, request: server.Request) -> bytes:
        transport: Any = request.channel.transport
        self.seen.append(peer_cert_of(transport.getHandle()))
        return b"<ok/>"


def _require_any_client_certificate(connection: SSL.Connection, cert: Any, errno: int, depth: int, ok: int) -> bool:
    return True


class ProviderClientCertificateTest(unittest.TestCase):
    """An https service that requires a client certificate (any) and records it."""

    def setUp(self) -> None:
        key, cert = self_signed("service.example")
        options = ssl.CertificateOptions(privateKey=key, certificate=cert)  # type: ignore[arg-type]
        options.getContext().set_verify(SSL.VERIFY_PEER | SSL.VERIFY_FAIL_IF_NO_PEER_CERT, _require_any_client_certificate)
        self.echo = _ClientCertEcho()
        site = server.Site(self.echo)  # type: ignore[no-untyped-call]
        site.timeOut = None
        self.port = REACTOR.listenSSL(0, site, options, interface="127.0.0.1")
        self.url = f"https://127.0.0.1:{self.port.getHost().port}/soap"
        self.directory = Path(self.mktemp())  # type: ignore[no-untyped-call]
        self.directory.mkdir()
        self.clients: list[AgentProviderClient] = []

    async def _stop(self) -> None:
        for client in self.clients:
            await client.close()
        await self.port.stopListening()

    def tearDown(self) -> Any:
        return Deferred.fromCoroutine(self._stop())

    def client(self, identity: InternalIdentity | None) -> AgentProviderClient:
        """A provider client presenting ``identity`` (or nothing)."""
        made = AgentProviderClient(REACTOR, max_response_bytes=65536,
                                   client_identity=None if identity is None else identity.current)
        self.clients.append(made)
        return made

    async def post(self, client: AgentProviderClient) -> None:
        """One SOAP call under a rule that does not check the service's certificate."""
        answer = await client.post(self.url, b"<request/>", {"Content-Type": "text/xml"}, 10, tls=ProviderTls(False))
        assert answer.status == 200

    @coroutine_test
    async def test_the_internal_certificate_is_presented_and_a_new_one_from_the_next_call(self) -> None:
        """The service sees the internal TLS certificate; after a new one is made, the next call shows the new one."""
        identity = InternalIdentity(self.directory)
        client = self.client(identity)
        await self.post(client)
        first = identity.current().cert.public_bytes(serialization.Encoding.DER)
        assert self.echo.seen == [first]
        new_internal_identity(self.directory, datetime.now(UTC))
        await self.post(client)
        second = identity.current().cert.public_bytes(serialization.Encoding.DER)
        assert second != first and self.echo.seen == [first, second]

    @coroutine_test
    async def test_without_an_identity_nothing_is_presented(self) -> None:
        """A client without the internal identity presents no certificate: this service refuses the handshake."""
        try:
            await self.post(self.client(None))
        except ServiceFailed:
            pass
        else:
            raise AssertionError("the service took a call without a client certificate")
        assert self.echo.seen == []
