"""The X-Road SOAP headers in a generated WSDL: their schemas, the ``requestheader`` message, the binding parts.

WSDL-driven clients (SoapUI, zeep) offer and send the X-Road headers (pr-mess §2.2) only when each binding
operation declares them as ``soap:header`` parts, as X-Road's example WSDL does (pr-mess Annex C: a message
``requestheader`` with the parts ``client``, ``service``, ``userId``, ``id``, ``issue`` and ``protocolVersion``,
referenced from the input and the output of every operation).

By default only each operation's *input* declares them. With output headers declared, zeep hands back the whole
envelope (``result.body``, ``result.header``) instead of the answer, which would change what every zeep-based
consumer of a fedbus service gets (and the consumer adapter reads the answer's headers itself,
``SoapAnswer.header``). A provider whose clients were written against X-Road's WSDL form asks for the output
headers too (``SoapProvider(response_headers=True)``): then the output also declares ``requestHash``, as X-Road's
example adapter's WSDL does.

The parts are elements of X-Road's namespaces (``http://x-road.eu/xsd/xroad.xsd`` and
``http://x-road.eu/xsd/identifiers``). X-Road's WSDLs import ``xroad.xsd`` from x-road.eu; ours carry the few
declarations the headers need inline, in two more schemas of ``wsdl:types``. A WSDL fetched through the bus with
``getWsdl`` is loaded where neither x-road.eu nor the provider may be reachable, and the consumer adapter refuses
WSDLs that refer to other documents, so the description must be self-contained. The declarations follow X-Road's
``xroad.xsd`` and ``identifiers.xsd`` for the header elements; the security server checks the values
(``schemas/identifiers.xsd``, security_server/core/soap.py), the WSDL only tells clients the shape.
"""

from __future__ import annotations

from lxml import etree

from security_server.core.identifiers import IDENTIFIERS_NS, XROAD_NS

WSDL_NS = "http://schemas.xmlsoap.org/wsdl/"
WSDL_SOAP_NS = "http://schemas.xmlsoap.org/wsdl/soap/"
XSD_NS = "http://www.w3.org/2001/XMLSchema"

HEADER_MESSAGE = "requestheader"
"""The name of the header message (X-Road's example WSDL, pr-mess Annex C)."""
HEADER_PARTS = ("client", "service", "userId", "id", "issue", "protocolVersion")
"""The request's header parts, in X-Road's order; each is the ``xrd:`` element of the same name."""
RESPONSE_HEADER_PARTS = (*HEADER_PARTS, "requestHash")
"""A response's header parts: the request's, echoed, and the ``requestHash`` its security server adds."""

_IDENTIFIERS_SCHEMA = f"""\
<xs:schema xmlns:xs="{XSD_NS}" xmlns:id="{IDENTIFIERS_NS}" targetNamespace="{IDENTIFIERS_NS}"
           elementFormDefault="qualified">
  <xs:simpleType name="XRoadObjectType">
    <xs:restriction base="xs:string">
      <xs:enumeration value="MEMBER"/>
      <xs:enumeration value="SUBSYSTEM"/>
      <xs:enumeration value="SERVER"/>
      <xs:enumeration value="GLOBALGROUP"/>
      <xs:enumeration value="LOCALGROUP"/>
      <xs:enumeration value="SERVICE"/>
    </xs:restriction>
  </xs:simpleType>
  <xs:attribute name="objectType" type="id:XRoadObjectType"/>
  <xs:element name="xRoadInstance" type="xs:string"/>
  <xs:element name="memberClass" type="xs:string"/>
  <xs:element name="memberCode" type="xs:string"/>
  <xs:element name="subsystemCode" type="xs:string"/>
  <xs:element name="serviceCode" type="xs:string"/>
  <xs:element name="serviceVersion" type="xs:string"/>
  <xs:complexType name="XRoadClientIdentifierType">
    <xs:sequence>
      <xs:element ref="id:xRoadInstance"/>
      <xs:element ref="id:memberClass"/>
      <xs:element ref="id:memberCode"/>
      <xs:element ref="id:subsystemCode" minOccurs="0"/>
    </xs:sequence>
    <xs:attribute ref="id:objectType" use="required"/>
  </xs:complexType>
  <xs:complexType name="XRoadServiceIdentifierType">
    <xs:sequence>
      <xs:element ref="id:xRoadInstance"/>
      <xs:element ref="id:memberClass"/>
      <xs:element ref="id:memberCode"/>
      <xs:element ref="id:subsystemCode" minOccurs="0"/>
      <xs:element ref="id:serviceCode"/>
      <xs:element ref="id:serviceVersion" minOccurs="0"/>
    </xs:sequence>
    <xs:attribute ref="id:objectType" use="required"/>
  </xs:complexType>
</xs:schema>
"""

_XROAD_SCHEMA = f"""\
<xs:schema xmlns:xs="{XSD_NS}" xmlns:id="{IDENTIFIERS_NS}" targetNamespace="{XROAD_NS}"
           elementFormDefault="qualified">
  <xs:import namespace="{IDENTIFIERS_NS}"/>
  <xs:element name="client" type="id:XRoadClientIdentifierType"/>
  <xs:element name="service" type="id:XRoadServiceIdentifierType"/>
  <xs:element name="id" type="xs:string"/>
  <xs:element name="userId" type="xs:string"/>
  <xs:element name="issue" type="xs:string"/>
  <xs:element name="protocolVersion" type="xs:string"/>
  <xs:element name="requestHash">
    <xs:complexType>
      <xs:simpleContent>
        <xs:extension base="xs:string">
          <xs:attribute name="algorithmId" type="xs:string"/>
        </xs:extension>
      </xs:simpleContent>
    </xs:complexType>
  </xs:element>
</xs:schema>
"""


def add_header_schemas(types: etree._Element) -> None:
    """Append the schemas of the X-Road header elements to ``wsdl:types`` (after the service's own schema)."""
    for text in (_XROAD_SCHEMA, _IDENTIFIERS_SCHEMA):
        types.append(etree.fromstring(text))


def add_header_message(definitions: etree._Element) -> None:
    """Append the ``requestheader`` message, one part per X-Road header element (``requestHash`` included)."""
    message = etree.SubElement(definitions, f"{{{WSDL_NS}}}message", name=HEADER_MESSAGE)
    for part in RESPONSE_HEADER_PARTS:
        etree.SubElement(message, f"{{{WSDL_NS}}}part", name=part, element=f"xrd:{part}")


def add_header_parts(direction: etree._Element, *, response: bool = False) -> None:
    """Declare the header parts as ``soap:header`` elements of a binding operation's ``wsdl:input``, or with
    ``response`` of its ``wsdl:output`` (then with ``requestHash``)."""
    for part in RESPONSE_HEADER_PARTS if response else HEADER_PARTS:
        etree.SubElement(direction, f"{{{WSDL_SOAP_NS}}}header", message=f"tns:{HEADER_MESSAGE}", part=part,
                         use="literal")
