"""The consumer adapters against the example providers through two real security servers.

The federation is the one of the SOAP end-to-end test (registry with its CA, OCSP responder and published global
configuration; two security servers from ``make_service``, registered through the real request flow, mutual TLS
between them), from tests/e2e_federation.py. The provider department runs the example services of adapters/examples on
loopback; the consumer department's system is the adapters (zeep and requests) in a thread. Real X-Road faults
come back as the typed exceptions of their family, with their fault code and detail UUID.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from twisted.internet import defer
from twisted.internet.threads import deferToThread

from adapters.consumer.faults import AccessDeniedFault, ServiceTypeFault, UnknownServiceFault, XRoadFault
from adapters.consumer.rest import RestConsumer
from adapters.consumer.soap import SoapConsumer
from adapters.examples import getrandom, hello
from security_server.core.acl import AccessRight
from security_server.core.identifiers import ServiceId
from security_server.serverconf.store import ServerConfStore, ServiceKind
from tests.adapters.bus_federation import ExampleProvidersFederation, RecordingRegister
from tests.e2e_federation import CONSUMER, CONSUMER_MEMBER, PROVIDER, PROVIDER_MEMBER
GET_RANDOM = ServiceId(PROVIDER, "getRandom", "v1")
GET_PERSON = ServiceId(PROVIDER, "getPerson", "v1")
FIND_PERSONS = ServiceId(PROVIDER, "findPersons", "v1")
PERSONS = ServiceId(PROVIDER, "persons")
USER = "EE47101010033"


def department_system(proxy_url: str, descriptions: dict[str, bytes]) -> dict[str, Any]:
    """What the consumer department's system does, with the adapters, in a thread (blocking HTTP)."""
    out: dict[str, Any] = {}

    def fault_of(call: Any) -> XRoadFault:
        try:
            call()
        except XRoadFault as fault:
            return fault
        raise AssertionError("no fault")

    with SoapConsumer(proxy_url, CONSUMER, PROVIDER, wsdl=descriptions["getrandom"]) as random_consumer:
        out["random"] = random_consumer.call("getRandom")
    with SoapConsumer(proxy_url, CONSUMER, PROVIDER, wsdl=descriptions["population"], user_id=USER) as register:
        out["person"] = register.call("getPerson", personCode="38001010014", message_id="adapters-e2e-1")
        out["nobody"] = register.service.getPerson(personCode="00000000000")
        out["denied"] = fault_of(lambda: register.call("findPersons", surname="Tamm"))
    with SoapConsumer(proxy_url, CONSUMER, PROVIDER, wsdl=descriptions["hello"]) as greeter:
        out["unknown"] = fault_of(lambda: greeter.call("helloService", name="Ann"))
    fetched = SoapConsumer.from_security_server(proxy_url, CONSUMER, GET_PERSON)
    with fetched:
        out["fetched_operations"] = fetched.operations
        out["fetched_person"] = fetched.service.getPerson(personCode="48203150022")
    with RestConsumer(proxy_url, CONSUMER, user_id=USER) as rest:
        out["rest_person"] = rest.get(PERSONS, ["38001010014"], message_id="adapters-e2e-rest")
        out["rest_search"] = rest.get(PERSONS, params={"surname": "Kask"})
        out["rest_missing"] = rest.get(PERSONS, ["00000000000"])
        out["rest_soap_service"] = fault_of(lambda: rest.get(ServiceId(PROVIDER, "getRandom")))
        out["rest_unknown"] = fault_of(lambda: rest.get(ServiceId(PROVIDER, "nothingHere")))
        out["clients"] = rest.list_clients()
    return out


def _uuid(text: str | None) -> bool:
    try:
        uuid.UUID(str(text))
    except ValueError:
        return False
    return True


class AdaptersThroughTheBusTest(ExampleProvidersFederation):
    """zeep and REST consumers, example providers, two security servers, real mutual TLS."""

    @defer.inlineCallbacks
    def test_consumer_adapters_call_the_example_providers_through_two_security_servers(self) -> Any:
        """SOAP and REST answers arrive with X-Road headers; access_denied, unknown_service and service_type are typed."""
        register = RecordingRegister()
        population = self.serve_example(register.resource("http://127.0.0.1"))
        random_service = self.serve_example(getrandom.build_provider().resource())
        descriptions = {
            "getrandom": getrandom.build_provider().wsdl("http://127.0.0.1/"),
            "hello": hello.build_provider().wsdl("http://127.0.0.1/"),
            "population": register.soap().wsdl(f"{population}/soap"),
        }
        openapi = register.rest().openapi(f"{population}/rest/persons")
        yield self.registry.publish_now()
        anchor = self.anchor()
        consumer = yield self.add_department(1, CONSUMER_MEMBER, CONSUMER, anchor)
        provider = yield self.add_department(2, PROVIDER_MEMBER, PROVIDER, anchor)
        with ServerConfStore(provider.root / "serverconf.db") as store:
            store.add_service(GET_RANDOM, url=f"{random_service}/",
                              description=descriptions["getrandom"])
            store.add_service(GET_PERSON, url=f"{population}/soap", description=descriptions["population"])
            store.add_service(FIND_PERSONS, url=f"{population}/soap", description=descriptions["population"])
            store.add_service(PERSONS, url=f"{population}/rest/persons", kind=ServiceKind.REST,
                              description=json.dumps(openapi).encode())
            for granted in (GET_RANDOM, GET_PERSON, PERSONS):
                store.grant(AccessRight.for_service(CONSUMER, ServiceId(PROVIDER, granted.service_code)))
        yield self.catch_up(consumer, provider)

        proxy_url = f"http://127.0.0.1:{consumer.service.client_proxy_port}/"
        out = yield deferToThread(department_system, proxy_url, descriptions)

        # SOAP through the bus: zeep's values, and the answer's X-Road header with requestHash
        assert 1 <= int(out["random"].value) <= 100
        person = out["person"]
        assert person.value[0].givenName == "Mart" and person.service == GET_PERSON
        assert person.header is not None and person.header.id == "adapters-e2e-1" and person.header.user_id == USER
        assert person.header.request_hash is not None
        assert not out["nobody"]  # nobody with that code: an empty answer, not a fault (pr-mess Annex D.2)
        # the provider saw who asked
        asked = next(c for c in register.callers if c.message_id == "adapters-e2e-1")
        assert (asked.client, asked.user_id, asked.service) == (CONSUMER, USER, GET_PERSON)
        # real X-Road faults, typed, with code and detail UUID
        denied = out["denied"]
        assert isinstance(denied, AccessDeniedFault) and denied.fault_code == "server.serverproxy.access_denied"
        assert _uuid(denied.detail_id) and denied.http_status == 200  # X-Road's HTTP status of every SOAP fault
        unknown = out["unknown"]
        assert isinstance(unknown, UnknownServiceFault) and unknown.fault_code == "server.serverproxy.unknown_service"
        assert _uuid(unknown.detail_id)
        # the WSDL through the bus (getWsdl), then a call with it
        assert {"getPerson", "findPersons"} <= set(out["fetched_operations"])
        assert out["fetched_person"][0].givenName == "Kadri"
        # REST through the bus: the provider's JSON with the X-Road response headers
        rest_person = out["rest_person"]
        assert rest_person.status == 200 and rest_person.json()["surname"] == "Tamm"
        assert rest_person.message_id == "adapters-e2e-rest" and rest_person.request_hash and rest_person.request_id
        assert [p["givenName"] for p in out["rest_search"].json()] == ["Jaan", "Oskar"]
        assert out["rest_missing"].status == 404 and "x-road-error" not in out["rest_missing"].headers
        soap_over_rest = out["rest_soap_service"]
        assert isinstance(soap_over_rest, ServiceTypeFault) and _uuid(soap_over_rest.detail_id)
        assert isinstance(out["rest_unknown"], UnknownServiceFault) and _uuid(out["rest_unknown"].detail_id)
        assert any(m["id"].get("subsystem_code") == "provider" for m in out["clients"]["member"])
