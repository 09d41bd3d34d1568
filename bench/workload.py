"""What the load generator sends: the same SOAP or REST request body on every path, padded to a size.

SOAP: an X-Road 4.0 envelope (client = the Tax Board's ``tax-app``, service = the Population Register's
``examples/benchEcho/v1``) whose body element carries padding text, so the whole envelope is exactly the asked
size; POSTed to ``/`` of the echo provider, of the first bare hop, or of the consumer's client proxy. REST: a JSON
document of the asked size POSTed to ``/rest/echo`` (direct, bare hop) or to
``/r1/DEMO/GOV/70000002/examples/benchRest/echo`` with ``X-Road-Client`` (fedbus). The provider's answers are
small (the SOAP header echoed with a short body; ``{"echo": N}``), so the size is the request's.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Literal

from lxml import etree

from adapters.demo.federation import CONSUMER, EXAMPLES
from security_server.core.identifiers import ServiceId
from security_server.core.soap import SoapHeader, build_envelope

Protocol = Literal["soap", "rest"]
Path = Literal["direct", "barehop", "fedbus"]

BENCH_SOAP = ServiceId(EXAMPLES, "benchEcho", "v1")
"""The SOAP service every fedbus SOAP case calls (published at the echo provider)."""
BENCH_REST = ServiceId(EXAMPLES, "benchRest")
"""The REST service every fedbus REST case calls (base URL: the echo provider's ``/rest``)."""
BENCH_NS = "http://bench.fedbus.example"


@dataclass(frozen=True, slots=True)
class Request:
    """One request as wrk sends it: method, path, headers and body."""

    method: str
    path: str
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


def soap_body(size: int, message_id: str = "bench-1") -> bytes:
    """An X-Road SOAP request for :data:`BENCH_SOAP` of exactly ``size`` bytes (at least the bare envelope)."""

    def envelope(padding: str) -> bytes:
        wrapper = etree.Element(etree.QName(BENCH_NS, "benchEcho"), nsmap={"b": BENCH_NS})
        etree.SubElement(wrapper, etree.QName(BENCH_NS, "data")).text = padding
        return build_envelope(SoapHeader(client=CONSUMER, service=BENCH_SOAP, id=message_id), wrapper)

    bare = envelope("")
    if size < len(bare):
        raise ValueError(f"a SOAP request is at least {len(bare)} bytes, not {size}")
    body = envelope("x" * (size - len(bare)))
    assert len(body) == size
    return body


def rest_body(size: int) -> bytes:
    """A JSON document of exactly ``size`` bytes."""
    bare = json.dumps({"data": ""}, separators=(",", ":")).encode()
    if size < len(bare):
        raise ValueError(f"a REST request body is at least {len(bare)} bytes, not {size}")
    return json.dumps({"data": "x" * (size - len(bare))}, separators=(",", ":")).encode()


def request_for(protocol: Protocol, path: Path, size: int) -> Request:
    """The request wrk sends on ``path`` for ``protocol`` with a ``size``-byte body."""
    if protocol == "soap":
        return Request("POST", "/", soap_body(size), {"Content-Type": "text/xml; charset=UTF-8"})
    body = rest_body(size)
    if path == "fedbus":
        return Request(
            "POST", f"/r1/{BENCH_REST.to_path()}/echo", body,
            {"Content-Type": "application/json", "X-Road-Client": CONSUMER.to_path()},
        )
    return Request("POST", "/rest/echo", body, {"Content-Type": "application/json"})
