"""The records both proxies write about an exchange: signed messages, and failures after a logged request."""

from __future__ import annotations

import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from twisted.internet import reactor as global_reactor
from twisted.internet.defer import Deferred
from twisted.trial import unittest

from security_server.core.errors import LoggingFailed
from security_server.core.logchain import Direction, LogEntry
from security_server.core.signature import SignatureData
from security_server.core.transport import MessageContent, SignedMessage
from security_server.messagelog.store import MessageLogStore
from security_server.messagelog.writer import MessageLogWriter
from security_server.proxy.exchange_log import ExchangeIds, received_entry, record, record_failure, signed_entry

NOW = datetime(2026, 11, 29, 12, tzinfo=UTC)
IDS = ExchangeIds("q-1", "SUBSYSTEM:EE/GOV/1/a", "SERVICE:EE/GOV/2/b/c", "r-1")


def test_a_signed_entry_carries_the_signature_and_its_chain() -> None:
    """A batch-signed message's record holds the signature, its own chain and the chain's result."""
    entry = signed_entry(IDS, Direction.REQUEST, NOW, b"<m/>", SignatureData(b"<sig/>", b"<result/>", b"<chain/>"), (b"a",))
    assert (entry.query_id, entry.client, entry.service, entry.x_request_id) == ("q-1", IDS.client, IDS.service, "r-1")
    assert (entry.signature, entry.hashchain, entry.hashchainresult, entry.attachments) == (
        b"<sig/>", b"<chain/>", b"<result/>", (b"a",)
    )


def test_a_received_entry_takes_the_signature_from_the_transport_message() -> None:
    """A received message is logged with the signature and chain it arrived with."""
    transport = SignedMessage(MessageContent(b"<m/>", "text/xml"), SignatureData(b"<sig/>"))
    entry = received_entry(IDS, Direction.RESPONSE, NOW, transport)
    assert (entry.message, entry.signature, entry.hashchain) == (b"<m/>", b"<sig/>", None)


class _Broken:
    """A message log whose writes fail with a plain exception."""

    def log(self, entry: LogEntry) -> Deferred[object]:
        failed: Deferred[object] = Deferred()
        failed.errback(OSError("disk gone"))
        return failed


class RecordTest(unittest.TestCase):
    """Against a real writer, and one that fails."""

    async def test_a_failure_record_is_written_unsigned_with_its_fault(self) -> None:
        """After a logged request, the failure is recorded as a failed response carrying the fault code."""
        folder = Path(tempfile.mkdtemp(prefix="fedbus-exchange-log-"))
        self.addCleanup(shutil.rmtree, folder, True)
        path = folder / "log.db"
        writer = MessageLogWriter(global_reactor, path)
        writer.start()
        heard: list[Exception] = []
        try:
            await record_failure(writer, IDS, NOW, b"<fault/>", "server.serverproxy.service_failed", heard.append)
        finally:
            await writer.stop()
        store = MessageLogStore(path)
        try:
            (logged,) = list(store.records())
        finally:
            store.close()
        assert heard == []
        assert (logged.succeeded, logged.fault_code, logged.signature) == (False, "server.serverproxy.service_failed", b"")

    async def test_a_failure_record_that_cannot_be_written_is_reported_not_raised(self) -> None:
        """The caller gets its fault either way: a write error reaches the not-logged callback only."""
        heard: list[Exception] = []
        broken: Any = _Broken()
        await record_failure(broken, IDS, NOW, b"<fault/>", "x", heard.append)
        assert [type(e) for e in heard] == [OSError]

    async def test_a_record_that_cannot_be_written_is_logging_failed(self) -> None:
        """A plain write error becomes LoggingFailed, so the exchange fails with X-Road's code."""
        broken: Any = _Broken()
        with pytest.raises(LoggingFailed):
            await record(broken, signed_entry(IDS, Direction.REQUEST, NOW, b"<m/>", SignatureData(b"<sig/>")))
