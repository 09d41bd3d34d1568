"""``[management]``: where the management API listens and how much it accepts.

X-Road's admin UI and API answer on port 4000; ours too by default, on loopback only, so that reaching it from
another host is a decision (``interface``). Several servers on one host set their own ``port``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from security_server.core.config import LayeredConfig

DEFAULT_PORT = 4000
DEFAULT_INTERFACE = "127.0.0.1"
DEFAULT_MAX_BODY_BYTES = 10 * 1024 * 1024
DEFAULT_SESSION_IDLE_SECONDS = 1800


@dataclass(frozen=True, slots=True)
class ManagementConfig:
    """The management API's listening address and limits."""

    interface: str = DEFAULT_INTERFACE
    port: int = DEFAULT_PORT
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    session_idle_seconds: int = DEFAULT_SESSION_IDLE_SECONDS

    SECTION: ClassVar[str] = "management"

    @classmethod
    def from_config(cls, config: LayeredConfig) -> ManagementConfig:
        """Read ``[management]`` (every key optional)."""
        section = cls.SECTION
        return cls(
            interface=config.get_str(section, "interface", DEFAULT_INTERFACE),
            port=config.get_int(section, "port", DEFAULT_PORT, minimum=0, maximum=65535),
            max_body_bytes=config.get_int(section, "max-body-bytes", DEFAULT_MAX_BODY_BYTES, minimum=1024),
            session_idle_seconds=config.get_int(
                section, "session-idle-seconds", DEFAULT_SESSION_IDLE_SECONDS, minimum=60, maximum=86400
            ),
        )
