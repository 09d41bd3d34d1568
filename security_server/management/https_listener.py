"""Listening for a management API over HTTPS: the directory's certificate (made when missing), TLS 1.2 or later.

Both roles' management services (the security server's and the registry's) start their site this way, as a
:class:`HttpsService`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from twisted.application import service
from twisted.internet.ssl import CertificateOptions, TLSVersion

from security_server.management.config import ManagementConfig
from security_server.management.tls import ensure_certificate


def listen_https(reactor: Any, site: Any, directory: Path, config: ManagementConfig) -> Any:
    """Make the certificate in ``directory`` if missing, then listen for ``site`` on ``[management]
    interface:port`` with TLS 1.2+; the listening port."""
    tls = ensure_certificate(directory, config.interface, datetime.now(UTC))
    options = CertificateOptions(
        privateKey=tls.key,  # type: ignore[arg-type]  # pyOpenSSL takes cryptography keys; Twisted's hints lag
        certificate=tls.cert,  # type: ignore[arg-type]
        raiseMinimumTo=TLSVersion.TLSv1_2,
    )
    return reactor.listenSSL(config.port, site, options, interface=config.interface)


class HttpsService(service.Service):
    """A management API's service: its ``startService`` sets ``_port`` from :func:`listen_https`; stopping the
    service stops listening."""

    _port: Any = None

    @property
    def port(self) -> int:
        """The port it listens on (useful when configured as 0)."""
        port: int = self._port.getHost().port
        return port

    def stopService(self) -> Any:
        """Stop listening."""
        super().stopService()  # type: ignore[no-untyped-call]
        if self._port is not None:
            port, self._port = self._port, None
            return port.stopListening()
        return None
