"""Issue 22 item 7, out of file descriptors: a server process whose RLIMIT_NOFILE is hit by a flood of connections,
and the message log that must reopen its file while none is left.

The child (``outage_fd_child.py``) serves a consumer's client proxy over HTTP on loopback, with the whole exchange
pipeline behind it, and starts with a low ``ulimit -n``. The test fills its descriptor table with idle
connections and pins what an operator can rely on: the process neither crashes nor wedges; while the table is full
a new caller is refused (its connection closed: Twisted accepts it on a descriptor it keeps in reserve and closes
it, and the listening port stays open); once the flood lets go, the next caller is answered normally. It runs twice:
with the port's connection cap far above the limit, so that the descriptors do run out, and with the default cap
(``[proxy] client-max-connections = 0``: a quarter of the limit), which refuses with a 503 before they do.
The waits are bounded event waits (a socket becomes readable, a descriptor count falls), never thresholds.
"""

from __future__ import annotations

import os
import select
import socket
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from twisted.trial import unittest

from security_server.core.errors import LoggingFailed
from security_server.messagelog.store import MessageLogStore
from security_server.messagelog.writer import MessageLogWriter
from tests.federation.evidence import exchange
from tests.loopback import REACTOR
from tests.security_server.limited_child import BOUND, call, started_child

HERE = Path(__file__).resolve().parent
CHILD = HERE / "outage_fd_child.py"
LIMIT = 160
"""The child's RLIMIT_NOFILE: room to start (stores, logs, ports, threads), little more."""


def descriptors(pid: int) -> int:
    """How many descriptors process ``pid`` holds open."""
    return len(os.listdir(f"/proc/{pid}/fd"))


def wait_for(condition: Callable[[], bool], what: str) -> None:
    """Wait (polling, bounded by BOUND) until ``condition()`` holds."""
    deadline = time.monotonic() + BOUND
    while not condition():
        assert time.monotonic() < deadline, f"{what}: not within {BOUND} s"
        time.sleep(0.05)


@pytest.fixture(params=[100_000, 0], ids=["uncapped", "default-cap"])
def child(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[tuple[subprocess.Popen[str], int, Path, bool]]:
    """The client-proxy process with the low limit: ``(process, port, stderr file, capped)``; its port's connection cap is
    far above the limit (so the flood exhausts the descriptors) or the default (a quarter of the limit: the cap
    refuses first, with a 503)."""
    with started_child(CHILD, tmp_path, [str(request.param)], LIMIT) as (process, ready, errors):
        yield process, int(ready[0]), errors, request.param == 0


def test_running_out_of_descriptors_refuses_callers_then_recovers(
    child: tuple[subprocess.Popen[str], int, Path, bool],
) -> None:
    """A flood of idle connections fills the process's descriptor table: the process stays up, a new caller is
    refused (closed, not left hanging), and once the flood is gone callers are answered normally again."""
    process, port, errors, capped = child
    answered = call(port)
    assert answered is not None and answered[0] == 200 and b"Fault>" not in answered[1], answered

    flood: list[socket.socket] = []
    try:
        for _ in range(LIMIT + 40):
            flood.append(socket.create_connection(("127.0.0.1", port), timeout=BOUND))
        # Full once the process refuses connections it cannot keep (closed; or answered with a refusal where the
        # proxy caps its connections below the limit): some flood socket becomes readable.
        refused, _, _ = select.select(flood, [], [], BOUND)
        assert refused, "no connection was refused: the limit was not reached"
        for one in refused:
            try:
                said = one.recv(4096)
            except ConnectionResetError:
                said = b""
            # Closed (by Twisted on its reserve descriptor when the table is full, or by the cap's refusal after it
            # waited in vain for a request line), or the cap's 503.
            assert said == b"" or said.startswith(b"HTTP/1.1 503 "), said[:200]
        if not capped:
            assert descriptors(process.pid) >= LIMIT - 2  # the table did fill up
        while_full = call(port)  # refused at once, never left waiting
        assert while_full is None or while_full[0] != 200 or b"Fault>" in while_full[1], while_full
        assert process.poll() is None
    finally:
        for one in flood:
            one.close()
    wait_for(lambda: descriptors(process.pid) < LIMIT // 2, "descriptors freed after the flood")
    answered = call(port)
    assert answered is not None and answered[0] == 200 and b"Fault>" not in answered[1], answered
    assert process.poll() is None
    assert "Traceback" not in errors.read_text()


def healthy(writer: MessageLogWriter) -> bool:
    """The writer's health now (read through a call: it changes as records come and go)."""
    return writer.healthy


class Descriptors:
    """Whether the process is out of descriptors, as the message log's store sees it: opening the file fails as
    SQLite fails then; a write on an open connection fails (disk full) so that the writer must reopen."""

    def __init__(self) -> None:
        self.exhausted = False
        self.write_fails = False
        self.opened = 0

    def store(self, path: Path, **options: Any) -> MessageLogStore:
        """``MessageLogWriter``'s store factory."""
        if self.exhausted:
            raise sqlite3.OperationalError("unable to open database file")  # SQLite's words for EMFILE on open
        self.opened += 1
        descriptors = self

        class Store(MessageLogStore):
            def append_entries(self, entries: Any) -> Any:
                if descriptors.write_fails:
                    raise sqlite3.OperationalError("database or disk is full")
                return super().append_entries(entries)

        return Store(path, **options)


class LogReopenTest(unittest.TestCase):
    """The message log's writer must reopen its file (after a failed write) while descriptors are exhausted."""

    timeout = 30

    async def test_log_reopen_without_descriptors_fails_the_exchange_then_recovers(self) -> None:
        """A reopen that finds no descriptor fails that record with logging_failed (a server fault), keeps the chain
        whole, and the first record after descriptors return reopens the file and is committed."""
        folder = Path(self.mktemp())  # type: ignore[no-untyped-call]
        folder.mkdir(parents=True)
        seam = Descriptors()
        writer = MessageLogWriter(REACTOR, folder / "messagelog.db", store_factory=seam.store)
        writer.start()
        self.addCleanup(writer.stop)
        first, second = exchange("fd-1")
        await writer.log(first)
        seam.write_fails = True  # the connection is dropped after this failure
        with pytest.raises(LoggingFailed):
            await writer.log(second)
        seam.write_fails, seam.exhausted = False, True
        with pytest.raises(LoggingFailed) as refused:
            await writer.log(second)
        assert refused.value.fault_code == "server.logging_failed" and not healthy(writer)
        seam.exhausted = False
        await writer.log(second)
        assert healthy(writer) and seam.opened == 2
        assert await writer.run(lambda store: store.verify()) == 2
