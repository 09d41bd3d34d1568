"""A soft token with a PIN in real exchanges: a logout while exchanges run refuses the next one cleanly with
X-Road's signer code, a login lets them through again, and the health check follows the login."""

from __future__ import annotations

import shutil

from security_server.signer.softtoken import SoftToken
from security_server.signer.softtoken_pin import LOGINS
from security_server.signer.token_health import signing_tokens_problem
from security_server.signer.token_workers import TokenWorkers
from tests.federation.world import ExchangeBed, fault_code, is_request
from tests.loopback import REACTOR, coroutine_test

PIN = "Secret-1234"


class PinExchangeTest(ExchangeBed):
    """ss1's soft token (a copy of the test PKI's) has a PIN and is logged in."""

    def setUp(self) -> None:
        super().setUp()
        copy = self.tmp / "consumer-keys"
        shutil.copytree(self.pki.consumer_token.directory, copy)
        self.token = SoftToken(copy)
        self.token.set_pin(PIN)
        self.addCleanup(LOGINS.forget, copy)
        self.consumer = self.make_consumer(token=self.token)
        self.client_proxy = self.make_client_proxy(self.link)

    @coroutine_test
    async def test_logout_refuses_the_next_exchange_and_login_lets_them_through(self) -> None:
        """Logged in: 200; logged out: the IS gets a fault naming token_not_active, nothing reaches the provider,
        the proxy keeps serving; logged in again: 200."""
        status, _, _ = await self.send(is_request(query_id="pin-1"))
        assert status == 200
        delivered = len(self.link.delivered)
        self.token.logout()
        _, content_type, answer = await self.send(is_request(query_id="pin-2"))
        assert content_type.startswith("text/xml")
        assert fault_code(answer).lower() == "server.clientproxy.token_not_active", fault_code(answer)
        assert len(self.link.delivered) == delivered
        SoftToken(self.token.directory).login(PIN)  # another object on the same folder: the API's
        status, _, _ = await self.send(is_request(query_id="pin-3"))
        assert status == 200

    @coroutine_test
    async def test_the_health_check_fails_while_the_soft_token_is_logged_out(self) -> None:
        """signing_tokens_problem names the soft token while it is logged out, and is None once logged in."""
        workers = TokenWorkers(REACTOR)
        assert await signing_tokens_problem([self.token], workers) is None
        self.token.logout()
        problem = await signing_tokens_problem([self.token], workers)
        assert problem is not None and "soft" in problem and "logged-out" in problem
        self.token.login(PIN)
        assert await signing_tokens_problem([self.token], workers) is None
        workers.stop()
