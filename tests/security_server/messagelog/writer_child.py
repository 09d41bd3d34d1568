"""A child process for the writer's crash tests: logs records through the real writer and acks each commit.

Usage: ``python writer_child.py MODE DB_PATH``. Every record whose Deferred fired is printed as
``ACK <id> <query_id>`` (flushed) at the moment it fires, i.e. after its commit; a failure prints
``FAIL <fault code> <healthy>``.

- ``loop``: keep a window of records in flight for ever, until the parent kills the process (kill -9 test).
- ``fsize``: cap the size of every file this process may write (RLIMIT_FSIZE, SIGXFSZ ignored), so a write
  past it fails as on a full disk; log large records one after another until one fails, then stop.
"""

from __future__ import annotations

import os
import resource
import signal
import sys
from datetime import datetime, timezone
from pathlib import Path

import structlog
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorFromThreads
from twisted.internet.task import react
from twisted.python.failure import Failure

from security_server.core.errors import BusError
from security_server.core.logchain import Direction, LogEntry, LogRecord
from security_server.messagelog.store import MessageLogStore, Synchronous
from security_server.messagelog.writer import MessageLogWriter

WINDOW = 8
"""Records in flight at once in ``loop`` mode (so batches form)."""


def make_entry(n: int, size: int) -> LogEntry:
    """The n-th record: a request, its message ``size`` random-ish bytes."""
    return LogEntry(
        query_id=f"child-{n}",
        direction=Direction.REQUEST,
        client="SUBSYSTEM:EE/GOV/1234/consumer",
        service="SERVICE:EE/GOV/5678/provider/getPerson",
        time=datetime(2026, 11, 29, tzinfo=timezone.utc),
        message=b"<m>" + os.urandom(size) + b"</m>",
        signature=b"<signature>" + os.urandom(64) + b"</signature>",
    )


def run(reactor: IReactorFromThreads, mode: str, path: Path) -> Deferred[None]:
    """Run the chosen mode until killed (loop) or until the first failure (fsize)."""
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))
    counter = iter(range(10**9))
    size = 2048
    if mode == "fsize":
        MessageLogStore(path).close()  # schema in place before the cap
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        limit = path.stat().st_size + 256 * 1024
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
        size = 32 * 1024
    writer = MessageLogWriter(reactor, path, synchronous=Synchronous.FULL)
    writer.start()
    done: Deferred[None] = Deferred()

    def acked(record: LogRecord) -> None:
        print(f"ACK {record.id} {record.query_id}", flush=True)
        send()

    def failed(failure: Failure) -> None:
        error = failure.value
        code = error.fault_code if isinstance(error, BusError) else type(error).__name__
        print(f"FAIL {code} {writer.healthy}", flush=True)
        writer.stop().chainDeferred(done)

    def send() -> None:
        writer.log(make_entry(next(counter), size)).addCallbacks(acked, failed)

    for _ in range(WINDOW if mode == "loop" else 1):
        send()
    return done


if __name__ == "__main__":
    react(run, [sys.argv[1], Path(sys.argv[2])])
