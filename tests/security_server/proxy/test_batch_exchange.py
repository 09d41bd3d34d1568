"""Batch-signed exchanges end to end in memory: requests of one turn share a signature, each is checked, logged
and answered on its own, and a replay of any one of them is still refused."""

from __future__ import annotations

from twisted.internet.defer import Deferred, gatherResults

from security_server.core.hashchain import MESSAGE
from security_server.core.logchain import Direction
from security_server.core.signature import verify_signature
from security_server.messagelog.store import MessageLogStore
from security_server.core.message_trust import signed_part_map
from tests.federation.world import ExchangeBed, fault_code, is_request, records
from tests.loopback import coroutine_test


class BatchExchangeTest(ExchangeBed):
    """ss1 -> ss2 through LocalPeerLink, with the proxies' default batch signers."""

    @coroutine_test
    async def test_requests_of_one_turn_share_a_signature_and_each_is_answered(self) -> None:
        """Three requests sent together (two of them byte-identical) are signed once by the consumer's server;
        the provider's server accepts each (none looks like a replay of another) and answers each."""
        bodies = [is_request(query_id="same"), is_request(query_id="same"), is_request(query_id="other")]
        answers = await gatherResults([Deferred.fromCoroutine(self.send(body)) for body in bodies])
        assert [status for status, _, _ in answers] == [200, 200, 200]
        assert self.client_proxy.signer.messages_signed == 3
        assert self.client_proxy.signer.signatures_made == 1
        assert self.service.calls == {"echo": 3}
        requests = [r for r in records(self.provider.log_path) if r.direction is Direction.REQUEST]
        assert len(requests) == 3 and len({r.signature for r in requests}) == 1
        assert all(r.hashchain is not None and r.hashchainresult is not None for r in requests)
        assert len({r.hashchain for r in requests}) == 3
        for request in requests:  # each message's evidence verifies alone: its chain, then the shared signature
            parts = signed_part_map(request.message, (), request.hashchainresult, request.hashchain)
            assert MESSAGE in verify_signature(request.signature, parts.get, expected_parts=(MESSAGE,)).covered_parts
        for path in (self.provider.log_path, self.consumer.log_path):
            store = MessageLogStore(path)
            try:
                assert store.verify() == 6
            finally:
                store.close()

    @coroutine_test
    async def test_a_replayed_member_of_a_batch_is_refused(self) -> None:
        """Delivering one batch-signed request again is refused as a replay, though its batch mates passed."""
        answers = await gatherResults(
            [Deferred.fromCoroutine(self.send(is_request(query_id="same"))) for _ in range(2)]
        )
        assert [status for status, _, _ in answers] == [200, 200]
        for _, delivered in self.link.delivered:
            replayed = await self.server_proxy.handle(self.link.client_cert_der, delivered)
            assert fault_code(replayed.body) == "server.serverproxy.invalid_request.replayed_signature"
        assert self.service.calls == {"echo": 2}

    @coroutine_test
    async def test_a_lone_request_is_signed_without_a_hash_chain(self) -> None:
        """At low load nothing changes: one request, one direct signature over the message."""
        status, _, _ = await self.send(is_request())
        assert status == 200
        request = next(r for r in records(self.provider.log_path) if r.direction is Direction.REQUEST)
        assert request.hashchain is None and request.hashchainresult is None
