"""TLS test clients and a recording handler shared by the mTLS tests: a server proxy handler that records its
calls, the soft-token auth files of a test server, and blocking ``ssl`` clients (one request, or two with session
resumption) run in a thread against a loopback port."""

from __future__ import annotations

import socket
import ssl
import warnings
from typing import Callable

from twisted.internet.defer import Deferred, succeed

from security_server.core.identifiers import SecurityServerId
from security_server.proxy.peerlink import PeerRequest, PeerResponse
from tests.federation.peers import peer_world


class RecordingHandler:
    """A server proxy handler that echoes the body after its name, or answers as ``answer`` says."""

    def __init__(self, name: bytes) -> None:
        self.name = name
        self.calls: list[tuple[bytes | None, PeerRequest]] = []
        self.answer: Callable[[PeerRequest], Deferred[PeerResponse]] | None = None

    def handle(self, peer_cert_der: bytes | None, request: PeerRequest) -> Deferred[PeerResponse]:
        """Record the call and answer."""
        self.calls.append((peer_cert_der, request))
        if self.answer is not None:
            return self.answer(request)
        return succeed(
            PeerResponse(status=200, content_type="text/xml", body=self.name + b":" + request.body, headers={"X-Peer": "yes"})
        )


def token_files(server: SecurityServerId) -> tuple[str, str]:
    """The PEM certificate and key files of ``server``'s auth key in its soft token."""
    directory = peer_world().tokens[server].directory
    cert = next(directory.glob("*.cert.pem"))
    key = cert.with_name(cert.name.replace(".cert.pem", ".key.pem"))
    return str(cert), str(key)


def raw_tls_client(
    port: int,
    payload: bytes,
    *,
    client_cert: tuple[str, str] | None,
    maximum: ssl.TLSVersion = ssl.TLSVersion.TLSv1_3,
    minimum: ssl.TLSVersion = ssl.TLSVersion.TLSv1_2,
) -> bytes:
    """A blocking TLS client (run in a thread): connect, send ``payload``, read until the server closes."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # TLS 1.0/1.1 are deprecated: that is the point
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        if minimum < ssl.TLSVersion.TLSv1_2:
            context.set_ciphers("ALL:@SECLEVEL=0")
        context.minimum_version = minimum
        context.maximum_version = maximum
    if client_cert is not None:
        context.load_cert_chain(*client_cert)
    received = b""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with context.wrap_socket(raw) as tls:
            tls.sendall(payload)
            while True:
                chunk = tls.recv(65536)
                if not chunk:
                    return received
                received += chunk


def resumed_tls_clients(port: int, payload: bytes, client_cert: tuple[str, str]) -> tuple[bool, bool]:
    """Two blocking connections, the second offering the first's TLS session: whether each was resumed."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.load_cert_chain(*client_cert)
    reused: list[bool] = []
    session = None
    for _ in range(2):
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
            with context.wrap_socket(raw, session=session) as tls:
                tls.sendall(payload)
                while tls.recv(65536):  # read to the end, so the TLS 1.3 session tickets arrive
                    pass
                reused.append(bool(tls.session_reused))
                session = tls.session
    return reused[0], reused[1]
