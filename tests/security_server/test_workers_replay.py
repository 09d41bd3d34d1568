"""Issue 18: the replay guard holds across workers: a signed request accepted by one worker is refused by every other.

Two server proxies of one provider, each with its own connection to the shared guard file (as two worker
processes have), receive the same signed transport message, first one then the other, until each has seen it.
"""

from __future__ import annotations

from security_server.proxy.provider_call import AgentProviderClient
from security_server.proxy.server_proxy import ServerProxy
from security_server.shared_replay_guard import FILE_NAME, SharedReplayGuard
from tests.federation.world import ExchangeBed, fault_code, is_request, records, signing_keys
from tests.loopback import REACTOR, coroutine_test


class ReplayAcrossWorkersTest(ExchangeBed):
    """The provider's server proxy as two workers sharing one replay guard file."""

    def make_worker(self) -> ServerProxy:
        """One worker's server proxy: the provider's context, its own connection to the shared guard."""
        guard = SharedReplayGuard(self.tmp / FILE_NAME)
        self.addCleanup(guard.close)
        return ServerProxy(
            self.provider.context,
            provider_client=AgentProviderClient(REACTOR, max_response_bytes=1024 * 1024, pool=self.pool),
            signing_keys=signing_keys(self.pki.provider_token),
            replay_guard=guard,
        )

    @coroutine_test
    async def test_a_message_replayed_to_each_worker_is_refused_by_both(self) -> None:
        """Worker A answers the message; the same bytes to worker B, then again to A: replayed_signature both times."""
        first, second = self.make_worker(), self.make_worker()
        self.link = self.make_link(first)
        self.client_proxy = self.make_client_proxy(self.link)
        status, _, _ = await self.send(is_request())
        assert status == 200
        (_, delivered), = self.link.delivered
        for worker in (second, first, second):
            replayed = await worker.handle(self.link.client_cert_der, delivered)
            assert fault_code(replayed.body) == "server.serverproxy.invalid_request.replayed_signature"
        assert self.service.calls == {"echo": 1}
        assert len(records(self.provider.log_path)) == 2
