"""The timestamping admission check of a worker whose shard another worker timestamps.

With ``[server] workers = N``, worker 0 timestamps every shard (security_server/workers.py); the other workers
have no timestamper of their own to ask whether timestamping has failed. :class:`ShardAdmission` gives their
writer the same door (UG-SS "acceptable-timestamp-failure-period"): every ``poll_seconds`` it reads the time of
the oldest signed record of its shard still waiting for a timestamp, and the writer refuses new entries with
``TimestampingFailed`` while that record has waited longer than the grace period plus ``slack_seconds`` (the
batch interval within which worker 0 stamps a record when all is well). A grace period of 0 disables it, as it
does the timestamper's own check.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import structlog
from twisted.application.service import Service
from twisted.internet.task import LoopingCall

from security_server.core.errors import BusError, TimestampingFailed
from security_server.core.logchain import LogEntry
from security_server.messagelog.store import MessageLogStore
from security_server.messagelog.writer import MessageLogWriter

DEFAULT_POLL_SECONDS = 10.0
DEFAULT_SLACK_SECONDS = 120.0

_log = structlog.get_logger("fedbus.messagelog")


class ShardAdmission(Service):
    """Refuses new records while this shard's oldest unstamped record has waited past the grace period."""

    def __init__(
        self,
        reactor: Any,
        writer: MessageLogWriter,
        grace_period_seconds: float,
        *,
        poll_seconds: float = DEFAULT_POLL_SECONDS,
        slack_seconds: float = DEFAULT_SLACK_SECONDS,
    ) -> None:
        self._reactor = reactor
        self._writer = writer
        self.grace_period_seconds = grace_period_seconds
        self.poll_seconds = poll_seconds
        self.slack_seconds = slack_seconds
        self.oldest_waiting: datetime | None = None
        """The time of the oldest signed record waiting for a timestamp, as last read."""
        self._loop: LoopingCall | None = None

    def refusal(self) -> TimestampingFailed | None:
        """The error new entries get now, or None."""
        if self.grace_period_seconds == 0 or self.oldest_waiting is None:
            return None
        waited = self._reactor.seconds() - self.oldest_waiting.timestamp()
        if waited <= self.grace_period_seconds + self.slack_seconds:
            return None
        return TimestampingFailed(
            "Cannot time-stamp messages",
            reason=f"a record of this worker's shard has waited {waited:.0f} s for a timestamp, longer than the "
            f"{self.grace_period_seconds:.0f} s allowed",
        )

    def _admission(self, entry: LogEntry) -> BusError | None:
        return self.refusal()

    def poll(self) -> Any:
        """Read the oldest waiting record's time (in the writer's thread)."""

        def keep(oldest: datetime | None) -> None:
            self.oldest_waiting = oldest

        def failed(failure: Any) -> None:
            _log.warning("shard_admission_read_failed", error=failure.getErrorMessage())

        return self._writer.run(MessageLogStore.oldest_untimestamped_time).addCallbacks(keep, failed)

    def startService(self) -> None:
        """Install the check on the writer and start reading."""
        super().startService()  # type: ignore[no-untyped-call]
        self._writer.set_admission(self._admission)
        if self.grace_period_seconds > 0:
            self._loop = LoopingCall(self.poll)
            self._loop.clock = self._reactor
            self._loop.start(self.poll_seconds, now=True)

    def stopService(self) -> None:
        """Stop reading and take the check off the writer."""
        super().stopService()  # type: ignore[no-untyped-call]
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        self._writer.set_admission(None)
