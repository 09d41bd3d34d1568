"""Issue 16, X-Road's addressChange end to end: the provider's running server asks the registry for a new address
through its management API; once approved, the next global configuration publishes it to every server."""

from __future__ import annotations

from typing import Any

from twisted.internet import defer

from central_registry.store import RegistryStore
from security_server.management.config import ManagementConfig
from tests import e2e_federation as federation
from tests.e2e_federation import CONSUMER, CONSUMER_MEMBER, PROVIDER, PROVIDER_MEMBER
from tests.management_https import HttpsApiClient
from tests.security_server.management.api_setup import server_api_key
from tests.security_server.management.xroad_openapi import XROAD


class AddressChangeTest(federation.TwoDepartmentFederation):
    """Consumer ``ss1`` and provider ``ss2`` (with its management API), registered."""

    @defer.inlineCallbacks
    def test_an_address_change_reaches_the_registry_and_every_server(self) -> Any:
        """PUT: 202 and the change waits; the registry (auto-approving) moves the server; after the next
        configuration the consumer sees the new address and the provider's request is forgotten."""
        yield self.registry.publish_now()
        anchor = self.anchor()
        consumer = yield self.add_department(1, CONSUMER_MEMBER, CONSUMER, anchor)
        provider = yield self.add_department(2, PROVIDER_MEMBER, PROVIDER, anchor, management=ManagementConfig(port=0))
        old = f"127.0.0.1:{provider.service.server_proxy_port}"
        api = HttpsApiClient(provider.root, provider.service.management.port, server_api_key(provider.root), XROAD)
        shown = yield defer.Deferred.fromCoroutine(api.json("GET", "/system/server-address", 200))
        assert shown == {"current_address": {"address": old}}
        new = "localhost:" + str(provider.service.server_proxy_port)
        yield defer.Deferred.fromCoroutine(api.json("PUT", "/system/server-address", 202, json_body={"address": new}))
        shown = yield defer.Deferred.fromCoroutine(api.json("GET", "/system/server-address", 200))
        assert shown == {"current_address": {"address": old}, "requested_change": {"address": new}}
        store = RegistryStore(self.paths.database)
        try:
            registered = store.security_server(provider.server_id)
            assert registered is not None and registered.address == new
        finally:
            store.close()
        yield self.catch_up(consumer, provider)
        assert consumer.service.conf_client.current().server_address(provider.server_id) == new
        shown = yield defer.Deferred.fromCoroutine(api.json("GET", "/system/server-address", 200))
        assert shown == {"current_address": {"address": new}}
