"""All cores: ``[server] workers = N`` runs one security server as a parent and N worker processes on the same ports.

The parent (:class:`WorkerSupervisor`) opens the client-proxy and server-proxy listening sockets once and hands
them to every worker (file descriptors 3 and 4, security_server/worker_slot.py; the client proxy's HTTPS socket,
when ``[server] client-proxy-https-port`` is set, as 6: :data:`CLIENT_PROXY_HTTPS_FD`); each worker adopts them
(``adoptStreamPort``; the server proxy's wrapped in the same mutual TLS as ``listen_server_proxy``), so the kernel
spreads connections over the workers and a worker's death never closes a port. A worker is the whole
``make_service`` server built from the parent's own :class:`~security_server.service.ServerSettings` (sent
pickled on its stdin: one configuration, one key store), except that

* worker ``n`` writes message-log shard ``n`` (messagelog/shards.py: its own file and hash chain);
* the replay guard is the one file every worker shares (security_server/shared_replay_guard.py);
* what must run once per server runs in worker 0 only: the timestamper and the archiver, for every shard, and
  the health port; the other workers refuse new records when their shard's stamping has failed past the grace
  period (messagelog/shard_admission.py).

The soft token's login is the server's, not one worker's: a login, logout or PIN change through the management API
(worker 0) is announced by the worker (``LOGINS.announce``, security_server/signer/softtoken_pin.py) as a line on its
pipe to the parent (:data:`READY_FD`, kept open after ``ready``); the parent adopts it and writes it to every other
worker's stdin, and gives a worker it (re)starts every current login right after its order, before the worker
builds its proxies. A line carries the token directory and the PIN's derived secret (or null: logged out), never
the PIN; nothing is written to a file or a command line.

The parent restarts a worker that exits, after a delay that doubles while restarts keep failing
(:func:`restart_delay`); it sends SIGTERM to every worker when it stops and waits for them (SIGKILL after
``STOP_GRACE_SECONDS``). A worker stops when its parent's pipe on its stdin closes, so no worker outlives a
parent killed with -9. Nothing a killed worker had answered is lost: a caller is answered only after its records
are durable in the worker's shard (messagelog/writer.py).
"""

from __future__ import annotations

import json
import os
import pickle
import socket
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog
from twisted.application.service import Service
from twisted.internet.defer import Deferred, DeferredList, succeed
from twisted.internet.interfaces import IListeningPort
from twisted.internet.protocol import ProcessProtocol
from twisted.protocols.tls import TLSMemoryBIOFactory
from twisted.python.failure import Failure

from security_server.core.config import LoggingConfig
from security_server.signer.softtoken_pin import LOGINS
from security_server.worker_slot import CLIENT_PROXY_FD, READY_FD, SERVER_PROXY_FD, WorkerSlot

if TYPE_CHECKING:
    from twisted.web.server import Site

    from security_server.proxy.client_proxy_tls import InternalTlsOptions
    from security_server.service import ServerSettings
    from security_server.signer.token import Token

log = structlog.get_logger("fedbus.workers")

STOP_GRACE_SECONDS = 30.0
"""How long a stopping parent waits for its workers to drain before it kills them."""

FIRST_RESTART_DELAY = 0.5
MAX_RESTART_DELAY = 30.0
STABLE_SECONDS = 60.0
"""A worker that served this long before it died is restarted after the first delay again."""

LISTEN_BACKLOG = 1024

CLIENT_PROXY_HTTPS_FD = 6
"""The client proxy's HTTPS listening socket, when there is one, as the worker's file descriptor 6."""

MAX_LINE_BYTES = 64 * 1024
"""The longest line a worker and its parent exchange (a login line is a path and 64 hex digits)."""


def login_line(directory: Path, secret: bytes | None) -> bytes:
    """One login (``secret``) or logout (None) of the soft token in ``directory``, as a line between processes."""
    return json.dumps({"token": str(directory), "secret": None if secret is None else secret.hex()}).encode() + b"\n"


def logins_line(secrets: dict[Path, bytes]) -> bytes:
    """Every current login, the line a worker reads right after its order."""
    return json.dumps({"logins": {str(d): s.hex() for d, s in secrets.items()}}).encode() + b"\n"


def parse_login_line(line: bytes) -> tuple[Path, bytes | None]:
    """The directory and secret of a :func:`login_line`; ValueError for anything else."""
    data = json.loads(line)
    if not isinstance(data, dict) or set(data) != {"token", "secret"} or not isinstance(data["token"], str):
        raise ValueError("not a login line")
    secret = data["secret"]
    if secret is not None and (not isinstance(secret, str) or len(secret) != 64):
        raise ValueError("a login line's secret is 32 bytes in hex")
    return Path(data["token"]), None if secret is None else bytes.fromhex(secret)


def parse_logins_line(line: bytes) -> dict[Path, bytes]:
    """The logins of a :func:`logins_line`; ValueError for anything else."""
    data = json.loads(line)
    if not isinstance(data, dict) or set(data) != {"logins"} or not isinstance(data["logins"], dict):
        raise ValueError("not a logins line")
    found = {}
    for directory, secret in data["logins"].items():
        if not isinstance(secret, str) or len(secret) != 64:
            raise ValueError("a login's secret is 32 bytes in hex")
        found[Path(directory)] = bytes.fromhex(secret)
    return found


def restart_delay(failures: int) -> float:
    """Seconds before restarting a worker that died ``failures`` times in a row without serving for long."""
    return float(min(MAX_RESTART_DELAY, FIRST_RESTART_DELAY * 2 ** max(0, failures - 1)))


def open_listening_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (0: any free port) that worker processes can inherit."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(LISTEN_BACKLOG)
    sock.setblocking(False)
    sock.set_inheritable(True)
    return sock


def adopt_proxy_ports(
    reactor: Any, slot: WorkerSlot, client_site: Site, server_site: Site, token: Token,
    client_https: InternalTlsOptions | None = None,
) -> list[IListeningPort]:
    """Serve the client proxy and (with mutual TLS) the server proxy on the sockets the parent opened, and the client
    proxy over TLS with ``client_https`` on the third one when there is one."""
    from security_server.proxy.client_proxy_tls import https_factory
    from security_server.proxy.mtls import server_context_factory
    from security_server.proxy.peer_admission import admission_of

    ports: list[IListeningPort] = []
    server_tls = server_context_factory(token, client_policy=admission_of(server_site))  # its handshake gate
    sockets: list[tuple[int, Any]] = [
        (slot.client_proxy_fd, client_site),
        (slot.server_proxy_fd, TLSMemoryBIOFactory(server_tls, False, server_site)),  # type: ignore[arg-type]
    ]
    if client_https is not None:
        sockets.append((CLIENT_PROXY_HTTPS_FD, https_factory(client_site, client_https)))
    for fd, factory in sockets:
        probe = socket.socket(fileno=os.dup(fd))
        try:
            ports.append(reactor.adoptStreamPort(fd, probe.family, factory))
        finally:
            probe.close()
    return ports


@dataclass(frozen=True, slots=True)
class WorkerOrder:
    """What the parent sends a worker on its stdin: the server's settings, how to log, and its slot."""

    settings: ServerSettings
    slot: WorkerSlot
    logging: LoggingConfig | None = None


@dataclass(slots=True, eq=False)
class _Worker:
    """The parent's view of one worker slot."""

    index: int
    pid: int | None = None
    process: Any = None
    ready: bool = False
    started_at: float = 0.0
    failures: int = 0
    restarts: int = 0
    ended: Deferred[None] | None = None
    waiting_ready: list[Deferred[None]] = field(default_factory=list)


class _WorkerProtocol(ProcessProtocol):
    def __init__(self, supervisor: WorkerSupervisor, worker: _Worker) -> None:
        self.supervisor = supervisor
        self.worker = worker
        self._pending = b""

    def childDataReceived(self, childFD: int, data: bytes) -> None:
        if childFD != READY_FD:
            return
        self._pending += data
        while b"\n" in self._pending:
            line, self._pending = self._pending.split(b"\n", 1)
            self.supervisor._line(self.worker, line)
        if len(self._pending) > MAX_LINE_BYTES:
            log.warning("worker_line_too_long", worker=self.worker.index)
            self._pending = b""

    def processEnded(self, reason: Failure) -> None:
        self.supervisor._ended(self.worker, reason)


class WorkerSupervisor(Service):
    """The parent of a multi-process security server (see the module docstring)."""

    def __init__(
        self,
        reactor: Any,
        settings: ServerSettings,
        *,
        logging: LoggingConfig | None = None,
        python: str = sys.executable,
    ) -> None:
        if settings.workers < 1:
            raise ValueError("a server has at least one worker")
        self.reactor = reactor
        self.settings = settings
        self.logging = logging
        self.python = python
        self.workers = [_Worker(index) for index in range(settings.workers)]
        self._sockets: list[socket.socket] = []
        self._stopping = False
        self._restart_calls: dict[int, Any] = {}

    # --- what tests and status read ------------------------------------------------------------------------------

    @property
    def client_proxy_port(self) -> int:
        """The client proxy's port (useful when configured as 0)."""
        return int(self._sockets[0].getsockname()[1])

    @property
    def server_proxy_port(self) -> int:
        """The server proxy's port."""
        return int(self._sockets[1].getsockname()[1])

    def pids(self) -> list[int | None]:
        """Each worker's process id (None while it is being restarted)."""
        return [worker.pid for worker in self.workers]

    def when_ready(self) -> Deferred[None]:
        """Fires once every worker serves (again, after a restart)."""
        waiting = [self._when_ready(worker) for worker in self.workers]
        done: Deferred[None] = DeferredList(waiting, fireOnOneErrback=True).addCallback(lambda _: None)
        return done

    def _when_ready(self, worker: _Worker) -> Deferred[None]:
        if worker.ready:
            return succeed(None)
        waiting: Deferred[None] = Deferred()
        worker.waiting_ready.append(waiting)
        return waiting

    # --- lifecycle ---------------------------------------------------------------------------------------------

    def startService(self) -> None:
        """Open both listening sockets, then start every worker."""
        super().startService()  # type: ignore[no-untyped-call]
        self._stopping = False
        settings = self.settings
        self._sockets = [
            open_listening_socket(settings.client_proxy_host, settings.client_proxy_port),
            open_listening_socket(settings.server_proxy_host, settings.server_proxy_port),
        ]
        if settings.client_proxy_https_port:
            self._sockets.append(open_listening_socket(settings.client_proxy_host, settings.client_proxy_https_port))
        for worker in self.workers:
            self._spawn(worker)
        log.info(
            "worker_supervisor_started", workers=len(self.workers),
            client_proxy=self.client_proxy_port, server_proxy=self.server_proxy_port,
        )

    def _spawn(self, worker: _Worker) -> None:
        self._restart_calls.pop(worker.index, None)
        if self._stopping:
            return
        order = WorkerOrder(self.settings, WorkerSlot(worker.index, len(self.workers)), self.logging)
        worker.ready = False
        worker.ended = Deferred()
        worker.started_at = self.reactor.seconds()
        child_fds: dict[int, int | str] = {
            0: "w", 1: 1, 2: 2,
            CLIENT_PROXY_FD: self._sockets[0].fileno(),
            SERVER_PROXY_FD: self._sockets[1].fileno(),
            READY_FD: "r",
        }
        if len(self._sockets) > 2:
            child_fds[CLIENT_PROXY_HTTPS_FD] = self._sockets[2].fileno()
        worker.process = self.reactor.spawnProcess(
            _WorkerProtocol(self, worker),
            self.python,
            [self.python, "-m", "security_server.workers"],
            env=dict(os.environ),
            childFDs=child_fds,
        )
        worker.pid = worker.process.pid
        data = pickle.dumps(order)
        worker.process.write(len(data).to_bytes(8, "big") + data)  # stdin stays open: its closing stops the worker
        worker.process.write(logins_line(LOGINS.secrets()))  # the soft token's logins, before it builds its proxies
        log.info("worker_started", worker=worker.index, pid=worker.pid)

    def _line(self, worker: _Worker, line: bytes) -> None:
        """A line from a worker: ``ready PID``, or a soft token login or logout to adopt and pass to the others."""
        if line.startswith(b"ready"):
            self._ready(worker)
            return
        try:
            directory, secret = parse_login_line(line)
        except ValueError:
            log.warning("worker_line_refused", worker=worker.index)
            return
        LOGINS.adopt(directory, secret)
        for other in self.workers:
            if other is not worker and other.process is not None:
                other.process.write(login_line(directory, secret))
        log.info("token_login_relayed", worker=worker.index, logged_in=secret is not None)

    def _ready(self, worker: _Worker) -> None:
        if worker.ready:
            return
        worker.ready = True
        waiting, worker.waiting_ready = worker.waiting_ready, []
        for deferred in waiting:
            deferred.callback(None)

    def _ended(self, worker: _Worker, reason: Failure) -> None:
        ended, worker.ended = worker.ended, None
        status = getattr(reason.value, "exitCode", None)
        signal_number = getattr(reason.value, "signal", None)
        worker.pid, worker.process, worker.ready = None, None, False
        if ended is not None:
            ended.callback(None)
        if self._stopping:
            log.info("worker_stopped", worker=worker.index, status=status, signal=signal_number)
            return
        lived = self.reactor.seconds() - worker.started_at
        worker.failures = 1 if lived >= STABLE_SECONDS else worker.failures + 1
        worker.restarts += 1
        delay = restart_delay(worker.failures)
        log.warning(
            "worker_died", worker=worker.index, status=status, signal=signal_number, restart_in_seconds=delay
        )
        self._restart_calls[worker.index] = self.reactor.callLater(delay, self._spawn, worker)

    def stopService(self) -> Deferred[None]:
        """SIGTERM to every worker; wait for all (SIGKILL after the grace period); close the sockets."""
        super().stopService()  # type: ignore[no-untyped-call]
        self._stopping = True
        for call in self._restart_calls.values():
            if call.active():
                call.cancel()
        self._restart_calls.clear()
        waiting: list[Deferred[None]] = []
        for worker in self.workers:
            if worker.process is not None and worker.ended is not None:
                waiting.append(worker.ended)
                self._signal(worker, "TERM")
        kill = self.reactor.callLater(STOP_GRACE_SECONDS, self._kill_all)

        def close(_: object) -> None:
            if kill.active():
                kill.cancel()
            for sock in self._sockets:
                sock.close()
            self._sockets = []

        done: Deferred[None] = DeferredList(waiting).addBoth(close)
        return done

    def _kill_all(self) -> None:
        for worker in self.workers:
            if worker.process is not None:
                self._signal(worker, "KILL")

    @staticmethod
    def _signal(worker: _Worker, name: str) -> None:
        try:
            worker.process.signalProcess(name)
        except Exception:  # noqa: BLE001  # already gone: processEnded follows
            pass


# --- the worker process -------------------------------------------------------------------------------------------


def _stop_when_parent_goes(reactor: Any) -> None:
    """Adopt the logins the parent passes on; stop the reactor once stdin reaches end of file (the parent closed it
    or died)."""

    def watch() -> None:
        pending = b""
        try:
            while chunk := os.read(0, 4096):  # the raw descriptor: no buffer lock held at interpreter shutdown
                pending += chunk
                while b"\n" in pending:
                    line, pending = pending.split(b"\n", 1)
                    try:
                        LOGINS.adopt(*parse_login_line(line))
                    except ValueError:
                        log.warning("parent_line_refused")
                if len(pending) > MAX_LINE_BYTES:
                    pending = b""
        finally:
            reactor.callFromThread(lambda: reactor.running and reactor.stop())

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _read_line() -> bytes:
    """One line from stdin, read byte by byte from the raw descriptor (nothing after it is consumed)."""
    data = b""
    while not data.endswith(b"\n"):
        if len(data) > MAX_LINE_BYTES:
            raise SystemExit("the parent's logins line is too long")
        data += _read_exactly(1)
    return data[:-1]


def _announce_to_parent() -> None:
    """Send this worker's soft token logins, logouts and PIN changes to the parent (on :data:`READY_FD`)."""
    lock = threading.Lock()

    def relay(directory: Path, secret: bytes | None) -> None:
        with lock:
            os.write(READY_FD, login_line(directory, secret))  # a line is far below PIPE_BUF: written whole

    LOGINS.relay_to(relay)


def _read_exactly(size: int) -> bytes:
    """``size`` bytes from stdin (the parent's order), read from the raw descriptor."""
    data = b""
    while len(data) < size:
        chunk = os.read(0, size - len(data))
        if not chunk:
            raise SystemExit("the parent closed stdin before sending the worker's order")
        data += chunk
    return data


def worker_main() -> None:
    """``python -m security_server.workers``: read the order from stdin, serve, tell the parent, run until stopped."""
    order: WorkerOrder = pickle.loads(_read_exactly(int.from_bytes(_read_exactly(8), "big")))
    for directory, secret in parse_logins_line(_read_line()).items():
        LOGINS.adopt(directory, secret)
    _announce_to_parent()
    from twisted.internet import reactor as global_reactor

    from security_server.gc_tuning import tune_collector
    from security_server.logconfig import configure_logging
    from security_server.service import make_service

    if order.logging is not None:
        configure_logging(order.logging)
    reactor: Any = global_reactor
    server = make_service(reactor, order.settings, worker=order.slot)
    server.startService()
    reactor.addSystemEventTrigger("before", "shutdown", server.stopService)
    os.write(READY_FD, f"ready {os.getpid()}\n".encode())  # kept open: the soft token's logins go this way too
    _stop_when_parent_goes(reactor)
    log.info("worker_serving", worker=order.slot.index, of=order.slot.count, pid=os.getpid())
    reactor.callWhenRunning(tune_collector)  # security_server/gc_tuning.py
    reactor.run()


if __name__ == "__main__":
    worker_main()
