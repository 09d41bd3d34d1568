"""The consumer department's REST, metadata and attachment traffic of the issue 6 end-to-end tests.

Shared by the REST end-to-end test and the evidence test that exports the same traffic: the provider's services
and rights it needs (``publish_services``), and the department's system itself (``department_system``), which
speaks raw HTTP in a thread as ``curl`` does.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

from lxml import etree

from security_server.core.acl import AccessRight, Endpoint
from security_server.core.identifiers import XROAD_NS, ServiceId
from security_server.core.multipart import Part, build_multipart, format_header_value
from security_server.core.soap import SoapHeader, build_envelope
from security_server.serverconf.store import ServerConfStore, ServiceKind
from tests.e2e_federation import CONSUMER, PROVIDER, SERVICE
from tests.security_server.proxy.rest_provider import PETSTORE_OPENAPI, WSDL, http_call

PETS = ServiceId(PROVIDER, "pets")
DOCUMENTS = ServiceId(PROVIDER, "storeDocument", "v1")
RANDOM = SERVICE
R1 = "/r1/EE/GOV/70000311/provider"
CLIENT = "EE/GOV/70000310/consumer"


def soap_request(code: str, children: dict[str, str] | None = None) -> bytes:
    """A SOAP 4.0 request for the provider's service ``code`` with an ``xroad:`` body (pr-meta Annex C.2, C.6)."""
    header = SoapHeader(client=CONSUMER, service=ServiceId(PROVIDER, code), id=f"e2e-{code}")
    wrapper = etree.Element(etree.QName(XROAD_NS, code), nsmap={"xroad": XROAD_NS})
    for name, text in (children or {}).items():
        etree.SubElement(wrapper, etree.QName(XROAD_NS, name)).text = text
    return build_envelope(header, wrapper)


def department_system(port: int) -> dict[str, Any]:
    """Everything the consumer department's system does, in a thread (blocking HTTP)."""
    json_headers = {"X-Road-Client": CLIENT, "Accept": "application/json"}
    out: dict[str, Any] = {}
    out["get"] = http_call(port, "GET", f"{R1}/pets/v2/pets/1124?fields=name", {**json_headers, "X-Road-Id": "e2e-get"})
    pet = json.dumps({"id": 1124, "name": "Siddu", "photoUrls": [], "tags": [], "status": "Offline"}).encode()
    out["post_json"] = http_call(
        port, "POST", f"{R1}/pets/v2/pets", {**json_headers, "Content-Type": "application/json"}, pet
    )
    form_boundary = "------------------------" + uuid.uuid4().hex[:16]
    image = b"\xff\xd8\xff\xe0 a fluffy cat, surprised \x00\x01\x02" * 50
    form = (
        f"--{form_boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"cat.jpg\"\r\n"
        f"Content-Type: image/jpeg\r\n\r\n"
    ).encode() + image + f"\r\n--{form_boundary}--\r\n".encode()
    out["form"] = form
    out["post_form"] = http_call(
        port,
        "POST",
        f"{R1}/pets/v2/pets/1124/images",
        {**json_headers, "Content-Type": f"multipart/form-data; boundary={form_boundary}"},
        form,
    )
    out["no_client"] = http_call(port, "GET", f"{R1}/pets/v2/pets/1124", {"Accept": "application/json"})
    out["encoded_path"] = http_call(port, "GET", f"{R1}/pets/v2/pets/..%2F..%2Fadmin", json_headers)
    out["list_clients_xml"] = http_call(port, "GET", "/listClients", {})
    out["list_clients_json"] = http_call(port, "GET", "/listClients", {"Accept": "application/json"})
    soap_headers = {"Content-Type": "text/xml; charset=UTF-8", "SOAPAction": '""'}
    out["list_methods"] = http_call(port, "POST", "/", soap_headers, soap_request("listMethods"))
    out["allowed_methods"] = http_call(port, "POST", "/", soap_headers, soap_request("allowedMethods"))
    out["get_wsdl"] = http_call(
        port, "POST", "/", soap_headers, soap_request("getWsdl", {"serviceCode": "getRandom", "serviceVersion": "v1"})
    )
    out["rest_list_methods"] = http_call(port, "GET", f"{R1}/listMethods", json_headers)
    out["rest_allowed_methods"] = http_call(port, "GET", f"{R1}/allowedMethods", json_headers)
    out["get_openapi"] = http_call(port, "GET", f"{R1}/getOpenAPI?serviceCode=pets", json_headers)

    soap = build_envelope(
        SoapHeader(client=CONSUMER, service=DOCUMENTS, id="e2e-attachments"),
        etree.Element(etree.QName("http://example.org/docs", "storeDocument")),
    )
    parts = [
        Part((("Content-Type", "text/xml; charset=UTF-8"), ("Content-Transfer-Encoding", "8bit"), ("Content-ID", "<rootpart>")), soap),
        Part((("Content-Type", "application/pdf"), ("Content-ID", "<contract.pdf>")), b"%PDF-1.7 contract \x00\xfe"),
        Part((("Content-Type", "text/plain; charset=UTF-8"), ("Content-ID", "<note.txt>")), b"a short note"),
    ]
    boundary, body = build_multipart(parts)
    related = format_header_value("multipart/related", [("type", "text/xml"), ("start", "<rootpart>"), ("boundary", boundary)])
    out["attachments"] = http_call(port, "POST", "/", {"Content-Type": related, "SOAPAction": '""'}, body)
    return out


def publish_services(provider_root: Path, rest_port: int, soap_port: int, echo_port: int) -> None:
    """Add the pet store (REST), getRandom (SOAP) and storeDocument (attachments) to the provider, granted to the consumer."""
    with ServerConfStore(provider_root / "serverconf.db") as store:
        store.add_service(PETS, url=f"http://127.0.0.1:{rest_port}/api/", kind=ServiceKind.REST, description=PETSTORE_OPENAPI)
        store.grant(AccessRight(CONSUMER, PETS, Endpoint("GET", "/v2/pets/*")))
        store.grant(AccessRight(CONSUMER, PETS, Endpoint("POST", "/v2/pets")))
        store.grant(AccessRight(CONSUMER, PETS, Endpoint("POST", "/v2/pets/**")))
        store.add_service(RANDOM, url=f"http://127.0.0.1:{soap_port}/echo", description=WSDL)
        store.grant(AccessRight.for_service(CONSUMER, RANDOM))
        store.add_service(DOCUMENTS, url=f"http://127.0.0.1:{echo_port}/docs")
        store.grant(AccessRight.for_service(CONSUMER, DOCUMENTS))
