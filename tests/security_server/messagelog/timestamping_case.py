"""The bench the timestamper's tests share: a message-log writer on a real SQLite file, the development TSA served
on 127.0.0.1 (trial's real reactor) and a :class:`task.Clock` for the timestamper's time and schedule.

A test case inherits ``TimestampingCase`` (import this module, not the class, so the base is not collected on its
own) and builds its timestamper with :func:`tsa_client` as the client factory, then :meth:`~TimestampingCase.started`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from cryptography import x509
from twisted.internet import task
from twisted.trial import unittest

from security_server.messagelog.timestamper import Timestamper
from security_server.messagelog.tsa_client import TsaClient
from security_server.messagelog.writer import MessageLogWriter
from tests.federation.evidence import federation
from tests.loopback import REACTOR, Served, serve


def tsa_client(url: str, approved: Sequence[x509.Certificate]) -> TsaClient:
    """The timestamper's client factory: TSA clients on the real reactor (the timestamper is on the fake clock)."""
    return TsaClient(REACTOR, url, approved, timeout_seconds=5)


class TimestampingCase(unittest.TestCase):
    """A writer on a real SQLite file and a fake clock; the development TSA served on demand."""

    timeout = 30

    def setUp(self) -> None:
        self.fed = federation()
        self.folder = Path(self.mktemp())  # type: ignore[no-untyped-call]
        self.folder.mkdir(parents=True)
        self.writer = MessageLogWriter(REACTOR, self.folder / "log.db")
        self.writer.start()
        self.addCleanup(self.writer.stop)
        self.clock = task.Clock()
        """The timestamper's time and schedule; the writer's thread and the TSA clients stay on the real reactor."""

    def serve_tsa(self, serial_file: str = "tsa-serial.json") -> Served:
        """Serve the development TSA (its serial kept in ``serial_file``) on a fresh port; stopped at cleanup."""
        served = serve(self.fed.tsa_resource(REACTOR, self.folder / serial_file))
        self.addCleanup(served.port.stopListening)
        return served

    def started(self, stamper: Timestamper) -> Timestamper:
        """``stamper``, started; stopped at cleanup."""
        stamper.startService()
        self.addCleanup(stamper.stopService)
        return stamper
