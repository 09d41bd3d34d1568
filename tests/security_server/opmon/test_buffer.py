"""The opmon buffer: bounded, drops its oldest, never raises into the exchange."""

from __future__ import annotations

import pytest

from security_server.core.opmon.record import OperationalRecord
from security_server.opmon.buffer import OpmonBuffer
from tests.security_server.core.opmon.opmon_fixture import succeeded_soap


def numbered(count: int) -> list[OperationalRecord]:
    return [succeeded_soap(message_id=str(i)) for i in range(count)]


def test_full_buffer_drops_the_oldest_and_counts() -> None:
    """Past its capacity the buffer keeps the newest records and counts every dropped one."""
    buffer = OpmonBuffer(capacity=3)
    for record in numbered(5):
        buffer.add(record)
    assert len(buffer) == 3 and buffer.dropped == 2
    assert [r.message_id for r in buffer.drain(10)] == ["2", "3", "4"]


def test_drain_takes_oldest_first_up_to_the_limit() -> None:
    """drain returns at most ``limit`` records in arrival order and leaves the rest."""
    buffer = OpmonBuffer()
    for record in numbered(5):
        buffer.add(record)
    assert [r.message_id for r in buffer.drain(2)] == ["0", "1"]
    assert len(buffer) == 3 and buffer.drain(0) == []


def test_a_record_that_cannot_be_built_is_counted_not_raised() -> None:
    """A failing record factory never raises into the proxy: it is counted and nothing is buffered."""
    buffer = OpmonBuffer()

    def broken() -> OperationalRecord:
        return succeeded_soap(request_size=-5)

    buffer.record(broken)
    buffer.record(lambda: succeeded_soap())
    assert buffer.unbuildable == 1 and len(buffer) == 1


def test_put_back_returns_records_to_the_front_within_capacity() -> None:
    """A failed batch goes back in front of newer records; what does not fit (its oldest) is dropped and counted."""
    buffer = OpmonBuffer(capacity=4)
    batch = numbered(3)
    buffer.add(succeeded_soap(message_id="new"))
    buffer.put_back(batch)
    assert [r.message_id for r in buffer.drain(10)] == ["0", "1", "2", "new"]
    buffer.add(succeeded_soap(message_id="a"))
    buffer.add(succeeded_soap(message_id="b"))
    buffer.add(succeeded_soap(message_id="c"))
    buffer.put_back(batch)
    assert [r.message_id for r in buffer.drain(10)] == ["2", "a", "b", "c"] and buffer.dropped == 2
    full = OpmonBuffer(capacity=1)
    full.add(succeeded_soap())
    full.put_back(batch)
    assert len(full) == 1 and full.dropped == 3


@pytest.mark.parametrize("capacity", [0, -1, True])
def test_capacity_must_be_positive(capacity: int) -> None:
    """A buffer without room is a configuration error."""
    with pytest.raises(ValueError):
        OpmonBuffer(capacity)
