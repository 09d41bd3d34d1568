"""``ssl_auth``: an ``https`` provider on loopback with a self-signed certificate, called through the whole exchange.

X-Road's ``CustomSSLSocketFactory``: with ``ssl_auth`` the certificate the service presents must be one of the
providing client's internal TLS certificates, else ``server.serverproxy.ssl_authentication_failed``; without it the
certificate is not checked.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from twisted.internet import ssl
from twisted.web import server

from security_server.core.acl import AccessRight
from security_server.core.errors import SslAuthenticationFailed
from security_server.core.identifiers import ServiceId
from security_server.proxy.provider_call import AgentProviderClient, ProviderTls
from security_server.proxy.provider_client import LeanProviderClient
from security_server.serverconf.store import ServiceKind, tls_certificate
from tests.federation.provider import ProviderService
from tests.federation.world import CONSUMER, PROVIDER, ExchangeBed, fault_code, is_request
from tests.loopback import REACTOR, coroutine_test
from tests.security_server.proxy.rest_provider import RestProvider

TLS_ECHO = ServiceId(PROVIDER, "tlsEcho")
TLS_OTHER = ServiceId(PROVIDER, "tlsOther")
TLS_PETS = ServiceId(PROVIDER, "tlsPets")
REST_PATH = "/r1/EE/GOV/70000002/service/tlsPets"
CLIENT_HEADER = ("X-Road-Client", "EE/GOV/70000001/client")
SSL_AUTH_FAILED = "server.serverproxy.ssl_authentication_failed"


def self_signed(name: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """A key and a self-signed certificate for ``name``, made now (test PKI is never committed)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    start = datetime.now(timezone.utc) - timedelta(minutes=5)
    cert = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(start).not_valid_after(start + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return key, cert


def pem(cert: x509.Certificate) -> bytes:
    """The certificate in PEM."""
    return cert.public_bytes(serialization.Encoding.PEM)


class ProviderTlsTest(ExchangeBed):
    """The provider's services over https on loopback; the consumer calls them through both proxies."""

    def setUp(self) -> None:
        super().setUp()
        key, self.provider_cert = self_signed("provider.example")
        options = ssl.CertificateOptions(
            privateKey=key,  # type: ignore[arg-type]  # pyOpenSSL takes cryptography keys; Twisted's hints lag
            certificate=self.provider_cert,  # type: ignore[arg-type]
        )
        self.tls_service = ProviderService()
        soap_site = server.Site(self.tls_service)  # type: ignore[no-untyped-call]
        soap_site.timeOut = None
        self.tls_port = REACTOR.listenSSL(0, soap_site, options, interface="127.0.0.1")
        self.rest_provider = RestProvider()
        rest_site = server.Site(self.rest_provider)  # type: ignore[no-untyped-call]
        rest_site.timeOut = None
        self.rest_port = REACTOR.listenSSL(0, rest_site, options, interface="127.0.0.1")
        base = f"https://127.0.0.1:{self.tls_port.getHost().port}"
        store = self.provider.store
        for service in (TLS_ECHO, TLS_OTHER):
            store.add_service(service, url=f"{base}/echo")
            store.grant(AccessRight.for_service(CONSUMER, service))
        store.add_service(TLS_PETS, url=f"https://127.0.0.1:{self.rest_port.getHost().port}/api", kind=ServiceKind.REST)
        store.grant(AccessRight(CONSUMER, TLS_PETS))

    async def _tear_down(self) -> None:
        await self.server_proxy.provider_client.close()  # type: ignore[attr-defined]
        await self.tls_port.stopListening()
        await self.rest_port.stopListening()
        await super()._tear_down()

    def trust_provider(self) -> None:
        """Upload the provider system's certificate as the client's internal TLS certificate."""
        self.provider.store.add_tls_certificate(tls_certificate(PROVIDER, pem(self.provider_cert)))

    async def call(self, service: ServiceId) -> tuple[int, bytes]:
        """The consumer IS calls ``service``: the status and the answer."""
        status, _, answer = await self.send(is_request(service))
        return status, answer

    @coroutine_test
    async def test_a_new_https_service_verifies_and_refuses_without_the_certificate(self) -> None:
        """ssl_auth is on by default: the client has no TLS certificate, so the call is ssl_authentication_failed
        and the provider system receives nothing."""
        assert self.provider.store.snapshot().service(TLS_ECHO).ssl_auth  # type: ignore[union-attr]
        _, answer = await self.call(TLS_ECHO)
        assert fault_code(answer) == SSL_AUTH_FAILED
        assert self.tls_service.calls == {}

    @coroutine_test
    async def test_the_uploaded_certificate_lets_the_call_through(self) -> None:
        """With the provider system's certificate among the client's internal TLS certificates the call works."""
        self.trust_provider()
        status, answer = await self.call(TLS_ECHO)
        assert status == 200 and b"Fault" not in answer, answer[:400]
        assert self.tls_service.calls == {"echo": 1}

    @coroutine_test
    async def test_another_certificate_is_not_trusted(self) -> None:
        """A certificate of another system (not the one the service presents) does not make it trusted."""
        _, stranger = self_signed("provider.example")
        self.provider.store.add_tls_certificate(tls_certificate(PROVIDER, pem(stranger)))
        _, answer = await self.call(TLS_ECHO)
        assert fault_code(answer) == SSL_AUTH_FAILED
        assert self.tls_service.calls == {}

    @coroutine_test
    async def test_ssl_auth_off_calls_without_checking(self) -> None:
        """ssl_auth false: the self-signed certificate is not checked and the call works."""
        url = self.provider.store.snapshot().service(TLS_ECHO).url  # type: ignore[union-attr]
        self.provider.store.update_service(TLS_ECHO, url=url, timeout_seconds=10, ssl_auth=False)
        status, answer = await self.call(TLS_ECHO)
        assert status == 200 and b"Fault" not in answer, answer[:400]
        _, other = await self.call(TLS_OTHER)
        assert fault_code(other) == SSL_AUTH_FAILED  # the other service of the same host keeps its own setting

    @coroutine_test
    async def test_removing_the_certificate_refuses_again(self) -> None:
        """Once the certificate is removed, the next call (on a new connection rule) is refused."""
        self.trust_provider()
        assert (await self.call(TLS_ECHO))[0] == 200
        self.provider.store.remove_tls_certificate(PROVIDER, tls_certificate(PROVIDER, pem(self.provider_cert)).hash)
        _, answer = await self.call(TLS_ECHO)
        assert fault_code(answer) == SSL_AUTH_FAILED

    @coroutine_test
    async def test_a_rest_service_over_https_follows_the_same_rule(self) -> None:
        """REST: refused with ssl_authentication_failed (X-Road-Error) without the certificate, answered with it."""
        refused = await self.client_proxy.handle_rest("GET", f"{REST_PATH}/pets/1", [CLIENT_HEADER], b"")
        assert dict((n.lower(), v) for n, v in refused.headers)["x-road-error"] == SSL_AUTH_FAILED
        self.trust_provider()
        answer = await self.client_proxy.handle_rest("GET", f"{REST_PATH}/pets/1", [CLIENT_HEADER], b"")
        assert answer.status == 200, answer
        echoed: Any = json.loads(answer.body)
        assert echoed["path"] == "/api/pets/1"

    @coroutine_test
    async def test_the_lean_client_hands_the_rule_to_its_https_fallback(self) -> None:
        """The server proxy's default client (lean for http, the Agent for https) applies the rule it is given."""
        lean = LeanProviderClient(REACTOR, max_response_bytes=1 << 20,
                                  fallback=AgentProviderClient(REACTOR, max_response_bytes=1 << 20))
        self.addCleanup(lean.close)
        url = f"https://127.0.0.1:{self.tls_port.getHost().port}/echo"
        body, headers = is_request(TLS_ECHO), {"Content-Type": "text/xml; charset=UTF-8", "SOAPAction": ""}
        der = self.provider_cert.public_bytes(serialization.Encoding.DER)
        answer = await lean.post(url, body, headers, 10.0, tls=ProviderTls(True, frozenset({der})))
        assert answer.status == 200
        try:
            await lean.post(url, body, headers, 10.0, tls=ProviderTls(True))
        except SslAuthenticationFailed as err:
            assert err.fault_code == SSL_AUTH_FAILED
        else:
            raise AssertionError("an untrusted certificate was accepted")
        assert (await lean.post(url, body, headers, 10.0, tls=ProviderTls(False))).status == 200
