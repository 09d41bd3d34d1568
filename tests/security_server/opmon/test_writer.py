"""The opmon writer: batches from the buffer to the store on a LoopingCall; a stuck store never blocks the buffer."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from twisted.internet.defer import Deferred, succeed
from twisted.internet.task import Clock

from security_server.opmon.buffer import OpmonBuffer
from security_server.opmon.store import OpmonStore
from security_server.opmon.writer import OpmonWriter
from tests.security_server.core.opmon.opmon_fixture import succeeded_soap


def run_now(function: Callable[[], int]) -> Deferred[int]:
    """Run the store call at once (the tests' stand-in for the worker thread)."""
    return succeed(function())


class HeldRunner:
    """A runner whose calls wait until the test releases them, as a stuck store would."""

    def __init__(self) -> None:
        self.pending: list[tuple[Callable[[], int], Deferred[int]]] = []

    def __call__(self, function: Callable[[], int]) -> Deferred[int]:
        deferred: Deferred[int] = Deferred()
        self.pending.append((function, deferred))
        return deferred

    def release(self) -> None:
        function, deferred = self.pending.pop(0)
        try:
            result = function()
        except Exception as err:
            deferred.errback(err)
        else:
            deferred.callback(result)


def make(tmp_path: Path, run: Callable[[Callable[[], int]], Deferred[int]], capacity: int = 100,
         max_batch: int = 10) -> tuple[OpmonWriter, OpmonBuffer, OpmonStore, Clock]:
    clock = Clock()
    clock.advance(1_000_000)
    buffer = OpmonBuffer(capacity)
    store = OpmonStore(tmp_path / "opmon.db")
    writer = OpmonWriter(buffer, store, clock=clock, run=run, interval=1.0, max_batch=max_batch, cleanup_interval=3600)
    return writer, buffer, store, clock


def test_records_are_stored_in_batches_each_tick(tmp_path: Path) -> None:
    """Each tick stores up to max_batch records, stamped with the tick's second."""
    writer, buffer, store, clock = make(tmp_path, run_now, max_batch=3)
    writer.startService()
    for i in range(5):
        buffer.add(succeeded_soap(message_id=str(i)))
    clock.advance(1)
    assert store.count() == 3 and len(buffer) == 2
    clock.advance(1)
    assert store.count() == 5 and writer.stored == 5 and writer.last_success == 1_000_002
    writer.stopService()


def test_a_stuck_store_never_blocks_or_grows_the_buffer(tmp_path: Path) -> None:
    """While a batch hangs, ticks take nothing more; the buffer keeps taking records, dropping its oldest."""
    held = HeldRunner()
    writer, buffer, store, clock = make(tmp_path, held, capacity=5, max_batch=2)
    writer.startService()
    held.release()  # the start-up cleanup
    for i in range(4):
        buffer.add(succeeded_soap(message_id=str(i)))
    clock.advance(1)
    assert len(held.pending) == 1 and len(buffer) == 2
    for i in range(4, 20):
        buffer.add(succeeded_soap(message_id=str(i)))
        clock.advance(1)
    assert len(held.pending) == 1 and len(buffer) == 5 and buffer.dropped == 13
    assert writer.healthy(stuck_after=10)[0] is False and "writing one batch" in writer.healthy(stuck_after=10)[1]
    held.release()
    assert store.count() == 2 and writer.healthy() == (True, "")
    clock.advance(1)
    assert len(held.pending) == 1
    writer.stopService()


def test_a_failed_batch_goes_back_and_marks_the_writer_unhealthy(tmp_path: Path) -> None:
    """A store error puts the batch back in front, counts it, and the health check sees it until a write works."""
    held = HeldRunner()
    writer, buffer, store, clock = make(tmp_path, held, max_batch=10)
    writer.startService()
    held.release()  # the start-up cleanup
    buffer.add(succeeded_soap(message_id="a"))
    clock.advance(1)
    store.close()
    store.path.write_bytes(b"x" * 4096)  # the database file is now garbage
    held.release()
    assert writer.failed_batches == 1 and len(buffer) == 1
    healthy, reason = writer.healthy()
    assert not healthy and "operational monitoring store failed" in reason
    store.path.unlink()
    clock.advance(1)
    held.release()
    assert store.count() == 1 and writer.healthy()[0]
    writer.stopService()


def test_a_runner_that_raises_keeps_the_records(tmp_path: Path) -> None:
    """If the work cannot even be handed to the thread, the batch stays in the buffer and nothing raises."""
    def broken(function: Callable[[], int]) -> Deferred[int]:
        raise RuntimeError("thread pool stopped")

    writer, buffer, _store, clock = make(tmp_path, broken)
    writer.startService()
    buffer.add(succeeded_soap())
    clock.advance(1)
    assert len(buffer) == 1 and writer.failed_batches == 1
    writer.stopService()


def test_retention_cleanup_runs_at_start_and_on_its_interval(tmp_path: Path) -> None:
    """Records older than the retention period are deleted at start and then every cleanup interval."""
    writer, _buffer, store, clock = make(tmp_path, run_now)
    store.store([succeeded_soap(message_id="old")], 1_000_000 - 8 * 86400)
    store.store([succeeded_soap(message_id="kept")], 1_000_000 - 6 * 86400)
    writer.startService()
    assert store.count() == 1
    store.store([succeeded_soap(message_id="ages")], 1_000_000 - 7 * 86400 + 100)
    clock.advance(3600)
    assert store.count() == 1
    writer.stopService()


def test_nothing_to_write_makes_no_store_call(tmp_path: Path) -> None:
    """An empty buffer costs no thread hop."""
    held = HeldRunner()
    writer, _buffer, _store, clock = make(tmp_path, held)
    writer.startService()
    held.pending.clear()  # the start-up cleanup
    clock.advance(5)
    assert held.pending == []
    writer.stopService()
