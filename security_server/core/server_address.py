"""Where a security server's server proxy listens, read from the address the global configuration gives it.

The global configuration names each server's address as ``host``, ``host:port``, ``[v6]`` or ``[v6]:port``
(XROAD-REFERENCE.md); an address that cannot be read is skipped rather than guessed at.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Sequence

from security_server.core.globalconf import SecurityServerInfo
from security_server.core.identifiers import SecurityServerId

DEFAULT_SERVER_PROXY_PORT = 5500
"""X-Road's server proxy port, used when the global configuration gives a server's address without a port."""


@dataclass(frozen=True, slots=True)
class PeerAddress:
    """One security server of the provider and where its server proxy listens."""

    server: SecurityServerId
    host: str
    port: int


def parse_server_address(address: str, default_port: int = DEFAULT_SERVER_PROXY_PORT) -> tuple[str, int] | None:
    """``host``, ``host:port``, ``[v6]`` or ``[v6]:port`` from the global configuration; None when unusable."""
    text = address.strip()
    if not text or any(ch.isspace() or ord(ch) < 0x20 for ch in text) or "/" in text or "@" in text:
        return None
    host, port_text = text, ""
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            return None
        host, rest = text[1:end], text[end + 1 :]
        if rest and not rest.startswith(":"):
            return None
        port_text = rest[1:]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            return None
    elif text.count(":") == 1:
        host, port_text = text.split(":")
    elif ":" in text:
        return None  # a bare IPv6 address must be bracketed to carry a port
    if not host:
        return None
    if not port_text:
        return host, default_port
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        return None
    return host, int(port_text)


def peer_addresses(
    servers: Sequence[SecurityServerInfo], default_port: int = DEFAULT_SERVER_PROXY_PORT
) -> list[PeerAddress]:
    """The reachable addresses of ``servers`` in configuration order (servers without a usable address skipped)."""
    found: list[PeerAddress] = []
    for info in servers:
        parsed = parse_server_address(info.address, default_port) if info.address else None
        if parsed is not None:
            found.append(PeerAddress(info.id, parsed[0], parsed[1]))
    return found
