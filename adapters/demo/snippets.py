"""Ready-to-paste examples for trying the running demo federation by hand: curl and Python.

The SOAP request bodies and a small Python script are written into ``WORKDIR/examples`` so that the printed
commands stay short; the REST examples need nothing but curl.
"""

from __future__ import annotations

import shlex
import shutil
import sys
from pathlib import Path

from lxml import etree

from adapters.demo.federation import (
    CONSUMER,
    GET_PERSON,
    GET_RANDOM,
    HELLO,
    PERSONS,
    POPULATION,
    SAMPLE_PERSON,
    SAMPLE_SURNAME,
    SAMPLE_USER,
    TAX_BOARD,
    DemoPorts,
    Layout,
)
from adapters.demo.console_logins import console_urls
from adapters.examples.getrandom import NAMESPACE as EXAMPLES_NS
from adapters.examples.population import NAMESPACE as POPULATION_NS
from security_server.core.soap import SoapHeader, build_envelope


def _request(service_code: str, namespace: str, fields: dict[str, str], message_id: str) -> bytes:
    service = {"getRandom": GET_RANDOM, "helloService": HELLO, "getPerson": GET_PERSON}[service_code]
    header = SoapHeader(client=CONSUMER, service=service, id=message_id, user_id=SAMPLE_USER)
    wrapper = etree.Element(etree.QName(namespace, service_code), nsmap={"prod": namespace})
    for name, value in fields.items():
        etree.SubElement(wrapper, name).text = value
    return build_envelope(header, wrapper)


def python_example(layout: Layout, ports: DemoPorts) -> str:
    """A short script calling the register over SOAP and REST through the Tax Board's security server."""
    url = f"http://127.0.0.1:{ports.client_proxy(TAX_BOARD)}/"
    return f'''from adapters.consumer.faults import AccessDeniedFault
from adapters.consumer.rest import RestConsumer
from adapters.consumer.soap import SoapConsumer
from security_server.core.identifiers import ClientId, ServiceId

me = ClientId.parse_display("{CONSUMER}")
get_person = ServiceId.parse_display("{GET_PERSON}")

soap = SoapConsumer.from_security_server("{url}", me, get_person, user_id="{SAMPLE_USER}")  # WSDL via getWsdl
print(soap.service.getPerson(personCode="{SAMPLE_PERSON}"))
try:
    soap.service.findPersons(surname="{SAMPLE_SURNAME}")  # published, but not granted to the Tax Board
except AccessDeniedFault as fault:
    print(type(fault).__name__, fault.fault_code, fault.detail_id)

rest = RestConsumer("{url}", me, user_id="{SAMPLE_USER}")
print(rest.get(ServiceId.parse_display("{PERSONS}"), ["{SAMPLE_PERSON}"]).json())
'''


def write_examples(layout: Layout, ports: DemoPorts) -> None:
    """Write the SOAP request files and the Python script into ``layout.examples``."""
    layout.examples.mkdir(parents=True, exist_ok=True)
    requests = {
        "getRandom": (EXAMPLES_NS, {}),
        "helloService": (EXAMPLES_NS, {"name": "curl"}),
        "getPerson": (POPULATION_NS, {"personCode": SAMPLE_PERSON}),
    }
    for index, (code, (namespace, fields)) in enumerate(requests.items(), start=1):
        (layout.examples / f"{code}.xml").write_bytes(_request(code, namespace, fields, f"demo-curl-{index}"))
    (layout.examples / "call.py").write_text(python_example(layout, ports), encoding="utf-8")


def fedbus_name() -> str:
    """How the user types ``fedbus``: the bare name when it is on PATH, else the script beside this Python."""
    beside = Path(sys.executable).with_name("fedbus")
    found = shutil.which("fedbus")
    if found is not None and (not beside.exists() or Path(found).resolve() == beside.resolve()):
        return "fedbus"
    return str(beside) if beside.exists() else f"{sys.executable} -m adapters.demo  # fedbus is not installed;"


def try_it(layout: Layout, ports: DemoPorts, *, audit: bool) -> list[str]:
    """The lines printed while the federation keeps running."""
    fedbus = fedbus_name()
    proxy = f"http://127.0.0.1:{ports.client_proxy(TAX_BOARD)}"
    client_header = f"X-Road-Client: {CONSUMER.to_path()}"
    q = shlex.quote
    lines = [
        "The federation is running. Try it from another terminal:",
        "",
        "  # SOAP, through the Tax Board's security server (request files are in examples/)",
        f"  curl -s -H 'Content-Type: text/xml' --data-binary @{q(str(layout.examples / 'getPerson.xml'))} {proxy}/",
        f"  curl -s -H 'Content-Type: text/xml' --data-binary @{q(str(layout.examples / 'getRandom.xml'))} {proxy}/",
        "",
    ]
    lines += [
        "  # REST (r1)",
        f"  curl -s -H {q(client_header)} -H 'X-Road-UserId: {SAMPLE_USER}' "
        f"{proxy}/r1/{PERSONS.to_path()}/{SAMPLE_PERSON}",
        f"  curl -s -H {q(client_header)} '{proxy}/r1/{PERSONS.to_path()}?surname={SAMPLE_SURNAME}'",
        f"  curl -s -H 'Accept: application/json' {proxy}/listClients",
        "",
    ]
    lines += [
        "  # Python (the consumer adapters; zeep and requests underneath)",
        f"  {q(sys.executable)} {q(str(layout.examples / 'call.py'))}",
        "",
        *("  " + line if line else "" for line in python_example(layout, ports).splitlines()),
        "",
        "  # the administrators' view",
        f"  {fedbus} server status --dir {q(str(layout.server(POPULATION)))}",
        f"  {fedbus} server acl list --dir {q(str(layout.server(POPULATION)))}",
        f"  {fedbus} registry server list --registry-dir {q(str(layout.registry))}",
        "",
        "  # the consoles in a browser (their certificates are self-signed; the logins are under the",
        "  # 'Create a console login for each role' step above)",
        *(f"  {line}" for line in console_urls(ports)),
    ]
    if audit:
        lines.append(f"  {fedbus} audit find --dir {q(str(layout.server(POPULATION)))} --service "
                     f"{GET_PERSON}")
    lines += ["", f"Every command the demo ran is in {layout.commands_log}; process logs are in {layout.logs}.",
              "Press Ctrl-C to stop the federation."]
    return lines


def relative(path: Path, root: Path) -> str:
    """``path`` relative to ``root`` when it is inside it (for commands run in the working directory)."""
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)
