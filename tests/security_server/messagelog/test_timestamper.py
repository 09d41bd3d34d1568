"""Batch timestamping with the real development TSA on loopback: batches, single stamps, TSA down and back."""

from __future__ import annotations

import hashlib
import threading
from datetime import UTC, datetime
from typing import Any, Sequence

import pytest
from twisted.internet import reactor as _reactor
from twisted.internet.task import Clock

from security_server.core import hashchain
from security_server.core.errors import TimestampingFailed
from security_server.core.evidence import verify_evidence
from security_server.core.logchain import LogEntry
from security_server.core.signature import signature_value
from security_server.core.timestamp import read_timestamp_token
from security_server.messagelog.asic_export import record_container
from security_server.messagelog.store import NO_SIGNATURE_TIMESTAMP_ID, MessageLogStore
from security_server.messagelog import timestamper as timestamper_module
from security_server.messagelog.store import TsBatch, ts_batch
from security_server.messagelog.timestamper import Timestamper, TimestamperSettings, TsaEndpoint
from tests.federation.evidence import exchange, failed_entry
from tests.security_server.messagelog import timestamping_case
from tests.security_server.messagelog.timestamping_case import tsa_client


class TimestamperTests(timestamping_case.TimestampingCase):
    """A writer on a real SQLite file, the development TSA on 127.0.0.1, the timestamper between them."""

    def setUp(self) -> None:
        super().setUp()
        self.urls: list[str] = []

    def tsas(self) -> Sequence[TsaEndpoint]:
        return [TsaEndpoint(f"TSA {n}", url, self.fed.tsa_cert) for n, url in enumerate(self.urls)]

    def timestamper(self, **settings: Any) -> Timestamper:
        """A timestamper on the fake clock whose TSA clients use the real reactor."""
        values: dict[str, Any] = {"interval_seconds": 3600.0, "grace_period_seconds": 100.0}
        values.update(settings)
        return self.started(Timestamper(
            self.clock, self.writer, self.tsas, settings=TimestamperSettings(**values), client_factory=tsa_client))

    async def log(self, *entries: LogEntry) -> None:
        for entry in entries:
            await self.writer.log(entry)

    async def scheduled_round(self, stamper: Timestamper, seconds: float) -> None:
        """Move the clock by ``seconds`` and wait for the round the schedule starts then (never one of our own)."""
        self.clock.advance(seconds)
        assert self.clock.getDelayedCalls() == [], "the schedule started no round"  # the next is set when it ends
        await stamper.stamp_pending()  # joins the running round

    async def read(self, function: Any) -> Any:
        return await self.writer.run(function)

    async def test_a_batch_s_result_is_computed_off_the_reactor_thread(self) -> None:
        """With a reactor that has a thread pool, the batch's hash-chain result is computed there, not on the
        reactor's thread (a tree walk over up to 10,000 leaves), and the records get their chains."""
        self.urls = [self.serve_tsa().url]
        threads: list[threading.Thread] = []

        def recording(leaves: Sequence[bytes]) -> TsBatch:
            threads.append(threading.current_thread())
            return ts_batch(leaves)

        class ClockWithPool(Clock):
            """The fake clock, with the real reactor's thread pool and its way back from a thread."""

            def getThreadPool(self) -> Any:
                return _reactor.getThreadPool()

            def callFromThread(self, f: Any, *args: Any, **kwargs: Any) -> None:
                _reactor.callFromThread(f, *args, **kwargs)

        self.clock = ClockWithPool()
        stamper = self.timestamper()
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(timestamper_module, "ts_batch", recording)
            await self.log(*exchange("pooled-1"), *exchange("pooled-2"))
            assert await stamper.stamp_pending() == 4
        assert threads and all(thread is not threading.main_thread() for thread in threads)
        stamps = await self.read(lambda store: [store.timestamp_of(n) for n in range(1, 5)])
        assert all(stamp is not None and stamp.hash_chain for stamp in stamps)

    async def test_a_batch_gets_one_token_over_the_hash_chain_and_each_record_its_own_chain(self) -> None:
        """Four records: one token whose imprint is SHA-512(ts-hashchainresult.xml); every record has its chain."""
        self.urls = [self.serve_tsa().url]
        stamper = self.timestamper()
        await self.log(*exchange("batch-1"), *exchange("batch-2"))
        assert await stamper.stamp_pending() == 4

        def collect(store: MessageLogStore) -> list[Any]:
            return [(record, store.timestamp_of(record.id)) for record in store.records()]

        found = await self.read(collect)
        tokens = {stamp.timestamp.id for _, stamp in found}
        assert len(tokens) == 1 and stamper.tokens_received == 1
        stamp = found[0][1]
        assert stamp.timestamp.hash_chain_result is not None
        info = read_timestamp_token(stamp.timestamp.token)
        assert info.imprint == hashlib.sha512(stamp.timestamp.hash_chain_result).digest()
        for record, record_stamp in found:
            # each record's own chain leads from its signature to the shared result (XROAD-REFERENCE.md §4.5)
            hashchain.verify_hash_chain(
                record_stamp.timestamp.hash_chain_result,
                record_stamp.hash_chain,
                {hashchain.SIGNATURE: record.signature}.get,
                [hashchain.SIGNATURE],
            )
            report = verify_evidence(record_container(record, record_stamp), self.fed.conf(), datetime.now(UTC))
            assert report.ok, report.checks

    async def test_a_big_batch_is_pointed_to_its_token_in_parts_with_records_logged_between(self) -> None:
        """The records of a batch are pointed to its one token a part at a time; a record logged while the parts are
        written is committed between them (the writer is not held for the whole batch) and waits for the next round.
        Every record of the batch ends with the same token and a container that verifies."""
        self.urls = [self.serve_tsa().url]
        stamper = self.timestamper()
        await self.log(*exchange("part-1"), *exchange("part-2"), *exchange("part-3"))
        late, _ = exchange("part-late")
        parts: list[tuple[int, int]] = []
        point = MessageLogStore.point_to_batch_timestamp

        def pointing(store: MessageLogStore, *args: Any) -> None:
            parts.append((args[3], store.count()))  # the part's first index, the records committed by then
            if len(parts) == 1:
                _reactor.callFromThread(self.writer.log, late)  # queued before the next part is
            point(store, *args)

        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(timestamper_module, "RECORDS_PER_TRANSACTION", 2)
            patch.setattr(MessageLogStore, "point_to_batch_timestamp", pointing)
            assert await stamper.stamp_pending() == 6
        assert parts == [(2, 6), (4, 7)]  # the late record was committed between the parts

        def collect(store: MessageLogStore) -> list[Any]:
            return [(record, store.timestamp_of(record.id)) for record in store.records()]

        found = await self.read(collect)
        assert [record.query_id for record, _ in found][-1] == "part-late"
        assert found[-1][1] is None  # logged during the round: the next one stamps it
        assert len({stamp.timestamp.id for _, stamp in found[:6]}) == 1
        for record, record_stamp in found[:6]:
            report = verify_evidence(record_container(record, record_stamp), self.fed.conf(), datetime.now(UTC))
            assert report.ok, report.checks
        assert await stamper.stamp_pending() == 1

    async def test_a_lone_record_gets_a_single_timestamp_over_its_signature_value(self) -> None:
        """One waiting record: the token covers SHA-512 of its raw signature value, and its container verifies."""
        self.urls = [self.serve_tsa().url]
        stamper = self.timestamper()
        request, _ = exchange("single-1")
        await self.log(request)
        assert await stamper.stamp_pending() == 1
        record, stamp = await self.read(lambda store: (store.get(1), store.timestamp_of(1)))
        assert stamp.timestamp.hash_chain_result is None and stamp.hash_chain is None
        assert read_timestamp_token(stamp.timestamp.token).imprint == hashlib.sha512(signature_value(record.signature)).digest()
        report = verify_evidence(record_container(record, stamp), self.fed.conf(), datetime.now(UTC))
        assert report.ok, report.checks

    async def test_records_without_a_signature_are_not_stamped(self) -> None:
        """A failed exchange's unsigned record is marked as having nothing to stamp; the signed ones are stamped."""
        self.urls = [self.serve_tsa().url]
        stamper = self.timestamper()
        request, response = exchange("failed-1")
        await self.log(request, failed_entry("failed-1"), response)
        assert await stamper.stamp_pending() == 2

        def stamps(store: MessageLogStore) -> list[int | None]:
            return [row[0] for row in store.database.execute("SELECT timestamp_id FROM logrecord ORDER BY id").fetchall()]

        ids = await self.read(stamps)
        assert ids[1] == NO_SIGNATURE_TIMESTAMP_ID and ids[0] == ids[2] and ids[0] > 0

    async def test_a_full_batch_is_cut_at_max_records_and_the_rest_follows(self) -> None:
        """With max_records 3, five records take two rounds: 3 then 2, each with its own token."""
        self.urls = [self.serve_tsa().url]
        stamper = self.timestamper(max_records=3)
        await self.log(*exchange("cut-1"), *exchange("cut-2"), exchange("cut-3")[0])
        assert await stamper.stamp_pending() == 3
        assert await stamper.stamp_pending() == 2
        assert await stamper.stamp_pending() == 0
        assert stamper.tokens_received == 2

    async def test_tsas_are_tried_in_order(self) -> None:
        """When the first approved TSA does not answer, the next one gives the token."""
        down = self.serve_tsa()
        await down.port.stopListening()
        self.urls = [down.url, self.serve_tsa().url]
        stamper = self.timestamper()
        await self.log(*exchange("order-1"))
        assert await stamper.stamp_pending() == 2
        assert stamper.failed_since is None
        url = await self.read(lambda store: store.timestamp_of(1).timestamp.tsa_url)
        assert url == self.urls[1]

    async def test_tsa_down_within_the_grace_period_records_wait_and_traffic_continues(self) -> None:
        """With the TSA down, nothing is stamped, the failure time is kept, and the log still takes entries."""
        served = self.serve_tsa()
        await served.port.stopListening()
        self.urls = [served.url]
        stamper = self.timestamper()
        await self.log(*exchange("down-1"))
        assert await stamper.stamp_pending() == 0
        assert stamper.failed_since is not None and not stamper.refusing
        self.clock.advance(99)  # still inside the 100 s grace period
        await self.log(*exchange("down-2"))
        assert await self.read(lambda store: store.untimestamped_count()) == 4

    async def test_tsa_down_past_the_grace_period_refuses_new_entries_with_timestamping_failed(self) -> None:
        """Once timestamping has failed for longer than the grace period, log() fails with timestamping_failed."""
        served = self.serve_tsa()
        await served.port.stopListening()
        self.urls = [served.url]
        stamper = self.timestamper()
        await self.log(exchange("past-1")[0])
        await stamper.stamp_pending()
        self.clock.advance(101)
        assert stamper.refusing
        with pytest.raises(TimestampingFailed) as caught:
            await self.writer.log(exchange("past-2")[0])
        assert caught.value.fault_code == "server.timestamping_failed"
        assert await self.read(lambda store: store.count()) == 1

    async def test_a_grace_period_of_zero_never_refuses(self) -> None:
        """grace_period_seconds=0 switches the check off (X-Road: 0 disables it)."""
        served = self.serve_tsa()
        await served.port.stopListening()
        self.urls = [served.url]
        stamper = self.timestamper(grace_period_seconds=0)
        await self.log(exchange("zero-1")[0])
        await stamper.stamp_pending()
        self.clock.advance(10**6)
        assert not stamper.refusing
        await self.log(exchange("zero-2")[0])

    async def test_tsa_back_the_backlog_is_stamped_and_traffic_resumes_by_itself(self) -> None:
        """Past the grace period with the TSA down, then the TSA returns: the scheduled rounds stamp the
        backlog and the log takes entries again, without any restart."""
        served = self.serve_tsa()
        await served.port.stopListening()
        self.urls = [served.url]
        stamper = self.timestamper(interval_seconds=60, max_records=2)
        await self.log(*exchange("back-1"), *exchange("back-2"))
        await self.scheduled_round(stamper, 60)
        assert stamper.failed_since == 60  # the scheduled rounds fail while the TSA is down
        self.clock.advance(101)  # past the grace period; the round due at 120 has started and fails too
        with pytest.raises(TimestampingFailed):
            await self.writer.log(exchange("back-3")[0])
        await stamper.stamp_pending()  # joins that round
        self.urls = [self.serve_tsa().url]  # the TSA is back (on a new port, as published)
        # The next scheduled round stamps a full batch of 2 and asks for the next one at once, which stamps the rest.
        await self.scheduled_round(stamper, 60)
        assert stamper.tokens_received == 1
        await self.scheduled_round(stamper, 0)
        assert stamper.tokens_received == 2  # a backlog of 4 in batches of 2
        assert not stamper.refusing
        assert await self.read(lambda store: store.untimestamped_count()) == 0
        await self.log(exchange("back-4")[0])

    async def test_synchronous_mode_stamps_each_record_before_log_answers(self) -> None:
        """immediate=True: the log() Deferred fires only once the record has its own timestamp."""
        self.urls = [self.serve_tsa().url]
        self.timestamper(immediate=True)
        request, response = exchange("sync-1")
        record = await self.writer.log(request)
        stamp = await self.read(lambda store: store.timestamp_of(record.id))
        assert stamp is not None and stamp.timestamp.hash_chain_result is None
        report = verify_evidence(record_container(record, stamp), self.fed.conf(), datetime.now(UTC))
        assert report.ok, report.checks

    async def test_synchronous_mode_fails_the_exchange_when_no_tsa_answers(self) -> None:
        """immediate=True with the TSA down: log() fails with timestamping_failed (the record stays logged)."""
        served = self.serve_tsa()
        await served.port.stopListening()
        self.urls = [served.url]
        self.timestamper(immediate=True)
        with pytest.raises(TimestampingFailed):
            await self.writer.log(exchange("sync-2")[0])
        assert await self.read(lambda store: store.count()) == 1

    async def test_no_approved_tsa_counts_as_a_failure(self) -> None:
        """With no TSA in the configuration, records wait and the grace clock runs (X-Road needs a TSA)."""
        self.urls = []
        stamper = self.timestamper()
        await self.log(exchange("none-1")[0])
        assert await stamper.stamp_pending() == 0
        assert stamper.failed_since is not None and "no approved" in (stamper.last_error or "")
