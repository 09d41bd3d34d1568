"""The client proxy applies the consumer client's connection type before anything is signed, logged or sent
(X-Road's verifyClientAuthentication), for SOAP and REST alike; through the in-memory link of tests/federation."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from security_server.core.connection_type import PLAINTEXT, ConnectionType, IsConnection
from security_server.core.rest import header_value
from security_server.serverconf.store import tls_certificate
from tests.federation.world import CONSUMER, REST, SOAP, ExchangeBed, fault_code, is_request
from tests.loopback import coroutine_test

REFUSED = "server.clientproxy.ssl_authentication_failed"
IS_CERT = b"0\x82is-cert-der"
"""Stands for an IS certificate: the proxy compares DER bytes, the TLS layer parsed the certificate before."""


def is_cert_der(name: str = "is.example") -> bytes:
    """A self-signed certificate of an information system (DER), made now."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    start = datetime.now(timezone.utc) - timedelta(minutes=5)
    cert = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(start).not_valid_after(start + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.DER)


class ConnectionTypeExchangeTest(ExchangeBed):
    """A consumer client with connection type HTTPS or HTTPS_NO_AUTH."""

    def use(self, connection_type: ConnectionType) -> None:
        """Give CONSUMER ``connection_type`` in the consumer's configuration (read per request)."""
        self.consumer.store.set_connection_type(CONSUMER, connection_type)

    @coroutine_test
    async def test_https_refuses_plain_http_for_soap_and_rest_and_sends_nothing(self) -> None:
        """HTTPS over plain HTTP: the SOAP fault and the REST error JSON (500) carry ssl_authentication_failed;
        nothing reached the provider's side."""
        self.use(ConnectionType.HTTPS)
        status, _, body = await self.client_proxy.handle_soap(SOAP, is_request(), {}, PLAINTEXT)
        assert status == 200 and fault_code(body) == REFUSED
        answer = await self.client_proxy.handle_rest(
            "GET", f"/r1/{REST.client.instance}/{REST.client.member_class}/{REST.client.member_code}/"
            f"{REST.client.subsystem_code}/{REST.service_code}/x", [("X-Road-Client", "EE/GOV/70000001/client")], b"",
        )
        assert answer.status == 500 and header_value(answer.headers, "X-Road-Error") == REFUSED
        assert json.loads(answer.body)["type"] == REFUSED
        self.assert_nothing_sent()

    @coroutine_test
    async def test_https_is_answered_with_the_clients_certificate_or_the_servers_own(self) -> None:
        """HTTPS with one of the client's TLS certificates is answered; so is a connection with the server's own
        internal certificate (local, X-Road); another certificate is refused."""
        self.use(ConnectionType.HTTPS)
        registered = is_cert_der()
        self.consumer.store.add_tls_certificate(tls_certificate(CONSUMER, registered))
        own = IsConnection(True, registered)
        status, _, body = await self.client_proxy.handle_soap(SOAP, is_request(), {}, own)
        assert status == 200 and b"Fault>" not in body, body[:300]
        _, _, body = await self.client_proxy.handle_soap(SOAP, is_request(), {}, IsConnection(True, IS_CERT))
        assert fault_code(body) == REFUSED
        self.client_proxy.internal_cert = IS_CERT
        _, _, body = await self.client_proxy.handle_soap(SOAP, is_request(), {}, IsConnection(True, IS_CERT))
        assert b"Fault>" not in body, body[:300]

    @coroutine_test
    async def test_https_no_auth_takes_tls_without_a_certificate(self) -> None:
        """HTTPS_NO_AUTH: TLS without a certificate is answered, plain HTTP refused."""
        self.use(ConnectionType.HTTPS_NO_AUTH)
        _, _, body = await self.client_proxy.handle_soap(SOAP, is_request(), {}, IsConnection(True))
        assert b"Fault>" not in body, body[:300]
        _, _, body = await self.client_proxy.handle_soap(SOAP, is_request(), {}, PLAINTEXT)
        assert fault_code(body) == REFUSED
