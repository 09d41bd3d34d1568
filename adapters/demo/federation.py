"""The demo federation: who is in it, which ports it uses, and where everything lives in the working directory.

Two departments of instance ``DEMO``: the Tax and Customs Board consumes, the Population Register Centre provides
(the population register over SOAP and REST, and X-Road's two example services). Each runs its own security
server. Ports are fixed offsets from one base port (``--base-port``), so the printed examples are stable::

    base+0   registry HTTP (global configuration, OCSP, TSA)     base+1   registry HTTPS (registrations)
    base+10  Tax Board security server: client proxy             base+11  its server proxy (mutual TLS)
    base+20  Population Register security server: client proxy   base+21  its server proxy
    base+30  getRandom   base+31  helloService   base+32  population register (SOAP /soap, REST /rest)
"""

from __future__ import annotations

import errno
import random
import socket
from dataclasses import dataclass
from pathlib import Path

from security_server.core.identifiers import ClientId, ServiceId

INSTANCE = "DEMO"
DEFAULT_BASE_PORT = 18000
PORT_SPAN = 33
"""The demo uses ``base`` to ``base + 32``."""
LOWEST_FREE_BASE = 10000
EPHEMERAL_RANGE_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")


@dataclass(frozen=True, slots=True)
class Department:
    """One member with its security server and the subsystems it hosts."""

    key: str
    member: ClientId
    name: str
    server_code: str
    subsystems: tuple[str, ...]

    def subsystem(self, code: str) -> ClientId:
        """One of the hosted subsystems."""
        if code not in self.subsystems:
            raise KeyError(code)
        return self.member.subsystem(code)

    @property
    def clients(self) -> list[ClientId]:
        """Every hosted subsystem."""
        return [self.member.subsystem(code) for code in self.subsystems]


TAX_BOARD = Department("tax", ClientId(INSTANCE, "GOV", "70000001"), "Tax and Customs Board", "ss-tax", ("tax-app",))
POPULATION = Department(
    "pop", ClientId(INSTANCE, "GOV", "70000002"), "Population Register Centre", "ss-pop", ("population", "examples")
)
DEPARTMENTS = (TAX_BOARD, POPULATION)

CONSUMER = TAX_BOARD.subsystem("tax-app")
REGISTER = POPULATION.subsystem("population")
EXAMPLES = POPULATION.subsystem("examples")

GET_RANDOM = ServiceId(EXAMPLES, "getRandom", "v1")
HELLO = ServiceId(EXAMPLES, "helloService", "v1")
GET_PERSON = ServiceId(REGISTER, "getPerson", "v1")
FIND_PERSONS = ServiceId(REGISTER, "findPersons", "v1")
"""Published but not granted to the consumer: calling it shows access_denied."""
PERSONS = ServiceId(REGISTER, "persons")
"""The register's REST service."""

SAMPLE_PERSON = "38001010014"
SAMPLE_SURNAME = "Tamm"
SAMPLE_USER = "EE47101010033"
"""The end user the consumer system acts for (X-Road userId: country code and personal code)."""


@dataclass(frozen=True, slots=True)
class DemoPorts:
    """Every port the demo listens on, as offsets from ``base``."""

    base: int

    def __post_init__(self) -> None:
        if not 1024 <= self.base <= 65535 - 40:
            raise ValueError(f"base port {self.base} must be from 1024 to {65535 - 40}")

    @property
    def registry_http(self) -> int:
        """Global configuration, OCSP responder and TSA."""
        return self.base

    @property
    def registry_https(self) -> int:
        """Registration requests."""
        return self.base + 1

    @property
    def registry_management(self) -> int:
        """The registry's management REST API (HTTPS, loopback), not its default 4100, which another registry on
        the machine may hold."""
        return self.base + 5

    def client_proxy(self, department: Department) -> int:
        """Where the department's systems call its security server."""
        return self.base + (10 if department is TAX_BOARD else 20)

    def server_proxy(self, department: Department) -> int:
        """Where other security servers reach the department's (mutual TLS)."""
        return self.client_proxy(department) + 1

    def healthcheck(self, department: Department) -> int:
        """The department's health check and Prometheus ``/metrics`` (plain HTTP, loopback)."""
        return self.client_proxy(department) + 2

    def management(self, department: Department) -> int:
        """The department's management REST API (X-Road's ``/api/v1``, HTTPS, loopback; X-Road's default 4000)."""
        return self.client_proxy(department) + 3

    @property
    def getrandom(self) -> int:
        """The getRandom example service."""
        return self.base + 30

    @property
    def hello(self) -> int:
        """The helloService example service."""
        return self.base + 31

    @property
    def population(self) -> int:
        """The population register."""
        return self.base + 32

    def named(self) -> list[tuple[str, int]]:
        """(what, port) for every port, in start-up order."""
        found = [("registry HTTP", self.registry_http), ("registry HTTPS", self.registry_https),
                 ("registry management API", self.registry_management)]
        for department in DEPARTMENTS:
            found.append((f"{department.server_code} client proxy", self.client_proxy(department)))
            found.append((f"{department.server_code} server proxy", self.server_proxy(department)))
            found.append((f"{department.server_code} health check", self.healthcheck(department)))
            found.append((f"{department.server_code} management API", self.management(department)))
        found += [("getRandom service", self.getrandom), ("helloService service", self.hello),
                  ("population register", self.population)]
        return found


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    """Whether something listens on ``host:port`` (binding as Twisted does, with SO_REUSEADDR)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as err:
            if err.errno in (errno.EADDRINUSE, errno.EACCES):
                return True
            raise
    return False


def busy_ports(ports: DemoPorts) -> list[tuple[str, int]]:
    """The demo's ports that are in use right now."""
    return [(what, port) for what, port in ports.named() if port_in_use(port)]


def ephemeral_ports(source: Path = EPHEMERAL_RANGE_FILE) -> tuple[int, int]:
    """The range the kernel takes outgoing connections' local ports from (Linux's default where it cannot say)."""
    try:
        low, high = (int(field) for field in source.read_text(encoding="ascii").split())
    except (OSError, ValueError):
        return 32768, 60999
    return low, high


def find_free_base(rng: random.Random | None = None, *, attempts: int = 200) -> int:
    """A base port whose whole block is free now and lies below the ephemeral range.

    A block checked free inside the ephemeral range can be taken, before the demo's last process binds it a
    minute or two later, by the local end of any outgoing connection on the machine (many, when another
    federation runs beside it); below that range only another program's listener can take it.
    """
    pick = rng or random.Random()
    low, _ = ephemeral_ports()
    highest = min(low, 65536) - PORT_SPAN
    if highest < LOWEST_FREE_BASE:
        highest = 65535 - 40  # an unusual range that starts low: any block, checked
    for _ in range(attempts):
        base = pick.randrange(LOWEST_FREE_BASE, highest + 1)
        if not busy_ports(DemoPorts(base)):
            return base
    raise OSError(f"no free block of {PORT_SPAN} ports found on 127.0.0.1 in {attempts} attempts")


@dataclass(frozen=True, slots=True)
class Layout:
    """Where the demo writes everything, under one working directory."""

    root: Path

    @property
    def registry(self) -> Path:
        """The registry's directory (database, keys, development CA)."""
        return self.root / "registry"

    @property
    def registry_ini(self) -> Path:
        """The registry's configuration layer (ports)."""
        return self.root / "registry.ini"

    @property
    def anchor(self) -> Path:
        """The configuration anchor the security servers are initialised with."""
        return self.root / "anchor.xml"

    def server(self, department: Department) -> Path:
        """A department's security-server directory."""
        return self.root / department.server_code

    def server_ini(self, department: Department) -> Path:
        """A security server's configuration layer (ports, refresh interval)."""
        return self.root / f"{department.server_code}.ini"

    @property
    def certs(self) -> Path:
        """Certificate requests and the certificates the CA issued."""
        return self.root / "certs"

    @property
    def logs(self) -> Path:
        """One log per process, and ``commands.log``."""
        return self.root / "logs"

    @property
    def commands_log(self) -> Path:
        """Every ``fedbus`` command the demo ran, with its output."""
        return self.logs / "commands.log"

    def log(self, name: str) -> Path:
        """The log of one process."""
        return self.logs / f"{name}.log"

    @property
    def descriptions(self) -> Path:
        """The providers' WSDL and OpenAPI descriptions (the consumer uses the WSDLs; the provider's server all)."""
        return self.root / "descriptions"

    @property
    def examples(self) -> Path:
        """Ready-to-use request files and a Python script for your own calls."""
        return self.root / "examples"

    @property
    def evidence(self) -> Path:
        """Exported signed containers."""
        return self.root / "evidence"
