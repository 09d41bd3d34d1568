"""A disabled client (X-Road 7's disableClient) is refused by both proxies as X-Road's ``verifyClientStatus``
refuses it: as an unknown member, since only a REGISTERED client exchanges messages."""

from __future__ import annotations

from security_server.serverconf.store import ClientState
from tests.federation.world import CONSUMER, PROVIDER, ExchangeBed, is_request
from tests.loopback import coroutine_test


class DisabledClientTest(ExchangeBed):
    """Both servers of an exchange refuse a disabled client."""

    @coroutine_test
    async def test_a_disabled_consumer_is_an_unknown_member(self) -> None:
        """A disabled consumer's request is server.clientproxy.unknown_member and nothing is sent; enabled, it
        goes through again."""
        self.consumer.store.set_client_state(CONSUMER, ClientState.DISABLED)
        await self.assert_fault(is_request(), "server.clientproxy.unknown_member")
        self.assert_nothing_sent()
        self.consumer.store.set_client_state(CONSUMER, ClientState.REGISTERED)
        status, _, answer = await self.send(is_request())
        assert status == 200 and b"Fault" not in answer

    @coroutine_test
    async def test_a_disabled_provider_is_an_unknown_member(self) -> None:
        """A call to a disabled provider's service is server.serverproxy.unknown_member; the service is not
        called."""
        self.provider.store.set_client_state(PROVIDER, ClientState.DISABLED)
        await self.assert_fault(is_request(), "server.serverproxy.unknown_member")
        assert self.service.calls == {}
