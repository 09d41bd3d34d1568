"""X-Road's identifier formats in the management API: ``DEV:GOV:1234:SUB`` for a client (member without the
fourth part), ``DEV:GOV:1234:SUB:getRandom.v1`` for a service (code and version joined by a dot), ``DEV:group``
for a global group. X-Road numbers local groups; fedbus has no such number, so a local group's id is its owner's
id and its code (``DEV:GOV:1234:SUB:partners``). A service code with a dot cannot be written in this form.

The X-Road character set has no ``:`` (pr-mess §1.3), so the form is unambiguous.
"""

from __future__ import annotations

import re

from security_server.core.acl import Endpoint, Subject
from security_server.core.errors import BusError, InvalidClientIdentifier
from security_server.core.identifiers import ClientId, GlobalGroupId, LocalGroupId, ServiceId
from security_server.management.errors import ApiError


def client_id_text(client: ClientId) -> str:
    """``INSTANCE:CLASS:CODE[:SUBSYSTEM]``."""
    parts = [client.instance, client.member_class, client.member_code]
    if client.subsystem_code is not None:
        parts.append(client.subsystem_code)
    return ":".join(parts)


def parse_client_id(text: str) -> ClientId:
    """A client identifier from X-Road's form; 400 ``invalid_client_id`` when malformed."""
    parts = text.split(":")
    if len(parts) not in (3, 4):
        raise ApiError(400, "invalid_client_id", text)
    try:
        return ClientId(*parts)
    except InvalidClientIdentifier as err:
        raise ApiError(400, "invalid_client_id", text) from err


def service_id_text(service: ServiceId) -> str:
    """``INSTANCE:CLASS:CODE[:SUBSYSTEM]:serviceCode[.version]``."""
    code = service.service_code + (f".{service.service_version}" if service.service_version else "")
    return f"{client_id_text(service.client)}:{code}"


def parse_service_id(text: str) -> ServiceId:
    """A service identifier from X-Road's form (the version after the first dot of the last part); 400 when
    malformed."""
    client_text, _, full_code = text.rpartition(":")
    code, _, version = full_code.partition(".")
    try:
        return ServiceId(parse_client_id(client_text), code, version or None)
    except InvalidClientIdentifier as err:
        raise ApiError(400, "invalid_service_id", text) from err
    except ApiError as err:
        raise ApiError(400, "invalid_service_id", text) from err


def local_group_id_text(owner: ClientId, group: LocalGroupId) -> str:
    """A local group's id: its owner's client id and its code, ``EE:GOV:123:SUB:partners``."""
    return f"{client_id_text(owner)}:{group.group_code}"


def parse_local_group_id(text: str) -> tuple[ClientId, LocalGroupId]:
    """Owner and code of a local group id; 400 when malformed."""
    owner_text, _, code = text.rpartition(":")
    try:
        return parse_client_id(owner_text), LocalGroupId(code)
    except (InvalidClientIdentifier, ApiError) as err:
        raise ApiError(400, "invalid_local_group_id", text) from err


def subject_text(provider: ClientId, subject: Subject) -> str:
    """A service client's id: a client id, ``INSTANCE:groupCode`` for a global group, a local group's id."""
    if isinstance(subject, ClientId):
        return client_id_text(subject)
    if isinstance(subject, GlobalGroupId):
        return f"{subject.instance}:{subject.group_code}"
    return local_group_id_text(provider, subject)


def parse_subject(provider: ClientId, text: str, kind: str | None = None) -> Subject:
    """A service client from its id (``kind``: X-Road's ServiceClientType when the caller gave it).

    Without a type, two parts are a global group, a local group id of ``provider`` (its id and a code) is that
    group, and three or four parts are a member or subsystem.
    """
    parts = text.split(":")
    try:
        if kind == "GLOBALGROUP" or (kind is None and len(parts) == 2):
            if len(parts) != 2:
                raise ApiError(400, "invalid_service_client_id", text)
            return GlobalGroupId(parts[0], parts[1])
        owner_text = client_id_text(provider) + ":"
        if kind == "LOCALGROUP" or (kind is None and len(parts) == 5 and text.startswith(owner_text)):
            owner, group = parse_local_group_id(text)
            if owner != provider:
                raise ApiError(400, "invalid_service_client_id", text)
            return group
        if kind not in (None, "SUBSYSTEM"):
            raise ApiError(400, "invalid_service_client_type", kind)
        return parse_client_id(text)
    except InvalidClientIdentifier as err:
        raise ApiError(400, "invalid_service_client_id", text) from err


_ENDPOINT_METHOD = re.compile(r"(\*|GET|POST|PUT|DELETE|PATCH|HEAD|OPTIONS|TRACE)(/.*|\*\*)")


def endpoint_id_text(service: ServiceId, endpoint: Endpoint) -> str:
    """An endpoint's id: its REST service's id, then method and path (``EE:GOV:1:SUB:pets:GET/pets/*``);
    X-Road numbers endpoints, fedbus has no such number."""
    return f"{service_id_text(ServiceId(service.client, service.service_code))}:{endpoint.method}{endpoint.path}"


def parse_endpoint_id(text: str) -> tuple[ServiceId, Endpoint]:
    """Service and endpoint of an endpoint id; 400 when malformed."""
    parts = text.split(":")
    for index in range(4, min(len(parts), 6)):
        matched = _ENDPOINT_METHOD.fullmatch(":".join(parts[index:]))
        if matched:
            try:
                service = parse_service_id(":".join(parts[:index]))
                return ServiceId(service.client, service.service_code), Endpoint(matched[1], matched[2])
            except (ApiError, BusError) as err:
                raise ApiError(400, "invalid_endpoint_id", text) from err
    raise ApiError(400, "invalid_endpoint_id", text)
