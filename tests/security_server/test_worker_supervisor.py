"""The worker supervisor's pure parts: the restart backoff, the worker slot, ``[server] workers`` and the sockets."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from security_server.configfile import load_config
from security_server.core.errors import ConfigurationError
from security_server.service import ServerSettings
from security_server.worker_slot import WorkerSlot
from security_server.workers import MAX_RESTART_DELAY, open_listening_socket, restart_delay


def _settings(tmp_path: Path, text: str) -> ServerSettings:
    extra = tmp_path / "extra.ini"
    extra.write_text(text, encoding="utf-8")
    return ServerSettings.from_config(tmp_path, load_config("security-server", local_dir=tmp_path, extra=extra))


def test_restart_delay_doubles_up_to_a_ceiling() -> None:
    """A worker that keeps dying waits 0.5, 1, 2, ... seconds, never more than the ceiling."""
    assert [restart_delay(n) for n in (1, 2, 3, 4)] == [0.5, 1.0, 2.0, 4.0]
    assert restart_delay(100) == MAX_RESTART_DELAY


def test_a_worker_slot_exists_only_within_its_count() -> None:
    """Worker 0 is the designated one; an index outside 0..count-1 is refused."""
    assert WorkerSlot(0, 2).designated and not WorkerSlot(1, 2).designated
    for index, count in ((2, 2), (-1, 2), (0, 0)):
        with pytest.raises(ValueError):
            WorkerSlot(index, count)


def test_workers_is_read_and_defaults_to_one(tmp_path: Path) -> None:
    """``[server] workers`` is 1 unless set; 0 is refused naming the key."""
    assert _settings(tmp_path, "").workers == 1
    assert _settings(tmp_path, "[server]\nworkers = 4\n").workers == 4
    with pytest.raises(ConfigurationError, match="workers"):
        _settings(tmp_path, "[server]\nworkers = 0\n")


def test_the_listening_socket_is_inheritable_and_bound() -> None:
    """The parent's socket listens on loopback (port 0: any free one) and survives exec in a worker."""
    sock = open_listening_socket("127.0.0.1", 0)
    try:
        assert sock.get_inheritable() and sock.getsockname()[1] > 0
        with socket.create_connection(sock.getsockname(), timeout=5):
            pass  # the backlog accepts before any worker runs
    finally:
        sock.close()
