"""X-Road's identifier formats in the management API: ``DEV:GOV:1234:SUB`` for a client (member without the
fourth part), ``DEV:GOV:1234:SUB:getRandom.v1`` for a service (code and version joined by a dot).

The X-Road character set has no ``:`` (pr-mess §1.3), so the form is unambiguous.
"""

from __future__ import annotations

from security_server.core.errors import InvalidClientIdentifier
from security_server.core.identifiers import ClientId
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
