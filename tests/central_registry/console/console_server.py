"""The registry's management API with its console on a real loopback HTTPS port, for the browser tests (run as a
process).

``python -m tests.central_registry.console.console_server ROOT PORT_FILE`` serves the registry directory ROOT on
127.0.0.1 (a free port, written to PORT_FILE once listening) until it is terminated.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from twisted.internet import reactor

from central_registry.management.context import opening_store
from central_registry.management.server import make_registry_management_site
from central_registry.service import RegistryPaths
from security_server.management.config import ManagementConfig
from security_server.management.https_listener import listen_https
from security_server.management.server import thread_executor

REACTOR: Any = reactor


def main(root: Path, port_file: Path) -> None:
    """Serve until terminated."""
    config = ManagementConfig(interface="127.0.0.1", port=0)
    site = make_registry_management_site(REACTOR, root, config, executor=thread_executor(REACTOR),
                                         open_store=opening_store(RegistryPaths(root).database))
    port = listen_https(REACTOR, site, root, config)
    port_file.write_text(str(port.getHost().port))
    REACTOR.run()


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
