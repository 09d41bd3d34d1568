"""Monitoring parameters of the global configuration: the central monitoring client (X-Road ``monitoring-params.xml``).

An optional configuration part (content identifier ``MONITORING``) that names the one member or subsystem allowed
to read every security server's operational data and metrics (UG-CS §14; pr-opmon §2, envmon). Permission is
exactly that identifier: a subsystem named here gives its member nothing, and the reverse. An empty
``monitoringClient`` (or none) means no central monitoring client::

    <tns:conf xmlns:tns="http://x-road.eu/xsd/xroad.xsd" xmlns:id="http://x-road.eu/xsd/identifiers">
      <monitoringClient>
        <monitoringClientId id:objectType="SUBSYSTEM">...</monitoringClientId>
      </monitoringClient>
    </tns:conf>
"""

from __future__ import annotations

from lxml import etree

from security_server.core.errors import InvalidClientIdentifier, InvalidConfiguration
from security_server.core.globalconf.document import parse_document
from security_server.core.globalconf.xmlreader import ChildReader, check_root
from security_server.core.identifiers import IDENTIFIERS_NS, XROAD_NS, ClientId

MONITORING_PARAMETERS = "MONITORING"
"""The directory's content identifier of the monitoring parameters."""

MONITORING_FILE = "monitoring-params.xml"

MAX_DOCUMENT_BYTES = 64 * 1024
"""Largest monitoring-parameters document we read."""


def parse_monitoring_parameters(xml: bytes, *, max_bytes: int = MAX_DOCUMENT_BYTES) -> ClientId | None:
    """The central monitoring client the document names (None: none); :class:`InvalidConfiguration` if malformed."""
    root = parse_document(xml, None, max_bytes, "monitoring parameters")
    check_root(root, XROAD_NS, "conf", "monitoring parameters")
    try:
        reader = ChildReader(root, "monitoring parameters")
        client_element = reader.optional("monitoringClient")
        reader.rest()  # X-Road's schema leaves room for more parameters
        if client_element is None:
            return None
        client_reader = ChildReader(client_element, "monitoringClient")
        identifier = client_reader.optional("monitoringClientId")
        client_reader.finish()
        return None if identifier is None else ClientId.from_xml(identifier)
    except InvalidClientIdentifier as err:
        raise InvalidConfiguration("monitoring parameters hold an invalid identifier", reason=err.reason) from err
    except (ValueError, TypeError, LookupError) as err:  # a gap in our checks must still fail closed
        raise InvalidConfiguration("monitoring parameters are malformed", reason=f"monitoring parameters: {err!r}") from err


def build_monitoring_parameters(client: ClientId | None) -> bytes:
    """The ``monitoring-params.xml`` naming ``client`` (an empty ``monitoringClient`` for None)."""
    root = etree.Element(etree.QName(XROAD_NS, "conf"), nsmap={"tns": XROAD_NS, "id": IDENTIFIERS_NS})
    holder = etree.SubElement(root, "monitoringClient")
    if client is not None:
        holder.append(client.to_xml("monitoringClientId"))
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))
