"""The example services: X-Road's getRandom and helloService, and the population register with its seed data."""

from __future__ import annotations

import datetime as dt
import json
import random
import subprocess
import sys
import urllib.request
from pathlib import Path

from lxml import etree

from adapters.examples import getrandom, hello
from adapters.examples.population import NAMESPACE, Register, load_persons
from adapters.provider.caller import Caller
from security_server.core.identifiers import ClientId, ServiceId
from security_server.core.soap import SoapHeader, build_envelope, parse_soap

CLIENT = ClientId("EE", "GOV", "70000001", "consumer")
PROVIDER = ClientId("EE", "GOV", "70000002", "provider")
REPO = Path(__file__).resolve().parents[3]


def soap_call(provider: object, namespace: str, code: str, fields: dict[str, str]) -> etree._Element:
    """Answer one request with ``provider.handle`` and return the response wrapper."""
    header = SoapHeader(client=CLIENT, service=ServiceId(PROVIDER, code, "v1"), id="m-1", user_id="EE1")
    wrapper = etree.Element(etree.QName(namespace, code))
    for name, value in fields.items():
        etree.SubElement(wrapper, name).text = value
    status, content_type, body = provider.handle(build_envelope(header, wrapper), "text/xml")  # type: ignore[attr-defined]
    assert status == 200, body
    return parse_soap(body, content_type, max_bytes=1 << 20, is_response=True).body[0]


def test_get_random_answers_a_number_from_1_to_100() -> None:
    """getRandom's data is a number from 1 to 100 (seeded here)."""
    answer = soap_call(getrandom.build_provider(random.Random(7)), getrandom.NAMESPACE, "getRandom", {})
    assert 1 <= int(answer.findtext("data") or "0") <= 100


def test_hello_service_greets_as_x_roads_example_does() -> None:
    """helloService answers X-Road's example greeting."""
    answer = soap_call(hello.build_provider(), getrandom.NAMESPACE, "helloService", {"name": "Ann"})
    assert answer.findtext("message") == "Hello Ann! Greetings from adapter server!"


def test_the_seed_data_is_shipped_and_consistent() -> None:
    """population.json loads from the package; every child named is a person in the register."""
    persons = load_persons()
    assert len(persons) >= 8 and persons["38001010014"]["birthDate"] == dt.date(1980, 1, 1)
    for person in persons.values():
        assert len(person["personCode"]) == 11 and person["personCode"].isdigit()
        assert all(child in persons for child in person["children"])


def test_the_register_over_soap() -> None:
    """getPerson finds one person (or none, as an empty answer); findPersons finds by surname."""
    provider = Register().soap()
    found = soap_call(provider, NAMESPACE, "getPerson", {"personCode": "38001010014"})
    assert [p.findtext("givenName") for p in found.iterfind("person")] == ["Mart"]
    assert [c.text for c in found.iterfind("person/children")] == ["51005050019", "61208120025"]
    assert list(soap_call(provider, NAMESPACE, "getPerson", {"personCode": "00000000000"})) == []
    tamm = soap_call(provider, NAMESPACE, "findPersons", {"surname": "tamm"})
    assert len(list(tamm.iterfind("person"))) == 4


def test_the_register_over_rest_logs_who_asked() -> None:
    """GET /{code} and GET /?surname= answer JSON; unknown codes are 404; the caller is seen."""
    seen: list[Caller] = []

    class Recording(Register):
        def lookup(self, caller: Caller, person_code: str):  # type: ignore[no-untyped-def]
            seen.append(caller)
            return super().lookup(caller, person_code)

    provider = Recording().rest()
    headers = {"X-Road-Client": "EE/GOV/70000001/consumer", "X-Road-UserId": "EE1", "X-Road-Id": "m-5"}
    status, _, body = provider.handle("GET", ["48203150022"], {}, headers, b"")
    assert status == 200 and json.loads(body)["givenName"] == "Kadri" and json.loads(body)["birthDate"] == "1982-03-15"
    assert (seen[0].client, seen[0].user_id, seen[0].message_id) == (CLIENT, "EE1", "m-5")
    status, _, body = provider.handle("GET", [], {"surname": ["Kask"]}, headers, b"")
    assert status == 200 and [p["givenName"] for p in json.loads(body)] == ["Jaan", "Oskar"]
    assert provider.handle("GET", ["1"], {}, headers, b"")[0] == 404
    assert provider.handle("GET", [], {}, headers, b"")[0] == 400
    paths = provider.openapi()["paths"]
    assert set(paths) == {"/{personCode}", "/"}


def test_an_example_runs_alone_as_a_web_server() -> None:
    """``python -m adapters.examples.population --port 0`` says where it listens and serves SOAP and REST."""
    process = subprocess.Popen(
        [sys.executable, "-m", "adapters.examples.population", "--port", "0", "--log-format", "json"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert "listening on http://127.0.0.1:" in line, line
        base = line.split("listening on ")[1].strip().rstrip("/")
        with urllib.request.urlopen(f"{base}/soap?wsdl", timeout=10) as answer:
            assert b"getPerson" in answer.read()
        with urllib.request.urlopen(f"{base}/rest/persons/openapi.json", timeout=10) as answer:
            assert json.loads(answer.read())["servers"] == [{"url": f"{base}/rest/persons"}]
        with urllib.request.urlopen(f"{base}/rest/persons/38001010014", timeout=10) as answer:
            assert json.loads(answer.read())["surname"] == "Tamm"
    finally:
        process.terminate()
        process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()
