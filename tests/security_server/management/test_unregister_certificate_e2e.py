"""Issue 16, the auth certificate's way out, end to end: a registered provider's certificate unregistered through
its running server's management API reaches the registry as authCertDeletion, the registry's next configuration
no longer lists it, and the consumer's server refuses the provider from then on."""

from __future__ import annotations

import hashlib
from typing import Any

from cryptography.hazmat.primitives.serialization import Encoding
from twisted.internet import defer

from central_registry.store import RegistryStore
from security_server.management.config import ManagementConfig
from tests import e2e_federation as federation
from tests.e2e_federation import CONSUMER, CONSUMER_MEMBER, PROVIDER, PROVIDER_MEMBER
from tests.loopback import http
from tests.management_https import HttpsApiClient
from tests.security_server.management.api_setup import server_api_key
from tests.security_server.management.xroad_openapi import XROAD
from tests.security_server.workers_federation import SOAP, soap


class UnregisterAuthCertificateTest(federation.TwoDepartmentFederation):
    """Consumer ``ss1`` and provider ``ss2`` (with its management API), registered, exchanging."""

    async def exchange(self, consumer: federation.Department, message_id: str) -> bytes:
        """One request through the consumer's server; the body it answers."""
        reply = await http(b"POST", f"http://127.0.0.1:{consumer.service.client_proxy_port}/", soap(message_id), SOAP)
        return bytes(reply.body)

    @defer.inlineCallbacks
    def test_unregistered_auth_certificate_leaves_the_configuration_and_is_refused(self) -> Any:
        """REGISTERED while listed; unregister: 204, DELETION_IN_PROGRESS, the registry drops it from the server;
        after the next configuration the consumer refuses the provider (X-Road's ssl_authentication_failed); then the certificate is deleted."""
        yield self.registry.publish_now()
        anchor = self.anchor()
        consumer = yield self.add_department(1, CONSUMER_MEMBER, CONSUMER, anchor)
        provider = yield self.add_department(2, PROVIDER_MEMBER, PROVIDER, anchor, management=ManagementConfig(port=0))
        yield self.offer_service(consumer, provider)
        answered = yield defer.Deferred.fromCoroutine(self.exchange(consumer, "before"))
        assert b">before</" in answered and b"Fault>" not in answered, answered

        _, auth_cert = provider.service.token.auth_key()
        der = auth_cert.public_bytes(Encoding.DER)
        cert_hash = hashlib.sha256(der).hexdigest().upper()
        api = HttpsApiClient(provider.root, provider.service.management.port, server_api_key(provider.root), XROAD)
        shown = yield defer.Deferred.fromCoroutine(api.json("GET", f"/token-certificates/{cert_hash}", 200))
        assert shown["status"] == "REGISTERED"
        yield defer.Deferred.fromCoroutine(api.json("PUT", f"/token-certificates/{cert_hash}/unregister", 204))
        shown = yield defer.Deferred.fromCoroutine(api.json("GET", f"/token-certificates/{cert_hash}", 200))
        assert shown["status"] == "DELETION_IN_PROGRESS"
        store = RegistryStore(self.paths.database)
        try:
            registered = store.security_server(provider.server_id)
            assert registered is not None and hashlib.sha256(der).digest() not in registered.auth_cert_hashes
        finally:
            store.close()

        yield self.catch_up(consumer, provider)
        conf = consumer.service.conf_client.current()
        assert conf.server_for_auth_cert(der) is None
        refused = yield defer.Deferred.fromCoroutine(self.exchange(consumer, "after"))
        assert b"ssl_authentication_failed</faultcode>" in refused and b">after</" not in refused, refused
        shown = yield defer.Deferred.fromCoroutine(api.json("GET", f"/token-certificates/{cert_hash}", 200))
        assert shown["status"] == "DELETION_IN_PROGRESS" and "DELETE" in shown["possible_actions"]
        yield defer.Deferred.fromCoroutine(api.json("DELETE", f"/token-certificates/{cert_hash}", 204))
