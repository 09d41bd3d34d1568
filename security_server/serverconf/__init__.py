"""The security server's own configuration: identity, anchor, hosted clients, services, access rights, local groups.

The proxies read frozen :class:`~security_server.serverconf.store.ServerConfSnapshot` values, never the database,
on the hot path; the admin CLI changes the database through :class:`~security_server.serverconf.store.ServerConfStore`.
"""

from __future__ import annotations

from security_server.serverconf.store import (
    ClientState,
    HostedClient,
    LocalGroup,
    ServerConfError,
    ServerConfSnapshot,
    ServerConfStore,
    ServerIdentity,
    Service,
    ServiceKind,
)

__all__ = [
    "ClientState",
    "HostedClient",
    "LocalGroup",
    "ServerConfError",
    "ServerConfSnapshot",
    "ServerConfStore",
    "ServerIdentity",
    "Service",
    "ServiceKind",
]
