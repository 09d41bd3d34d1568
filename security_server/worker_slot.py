"""What one worker process of a multi-process security server is told by its parent (security_server/workers.py)."""

from __future__ import annotations

from dataclasses import dataclass

CLIENT_PROXY_FD = 3
"""The client proxy's listening socket, shared by the parent, as the worker's file descriptor 3."""

SERVER_PROXY_FD = 4
"""The server proxy's listening socket, as the worker's file descriptor 4."""

READY_FD = 5
"""A pipe to the parent: the worker writes one line on it once it serves."""


@dataclass(frozen=True, slots=True)
class WorkerSlot:
    """Worker ``index`` of ``count``: it writes message-log shard ``index``, serves the sockets its parent opened,
    and, as worker 0 only, runs what must run once per server (timestamping and archiving of every shard, the
    health port)."""

    index: int
    count: int
    client_proxy_fd: int = CLIENT_PROXY_FD
    server_proxy_fd: int = SERVER_PROXY_FD

    def __post_init__(self) -> None:
        if self.count < 1 or not 0 <= self.index < self.count:
            raise ValueError(f"worker {self.index} of {self.count} does not exist")

    @property
    def designated(self) -> bool:
        """Whether this worker runs the once-per-server parts."""
        return self.index == 0
