"""Batch timestamping of the message log: one RFC 3161 token over a hash chain of many logged signatures.

Every interval (``timeStampingIntervalSeconds`` of the global configuration, X-Road default 60 s) up to
``max_records`` (X-Road ``timestamp-records-limit``, 10 000) records not yet timestamped are taken in log
order (XROAD-REFERENCE.md §4.5; X-Road ``TimestamperWorker``, ``BatchTimestampRequest``):

* two or more: the hash chain over their signature hashes (``SHA-512(signature XML)``, the leaves of
  ``core.hashchain.build_hash_chain`` with ``DataRef URI="/META-INF/signatures.xml"``), one token requested
  for ``SHA-512(ts-hashchainresult.xml)``, and each record keeps its own ``ts-hashchain.xml``;
* exactly one: a single timestamp over ``SHA-512(raw ds:SignatureValue)`` (``SingleTimestampRequest``).

The approved TSAs of the global configuration are tried in order; a token is kept only after
``core.timestamp.verify_timestamp_token`` accepted it (``tsa_client``). The store writes go through the
message-log writer's thread (:meth:`MessageLogWriter.run`), so the log keeps a single writer and the reactor
never touches SQLite.

**TSA down.** Records wait and traffic goes on. Once batch timestamping has failed for longer than the grace
period (X-Road ``acceptable-timestamp-failure-period``, default 14 400 s; 0 switches the check off), the
writer refuses new entries with :class:`TimestampingFailed` (the admission check installed on the writer),
so both proxies answer ``timestamping_failed`` (X-Road ``LogManager.verifyCanLogMessage``). The rounds go on;
when a TSA answers again the backlog is stamped (full batches back to back) and the refusal ends by itself.

**Synchronous mode** (X-Road ``timestamp-immediately``): every record gets its own single timestamp before
the caller's ``log()`` Deferred fires; a TSA failure then fails that exchange with ``timestamping_failed``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Callable, Sequence

import structlog
from cryptography import x509
from twisted.application.service import Service
from twisted.internet.defer import Deferred, maybeDeferred, succeed
from twisted.internet.threads import deferToThreadPool
from twisted.python.failure import Failure

from security_server.core import digests
from security_server.core.errors import BusError, TimestampingFailed
from security_server.core.globalconf import GlobalConf
from security_server.core.logchain import LogEntry, LogRecord
from security_server.core.signature import signature_value
from security_server.messagelog.store import MessageLogStore, TimestampAssignment, TsBatch, ts_batch
from security_server.messagelog.tsa_client import TimestampResult, TsaClient
from security_server.messagelog.writer import MessageLogWriter

DEFAULT_MAX_RECORDS = 10_000
"""Records covered by one batch timestamp at most (X-Road ``timestamp-records-limit``)."""

RECORDS_PER_TRANSACTION = 1_000
"""Records of a batch pointed to its timestamp per transaction of the log's writer: about 17 ms each, where a whole
batch of 10,000 held the writer, and every exchange waiting for its record, for about 170 ms."""

DEFAULT_GRACE_PERIOD_SECONDS = 14_400.0
"""How long traffic continues while timestamping fails (X-Road ``acceptable-timestamp-failure-period``)."""

DEFAULT_INTERVAL_SECONDS = 60.0
"""The batch interval when the global configuration cannot be read (X-Road's default)."""

_log = structlog.get_logger("fedbus.messagelog.timestamper")


@dataclass(frozen=True, slots=True)
class TsaEndpoint:
    """An approved time-stamping authority: its name, RFC 3161 URL and certificate."""

    name: str
    url: str
    cert: x509.Certificate


@dataclass(frozen=True, slots=True)
class TimestamperSettings:
    """How the timestamper runs; ``interval_seconds`` None means: from the global configuration."""

    interval_seconds: float | None = None
    max_records: int = DEFAULT_MAX_RECORDS
    grace_period_seconds: float = DEFAULT_GRACE_PERIOD_SECONDS
    request_timeout_seconds: float = 30.0
    immediate: bool = False

    def __post_init__(self) -> None:
        if self.interval_seconds is not None and self.interval_seconds <= 0:
            raise ValueError("the timestamping interval must be positive")
        if self.max_records < 1:
            raise ValueError("max_records must be at least 1")
        if self.grace_period_seconds < 0 or self.request_timeout_seconds <= 0:
            raise ValueError("the grace period must not be negative and the timeout must be positive")


TsaClientFactory = Callable[[str, Sequence[x509.Certificate]], Any]
"""Makes a client for one TSA URL that trusts the given certificates; its ``timestamp(imprint)`` returns a
Deferred firing with a verified :class:`TimestampResult`."""


def tsas_from_global_conf(conf: GlobalConf, chosen: Sequence[str] = ()) -> list[TsaEndpoint]:
    """The approved TSAs of a global configuration, in their published order; only those whose URL the
    administrator chose (``chosen``, the management API's configured services), when any were chosen."""
    return [
        TsaEndpoint(tsa.name, tsa.url, x509.load_der_x509_certificate(tsa.cert))
        for tsa in conf.approved_tsas()
        if not chosen or tsa.url in chosen
    ]


@dataclass(frozen=True, slots=True)
class _Batch:
    """What one round read from the store: record ids and signature hashes, and the signature of a lone one."""

    items: list[tuple[int, bytes]]
    lone_signature: bytes | None


class Timestamper(Service):
    """Timestamps the message log in batches; see the module docstring. Takes the reactor in its constructor."""

    def __init__(
        self,
        reactor: Any,
        writer: MessageLogWriter,
        tsas: Callable[[], Sequence[TsaEndpoint]],
        *,
        interval: Callable[[], float] | None = None,
        settings: TimestamperSettings = TimestamperSettings(),
        client_factory: TsaClientFactory | None = None,
    ) -> None:
        self._reactor = reactor
        self._writer = writer
        self._tsas = tsas
        self._interval = interval
        self.settings = settings
        self._client_factory = client_factory or self._default_client
        self._call: Any = None
        self._scheduled_at = 0.0
        """Reactor seconds when the next round was scheduled (what a changed interval counts from)."""
        self._round: Deferred[int] | None = None
        self._stopping = False
        self.failed_since: float | None = None
        """Reactor time of the first failure since the last success, or None while timestamping works."""
        self.last_error: str | None = None
        self.records_stamped = 0
        """Records timestamped since start."""
        self.tokens_received = 0
        """Tokens received and stored since start."""

    # --- service --------------------------------------------------------------------------------------------

    def startService(self) -> None:
        """Install the admission check (and the synchronous hook), then schedule the first round."""
        super().startService()  # type: ignore[no-untyped-call]  # Twisted leaves it unannotated
        self._stopping = False
        self._writer.set_admission(self._admission)
        if self.settings.immediate:
            self._writer.set_commit_hook(self._stamp_committed)
        self._schedule(self.interval_seconds())

    def stopService(self) -> Deferred[None]:
        """Stop scheduling rounds; fires when a round in progress has finished."""
        super().stopService()  # type: ignore[no-untyped-call]  # Twisted leaves it unannotated
        self._stopping = True
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None
        self._writer.set_admission(None)
        self._writer.set_commit_hook(None)
        done: Deferred[None] = Deferred()
        if self._round is None:
            done.callback(None)
        else:
            self._round.addBoth(lambda _: done.callback(None))
        return done

    # --- state ----------------------------------------------------------------------------------------------

    def interval_seconds(self) -> float:
        """Seconds between rounds: the setting, else the global configuration's, else 60."""
        if self.settings.interval_seconds is not None:
            return self.settings.interval_seconds
        if self._interval is not None:
            try:
                return max(1.0, float(self._interval()))
            except BusError as err:
                _log.warning("timestamping_interval_unknown", reason=err.reason)
        return DEFAULT_INTERVAL_SECONDS

    @property
    def refusing(self) -> bool:
        """True while new log entries are refused because timestamping failed past the grace period."""
        return self._refusal() is not None

    def _refusal(self) -> TimestampingFailed | None:
        grace = self.settings.grace_period_seconds
        if grace == 0 or self.failed_since is None:
            return None
        failing_for = self._reactor.seconds() - self.failed_since
        if failing_for <= grace:
            return None
        return TimestampingFailed(
            "Cannot time-stamp messages",
            reason=f"time-stamping has failed for {failing_for:.0f} s, longer than the {grace:.0f} s allowed"
            + (f": {self.last_error}" if self.last_error else ""),
        )

    def _admission(self, entry: LogEntry) -> BusError | None:
        if self.settings.immediate:
            return None  # every exchange waits for its own timestamp instead (X-Road skips the check too)
        return self._refusal()

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._reactor.seconds(), tz=UTC)

    def _default_client(self, url: str, approved: Sequence[x509.Certificate]) -> Any:
        return TsaClient(self._reactor, url, approved, timeout_seconds=self.settings.request_timeout_seconds)

    # --- rounds ---------------------------------------------------------------------------------------------

    def _schedule(self, delay: float) -> None:
        if self._stopping or not self.running:
            return
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._scheduled_at = self._reactor.seconds()
        self._call = self._reactor.callLater(delay, self._tick)

    def interval_changed(self) -> None:
        """Bring the next round forward when the interval in force now ends sooner than the wait planned with the
        old one (a new global configuration lowered ``timeStampingIntervalSeconds``; issue 22). A longer interval
        applies from the next round on."""
        if self._call is None or not self._call.active():
            return
        due = self._scheduled_at + self.interval_seconds()
        if due < self._call.getTime():
            self._call.reset(max(0.0, due - self._reactor.seconds()))

    def _tick(self) -> None:
        self._call = None
        if self._round is not None:  # a round asked for directly is running: look again next interval
            self._schedule(self.interval_seconds())
            return

        def next_round(stamped: int) -> None:
            full = stamped >= self.settings.max_records
            self._schedule(0 if full else self.interval_seconds())

        self.stamp_pending().addCallback(next_round)

    def stamp_pending(self) -> Deferred[int]:
        """One round: stamp up to ``max_records`` waiting records; fires with how many were stamped (never fails).

        A round already running is not started twice: its Deferred is shared.
        """
        if self._round is not None:
            shared: Deferred[int] = Deferred()

            def relay(result: object) -> object:
                shared.callback(result if isinstance(result, int) else 0)
                return result

            self._round.addBoth(relay)
            return shared
        limit = self.settings.max_records

        def read(store: MessageLogStore) -> _Batch:
            items = store.untimestamped(limit)
            lone = store.signature_of(items[0][0]) if len(items) == 1 else None
            return _Batch(items, lone)

        round_deferred: Deferred[int] = self._writer.run(read).addCallback(self._stamp_batch)
        round_deferred.addErrback(self._round_failed)
        self._round = round_deferred

        def finished(result: int) -> int:
            self._round = None
            return result

        round_deferred.addBoth(finished)
        return round_deferred

    def _round_failed(self, failure: Failure) -> int:
        error = failure.value
        reason = error.reason if isinstance(error, BusError) else f"{type(error).__name__}: {error}"
        self._failed(reason)
        return 0

    def _failed(self, reason: str) -> None:
        self.last_error = reason
        if self.failed_since is None:
            self.failed_since = self._reactor.seconds()
        _log.error(
            "timestamping_failed",
            reason=reason,
            failing_seconds=round(self._reactor.seconds() - self.failed_since, 1),
            refusing=self.refusing,
        )

    def _succeeded(self) -> None:
        if self.failed_since is not None:
            _log.info("timestamping_recovered", failed_seconds=round(self._reactor.seconds() - self.failed_since, 1))
        self.failed_since = None
        self.last_error = None

    def _stamp_batch(self, batch: _Batch) -> Deferred[int]:
        items = batch.items
        if not items:
            self._succeeded()  # nothing waits for a timestamp: no evidence is missing, whatever failed before
            return succeed(0)
        ids = [record_id for record_id, _ in items]
        if len(items) == 1:
            assert batch.lone_signature is not None
            imprint = digests.SHA512.digest(signature_value(batch.lone_signature))
            lone = [TimestampAssignment(ids[0], None)]
            return self._request(imprint).addCallback(
                self._store, ids, lambda store, token, now, url: store.add_timestamp(
                    token, None, lone, time=now, tsa_url=url
                ), batch=False,
            )
        # XROAD-REFERENCE.md §4.5: leaves are the signature hashes; the token covers H(ts-hashchainresult.xml). Only
        # the result is computed (one tree walk, about 1 ms per 1,000 records, in the thread pool): the compact store
        # keeps each record's chain derived from the leaves, so the chains (20 ms per 1,000) are not built.
        leaves = [signature_hash for _, signature_hash in items]

        def made(stamped: TsBatch) -> Deferred[int]:
            first = min(len(ids), RECORDS_PER_TRANSACTION)
            return self._request(digests.SHA512.digest(stamped.result)).addCallback(
                self._store, ids, lambda store, token, now, url: store.add_batch_timestamp(
                    token, stamped, ids, time=now, tsa_url=url, pointing=first
                ), batch=True, rest=lambda timestamp_id: self._point_rest(timestamp_id, stamped, ids, first),
            )

        return self._off_reactor(lambda: ts_batch(leaves)).addCallback(made)

    def _point_rest(self, timestamp_id: int, stamped: TsBatch, ids: list[int], start: int) -> Deferred[None]:
        """Point ``ids[start:]`` to the stored batch timestamp, :data:`RECORDS_PER_TRANSACTION` at a time, each part
        queued behind the records logged meanwhile (so the log's writer is never held for the whole batch)."""
        if start >= len(ids):
            return succeed(None)
        count = min(len(ids) - start, RECORDS_PER_TRANSACTION)

        def write(log_store: MessageLogStore) -> None:
            log_store.point_to_batch_timestamp(timestamp_id, stamped, ids, start, count)

        written: Deferred[None] = self._writer.run(write)
        return written.addCallback(lambda _: self._point_rest(timestamp_id, stamped, ids, start + count))

    def _store(
        self,
        granted: tuple[TimestampResult, str],
        ids: list[int],
        add: Callable[[MessageLogStore, bytes, datetime, str], int],
        *,
        batch: bool,
        rest: Callable[[int], Deferred[None]] | None = None,
    ) -> Deferred[int]:
        """Store a granted token for the records ``ids`` with ``add(store, token, time, tsa_url)``, then ``rest``
        (the later parts of a batch) with the new timestamp's id."""
        result, url = granted
        now = self._now()

        def write(log_store: MessageLogStore) -> int:
            return add(log_store, result.token_der, now, url)

        def then_rest(timestamp_id: int) -> Deferred[int]:
            if rest is None:
                return succeed(timestamp_id)
            return rest(timestamp_id).addCallback(lambda _: timestamp_id)

        def stored(timestamp_id: int) -> int:
            self._succeeded()
            self.records_stamped += len(ids)
            self.tokens_received += 1
            _log.info(
                "timestamp_stored",
                timestamp_id=timestamp_id,
                records=len(ids),
                first_record=ids[0],
                last_record=ids[-1],
                batch=batch,
                tsa=url,
            )
            return len(ids)

        first: Deferred[int] = self._writer.run(write)
        pointed: Deferred[int] = first.addCallback(then_rest)
        return pointed.addCallback(stored)

    def _off_reactor(self, work: Callable[[], TsBatch]) -> Deferred[TsBatch]:
        """Run ``work`` in the reactor's thread pool (a reactor without one, such as a test's Clock: here)."""
        pool = getattr(self._reactor, "getThreadPool", None)
        if pool is None:
            return maybeDeferred(work)
        return deferToThreadPool(self._reactor, pool(), work)

    def _request(self, imprint: bytes) -> Deferred[tuple[TimestampResult, str]]:
        """Ask the approved TSAs in order for a verified token over ``imprint``; fail when none gives one."""
        try:
            tsas = list(self._tsas())
        except BusError as err:
            return _failed(TimestampingFailed("no global configuration to find a TSA in", reason=err.reason))
        if not tsas:
            return _failed(TimestampingFailed("Cannot time-stamp messages: no approved time-stamping authority"))
        approved = [tsa.cert for tsa in tsas]
        errors: list[str] = []
        result: Deferred[tuple[TimestampResult, str]] = Deferred()

        def attempt(index: int) -> None:
            if index == len(tsas):
                result.errback(
                    TimestampingFailed(
                        "Failed to get time stamp from any time-stamping providers", reason="; ".join(errors)
                    )
                )
                return
            tsa = tsas[index]
            try:
                requested: Deferred[TimestampResult] = self._client_factory(tsa.url, approved).timestamp(imprint)
            except Exception as err:  # a bad URL in the configuration: try the next TSA
                errors.append(f"{tsa.name}: {err}")
                attempt(index + 1)
                return

            def refused(failure: Failure) -> None:
                error = failure.value
                errors.append(f"{tsa.name}: {error.reason if isinstance(error, BusError) else failure.getErrorMessage()}")
                attempt(index + 1)

            requested.addCallbacks(lambda granted: result.callback((granted, tsa.url)), refused)

        attempt(0)
        return result

    # --- single timestamps: synchronous mode and /asic?force --------------------------------------------------

    def stamp_record(self, record_id: int) -> Deferred[bool]:
        """Give record ``record_id`` its own single timestamp now, unless it has one; fires True when stamped.

        Fails with :class:`TimestampingFailed` when no TSA gave a token.
        """

        def read(store: MessageLogStore) -> bytes | None:
            if store.timestamp_of(record_id) is not None:
                return None
            return store.signature_of(record_id)

        def stamp(signature: bytes | None) -> Deferred[bool] | bool:
            if not signature:
                return False
            imprint = digests.SHA512.digest(signature_value(signature))

            def store(granted: tuple[TimestampResult, str]) -> Deferred[bool]:
                result, url = granted
                now = self._now()

                def write(log_store: MessageLogStore) -> bool:
                    log_store.add_timestamp(
                        result.token_der, None, [TimestampAssignment(record_id, None)], time=now, tsa_url=url
                    )
                    return True

                def stored(done: bool) -> bool:
                    self._succeeded()
                    _log.info("timestamp_stored", record=record_id, batch=False, tsa=url)
                    return done

                return self._writer.run(write).addCallback(stored)

            return self._request(imprint).addCallback(store)

        return self._writer.run(read).addCallback(stamp)

    def _stamp_committed(self, record: LogRecord) -> Deferred[object]:
        """The synchronous-mode hook: the record's own timestamp before its caller is answered."""
        if not record.signature:
            return succeed(None)

        def failed(failure: Failure) -> Failure:
            error = failure.value
            reason = error.reason if isinstance(error, BusError) else failure.getErrorMessage()
            _log.error("timestamping_failed", record_id=record.id, query_id=record.query_id, reason=reason)
            if isinstance(error, TimestampingFailed):
                return failure
            raise TimestampingFailed("Cannot time-stamp messages", reason=reason) from error

        def stamped(result: bool) -> None:
            if result:
                self.records_stamped += 1
                self.tokens_received += 1

        stamping: Deferred[object] = self.stamp_record(record.id).addCallbacks(stamped, failed)
        return stamping


def _failed(error: BusError) -> Deferred[Any]:
    deferred: Deferred[Any] = Deferred()
    deferred.errback(error)
    return deferred


def timestamper_for_global_conf(
    reactor: Any,
    writer: MessageLogWriter,
    global_conf: Callable[[], GlobalConf],
    settings: TimestamperSettings = TimestamperSettings(),
    chosen: Callable[[], Sequence[str]] = lambda: (),
    client_factory: TsaClientFactory | None = None,
) -> Timestamper:
    """A timestamper whose TSAs and interval come from the global configuration in force (the ``chosen`` URLs
    among its approved TSAs, when the administrator chose any): both are read again for every round, so a new
    configuration governs the next round without a restart (call :meth:`Timestamper.interval_changed` when one
    is applied, so that a shorter interval does not wait for the round planned with the old one)."""
    return Timestamper(
        reactor,
        writer,
        lambda: tsas_from_global_conf(global_conf(), chosen()),
        interval=lambda: float(global_conf().timestamping_interval_seconds),
        settings=settings,
        client_factory=client_factory,
    )
