"""A hosted client's connection type: how its information systems must reach the client proxy (X-Road's
``updateConnectionType``, UG-SS §9.1 "Communication with the client information systems").

``HTTP`` takes plain HTTP and HTTPS, ``HTTPS_NO_AUTH`` HTTPS only, ``HTTPS`` HTTPS with one of the client's internal
TLS certificates (core/connection_type.py). The CLI (``fedbus server clients set-connection-type``) and the API
(``PATCH /clients/{id}``) both call :func:`set_connection_type`; the running server reads the change with its next
configuration poll.
"""

from __future__ import annotations

from security_server.admin.errors import ClientNotFound
from security_server.admin.server_dir import ServerDirectory
from security_server.core.connection_type import ConnectionType
from security_server.core.identifiers import ClientId
from security_server.serverconf.store import HostedClient


def set_connection_type(server_dir: ServerDirectory, client_id: ClientId, connection_type: ConnectionType) -> HostedClient:
    """Set the connection type of a hosted client (member or subsystem); :class:`ClientNotFound` when this server
    does not host it. The client as it is now."""
    with server_dir.open_store() as store:
        if store.snapshot().client(client_id) is None:
            raise ClientNotFound(f"{client_id} is not a client of this security server")
        store.set_connection_type(client_id, connection_type)
        found = store.snapshot().client(client_id)
    assert found is not None  # it was there a moment ago, and no face deletes a client and sets its type at once
    return found
