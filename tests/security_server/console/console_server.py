"""A management API with its console on a real loopback HTTPS port, for the browser tests (run as a process).

``python -m tests.security_server.console.console_server DIR CONF_DIR PORT_FILE`` serves the server directory DIR
on 127.0.0.1 (a free port, written to PORT_FILE once listening), verifying containers with the verification
configuration folder CONF_DIR (as ``fedbus audit verify container --conf`` does), with a health checker of two
real checks that pass. It runs until it is terminated.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from twisted.internet import reactor

from security_server.admin.server_dir import ServerDirectory
from security_server.core.evidence import INSTANCE_IDENTIFIER_FILE, SHARED_PARAMS_FILE, read_verification_conf
from security_server.edge.health_checker import HealthChecker
from security_server.healthcheck import checks
from security_server.management.config import ManagementConfig
from security_server.management.https_listener import listen_https
from security_server.management.server import make_management_site

REACTOR: Any = reactor


def main(directory: Path, conf_dir: Path, port_file: Path) -> None:
    """Serve until terminated."""
    files = {
        path.relative_to(conf_dir).as_posix(): path.read_bytes()
        for path in conf_dir.rglob("*")
        if path.is_file() and path.name in (SHARED_PARAMS_FILE, INSTANCE_IDENTIFIER_FILE)
    }
    conf = read_verification_conf(files)
    health = HealthChecker([
        checks.globalconf(lambda: datetime.fromtimestamp(REACTOR.seconds() + 3600, tz=UTC), clock=REACTOR.seconds),
        checks.timestamper(lambda: None, grace_seconds=60),
    ], REACTOR)
    config = ManagementConfig(interface="127.0.0.1", port=0)
    site = make_management_site(REACTOR, ServerDirectory(directory), config, maintenance=health,
                                verification_conf=lambda now: conf)
    port = listen_https(REACTOR, site, directory, config)
    port_file.write_text(str(port.getHost().port))
    REACTOR.run()


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]))
