"""A clustered registry: two nodes on one PostgreSQL database, each with its own configuration-signing key.

The anchor of either node lists both as configuration sources; a change made through one node is in the
configuration both publish; a configuration client fails over to the other node when the first is down.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from twisted.internet import defer
from twisted.trial import unittest

from central_registry.bootstrap import init_registry, join_registry
from central_registry.publisher import DIRECTORY_NAME
from central_registry.service import RegistryService
from security_server.confclient.client import ConfClient
from security_server.core.errors import ConfigurationError
from security_server.core.globalconf import parse_configuration_anchor
from security_server.core.identifiers import ClientId
from tests.loopback import REACTOR, free_port, now

reactor: Any = REACTOR
MEMBER = ClientId("EE", "GOV", "70000999")


@pytest.mark.usefixtures("shared_database")
class RegistryClusterTest(unittest.TestCase):
    """Two registry nodes sharing one database."""

    url: str
    tmp: Path
    timeout = 120

    def _nodes(self) -> list[RegistryService]:
        first, second = free_port(), free_port()
        init_registry(self.tmp / "r1", "EE", now(), public_url=f"http://127.0.0.1:{first}", ca_key_size=2048,
                      database_url=self.url)
        join_registry(self.tmp / "r2", now(), database_url=self.url)
        nodes = [
            RegistryService(reactor, self.tmp / "r1", http_port=first, database_url=self.url),
            RegistryService(reactor, self.tmp / "r2", http_port=second, database_url=self.url),
        ]
        for node in nodes:
            node.startService()
        return nodes

    @defer.inlineCallbacks
    def test_the_anchor_lists_every_node_and_clients_fail_over(self) -> Any:
        """Both anchors list both nodes; a member added through node 2 is downloaded from node 1, then from node 2
        alone once node 1 is down."""
        nodes = self._nodes()
        try:
            publishers = [node.publisher for node in nodes]
            anchors = [parse_configuration_anchor(p.anchor(now())) for p in publishers if p is not None]
            urls = {f"{node.public_url}/{DIRECTORY_NAME}" for node in nodes}
            assert {s.download_url for s in anchors[0].sources} == urls
            assert anchors[0].sources == anchors[1].sources
            assert len({s.verification_certs for s in anchors[0].sources}) == 2  # a signing key per node

            assert nodes[1].store is not None
            nodes[1].store.add_member(MEMBER, "Joined through node 2")
            for node in nodes:
                yield node.publish_now()
            client = ConfClient(reactor, anchors[0], self.tmp / "globalconf.bundle", interval_seconds=3600)
            result = yield client.refresh()
            assert result.applied, result.error
            assert MEMBER in {m.id for m in client.current().members()}

            # The node listed first goes down: the client takes the next source.
            first_url = anchors[0].sources[0].download_url
            down = next(node for node in nodes if f"{node.public_url}/{DIRECTORY_NAME}" == first_url)
            up = next(node for node in nodes if node is not down)
            yield down.stopService()
            nodes.remove(down)
            up_store = up.store
            assert up_store is not None
            up_store.set_setting("ocsp_freshness_seconds", "1800")  # a change the client can only get from `up`
            yield up.publish_now()
            result = yield client.refresh()
            assert result.applied, result.error
            assert client.current().ocsp_freshness_seconds == 1800
        finally:
            for node in nodes:
                yield node.stopService()

    def test_joining_needs_an_initialised_registry(self) -> None:
        """`join` on an empty database is refused, naming the first step."""
        with pytest.raises(ConfigurationError, match="registry init"):
            join_registry(self.tmp / "r2", now(), database_url=self.url)
        assert not (self.tmp / "r2").exists()
