"""A WSDL-driven client through the bus (issue 14 point 6): zeep built from ``getWsdl``'s WSDL, X-Road headers as
zeep header arguments.

The federation is the shared two-department one (tests/e2e_federation.py); the provider department runs the
population register example. The consumer's system fetches the WSDL through its own security server with X-Road's
``getWsdl`` (pr-meta §5), builds a plain zeep client from those bytes (external documents forbidden), and passes
the X-Road headers as zeep's ``_soapheaders`` dictionary, which the WSDL's ``soap:header`` parts make possible.
"""

from __future__ import annotations

import io
from typing import Any

import zeep
import zeep.plugins
import zeep.transports
from lxml import etree
from twisted.internet import defer
from twisted.internet.threads import deferToThread

from adapters.consumer.soap import fetch_wsdl
from adapters.examples.population import NAMESPACE
from security_server.core.acl import AccessRight
from security_server.core.identifiers import ServiceId
from security_server.core.metadata import rewrite_wsdl
from security_server.core.soap import parse_soap
from security_server.serverconf.store import ServerConfStore
from tests.adapters.bus_federation import ExampleProvidersFederation, RecordingRegister
from tests.adapters.zeep_headers import zeep_headers
from tests.e2e_federation import CONSUMER, CONSUMER_MEMBER, PROVIDER, PROVIDER_MEMBER

GET_PERSON = ServiceId(PROVIDER, "getPerson", "v1")
USER = "EE47101010033"
MAX = 1 << 20


def wsdl_driven_system(proxy_url: str) -> dict[str, Any]:
    """The consumer's system: getWsdl through the bus, zeep from its bytes, a call with header arguments."""
    out: dict[str, Any] = {"wsdl": fetch_wsdl(proxy_url, CONSUMER, GET_PERSON, user_id=USER)}
    history = zeep.plugins.HistoryPlugin()  # type: ignore[no-untyped-call]
    transport = zeep.transports.Transport(timeout=30, operation_timeout=30)  # type: ignore[no-untyped-call]
    settings = zeep.Settings(strict=True, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    try:
        make_client: Any = zeep.Client
        client = make_client(io.BytesIO(out["wsdl"]), transport=transport, settings=settings, plugins=[history])
        proxy = client.create_service(f"{{{NAMESPACE}}}populationServiceBinding", proxy_url)
        headers = zeep_headers(CONSUMER, GET_PERSON, "wsdl-headers-e2e-1", user_id=USER, issue="case 7")
        out["persons"] = proxy.getPerson(personCode="38001010014", _soapheaders=headers)
        out["sent"] = etree.tostring(history.last_sent["envelope"])
        with client.settings(raw_response=True):
            raw = proxy.getPerson(personCode="38001010014",
                                  _soapheaders=zeep_headers(CONSUMER, GET_PERSON, "wsdl-headers-e2e-2"))
        out["raw"] = (raw.status_code, raw.headers.get("Content-Type", ""), raw.content)
    finally:
        transport.session.close()  # no keep-alive connection left behind in the reactor
    return out


class WsdlHeadersThroughTheBusTest(ExampleProvidersFederation):
    """zeep from the WSDL getWsdl returns, calling the population register through two security servers."""

    @defer.inlineCallbacks
    def test_zeep_from_get_wsdl_sends_x_road_headers_as_header_arguments(self) -> Any:
        """The WSDL through the bus declares the headers; zeep's call with them is answered, the provider sees them."""
        register = RecordingRegister()
        population = self.serve_example(register.resource("http://127.0.0.1"))
        description = register.soap().wsdl(f"{population}/soap")
        yield self.registry.publish_now()
        anchor = self.anchor()
        consumer = yield self.add_department(1, CONSUMER_MEMBER, CONSUMER, anchor)
        provider = yield self.add_department(2, PROVIDER_MEMBER, PROVIDER, anchor)
        with ServerConfStore(provider.root / "serverconf.db") as store:
            store.add_service(GET_PERSON, url=f"{population}/soap", description=description)
            store.grant(AccessRight.for_service(CONSUMER, GET_PERSON))
        yield self.catch_up(consumer, provider)

        proxy_url = f"http://127.0.0.1:{consumer.service.client_proxy_port}/"
        out = yield deferToThread(wsdl_driven_system, proxy_url)

        # getWsdl gave the provider's WSDL (its address hidden, as X-Road does), with the header parts
        assert out["wsdl"] == rewrite_wsdl(description) and b'part="protocolVersion"' in out["wsdl"]
        assert population.encode() not in out["wsdl"]
        # what zeep put on the wire is a valid X-Road request header
        sent = parse_soap(out["sent"], "text/xml; charset=UTF-8", max_bytes=MAX).header
        assert sent is not None and (sent.client, sent.service, sent.id) == (CONSUMER, GET_PERSON, "wsdl-headers-e2e-1")
        assert (sent.user_id, sent.issue, sent.protocol_version) == (USER, "case 7", "4.0")
        # the answer came through both security servers
        assert out["persons"][0].givenName == "Mart"
        asked = next(c for c in register.callers if c.message_id == "wsdl-headers-e2e-1")
        assert (asked.client, asked.service, asked.user_id) == (CONSUMER, GET_PERSON, USER)
        status, content_type, body = out["raw"]
        answer = parse_soap(body, content_type, max_bytes=MAX, is_response=True)
        assert status == 200 and answer.header is not None and answer.header.id == "wsdl-headers-e2e-2"
        assert answer.header.request_hash is not None and answer.header.user_id is None
