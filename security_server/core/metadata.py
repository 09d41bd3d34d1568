"""X-Road's metadata services, answered exactly as X-Road shapes them (pr-meta, pr-mrest; protocol-examples §6, §7).

* ``GET /listClients`` (pr-meta §3, Annex C.1): the members and subsystems of the global configuration, as
  ``clientList`` XML (prefixes ``ns1`` for identifiers, ``ns2`` for xroad, as JAXB writes them) or, with
  ``Accept: application/json``, as JSON with snake_case keys (X-Road's Jackson mapper). The client proxy answers
  it from the global configuration; no message is exchanged.
* SOAP ``listMethods`` / ``allowedMethods`` (pr-meta §4, Annex C.3, C.5): the provider's SOAP services (those the
  caller has a right to), as ``xroad:service`` identifiers in ``listMethodsResponse`` / ``allowedMethodsResponse``.
* SOAP ``getWsdl`` (pr-meta §5, Annex C.6-C.7): the body ``getWsdlResponse`` echoes ``serviceCode`` and
  ``serviceVersion``; the WSDL goes as a MIME attachment with every ``soap:address`` rewritten to
  :data:`WSDL_ENDPOINT_ADDRESS` (X-Road ``MetadataServiceHandlerImpl``), so the provider's address stays private.
* REST ``listMethods`` / ``allowedMethods`` (pr-mrest §3, Annex B.1): ``{"service": [...]}`` with each REST
  service's identifier fields, ``service_type`` (``REST`` or ``OPENAPI``) and ``endpoint_list``.
* REST ``getOpenAPI?serviceCode=`` (pr-mrest §5): the service's OpenAPI 3 description with every ``servers[].url``
  cut to its path (X-Road ``Openapi3Anonymiser``).

Service descriptions come from the provider server's configuration: the WSDL or the OpenAPI document stored with
the service (:func:`check_wsdl`, :func:`openapi_endpoints` check them when they are stored). OpenAPI documents are
read as JSON only.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, replace
from typing import Any, Sequence
from urllib.parse import urlsplit

from lxml import etree

from security_server.core.acl import Endpoint
from security_server.core.errors import BusError, InternalError, InvalidRequest
from security_server.core.globalconf import MemberInfo
from security_server.core.identifiers import IDENTIFIERS_NS, OBJECT_TYPE_ATTR, XROAD_NS, ClientId, ServiceId, check_part
from security_server.core.safexml import parse_xml
from security_server.core.soap import SoapHeader, SoapMessage, build_envelope

LIST_CLIENTS_PATH = "/listClients"
LIST_METHODS = "listMethods"
ALLOWED_METHODS = "allowedMethods"
GET_WSDL = "getWsdl"
GET_OPENAPI = "getOpenAPI"
SOAP_METADATA_SERVICES = frozenset({LIST_METHODS, ALLOWED_METHODS, GET_WSDL})
REST_METADATA_SERVICES = frozenset({LIST_METHODS, ALLOWED_METHODS, GET_OPENAPI})

WSDL_ENDPOINT_ADDRESS = "http://example.org/xroad-endpoint"
"""What ``getWsdl`` puts in place of the provider's address (X-Road ``WSDL_ENDPOINT_ADDRESS``)."""

WSDL_NS = "http://schemas.xmlsoap.org/wsdl/"
_SOAP_BINDING_NAMESPACES = ("http://schemas.xmlsoap.org/wsdl/soap/", "http://schemas.xmlsoap.org/wsdl/soap12/")

MAX_DESCRIPTION_BYTES = 4 * 1024 * 1024
"""Largest WSDL or OpenAPI document we store or serve."""

_XML_DECLARATION = b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
_OPENAPI_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


# --- listClients ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ClientListEntry:
    """One ``member`` of a client list: a member or subsystem, the member's name, the subsystem's name if known."""

    id: ClientId
    name: str
    subsystem_name: str | None = None


def client_list(members: Sequence[MemberInfo]) -> tuple[ClientListEntry, ...]:
    """Every member followed by its subsystems, in the configuration's order (X-Road ``getMembers``)."""
    entries: list[ClientListEntry] = []
    for member in members:
        entries.append(ClientListEntry(member.id, member.name))
        entries.extend(ClientListEntry(sub, member.name) for sub in member.subsystem_ids)
    return tuple(entries)


def _id_fields(client: ClientId) -> list[tuple[str, str]]:
    fields = [("xRoadInstance", client.instance), ("memberClass", client.member_class), ("memberCode", client.member_code)]
    if client.subsystem_code is not None:
        fields.append(("subsystemCode", client.subsystem_code))
    return fields


def list_clients_xml(entries: Sequence[ClientListEntry]) -> bytes:
    """The ``clientList`` XML of pr-meta Annex C.1."""
    root = etree.Element(etree.QName(XROAD_NS, "clientList"), nsmap={"ns1": IDENTIFIERS_NS, "ns2": XROAD_NS})
    for entry in entries:
        member = etree.SubElement(root, etree.QName(XROAD_NS, "member"))
        ident = etree.SubElement(member, etree.QName(XROAD_NS, "id"))
        ident.set(OBJECT_TYPE_ATTR, str(entry.id.object_type))
        for name, value in _id_fields(entry.id):
            etree.SubElement(ident, etree.QName(IDENTIFIERS_NS, name)).text = value
        etree.SubElement(member, etree.QName(XROAD_NS, "name")).text = entry.name
        if entry.subsystem_name is not None:
            etree.SubElement(member, etree.QName(XROAD_NS, "subsystemName")).text = entry.subsystem_name
    etree.indent(root, space="    ")
    # JAXB's declaration, with double quotes and standalone="yes" (lxml would write single quotes).
    return _XML_DECLARATION + bytes(etree.tostring(root, encoding="UTF-8")) + b"\n"


def list_clients_json(entries: Sequence[ClientListEntry]) -> bytes:
    """The JSON form of pr-meta Annex C.1 (``Accept: application/json``)."""
    members: list[dict[str, Any]] = []
    for entry in entries:
        ident: dict[str, str] = {"member_class": entry.id.member_class, "member_code": entry.id.member_code}
        if entry.id.subsystem_code is not None:
            ident["subsystem_code"] = entry.id.subsystem_code
        ident["object_type"] = str(entry.id.object_type)
        ident["xroad_instance"] = entry.id.instance
        item: dict[str, Any] = {"id": ident, "name": entry.name}
        if entry.subsystem_name is not None:
            item["subsystem_name"] = entry.subsystem_name
        members.append(item)
    return json.dumps({"member": members}, indent=2).encode("utf-8")


def accepts_json(accept: str | None) -> bool:
    """Whether ``Accept`` names ``application/json`` (X-Road ``acceptsJson``: parameters and q are ignored)."""
    return any(item.split(";", 1)[0].strip().lower() == "application/json" for item in (accept or "").split(","))


# --- SOAP metadata services ----------------------------------------------------------------------------------


def response_header(request: SoapMessage, request_hash: tuple[str, str]) -> SoapHeader:
    """The request's header with ``requestHash`` added, as every X-Road response carries it (pr-mess §2.2)."""
    header = request.header
    if header is None:
        raise InvalidRequest("a fault message is not a request")
    return replace(header, request_hash=request_hash)


def method_list_response(request: SoapMessage, services: Sequence[ServiceId], request_hash: tuple[str, str]) -> bytes:
    """The ``listMethodsResponse`` or ``allowedMethodsResponse`` (by the request's service code) with
    ``services``, under the request's header with ``requestHash`` (pr-meta Annex C.3, C.5)."""
    header = response_header(request, request_hash)
    wrapper = etree.Element(etree.QName(XROAD_NS, header.service.service_code + "Response"), nsmap={"xrd": XROAD_NS})
    for service in services:
        wrapper.append(service.to_xml(etree.QName(XROAD_NS, "service")))
    return _clean(build_envelope(header, wrapper))


def _clean(envelope: bytes) -> bytes:
    root = parse_xml(envelope)
    etree.cleanup_namespaces(root)
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))


def _elements(parent: etree._Element) -> list[etree._Element]:
    return [c for c in parent if not isinstance(c, (etree._Comment, etree._ProcessingInstruction))]


def wsdl_request(request: SoapMessage) -> tuple[str, str | None]:
    """The ``serviceCode`` and optional ``serviceVersion`` a ``getWsdl`` request asks for (pr-meta Annex C.6)."""
    wrapper = next(iter(_elements(request.body)), None)
    values: dict[str, str] = {}
    if wrapper is not None:
        for child in _elements(wrapper):
            name = etree.QName(child)
            if name.namespace == XROAD_NS and name.localname in ("serviceCode", "serviceVersion"):
                if name.localname in values:
                    raise InvalidRequest(f"getWsdl request repeats {name.localname}")
                values[name.localname] = (child.text or "").strip()
    code = values.get("serviceCode")
    if not code:
        raise InvalidRequest("Missing serviceCode in message body")
    version = values.get("serviceVersion") or None
    return check_part(code, "serviceCode"), None if version is None else check_part(version, "serviceVersion")


def wsdl_response(request: SoapMessage, request_hash: tuple[str, str]) -> bytes:
    """The SOAP part of a ``getWsdl`` answer: ``getWsdlResponse`` with the request's body fields (Annex C.7)."""
    header = response_header(request, request_hash)
    asked = _elements(request.body)[0]
    namespace = etree.QName(asked).namespace or XROAD_NS
    wrapper = etree.Element(etree.QName(namespace, "getWsdlResponse"), nsmap={"xrd": XROAD_NS})
    for child in _elements(asked):
        wrapper.append(copy.deepcopy(child))
    return _clean(build_envelope(header, wrapper))


def check_wsdl(document: bytes) -> etree._Element:
    """Parse a WSDL 1.1 document with the hardened parser; ``InvalidRequest`` unless it is ``wsdl:definitions``."""
    try:
        root = parse_xml(document, max_bytes=MAX_DESCRIPTION_BYTES)
    except BusError as err:
        raise InvalidRequest(f"WSDL is not acceptable XML: {err.message}") from err
    if root.tag != f"{{{WSDL_NS}}}definitions":
        raise InvalidRequest("WSDL document must have wsdl:definitions as its root")
    return root


def rewrite_wsdl(document: bytes) -> bytes:
    """The WSDL with every SOAP ``address/@location`` replaced by :data:`WSDL_ENDPOINT_ADDRESS`."""
    root = check_wsdl(document)
    for namespace in _SOAP_BINDING_NAMESPACES:
        for address in root.iter(f"{{{namespace}}}address"):
            address.set("location", WSDL_ENDPOINT_ADDRESS)
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))


# --- REST metadata services ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RestServiceEntry:
    """One service of a REST method list: its identifier, ``REST`` or ``OPENAPI``, and its endpoints."""

    service: ServiceId
    service_type: str
    endpoints: tuple[Endpoint, ...] = ()

    def __post_init__(self) -> None:
        if self.service_type not in ("REST", "OPENAPI"):
            raise ValueError("service_type is REST or OPENAPI")
        if self.service.client.subsystem_code is None:
            raise ValueError("REST services belong to subsystems")


def rest_method_list(entries: Sequence[RestServiceEntry]) -> bytes:
    """The JSON of REST ``listMethods`` / ``allowedMethods`` (pr-mrest Annex B.1; keys in X-Road's order)."""
    services: list[dict[str, Any]] = []
    for entry in entries:
        client = entry.service.client
        services.append(
            {
                "member_class": client.member_class,
                "member_code": client.member_code,
                "object_type": "SERVICE",
                "service_code": entry.service.service_code,
                "service_type": entry.service_type,
                "subsystem_code": client.subsystem_code,
                "xroad_instance": client.instance,
                "endpoint_list": [{"method": e.method, "path": e.path} for e in entry.endpoints],
            }
        )
    return json.dumps({"service": services}, indent=2).encode("utf-8")


def _load_openapi(document: bytes) -> dict[str, Any]:
    if not isinstance(document, bytes) or len(document) > MAX_DESCRIPTION_BYTES:
        raise InvalidRequest(f"OpenAPI description must be at most {MAX_DESCRIPTION_BYTES} bytes")
    try:
        tree = json.loads(document.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as err:
        raise InvalidRequest("OpenAPI description is not a JSON document") from err
    if not isinstance(tree, dict):
        raise InvalidRequest("OpenAPI description is not a JSON object")
    version = tree.get("openapi")
    if not isinstance(version, str) or not version.startswith("3."):
        raise InvalidRequest("OpenAPI description must be OpenAPI 3 ('openapi': '3.x')")
    return tree


def openapi_endpoints(document: bytes) -> tuple[Endpoint, ...]:
    """The endpoints of an OpenAPI 3 description, in document order: each operation of each path, its method
    upper-cased and every ``{parameter}`` segment as ``*`` (as X-Road lists them, pr-mrest Annex B.1)."""
    tree = _load_openapi(document)
    paths = tree.get("paths")
    if not isinstance(paths, dict):
        raise InvalidRequest("OpenAPI description has no paths object")
    found: list[Endpoint] = []
    for path, item in paths.items():
        if not isinstance(path, str) or not path.startswith("/") or not isinstance(item, dict):
            raise InvalidRequest("OpenAPI paths must be objects keyed by paths starting with /")
        pattern = "/".join("*" if seg.startswith("{") and seg.endswith("}") else seg for seg in path.split("/"))
        for key in item:
            if key in _OPENAPI_METHODS:
                endpoint = Endpoint(key.upper(), pattern)
                if endpoint not in found:
                    found.append(endpoint)
    return tuple(found)


def anonymise_openapi(document: bytes) -> bytes:
    """The description with each ``servers[].url`` without variables cut to its path (X-Road
    ``Openapi3Anonymiser``): callers learn the API, not where the provider runs it."""
    tree = _load_openapi(document)
    servers = tree.get("servers")
    if isinstance(servers, list):
        for server in servers:
            if isinstance(server, dict) and isinstance(server.get("url"), str):
                url = server["url"]
                if "{" in url and "}" in url:
                    continue
                try:
                    server["url"] = urlsplit(url).path
                except ValueError as err:
                    raise InternalError(f"Can't parse url string: {url[:200]}") from err
    return json.dumps(tree).encode("utf-8")
