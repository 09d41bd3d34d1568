"""The management API served alone over a server directory, before ``init`` (X-Road's set-up scenario).

``fedbus server run`` serves the API beside the proxies once the server is initialised. An administrator (or a
tool such as X-Road's setup scenario) that initialises a server through the API itself needs the API first: this
runs it alone, where ``[management]`` and ``[database]`` of the layered configuration say, until stopped.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def serve_alone(directory: Path, config_file: Path | None) -> None:
    """Run the management API alone over ``directory`` until the process is stopped."""
    from twisted.internet import reactor as global_reactor

    from security_server.admin.server_dir import ServerDirectory
    from security_server.configfile import load_config
    from security_server.core.config import DatabaseConfig, LoggingConfig
    from security_server.logconfig import configure_logging
    from security_server.management.config import ManagementConfig
    from security_server.management.server import ManagementService

    config = load_config("security-server", extra=config_file)
    configure_logging(LoggingConfig.from_config(config))
    server_dir = ServerDirectory(directory, database_url=DatabaseConfig.from_config(config).url)
    service = ManagementService(global_reactor, server_dir, ManagementConfig.from_config(config), config)
    reactor: Any = global_reactor
    reactor.callWhenRunning(service.startService)
    reactor.addSystemEventTrigger("before", "shutdown", service.stopService)
    reactor.run()
