"""What the registry's operation modules share: the prefix, X-Road's identifier and client JSON, paging, time."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Callable, Sequence, TypeVar

from central_registry.store import Member
from security_server.core.errors import InvalidClientIdentifier
from security_server.core.identifiers import ClientId, SecurityServerId
from security_server.management.api import ApiRequest
from security_server.management.errors import ApiError, bad_request
from security_server.management.ids import client_id_text, parse_client_id

PREFIX = "/api/v1"
T = TypeVar("T")
DEFAULT_LIMIT = 25
MAX_LIMIT = 1000


def xroad_time(moment: datetime) -> str:
    """``2022-01-20T00:00:00.001Z``: UTC with milliseconds (X-Road's date-time fields are 24 characters)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def client_id_json(client: ClientId) -> dict[str, Any]:
    """X-Road's ``ClientId``."""
    data: dict[str, Any] = {
        "instance_id": client.instance,
        "type": "MEMBER" if client.subsystem_code is None else "SUBSYSTEM",
        "member_class": client.member_class,
        "member_code": client.member_code,
        "encoded_id": client_id_text(client),
    }
    if client.subsystem_code is not None:
        data["subsystem_code"] = client.subsystem_code
    return data


def client_json(client: ClientId, name: str) -> dict[str, Any]:
    """X-Road's ``Client``: a member (or subsystem) with its name."""
    return {"member_name": name, "client_id": client_id_json(client)}


def member_json(member: Member) -> dict[str, Any]:
    """A member as X-Road's ``Client``."""
    return client_json(member.id, member.name)


def server_id_text(server: SecurityServerId) -> str:
    """``INSTANCE:CLASS:CODE:SERVER``."""
    return f"{client_id_text(server.owner)}:{server.server_code}"


def server_id_json(server: SecurityServerId) -> dict[str, Any]:
    """X-Road's ``SecurityServerId``."""
    return {
        "instance_id": server.owner.instance,
        "type": "SERVER",
        "member_class": server.owner.member_class,
        "member_code": server.owner.member_code,
        "server_code": server.server_code,
        "encoded_id": server_id_text(server),
    }


def parse_member_id(text: str) -> ClientId:
    """A member identifier (``FI:GOV:123``); 400 ``invalid_member_id`` for anything else."""
    client = parse_client_id(text)
    if client.subsystem_code is not None:
        raise ApiError(400, "invalid_member_id", text)
    return client


def parse_subsystem_id(text: str) -> ClientId:
    """A subsystem identifier (``FI:GOV:123:SUB``); 400 ``invalid_subsystem_id`` for anything else."""
    client = parse_client_id(text)
    if client.subsystem_code is None:
        raise ApiError(400, "invalid_subsystem_id", text)
    return client


def parse_server_id(text: str) -> SecurityServerId:
    """A security server identifier (``FI:GOV:123:ss1``); 400 ``invalid_server_id`` when malformed."""
    parts = text.split(":")
    if len(parts) != 4:
        raise ApiError(400, "invalid_server_id", text)
    try:
        return SecurityServerId(ClientId(*parts[:3]), parts[3])
    except InvalidClientIdentifier as err:
        raise ApiError(400, "invalid_server_id", text) from err


def positive_int(text: str, what: str) -> int:
    """A path parameter that is a number from 1; 400 otherwise."""
    if not text.isdigit() or int(text) < 1 or len(text) > 10:
        raise bad_request("invalid_parameter", what)
    return int(text)


def paged(
    request: ApiRequest, items: Sequence[T], keys: dict[str, Callable[[T], Any]], default_sort: str
) -> tuple[list[T], dict[str, int]]:
    """One page of ``items`` by X-Road's ``sort``, ``desc``, ``limit`` and ``offset`` (in pages) query parameters,
    with its ``PagingMetadata``."""
    sort = request.query_value("sort") or default_sort
    if sort not in keys:
        raise bad_request("invalid_sorting_parameter", sort)
    descending = request.query_bool("desc", False)
    limit_text = request.query_value("limit") or str(DEFAULT_LIMIT)
    offset_text = request.query_value("offset") or "0"
    if not limit_text.isdigit() or not 1 <= int(limit_text) <= MAX_LIMIT:
        raise bad_request("invalid_pagination_properties", "limit")
    if not offset_text.isdigit() or len(offset_text) > 9:
        raise bad_request("invalid_pagination_properties", "offset")
    limit, offset = int(limit_text), int(offset_text)
    ordered = sorted(items, key=keys[sort], reverse=descending)
    page = ordered[offset * limit:(offset + 1) * limit]
    return page, {"total_items": len(items), "items": len(page), "limit": limit, "offset": offset}
