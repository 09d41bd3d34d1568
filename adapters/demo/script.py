"""The demo's script: the real set-up flows of a registry and two departments, then calls through the bus.

Every administrative step is a ``fedbus`` command (logged in ``logs/commands.log``), except that the Population
Register's server is set up and registered through its management REST API, X-Road's ``/api/v1``
(adapters/demo/api_setup.py; each call logged there as ``METHOD https://127.0.0.1:PORT/api/v1/...``), so that
both paths run; every call is made with the consumer adapters, as a department's own system would. Waits poll a
condition with a bounded timeout.

Steps that need a feature a build may not have yet, the auditor's ``fedbus audit``, detect its absence and are
reported as skipped: ``audit-find`` and ``audit-export``.
"""

from __future__ import annotations

import json
import socket
import sys
import time
import urllib.parse
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, TypeVar

import requests
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from adapters.consumer.faults import AccessDeniedFault, AdapterError, XRoadFault
from adapters.consumer.rest import RestAnswer, RestConsumer
from adapters.consumer.soap import SoapConsumer
from adapters.demo.api_setup import API_ROLES, ManagementApi, client_body, csr_request, encoded_client
from adapters.demo.commands import Fedbus
from adapters.demo.console_logins import console_urls, create_console_logins
from adapters.demo.federation import (
    CONSUMER,
    DEPARTMENTS,
    EXAMPLES,
    FIND_PERSONS,
    GET_PERSON,
    GET_RANDOM,
    HELLO,
    INSTANCE,
    PERSONS,
    POPULATION,
    REGISTER,
    SAMPLE_PERSON,
    SAMPLE_SURNAME,
    SAMPLE_USER,
    TAX_BOARD,
    Department,
    DemoPorts,
    Layout,
)
from adapters.demo.processes import Supervisor
from adapters.demo.progress import Progress, StepFailed, StepSkipped
from adapters.demo.snippets import relative, write_examples
from security_server.core.identifiers import SecurityServerId, ServiceId

T = TypeVar("T")

NOT_AVAILABLE = "not available in this build"
# Bounds on the waits, generous because a busy machine (both cores taken, another federation beside this one)
# makes every start-up and configuration round several times slower; they are only reached when something is
# wrong, and then the step fails with what it waited for.
START_TIMEOUT = 180.0
"""For a process to listen: Python importing Twisted, cryptography, lxml and zeep under load."""
CLIENT_STATE_TIMEOUT = 180.0
"""For registrations to travel registry -> global configuration -> each server (2 s rounds, each a command)."""
BUS_TIMEOUT = 180.0
"""For the first call and the first timestamp to go through."""
CALL_TIMEOUT = 60.0
"""For a service to answer once the bus works (the servers re-read their configuration every 2 s)."""


@dataclass(frozen=True, slots=True)
class Step:
    """One step: a short name (for ``--fail-at`` and reports), a title, and what it does."""

    name: str
    title: str
    run: Callable[[], None]


@dataclass
class DemoState:
    """What steps learn and later steps use."""

    consumers: dict[str, SoapConsumer] = field(default_factory=dict)
    message_ids: dict[str, str] = field(default_factory=dict)
    audit_available: bool = False
    auth_cert_hashes: dict[str, str] = field(default_factory=dict)
    """The auth certificate's hash of each server set up through its API (by server code), for its registration."""


class DemoScript:
    """The steps, bound to one working directory, port plan and set of tools."""

    api_server: Department | None = POPULATION
    """The server set up and registered through its management API; the other one through the ``fedbus`` CLI."""

    def __init__(self, layout: Layout, ports: DemoPorts, fedbus: Fedbus, supervisor: Supervisor,
                 progress: Progress) -> None:
        self.layout = layout
        self.ports = ports
        self.fedbus = fedbus
        self.supervisor = supervisor
        self.progress = progress
        self.state = DemoState()

    def steps(self) -> list[Step]:
        """The script, in order."""
        return [
            Step("configure", "Write the configuration files", self.configure),
            Step("registry-init", "Initialise the registry (CA, OCSP responder, TSA)", self.registry_init),
            Step("registry-settings", "Speed the registry up for the demo", self.registry_settings),
            Step("members", "Add the two members and their subsystems", self.members),
            Step("registry-start", "Start the registry", self.registry_start),
            Step("anchor", "Export the configuration anchor", self.anchor),
            Step("ss-tax-setup", "Set up the Tax Board's security server" + self._path_of(TAX_BOARD),
                 lambda: self._setup(TAX_BOARD)),
            Step("ss-pop-setup", "Set up the Population Register's server" + self._path_of(POPULATION),
                 lambda: self._setup(POPULATION)),
            Step("servers-start", "Start both security servers", self.servers_start),
            Step("servers-register", "Register the security servers (authCertReg)", self.servers_register),
            Step("clients-register", "Register the subsystems (clientReg)", self.clients_register),
            Step("providers-start", "Start the provider systems", self.providers_start),
            Step("services", "Publish the services and grant access", self.services),
            Step("console-logins", "Create a console login for each role", self.console_logins),
            Step("bus-ready", "Wait until the first call goes through", self.bus_ready),
            Step("soap-calls", "Call SOAP services through the bus", self.soap_calls),
            Step("access-denied", "Call a service without an access right", self.access_denied),
            Step("provider-view", "See who asked, from the provider's side", self.provider_view),
            Step("metadata", "Discover services (listClients, getWsdl)", self.metadata),
            Step("rest-calls", "Call the REST service through the bus", self.rest_calls),
            Step("operations", "Check both servers' health and metrics", self.operations),
            Step("audit-find", "Find the exchange in both message logs", self.audit_find),
            Step("audit-export", "Export a signed container and verify it", self.audit_export),
        ]

    def close(self) -> None:
        """Close the consumers' HTTP sessions."""
        for consumer in self.state.consumers.values():
            consumer.close()

    # --- helpers --------------------------------------------------------------------------------------------

    def note(self, text: str) -> None:
        """A detail line under the current step."""
        self.progress.note(text)

    def rel(self, path: Any) -> str:
        """A path as the commands see it (relative to the working directory)."""
        return relative(path, self.layout.root)

    def _through_api(self, department: Department) -> bool:
        return self.api_server is not None and department.server_code == self.api_server.server_code

    def _path_of(self, department: Department) -> str:
        return " (management API)" if self._through_api(department) else " (fedbus CLI)"

    @contextmanager
    def api(self, department: Department) -> Iterator[ManagementApi]:
        """The department's management API with an API key made for the step (``fedbus server api-key create``)
        and revoked after it, so that no key the commands log shows stays valid."""
        directory = self.rel(self.layout.server(department))
        roles = [arg for role in API_ROLES for arg in ("--role", role)]
        made = self.fedbus.json("server", "api-key", "create", "--dir", directory, *roles)
        try:
            yield ManagementApi(self.layout.server(department), self.ports.management(department), str(made["key"]),
                                self.layout.commands_log)
        finally:
            self.fedbus.run("server", "api-key", "revoke", "--dir", directory, str(made["id"]))

    def wait(self, what: str, condition: Callable[[], T | None], *, timeout: float, interval: float = 0.5) -> T:
        """Poll ``condition`` until it returns a true value; :class:`StepFailed` after ``timeout`` seconds.

        ``condition`` may raise :class:`Retry` to say why it is not there yet (shown if the wait times out).
        """
        deadline = time.monotonic() + timeout
        reason = ""
        while True:
            try:
                result = condition()
                if result:
                    return result
            except Retry as err:
                reason = str(err)
            if time.monotonic() > deadline:
                raise StepFailed(f"timed out after {timeout:.0f}s waiting for {what}" + (f": {reason}" if reason else ""))
            end = time.monotonic() + interval
            while time.monotonic() < end:
                self.progress.tick()
                time.sleep(0.05)

    # --- set-up ---------------------------------------------------------------------------------------------

    def configure(self) -> None:
        """The registry's and the servers' INI layers: loopback ports, fast configuration refresh, JSON logs."""
        layout, ports = self.layout, self.ports
        for folder in (layout.certs, layout.logs, layout.descriptions, layout.examples, layout.evidence):
            folder.mkdir(parents=True, exist_ok=True)
        layout.registry_ini.write_text(
            "; fedbus demo: the registry listens on loopback.\n"
            "[logging]\nformat = json\n\n"
            f"[registry]\nhost = 127.0.0.1\nhttp-port = {ports.registry_http}\nhttps-port = {ports.registry_https}\n"
            "public-host = 127.0.0.1\n\n"
            f"[management]\nport = {ports.registry_management}\ninterface = 127.0.0.1\n",
            encoding="utf-8",
        )
        for department in DEPARTMENTS:
            layout.server_ini(department).write_text(
                f"; fedbus demo: {department.name}'s security server.\n"
                "[logging]\nformat = json\n\n"
                "[server]\nclient-proxy-host = 127.0.0.1\n"
                f"client-proxy-port = {ports.client_proxy(department)}\n"
                "server-proxy-host = 127.0.0.1\n"
                f"server-proxy-port = {ports.server_proxy(department)}\n"
                "; check the registry for a new global configuration every 2 seconds (default 60)\n"
                "conf-refresh-seconds = 2\n\n"
                "; the load balancer's health check and Prometheus /metrics (default off)\n"
                f"[healthcheck]\nport = {ports.healthcheck(department)}\ninterface = 127.0.0.1\n\n"
                "; the management REST API, X-Road's /api/v1 over HTTPS (docs/management-api.md; default port 4000)\n"
                f"[management]\nport = {ports.management(department)}\ninterface = 127.0.0.1\n",
                encoding="utf-8",
            )
        self.note(f"{self.rel(layout.registry_ini)}, "
                  + ", ".join(self.rel(layout.server_ini(d)) for d in DEPARTMENTS))

    def registry_init(self) -> None:
        """``fedbus registry init``."""
        answer = self.fedbus.json("registry", "init", "--registry-dir", self.rel(self.layout.registry),
                                  "--instance", INSTANCE, "--config", self.rel(self.layout.registry_ini))
        self.note(f"instance {INSTANCE}, published at {answer.get('public_url')}; CA in "
                  f"{self.rel(self.layout.registry / 'ca')}")

    def registry_settings(self) -> None:
        """Auto-approval and short intervals, so that the demo does not wait for minutes."""
        registry = self.rel(self.layout.registry)
        for key, value in (("auto_approve", "true"), ("generation_interval_seconds", "2"),
                           ("timestamping_interval_seconds", "2")):
            self.fedbus.run("registry", "set", "--registry-dir", registry, key, value)
        self.note("registration requests approved automatically; global configuration published every 2 s")

    def members(self) -> None:
        """``fedbus registry member add`` and ``subsystem add``."""
        registry = self.rel(self.layout.registry)
        for department in DEPARTMENTS:
            self.fedbus.run("registry", "member", "add", "--registry-dir", registry, str(department.member),
                            "--name", department.name)
            for client in department.clients:
                self.fedbus.run("registry", "subsystem", "add", "--registry-dir", registry, str(client))
            self.note(f"{department.member} {department.name}: subsystems {', '.join(department.subsystems)}")

    def registry_start(self) -> None:
        """``fedbus registry serve``, then wait until it answers HTTP."""
        url = f"http://127.0.0.1:{self.ports.registry_http}/internalconf"
        managed = self.supervisor.start_listening(
            "registry",
            [*self.fedbus.argv0, "registry", "serve", "--registry-dir", self.rel(self.layout.registry),
             "--config", self.rel(self.layout.registry_ini)],
            self.layout.log("registry"),
            [("registry HTTP", self.ports.registry_http), ("registry HTTPS", self.ports.registry_https),
             ("registry management API", self.ports.registry_management)],
            lambda: _http_answers(url),
            started_marker="registry_started", timeout=START_TIMEOUT, tick=self.progress.tick,
        )
        self.note(f"global configuration, OCSP and TSA on http://127.0.0.1:{self.ports.registry_http}, "
                  f"registrations on https://127.0.0.1:{self.ports.registry_https}")
        self.note(f"log: {self.rel(managed.log)}")

    def anchor(self) -> None:
        """``fedbus registry anchor``: the file each security server is initialised with (delivered out of band)."""
        result = self.fedbus.run("registry", "anchor", "--registry-dir", self.rel(self.layout.registry),
                                 "--out", self.rel(self.layout.anchor), "--config", self.rel(self.layout.registry_ini))
        self.note(result.stdout.strip())

    def _setup(self, department: Department) -> None:
        if self._through_api(department):
            self.server_setup_api(department)
        else:
            self.server_setup(department)

    def server_setup_api(self, department: Department) -> None:
        """As :meth:`server_setup`, through the management API run alone over the directory before ``init``
        (X-Road's setup scenario): anchor, initialisation, keys with CSRs, certificates, the hosted subsystems."""
        root = self.layout.server(department)
        directory, code, port = self.rel(root), department.server_code, self.ports.management(department)
        with self.api(department) as api:
            alone = self.supervisor.start_listening(
                f"{code}-api",
                [*self.fedbus.argv0, "server", "api", "--dir", directory,
                 "--config", self.rel(self.layout.server_ini(department))],
                self.layout.log(f"{code}-api"), [(f"{code} management API", port)], lambda: _tcp_open(port),
                started_marker="management_api_started", timeout=START_TIMEOUT, tick=self.progress.tick,
            )
            self.note(f"{code}'s management API alone over {directory} (before init): {api.base}")
            try:
                anchor = self.layout.anchor.read_bytes()
                api.call("POST", "/system/anchor", 201, body=anchor, content_type="application/octet-stream",
                         what=f"{self.rel(self.layout.anchor)}, {len(anchor)} bytes")
                api.call("POST", "/initialization", 201, json_body={
                    "owner_member_class": department.member.member_class,
                    "owner_member_code": department.member.member_code, "security_server_code": code})
                owner = f"{department.member.instance}:{department.member.member_class}:{department.member.member_code}"
                for usage, kind, member in (("AUTHENTICATION", "auth", None), ("SIGNING", "sign", owner)):
                    made = api.json("POST", "/tokens/soft/keys-with-csrs", 201,
                                    json_body=csr_request(usage, department.name, member))
                    key_id = made["key"]["id"]
                    csr = self.layout.certs / f"{code}-{kind}.csr"
                    cert = self.layout.certs / f"{code}-{kind}.pem"
                    # downloadCsr answers 201, as X-Road's OpenAPI file documents it.
                    csr.write_bytes(api.call("GET", f"/keys/{key_id}/csrs/{made['csr_id']}?csr_format=PEM", 201))
                    # The CA's side: the registry administrator issues the certificate from the request.
                    self.fedbus.run("registry", "ca", "issue", "--dir", self.rel(self.layout.registry / "ca"),
                                    "--csr", self.rel(csr), "--kind", kind, "--out", self.rel(cert))
                    der = x509.load_pem_x509_certificate(cert.read_bytes()).public_bytes(Encoding.DER)
                    imported = api.json("POST", "/token-certificates", 201, body=der,
                                        content_type="application/octet-stream",
                                        what=f"{self.rel(cert)} as DER, {len(der)} bytes")
                    details = imported.get("certificate_details") or {}
                    if kind == "auth":
                        self.state.auth_cert_hashes[code] = str(details["hash"])
                    self.note(f"{kind} key {key_id}: certificate {details.get('serial', '?')} "
                              f"for {details.get('subject_distinguished_name', '?')}")
                for client in department.clients:
                    api.call("POST", "/clients", 201, json_body=client_body(client))
            finally:
                self.supervisor.stop(alone)
        self.note(f"{SecurityServerId(department.member, code)} in {directory}, "
                  f"clients: {', '.join(department.subsystems)}; API calls in {self.rel(self.layout.commands_log)}")

    def server_setup(self, department: Department) -> None:
        """init, an auth key and a signing key with certificates from the CA, and the hosted subsystems."""
        directory = self.rel(self.layout.server(department))
        self.fedbus.json("server", "init", "--dir", directory, "--anchor", self.rel(self.layout.anchor),
                         "--owner", str(department.member), "--server-code", department.server_code)
        for kind in ("auth", "sign"):
            key = self.fedbus.json("server", "keys", "generate", "--dir", directory, "--kind", kind)
            csr = self.layout.certs / f"{department.server_code}-{kind}.csr"
            cert = self.layout.certs / f"{department.server_code}-{kind}.pem"
            self.fedbus.run("server", "keys", "csr", "--dir", directory, key["key_id"], "--name", department.name,
                            "--out", self.rel(csr))
            # The CA's side: the registry administrator issues the certificate from the request.
            self.fedbus.run("registry", "ca", "issue", "--dir", self.rel(self.layout.registry / "ca"),
                            "--csr", self.rel(csr), "--kind", kind, "--out", self.rel(cert))
            imported = self.fedbus.json("server", "keys", "import-cert", "--dir", directory, self.rel(cert))
            certificate = imported.get("certificate") or {}
            self.note(f"{kind} key {key['key_id']}: certificate {certificate.get('serial', '?')} "
                      f"for {certificate.get('subject', '?')}")
        for client in department.clients:
            self.fedbus.run("server", "client", "add", "--dir", directory, str(client))
        self.note(f"{SecurityServerId(department.member, department.server_code)} in {directory}, "
                  f"clients: {', '.join(department.subsystems)}")

    def console_logins(self) -> None:
        """One console user per role on both servers and the registry; the URLs and each password, shown once."""
        for line in console_urls(self.ports):
            self.note(line)
        for line in create_console_logins(self.fedbus, self.layout, self.rel):
            self.note(line)

    def servers_start(self) -> None:
        """``fedbus server run`` for both departments, then wait until the client proxies accept connections."""
        for department in DEPARTMENTS:
            port = self.ports.client_proxy(department)
            self.supervisor.start_listening(
                department.server_code,
                [*self.fedbus.argv0, "server", "run", "--dir", self.rel(self.layout.server(department)),
                 "--config", self.rel(self.layout.server_ini(department))],
                self.layout.log(department.server_code),
                [(f"{department.server_code} client proxy", port),
                 (f"{department.server_code} server proxy", self.ports.server_proxy(department))],
                lambda: _tcp_open(port),
                started_marker="security_server_started", timeout=START_TIMEOUT, tick=self.progress.tick,
            )
            self.note(f"{department.server_code}: client proxy http://127.0.0.1:{port}/, server proxy "
                      f"127.0.0.1:{self.ports.server_proxy(department)} (mutual TLS), management API "
                      f"https://127.0.0.1:{self.ports.management(department)}/api/v1")

    def _registry_servers(self) -> dict[str, dict[str, Any]]:
        listed = self.fedbus.json("registry", "server", "list", "--registry-dir", self.rel(self.layout.registry))
        return {entry["id"]: entry for entry in listed}

    def servers_register(self) -> None:
        """``fedbus server register`` (authCertReg), or ``PUT /token-certificates/{hash}/register`` for the server
        set up through its API; auto-approved, then listed by the registry."""
        for department in DEPARTMENTS:
            address = f"127.0.0.1:{self.ports.server_proxy(department)}"
            if self._through_api(department):
                cert_hash = self.state.auth_cert_hashes.get(department.server_code)
                if cert_hash is None:
                    raise StepFailed(f"{department.server_code}: no auth certificate imported through the API")
                with self.api(department) as api:
                    api.call("PUT", f"/token-certificates/{cert_hash}/register", 200, json_body={"address": address})
                self.note(f"{department.server_code}: auth certificate {cert_hash[:16]}... registration requested "
                          "(management API)")
                continue
            answer = self.fedbus.json("server", "register", "--dir", self.rel(self.layout.server(department)),
                                      "--address", address)
            self.note(f"{department.server_code}: {answer.get('type')} request {answer.get('id')}: {answer.get('status')}"
                      " (fedbus CLI)")
        wanted = {str(SecurityServerId(d.member, d.server_code)) for d in DEPARTMENTS}

        def registered() -> bool:
            servers = self._registry_servers()
            missing = [s for s in wanted if not (servers.get(s) or {}).get("auth_cert_hashes")]
            if missing:
                raise Retry(f"not yet registered: {', '.join(sorted(missing))}")
            return True

        self.wait("the registry to list both servers", registered, timeout=CLIENT_STATE_TIMEOUT)

    def clients_register(self) -> None:
        """``fedbus server client register`` (clientReg) for every subsystem; wait until each server has it registered."""
        for department in DEPARTMENTS:
            directory = self.rel(self.layout.server(department))
            if self._through_api(department):
                with self.api(department) as api:
                    for client in department.clients:
                        api.call("PUT", f"/clients/{encoded_client(client)}/register", 204)
                        self.note(f"{client}: registration requested (management API)")
                continue
            for client in department.clients:
                answer = self.fedbus.json("server", "client", "register", "--dir", directory, str(client))
                self.note(f"{client}: {answer.get('type')} request {answer.get('id')}: {answer.get('status')}"
                          " (fedbus CLI)")

        def all_registered() -> bool:
            pending = []
            for department in DEPARTMENTS:
                listed = self.fedbus.json("server", "client", "list", "--dir", self.rel(self.layout.server(department)))
                states = {entry["client"]: entry["state"] for entry in listed}
                pending += [f"{c} is {states.get(str(c), 'missing')}" for c in department.clients
                            if states.get(str(c)) != "registered"]
            if pending:
                raise Retry("; ".join(pending))
            return True

        self.wait("the security servers to see their subsystems registered in the global configuration",
                  all_registered, timeout=CLIENT_STATE_TIMEOUT, interval=1.0)

    def providers_start(self) -> None:
        """The example provider systems, each on its own port; their descriptions are saved for the set-up."""
        population = f"http://127.0.0.1:{self.ports.population}"
        providers = (
            ("getrandom", self.ports.getrandom, f"http://127.0.0.1:{self.ports.getrandom}/?wsdl", "getrandom.wsdl"),
            ("hello", self.ports.hello, f"http://127.0.0.1:{self.ports.hello}/?wsdl", "hello.wsdl"),
            ("population", self.ports.population, f"{population}/soap?wsdl", "population.wsdl"),
        )
        for module, port, url, saved in providers:
            self.supervisor.start_listening(
                module,
                [sys.executable, "-m", f"adapters.examples.{module}", "--port", str(port), "--log-format", "json"],
                self.layout.log(module),
                [(f"{module} service", port)],
                lambda: _http_ok(url),
                started_marker=f"listening on http://127.0.0.1:{port}/", timeout=START_TIMEOUT, tick=self.progress.tick,
            )
            self._save(url, saved)
            self.note(f"{module} on http://127.0.0.1:{port}/")
        self._save(f"{population}/rest/persons/openapi.json", "persons-openapi.json")
        self.note(f"descriptions saved in {self.rel(self.layout.descriptions)}: "
                  + ", ".join(sorted(p.name for p in self.layout.descriptions.iterdir())))

    def _save(self, url: str, name: str) -> None:
        with requests.get(url, timeout=10) as response:
            if response.status_code != 200:
                raise StepFailed(f"GET {url} answered HTTP {response.status_code}")
            (self.layout.descriptions / name).write_bytes(response.content)

    def services(self) -> None:
        """The provider's services and the Tax Board's access rights: through the Population Register's management
        API when its server is set up that way (service descriptions by URL, each service's URL, service clients),
        else ``fedbus server service add`` and ``acl grant``."""
        population = f"http://127.0.0.1:{self.ports.population}"
        published = (
            (GET_RANDOM, f"http://127.0.0.1:{self.ports.getrandom}/", "soap", "getrandom.wsdl", True),
            (HELLO, f"http://127.0.0.1:{self.ports.hello}/", "soap", "hello.wsdl", True),
            (GET_PERSON, f"{population}/soap", "soap", "population.wsdl", True),
            (FIND_PERSONS, f"{population}/soap", "soap", "population.wsdl", False),
            (PERSONS, f"{population}/rest/persons", "rest", "persons-openapi.json", True),
        )
        if self._through_api(POPULATION):
            self._services_api(published)
        else:
            self._services_cli(published)
        write_examples(self.layout, self.ports)

    def _services_api(self, published: tuple[tuple[ServiceId, str, str, str, bool], ...]) -> None:
        """X-Road's way: each description added by its URL (the provider serves it), which makes its services;
        then each service's URL, and the Tax Board's system as a service client of the granted ones."""
        population = f"http://127.0.0.1:{self.ports.population}"
        descriptions = (
            (EXAMPLES, {"url": f"http://127.0.0.1:{self.ports.getrandom}/?wsdl", "type": "WSDL"}),
            (EXAMPLES, {"url": f"http://127.0.0.1:{self.ports.hello}/?wsdl", "type": "WSDL"}),
            (REGISTER, {"url": f"{population}/soap?wsdl", "type": "WSDL"}),
            (REGISTER, {"url": f"{population}/rest/persons/openapi.json", "type": "OPENAPI3",
                        "rest_service_code": PERSONS.service_code}),
        )
        made: dict[tuple[str, str], str] = {}
        with self.api(POPULATION) as api:
            for client, body in descriptions:
                described = api.json("POST", f"/clients/{encoded_client(client)}/service-descriptions", 201,
                                     json_body=body)
                for service in described.get("services") or []:
                    made[(str(client), str(service["service_code"]))] = str(service["id"])
            for service, url, kind, _, grant in published:
                service_id = made.get((str(service.client), service.service_code))
                if service_id is None:
                    raise StepFailed(f"no service {service.service_code} came from {service.client}'s descriptions",
                                     details=sorted(f"{c} {code}" for c, code in made))
                quoted = urllib.parse.quote(service_id, safe="")
                api.json("PATCH", f"/services/{quoted}", 200, json_body={"url": url, "timeout": 60, "ssl_auth": False})
                if grant:
                    api.json("POST", f"/services/{quoted}/service-clients", 201, json_body={
                        "items": [{"id": encoded_client(CONSUMER), "service_client_type": "SUBSYSTEM"}]})
                self.note(f"{service} ({kind}) -> {url}" + ("" if grant else "  [no access right granted]"))

    def _services_cli(self, published: tuple[tuple[ServiceId, str, str, str, bool], ...]) -> None:
        """``fedbus server service add`` on the provider's server, and ``acl grant`` to the Tax Board's system."""
        directory = self.rel(self.layout.server(POPULATION))
        for service, url, kind, description, grant in published:
            # The description: the WSDL that getWsdl serves, or the OpenAPI whose paths become the REST endpoints.
            self.fedbus.run("server", "service", "add", "--dir", directory, str(service), "--url", url, "--kind", kind,
                            "--description", self.rel(self.layout.descriptions / description))
            if grant:
                # Access rights are per service code: every version of the service (DM-SS §2.1).
                code_only = ServiceId(service.client, service.service_code)
                self.fedbus.run("server", "acl", "grant", "--dir", directory, str(code_only), str(CONSUMER))
            self.note(f"{service} ({kind}) -> {url}" + ("" if grant else "  [no access right granted]"))

    # --- calls ------------------------------------------------------------------------------------------------

    def _consumer(self, name: str) -> SoapConsumer:
        consumer = self.state.consumers.get(name)
        if consumer is None:
            provider = EXAMPLES if name in ("getrandom", "hello") else REGISTER
            consumer = SoapConsumer(
                self._proxy_url(), client=CONSUMER, provider=provider, wsdl=self.layout.descriptions / f"{name}.wsdl",
                timeout=30,
            )
            self.state.consumers[name] = consumer
        return consumer

    def _proxy_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.client_proxy(TAX_BOARD)}/"

    def bus_ready(self) -> None:
        """Call getRandom until it answers: the servers pick up the configuration and each other's certificates."""
        consumer = self._consumer("getrandom")
        attempts = 0

        def answered() -> Any:
            nonlocal attempts
            attempts += 1
            try:
                return consumer.call("getRandom", message_id=f"demo-ready-{attempts}")
            except (XRoadFault, AdapterError) as err:
                raise Retry(f"last answer: {err}") from err

        started = time.monotonic()
        answer = self.wait("a first answer through the bus", answered, timeout=BUS_TIMEOUT, interval=1.0)
        self.note(f"getRandom answered after {attempts} attempt(s), {time.monotonic() - started:.1f}s: {answer.value}")

    def soap_calls(self) -> None:
        """getRandom, helloService and getPerson, with the answers' X-Road headers."""
        random_answer = self._consumer("getrandom").call("getRandom")
        self.note(f"getRandom -> {random_answer.value}")
        hello = self._consumer("hello").call("helloService", name=TAX_BOARD.name)
        self.note(f"helloService(name={TAX_BOARD.name!r}) -> {hello.value!r}")
        message_id = str(uuid.uuid4())
        person = self._consumer("population").call("getPerson", personCode=SAMPLE_PERSON, message_id=message_id,
                                                    user_id=SAMPLE_USER)
        self.state.message_ids["getPerson"] = message_id
        found = person.value[0] if person.value else None
        if found is None:
            raise StepFailed(f"getPerson({SAMPLE_PERSON}) found nobody")
        self.note(f"getPerson(personCode={SAMPLE_PERSON!r}, userId={SAMPLE_USER!r}) -> {found.givenName} "
                  f"{found.surname}, born {found.birthDate}, lives in {found.residence}")
        if person.header is not None and person.header.request_hash is not None:
            self.note(f"message id {message_id}; requestHash {person.header.request_hash[1][:24]}... "
                      "(the provider's server bound its answer to this request)")

    def access_denied(self) -> None:
        """findPersons is published but not granted: the bus refuses it with a typed fault."""
        try:
            self._consumer("population").call("findPersons", surname=SAMPLE_SURNAME)
        except AccessDeniedFault as fault:
            self.note(f"{type(fault).__name__}: {fault.fault_code}: {fault.fault_string}")
            self.note(f"fault detail {fault.detail_id} (the same id is in the provider server's log)")
            return
        raise StepFailed("findPersons was answered although no access right was granted")

    def provider_view(self) -> None:
        """The register logged who asked: the consumer's subsystem and end user, under the same message id."""
        message_id = self.state.message_ids.get("getPerson")
        if message_id is None:
            raise StepFailed("no getPerson call to look for")
        log = self.layout.log("population")

        def logged() -> dict[str, Any] | None:
            for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
                try:
                    event = json.loads(line)
                except ValueError:
                    continue
                if isinstance(event, dict) and event.get("event") == "person_looked_up" \
                        and event.get("message_id") == message_id:
                    return event
            raise Retry(f"no person_looked_up event with message id {message_id} in {self.rel(log)}")

        event = self.wait("the register's log line", logged, timeout=CALL_TIMEOUT, interval=0.25)
        self.note(f"{self.rel(log)}: person_looked_up client={event.get('client')} user_id={event.get('user_id')}")

    def metadata(self) -> None:
        """listClients (answered by the client proxy) and getWsdl (through the bus): the metadata services."""
        rest = RestConsumer(self._proxy_url(), client=CONSUMER, timeout=30)
        try:
            listed = rest.list_clients()
            members = listed.get("member", []) if isinstance(listed, dict) else []
            self.note(f"listClients: {len(members)} members and subsystems")

            def fetched() -> SoapConsumer:
                try:
                    return SoapConsumer.from_security_server(self._proxy_url(), CONSUMER, GET_PERSON, timeout=30)
                except XRoadFault as fault:  # the servers re-read their configuration every few seconds
                    raise Retry(str(fault)) from fault

            consumer = self.wait("getWsdl to answer", fetched, timeout=CALL_TIMEOUT, interval=0.5)
            try:
                self.note(f"getWsdl({GET_PERSON.service_code}) -> operations {', '.join(consumer.operations)}")
            finally:
                consumer.close()
        finally:
            rest.close()

    def rest_calls(self) -> None:
        """GET persons/{code} and persons?surname= through both security servers (REST r1)."""
        rest = RestConsumer(self._proxy_url(), client=CONSUMER, user_id=SAMPLE_USER, timeout=30)
        try:
            def first_answer() -> RestAnswer:
                try:
                    return rest.get(PERSONS, [SAMPLE_PERSON])
                except XRoadFault as fault:  # the servers re-read their configuration every few seconds
                    raise Retry(str(fault)) from fault

            answer = self.wait("the REST service to answer", first_answer, timeout=CALL_TIMEOUT, interval=0.5)
            if answer.status != 200:
                raise StepFailed(f"GET {rest.url_for(PERSONS, [SAMPLE_PERSON])} answered HTTP {answer.status}",
                                 details=answer.text.splitlines()[:5])
            person = answer.json()
            self.note(f"GET /r1/{PERSONS.to_path()}/{SAMPLE_PERSON} -> {person.get('givenName')} {person.get('surname')}"
                      f" (X-Road-Id {answer.message_id}, request hash {'present' if answer.request_hash else 'absent'})")
            self.state.message_ids["rest"] = answer.message_id or ""
            found = rest.get(PERSONS, params={"surname": SAMPLE_SURNAME})
            self.note(f"GET /r1/{PERSONS.to_path()}?surname={SAMPLE_SURNAME} -> HTTP {found.status}, "
                      f"{len(found.json()) if found.ok else 0} persons")
        finally:
            rest.close()

    def operations(self) -> None:
        """Each server's health port (docs/operations.md): the load balancer's check answers 200, ``/metrics``
        counts the exchanges, and ``fedbus server status`` shows the checks and the last hour's traffic."""
        for department in DEPARTMENTS:
            base = f"http://127.0.0.1:{self.ports.healthcheck(department)}"

            def healthy() -> requests.Response:
                answer = requests.get(base + "/", timeout=10)
                if answer.status_code != 200:
                    raise Retry(f"the health check answered {answer.status_code}: {answer.text.strip()}")
                return answer

            self.wait(f"{department.server_code}'s health check", healthy, timeout=CALL_TIMEOUT, interval=1.0)
            metrics = requests.get(base + "/metrics", timeout=10).text
            exchanges = sum(float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines()
                            if line.startswith("fedbus_exchanges_total{"))
            status = self.fedbus.json("server", "status", "--dir", self.rel(self.layout.server(department)),
                                      "--config", self.rel(self.layout.server_ini(department)))
            checks = status["health"]["checks"].values()
            traffic = sum(line["succeeded"] + line["failed"] for line in status["traffic_last_hour"])
            self.note(f"{department.server_code}: GET {base}/ -> 200; /metrics counts {exchanges:.0f} exchanges; "
                      f"`fedbus server status`: {sum(1 for c in checks if c['ok'])} checks ok, {traffic} exchanges "
                      "recorded in the last hour")

    # --- evidence ----------------------------------------------------------------------------------------------

    def _audit(self) -> None:
        if not self.state.audit_available:
            if not self.fedbus.available("audit"):
                raise StepSkipped(f"{NOT_AVAILABLE}: fedbus audit")
            self.state.audit_available = True

    def audit_find(self) -> None:
        """``fedbus audit find`` in both servers' logs: the request and the response of the getPerson call."""
        self._audit()
        message_id = self.state.message_ids.get("getPerson", "")
        for department in DEPARTMENTS:
            records = self.fedbus.json("audit", "find", "--dir", self.rel(self.layout.server(department)),
                                       "--query-id", message_id)
            directions = sorted(str(r.get("direction")) for r in records) if isinstance(records, list) else []
            if len(directions) < 2:
                raise StepFailed(f"{department.server_code}: expected the request and the response of {message_id}, "
                                 f"found {len(directions)} record(s)")
            self.note(f"{department.server_code}: {len(directions)} records ({', '.join(directions)}) "
                      f"for message {message_id}")

    def audit_export(self) -> None:
        """``fedbus audit export`` the provider side's request container once timestamped, then verify it offline."""
        self._audit()
        message_id = self.state.message_ids.get("getPerson", "")
        directory = self.rel(self.layout.server(POPULATION))
        container = self.layout.evidence / f"{message_id}-request.asice"

        def exported() -> bool:
            answer = self.fedbus.json("audit", "export", "--dir", directory, message_id, "--request-only",
                                      "--out", self.rel(container))
            if answer.get("not_timestamped"):
                raise Retry(f"record(s) {answer['not_timestamped']} not timestamped yet")
            return True

        self.wait("the request's record to be timestamped and exported", exported, timeout=BUS_TIMEOUT, interval=2.0)
        self.note(f"exported {self.rel(container)} (the provider's server's signed, timestamped copy of the request)")
        conf = self.layout.evidence / "verificationconf"
        self.fedbus.run("audit", "verificationconf", "--dir", directory, "--out", self.rel(conf))
        report = self.fedbus.json("audit", "verify", "container", self.rel(container), "--conf", self.rel(conf))
        if not report.get("verified"):
            raise StepFailed(f"the container did not verify: {report}")
        self.note(f"fedbus audit verify container: VERIFIED against {self.rel(conf)}; signer {report.get('signer')}, "
                  f"timestamp {report.get('timestamp')}")
        for check in report.get("checks") or []:
            if isinstance(check, dict):
                self.note(f"  {check.get('status', '?'):<7} {check.get('name')}: {check.get('detail')}")


class Retry(Exception):
    """A polled condition is not there yet (the message says why)."""


def _http_answers(url: str) -> bool:
    try:
        requests.get(url, timeout=2).close()
    except requests.RequestException:
        return False
    return True


def _http_ok(url: str) -> bool:
    try:
        with requests.get(url, timeout=2) as response:
            return response.status_code == 200
    except requests.RequestException:
        return False


def _tcp_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False

