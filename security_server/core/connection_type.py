"""How a client's information systems must connect to the client proxy (X-Road's ``IsAuthentication``).

Each hosted client has a connection type (UG-SS §9 "Communication with information systems"; DM-SS §2.5
``isauthentication``), named as X-Road's management API names it (``ConnectionTypeMapping``):

========================  ==============  ===============================================================
API (``connection_type``)  X-Road's store  what the client proxy accepts from the client's systems
========================  ==============  ===============================================================
``HTTP``                  ``NOSSL``       plain HTTP or HTTPS, with or without a client certificate
``HTTPS_NO_AUTH``         ``SSLNOAUTH``   HTTPS only, with any client certificate or none
``HTTPS``                 ``SSLAUTH``     HTTPS with a client certificate that is one of the client's
                                          internal TLS certificates (``/clients/{id}/tls-certificates``)
========================  ==============  ===============================================================

:func:`check_connection` is X-Road's ``MessageProcessorBase.verifyClientAuthentication``: a violation is
``server.clientproxy.ssl_authentication_failed``. As X-Road, a connection made with the server's own internal TLS
certificate passes ``HTTPS`` unchecked (a local connection), and the certificate's validity period is not
enforced (X-Road only warns unless ``enforce-client-is-cert-validity-period-check`` is set).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Collection

from security_server.core.errors import Origin, SslAuthenticationFailed


class ConnectionType(enum.StrEnum):
    """A client's connection type, by its X-Road API name."""

    HTTP = "HTTP"
    HTTPS_NO_AUTH = "HTTPS_NO_AUTH"
    HTTPS = "HTTPS"

    @classmethod
    def parse(cls, text: object) -> ConnectionType:
        """The connection type named ``text`` (exactly, as the API spells it); ValueError otherwise."""
        if isinstance(text, str):
            for member in cls:
                if member.value == text:
                    return member
        raise ValueError(f"not a connection type: {text!r} (HTTP, HTTPS_NO_AUTH or HTTPS)")


@dataclass(frozen=True, slots=True)
class IsConnection:
    """How one request reached the client proxy: over TLS or not, and the client's certificate (DER), if any."""

    tls: bool
    client_cert: bytes | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.client_cert is not None and not self.tls:
            raise ValueError("a plaintext connection has no client certificate")


PLAINTEXT = IsConnection(False)
"""A request over the plain-HTTP listener."""


def check_connection(
    client: object,
    connection_type: ConnectionType,
    connection: IsConnection,
    tls_certificates: Collection[bytes],
    internal_cert: bytes | None = None,
) -> None:
    """Raise ``server.clientproxy.ssl_authentication_failed`` unless ``connection`` is one ``client``'s
    ``connection_type`` allows; ``tls_certificates`` are the client's internal TLS certificates (DER) and
    ``internal_cert`` this server's own internal TLS certificate (DER)."""
    if connection_type is ConnectionType.HTTP:
        return
    if connection_type is ConnectionType.HTTPS_NO_AUTH:
        if not connection.tls:
            raise SslAuthenticationFailed(
                f"Client ({client}) specifies HTTPS NO AUTH but client made plaintext connection",
                origin=Origin.CLIENT_PROXY,
            )
        return
    cert = connection.client_cert  # None over plain HTTP too (X-Road's words are the same then)
    if cert is None:
        raise SslAuthenticationFailed(
            f"Client ({client}) specifies HTTPS but did not supply TLS certificate", origin=Origin.CLIENT_PROXY
        )
    if internal_cert is not None and cert == internal_cert:
        return  # X-Road: "do not check certificates for local TLS connections"
    if not tls_certificates:
        raise SslAuthenticationFailed(f"Client ({client}) has no IS certificates", origin=Origin.CLIENT_PROXY)
    if cert not in tls_certificates:
        raise SslAuthenticationFailed(
            f"Client ({client}) TLS certificate does not match any IS certificates", origin=Origin.CLIENT_PROXY
        )
