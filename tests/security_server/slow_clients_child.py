"""A child process for the slow-clients flood test: both proxies of the exchange bed served on loopback.

Usage: ``python slow_clients_child.py FOLDER TIMEOUT_SECONDS``. The exchange bed of tests/federation/world.py (both
proxies through the in-memory link, real keys, OCSP, SQLite stores and message logs, the provider's service on
loopback) is built under ``FOLDER``; the consumer's client proxy site listens on one free 127.0.0.1 port (plain
HTTP) and the provider's server proxy site on another (mutual TLS), printed as ``READY <client> <server>``, and
the consumer server's authentication key and certificate are written to ``FOLDER/consumer-auth.pem`` for a TLS
client of the server proxy. Both
ports take the default connection cap (``[proxy] *-max-connections = 0``: a quarter of the descriptor limit, which
the parent sets low) and header, body and idle timeouts of TIMEOUT_SECONDS. Runs until terminated.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization

from security_server.core.config import ConnectionLimits, LoggingConfig
from security_server.logconfig import configure_logging
from security_server.proxy.client_proxy_site import client_proxy_site
from security_server.proxy.server_proxy_site import ServerProxyResource, listen_server_proxy, server_proxy_site
from tests.federation.world import ExchangeBed
from tests.loopback import REACTOR


class ServedBed(ExchangeBed):
    """The exchange bed, built outside a test run."""

    def runTest(self) -> None:  # noqa: N802 - unittest's name
        """Not a test: the bed is only built."""


def main(folder: Path, timeout_seconds: int) -> None:
    """Build the bed under ``folder``, serve both proxies with those timeouts, print the ports, run."""
    tempfile.tempdir = str(folder)
    configure_logging(LoggingConfig(level="warning"), sys.stderr)
    bed = ServedBed()  # type: ignore[no-untyped-call]  # trial leaves TestCase.__init__ unannotated
    bed.setUp()
    limits = ConnectionLimits(timeout_seconds, timeout_seconds, timeout_seconds, 0)
    client_site = client_proxy_site(bed.client_proxy, connections=limits, reactor=REACTOR)
    client_port = REACTOR.listenTCP(0, client_site, interface="127.0.0.1")
    server_site = server_proxy_site(ServerProxyResource(bed.server_proxy), connections=limits, reactor=REACTOR)
    server_port: Any = listen_server_proxy(REACTOR, server_site, bed.pki.provider_token, port=0, interface="127.0.0.1")
    key, cert = bed.pki.consumer_token.auth_key()
    pem = serialization.Encoding.PEM
    (folder / "consumer-auth.pem").write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()) + cert.public_bytes(pem)
    )
    print(f"READY {client_port.getHost().port} {server_port.getHost().port}", flush=True)
    REACTOR.run()


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]))
