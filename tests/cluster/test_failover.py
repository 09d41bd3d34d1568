"""Issue 19, a real test of failure: two provider nodes behind HAProxy, one PostgreSQL, steady SOAP load.

Everything is real and on loopback. The test process runs the registry (CA, OCSP, TSA, published configuration),
the provider's SOAP service and the consumer's security server (:mod:`tests.e2e_federation`); the provider's
security server ``ss2`` is two ``fedbus server run`` processes sharing one configuration database in a
PostgreSQL server of this test's own (``initdb``/``pg_ctl``, :mod:`tests.postgres`), with copies of one soft
token (the documented copy step), behind HAProxy in TCP mode (mutual TLS passes through to the nodes) with
``option httpchk`` against each node's health port. The registered address of ``ss2`` is HAProxy's.

Under a bounded load of SOAP calls (a few at a time): ``kill -9`` of node 1 fails at most the calls in flight, and
those with an X-Road fault; the calls after it are answered by node 2; node 1 restarted rejoins (HAProxy sees it
up). PostgreSQL stopped: exchanges continue on the nodes' cached configuration, a configuration write fails
naming ``[database] url``; PostgreSQL started again: writes work and exchanges continue. At the end every
answered call is in one of the two nodes' message logs, request and response. No assertion depends on timing:
waits are bounded loops over a state (a health answer, HAProxy's view).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from lxml import etree
from twisted.internet import defer, task
from twisted.internet.threads import deferToThread
from twisted.trial.unittest import SkipTest

from central_registry.trust.ca import DevelopmentCA
from security_server import registration
from security_server.core.acl import AccessRight
from security_server.core.config import DatabaseConfig
from security_server.core.errors import DatabaseError
from security_server.core.identifiers import SecurityServerId
from security_server.core.logchain import Direction
from security_server.core.soap import SoapHeader, build_envelope
from security_server.messagelog.store import MessageLogStore
from security_server.serverconf.store import ClientState, ServerConfStore, ServiceKind
from security_server.service import ServerSettings, make_service
from security_server.signer.softtoken import KeyAlgorithm, KeyKind, SoftToken
from tests import e2e_federation as federation
from tests.e2e_federation import CONSUMER, CONSUMER_MEMBER, PROVIDER, PROVIDER_MEMBER, SERVICE
from tests.federation.ca import issue_into_token
from tests.loopback import REACTOR, free_port, now
from tests.postgres import PostgresServer, postgres_bin_dir, start_postgres
from tests.security_server.proxy.rest_provider import Reply, http_call

reactor: Any = REACTOR

CONCURRENCY = 4
"""Calls in flight at once: at most this many may fail when a node is killed."""
SOAP_HEADERS = {"Content-Type": "text/xml; charset=UTF-8", "SOAPAction": '""'}
FEDBUS = str(Path(sys.executable).parent / "fedbus")
WAIT_STEPS = 1200
"""Bound on every wait loop (of 0.1 s steps): a wait that never ends fails the test instead."""


@dataclass
class Node:
    """One provider node: its directory, ports and (while running) its process."""

    name: str
    root: Path
    server_proxy_port: int
    health_port: int
    process: subprocess.Popen[bytes] | None = None

    @property
    def messagelog(self) -> Path:
        return self.root / "messagelog.db"


def soap_call(query_id: str) -> bytes:
    """A SOAP 4.0 request of the consumer's system for the provider's getRandom."""
    body = etree.Element(etree.QName("http://test.fedbus.example/producer", "getRandom"))
    etree.SubElement(body, "seed").text = "42"
    return build_envelope(SoapHeader(client=CONSUMER, service=SERVICE, id=query_id), body)


def fault_code(reply: Reply) -> str | None:
    """The SOAP fault code of a reply, or None when it is an answer."""
    if reply.status == 200 and b"Fault>" not in reply.body:
        return None
    found = etree.fromstring(reply.body).findtext(".//faultcode")
    return found or f"HTTP {reply.status} without a fault code"


def _faults(results: list[tuple[str, str | None]]) -> list[tuple[str, str]]:
    return [(query_id, code) for query_id, code in results if code is not None]


class ProviderClusterFailover(federation.TwoDepartmentFederation):
    """Kill a provider node, stop PostgreSQL: the cluster keeps answering."""

    timeout = 600

    def setUp(self) -> None:
        bin_dir = postgres_bin_dir()
        if bin_dir is None or shutil.which("haproxy") is None:
            if os.environ.get("CI"):
                self.fail("CI must run the cluster test: install the Debian packages postgresql and haproxy")
            raise SkipTest("needs PostgreSQL (postgresql) and HAProxy (haproxy)")
        super().setUp()
        self.pg: PostgresServer = start_postgres(bin_dir)
        self.addCleanup(self.pg.stop)
        self.url = self.pg.url("postgres")
        self.haproxy: subprocess.Popen[bytes] | None = None
        self.nodes: list[Node] = []
        self.addCleanup(self._kill_processes)

    def _kill_processes(self) -> None:
        for process in [*(n.process for n in self.nodes), self.haproxy]:
            if process is not None and process.poll() is None:
                process.kill()
                process.wait(timeout=30)

    # --- waiting, without timing assertions ----------------------------------------------------------------

    @defer.inlineCallbacks
    def wait_for(self, what: str, condition: Callable[[], Any]) -> Any:
        """Poll ``condition`` (run in a thread) until true; fail after WAIT_STEPS tries."""
        for _ in range(WAIT_STEPS):
            done = yield deferToThread(condition)
            if done:
                return
            yield task.deferLater(reactor, 0.1, lambda: None)
        self.fail(f"gave up waiting for {what}: {self._logs()}")

    def _logs(self) -> str:
        tails = []
        for node in self.nodes:
            path = node.root / "node.log"
            if path.exists():
                tails.append(f"--- {node.name}\n" + path.read_text(errors="replace")[-3000:])
        haproxy = self.tmp / "haproxy.log"
        if haproxy.exists():
            tails.append("--- haproxy\n" + haproxy.read_text(errors="replace")[-2000:])
        return "\n".join(tails)

    @staticmethod
    def _healthy(node: Node) -> bool:
        try:
            return http_call(node.health_port, "GET", "/", {}).status == 200
        except OSError:
            return False

    def _haproxy_status(self) -> dict[str, str]:
        """HAProxy's view of the backend's servers (``show stat`` on its admin socket): name -> UP/DOWN/..."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as admin:
            admin.settimeout(10)
            admin.connect(str(self.tmp / "haproxy.sock"))
            admin.sendall(b"show stat\n")
            data = b""
            while chunk := admin.recv(65536):
                data += chunk
        lines = data.decode().splitlines()
        header = lines[0].lstrip("# ").split(",")
        status: dict[str, str] = {}
        for line in lines[1:]:
            row = dict(zip(header, line.split(",")))
            if row.get("pxname") == "nodes" and row.get("svname", "").startswith("node"):
                status[row["svname"]] = row["status"]
        return status

    def _health_of(self, node: Node) -> Callable[[], bool]:
        return lambda: self._healthy(node)

    def _up_in_haproxy(self, name: str) -> Callable[[], bool]:
        return lambda: self._haproxy_status().get(name) == "UP"

    # --- the provider's cluster -----------------------------------------------------------------------------

    @defer.inlineCallbacks
    def register_provider(self, anchor: bytes, lb_port: int) -> Any:
        """Initialise ss2 in PostgreSQL, certify its keys, register it at HAProxy's address with its subsystem."""
        root = self.tmp / "node1"
        root.mkdir()
        server_id = SecurityServerId(PROVIDER_MEMBER, "ss2")
        with ServerConfStore(root / "serverconf.db", database_url=self.url) as store:
            store.initialise(PROVIDER_MEMBER, server_id.server_code, anchor)
            store.add_client(PROVIDER)
        token = SoftToken(root / "keys")
        ca = DevelopmentCA.open(self.paths.ca)
        issue_into_token(token, ca, KeyKind.AUTH, server_id, KeyAlgorithm.RSA2048, now(), "Provider cluster")
        issue_into_token(token, ca, KeyKind.SIGN, PROVIDER_MEMBER, KeyAlgorithm.RSA2048, now(), "Provider cluster")
        # The registration steps run once, from node 1's directory, by the server object `fedbus server run` starts.
        svc = make_service(reactor, ServerSettings(
            root=root, client_proxy_port=0, server_proxy_port=0, conf_refresh_seconds=3600,
            database=DatabaseConfig(self.url),
        ))
        svc.startService()
        try:
            result = yield svc.conf_client.refresh()
            assert result.applied, result.error
            svc.restart_ocsp()
            _, sign_cert = token.signing_key(PROVIDER_MEMBER)
            assert svc.ocsp is not None
            yield svc.ocsp.refresh(sign_cert)
            content_type, body = registration.auth_cert_reg(
                token, server_id, f"127.0.0.1:{lb_port}", svc.ocsp.current(sign_cert)
            )
            answer = yield registration.submit(reactor, svc.conf_client.current().management_service, content_type, body)
            assert answer["status"] == "approved"
            yield self.registry.publish_now()
            yield svc.conf_client.refresh()
            content_type, body = registration.client_reg(token, server_id, PROVIDER, svc.ocsp.current(sign_cert))
            answer = yield registration.submit(reactor, svc.conf_client.current().management_service, content_type, body)
            assert answer["status"] == "approved"
            yield self.registry.publish_now()
            yield svc.conf_client.refresh()
        finally:
            yield svc.stopService()
        with ServerConfStore(root / "serverconf.db", database_url=self.url) as store:
            store.set_client_state(PROVIDER, ClientState.REGISTRATION_IN_PROGRESS)
            store.set_client_state(PROVIDER, ClientState.REGISTERED)
            port = self.provider_port.getHost().port
            store.add_service(SERVICE, url=f"http://127.0.0.1:{port}/echo", kind=ServiceKind.SOAP, timeout_seconds=30)
            store.grant(AccessRight.for_service(CONSUMER, SERVICE))

    def make_nodes(self) -> None:
        """Node 2's directory: copies of node 1's token, stored global configuration and OCSP responses."""
        first = Node("node1", self.tmp / "node1", free_port(), free_port())
        second = Node("node2", self.tmp / "node2", free_port(), free_port())
        second.root.mkdir()
        shutil.copytree(first.root / "keys", second.root / "keys")  # the key copy step (docs/clustering.md)
        shutil.copy2(first.root / "globalconf.bundle", second.root / "globalconf.bundle")
        if (first.root / "ocsp").is_dir():
            shutil.copytree(first.root / "ocsp", second.root / "ocsp")
        for node in (first, second):
            (node.root / "node.ini").write_text(
                "[server]\n"
                f"client-proxy-port = {free_port()}\nserver-proxy-port = {node.server_proxy_port}\n"
                "conf-refresh-seconds = 3600\n"
                f"[healthcheck]\nport = {node.health_port}\n"
                f"[management]\nport = {free_port()}\n"
                f"[database]\nurl = {self.url}\n",
                encoding="utf-8",
            )
        self.nodes = [first, second]

    def start_node(self, node: Node) -> None:
        """``fedbus server run`` for the node, its output in ``node.log``."""
        with (node.root / "node.log").open("ab") as out:
            node.process = subprocess.Popen(
                [FEDBUS, "server", "run", "--dir", str(node.root), "--config", str(node.root / "node.ini")],
                cwd=node.root, stdout=out, stderr=subprocess.STDOUT,
            )

    def start_haproxy(self, lb_port: int) -> None:
        """HAProxy: TCP passthrough to both nodes' server proxies, health checked on their health ports."""
        servers = "\n".join(
            f"  server {n.name} 127.0.0.1:{n.server_proxy_port} check port {n.health_port}" for n in self.nodes
        )
        config = self.tmp / "haproxy.cfg"
        config.write_text(
            "global\n"
            f"  stats socket {self.tmp / 'haproxy.sock'} mode 600 level admin\n"
            "defaults\n  mode tcp\n  timeout connect 2s\n  timeout client 60s\n  timeout server 60s\n"
            # A slow health answer on a busy machine must not take a healthy node out (the default check
            # timeout is the interval).
            "  timeout check 10s\n"
            "  retries 3\n  option redispatch\n"
            f"frontend ss2\n  bind 127.0.0.1:{lb_port}\n  default_backend nodes\n"
            "backend nodes\n  balance roundrobin\n  option httpchk GET /\n  http-check expect status 200\n"
            "  default-server inter 500ms fall 3 rise 2 on-marked-down shutdown-sessions\n"
            f"{servers}\n",
            encoding="utf-8",
        )
        with (self.tmp / "haproxy.log").open("ab") as out:
            self.haproxy = subprocess.Popen(["haproxy", "-db", "-f", str(config)], stdout=out, stderr=subprocess.STDOUT)

    # --- load ------------------------------------------------------------------------------------------------

    @defer.inlineCallbacks
    def load(
        self, consumer_port: int, tag: str, count: int, *, after: tuple[int, Callable[[], None]] | None = None
    ) -> Any:
        """``count`` calls, CONCURRENCY at a time; ``after = (n, action)`` runs ``action`` once n were answered.
        Returns (query id, fault code or None) per call."""
        results: list[tuple[str, str | None]] = []
        numbers = iter(range(count))
        acted = [after is None]

        @defer.inlineCallbacks
        def worker() -> Any:
            for number in numbers:
                query_id = f"{tag}-{number}"
                reply = yield deferToThread(http_call, consumer_port, "POST", "/", SOAP_HEADERS, soap_call(query_id))
                results.append((query_id, fault_code(reply)))
                if after is not None and not acted[0] and len(results) >= after[0]:
                    acted[0] = True
                    after[1]()

        yield defer.gatherResults([worker() for _ in range(CONCURRENCY)], consumeErrors=True)
        return results

    def kill(self, node: Node) -> None:
        """``kill -9``."""
        assert node.process is not None
        node.process.send_signal(signal.SIGKILL)
        node.process.wait(timeout=30)

    # --- the test --------------------------------------------------------------------------------------------

    @defer.inlineCallbacks
    def test_kill_a_node_and_stop_postgresql_under_load(self) -> Any:
        """kill -9 fails at most the calls in flight; node 2 answers the rest; PostgreSQL down keeps exchanges going."""
        yield self.registry.publish_now()
        anchor = self.anchor()
        lb_port = free_port()
        consumer = yield self.add_department(1, CONSUMER_MEMBER, CONSUMER, anchor)
        yield self.register_provider(anchor, lb_port)
        self.make_nodes()
        first, second = self.nodes
        for node in self.nodes:
            self.start_node(node)
        self.start_haproxy(lb_port)
        for node in self.nodes:
            yield self.wait_for(f"{node.name} healthy", self._health_of(node))
            yield self.wait_for(f"{node.name} up in HAProxy", self._up_in_haproxy(node.name))
        yield self.catch_up(consumer)
        port = consumer.service.client_proxy_port

        # Steady load; node 1 killed a third of the way through.
        before = yield self.load(port, "kill", 60, after=(20, lambda: self.kill(first)))
        failed = [(q, code) for q, code in before if code is not None]
        assert len(failed) <= CONCURRENCY, (failed, self._logs())
        assert all(code.lower().startswith("server.") for _, code in failed), failed
        during = yield self.load(port, "down", 20)
        assert _faults(during) == [], (_faults(during), self._logs())

        # Node 1 restarted: healthy again and back in HAProxy's rotation, without any step by hand.
        self.start_node(first)
        yield self.wait_for("node1 healthy again", self._health_of(first))
        yield self.wait_for("node1 up in HAProxy again", self._up_in_haproxy("node1"))
        rejoined = yield self.load(port, "rejoined", 20)
        assert _faults(rejoined) == [], (_faults(rejoined), self._logs())

        # PostgreSQL stopped: exchanges go on from the cached configuration; a configuration write fails clearly.
        stopped = self.pg.run(str(self.pg.bin_dir / "pg_ctl"), "-D", str(self.pg.data), "-m", "fast", "-w", "stop")
        assert stopped.returncode == 0, stopped.stderr
        without_db = yield self.load(port, "nodb", 20)
        assert _faults(without_db) == [], (_faults(without_db), self._logs())
        error = yield deferToThread(self._write_fails)
        assert "[database] url" in error and self.pg.password not in error
        yield self._start_postgres_again()
        yield deferToThread(self._write_works)
        recovered = yield self.load(port, "recovered", 20)
        assert _faults(recovered) == [], (_faults(recovered), self._logs())

        # Nothing answered is missing: each answered call is in a node's log, request and response.
        for node in self.nodes:
            assert node.process is not None
            node.process.send_signal(signal.SIGTERM)
            node.process.wait(timeout=60)
        answered = [q for q, code in [*before, *during, *rejoined, *without_db, *recovered] if code is None]
        served: dict[str, set[Direction]] = {}
        per_node: dict[str, int] = {}
        for node in self.nodes:
            with MessageLogStore(node.messagelog) as store:
                for query_id in answered:
                    records = store.find(query_id)
                    if records:
                        per_node[node.name] = per_node.get(node.name, 0) + 1
                    served.setdefault(query_id, set()).update(r.direction for r in records if r.succeeded)
        missing = [q for q in answered if served.get(q) != {Direction.REQUEST, Direction.RESPONSE}]
        assert missing == [], missing
        assert set(per_node) == {"node1", "node2"}, per_node  # both nodes answered part of the load
        assert any(q.startswith("down-") for q in answered)
        assert second.process is not None and second.process.returncode is not None

    def _write_fails(self) -> str:
        try:
            with ServerConfStore(self.tmp / "unused.db", database_url=self.url) as store:
                store.grant(AccessRight.for_service(CONSUMER_MEMBER, SERVICE))
        except DatabaseError as err:
            return f"{err.message} {err.reason or ''}"
        raise AssertionError("a configuration write succeeded with PostgreSQL stopped")

    def _write_works(self) -> None:
        with ServerConfStore(self.tmp / "unused.db", database_url=self.url) as store:
            store.grant(AccessRight.for_service(CONSUMER_MEMBER, SERVICE))

    def _start_postgres_again(self) -> defer.Deferred[None]:
        pg = self.pg
        options = (
            f"-p {pg.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={pg.root}"
            " -F -c full_page_writes=off -c synchronous_commit=off -c shared_buffers=16MB -c max_connections=100"
        )

        def start() -> None:
            started = pg.run(str(pg.bin_dir / "pg_ctl"), "-D", str(pg.data), "-l", str(pg.root / "server.log"),
                             "-o", options, "-w", "-t", "60", "start")
            assert started.returncode == 0, started.stderr

        return deferToThread(start)
