"""A child process for the file-descriptor outage test: a consumer's client proxy served over HTTP on loopback.

Usage: ``python outage_fd_child.py FOLDER MAX_CONNECTIONS``. The exchange bed of tests/federation/world.py (both proxies through
the in-memory link, real keys, OCSP, SQLite stores and message logs, the provider's service on loopback) is built
under ``FOLDER``, and the client proxy's HTTP site (the one ``fedbus server run`` serves) listens on a free
127.0.0.1 port, printed as ``READY <port>``, with the port's connection cap ``MAX_CONNECTIONS`` (``[proxy]
client-max-connections``; 0 is the default, a quarter of the descriptor limit). The parent sets this process's RLIMIT_NOFILE low before it starts;
the process runs until it is terminated.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from security_server.core.config import ConnectionLimits, LoggingConfig
from security_server.logconfig import configure_logging
from security_server.proxy.client_proxy_site import client_proxy_site
from tests.federation.world import ExchangeBed
from tests.loopback import REACTOR


class ServedBed(ExchangeBed):
    """The exchange bed, built outside a test run."""

    def runTest(self) -> None:  # noqa: N802 - unittest's name
        """Not a test: the bed is only built."""


def main(folder: Path, max_connections: int) -> None:
    """Build the bed under ``folder``, serve its client proxy with that cap, print the port, run."""
    tempfile.tempdir = str(folder)
    configure_logging(LoggingConfig(), sys.stderr)
    bed = ServedBed()  # type: ignore[no-untyped-call]  # trial leaves TestCase.__init__ unannotated
    bed.setUp()
    site = client_proxy_site(bed.client_proxy, connections=ConnectionLimits(max_connections=max_connections))
    port = REACTOR.listenTCP(0, site, interface="127.0.0.1")
    print(f"READY {port.getHost().port}", flush=True)
    REACTOR.run()


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]))
