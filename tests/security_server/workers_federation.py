"""Issue 18's federation with a provider run as a parent and two worker processes: what its tests share.

The federation of tests/e2e_federation.py, with the provider's in-process server replaced (after registration) by
``WorkerSupervisor`` running two real worker processes on the registered server-proxy port
(tests/security_server/test_workers_e2e.py, test_workers_pin_e2e.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lxml import etree
from twisted.internet import defer

from security_server.core.acl import AccessRight
from security_server.core.logchain import Direction
from security_server.core.soap import SoapHeader, build_envelope
from security_server.messagelog.shards import shard_paths
from security_server.messagelog.store import MessageLogStore
from security_server.serverconf.store import ServerConfStore, ServiceKind
from security_server.service import ServerSettings, make_service
from security_server.workers import WorkerSupervisor
from tests import e2e_federation as federation
from tests.e2e_federation import CONSUMER, CONSUMER_MEMBER, PROVIDER, PROVIDER_MEMBER, SERVICE, reactor
from tests.loopback import http

SOAP = b"text/xml; charset=utf-8"


def soap(message_id: str) -> bytes:
    """A getRandom request from the consumer's system, with its own message id."""
    wrapper = etree.Element(etree.QName("http://test.fedbus.example/producer", "getRandom"))
    etree.SubElement(wrapper, "seed").text = "42"
    return build_envelope(SoapHeader(client=CONSUMER, service=SERVICE, id=message_id), wrapper)


def logged(root: Path) -> dict[int, dict[str, set[Direction]]]:
    """Per shard of the log in ``root``: each message id and the directions logged for it (each chain verified)."""
    found: dict[int, dict[str, set[Direction]]] = {}
    for index, path in shard_paths(root):
        with MessageLogStore(path) as store:
            store.verify()
            ids: dict[str, set[Direction]] = {}
            for record in store.records(since=0):
                ids.setdefault(record.query_id, set()).add(record.direction)
            found[index] = ids
    return found


class WorkersFederation(federation.TwoDepartmentFederation):
    """Two worker processes behind one server-proxy port (the tests are the subclasses')."""

    timeout = 300

    @defer.inlineCallbacks
    def start(self) -> Any:
        """Register both departments, then restart the provider as a parent with two workers."""
        yield self.registry.publish_now()
        anchor = self.anchor()
        self.consumer_dept = yield self.add_department(1, CONSUMER_MEMBER, CONSUMER, anchor)
        self.provider_dept = yield self.add_department(2, PROVIDER_MEMBER, PROVIDER, anchor)
        with ServerConfStore(self.provider_dept.root / "serverconf.db") as conf_store:
            port = self.provider_port.getHost().port
            conf_store.add_service(SERVICE, url=f"http://127.0.0.1:{port}/echo", kind=ServiceKind.SOAP, timeout_seconds=30)
            conf_store.grant(AccessRight.for_service(CONSUMER, SERVICE))
        yield self.catch_up(self.consumer_dept, self.provider_dept)
        # The consumer opens a new connection for every exchange, so the kernel spreads them over the workers.
        yield self.consumer_dept.service.stopService()
        self.consumer_dept.service = make_service(reactor, ServerSettings(
            root=self.consumer_dept.root, client_proxy_port=0, server_proxy_port=0, conf_refresh_seconds=3600,
            peer_pool_size=0,
        ))
        self.consumer_dept.service.startService()
        registered_port = self.provider_dept.service.server_proxy_port
        yield self.provider_dept.service.stopService()
        self.departments.remove(self.provider_dept)
        settings = ServerSettings(
            root=self.provider_dept.root, client_proxy_port=0, server_proxy_port=registered_port,
            conf_refresh_seconds=3600, workers=2,
        )
        self.supervisor = WorkerSupervisor(reactor, settings)
        self.supervisor.startService()
        self.addCleanup(self.stop_supervisor)
        yield self.supervisor.when_ready()

    def stop_supervisor(self) -> Any:
        """Stop the parent (SIGTERM to the workers) unless the test did."""
        return self.supervisor.stopService() if self.supervisor.running else None

    async def exchange(self, message_id: str) -> bool:
        """One request through the consumer's server; True when the provider's answer came back."""
        try:
            reply = await http(
                b"POST", f"http://127.0.0.1:{self.consumer_dept.service.client_proxy_port}/", soap(message_id), SOAP
            )
        except Exception:  # noqa: BLE001  # a connection lost with a killed worker is not an answer
            return False
        return reply.code == 200 and b"Fault>" not in reply.body and f">{message_id}</".encode() in reply.body

    async def load(self, prefix: str, count: int, concurrency: int = 4) -> list[str]:
        """``count`` exchanges, ``concurrency`` at a time; the ids that were answered."""
        answered: list[str] = []
        for start in range(0, count, concurrency):
            ids = [f"{prefix}-{n}" for n in range(start, min(count, start + concurrency))]
            results = await defer.gatherResults([defer.Deferred.fromCoroutine(self.exchange(i)) for i in ids])
            answered += [i for i, ok in zip(ids, results) if ok]
        return answered
