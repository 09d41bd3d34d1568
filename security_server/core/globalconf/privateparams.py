"""Private parameters of the global configuration: value types, parser and builder (pr-gconf §2.5, Annex C).

Private parameters are read only by the security servers of their own instance: where authentication
certificates are registered, which subsystem serves the other management requests, how often logged
signatures are time-stamped, and anchors of further configuration sources (federation, pr-gconf §3.3).
``schemas/private-parameters.xsd`` describes the XML.
"""

from __future__ import annotations

from dataclasses import dataclass

from lxml import etree

from security_server.core.errors import InvalidClientIdentifier, InvalidConfiguration
from security_server.core.globalconf.anchor import ConfigurationAnchor, anchor_from_element, anchor_to_element
from security_server.core.globalconf.document import parse_document, serialize_document
from security_server.core.globalconf.values import (
    check_certificate,
    check_code,
    check_seconds,
    check_text,
    decode_certificate,
    encode_base64,
    parse_positive_int,
)
from security_server.core.globalconf.xmlreader import ChildReader, check_root, leaf_text
from security_server.core.identifiers import XROAD_NS, ClientId

MAX_DOCUMENT_BYTES = 4 * 1024 * 1024
"""Largest private-parameters document we read."""


@dataclass(frozen=True, slots=True)
class ManagementService:
    """Where a security server sends management requests (MSERV): the registration URL and the provider."""

    auth_cert_reg_service_address: str
    management_request_service_provider_id: ClientId
    auth_cert_reg_service_cert: bytes | None = None

    def __post_init__(self) -> None:
        check_text(self.auth_cert_reg_service_address, "authCertRegServiceAddress")
        if not isinstance(self.management_request_service_provider_id, ClientId):
            raise InvalidConfiguration("managementRequestServiceProviderId must be a client identifier")
        if self.auth_cert_reg_service_cert is not None:
            check_certificate(self.auth_cert_reg_service_cert, "authCertRegServiceCert")


@dataclass(frozen=True, slots=True, kw_only=True)
class PrivateParameters:
    """The private parameters of one instance."""

    instance: str
    management_service: ManagementService
    time_stamping_interval_seconds: int
    configuration_anchors: tuple[ConfigurationAnchor, ...] = ()

    def __post_init__(self) -> None:
        check_code(self.instance, "instance identifier")
        if not isinstance(self.management_service, ManagementService):
            raise InvalidConfiguration("private parameters need a management service")
        provider = self.management_service.management_request_service_provider_id
        if provider.instance != self.instance:
            raise InvalidConfiguration(f"management service provider {provider} is not of instance {self.instance}")
        check_seconds(self.time_stamping_interval_seconds, "timeStampingIntervalSeconds")
        anchors = tuple(self.configuration_anchors)
        seen: set[str] = set()
        for anchor in anchors:
            if not isinstance(anchor, ConfigurationAnchor):
                raise InvalidConfiguration("configuration anchors must be ConfigurationAnchor values")
            if anchor.instance in seen:
                raise InvalidConfiguration(f"two configuration anchors for instance {anchor.instance}")
            seen.add(anchor.instance)
        object.__setattr__(self, "configuration_anchors", anchors)


def _parse_root(root: etree._Element) -> PrivateParameters:
    reader = ChildReader(root, "private parameters")
    instance = leaf_text(reader.one("instanceIdentifier"), "instanceIdentifier")
    anchors = tuple(anchor_from_element(e) for e in reader.many("configurationAnchor"))
    service_reader = ChildReader(reader.one("managementService"), "managementService")
    address = leaf_text(service_reader.one("authCertRegServiceAddress"), "authCertRegServiceAddress")
    cert_element = service_reader.optional("authCertRegServiceCert")
    provider = ClientId.from_xml(service_reader.one("managementRequestServiceProviderId"))
    service_reader.finish()
    interval_name = "timeStampingIntervalSeconds"
    interval = parse_positive_int(leaf_text(reader.one(interval_name), interval_name), interval_name)
    reader.rest()  # xs:any extension point (processContents="lax")
    cert = None if cert_element is None else decode_certificate(cert_element.text, "authCertRegServiceCert")
    return PrivateParameters(
        instance=check_code(instance, "instanceIdentifier"),
        management_service=ManagementService(address, provider, cert),
        time_stamping_interval_seconds=interval,
        configuration_anchors=anchors,
    )


def parse_private_parameters(
    xml: bytes, schema: etree.XMLSchema | None = None, *, max_bytes: int = MAX_DOCUMENT_BYTES
) -> PrivateParameters:
    """Parse a private-parameters document, or raise :class:`InvalidConfiguration` saying what is wrong."""
    root = parse_document(xml, schema, max_bytes, "private parameters")
    check_root(root, XROAD_NS, "conf", "private parameters")
    try:
        return _parse_root(root)
    except InvalidClientIdentifier as err:
        raise InvalidConfiguration("private parameters hold an invalid identifier", reason=err.reason) from err
    except (ValueError, TypeError, LookupError) as err:  # a gap in our checks must still fail closed
        raise InvalidConfiguration("private parameters are malformed", reason=f"private parameters: {err!r}") from err


def private_parameters_element(pp: PrivateParameters) -> etree._Element:
    """The ``conf`` element of ``pp``."""
    root = etree.Element(etree.QName(XROAD_NS, "conf"), nsmap={"tns": XROAD_NS})
    etree.SubElement(root, "instanceIdentifier").text = pp.instance
    for anchor in pp.configuration_anchors:
        root.append(anchor_to_element(anchor, "configurationAnchor"))
    service = etree.SubElement(root, "managementService")
    etree.SubElement(service, "authCertRegServiceAddress").text = pp.management_service.auth_cert_reg_service_address
    if pp.management_service.auth_cert_reg_service_cert is not None:
        cert = encode_base64(pp.management_service.auth_cert_reg_service_cert)
        etree.SubElement(service, "authCertRegServiceCert").text = cert
    provider = pp.management_service.management_request_service_provider_id
    service.append(provider.to_xml("managementRequestServiceProviderId"))
    etree.SubElement(root, "timeStampingIntervalSeconds").text = str(pp.time_stamping_interval_seconds)
    return root


def build_private_parameters(pp: PrivateParameters, schema: etree.XMLSchema) -> bytes:
    """The private-parameters XML of ``pp``: deterministic bytes, validated against ``schema``."""
    return serialize_document(private_parameters_element(pp), schema, "private parameters")
