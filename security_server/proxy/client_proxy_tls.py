"""The client proxy's HTTPS port (X-Road's 8443): the same site as the HTTP port, over TLS with the server's internal
TLS certificate.

The information systems reach the client proxy over plain HTTP (``[server] client-proxy-port``) or over HTTPS
(``[server] client-proxy-https-port``, 0: off). The HTTPS port serves the internal TLS key and certificate kept in
the server directory (management/tls.py: made when missing; replaced through ``/system/certificate``). It asks the
IS for a certificate and accepts any, or none: whether the connection is acceptable is decided per request by the
client's connection type (core/connection_type.py), from :func:`is_connection`.

The certificate files are looked at (one ``stat`` each) on every new connection; when they changed, a new TLS
context is made, so a new or imported certificate is served without a restart, as proxy/mtls.py remakes the
server proxy's context when the approved CAs change. A key and certificate that do not match (one written, the
other not yet) leave the old context in use until they do.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import structlog
from cryptography.hazmat.primitives import serialization
from OpenSSL import SSL
from twisted.internet.interfaces import IListeningPort, IOpenSSLServerConnectionCreator, ISSLTransport
from twisted.internet.ssl import AcceptableCiphers, CertificateOptions, TLSVersion
from twisted.protocols.tls import TLSMemoryBIOFactory
from twisted.web.server import Request, Site
from zope.interface import implementer

from security_server.core.connection_type import PLAINTEXT, IsConnection
from security_server.management.tls import InternalIdentity, TlsIdentity
from security_server.proxy.mtls import TLS12_CIPHERS
from security_server.proxy.server_proxy_site import peer_cert_der

log = structlog.get_logger(__name__)


def _accept_any(connection: SSL.Connection, certificate: Any, error: int, depth: int, ok: int) -> bool:
    """Any IS certificate (or none) completes the handshake; the client's connection type decides per request."""
    return True


def is_connection(request: Request) -> IsConnection:
    """How ``request`` reached the client proxy: plain HTTP, or TLS with the IS's certificate (DER) if it sent one."""
    if not ISSLTransport.providedBy(getattr(request.channel, "transport", None)):
        return PLAINTEXT
    return IsConnection(True, peer_cert_der(request))


@implementer(IOpenSSLServerConnectionCreator)
class InternalTlsOptions:
    """Server TLS connections with the internal TLS key and certificate of ``directory``, re-read when the files
    change (management/tls.py's :class:`InternalIdentity`); ``on_change`` gets the certificate (DER) each time one is
    taken into use."""

    def __init__(
        self, directory: Path, *, on_change: Callable[[bytes], None] = lambda _: None,
        identity: InternalIdentity | None = None,
    ) -> None:
        self.directory = directory
        self._on_change = on_change
        self._source = identity if identity is not None else InternalIdentity(directory)
        self._identity = self._source.current()
        self.context = self._make_context(self._identity)

    def _make_context(self, identity: TlsIdentity) -> SSL.Context:
        options = CertificateOptions(
            privateKey=identity.key,  # type: ignore[arg-type]  # pyOpenSSL takes cryptography keys
            certificate=identity.cert,  # type: ignore[arg-type]
            extraCertChain=list(identity.chain),  # type: ignore[arg-type]
            raiseMinimumTo=TLSVersion.TLSv1_2,
            enableSessions=True,
            enableSessionTickets=True,
            acceptableCiphers=AcceptableCiphers.fromOpenSSLCipherString(TLS12_CIPHERS),  # type: ignore[no-untyped-call]
        )
        context: SSL.Context = options.getContext()
        context.set_verify(SSL.VERIFY_PEER, _accept_any)  # ask for the IS's certificate, require none
        self._on_change(identity.cert.public_bytes(serialization.Encoding.DER))
        return context

    def serverConnectionForTLS(self, tlsProtocol: Any) -> SSL.Connection:
        """A server-side connection (IOpenSSLServerConnectionCreator), in a new context once the files changed."""
        identity = self._source.current()
        if identity is not self._identity:
            try:
                context = self._make_context(identity)
            except Exception as err:  # noqa: BLE001 - an unusable pair: keep serving the old one
                log.warning("internal_tls_context_failed", error=repr(err))
            else:
                self._identity, self.context = identity, context
        return SSL.Connection(self.context, None)


def https_factory(site: Site, options: InternalTlsOptions) -> TLSMemoryBIOFactory:
    """``site`` behind TLS with ``options``: for a listening socket opened elsewhere (workers.py)."""
    return TLSMemoryBIOFactory(options, False, site)  # type: ignore[arg-type]


def listen_client_proxy_https(
    reactor: Any, site: Site, options: InternalTlsOptions, *, port: int, interface: str = ""
) -> IListeningPort:
    """Serve the client proxy's ``site`` over TLS on ``port`` (X-Road's 8443)."""
    listening: IListeningPort = reactor.listenSSL(port, site, options, interface=interface)
    return listening
