"""Issue 18, all cores: a provider security server run as a parent and two worker processes on the same ports.

The federation of tests/e2e_federation.py, with the provider's in-process server replaced (after registration) by
``WorkerSupervisor`` running two real worker processes on the registered server-proxy port. Exchanges through the
consumer's server reach both workers; each worker writes its own shard; a worker killed with -9 under load is
restarted by the parent, and every exchange the consumer got an answer to is in the provider's shards, whose
chains all verify.
"""

from __future__ import annotations

import os
import signal
from typing import Any

from twisted.internet import defer

from security_server.core.logchain import Direction
from tests.security_server.workers_federation import WorkersFederation, logged


class WorkersEndToEndTest(WorkersFederation):
    """Two worker processes behind one server-proxy port."""

    @defer.inlineCallbacks
    def test_two_workers_serve_one_port_and_write_their_own_shards(self) -> Any:
        """Exchanges reach both workers; each logs the exchanges it served to its own shard and chain."""
        yield self.start()
        answered: list[str] = []
        rounds = 0
        while len([s for s, ids in logged(self.provider_dept.root).items() if ids]) < 2 and rounds < 20:
            answered += yield defer.Deferred.fromCoroutine(self.load(f"spread{rounds}", 8))
            rounds += 1
        assert len(answered) == 8 * rounds
        yield self.supervisor.stopService()
        shards = logged(self.provider_dept.root)
        assert sorted(shards) == [0, 1] and all(shards.values())
        for message_id in answered:
            holders = [s for s, ids in shards.items() if ids.get(message_id) == {Direction.REQUEST, Direction.RESPONSE}]
            assert len(holders) == 1, message_id

    @defer.inlineCallbacks
    def test_a_worker_killed_under_load_is_restarted_and_loses_nothing_answered(self) -> Any:
        """kill -9 of a serving worker mid-load: the parent restarts it; every answered exchange is in a shard."""
        yield self.start()
        answered: list[str] = yield defer.Deferred.fromCoroutine(self.load("before", 8))
        shards = logged(self.provider_dept.root)
        busiest = max(shards, key=lambda s: len(shards[s]))
        victim = self.supervisor.pids()[busiest]
        assert victim is not None
        during = defer.Deferred.fromCoroutine(self.load("during", 16))
        os.kill(victim, signal.SIGKILL)
        answered += yield during
        yield self.supervisor.when_ready()
        assert self.supervisor.workers[busiest].restarts == 1
        assert self.supervisor.pids()[busiest] not in (None, victim)
        after: list[str] = yield defer.Deferred.fromCoroutine(self.load("after", 8))
        assert len(after) == 8  # served again by both workers
        answered += after
        yield self.supervisor.stopService()
        shards = logged(self.provider_dept.root)  # every chain verifies, the killed worker's shard included
        for message_id in answered:
            assert any(ids.get(message_id) == {Direction.REQUEST, Direction.RESPONSE} for ids in shards.values()), message_id

