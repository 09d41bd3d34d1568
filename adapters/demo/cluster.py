"""``fedbus demo --cluster``: the demo federation with a clustered provider server and a clustered registry (issue 19).

The same federation as ``fedbus demo``, set up with the same real commands, except that:

- a throwaway **PostgreSQL** server (Debian's ``postgresql``: ``initdb``/``pg_ctl`` in a new temporary directory,
  run as the ``postgres`` user when the demo runs as root, listening on 127.0.0.1 only, with a password) holds
  two databases: the registry's store and the Population Register server's configuration;
- the **registry** has two nodes: the first made by ``fedbus registry init``, the second by ``fedbus registry
  join``; the anchor lists both;
- the **Population Register's security server** ``ss-pop`` has two nodes (``fedbus server run`` twice, the second
  with a copy of the first's ``keys/``: docs/clustering.md's copy step) behind **HAProxy** (``haproxy``, TCP
  passthrough, ``option httpchk`` against each node's health port); the server's registered address is HAProxy's.

Then the script kills node 1 of ``ss-pop`` (``kill -9``) while a consumer keeps calling through the bus, shows the
calls continuing on node 2, restarts node 1 and shows HAProxy taking it back. The part of the ordinary script
that shows features rather than the cluster (console logins, metadata, REST, audit) is left out, to keep it short.

Ports: the ordinary demo's (``base`` to ``base + 32``), with ``ss-pop``'s server-proxy port ``base + 21`` now
HAProxy's, and the cluster's own in the gaps::

    base+2/+3  registry node 2 HTTP/HTTPS     base+4/+5  management API of registry node 2/node 1
    base+24 ss-pop node 2 client proxy        base+25 ss-pop node 1 server proxy    base+26/+27 node 2 health/management
    base+28 ss-pop node 2 server proxy        base+29 PostgreSQL

A department's CLI commands find ``[database] url`` in ``conf.d/local.ini`` of the directory they run in, so the
commands of the registry and of ``ss-pop`` run in folders of their own under ``cluster/`` (with absolute paths).
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from adapters.consumer.faults import AdapterError, XRoadFault
from adapters.consumer.soap import SoapConsumer
from adapters.demo.commands import CommandResult, Fedbus
from adapters.demo.federation import CONSUMER, EXAMPLES, POPULATION, DemoPorts, Layout
from adapters.demo.processes import Managed, Supervisor
from adapters.demo.progress import PortTaken, Progress, StepFailed
from adapters.demo.script import START_TIMEOUT, DemoScript, Retry, Step

NEEDS = "fedbus demo --cluster needs PostgreSQL (Debian package postgresql) and HAProxy (Debian package haproxy)"
SUPERUSER = "fedbus"
"""The database role initdb creates; the demo's nodes connect as it over TCP with a password."""
DATABASES = ("registry", "ss_pop")
CALLS = 30
"""getRandom calls made while node 1 is killed."""


def postgres_bin_dir() -> Path | None:
    """The newest ``/usr/lib/postgresql/<version>/bin`` with ``initdb`` and ``pg_ctl``, else one on PATH."""
    def version(path: Path) -> tuple[int, ...]:
        try:
            return tuple(int(part) for part in path.parent.name.split("."))
        except ValueError:
            return (0,)

    for candidate in sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=version, reverse=True):
        if (candidate / "initdb").is_file() and (candidate / "pg_ctl").is_file():
            return candidate
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb and shutil.which("pg_ctl") else None


@dataclass
class ThrowawayPostgres:
    """A PostgreSQL server of the demo's own, in a temporary directory; :meth:`stop` ends it and removes it."""

    bin_dir: Path
    root: Path
    port: int
    password: str
    user: pwd.struct_passwd | None

    @classmethod
    def start(cls, bin_dir: Path, port: int) -> ThrowawayPostgres:
        """initdb and start on 127.0.0.1:``port``; never as root (the ``postgres`` user then)."""
        user = None
        if os.geteuid() == 0:
            try:
                user = pwd.getpwnam("postgres")  # made by Debian's postgresql package
            except KeyError:
                user = pwd.getpwnam("nobody")
        root = Path(tempfile.mkdtemp(prefix="fedbus-demo-pg-"))
        server = cls(bin_dir, root, port, secrets.token_urlsafe(16), user)
        try:
            if user is not None:
                os.chown(root, user.pw_uid, user.pw_gid)
            pwfile = root / "pw"
            pwfile.write_text(server.password + "\n", encoding="utf-8")
            pwfile.chmod(0o600)
            if user is not None:
                os.chown(pwfile, user.pw_uid, user.pw_gid)
            server._run("initdb", "-D", str(root / "data"), "-U", SUPERUSER, f"--pwfile={pwfile}",
                        "--auth-local=trust", "--auth-host=scram-sha-256", "--encoding=UTF8", "--locale=C.UTF-8",
                        "--no-sync")
            pwfile.unlink()
            options = (f"-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={root}"
                       " -c shared_buffers=16MB -c max_connections=100")
            server._run("pg_ctl", "-D", str(root / "data"), "-l", str(root / "server.log"), "-o", options,
                        "-w", "-t", "60", "start")
            for name in DATABASES:
                server._run("psql", "-h", str(root), "-p", str(port), "-U", SUPERUSER, "-d", "postgres",
                            "-v", "ON_ERROR_STOP=1", "-c", f'CREATE DATABASE "{name}"')
        except BaseException:
            server.stop()
            raise
        return server

    def url(self, database: str) -> str:
        """The URL of ``database`` as the nodes use it (TCP, password)."""
        return f"postgresql://{SUPERUSER}:{self.password}@127.0.0.1:{self.port}/{database}"

    def _run(self, program: str, *args: str) -> None:
        prefix = ["runuser", "-u", self.user.pw_name, "--"] if self.user is not None else []
        done = subprocess.run([*prefix, str(self.bin_dir / program), *args], check=False, capture_output=True,
                              text=True, timeout=120, cwd=self.root)
        if done.returncode != 0:
            raise StepFailed(f"{program} failed (status {done.returncode})",
                             details=(done.stderr or done.stdout).splitlines()[-8:])

    def stop(self, keep_log: Path | None = None) -> None:
        """Stop at once, keep the server's log at ``keep_log``, remove the directory."""
        try:
            if (self.root / "data" / "postmaster.pid").exists():
                self._run("pg_ctl", "-D", str(self.root / "data"), "-m", "immediate", "-w", "stop")
        except StepFailed:
            pass
        finally:
            if keep_log is not None and (self.root / "server.log").exists():
                shutil.copyfile(self.root / "server.log", keep_log)
            shutil.rmtree(self.root, ignore_errors=True)


class ClusterPorts:
    """The cluster's ports beside the ordinary demo's (see the module docstring)."""

    def __init__(self, ports: DemoPorts) -> None:
        base = ports.base
        self.registry2_http, self.registry2_https = base + 2, base + 3
        self.registry2_management, self.registry1_management = base + 4, ports.registry_management
        self.balancer = ports.server_proxy(POPULATION)
        self.node1_server_proxy = base + 25
        self.node1_health = ports.healthcheck(POPULATION)
        self.node2_client_proxy, self.node2_server_proxy = base + 24, base + 28
        self.node2_health, self.node2_management = base + 26, base + 27
        self.postgres = base + 29


class RoutedFedbus(Fedbus):
    """Runs the registry's and ``ss-pop``'s commands in their own folders (whose ``conf.d/local.ini`` names the
    shared database), everything else in the working directory."""

    def __init__(self, cwd: Path, log_path: Path, env: Any, *, registry_cwd: Path, pop_dir: Path, pop_cwd: Path) -> None:
        super().__init__(cwd, log_path, env)
        self._home = cwd
        self._registry_cwd, self._pop_dir, self._pop_cwd = registry_cwd, str(pop_dir), pop_cwd

    def run(self, *args: str, check: bool = True, timeout: float = 180.0, stdin: str | None = None) -> CommandResult:
        """As :meth:`Fedbus.run`, in the folder of the party the command is for."""
        if args[:1] == ("registry",):
            self.cwd = self._registry_cwd
        elif args[:1] == ("server",) and self._pop_dir in args:
            self.cwd = self._pop_cwd
        else:
            self.cwd = self._home
        try:
            return super().run(*args, check=check, timeout=timeout, stdin=stdin)
        finally:
            self.cwd = self._home


class ClusterDemoScript(DemoScript):
    """The demo's script for ``--cluster``."""

    def __init__(self, layout: Layout, ports: DemoPorts, fedbus: Fedbus, supervisor: Supervisor,
                 progress: Progress) -> None:
        self.cluster_dir = layout.root / "cluster"
        routed = RoutedFedbus(
            layout.root, layout.commands_log, fedbus.env, registry_cwd=self.cluster_dir / "registry-commands",
            pop_dir=layout.server(POPULATION), pop_cwd=self.cluster_dir / "ss-pop-commands",
        )
        super().__init__(layout, ports, routed, supervisor, progress)
        self.cluster = ClusterPorts(ports)
        self.postgres: ThrowawayPostgres | None = None
        self.node1: Managed | None = None

    def steps(self) -> list[Step]:
        """The ordinary script's set-up and SOAP calls, with the cluster's steps woven in."""
        ordinary = {step.name: step for step in super().steps()}
        cluster = {
            "postgres": Step("postgres", "Start a throwaway PostgreSQL for the clustered parts", self.postgres_start),
            "registry-join": Step("registry-join", "Add a second registry node (registry join)", self.registry_join),
            "pop-cluster": Step("pop-cluster", "Start ss-pop's node 2 and HAProxy in front of both",
                                self.pop_cluster_start),
            "node-kill": Step("node-kill", "Kill ss-pop node 1 while calls go on", self.node_kill),
            "node-restart": Step("node-restart", "Restart node 1: HAProxy takes it back", self.node_restart),
        }
        order = ["postgres", "configure", "registry-init", "registry-settings", "members", "registry-start",
                 "registry-join", "anchor", "ss-tax-setup", "ss-pop-setup", "servers-start", "pop-cluster",
                 "servers-register", "clients-register", "providers-start", "services", "bus-ready", "soap-calls",
                 "node-kill", "node-restart"]
        return [cluster[name] if name in cluster else ordinary[name] for name in order]

    def rel(self, path: Any) -> str:
        """Absolute: the clustered parties' commands run in folders of their own."""
        return str(Path(path).resolve())

    def close(self) -> None:
        """The consumers' sessions, then PostgreSQL (its log kept in logs/postgres.log)."""
        super().close()
        if self.postgres is not None:
            self.postgres.stop(keep_log=self.layout.log("postgres"))
            self.postgres = None

    # --- PostgreSQL and configuration -----------------------------------------------------------------------

    def postgres_start(self) -> None:
        """initdb/pg_ctl in a temporary directory; the databases of the registry and of ss-pop."""
        missing = missing_packages()
        bin_dir = postgres_bin_dir()
        if missing or bin_dir is None:
            raise StepFailed(f"{NEEDS}; missing: {', '.join(missing)} (apt-get install {' '.join(missing)})")
        self.postgres = ThrowawayPostgres.start(bin_dir, self.cluster.postgres)
        self.note(f"PostgreSQL {bin_dir.parent.name} on 127.0.0.1:{self.cluster.postgres} "
                  f"(data in {self.postgres.root}), databases: {', '.join(DATABASES)}")

    def _database(self, name: str) -> str:
        assert self.postgres is not None
        return self.postgres.url(name)

    def configure(self) -> None:
        """The ordinary files, plus the database URLs, the second nodes' files and the command folders."""
        super().configure()
        layout, cluster = self.layout, self.cluster
        registry_db, pop_db = self._database("registry"), self._database("ss_pop")
        with layout.registry_ini.open("a", encoding="utf-8") as ini:
            # [management] port (node 1's) is the ordinary demo's: DemoPorts.registry_management.
            ini.write(f"\n[database]\nurl = {registry_db}\n")
        (self.cluster_dir / "registry2.ini").parent.mkdir(parents=True, exist_ok=True)
        (self.cluster_dir / "registry2.ini").write_text(
            "; fedbus demo --cluster: the registry's second node.\n[logging]\nformat = json\n\n"
            f"[registry]\nhost = 127.0.0.1\nhttp-port = {cluster.registry2_http}\n"
            f"https-port = {cluster.registry2_https}\npublic-host = 127.0.0.1\n\n"
            f"[management]\nport = {cluster.registry2_management}\n\n[database]\nurl = {registry_db}\n",
            encoding="utf-8",
        )
        pop_ini = layout.server_ini(POPULATION)
        text = pop_ini.read_text(encoding="utf-8").replace(
            f"server-proxy-port = {cluster.balancer}\n", f"server-proxy-port = {cluster.node1_server_proxy}\n"
        )
        pop_ini.write_text(text + f"\n[database]\nurl = {pop_db}\n", encoding="utf-8")
        (self.cluster_dir / "ss-pop-node2.ini").write_text(
            "; fedbus demo --cluster: ss-pop's second node.\n[logging]\nformat = json\n\n"
            f"[server]\nclient-proxy-host = 127.0.0.1\nclient-proxy-port = {cluster.node2_client_proxy}\n"
            f"server-proxy-host = 127.0.0.1\nserver-proxy-port = {cluster.node2_server_proxy}\n"
            "conf-refresh-seconds = 2\n\n"
            f"[healthcheck]\nport = {cluster.node2_health}\ninterface = 127.0.0.1\n\n"
            f"[management]\nport = {cluster.node2_management}\ninterface = 127.0.0.1\n\n[database]\nurl = {pop_db}\n",
            encoding="utf-8",
        )
        for folder, url in (("registry-commands", registry_db), ("ss-pop-commands", pop_db)):
            (self.cluster_dir / folder / "conf.d").mkdir(parents=True, exist_ok=True)
            (self.cluster_dir / folder / "conf.d" / "local.ini").write_text(f"[database]\nurl = {url}\n",
                                                                           encoding="utf-8")
        self.note("the registry and ss-pop keep their state in PostgreSQL ([database] url); "
                  f"second nodes' files in {self.cluster_dir}")

    # --- the registry's second node -------------------------------------------------------------------------

    def registry_join(self) -> None:
        """``fedbus registry join`` (its own signing key, nothing else), then ``registry serve`` for it."""
        directory = self.layout.root / "registry-node2"
        ini = self.cluster_dir / "registry2.ini"
        self.fedbus.json("registry", "join", "--registry-dir", str(directory), "--config", str(ini))
        url = f"http://127.0.0.1:{self.cluster.registry2_http}/internalconf"
        managed = self.supervisor.start_listening(
            "registry-node2",
            [*self.fedbus.argv0, "registry", "serve", "--registry-dir", str(directory), "--config", str(ini)],
            self.layout.log("registry-node2"),
            [("registry node 2 HTTP", self.cluster.registry2_http),
             ("registry node 2 HTTPS", self.cluster.registry2_https)],
            lambda: _http_answers(url), started_marker="registry_started", timeout=START_TIMEOUT, tick=self.progress.tick,
        )
        self.note(f"registry node 2 on http://127.0.0.1:{self.cluster.registry2_http} (log {managed.log}); "
                  "both nodes publish the same configuration from the shared database")

    def anchor(self) -> None:
        """The ordinary anchor step; it now lists both registry nodes as configuration sources."""
        super().anchor()
        sources = self.layout.anchor.read_text(encoding="utf-8").count("<downloadURL>")
        self.note(f"the anchor lists {sources} configuration sources: a server fails over to the next one")

    # --- ss-pop's second node and the balancer ---------------------------------------------------------------

    def pop_cluster_start(self) -> None:
        """Copy node 1's keys to node 2 (the documented copy step), start node 2, then HAProxy."""
        node2 = self.layout.root / "ss-pop-node2"
        node2.mkdir(exist_ok=True)
        shutil.copytree(self.layout.server(POPULATION) / "keys", node2 / "keys", dirs_exist_ok=True)
        port = self.cluster.node2_client_proxy
        self.supervisor.start_listening(
            "ss-pop-node2",
            [*self.fedbus.argv0, "server", "run", "--dir", str(node2), "--config",
             str(self.cluster_dir / "ss-pop-node2.ini")],
            self.layout.log("ss-pop-node2"),
            [("ss-pop node 2 client proxy", port), ("ss-pop node 2 server proxy", self.cluster.node2_server_proxy)],
            lambda: _tcp_open(port), started_marker="security_server_started", timeout=START_TIMEOUT,
            tick=self.progress.tick,
        )
        self.node1 = next(m for m in self.supervisor.started if m.name == POPULATION.server_code)
        config = self._haproxy_config()
        if _tcp_open(self.cluster.balancer):
            raise PortTaken([("HAProxy (ss-pop's address)", self.cluster.balancer)])
        haproxy = self.supervisor.start("haproxy", ["haproxy", "-db", "-f", str(config)], self.layout.log("haproxy"))
        self.supervisor.wait_ready(haproxy, lambda: _tcp_open(self.cluster.balancer), timeout=START_TIMEOUT,
                                   tick=self.progress.tick)
        self.wait("both ss-pop nodes up in HAProxy", lambda: self._haproxy_view() == {"node1": "UP", "node2": "UP"},
                  timeout=START_TIMEOUT)
        self.note(f"node 1: server proxy 127.0.0.1:{self.cluster.node1_server_proxy}, node 2: "
                  f"127.0.0.1:{self.cluster.node2_server_proxy} (keys copied from node 1)")
        self.note(f"HAProxy on 127.0.0.1:{self.cluster.balancer}, ss-pop's registered address: TCP passthrough, "
                  f"health checks on ports {self.cluster.node1_health} and {self.cluster.node2_health}")

    def _haproxy_config(self) -> Path:
        config = self.cluster_dir / "haproxy.cfg"
        nodes = ((1, self.cluster.node1_server_proxy, self.cluster.node1_health),
                 (2, self.cluster.node2_server_proxy, self.cluster.node2_health))
        servers = "".join(f"  server node{n} 127.0.0.1:{port} check port {health}\n" for n, port, health in nodes)
        config.write_text(
            "# fedbus demo --cluster: ss-pop's load balancer (docs/clustering.md)\n"
            f"global\n  stats socket {self._stats_socket()} mode 600 level admin\n"
            "defaults\n  mode tcp\n  timeout connect 2s\n  timeout client 60s\n  timeout server 60s\n"
            "  timeout check 10s\n  retries 3\n  option redispatch\n"
            f"frontend ss-pop\n  bind 127.0.0.1:{self.cluster.balancer}\n  default_backend nodes\n"
            "backend nodes\n  balance roundrobin\n  option httpchk GET /\n  http-check expect status 200\n"
            "  default-server inter 500ms fall 2 rise 2 on-marked-down shutdown-sessions\n" + servers,
            encoding="utf-8",
        )
        return config

    def _stats_socket(self) -> Path:
        return self.cluster_dir / "haproxy.sock"

    def _haproxy_view(self) -> dict[str, str]:
        """HAProxy's view of the nodes (``show stat``): node1/node2 -> UP, DOWN, ..."""
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as admin:
                admin.settimeout(5)
                admin.connect(str(self._stats_socket()))
                admin.sendall(b"show stat\n")
                data = b""
                while chunk := admin.recv(65536):
                    data += chunk
        except OSError as err:
            raise Retry(f"HAProxy's stats socket: {err}") from err
        lines = data.decode(errors="replace").splitlines()
        if not lines:
            return {}
        header = lines[0].lstrip("# ").split(",")
        view = {}
        for line in lines[1:]:
            row = dict(zip(header, line.split(",")))
            if row.get("pxname") == "nodes" and row.get("svname", "").startswith("node"):
                view[row["svname"]] = row.get("status", "?")
        return view

    # --- the failure ----------------------------------------------------------------------------------------

    def _calls(self, count: int, during: Any = None) -> tuple[int, list[str]]:
        """``count`` getRandom calls through the Tax Board's server, one after the other; ``during`` runs in a
        thread after the fifth is answered. Returns (answered, faults)."""
        consumer = SoapConsumer(self._proxy_url(), client=CONSUMER, provider=EXAMPLES,
                                wsdl=self.layout.descriptions / "getrandom.wsdl", timeout=30)
        answered, faults = 0, []
        action: threading.Thread | None = None
        try:
            for number in range(count):
                if during is not None and number == 5:
                    action = threading.Thread(target=during)
                    action.start()
                try:
                    consumer.call("getRandom", message_id=f"cluster-{secrets.token_hex(4)}-{number}")
                    answered += 1
                except (XRoadFault, AdapterError) as err:
                    faults.append(str(err).splitlines()[0][:120])
                self.progress.tick()
        finally:
            if action is not None:
                action.join()
            consumer.close()
        return answered, faults

    def node_kill(self) -> None:
        """``kill -9`` of node 1 while the consumer calls getRandom; HAProxy takes node 1 out; calls go on."""
        node1 = self.node1
        if node1 is None or not node1.running():
            raise StepFailed("ss-pop node 1 is not running")
        self.supervisor.started.remove(node1)  # its death is the point of this step, not a failure

        def kill() -> None:
            node1.process.kill()
            node1.process.wait(timeout=30)

        answered, faults = self._calls(CALLS, during=kill)
        self.note(f"killed ss-pop node 1 (kill -9, pid {node1.pid}) after 5 of {CALLS} getRandom calls")
        self.note(f"{answered} of {CALLS} calls answered"
                  + (f"; {len(faults)} in flight on node 1 failed with an X-Road fault: {faults[0]}" if faults else
                     "; none failed (HAProxy re-dispatched the connections node 1 refused)"))
        if answered < CALLS - 2:
            raise StepFailed(f"only {answered} of {CALLS} calls were answered after node 1 was killed", details=faults)
        self.wait("HAProxy to mark node 1 down", lambda: self._haproxy_view().get("node1", "").startswith("DOWN"),
                  timeout=60)
        answered, faults = self._calls(10)
        if faults:
            raise StepFailed("calls failed with node 1 down", details=faults)
        self.note(f"HAProxy's view: {self._haproxy_view()}; 10 more calls answered by node 2 alone")

    def node_restart(self) -> None:
        """``fedbus server run`` for node 1 again: it rejoins with no manual step; HAProxy puts it back."""
        port = self.ports.client_proxy(POPULATION)
        self.node1 = self.supervisor.start_listening(
            POPULATION.server_code,
            [*self.fedbus.argv0, "server", "run", "--dir", self.rel(self.layout.server(POPULATION)),
             "--config", self.rel(self.layout.server_ini(POPULATION))],
            self.layout.log(POPULATION.server_code),
            [("ss-pop node 1 client proxy", port), ("ss-pop node 1 server proxy", self.cluster.node1_server_proxy)],
            lambda: _tcp_open(port), started_marker="security_server_started", timeout=START_TIMEOUT,
            tick=self.progress.tick,
        )
        self.wait("node 1 up in HAProxy again", lambda: self._haproxy_view().get("node1") == "UP", timeout=START_TIMEOUT)
        answered, faults = self._calls(10)
        if faults:
            raise StepFailed("calls failed after node 1 rejoined", details=faults)
        self.note(f"node 1 restarted (pid {self.node1.pid}); HAProxy's view: {self._haproxy_view()}; "
                  f"{answered} calls answered")


def _tcp_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def _http_answers(url: str) -> bool:
    import requests

    try:
        requests.get(url, timeout=2).close()
    except requests.RequestException:
        return False
    return True


def missing_packages() -> list[str]:
    """The Debian packages ``--cluster`` needs that are not installed."""
    found = {"postgresql": postgres_bin_dir() is not None, "haproxy": shutil.which("haproxy") is not None}
    return [name for name, present in found.items() if not present]
