"""Issue 16 with ``[server] workers = 2``: the soft token's login through the management API (worker 0) holds in
both workers.

The provider of tests/security_server/workers_federation.py with a PIN on its soft token and its management API on: the parent
(this test process) is logged in as ``fedbus server run`` logs in at start, so both workers start logged in; a
logout through the API (served by worker 0) makes every exchange through either worker refuse with X-Road's
code; a login through the API makes both serve again (each worker's shard gets new exchanges).
"""

from __future__ import annotations

import socket
from typing import Any

from twisted.internet import defer

from security_server.management.config import ManagementConfig
from security_server.service import ServerSettings
from security_server.signer.softtoken import SoftToken
from security_server.signer.softtoken_pin import LOGINS
from security_server.workers import WorkerSupervisor
from tests.e2e_federation import reactor
from tests.loopback import http
from tests.management_https import HttpsApiClient
from tests.security_server.management.api_setup import server_api_key
from tests.security_server.management.xroad_openapi import XROAD
from tests.security_server.workers_federation import SOAP, WorkersFederation, logged, soap

PIN = "Worker-PIN-1234"


def _free_port() -> int:
    """A loopback port free now (the management API of worker 0 listens on a configured port)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class WorkersPinTest(WorkersFederation):
    """Two workers, a soft token with a PIN, the management API in worker 0."""

    timeout = 300

    @defer.inlineCallbacks
    def start(self) -> Any:
        """The federation of the parent test; then a PIN on the provider's token and its parent restarted with the
        management API on."""
        yield super().start()
        yield self.supervisor.stopService()
        root = self.provider_dept.root
        token = SoftToken(root / "keys")
        token.set_pin(PIN)  # logs this process (the parent) in, as `fedbus server run` does at start
        self.addCleanup(LOGINS.forget, token.directory)
        self.port = _free_port()
        settings = ServerSettings(
            root=root, client_proxy_port=0, server_proxy_port=self.supervisor.settings.server_proxy_port,
            conf_refresh_seconds=3600, workers=2, management=ManagementConfig(port=self.port),
        )
        self.supervisor = WorkerSupervisor(reactor, settings)
        self.supervisor.startService()
        yield self.supervisor.when_ready()
        self.api = HttpsApiClient(root, self.port, server_api_key(root), XROAD)

    async def refusal(self, message_id: str) -> bytes:
        """One request that must not be answered by the provider: the consumer's fault body."""
        reply = await http(
            b"POST", f"http://127.0.0.1:{self.consumer_dept.service.client_proxy_port}/", soap(message_id), SOAP
        )
        assert reply.code != 200 or b"Fault>" in reply.body, reply.body
        return bytes(reply.body)

    async def until_both_shards_grow(self, prefix: str) -> None:
        """Exchanges until each worker's shard holds an answered one of this round's (whether every exchange of a
        round is answered is the parent test's subject, not this one's)."""
        for rounds in range(20):
            answered = await self.load(f"{prefix}{rounds}", 8)
            assert answered, f"nothing answered in round {rounds}"
            shards = logged(self.provider_dept.root)
            if all(any(i.startswith(prefix) for i in ids) for ids in shards.values()) and len(shards) == 2:
                return
        raise AssertionError("one worker never served")

    @defer.inlineCallbacks
    def test_a_logout_and_a_login_through_the_api_hold_in_both_workers(self) -> Any:
        """Logged in at start: both workers serve; logout through the API: every exchange is refused with
        X-Road's token_not_active; login through the API: both workers serve again."""
        yield self.start()
        yield defer.Deferred.fromCoroutine(self.until_both_shards_grow("start"))
        token = yield defer.Deferred.fromCoroutine(self.api.json("PUT", "/tokens/soft/logout", 200))
        assert token["logged_in"] is False
        faults = yield defer.gatherResults(
            [defer.Deferred.fromCoroutine(self.refusal(f"out-{n}")) for n in range(12)])
        assert all(b"token_not_active" in fault for fault in faults), faults[0]
        wrong = yield defer.Deferred.fromCoroutine(self.api.call("PUT", "/tokens/soft/login",
                                                                 json_body={"password": "nope"}))
        assert wrong[0] == 400 and b"pin_incorrect" in wrong[1]
        token = yield defer.Deferred.fromCoroutine(self.api.json("PUT", "/tokens/soft/login", 200,
                                                                 json_body={"password": PIN}))
        assert token["logged_in"] is True
        yield defer.Deferred.fromCoroutine(self.until_both_shards_grow("again"))
