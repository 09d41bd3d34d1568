"""The timestamper follows the global configuration in force: its interval and its TSA list change with a new
configuration, under a running timestamper, without a restart (issue 22 item 1).

A real message-log writer on a SQLite file and the development TSA on 127.0.0.1 (trial's real reactor); the
timestamper's schedule runs on a :class:`task.Clock`, and the configuration is a box the test swaps, as the
configuration client swaps in each download.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Sequence

from security_server.core.globalconf import GlobalConf
from security_server.core.globalconf.sharedparams import ApprovedTsa
from security_server.messagelog.store import MessageLogStore
from security_server.messagelog.timestamper import Timestamper, TimestamperSettings, timestamper_for_global_conf
from tests.federation.evidence import exchange
from tests.federation.pki import der
from tests.federation.world import global_conf, pki
from tests.security_server.messagelog import timestamping_case
from tests.security_server.messagelog.timestamping_case import tsa_client


class TimestamperConfTests(timestamping_case.TimestampingCase):
    """A timestamper built by timestamper_for_global_conf over a configuration the test changes."""

    def setUp(self) -> None:
        super().setUp()
        self.base = global_conf(pki())
        self.box: list[GlobalConf] = []

    def publish(self, *, interval: int, tsa_urls: Sequence[str] = ()) -> None:
        """Make a configuration with this interval and these approved TSAs the one in force."""
        tsas = tuple(ApprovedTsa(f"TSA {n}", url, der(self.fed.tsa_cert)) for n, url in enumerate(tsa_urls))
        self.box[:] = [
            dataclasses.replace(
                self.base,
                shared=dataclasses.replace(self.base.shared, approved_tsas=tsas),
                private=dataclasses.replace(self.base.private, time_stamping_interval_seconds=interval),
            )
        ]

    def timestamper(self) -> Timestamper:
        """The timestamper as a running server builds it, on the fake clock, TSA clients on the real reactor."""
        return self.started(timestamper_for_global_conf(
            self.clock, self.writer, lambda: self.box[0], TimestamperSettings(grace_period_seconds=100.0),
            client_factory=tsa_client,
        ))

    def next_round_at(self) -> float:
        """The fake-clock time of the one scheduled round."""
        calls: list[Any] = list(self.clock.getDelayedCalls())
        assert len(calls) == 1
        return float(calls[0].getTime())

    def test_lowered_interval_brings_the_planned_round_forward(self) -> None:
        """3600 -> 60 s: the round planned for 3600 s comes at 60 s once interval_changed() runs."""
        self.publish(interval=3600)
        stamper = self.timestamper()
        assert self.next_round_at() == 3600
        self.clock.advance(10)
        self.publish(interval=60)
        stamper.interval_changed()
        assert self.next_round_at() == 60

    def test_lowered_interval_already_past_starts_the_round_now(self) -> None:
        """When the new interval has already passed since the round was planned, the round starts at once."""
        self.publish(interval=3600)
        stamper = self.timestamper()
        self.clock.advance(120)
        self.publish(interval=60)
        stamper.interval_changed()
        assert self.next_round_at() == 120

    def test_raised_interval_keeps_the_planned_round(self) -> None:
        """60 -> 600 s: the planned round is not delayed; the interval read next is the new one."""
        self.publish(interval=60)
        stamper = self.timestamper()
        self.publish(interval=600)
        stamper.interval_changed()
        assert self.next_round_at() == 60
        assert stamper.interval_seconds() == 600

    async def test_tsa_list_of_the_new_configuration_serves_the_next_round(self) -> None:
        """The TSA replaced in the configuration (first down, then a new one published) stamps the next round."""
        old = self.serve_tsa(f"tsa-serial-{len(self.box)}.json")
        await old.port.stopListening()
        self.publish(interval=60, tsa_urls=[old.url])
        stamper = self.timestamper()
        await self.writer.log(exchange("tsa-1")[0])
        assert await stamper.stamp_pending() == 0
        assert stamper.failed_since is not None
        new = self.serve_tsa(f"tsa-serial-{len(self.box)}.json")
        self.publish(interval=60, tsa_urls=[new.url])
        assert await stamper.stamp_pending() == 1
        self.assertIsNone(stamper.failed_since)

        def used(store: MessageLogStore) -> list[Any]:
            return [stamp.timestamp.tsa_url for stamp in (store.timestamp_of(r.id) for r in store.records()) if stamp]

        assert await self.writer.run(used) == [new.url]
