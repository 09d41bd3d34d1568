"""X-Road identifiers: clients, services, security servers and groups, in X-Road's three forms.

* XML form (pr-mess §2.1, Annex A): elements in the ``http://x-road.eu/xsd/identifiers`` namespace under a
  header element carrying ``id:objectType``.
* Path form (pr-rest §4.1, §4.3): ``EE/GOV/70000310/registry``, each segment percent-encoded on its own.
* Display form (pr-mess §1.3): ``SUBSYSTEM:EE/GOV/70000310/registry``.

Every part is checked against X-Road's character set ``A-Z a-z 0-9 ' ( ) + , - . = ?`` (pr-mess §2.7,
pr-rest §4.8), must be non-empty, at most :data:`MAX_PART_LENGTH` characters, and may not be ``.`` or ``..``.
A value that fails is refused with :class:`InvalidClientIdentifier`; nothing is ever normalised into a
different identifier (a percent-encoded ``/`` decodes to a character outside the set and is refused).
"""

from __future__ import annotations

import enum
import functools
import re
from dataclasses import dataclass
from typing import ClassVar, Sequence, TypeAlias
from urllib.parse import quote, unquote_to_bytes

from lxml import etree

from security_server.core.errors import InvalidClientIdentifier

IDENTIFIERS_NS = "http://x-road.eu/xsd/identifiers"
XROAD_NS = "http://x-road.eu/xsd/xroad.xsd"
OBJECT_TYPE_ATTR = etree.QName(IDENTIFIERS_NS, "objectType").text

MAX_PART_LENGTH = 255
"""Length limit for one part; X-Road's databases hold identifier parts in 255-character columns."""

_ALLOWED = re.compile(r"[A-Za-z0-9'()+,\-.=?]+")
# Characters of the set that are not safe unescaped in a URL path segment (pr-rest §4.1: encode each segment).
_PATH_SAFE = "'()+,-.="


class ObjectType(enum.StrEnum):
    """The ``id:objectType`` of an identifier (pr-mess Annex A)."""

    MEMBER = "MEMBER"
    SUBSYSTEM = "SUBSYSTEM"
    SERVER = "SERVER"
    GLOBALGROUP = "GLOBALGROUP"
    LOCALGROUP = "LOCALGROUP"
    SERVICE = "SERVICE"


def check_part(value: object, field: str) -> str:
    """Return ``value`` if it is a valid identifier part, else raise :class:`InvalidClientIdentifier`."""
    if not isinstance(value, str):
        raise InvalidClientIdentifier(f"identifier part {field} must be a string")
    problem = _part_problem(value)
    if problem is not None:
        raise InvalidClientIdentifier(f"identifier part {field} {problem}")
    return value


@functools.lru_cache(maxsize=4096)
def _part_problem(value: str) -> str | None:
    """What is wrong with ``value`` as an identifier part, or None (remembered: every message repeats the same
    few instance, class, member, subsystem and service codes)."""
    if not value:
        return "is empty"
    if len(value) > MAX_PART_LENGTH:
        return f"is longer than {MAX_PART_LENGTH} characters"
    if not _ALLOWED.fullmatch(value):
        return "has characters outside X-Road's set"
    if value in (".", ".."):
        return f"may not be {value!r}"
    return None


def _encode_segment(part: str) -> str:
    return quote(part, safe=_PATH_SAFE)


def _decode_segment(segment: str, field: str) -> str:
    try:
        decoded = unquote_to_bytes(segment).decode("utf-8", errors="strict")
    except UnicodeDecodeError as err:
        raise InvalidClientIdentifier(f"identifier part {field} is not valid UTF-8") from err
    return check_part(decoded, field)


def _split_path(text: str, counts: Sequence[int], what: str) -> list[str]:
    if not isinstance(text, str):
        raise InvalidClientIdentifier(f"{what} must be a string")
    segments = text.split("/")
    if len(segments) not in counts:
        expected = " or ".join(str(c) for c in counts)
        raise InvalidClientIdentifier(f"{what} must have {expected} parts, not {len(segments)}")
    return segments


def _split_display(text: str, allowed: Sequence[ObjectType], what: str) -> tuple[ObjectType, str]:
    if not isinstance(text, str) or ":" not in text:
        raise InvalidClientIdentifier(f"{what} must look like TYPE:PARTS")
    type_text, _, rest = text.partition(":")
    try:
        object_type = ObjectType(type_text)
    except ValueError as err:
        raise InvalidClientIdentifier(f"{what} has an unknown object type") from err
    if object_type not in allowed:
        raise InvalidClientIdentifier(f"{what} cannot have object type {object_type}")
    return object_type, rest


def _display_parts(rest: str, counts: Sequence[int], what: str) -> list[str]:
    parts = rest.split("/")
    if len(parts) not in counts:
        raise InvalidClientIdentifier(f"{what} has {len(parts)} parts")
    return parts


# --- XML form -----------------------------------------------------------------------------------------------

_FIELD_ORDER = (
    "xRoadInstance",
    "memberClass",
    "memberCode",
    "subsystemCode",
    "groupCode",
    "serviceCode",
    "serviceVersion",
    "serverCode",
)


def _read_xml(element: etree._Element, allowed: Sequence[ObjectType], what: str) -> tuple[ObjectType, dict[str, str]]:
    """Read the object type and the identifier fields of an XML-form identifier, strictly."""
    type_text = element.get(OBJECT_TYPE_ATTR)
    if type_text is None:
        raise InvalidClientIdentifier(f"{what} has no id:objectType")
    try:
        object_type = ObjectType(type_text)
    except ValueError as err:
        raise InvalidClientIdentifier(f"{what} has an unknown id:objectType") from err
    if object_type not in allowed:
        raise InvalidClientIdentifier(f"{what} cannot have id:objectType {object_type}")
    fields: dict[str, str] = {}
    last_index = -1
    for child in element:
        if isinstance(child, (etree._Comment, etree._ProcessingInstruction)):
            continue  # comments and processing instructions carry no identifier data
        qname = etree.QName(child)
        if qname.namespace != IDENTIFIERS_NS or qname.localname not in _FIELD_ORDER:
            raise InvalidClientIdentifier(f"{what} has an unexpected element {qname.localname}")
        index = _FIELD_ORDER.index(qname.localname)
        if qname.localname in fields:
            raise InvalidClientIdentifier(f"{what} repeats {qname.localname}")
        if index < last_index:
            raise InvalidClientIdentifier(f"{what} has {qname.localname} out of order")
        last_index = index
        if len(child):
            raise InvalidClientIdentifier(f"{what} field {qname.localname} has child elements")
        fields[qname.localname] = check_part(child.text or "", qname.localname)
    if (element.text or "").strip():
        raise InvalidClientIdentifier(f"{what} has stray text")
    return object_type, fields


def _expect_fields(fields: dict[str, str], required: Sequence[str], optional: Sequence[str], what: str) -> None:
    for name in required:
        if name not in fields:
            raise InvalidClientIdentifier(f"{what} is missing {name}")
    extra = set(fields) - set(required) - set(optional)
    if extra:
        raise InvalidClientIdentifier(f"{what} has fields it cannot have: {', '.join(sorted(extra))}")


def _write_xml(tag: str | etree.QName, object_type: ObjectType, fields: Sequence[tuple[str, str | None]]) -> etree._Element:
    element = etree.Element(tag, nsmap={"id": IDENTIFIERS_NS})
    element.set(OBJECT_TYPE_ATTR, str(object_type))
    for name, value in fields:
        if value is not None:
            etree.SubElement(element, etree.QName(IDENTIFIERS_NS, name)).text = value
    return element


# --- the identifiers ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ClientId:
    """A member (``EE/GOV/70000310``) or one of its subsystems (``EE/GOV/70000310/registry``)."""

    instance: str
    member_class: str
    member_code: str
    subsystem_code: str | None = None

    _TYPES: ClassVar[tuple[ObjectType, ...]] = (ObjectType.MEMBER, ObjectType.SUBSYSTEM)

    def __post_init__(self) -> None:
        check_part(self.instance, "xRoadInstance")
        check_part(self.member_class, "memberClass")
        check_part(self.member_code, "memberCode")
        if self.subsystem_code is not None:
            check_part(self.subsystem_code, "subsystemCode")

    @property
    def object_type(self) -> ObjectType:
        """MEMBER or SUBSYSTEM."""
        return ObjectType.MEMBER if self.subsystem_code is None else ObjectType.SUBSYSTEM

    @property
    def member(self) -> ClientId:
        """The member itself, without a subsystem."""
        return ClientId(self.instance, self.member_class, self.member_code)

    def subsystem(self, subsystem_code: str) -> ClientId:
        """The subsystem ``subsystem_code`` of this client's member."""
        return ClientId(self.instance, self.member_class, self.member_code, subsystem_code)

    def parts(self) -> tuple[str, ...]:
        """The parts in path order."""
        base = (self.instance, self.member_class, self.member_code)
        return base if self.subsystem_code is None else (*base, self.subsystem_code)

    @classmethod
    def from_parts(cls, parts: Sequence[str], what: str = "client identifier") -> ClientId:
        """Build from 3 (member) or 4 (subsystem) parts."""
        if len(parts) not in (3, 4):
            raise InvalidClientIdentifier(f"{what} must have 3 or 4 parts, not {len(parts)}")
        return cls(parts[0], parts[1], parts[2], parts[3] if len(parts) == 4 else None)

    @classmethod
    def parse_path(cls, text: str) -> ClientId:
        """Parse the path form used in ``X-Road-Client`` and REST URLs, decoding each segment on its own."""
        segments = _split_path(text, (3, 4), "client identifier")
        names = ("xRoadInstance", "memberClass", "memberCode", "subsystemCode")
        return cls.from_parts([_decode_segment(s, n) for s, n in zip(segments, names)])

    def to_path(self) -> str:
        """Format in path form, each segment percent-encoded."""
        return "/".join(_encode_segment(p) for p in self.parts())

    @classmethod
    def parse_display(cls, text: str) -> ClientId:
        """Parse ``MEMBER:EE/GOV/123`` or ``SUBSYSTEM:EE/GOV/123/sub``."""
        object_type, rest = _split_display(text, cls._TYPES, "client identifier")
        count = 3 if object_type is ObjectType.MEMBER else 4
        return cls.from_parts(_display_parts(rest, (count,), "client identifier"))

    def to_display(self) -> str:
        """Format in display form."""
        return f"{self.object_type}:{'/'.join(self.parts())}"

    def __str__(self) -> str:
        return self.to_display()

    @classmethod
    def from_xml(cls, element: etree._Element) -> ClientId:
        """Read an XML-form client identifier (objectType MEMBER or SUBSYSTEM)."""
        object_type, fields = _read_xml(element, cls._TYPES, "client identifier")
        required = ["xRoadInstance", "memberClass", "memberCode"]
        if object_type is ObjectType.SUBSYSTEM:
            required.append("subsystemCode")
        _expect_fields(fields, required, (), "client identifier")
        return cls(fields["xRoadInstance"], fields["memberClass"], fields["memberCode"], fields.get("subsystemCode"))

    def to_xml(self, tag: str | etree.QName) -> etree._Element:
        """Write as an XML-form identifier element named ``tag``."""
        return _write_xml(tag, self.object_type, self._xml_fields())

    def _xml_fields(self) -> list[tuple[str, str | None]]:
        return [
            ("xRoadInstance", self.instance),
            ("memberClass", self.member_class),
            ("memberCode", self.member_code),
            ("subsystemCode", self.subsystem_code),
        ]


@dataclass(frozen=True, slots=True)
class ServiceId:
    """A service of a client: ``EE/GOV/70000310/registry/getPerson[/v1]``.

    In path and display form the subsystem is required (REST r1 needs it in practice, XROAD-REFERENCE §3.3),
    which keeps ``SUB/CODE`` and ``CODE/VERSION`` from being confused; the XML form allows member-level services.
    """

    client: ClientId
    service_code: str
    service_version: str | None = None

    _TYPES: ClassVar[tuple[ObjectType, ...]] = (ObjectType.SERVICE,)

    def __post_init__(self) -> None:
        if not isinstance(self.client, ClientId):
            raise InvalidClientIdentifier("service identifier needs a client identifier")
        check_part(self.service_code, "serviceCode")
        if self.service_version is not None:
            check_part(self.service_version, "serviceVersion")

    @property
    def object_type(self) -> ObjectType:
        """Always SERVICE."""
        return ObjectType.SERVICE

    def parts(self) -> tuple[str, ...]:
        """The parts in path order."""
        if self.client.subsystem_code is None:
            raise InvalidClientIdentifier("a member-level service has no path form")
        tail = (self.service_code,) if self.service_version is None else (self.service_code, self.service_version)
        return (*self.client.parts(), *tail)

    @classmethod
    def from_parts(cls, parts: Sequence[str]) -> ServiceId:
        """Build from 5 parts (no version) or 6 parts (with version)."""
        if len(parts) not in (5, 6):
            raise InvalidClientIdentifier(f"service identifier must have 5 or 6 parts, not {len(parts)}")
        return cls(ClientId.from_parts(parts[:4]), parts[4], parts[5] if len(parts) == 6 else None)

    @classmethod
    def parse_path(cls, text: str) -> ServiceId:
        """Parse the path form, decoding each segment on its own."""
        segments = _split_path(text, (5, 6), "service identifier")
        names = ("xRoadInstance", "memberClass", "memberCode", "subsystemCode", "serviceCode", "serviceVersion")
        return cls.from_parts([_decode_segment(s, n) for s, n in zip(segments, names)])

    def to_path(self) -> str:
        """Format in path form, each segment percent-encoded."""
        return "/".join(_encode_segment(p) for p in self.parts())

    @classmethod
    def parse_display(cls, text: str) -> ServiceId:
        """Parse ``SERVICE:EE/GOV/123/sub/code[/version]``."""
        _, rest = _split_display(text, cls._TYPES, "service identifier")
        return cls.from_parts(_display_parts(rest, (5, 6), "service identifier"))

    def to_display(self) -> str:
        """Format in display form."""
        return f"SERVICE:{'/'.join(self.parts())}"

    def __str__(self) -> str:
        return self.to_display()

    @classmethod
    def from_xml(cls, element: etree._Element) -> ServiceId:
        """Read an XML-form service identifier."""
        _, fields = _read_xml(element, cls._TYPES, "service identifier")
        _expect_fields(
            fields,
            ("xRoadInstance", "memberClass", "memberCode", "serviceCode"),
            ("subsystemCode", "serviceVersion"),
            "service identifier",
        )
        client = ClientId(fields["xRoadInstance"], fields["memberClass"], fields["memberCode"], fields.get("subsystemCode"))
        return cls(client, fields["serviceCode"], fields.get("serviceVersion"))

    def to_xml(self, tag: str | etree.QName) -> etree._Element:
        """Write as an XML-form identifier element named ``tag``."""
        fields = self.client._xml_fields()
        fields += [("serviceCode", self.service_code), ("serviceVersion", self.service_version)]
        return _write_xml(tag, ObjectType.SERVICE, fields)


@dataclass(frozen=True, slots=True)
class SecurityServerId:
    """A security server: its owner member and its server code (``EE/GOV/70000310/ss1``)."""

    owner: ClientId
    server_code: str

    _TYPES: ClassVar[tuple[ObjectType, ...]] = (ObjectType.SERVER,)

    def __post_init__(self) -> None:
        if not isinstance(self.owner, ClientId) or self.owner.subsystem_code is not None:
            raise InvalidClientIdentifier("a security server is owned by a member, not a subsystem")
        check_part(self.server_code, "serverCode")

    @property
    def object_type(self) -> ObjectType:
        """Always SERVER."""
        return ObjectType.SERVER

    def parts(self) -> tuple[str, ...]:
        """The parts in path order."""
        return (*self.owner.parts(), self.server_code)

    @classmethod
    def from_parts(cls, parts: Sequence[str]) -> SecurityServerId:
        """Build from 4 parts."""
        if len(parts) != 4:
            raise InvalidClientIdentifier(f"security server identifier must have 4 parts, not {len(parts)}")
        return cls(ClientId(parts[0], parts[1], parts[2]), parts[3])

    @classmethod
    def parse_path(cls, text: str) -> SecurityServerId:
        """Parse the path form used in ``X-Road-Security-Server``."""
        segments = _split_path(text, (4,), "security server identifier")
        names = ("xRoadInstance", "memberClass", "memberCode", "serverCode")
        return cls.from_parts([_decode_segment(s, n) for s, n in zip(segments, names)])

    def to_path(self) -> str:
        """Format in path form, each segment percent-encoded."""
        return "/".join(_encode_segment(p) for p in self.parts())

    @classmethod
    def parse_display(cls, text: str) -> SecurityServerId:
        """Parse ``SERVER:EE/GOV/123/ss1``."""
        _, rest = _split_display(text, cls._TYPES, "security server identifier")
        return cls.from_parts(_display_parts(rest, (4,), "security server identifier"))

    def to_display(self) -> str:
        """Format in display form."""
        return f"SERVER:{'/'.join(self.parts())}"

    def __str__(self) -> str:
        return self.to_display()

    @classmethod
    def from_xml(cls, element: etree._Element) -> SecurityServerId:
        """Read an XML-form security server identifier."""
        _, fields = _read_xml(element, cls._TYPES, "security server identifier")
        _expect_fields(
            fields, ("xRoadInstance", "memberClass", "memberCode", "serverCode"), (), "security server identifier"
        )
        owner = ClientId(fields["xRoadInstance"], fields["memberClass"], fields["memberCode"])
        return cls(owner, fields["serverCode"])

    def to_xml(self, tag: str | etree.QName) -> etree._Element:
        """Write as an XML-form identifier element named ``tag``."""
        return _write_xml(tag, ObjectType.SERVER, [*self.owner._xml_fields()[:3], ("serverCode", self.server_code)])


@dataclass(frozen=True, slots=True)
class GlobalGroupId:
    """A global group defined by the central registry: ``EE/security-server-owners``."""

    instance: str
    group_code: str

    _TYPES: ClassVar[tuple[ObjectType, ...]] = (ObjectType.GLOBALGROUP,)

    def __post_init__(self) -> None:
        check_part(self.instance, "xRoadInstance")
        check_part(self.group_code, "groupCode")

    @property
    def object_type(self) -> ObjectType:
        """Always GLOBALGROUP."""
        return ObjectType.GLOBALGROUP

    def parts(self) -> tuple[str, ...]:
        """The parts in path order."""
        return (self.instance, self.group_code)

    @classmethod
    def parse_path(cls, text: str) -> GlobalGroupId:
        """Parse ``EE/group``."""
        segments = _split_path(text, (2,), "global group identifier")
        return cls(_decode_segment(segments[0], "xRoadInstance"), _decode_segment(segments[1], "groupCode"))

    def to_path(self) -> str:
        """Format in path form, each segment percent-encoded."""
        return "/".join(_encode_segment(p) for p in self.parts())

    @classmethod
    def parse_display(cls, text: str) -> GlobalGroupId:
        """Parse ``GLOBALGROUP:EE/group``."""
        _, rest = _split_display(text, cls._TYPES, "global group identifier")
        parts = _display_parts(rest, (2,), "global group identifier")
        return cls(parts[0], parts[1])

    def to_display(self) -> str:
        """Format in display form."""
        return f"GLOBALGROUP:{self.instance}/{self.group_code}"

    def __str__(self) -> str:
        return self.to_display()

    @classmethod
    def from_xml(cls, element: etree._Element) -> GlobalGroupId:
        """Read an XML-form global group identifier."""
        _, fields = _read_xml(element, cls._TYPES, "global group identifier")
        _expect_fields(fields, ("xRoadInstance", "groupCode"), (), "global group identifier")
        return cls(fields["xRoadInstance"], fields["groupCode"])

    def to_xml(self, tag: str | etree.QName) -> etree._Element:
        """Write as an XML-form identifier element named ``tag``."""
        return _write_xml(tag, ObjectType.GLOBALGROUP, [("xRoadInstance", self.instance), ("groupCode", self.group_code)])


@dataclass(frozen=True, slots=True)
class LocalGroupId:
    """A group defined on one security server, by its code alone."""

    group_code: str

    _TYPES: ClassVar[tuple[ObjectType, ...]] = (ObjectType.LOCALGROUP,)

    def __post_init__(self) -> None:
        check_part(self.group_code, "groupCode")

    @property
    def object_type(self) -> ObjectType:
        """Always LOCALGROUP."""
        return ObjectType.LOCALGROUP

    def parts(self) -> tuple[str, ...]:
        """The parts in path order."""
        return (self.group_code,)

    @classmethod
    def parse_path(cls, text: str) -> LocalGroupId:
        """Parse the group code."""
        segments = _split_path(text, (1,), "local group identifier")
        return cls(_decode_segment(segments[0], "groupCode"))

    def to_path(self) -> str:
        """Format in path form, percent-encoded."""
        return _encode_segment(self.group_code)

    @classmethod
    def parse_display(cls, text: str) -> LocalGroupId:
        """Parse ``LOCALGROUP:group``."""
        _, rest = _split_display(text, cls._TYPES, "local group identifier")
        return cls(_display_parts(rest, (1,), "local group identifier")[0])

    def to_display(self) -> str:
        """Format in display form."""
        return f"LOCALGROUP:{self.group_code}"

    def __str__(self) -> str:
        return self.to_display()

    @classmethod
    def from_xml(cls, element: etree._Element) -> LocalGroupId:
        """Read an XML-form local group identifier."""
        _, fields = _read_xml(element, cls._TYPES, "local group identifier")
        _expect_fields(fields, ("groupCode",), (), "local group identifier")
        return cls(fields["groupCode"])

    def to_xml(self, tag: str | etree.QName) -> etree._Element:
        """Write as an XML-form identifier element named ``tag``."""
        return _write_xml(tag, ObjectType.LOCALGROUP, [("groupCode", self.group_code)])


AnyId: TypeAlias = ClientId | ServiceId | SecurityServerId | GlobalGroupId | LocalGroupId
"""Any identifier; access-right subjects are a client, a global group or a local group."""

_BY_TYPE: dict[ObjectType, type[ClientId] | type[ServiceId] | type[SecurityServerId] | type[GlobalGroupId] | type[LocalGroupId]] = {
    ObjectType.MEMBER: ClientId,
    ObjectType.SUBSYSTEM: ClientId,
    ObjectType.SERVICE: ServiceId,
    ObjectType.SERVER: SecurityServerId,
    ObjectType.GLOBALGROUP: GlobalGroupId,
    ObjectType.LOCALGROUP: LocalGroupId,
}


def parse_display(text: str) -> AnyId:
    """Parse any identifier in display form, choosing the type from its ``TYPE:`` prefix."""
    if not isinstance(text, str) or ":" not in text:
        raise InvalidClientIdentifier("identifier must look like TYPE:PARTS")
    try:
        object_type = ObjectType(text.partition(":")[0])
    except ValueError as err:
        raise InvalidClientIdentifier("identifier has an unknown object type") from err
    return _BY_TYPE[object_type].parse_display(text)


def parse_xml(element: etree._Element) -> AnyId:
    """Parse any XML-form identifier, choosing the type from its ``id:objectType``."""
    type_text = element.get(OBJECT_TYPE_ATTR)
    try:
        object_type = ObjectType(type_text or "")
    except ValueError as err:
        raise InvalidClientIdentifier("identifier has a missing or unknown id:objectType") from err
    return _BY_TYPE[object_type].from_xml(element)
