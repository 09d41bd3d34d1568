"""What a proxy needs from the rest of the security server, in one object handed to it at start-up.

The proxies never open stores or read files themselves: the service assembles a :class:`ProxyContext`
from the configuration client, the server configuration, the soft token, the OCSP client and the message-log
writer, and tests assemble one from the same real parts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable

from cryptography import x509

from security_server.core.config import MessageLimits
from security_server.core.globalconf import GlobalConf
from security_server.core.identifiers import SecurityServerId
from security_server.management.tls import TlsIdentity
from security_server.messagelog.writer import MessageLogWriter
from security_server.opmon.recorder import ExchangeRecorder
from security_server.serverconf.store import ServerConfSnapshot
from security_server.signer.token import Token


@dataclass(frozen=True)
class ProxyContext:
    """Everything the client and server proxies read or call; see the module docstring."""

    reactor: Any
    server_id: SecurityServerId
    global_conf: Callable[[], GlobalConf]
    """The configuration in force; raises GlobalConfOutdated when there is none or it has expired."""
    server_conf: Callable[[], ServerConfSnapshot]
    """The latest snapshot of this server's own configuration (clients, services, access rights)."""
    token: Token
    own_ocsp: Callable[[x509.Certificate], bytes]
    """A fresh, good OCSP response (DER) for one of our own certificates; raises when there is none."""
    message_log: MessageLogWriter
    limits: MessageLimits = MessageLimits()
    opmon: ExchangeRecorder | None = None
    """Where each finished exchange goes (operational monitoring and metrics); None records nothing."""
    internal_tls: Callable[[], TlsIdentity] | None = None
    """The server's internal TLS key and certificate (management/tls.py), presented to ``https`` services; None
    presents none."""

    def now(self) -> datetime:
        """The reactor's time as an aware UTC datetime (tests drive it with a fake clock)."""
        return datetime.fromtimestamp(self.reactor.seconds(), tz=timezone.utc)
