"""Shared parameters of the global configuration: value types, parser and builder (pr-gconf §2.5, Annex B).

Shared parameters list what every security server of an instance (and of federated instances) must agree
on: approved CAs and TSAs, members and subsystems, security servers (address, authentication-certificate
hashes, clients), global groups and global settings. ``schemas/shared-parameters.xsd`` describes the XML.

The parser reads X-Road's configuration version 3 (and tolerates the optional elements that versions 4 to 6
add, which fedbus does not use); the builder writes version 3 elements only. Collections are held in a
canonical order (members by identifier, names sorted, ...), so equal configurations are equal values and
build to identical bytes; OCSP responders, intermediate CAs, sources and certificates keep their order,
which carries preference.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, TypeVar

from lxml import etree

from security_server.core.errors import InvalidClientIdentifier, InvalidConfiguration
from security_server.core.globalconf.document import parse_document, serialize_document
from security_server.core.globalconf.values import (
    check_certificate,
    check_code,
    check_seconds,
    check_text,
    decode_base64,
    decode_certificate,
    encode_base64,
    parse_boolean,
    parse_positive_int,
)
from security_server.core.globalconf.xmlreader import ChildReader, check_root, leaf_text
from security_server.core.identifiers import XROAD_NS, ClientId, GlobalGroupId, SecurityServerId

MAX_DOCUMENT_BYTES = 32 * 1024 * 1024
"""Largest shared-parameters document we read; a large federation's file is a few megabytes."""

AUTH_CERT_HASH_SIZES = (32, 20)
"""SHA-256 (configuration version 3 and later) and SHA-1 (version 2) digests of authentication certificates."""

_T = TypeVar("_T")


def _tuple_of(values: Iterable[_T], kind: type, what: str) -> tuple[_T, ...]:
    try:
        items = tuple(values)
    except TypeError as err:
        raise InvalidConfiguration(f"{what} must be a sequence") from err
    for item in items:
        if not isinstance(item, kind):
            raise InvalidConfiguration(f"{what} must hold {kind.__name__} values")
    return items


def _unique(keys: Iterable[object], what: str) -> None:
    seen: set[object] = set()
    for key in keys:
        if key in seen:
            raise InvalidConfiguration(f"duplicate {what}: {key}")
        seen.add(key)


def _client_key(client: ClientId) -> tuple[str, ...]:
    # A member sorts right before its subsystems.
    return client.parts()


# --- value types --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OcspResponder:
    """An OCSP responder of a CA: its URL and, when it is not the CA itself, its signing certificate (DER)."""

    url: str
    cert: bytes | None = None

    def __post_init__(self) -> None:
        check_text(self.url, "OCSP responder URL")
        if self.cert is not None:
            check_certificate(self.cert, "OCSP responder certificate")


@dataclass(frozen=True, slots=True)
class CaInfo:
    """A CA certificate (DER) and the OCSP responders for the certificates it issues, in order of preference."""

    cert: bytes
    ocsp_responders: tuple[OcspResponder, ...] = ()

    def __post_init__(self) -> None:
        check_certificate(self.cert, "CA certificate")
        object.__setattr__(
            self, "ocsp_responders", _tuple_of(self.ocsp_responders, OcspResponder, "OCSP responders")
        )


@dataclass(frozen=True, slots=True)
class ApprovedCa:
    """A certification authority approved for member certificates, with its intermediates and profile."""

    name: str
    top_ca: CaInfo
    certificate_profile: str
    intermediates: tuple[CaInfo, ...] = ()
    authentication_only: bool = False

    def __post_init__(self) -> None:
        check_text(self.name, "approved CA name")
        if not isinstance(self.top_ca, CaInfo):
            raise InvalidConfiguration("approved CA needs a top CA")
        check_text(self.certificate_profile, "certificate profile")
        object.__setattr__(self, "intermediates", _tuple_of(self.intermediates, CaInfo, "intermediate CAs"))
        if not isinstance(self.authentication_only, bool):
            raise InvalidConfiguration("authentication_only must be a bool")

    def ca_infos(self) -> tuple[CaInfo, ...]:
        """The top CA followed by the intermediates."""
        return (self.top_ca, *self.intermediates)


@dataclass(frozen=True, slots=True)
class ApprovedTsa:
    """A time-stamping authority approved for message-log time-stamps: name, RFC 3161 URL, certificate (DER)."""

    name: str
    url: str
    cert: bytes

    def __post_init__(self) -> None:
        check_text(self.name, "approved TSA name")
        check_text(self.url, "approved TSA URL")
        check_certificate(self.cert, "approved TSA certificate")


@dataclass(frozen=True, slots=True)
class MemberClass:
    """A member class code (e.g. ``GOV``) and its description."""

    code: str
    description: str

    def __post_init__(self) -> None:
        check_code(self.code, "member class code")
        check_text(self.description, "member class description", allow_empty=True)


@dataclass(frozen=True, slots=True)
class MemberInfo:
    """A registered member: its identifier, official name and subsystem codes (sorted)."""

    id: ClientId
    name: str
    subsystems: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.id, ClientId) or self.id.subsystem_code is not None:
            raise InvalidConfiguration("a member is identified by a member-level client identifier")
        check_text(self.name, "member name")
        codes = _tuple_of(self.subsystems, str, "subsystem codes")
        for code in codes:
            check_code(code, "subsystem code")
        _unique(codes, f"subsystem of {self.id}")
        object.__setattr__(self, "subsystems", tuple(sorted(codes)))

    @property
    def subsystem_ids(self) -> tuple[ClientId, ...]:
        """The subsystems as client identifiers."""
        return tuple(self.id.subsystem(code) for code in self.subsystems)


@dataclass(frozen=True, slots=True)
class SecurityServerInfo:
    """A registered security server: identifier, address, auth-certificate hashes and clients (sorted)."""

    id: SecurityServerId
    address: str | None = None
    auth_cert_hashes: tuple[bytes, ...] = ()
    clients: tuple[ClientId, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.id, SecurityServerId):
            raise InvalidConfiguration("a security server needs a security server identifier")
        if self.address is not None:
            check_text(self.address, "security server address")
        hashes = _tuple_of(self.auth_cert_hashes, bytes, "authentication certificate hashes")
        for digest in hashes:
            if len(digest) not in AUTH_CERT_HASH_SIZES:
                raise InvalidConfiguration("an authentication certificate hash must be a SHA-256 (or SHA-1) digest")
        _unique((h.hex() for h in hashes), f"authentication certificate hash of {self.id}")
        clients = _tuple_of(self.clients, ClientId, "security server clients")
        _unique(clients, f"client of {self.id}")
        object.__setattr__(self, "auth_cert_hashes", tuple(sorted(hashes)))
        object.__setattr__(self, "clients", tuple(sorted(clients, key=_client_key)))

    @property
    def owner(self) -> ClientId:
        """The member that owns the server."""
        return self.id.owner


@dataclass(frozen=True, slots=True)
class GlobalGroup:
    """A global group: identifier, description and members (members or subsystems, sorted)."""

    id: GlobalGroupId
    description: str
    members: tuple[ClientId, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.id, GlobalGroupId):
            raise InvalidConfiguration("a global group needs a global group identifier")
        check_text(self.description, "global group description", allow_empty=True)
        members = _tuple_of(self.members, ClientId, "global group members")
        _unique(members, f"member of {self.id}")
        object.__setattr__(self, "members", tuple(sorted(members, key=_client_key)))


@dataclass(frozen=True, slots=True)
class GlobalSettings:
    """Instance-wide settings: the member classes (sorted) and how old an OCSP response may be."""

    ocsp_freshness_seconds: int
    member_classes: tuple[MemberClass, ...] = ()

    def __post_init__(self) -> None:
        check_seconds(self.ocsp_freshness_seconds, "OCSP freshness")
        classes = _tuple_of(self.member_classes, MemberClass, "member classes")
        _unique((c.code for c in classes), "member class")
        object.__setattr__(self, "member_classes", tuple(sorted(classes, key=lambda c: c.code)))


@dataclass(frozen=True, slots=True)
class ConfigurationSource:
    """A configuration source of the instance and the certificates whose keys may sign its configuration."""

    address: str
    internal_verification_certs: tuple[bytes, ...] = ()
    external_verification_certs: tuple[bytes, ...] = ()

    def __post_init__(self) -> None:
        check_text(self.address, "configuration source address")
        for name in ("internal_verification_certs", "external_verification_certs"):
            certs = _tuple_of(getattr(self, name), bytes, "verification certificates")
            for cert in certs:
                check_certificate(cert, "verification certificate")
            object.__setattr__(self, name, certs)


@dataclass(frozen=True, slots=True, kw_only=True)
class SharedParameters:
    """The shared parameters of one instance, checked for internal consistency on construction."""

    instance: str
    global_settings: GlobalSettings
    sources: tuple[ConfigurationSource, ...] = ()
    approved_cas: tuple[ApprovedCa, ...] = ()
    approved_tsas: tuple[ApprovedTsa, ...] = ()
    members: tuple[MemberInfo, ...] = ()
    security_servers: tuple[SecurityServerInfo, ...] = ()
    global_groups: tuple[GlobalGroup, ...] = ()

    def __post_init__(self) -> None:
        check_code(self.instance, "instance identifier")
        if not isinstance(self.global_settings, GlobalSettings):
            raise InvalidConfiguration("shared parameters need global settings")
        sources = _tuple_of(self.sources, ConfigurationSource, "configuration sources")
        cas = _tuple_of(self.approved_cas, ApprovedCa, "approved CAs")
        tsas = _tuple_of(self.approved_tsas, ApprovedTsa, "approved TSAs")
        members = _tuple_of(self.members, MemberInfo, "members")
        servers = _tuple_of(self.security_servers, SecurityServerInfo, "security servers")
        groups = _tuple_of(self.global_groups, GlobalGroup, "global groups")

        _unique((ca.name for ca in cas), "approved CA name")
        _unique((tsa.name for tsa in tsas), "approved TSA name")

        classes = {c.code for c in self.global_settings.member_classes}
        _unique((m.id for m in members), "member")
        subsystems: dict[ClientId, frozenset[str]] = {}
        for member in members:
            if member.id.instance != self.instance:
                raise InvalidConfiguration(f"member {member.id} is not of instance {self.instance}")
            if member.id.member_class not in classes:
                raise InvalidConfiguration(f"member {member.id} has an unknown member class")
            subsystems[member.id] = frozenset(member.subsystems)

        _unique((s.id for s in servers), "security server")
        seen_hashes: set[bytes] = set()
        for server in servers:
            if server.owner not in subsystems:
                raise InvalidConfiguration(f"security server {server.id} has an unknown owner")
            for client in server.clients:
                known = subsystems.get(client.member)
                if known is None or (client.subsystem_code is not None and client.subsystem_code not in known):
                    raise InvalidConfiguration(f"security server {server.id} has an unknown client {client}")
            for digest in server.auth_cert_hashes:
                if digest in seen_hashes:
                    raise InvalidConfiguration(f"authentication certificate hash registered twice ({server.id})")
                seen_hashes.add(digest)

        _unique((g.id for g in groups), "global group")
        for group in groups:
            if group.id.instance != self.instance:
                raise InvalidConfiguration(f"global group {group.id} is not of instance {self.instance}")

        object.__setattr__(self, "sources", sources)
        object.__setattr__(self, "approved_cas", tuple(sorted(cas, key=lambda ca: ca.name)))
        object.__setattr__(self, "approved_tsas", tuple(sorted(tsas, key=lambda tsa: tsa.name)))
        object.__setattr__(self, "members", tuple(sorted(members, key=lambda m: _client_key(m.id))))
        object.__setattr__(self, "security_servers", tuple(sorted(servers, key=lambda s: s.id.parts())))
        object.__setattr__(self, "global_groups", tuple(sorted(groups, key=lambda g: g.id.group_code)))

    def member_class(self, code: str) -> MemberClass | None:
        """The member class ``code``, or ``None``."""
        for member_class in self.global_settings.member_classes:
            if member_class.code == code:
                return member_class
        return None


# --- parsing ------------------------------------------------------------------------------------------------


def _parse_ocsp(element: etree._Element) -> OcspResponder:
    reader = ChildReader(element, "ocsp")
    url = leaf_text(reader.one("url"), "OCSP URL")
    cert_element = reader.optional("cert")
    reader.optional("costType")  # version 6; not used
    reader.finish()
    cert = None if cert_element is None else decode_certificate(cert_element.text, "OCSP responder certificate")
    return OcspResponder(url, cert)


def _parse_ca_info(element: etree._Element, what: str) -> CaInfo:
    reader = ChildReader(element, what)
    cert = decode_certificate(leaf_text(reader.one("cert"), what), what)
    responders = tuple(_parse_ocsp(e) for e in reader.many("ocsp"))
    reader.finish()
    return CaInfo(cert, responders)


def _parse_approved_ca(element: etree._Element) -> ApprovedCa:
    reader = ChildReader(element, "approvedCA")
    name = leaf_text(reader.one("name"), "approved CA name")
    auth_only_element = reader.optional("authenticationOnly")
    top = _parse_ca_info(reader.one("topCA"), "topCA")
    intermediates = tuple(_parse_ca_info(e, "intermediateCA") for e in reader.many("intermediateCA"))
    profile = leaf_text(reader.one("certificateProfileInfo"), "certificateProfileInfo")
    reader.optional("defaultCsrFormat")  # version 6; not used
    reader.optional("acmeServer")  # ACME is not supported by fedbus
    reader.finish()
    auth_only = False if auth_only_element is None else parse_boolean(auth_only_element.text, "authenticationOnly")
    return ApprovedCa(name, top, profile, intermediates, auth_only)


def _parse_approved_tsa(element: etree._Element) -> ApprovedTsa:
    reader = ChildReader(element, "approvedTSA")
    name = leaf_text(reader.one("name"), "approved TSA name")
    url = leaf_text(reader.one("url"), "approved TSA URL")
    cert = decode_certificate(leaf_text(reader.one("cert"), "approved TSA certificate"), "approved TSA certificate")
    reader.optional("costType")  # version 6; not used
    reader.finish()
    return ApprovedTsa(name, url, cert)


def _parse_member_class(element: etree._Element) -> MemberClass:
    reader = ChildReader(element, "memberClass")
    code = leaf_text(reader.one("code"), "member class code")
    description = leaf_text(reader.one("description"), "member class description")
    reader.finish()
    return MemberClass(code, description)


def _parse_source(element: etree._Element) -> ConfigurationSource:
    reader = ChildReader(element, "source")
    address = leaf_text(reader.one("address"), "source address")
    internal = tuple(decode_certificate(e.text, e.tag) for e in reader.many("internalVerificationCert"))
    external = tuple(decode_certificate(e.text, e.tag) for e in reader.many("externalVerificationCert"))
    reader.finish()
    return ConfigurationSource(address, internal, external)


class _IdTable:
    """The xs:ID values of members and subsystems, for resolving the IDREFs of security servers."""

    def __init__(self) -> None:
        self._ids: dict[str, ClientId] = {}

    def add(self, element: etree._Element, client: ClientId) -> None:
        xml_id = element.get("id")
        if xml_id is None:
            return
        if xml_id in self._ids:
            raise InvalidConfiguration(f"duplicate id {xml_id!r} in shared parameters")
        self._ids[xml_id] = client

    def resolve(self, element: etree._Element, what: str) -> ClientId:
        ref = leaf_text(element, what).strip()
        client = self._ids.get(ref)
        if client is None:
            raise InvalidConfiguration(f"{what} refers to an unknown id {ref!r}")
        return client


def _parse_member(element: etree._Element, instance: str, ids: _IdTable) -> tuple[MemberInfo, MemberClass]:
    reader = ChildReader(element, "member")
    member_class = _parse_member_class(reader.one("memberClass"))
    code = leaf_text(reader.one("memberCode"), "memberCode")
    name = leaf_text(reader.one("name"), "member name")
    member_id = ClientId(instance, member_class.code, code)
    ids.add(element, member_id)
    subsystems: list[str] = []
    for sub_element in reader.many("subsystem"):
        sub_reader = ChildReader(sub_element, "subsystem")
        sub_code = leaf_text(sub_reader.one("subsystemCode"), "subsystemCode")
        sub_reader.optional("subsystemName")  # version 5; not used
        sub_reader.finish()
        ids.add(sub_element, member_id.subsystem(sub_code))
        subsystems.append(sub_code)
    reader.finish()
    return MemberInfo(member_id, name, tuple(subsystems)), member_class


def _parse_security_server(element: etree._Element, ids: _IdTable) -> SecurityServerInfo:
    reader = ChildReader(element, "securityServer")
    owner = ids.resolve(reader.one("owner"), "securityServer owner")
    if owner.subsystem_code is not None:
        raise InvalidConfiguration("a security server owner must be a member, not a subsystem")
    code = leaf_text(reader.one("serverCode"), "serverCode")
    address_element = reader.optional("address")
    hashes = tuple(decode_base64(e.text, "authCertHash") for e in reader.many("authCertHash"))
    clients = tuple(ids.resolve(e, "securityServer client") for e in reader.many("client"))
    reader.optional("inMaintenanceMode")  # version 5; not used
    reader.finish()
    address = None if address_element is None else leaf_text(address_element, "security server address")
    return SecurityServerInfo(SecurityServerId(owner, code), address, hashes, clients)


def _parse_global_group(element: etree._Element, instance: str) -> GlobalGroup:
    reader = ChildReader(element, "globalGroup")
    code = leaf_text(reader.one("groupCode"), "groupCode")
    description = leaf_text(reader.one("description"), "global group description")
    members = tuple(ClientId.from_xml(e) for e in reader.many("groupMember"))
    reader.finish()
    return GlobalGroup(GlobalGroupId(instance, code), description, members)


def _parse_global_settings(element: etree._Element) -> GlobalSettings:
    reader = ChildReader(element, "globalSettings")
    classes = tuple(_parse_member_class(e) for e in reader.many("memberClass"))
    freshness_name = "ocspFreshnessSeconds"
    freshness = parse_positive_int(leaf_text(reader.one(freshness_name), freshness_name), freshness_name)
    reader.finish()
    return GlobalSettings(freshness, classes)


def _parse_root(root: etree._Element) -> SharedParameters:
    reader = ChildReader(root, "shared parameters")
    instance = check_code(leaf_text(reader.one("instanceIdentifier"), "instanceIdentifier"), "instanceIdentifier")
    sources = tuple(_parse_source(e) for e in reader.many("source"))
    cas = tuple(_parse_approved_ca(e) for e in reader.many("approvedCA"))
    tsas = tuple(_parse_approved_tsa(e) for e in reader.many("approvedTSA"))
    ids = _IdTable()
    parsed_members = [_parse_member(e, instance, ids) for e in reader.many("member")]
    servers = tuple(_parse_security_server(e, ids) for e in reader.many("securityServer"))
    groups = tuple(_parse_global_group(e, instance) for e in reader.many("globalGroup"))
    reader.many("centralService")  # removed from the message protocol in 2023; not used
    settings = _parse_global_settings(reader.one("globalSettings"))
    reader.rest()  # xs:any extension point (processContents="lax")
    # Each member repeats its class with the description from the global settings; they must agree.
    for member, member_class in parsed_members:
        if member_class not in settings.member_classes:
            raise InvalidConfiguration(f"member {member.id} has a member class that the global settings lack")
    return SharedParameters(
        instance=instance,
        global_settings=settings,
        sources=sources,
        approved_cas=cas,
        approved_tsas=tsas,
        members=tuple(member for member, _ in parsed_members),
        security_servers=servers,
        global_groups=groups,
    )


def parse_shared_parameters(
    xml: bytes, schema: etree.XMLSchema | None = None, *, max_bytes: int = MAX_DOCUMENT_BYTES
) -> SharedParameters:
    """Parse a shared-parameters document, or raise :class:`InvalidConfiguration` saying what is wrong.

    With ``schema`` (``shared-parameters.xsd``) the document is validated first; without it the parser's own
    checks still refuse anything malformed, duplicated or dangling.
    """
    root = parse_document(xml, schema, max_bytes, "shared parameters")
    check_root(root, XROAD_NS, "conf", "shared parameters")
    try:
        return _parse_root(root)
    except InvalidClientIdentifier as err:
        raise InvalidConfiguration("shared parameters hold an invalid identifier", reason=err.reason) from err
    except (ValueError, TypeError, LookupError) as err:  # a gap in our checks must still fail closed
        raise InvalidConfiguration("shared parameters are malformed", reason=f"shared parameters: {err!r}") from err


# --- building -----------------------------------------------------------------------------------------------


def _text(parent: etree._Element, tag: str, value: str) -> etree._Element:
    element = etree.SubElement(parent, tag)
    element.text = value
    return element


def _build_ca_info(parent: etree._Element, tag: str, info: CaInfo) -> None:
    element = etree.SubElement(parent, tag)
    _text(element, "cert", encode_base64(info.cert))
    for responder in info.ocsp_responders:
        ocsp = etree.SubElement(element, "ocsp")
        _text(ocsp, "url", responder.url)
        if responder.cert is not None:
            _text(ocsp, "cert", encode_base64(responder.cert))


def _build_member_class(parent: etree._Element, member_class: MemberClass) -> None:
    element = etree.SubElement(parent, "memberClass")
    _text(element, "code", member_class.code)
    _text(element, "description", member_class.description)


def shared_parameters_element(sp: SharedParameters) -> etree._Element:
    """The ``conf`` element of ``sp``, with xs:ID values ``id0, id1, ...`` in document order (as X-Road)."""
    root = etree.Element(etree.QName(XROAD_NS, "conf"), nsmap={"tns": XROAD_NS})
    _text(root, "instanceIdentifier", sp.instance)
    for source in sp.sources:
        element = etree.SubElement(root, "source")
        _text(element, "address", source.address)
        for cert in source.internal_verification_certs:
            _text(element, "internalVerificationCert", encode_base64(cert))
        for cert in source.external_verification_certs:
            _text(element, "externalVerificationCert", encode_base64(cert))
    for ca in sp.approved_cas:
        element = etree.SubElement(root, "approvedCA")
        _text(element, "name", ca.name)
        _text(element, "authenticationOnly", "true" if ca.authentication_only else "false")
        _build_ca_info(element, "topCA", ca.top_ca)
        for intermediate in ca.intermediates:
            _build_ca_info(element, "intermediateCA", intermediate)
        _text(element, "certificateProfileInfo", ca.certificate_profile)
    for tsa in sp.approved_tsas:
        element = etree.SubElement(root, "approvedTSA")
        _text(element, "name", tsa.name)
        _text(element, "url", tsa.url)
        _text(element, "cert", encode_base64(tsa.cert))
    ids: dict[ClientId, str] = {}
    for member in sp.members:
        element = etree.SubElement(root, "member")
        ids[member.id] = f"id{len(ids)}"
        element.set("id", ids[member.id])
        member_class = sp.member_class(member.id.member_class)
        if member_class is None:  # unreachable: SharedParameters checks member classes on construction
            raise InvalidConfiguration(f"member {member.id} has an unknown member class")
        _build_member_class(element, member_class)
        _text(element, "memberCode", member.id.member_code)
        _text(element, "name", member.name)
        for subsystem in member.subsystem_ids:
            sub_element = etree.SubElement(element, "subsystem")
            ids[subsystem] = f"id{len(ids)}"
            sub_element.set("id", ids[subsystem])
            _text(sub_element, "subsystemCode", str(subsystem.subsystem_code))
    for server in sp.security_servers:
        element = etree.SubElement(root, "securityServer")
        _text(element, "owner", ids[server.owner])
        _text(element, "serverCode", server.id.server_code)
        if server.address is not None:
            _text(element, "address", server.address)
        for digest in server.auth_cert_hashes:
            _text(element, "authCertHash", encode_base64(digest))
        for client in server.clients:
            _text(element, "client", ids[client])
    for group in sp.global_groups:
        element = etree.SubElement(root, "globalGroup")
        _text(element, "groupCode", group.id.group_code)
        _text(element, "description", group.description)
        for member_id in group.members:
            element.append(member_id.to_xml("groupMember"))
    settings = etree.SubElement(root, "globalSettings")
    for member_class in sp.global_settings.member_classes:
        _build_member_class(settings, member_class)
    _text(settings, "ocspFreshnessSeconds", str(sp.global_settings.ocsp_freshness_seconds))
    return root


def build_shared_parameters(sp: SharedParameters, schema: etree.XMLSchema) -> bytes:
    """The shared-parameters XML of ``sp``: deterministic bytes, validated against ``schema``."""
    return serialize_document(shared_parameters_element(sp), schema, "shared parameters")
