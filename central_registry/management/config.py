"""``[management]`` of conf/central-registry.ini: the security server's section, with the registry's own port.

The keys are those of :class:`~security_server.management.config.ManagementConfig` (``interface``, ``port``,
``max-body-bytes``, ``session-idle-seconds``). The default port is 4100, not X-Road's 4000: a security server's
API takes 4000, and a registry and a security server often share a machine (every demo and test federation does).
"""

from __future__ import annotations

from security_server.core.config import LayeredConfig
from security_server.management.config import ManagementConfig

DEFAULT_PORT = 4100
"""The registry API's port unless ``[management] port`` says otherwise (a security server's is 4000)."""


def management_config(config: LayeredConfig) -> ManagementConfig:
    """``[management]`` with the registry's default port."""
    read = ManagementConfig.from_config(config)
    port = config.get_int(ManagementConfig.SECTION, "port", DEFAULT_PORT, minimum=0, maximum=65535)
    return ManagementConfig(read.interface, port, read.max_body_bytes, read.session_idle_seconds)
