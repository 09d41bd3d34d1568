"""The processes the benchmark drives: the echo provider, the bare-hop pair, and a federation of two security servers.

The federation is set up exactly as ``fedbus demo`` sets it up (adapters/demo: the registry, both departments'
servers, keys, certificates, authCertReg and clientReg, every step a real ``fedbus`` command logged in
``logs/commands.log``), except that the provider system is the benchmark's echo provider, published as
``examples/benchEcho/v1`` (SOAP) and ``examples/benchRest`` (REST) with access rights for the Tax Board's
``tax-app``. The security servers run through ``bench/ss_launcher.py`` (``fedbus server run`` plus the
evidence services and the levers), in a supervisor of their own, so they can be restarted with other levers
while the registry and the providers keep running.

For the measurements the servers are restarted with a benchmark configuration layer: the production default
refresh of the global configuration (60 s instead of the demo's 2 s) and batch timestamping every
``timestamp_interval`` seconds. Every process runs in its own process group and is stopped by
:meth:`BenchProcesses.stop` (SIGTERM to the group, SIGKILL after a bounded wait).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, TextIO

from adapters.demo.commands import Fedbus
from adapters.demo.federation import (
    CONSUMER,
    DEPARTMENTS,
    POPULATION,
    TAX_BOARD,
    Department,
    DemoPorts,
    Layout,
    port_in_use,
)
from adapters.demo.processes import Managed, Supervisor
from adapters.demo.progress import Progress, StepFailed
from adapters.demo.script import DemoScript, Retry, Step
from bench.workload import BENCH_REST, BENCH_SOAP, Protocol, request_for
from security_server.core.identifiers import ServiceId

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
_CLEAN_ENV = ("FEDBUS_REGISTRY_DIR", "FEDBUS_SERVER_DIR")
SOFTHSM_MODULES = ("/usr/lib/softhsm/libsofthsm2.so", "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so")
HSM_PIN = "123456"
_SETUP_STEPS = (
    "configure", "registry-init", "registry-settings", "members", "registry-start", "anchor", "ss-tax-setup",
    "ss-pop-setup", "servers-start", "servers-register", "clients-register",
)
"""The demo's own steps the benchmark runs, in the demo's order; the providers and calls are the benchmark's."""


@dataclass(frozen=True, slots=True)
class BenchPorts:
    """The demo's port plan from ``base``, and three more ports after it: echo provider, first and second hop."""

    demo: DemoPorts

    @property
    def echo(self) -> int:
        """The echo provider."""
        return self.demo.base + 35

    @property
    def hop1(self) -> int:
        """The first bare hop (wrk sends here)."""
        return self.demo.base + 36

    @property
    def hop2(self) -> int:
        """The second bare hop."""
        return self.demo.base + 37

    def all(self) -> list[tuple[str, int]]:
        """Every port with what uses it."""
        return [*self.demo.named(), ("echo provider", self.echo), ("bare hop 1", self.hop1), ("bare hop 2", self.hop2)]


def free_ports(first_base: int, attempts: int = 40, step: int = 50) -> BenchPorts:
    """The first port plan from ``first_base`` on (in steps of ``step``) whose every port is free on 127.0.0.1."""
    for index in range(attempts):
        ports = BenchPorts(DemoPorts(first_base + index * step))
        if not any(port_in_use(port) for _, port in ports.all()):
            return ports
    raise RuntimeError(f"no free block of ports from {first_base} in {attempts} attempts")


@dataclass(frozen=True, slots=True)
class Levers:
    """How the security servers run: the benchmark's switches (None = the service's own default)."""

    synchronous: str | None = None
    """The message log's SQLite ``synchronous``: FULL (the default) or NORMAL."""
    max_idle: int | None = None
    """Idle mutual-TLS connections kept per peer (default 64; 0 = a new connection per exchange)."""
    evidence: bool = True
    """Batch timestamping (and the archiver) on."""
    verdict_cache: bool = True
    """Trust verdicts remembered between messages (off: every check redone in full; see ss_launcher)."""
    batch_signing: bool = True
    """The messages of one reactor turn and one member share a signature (off: one RSA signature each)."""
    agent_provider_client: bool = False
    """SOAP providers called with Twisted's Agent instead of the lean pooled client."""
    opmon: bool = True
    """Operational monitoring: every exchange recorded and counted (off: ``[opmon] enabled = false``)."""
    signing_keys_in_hsm: bool = False
    """The members' signing keys in a SoftHSM2 token per server (``[pkcs11:hsm]`` in the bench layer, docs/hsm.md);
    off: the soft token's keys, as the demo made them."""
    workers: int = 1
    """Worker processes per security server (``[server] workers``; issue 18)."""
    gc_tuning: bool = True
    """The collector tuned once serving (security_server/gc_tuning.py, as ``fedbus server run``); off: CPython's
    defaults."""

    heap_trim: bool = True
    """Freed heap memory given back every minute (security_server/heap_trim.py); off: ``heap-trim-seconds = 0``."""
    census_every: float = 0.0
    """Diagnosis, not a lever: a memory census (bench/memory_census.py) every so many seconds (0: none)."""

    def args(self) -> list[str]:
        """The launcher's arguments for these levers."""
        args: list[str] = []
        if self.synchronous is not None:
            args += ["--synchronous", self.synchronous]
        if self.max_idle is not None:
            args += ["--max-idle", str(self.max_idle)]
        if not self.evidence:
            args.append("--no-evidence")
        if not self.verdict_cache:
            args.append("--no-verdict-cache")
        if not self.batch_signing:
            args.append("--no-batch-signing")
        if self.agent_provider_client:
            args.append("--agent-provider-client")
        if not self.opmon:
            args.append("--no-opmon")
        if self.workers != 1:
            args += ["--workers", str(self.workers)]
        if not self.gc_tuning:
            args.append("--no-gc-tuning")
        if not self.heap_trim:
            args.append("--no-heap-trim")
        if self.census_every > 0:
            args += ["--census-every", str(self.census_every)]
        return args


class _BenchScript(DemoScript):
    """The demo's set-up steps with the echo provider as the provider system and the launcher for the servers."""

    def __init__(self, layout: Layout, ports: BenchPorts, fedbus: Fedbus, supervisor: Supervisor,
                 servers: Supervisor, progress: Progress) -> None:
        super().__init__(layout, ports.demo, fedbus, supervisor, progress)
        self.bench_ports = ports
        self.servers = servers

    def steps(self) -> list[Step]:
        """The demo's set-up steps, then publishing the benchmark's services and a first call through the bus."""
        demo = {step.name: step for step in super().steps()}
        return [
            *(demo[name] for name in _SETUP_STEPS),
            Step("bench-services", "Publish the echo provider (SOAP and REST) and grant access", self.bench_services),
            Step("bench-ready", "Wait until SOAP and REST calls go through", self.bench_ready),
        ]

    def servers_start(self) -> None:
        """Both security servers, through the launcher with the demo's configuration layer."""
        for department in DEPARTMENTS:
            start_server(self.servers, self.layout, department.server_code, self.layout.server_ini(department),
                         self.ports.client_proxy(department), Levers(), tick=self.progress.tick)

    def bench_services(self) -> None:
        """``fedbus server service add`` for the echo provider, and ``acl grant`` to the Tax Board's system."""
        directory = self.rel(self.layout.server(POPULATION))
        echo = f"http://127.0.0.1:{self.bench_ports.echo}"
        for service, url, kind in ((BENCH_SOAP, f"{echo}/", "soap"), (BENCH_REST, f"{echo}/rest", "rest")):
            self.fedbus.run("server", "service", "add", "--dir", directory, str(service), "--url", url, "--kind", kind)
            code_only = ServiceId(service.client, service.service_code)  # rights cover every version
            self.fedbus.run("server", "acl", "grant", "--dir", directory, str(code_only), str(CONSUMER))
            self.note(f"{service} ({kind}) -> {url}")

    def bench_ready(self) -> None:
        """A SOAP and a REST call through the bus answer 200 (the servers re-read their configuration)."""
        port = self.ports.client_proxy(TAX_BOARD)
        self.wait("SOAP and REST calls through the bus", lambda: _bus_answers(port), timeout=90, interval=1.0)


def _bus_answers(port: int) -> bool:
    protocols: tuple[Protocol, ...] = ("soap", "rest")
    for protocol in protocols:
        request = request_for(protocol, "fedbus", 1024)
        status, text = http_post(f"http://127.0.0.1:{port}{request.path}", request.body, request.headers)
        if status != 200:
            raise Retry(f"{protocol.upper()} answered HTTP {status}: {text[:300]}")
    return True


def tcp_open(port: int) -> bool:
    """Whether something accepts connections on 127.0.0.1:``port``."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def http_post(url: str, body: bytes, headers: dict[str, str], timeout: float = 30.0) -> tuple[int, str]:
    """POST ``body``; (status, the answer's first 2,000 characters), status 0 when nothing answered."""
    call = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(call, timeout=timeout) as answer:
            return int(answer.status), answer.read(2000).decode("utf-8", "replace")
    except urllib.error.HTTPError as err:
        return int(err.code), err.read(2000).decode("utf-8", "replace")
    except (OSError, urllib.error.URLError) as err:
        return 0, str(err)


def start_server(servers: Supervisor, layout: Layout, code: str, ini: Path, client_port: int, levers: Levers,
                 *, tick: Callable[[], None]) -> Managed:
    """Start one security server through the launcher and wait until its client proxy accepts connections."""
    managed = servers.start(
        code,
        [sys.executable, str(BENCH_DIR / "ss_launcher.py"), "--dir", code, "--config", str(ini.relative_to(layout.root)),
         *levers.args()],
        layout.log(code),
    )
    servers.wait_ready(managed, lambda: tcp_open(client_port), timeout=60, tick=tick)
    return managed


@dataclass
class BenchProcesses:
    """Everything the benchmark started; use as a context manager so that all of it is stopped."""

    root: Path
    ports: BenchPorts
    out: TextIO
    timestamp_interval: float = 5.0
    env: dict[str, str] = field(init=False)
    infra: Supervisor = field(init=False)
    servers: Supervisor = field(init=False)
    layout: Layout = field(init=False)
    managed: dict[str, Managed] = field(default_factory=dict)
    levers: Levers | None = None
    levers_starting: Levers = field(default_factory=Levers)
    """The levers the servers are being started with (the bench layer names the HSM token for the HSM lever)."""

    def __post_init__(self) -> None:
        self.layout = Layout(self.root)
        self.layout.logs.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if k not in _CLEAN_ENV}
        env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), *filter(None, [env.get("PYTHONPATH")])])
        env["SOFTHSM2_CONF"] = str(self.root / "softhsm" / "softhsm2.conf")  # made by the HSM lever's first run
        self.env = env
        self.infra = Supervisor(self.root, env)
        self.servers = Supervisor(self.root, env)

    def __enter__(self) -> BenchProcesses:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def stop(self) -> list[str]:
        """Stop the security servers, then the registry and the providers; what was stopped."""
        return self.servers.stop_all() + self.infra.stop_all()

    # --- the reference paths --------------------------------------------------------------------------------

    def start_references(self) -> None:
        """The echo provider and the two bare hops in front of it."""
        ports = self.ports
        python = sys.executable
        self._start_infra("echo", [python, str(BENCH_DIR / "echo_provider.py"), "--port", str(ports.echo)], ports.echo)
        self._start_infra("hop2", [python, str(BENCH_DIR / "barehop.py"), "--port", str(ports.hop2), "--target",
                                   f"127.0.0.1:{ports.echo}"], ports.hop2)
        self._start_infra("hop1", [python, str(BENCH_DIR / "barehop.py"), "--port", str(ports.hop1), "--target",
                                   f"127.0.0.1:{ports.hop2}"], ports.hop1)

    def _start_infra(self, name: str, args: list[str], port: int) -> None:
        managed = self.infra.start(name, args, self.layout.log(name))
        self.infra.wait_ready(managed, lambda: tcp_open(port), timeout=30, tick=lambda: None)
        self.managed[name] = managed

    # --- the federation -------------------------------------------------------------------------------------

    def set_up_federation(self) -> None:
        """Run the demo's set-up steps and the benchmark's; StepFailed names the step that failed."""
        progress = Progress(self.out, 0, tty=False)
        fedbus = Fedbus(self.root, self.layout.commands_log, self.env)
        script = _BenchScript(self.layout, self.ports, fedbus, self.infra, self.servers, progress)
        steps = script.steps()
        progress.total = len(steps)
        try:
            for index, step in enumerate(steps, start=1):
                progress.begin(index, step.title)
                try:
                    step.run()
                except Exception as err:
                    message = err.message if isinstance(err, StepFailed) else f"{type(err).__name__}: {err}"
                    progress.end("FAILED", [message, *(err.details if isinstance(err, StepFailed) else [])])
                    raise StepFailed(f"federation set-up failed at step {step.name}: {message}; logs in "
                                     f"{self.layout.logs}") from err
                progress.end("ok")
        finally:
            script.close()
        self.managed["registry"] = next(m for m in self.infra.started if m.name == "registry")
        self.levers = Levers()

    def bench_ini(self, department: Department) -> Path:
        """The benchmark's configuration layer for one server (production refresh interval, timestamping)."""
        path = self.root / f"{department.server_code}-bench.ini"
        ports = self.ports.demo
        path.write_text(
            "; fedbus bench: the demo's ports, the default configuration refresh, batch timestamping, the health port\n"
            "; (its /metrics: bench/stalls.py reads the heap upkeep's figures there).\n"
            "[logging]\nformat = json\n\n"
            "[server]\nclient-proxy-host = 127.0.0.1\n"
            f"client-proxy-port = {ports.client_proxy(department)}\n"
            "server-proxy-host = 127.0.0.1\n"
            f"server-proxy-port = {ports.server_proxy(department)}\n"
            "conf-refresh-seconds = 60\n\n"
            f"[healthcheck]\nport = {ports.healthcheck(department)}\ninterface = 127.0.0.1\n\n"
            f"[management]\nport = {ports.management(department)}\ninterface = 127.0.0.1\n\n"
            f"[messagelog]\ntimestamp-interval-seconds = {int(self.timestamp_interval)}\n"
            + (f"\n{self.hsm_section(department)}" if self.levers_starting.signing_keys_in_hsm else ""),
            encoding="utf-8",
        )
        return path

    # --- the signing keys in SoftHSM2 (the HSM lever) ------------------------------------------------------------

    def hsm_section(self, department: Department) -> str:
        """The ``[pkcs11:hsm]`` section of ``department``'s own SoftHSM2 token (PIN in a 0600 file)."""
        module = next((m for m in SOFTHSM_MODULES if Path(m).is_file()), None)
        if module is None or shutil.which("softhsm2-util") is None:
            raise StepFailed("the HSM lever needs SoftHSM2 (apt-get install softhsm2)")
        pin_file = self.root / "softhsm" / f"{department.server_code}.pin"
        return (f"[pkcs11:hsm]\nlibrary = {module}\nsign-mechanism = CKM_RSA_PKCS\n"
                f"token-label = bench-{department.server_code}\npin-file = {pin_file}\n")

    def put_signing_keys_in_hsm(self) -> None:
        """Once: a SoftHSM2 token per server, and in it a new signing key for the server's owner, certified by the
        registry's CA, with the same ``fedbus`` commands an operator runs (docs/hsm.md §3). The servers use it
        while their bench layer names the token (the newest valid signing certificate over all tokens)."""
        folder = self.root / "softhsm"
        if folder.is_dir():
            return
        (folder / "tokens").mkdir(parents=True)
        Path(self.env["SOFTHSM2_CONF"]).write_text(
            f"directories.tokendir = {folder / 'tokens'}\nobjectstore.backend = file\nlog.level = ERROR\n",
            encoding="utf-8",
        )
        fedbus = Fedbus(self.root, self.layout.commands_log, self.env)
        self.levers_starting = Levers(signing_keys_in_hsm=True)
        for department in (POPULATION, TAX_BOARD):
            code = department.server_code
            subprocess.run(
                ["softhsm2-util", "--init-token", "--free", "--label", f"bench-{code}", "--pin", HSM_PIN,
                 "--so-pin", "87654321"], check=True, capture_output=True, timeout=60, env=self.env,
            )
            pin_file = folder / f"{code}.pin"
            pin_file.write_text(HSM_PIN + "\n", encoding="utf-8")
            pin_file.chmod(0o600)
            ini = self.bench_ini(department).relative_to(self.root)
            directory = str(self.layout.server(department).relative_to(self.root))
            key = fedbus.json("server", "keys", "generate", "--dir", directory, "--kind", "sign", "--token", "hsm",
                              "--config", str(ini))
            csr, cert = f"certs/{code}-hsm-sign.csr", f"certs/{code}-hsm-sign.pem"
            fedbus.run("server", "keys", "csr", "--dir", directory, key["key_id"], "--name", department.name,
                       "--out", csr, "--config", str(ini))
            fedbus.run("registry", "ca", "issue", "--dir", str(self.layout.registry.relative_to(self.root) / "ca"),
                       "--csr", csr, "--kind", "sign", "--out", cert)
            fedbus.run("server", "keys", "import-cert", "--dir", directory, cert, "--config", str(ini))

    def restart_servers(self, levers: Levers) -> None:
        """Stop both security servers and start them with ``levers`` and the benchmark layer; wait for the bus."""
        self.servers.stop_all()
        if levers.signing_keys_in_hsm:
            self.put_signing_keys_in_hsm()
        self.levers_starting = levers
        for department in (POPULATION, TAX_BOARD):  # the provider first: the consumer's first call finds it up
            self.managed[department.server_code] = start_server(
                self.servers, self.layout, department.server_code, self.bench_ini(department),
                self.ports.demo.client_proxy(department), levers, tick=lambda: None,
            )
        deadline = time.monotonic() + 60
        port = self.ports.demo.client_proxy(TAX_BOARD)
        while True:
            try:
                if _bus_answers(port):
                    break
            except Retry as err:
                if time.monotonic() > deadline:
                    raise StepFailed(f"the bus did not answer within 60 s after a restart: {err}") from err
            for managed in self.servers.started:
                self.servers.check(managed)
            time.sleep(0.5)
        self.levers = levers

    def server_described(self, code: str) -> str:
        """The launcher's ``bench_server_ready`` line of the running server ``code`` ('' when not found)."""
        managed = self.managed.get(code)
        if managed is None:
            return ""
        lines = [line for line in managed.log_tail(4000) if '"bench_server_ready"' in line]
        return lines[-1] if lines else ""

    def pids(self, *names: str) -> dict[str, int]:
        """Name -> pid of the running processes ``names``."""
        return {name: self.managed[name].pid for name in names}
