"""Both proxies decide with the global configuration in force at each request: a new configuration governs the
next exchange without a restart (issue 22 item 1).

The exchange bed of tests/federation/world.py (both proxies through the in-memory link, real keys, OCSP, server
configurations and message logs); the configuration is the box the configuration client would swap, changed
between two exchanges of the same running proxies. One test per value a server takes from the configuration:
OCSP freshness, approved CAs, members and their servers, the servers' clients, and the configuration's expiry.
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Any

from security_server.core.globalconf import GlobalConf
from security_server.core.globalconf.sharedparams import GlobalSettings
from tests.federation.world import CONSUMER, SS1, SS2, ExchangeBed, OwnOcsp, fault_code, global_conf, is_request
from tests.loopback import coroutine_test


def with_shared(conf: GlobalConf, **changes: Any) -> GlobalConf:
    """``conf`` with some shared parameters changed (a new publication of the registry)."""
    return dataclasses.replace(conf, shared=dataclasses.replace(conf.shared, **changes))


def with_freshness(conf: GlobalConf, seconds: int) -> GlobalConf:
    """``conf`` with another ``ocspFreshnessSeconds``."""
    settings = conf.shared.global_settings
    return with_shared(conf, global_settings=GlobalSettings(seconds, settings.member_classes))


class GlobalConfChangeTest(ExchangeBed):
    """The same running proxies, a new configuration between two exchanges."""

    async def assert_answered(self) -> None:
        """The consumer's system gets the provider's answer, not a fault."""
        status, _, answer = await self.send(is_request())
        assert status == 200
        assert b"Fault>" not in answer, answer.decode()

    @coroutine_test
    async def test_lowered_freshness_governs_the_receiving_side_at_once(self) -> None:
        """A two-minute-old stapled response passes under 3600 s, is refused under 60 s, passes again under 3600 s."""
        aged = OwnOcsp(self.pki.ca, lambda cert: timedelta(minutes=2))
        self.consumer = self.make_consumer(own_ocsp=aged)
        self.client_proxy = self.make_client_proxy(self.link, self.consumer)
        await self.assert_answered()
        base = self.conf_box[0]
        self.conf_box[0] = with_freshness(base, 60)
        await self.assert_fault(is_request(), "server.serverproxy.incorrect_validation_info")
        self.conf_box[0] = base
        await self.assert_answered()

    @coroutine_test
    async def test_approved_ca_removed_refuses_the_next_exchange(self) -> None:
        """With the CA no longer approved, the next exchange is refused before anything reaches the provider."""
        await self.assert_answered()
        calls = dict(self.service.calls)
        base = self.conf_box[0]
        self.conf_box[0] = with_shared(base, approved_cas=())
        _, _, answer = await self.send(is_request())
        assert fault_code(answer).startswith("server.clientproxy."), answer.decode()
        assert self.service.calls == calls
        self.conf_box[0] = base
        await self.assert_answered()

    @coroutine_test
    async def test_provider_server_removed_is_not_reached_at_the_next_exchange(self) -> None:
        """With the provider's server gone from the configuration, the next request finds no server to go to."""
        await self.assert_answered()
        base = self.conf_box[0]
        self.conf_box[0] = with_shared(base, security_servers=tuple(s for s in base.shared.security_servers if s.id != SS2))
        _, _, answer = await self.send(is_request())
        assert fault_code(answer) == "server.clientproxy.unknown_member", answer.decode()
        self.assert_nothing_delivered_since(1)
        self.conf_box[0] = base
        await self.assert_answered()

    def assert_nothing_delivered_since(self, count: int) -> None:
        """The link has delivered only the first ``count`` requests."""
        assert len(self.link.delivered) == count

    @coroutine_test
    async def test_client_no_longer_on_its_server_is_refused_at_the_next_exchange(self) -> None:
        """When the configuration no longer lists the client on its server, the next request is refused."""
        await self.assert_answered()
        base = self.conf_box[0]
        servers = tuple(
            dataclasses.replace(s, clients=tuple(c for c in s.clients if c != CONSUMER)) if s.id == SS1 else s
            for s in base.shared.security_servers
        )
        self.conf_box[0] = with_shared(base, security_servers=servers)
        await self.assert_fault(is_request(), "server.clientproxy.unknown_member")
        self.conf_box[0] = base
        await self.assert_answered()

    @coroutine_test
    async def test_expired_then_renewed_configuration(self) -> None:
        """A configuration past its expiry refuses with global_conf_outdated; the next, valid one serves again."""
        await self.assert_answered()
        self.conf_box[0] = global_conf(self.pki, expires_in=-timedelta(seconds=1))
        await self.assert_fault(is_request(), "server.clientproxy.global_conf_outdated")
        self.conf_box[0] = global_conf(self.pki)
        await self.assert_answered()
